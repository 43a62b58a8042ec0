"""Dunning phases for Kassa: grace, warning, suspension, delete notice, termination."""
