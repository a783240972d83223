"""Integration tests: devstack."""
