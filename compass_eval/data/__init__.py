"""Benchmark data access: the data root, one loader per benchmark family, fingerprints, CLI."""
