"""Benchmarks of oauth-rotator against floors measured in the same run: `make bench` runs `python -m bench.run`."""
