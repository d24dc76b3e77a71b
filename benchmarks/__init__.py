"""rnnkit's benchmarks: ``python -m benchmarks`` (or ``make bench``); see BENCHMARKS.md.

They measure speed and never assert on it; correctness lives in the test suite.
"""
