"""Integration tests: pages."""
