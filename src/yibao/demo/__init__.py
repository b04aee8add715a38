"""A deterministic synthetic region for sandboxes, tests and benchmarks."""
