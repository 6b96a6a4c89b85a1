"""The cost of the cost metrics: snntrain's evaluation step with ``metrics.synops=true`` (synaptic
operations, spikes, sparsity, neuron updates counted in the step: :mod:`snntrain.synops`) against
the same step with ``metrics.synops=false``, on the bench workloads (issue 17's goal: < 5%).

Both steps are the trainer's own (config -> ``build`` -> ``parallel.compile(make_eval_step)``)
on the same batches, timed in alternating rounds in one process (the order swapped every
round); ``ratio`` = the median over rounds of (time per step with the counts / without, in
that round), 1.00 = free; ``ratio_of_medians`` and ``ratio_best`` (best round / best round)
for comparison.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchlib.runners import compose
from benchlib.workloads import Workload

ROUNDS = 11
STEPS = {"mlp": 20, "digits": 40, "conv": 3}  # per round: ~0.1-0.3 s each on 2 cores


def eval_runner(overrides: list[str], synops_on: bool, n_batches: int = 4):
    """``run(n) -> seconds per step`` of the trainer's compiled evaluation step."""
    import jax

    from snntrain import data, train

    exp = train.build(compose([*overrides, f"metrics.synops={str(synops_on).lower()}"]))
    dp = exp.parallel
    fn = dp.compile(train.make_eval_step(exp), donate_state=False)
    params = dp.replicate(exp.init_state()).params
    src = exp.data.test
    batches = [dp.put_batch(b) for b, _ in zip(
        data.batches(src, exp.batch_size, shuffle=False, rows=dp.local_rows),
        range(n_batches), strict=False)]
    keys = [jax.random.PRNGKey(i) for i in range(len(batches))]
    sur = exp.surrogate
    jax.block_until_ready(fn(params, batches[0], keys[0], sur))  # compile

    def run(n: int) -> float:
        t = time.perf_counter()
        out = None
        for i in range(n):
            out = fn(params, batches[i % len(batches)], keys[i % len(keys)], sur)
        jax.block_until_ready(out)
        return (time.perf_counter() - t) / n

    return run, exp


def measure(w: Workload, steps: int, rounds: int = ROUNDS) -> dict[str, Any]:
    """Median seconds per evaluation step without and with the counts, alternating rounds."""
    off, exp = eval_runner(w.overrides, False)
    on, _ = eval_runner(w.overrides, True)
    times: dict[str, list[float]] = {"off": [], "on": []}
    for r in range(rounds):  # alternate, and swap the order every round
        order = (("off", off), ("on", on)) if r % 2 == 0 else (("on", on), ("off", off))
        for k, fn in order:
            times[k].append(fn(steps))
    off_s, on_s = statistics.median(times["off"]), statistics.median(times["on"])
    return {
        "batch_size": exp.batch_size,
        "T": int(exp.cfg.T),
        "off_ms": 1e3 * off_s,
        "on_ms": 1e3 * on_s,
        "ratio": statistics.median(a / b for a, b in zip(times["on"], times["off"], strict=True)),
        "ratio_of_medians": on_s / off_s,
        "ratio_best": min(times["on"]) / min(times["off"]),
        "rounds_off_ms": [1e3 * t for t in times["off"]],
        "rounds_on_ms": [1e3 * t for t in times["on"]],
    }


def synops_section(ws: dict[str, Workload], names: list[str], scale: float = 1.0) -> dict:
    """:func:`measure` for each workload in ``names``."""
    return {n: measure(ws[n], max(1, int(STEPS.get(n, 10) * scale))) for n in names}


def print_synops(res: dict[str, Any]) -> None:
    print("\nevaluation step with / without the cost metrics (metrics.synops; goal < 1.05):")
    for name, r in res.items():
        print(
            f"  {name:7} B={r['batch_size']} T={r['T']}: {r['off_ms']:.2f} -> {r['on_ms']:.2f} "
            f"ms/step, ratio {r['ratio']:.3f} (median of {len(r['rounds_on_ms'])} alternating "
            f"rounds; best/best {r['ratio_best']:.3f})",
            flush=True,
        )
