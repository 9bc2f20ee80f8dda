"""pytest-benchmark timings of the quick suite's forward passes (see test_forward.py)."""
