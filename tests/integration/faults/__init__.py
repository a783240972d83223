"""Integration tests: faults."""
