"""Benchmarks and quality evaluations against the anchors named in the issues (not tests)."""
