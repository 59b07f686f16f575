"""A distributed Locust surge: one master, several worker processes, ≥ 10,000 buyers.

python -m load.swarm            # the full run (≤ 8 min): docs/results/swarm*.{html,md,json}
python -m load.swarm --smoke    # a small one (≤ 60 s), results in a temporary directory
"""
