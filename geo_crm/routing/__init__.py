"""Routing engine: problem model, solvers and benchmarks (no DB/Flask)."""
