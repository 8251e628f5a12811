"""Benchmarks, soak and their floors (not deployed): `python -m bench.run`, `python -m bench.soak`.

Every measurement is printed beside a floor measured in the same run on the same
machine, so the ratio means something on a noisy box where the absolute figure does not.
"""
