"""Integration tests: ledger."""
