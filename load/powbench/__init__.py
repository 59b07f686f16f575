"""Proof-of-work benchmark (python -m load.powbench); see bench.py."""
