"""Integration tests: fuzz."""
