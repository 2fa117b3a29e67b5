"""Benchmarks: `make bench` runs them all; each module runs alone too (`python -m benchmarks.NAME`)."""
