"""The parts of ``scripts/bench.py``: the machine's peak, hand-written JAX references, timed
runners, the workloads, the extra sections and the printed report."""
