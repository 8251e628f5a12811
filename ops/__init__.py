"""Operator and developer tooling: the local stack and the `ctower` CLI. Never deployed."""
