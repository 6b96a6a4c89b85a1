"""The cost of the cost metrics: snntrain's evaluation step with ``metrics.synops=true`` (synaptic
operations, spikes, sparsity, neuron updates counted in the step: :mod:`snntrain.synops`) against
the same step with ``metrics.synops=false``, on the bench workloads (issue 17's goal: < 5%).

Both steps are the trainer's own (config -> ``build`` -> ``parallel.compile(make_eval_step)``)
on the same batches, in one process, call by call in random order; ``ratio`` = median time
per call with the counts / without (1.00 = free).
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from benchlib.runners import compose
from benchlib.workloads import Workload

SECONDS = 15.0  # per workload


def eval_runner(overrides: list[str], synops_on: bool, n_batches: int = 2):
    """``call(i) -> seconds`` of one call of the trainer's compiled evaluation step, waited
    for (the trainer fetches every batch's sums before the next)."""
    import jax

    from snntrain import data, train

    exp = train.build(compose([*overrides, f"metrics.synops={str(synops_on).lower()}"]))
    dp = exp.parallel
    fn = dp.compile(train.make_eval_step(exp), donate_state=False)
    params = dp.replicate(exp.init_state()).params
    batches = [dp.put_batch(b) for b, _ in zip(
        data.batches(exp.data.test, exp.batch_size, shuffle=False, rows=dp.local_rows),
        range(n_batches), strict=False)]
    keys = [jax.random.PRNGKey(i) for i in range(len(batches))]
    sur = exp.surrogate
    jax.block_until_ready(fn(params, batches[0], keys[0], sur))  # compile

    def call(i: int) -> float:
        t = time.perf_counter()
        jax.block_until_ready(fn(params, batches[i % len(batches)], keys[i % len(keys)], sur))
        return time.perf_counter() - t

    return call, exp


def measure(w: Workload, seconds: float = SECONDS) -> dict[str, Any]:
    """Median seconds per evaluation step without and with the counts: single calls in
    random order, interleaved for ``seconds`` (robust to this VM's drifting speed, unlike
    longer rounds); ``ratio`` = median with / median without, and the same for each half of
    the calls (their spread is the measurement's)."""
    off, exp = eval_runner(w.overrides, False)
    on, _ = eval_runner(w.overrides, True)
    times: dict[str, list[float]] = {"off": [], "on": []}
    rng, t0, i = random.Random(0), time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or i < 5:
        pair = [("off", off), ("on", on)]
        rng.shuffle(pair)
        for k, fn in pair:
            times[k].append(fn(i))
        i += 1
    med = {k: statistics.median(v) for k, v in times.items()}
    h = i // 2
    halves = [statistics.median(times["on"][s]) / statistics.median(times["off"][s])
              for s in (slice(0, h), slice(h, None))]
    return {
        "batch_size": exp.batch_size,
        "T": int(exp.cfg.T),
        "calls": i,
        "off_ms": 1e3 * med["off"],
        "on_ms": 1e3 * med["on"],
        "ratio": med["on"] / med["off"],
        "ratio_halves": halves,
    }


def synops_section(ws: dict[str, Workload], names: list[str], seconds: float = SECONDS) -> dict:
    """:func:`measure` for each workload in ``names``."""
    return {n: measure(ws[n], seconds) for n in names}


def print_synops(res: dict[str, Any]) -> None:
    print("\nevaluation step with / without the cost metrics (metrics.synops; goal < 1.05):")
    for name, r in res.items():
        a, b = r["ratio_halves"]
        print(
            f"  {name:11} B={r['batch_size']} T={r['T']}: {r['off_ms']:.2f} -> {r['on_ms']:.2f} "
            f"ms/call, ratio {r['ratio']:.3f} (halves {a:.3f}, {b:.3f}; {r['calls']} calls each)",
            flush=True,
        )
