"""Integration tests: api."""
