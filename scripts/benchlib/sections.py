"""The sections beyond the workloads: per-step memory (T, remat, dtype), 1 vs N devices, the
whole-epoch scan, and experiments (conv formulations, ``direct`` encoding), and the malloc policies.

Sections that need a fresh process (a device count fixed before JAX starts, malloc settings)
re-run ``scripts/bench.py`` (:data:`SCRIPT`) in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchlib.references import (
    CONV_FORMULATIONS,
    T_STEPS,
    check_conv_formulations,
    make_step,
    reference_conv,
    reference_mlp,
)
from benchlib.runners import alternate, compose, reference_runner, snntrain_runner
from benchlib.workloads import Workload, conv_flop, workloads
from snntrain.hostenv import ENV_SWITCH, TUNABLE

SCRIPT = str(Path(__file__).resolve().parents[1] / "bench.py")

MEMORY_CONFIGS = (
    (25, False, "float32"),
    (25, True, "float32"),
    (100, False, "float32"),
    (100, True, "float32"),
    (25, False, "bfloat16"),
    (100, True, "bfloat16"),
)


def memory_section(ws: dict[str, Workload], names: list[str], steps: int) -> dict[str, Any]:
    """Temporary buffers of the compiled step (per step) and steps/s per (T, remat, dtype)."""
    out: dict[str, Any] = {}
    for name in names:
        base = [o for o in ws[name].overrides if not o.startswith("T=")]
        for T, remat, dtype in MEMORY_CONFIGS:
            runner, _ = snntrain_runner(
                [*base, f"T={T}", f"trainer.remat={remat}", f"trainer.dtype={dtype}"], aot=True
            )
            mem, compile_s = runner.memory, runner.compile_s
            runner.warm()
            rate = runner.run(max(2, steps * 25 // T))
            key = f"{name}/T{T}{'/remat' if remat else ''}{'/bf16' if dtype != 'float32' else ''}"
            out[key] = {
                "temp_mib": mem.temp_size_in_bytes / 2**20 if mem else float("nan"),
                "steps_per_s": rate,
                "compile_s": compile_s,
            }
        for dtype in ("", "/bf16"):
            if f"{name}/T100/remat{dtype}" in out and f"{name}/T25{dtype}" in out:
                out[f"{name}/T100_remat_vs_T25{dtype}"] = (
                    out[f"{name}/T100/remat{dtype}"]["temp_mib"]
                    / out[f"{name}/T25{dtype}"]["temp_mib"]
                )
    return out


def devices_section(n: int, npz: Path, steps: int,
                    names: tuple[str, ...] = ("mlp", "conv")) -> dict[str, Any]:
    """Re-run this script with ``--xla_force_host_platform_device_count=n`` set before JAX
    starts (appended to any XLA_FLAGS already set; nothing is unset)."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}"
    ).strip()
    cmd = [
        sys.executable,
        SCRIPT,
        "--_devices-child",
        str(n),
        "--_npz",
        str(npz),
        "--_steps",
        str(steps),
        "--workloads",
        ",".join(names),
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {res.returncode}: " + " | ".join(tail)}
    return json.loads(res.stdout.strip().splitlines()[-1])


def devices_child(n: int, npz: Path, steps: int,
                  names: tuple[str, ...] = ("mlp", "conv")) -> dict[str, Any]:
    import jax

    have = jax.local_device_count()
    out: dict[str, Any] = {"devices_available": have, "platform": jax.devices()[0].platform}
    if have < n:
        out["note"] = f"only {have} device(s) on {out['platform']}; 1-vs-{n} not measured"
        return out
    ws = workloads(npz)
    for name in names:  # the chosen of mlp and conv (it ran both whatever --workloads said)
        runners = []
        for mode, k in (("none", 1), ("sharded", n), ("pmap", n)):
            r, _ = snntrain_runner(
                [*ws[name].overrides, f"trainer.parallel={mode}", f"trainer.devices={k}"],
                name=f"{mode}x{k}",
            )
            runners.append(r)
        n_steps = steps if name == "mlp" else max(3, steps // 8)
        alternate(runners, n_steps, 2)
        for r in runners:
            out[f"{name}/{r.name}"] = r.best
        one = out[f"{name}/nonex1"]
        out[f"{name}/sharded_vs_1"] = out[f"{name}/shardedx{n}"] / one
        out[f"{name}/pmap_vs_1"] = out[f"{name}/pmapx{n}"] / one
    return out


def fused_epoch_section(epochs: int) -> dict[str, Any]:
    """Digits MLP: one epoch as one jitted ``lax.scan`` over its steps (dataset on device)
    vs one dispatch per step, for the hand-written reference and for snntrain's
    ``trainer.fused_epoch`` (``steps.make_epoch_fn``)."""
    import jax
    import jax.numpy as jnp

    from snntrain import data, steps, train

    exp = train.build(compose(["logger=none", "trainer.progress=false"]))
    B, spe = exp.batch_size, exp.steps_per_epoch
    x_N = np.asarray(data.to_unit(exp.data.train.x), np.float32)
    y_N = np.asarray(exp.data.train.y, np.int32)
    plans = [data.batch_plan(len(y_N), B, seed=0, epoch=e) for e in range(epochs + 1)]
    host_epochs = [[{"x": x_N[o], "y": y_N[o]} for o in order] for order, _ in plans]
    x_dev, y_dev = jax.device_put(x_N), jax.device_put(y_N)
    key = jax.random.PRNGKey(0)
    out: dict[str, Any] = {"steps_per_epoch": spe, "batch_size": B}

    # reference: per-step dispatch vs the same step scanned over an epoch
    loss_fn, params = reference_mlp([64, 256, 10])
    step, state0, raw_step = make_step(loss_fn, params)

    def per_step(state, e):
        for batch in host_epochs[e]:
            state, loss = step(state, jax.device_put(batch), key)
        return state, loss

    def epoch_body(state, order_SxB):
        def body(state, idx_B):
            return raw_step(state, {"x": x_dev[idx_B], "y": y_dev[idx_B]}, key)

        return jax.lax.scan(body, state, order_SxB)

    fused = jax.jit(epoch_body, donate_argnums=0)
    orders = [jnp.asarray(order) for order, _ in plans]

    def timed_epochs(fn, state):
        state, out_ = fn(state, 0)
        jax.block_until_ready(out_)
        t = time.perf_counter()
        for e in range(1, epochs + 1):
            state, out_ = fn(state, e)
            jax.block_until_ready(out_)  # an epoch boundary: the trainer logs here
        return epochs * spe / (time.perf_counter() - t), state

    s1 = jax.tree.map(jnp.copy, state0)
    s2 = jax.tree.map(jnp.copy, state0)
    rates = {"ref_per_step": [], "ref_fused": []}
    for _ in range(3):
        rate, s1 = timed_epochs(per_step, s1)
        rates["ref_per_step"].append(rate)
        rate, s2 = timed_epochs(lambda s, e: fused(s, orders[e]), s2)
        rates["ref_fused"].append(rate)
    out["ref_per_step_steps_per_s"] = max(rates["ref_per_step"])
    out["ref_fused_steps_per_s"] = max(rates["ref_fused"])
    out["ref_fused_gain"] = out["ref_fused_steps_per_s"] / out["ref_per_step_steps_per_s"]

    # snntrain: the trainer's own per-step step vs its fused epoch function, when present
    dp = exp.parallel
    step_fn = dp.compile(steps.make_train_step(exp))
    epoch_fn = jax.jit(steps.make_epoch_fn(steps.make_train_step(exp)), donate_argnums=(0,))
    sur = exp.surrogate
    plans_dev = [(jnp.asarray(o), jnp.asarray(m)) for o, m in plans]
    host_b = [list(data.batches(exp.data.train, B, seed=0, epoch=e)) for e in range(epochs + 1)]

    def ours_per_step(state, e):
        for batch in host_b[e]:
            state, m = step_fn(state, dp.put_batch(batch), key, sur)
        return state, m

    def ours_fused(state, e):
        return epoch_fn(state, x_dev, y_dev, *plans_dev[e], key, sur)

    o1, o2 = (dp.replicate(jax.tree.map(jnp.copy, exp.init_state())) for _ in range(2))
    rates.update(ours_per_step=[], ours_fused=[])
    for _ in range(3):
        rate, o1 = timed_epochs(ours_per_step, o1)
        rates["ours_per_step"].append(rate)
        rate, o2 = timed_epochs(ours_fused, o2)
        rates["ours_fused"].append(rate)
    out["snntrain_per_step_steps_per_s"] = max(rates["ours_per_step"])
    out["snntrain_fused_steps_per_s"] = max(rates["ours_fused"])
    out["snntrain_fused_gain"] = (
        out["snntrain_fused_steps_per_s"] / out["snntrain_per_step_steps_per_s"]
    )
    return out


def conv_formulations_section(w: Workload, steps: int, rounds: int, gemm: float) -> dict:
    """The CONV reference in each formulation, plus snntrain, in alternating rounds."""
    ours, _ = snntrain_runner(w.overrides)
    runners = [ours] + [
        reference_runner(reference_conv(f), ours.host, name=f) for f in CONV_FORMULATIONS
    ]
    alternate(runners, steps, rounds)
    out = {
        r.name: {
            "steps_per_s": r.best,
            "frac_peak": r.best * w.flop / 1e9 / gemm,
            "compile_s": r.compile_s,
        }
        for r in runners
    }
    out["max_rel_error_vs_lax_conv"] = check_conv_formulations()
    return out


def direct_section(w: Workload, steps: int, rounds: int, gemm: float) -> dict:
    """CONV with ``encoder=direct`` through snntrain: the first conv runs once per example."""
    ours, exp = snntrain_runner([*w.overrides, "encoder=direct"], name="direct")
    rate, _ = snntrain_runner(w.overrides, name="rate")
    alternate([ours, rate], steps, rounds)
    flop = conv_flop(64, T_STEPS, 28, 1, [(5, 12), (5, 64)], 2, 10, first_once=True)
    return {
        "direct_steps_per_s": ours.best,
        "rate_steps_per_s": rate.best,
        "direct_vs_rate": ours.best / rate.best,
        "direct_flop_per_step": flop,
        "direct_frac_peak": ours.best * flop / 1e9 / gemm,
    }


MALLOC_POLICIES = ("default", "heap", "hugepages")


def malloc_section(names: list[str], measured: dict[str, Any],
                   overrides: list[str] = ()) -> dict[str, Any]:
    """Re-run the workloads in one subprocess per forced malloc policy (``SNNTRAIN_MALLOC``:
    glibc ``default``, ``heap``, ``hugepages``; :mod:`snntrain.hostenv`), each with half the
    steps, and report steps/s and the gain over ``default``; ``measured`` (this run's
    workloads, under ``auto``) is compared with the same ``default`` subprocess."""
    out: dict[str, Any] = {}
    for policy in MALLOC_POLICIES:
        env = dict(os.environ)
        env["SNNTRAIN_MALLOC"] = policy
        env.pop(ENV_SWITCH, None)
        env["GLIBC_TUNABLES"] = ":".join(
            t for t in env.get("GLIBC_TUNABLES", "").split(":") if t and not t.startswith(TUNABLE)
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{policy}.json"
            cmd = [sys.executable, SCRIPT, "--sections", "workloads", "--workloads"]
            cmd += [",".join(names), "--json", str(path), "--_steps-scale", "0.5"]
            cmd += [f"--override={o}" for o in overrides]  # (the same runs as `measured`)
            res = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if res.returncode != 0 or not path.exists():
                out[policy] = {"error": (res.stderr or res.stdout).strip().splitlines()[-1:]}
                continue
            got = json.loads(path.read_text())["workloads"]
        out[policy] = {name: v["steps_per_s"] for name, v in got.items()}
    base = out.get("default", {})
    gains: dict[str, dict[str, float]] = {}
    for policy, rates in out.items():
        if policy != "default" and "error" not in rates:
            gains[policy] = {k: v / base[k] for k, v in rates.items() if k in base}
    gains["auto (this run)"] = {k: v["steps_per_s"] / base[k] for k, v in measured.items()
                                if k in base}
    auto = {k: v["malloc"] for k, v in measured.items() if v.get("malloc")}
    return {"steps_per_s": out, "gain_vs_default": gains, "auto_choice": auto}
