"""Database benchmarks; each module runs with `python -m bench.<name>`."""
