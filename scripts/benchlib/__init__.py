"""The parts of ``scripts/bench.py``: the machine's peak, hand-written JAX references, timed
runners, the workloads, the extra sections and the printed report."""

WORKLOADS = ("mlp", "conv", "digits")  # (the keys of workloads.workloads(): light to import)
