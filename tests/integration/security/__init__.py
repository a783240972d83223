"""Integration tests: security."""
