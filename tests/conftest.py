"""Core tests use the kassa.testing harness (loaded through its pytest11 entry point)."""
