"""Benchmarks that print figures (`python -m bench.throughput`, `python -m bench.progress`).

Not tests: each script prints `name: value` lines, the headline last. See bench/README.md.
"""
