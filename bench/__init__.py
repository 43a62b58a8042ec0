"""Benchmarks (`make bench`): each reports its numbers and a baseline measured in the same run."""
