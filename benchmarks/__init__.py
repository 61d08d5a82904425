"""Benchmarks: each prints figures and ratios measured within one run."""
