"""Stripe payment gateway for Kassa (cards through the official stripe SDK)."""
