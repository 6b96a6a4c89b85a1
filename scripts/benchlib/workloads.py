"""The workloads: each a Hydra config for snntrain, its hand-written reference and its FLOP
count per training step (counted from the layer shapes; see ``scripts/bench.py``)."""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchlib.machine import peak_rss_mb
from benchlib.references import T_STEPS, reference_conv, reference_mlp
from benchlib.runners import Runner, alternate, reference_runner, snntrain_runner


def dense_flop(B: int, T: int, sizes: list[int]) -> int:
    """Training FLOP of a dense stack ``sizes[0] -> ... -> sizes[-1]`` over T steps."""
    layers = zip(sizes[:-1], sizes[1:], strict=True)
    return sum((2 if i == 0 else 3) * 2 * B * T * a * b for i, (a, b) in enumerate(layers))


def conv_flop(
    B: int,
    T: int,
    hw: int,
    c_in: int,
    convs: list[tuple[int, int]],
    pool: int,
    n_classes: int,
    first_once: bool = False,
) -> int:
    """Training FLOP of ``[conv k x k (VALID) -> pool] x L -> dense`` over T steps.

    ``first_once``: the first layer sees the same input at every step (``direct`` encoding)
    and is computed once per example.
    """
    total, c = 0, c_in
    for i, (k, c_out) in enumerate(convs):
        hw = hw - k + 1
        steps = 1 if (i == 0 and first_once) else T
        total += (2 if i == 0 else 3) * 2 * B * steps * hw * hw * k * k * c * c_out
        hw, c = hw // pool, c_out
    return total + 3 * 2 * B * T * hw * hw * c * n_classes


def synthetic_npz(path: Path, hw: int = 28, n: int = 2048) -> Path:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, hw, hw), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.int64)
    np.savez(path, x_train=x, y_train=y, x_test=x[:256], y_test=y[:256])
    return path


@dataclasses.dataclass
class Workload:
    name: str
    overrides: list[str]
    flop: int
    reference: Callable[[], Any]  # () -> (loss_fn, params)
    steps: int  # per round (full run)


def workloads(npz: Path, extra: list[str] = ()) -> dict[str, Workload]:
    """The workloads; ``extra`` Hydra overrides go to every snntrain run (not the references)."""
    base = ["logger=none", "trainer.progress=false", f"T={T_STEPS}", *extra]
    arrays = ["dataset=arrays", f"dataset.path={npz}", "dataset.val_fraction=0"]
    return {
        "mlp": Workload(
            "mlp",
            [*base, *arrays, "model=mlp", "model.hidden=[128]", "trainer.batch_size=128"],
            dense_flop(128, T_STEPS, [784, 128, 10]),
            lambda: reference_mlp([784, 128, 10]),
            60,
        ),
        "conv": Workload(
            "conv",
            [
                *base,
                *arrays,
                "model=conv",
                "model.padding=VALID",
                "model.norm=none",
                "model.channels=[12,64]",
                "model.kernel_size=5",
                "model.pool=2",
                "model.dense=[]",
                "trainer.batch_size=64",
            ],
            conv_flop(64, T_STEPS, 28, 1, [(5, 12), (5, 64)], 2, 10),
            lambda: reference_conv("chwn_s2d"),
            8,
        ),
        "digits": Workload(
            "digits",
            ["logger=none", "trainer.progress=false", *extra],
            dense_flop(128, T_STEPS, [64, 256, 10]),
            lambda: reference_mlp([64, 256, 10]),
            150,
        ),
    }


def run_workload(w: Workload, steps: int, rounds: int, gemm: float) -> dict[str, Any]:
    ours, exp = snntrain_runner(w.overrides)
    ref = reference_runner(w.reference(), ours.host)
    malloc = malloc_trial(ours)
    alternate([ours, ref], steps, rounds)
    gflop = w.flop / 1e9
    return {
        "steps_per_s": ours.best,
        "samples_per_s": ours.best * exp.batch_size,
        "frac_peak": ours.best * gflop / gemm,
        "ref_steps_per_s": ref.best,
        "ref_samples_per_s": ref.best * exp.batch_size,
        "ref_frac_peak": ref.best * gflop / gemm,
        "ratio_vs_ref": ours.best / ref.best,
        "compile_s": ours.compile_s,
        "ref_compile_s": ref.compile_s,
        "peak_rss_mb": peak_rss_mb(),
        "flop_per_step": w.flop,
        "batch_size": exp.batch_size,
        "T": int(exp.cfg.T),
        "rounds": ours.rates,
        "ref_rounds": ref.rates,
        "median_ratio": statistics.median(ours.rates) / statistics.median(ref.rates),
        "malloc": malloc,
    }


def malloc_trial(runner: Runner) -> dict[str, Any] | None:
    """Under ``SNNTRAIN_MALLOC=auto``, the CLI's malloc trial on the runner's own steps (not
    cached); the winner stays on for the timing. ``{"choice", "ms"}`` or None."""
    from snntrain import hostenv, malloctune

    if hostenv.malloc_mode() != "auto":
        return None
    runner.warm()
    calls = itertools.count()

    def run():
        i = next(calls)
        runner.state, out = runner.call(runner.state, runner.host[i % len(runner.host)])
        return out

    trial = malloctune.trial_on(run)
    faults = {c: int(statistics.median(v)) for c, v in trial.faults.items() if v}
    return {"choice": trial.choice, "ms": trial.medians_ms(), "faults": faults}
