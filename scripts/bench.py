"""Benchmarks of snntrain training steps, as ratios measured in one run.

    python scripts/bench.py                 # everything (a few minutes on 2 CPU cores)
    python scripts/bench.py --quick         # under a minute
    python scripts/bench.py --json out.json --workloads mlp,conv

Workloads (issue 9): ``mlp`` 784→128 LIF→10, T=25, batch 128; ``conv`` 1×28×28 → conv 12@5×5
→ maxpool 2 → LIF → conv 64@5×5 → maxpool 2 → LIF → dense 10 → readout, T=25, batch 64;
``digits`` the default config. Each runs through the real snntrain code (config → build →
compiled train step, rate coding inside the step) and, for ``mlp``, against a hand-written
plain-JAX reference step in the same process, alternating rounds.

FLOP/step counts the synaptic matmuls/convolutions from the layer shapes × T: forward
``2·B·T·(in·out)`` per dense layer, ``2·B·T·Ho·Wo·k²·Cin·Cout`` per conv; a training step is
3× forward per layer (forward, input gradient, weight gradient) except the first layer, whose
input needs no gradient (2×): 1.31 GFLOP for the MLP step. XLA's cost analysis counts a
``scan`` body once, so it is not used. "frac_peak" = model FLOP/s ÷ the float32 GEMM peak of
numpy (2048³) measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def gemm_gflops(n: int = 2048, repeats: int = 3) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_npz(path: Path, shape=(28, 28, 1), n: int = 2048) -> Path:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.int64)
    np.savez(path, x_train=x, y_train=y, x_test=x[:256], y_test=y[:256])
    return path


def workload_overrides(name: str, npz: Path) -> tuple[list[str], int]:
    """Hydra overrides and the FLOP count per step of a workload."""
    common = ["logger=none", "trainer.progress=false", "T=25"]
    if name == "mlp":
        B, T = 128, 25
        flop = 2 * B * T * (2 * 784 * 128 + 3 * 128 * 10)
        return [*common, "dataset=arrays", f"dataset.path={npz}", "dataset.val_fraction=0",
                "model.hidden=[128]", f"trainer.batch_size={B}"], flop
    if name == "conv":
        B, T = 64, 25
        conv1 = 24 * 24 * 25 * 1 * 12  # VALID 5x5 on 28x28 -> 24x24, pool -> 12x12
        conv2 = 8 * 8 * 25 * 12 * 64  # 12x12 -> 8x8, pool -> 4x4x64
        flop = 2 * B * T * (2 * conv1 + 3 * (conv2 + 4 * 4 * 64 * 10))
        return [*common, "dataset=arrays", f"dataset.path={npz}", "dataset.val_fraction=0",
                "model=conv", "model.padding=VALID", "model.norm=none", "model.channels=[12,64]",
                "model.kernel_size=5", f"trainer.batch_size={B}"], flop
    if name == "digits":  # the default config: 64 -> 256 -> 10, T = 25, batch 128
        return ["logger=none", "trainer.progress=false"], 2 * 128 * 25 * (2 * 64 * 256 + 3 * 2560)
    raise SystemExit(f"unknown workload {name!r}; valid: mlp, conv, digits")


def snntrain_step(overrides: list[str]):
    """(step_fn, state, batches, key, surrogate, exp) through the real snntrain code path."""
    import jax
    from hydra import compose, initialize_config_dir

    from snntrain import data, train
    from snntrain.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    exp = train.build(cfg)
    dp = exp.parallel
    fn = dp.compile(train.make_train_step(exp))
    state = dp.replicate(exp.init_state())
    host = list(data.batches(exp.data.train, exp.batch_size, rows=dp.local_rows))[:8]
    return fn, state, host, jax.random.PRNGKey(0), exp


def time_steps(fn, state, host, key, surrogate, dp, n: int) -> tuple[float, float, object]:
    """(compile seconds, steps/s over n steps, state); blocks at least every 20 steps."""
    import jax

    t = time.perf_counter()
    state, m = fn(state, dp.put_batch(host[0]), key, surrogate)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(n):
        state, m = fn(state, dp.put_batch(host[i % len(host)]), key, surrogate)
        if i % 20 == 19:
            jax.block_until_ready(m)
    jax.block_until_ready(m)
    return compile_s, n / (time.perf_counter() - t), state


def reference_mlp(B: int = 128, T: int = 25, sizes=(784, 128, 10)):
    """The fastest plain-JAX MLP step we know: layer-batched time, scan only the neuron."""
    import jax
    import jax.numpy as jnp
    import optax

    k = jax.random.split(jax.random.PRNGKey(0), 2)
    params = [(jax.random.normal(k[i], (a, b)) / np.sqrt(a), jnp.zeros(b))
              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))]
    tx = optax.adam(2e-3)

    @jax.custom_jvp
    def spike(v):
        return (v >= 0).astype(v.dtype)

    @spike.defjvp
    def _(p, t):
        (v,), (dv,) = p, t
        return spike(v), dv / (25.0 * jnp.abs(v) + 1.0) ** 2

    def loss(params, x_BxD, y_B, key):
        # the fastest rate coding we know: four 8-bit uniforms per 32-bit random word
        words = jax.random.bits(key, (T, B, x_BxD.shape[1] // 4), jnp.uint32)
        u_TxBxD = jax.lax.bitcast_convert_type(words, jnp.uint8).reshape(T, B, -1)
        level_BxD = jnp.round(x_BxD * 256).astype(jnp.int32)
        x_TxBxD = (u_TxBxD.astype(jnp.int32) < level_BxD).astype(jnp.float32)
        (w1, b1), (w2, b2) = params
        i_TxBxN = x_TxBxD @ w1 + b1

        def lif(v, i):
            v = 0.9 * v + i
            s = spike(v - 1.0)
            return v - s, s

        _, s_TxBxN = jax.lax.scan(lif, jnp.zeros(i_TxBxN.shape[1:]), i_TxBxN)
        o_TxBxC = s_TxBxN @ w2 + b2
        t = jnp.arange(T)
        kern = jnp.where(t[:, None] >= t[None], 0.9 ** jnp.maximum(t[:, None] - t[None], 0), 0)
        logits = jnp.einsum("tk,kbc->tbc", kern, o_TxBxC).mean(0)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y_B).mean()

    @jax.jit
    def step(state, x, y, key):
        params, opt = state
        g = jax.grad(loss)(params, x, y, key)
        upd, opt = tx.update(g, opt, params)
        return (optax.apply_updates(params, upd), opt), None

    x = np.random.default_rng(0).random((B, 784), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, B).astype(np.int32)
    return step, (params, tx.init(params)), x, y


def run_workload(name: str, npz: Path, steps: int, rounds: int, gemm: float) -> dict:
    import jax

    overrides, flop = workload_overrides(name, npz)
    fn, state, host, key, exp = snntrain_step(overrides)
    compile_s, ours, ref = 0.0, [], []
    if name == "mlp":
        ref_step, ref_state, x, y = reference_mlp()
        ref_state, _ = ref_step(ref_state, x, y, key)  # compile
    for r in range(rounds):
        c, sps, state = time_steps(fn, state, host, key, exp.surrogate, exp.parallel, steps)
        compile_s = compile_s or c
        ours.append(sps)
        if name == "mlp":
            t = time.perf_counter()
            for i in range(steps):
                ref_state, _ = ref_step(ref_state, x, y, jax.random.fold_in(key, i))
            jax.block_until_ready(ref_state)
            ref.append(steps / (time.perf_counter() - t))
        del r
    best = max(ours)
    out = {"steps_per_s": best, "samples_per_s": best * exp.batch_size,
           "flop_per_step": flop, "frac_peak": best * flop / (gemm * 1e9),
           "compile_s": compile_s, "peak_rss_mb": peak_rss_mb()}
    if ref:
        out["ref_steps_per_s"] = max(ref)
        out["ratio_vs_ref"] = best / max(ref)
    return out


def memory(name: str, npz: Path, T: int, remat: bool, dtype: str = "float32",
           steps: int = 5) -> tuple[float, float]:
    """(temporary buffer MiB of the compiled step — per step, not process-wide — and steps/s)."""
    overrides, _ = workload_overrides(name, npz)
    overrides = [o for o in overrides if not o.startswith("T=")]
    fn, state, host, key, exp = snntrain_step(
        [*overrides, f"T={T}", f"trainer.remat={remat}", f"trainer.dtype={dtype}"])
    batch = exp.parallel.put_batch(host[0])
    stats = fn.lower(state, batch, key, exp.surrogate).compile().memory_analysis()
    _, sps, _ = time_steps(fn, state, host, key, exp.surrogate, exp.parallel, steps)
    return stats.temp_size_in_bytes / 2**20, sps


def devices_section(npz: Path, steps: int) -> dict:
    """steps/s with 1 vs 4 virtual CPU devices, in a subprocess (XLA_FLAGS before JAX starts)."""
    code = (f"import sys, json; sys.path.insert(0, {str(ROOT / 'scripts')!r}); import bench; "
            f"print(json.dumps(bench.devices_inner({str(npz)!r}, {steps})))")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def devices_inner(npz: str, steps: int) -> dict:
    res = {}
    for name in ("mlp", "conv"):
        overrides, _ = workload_overrides(name, Path(npz))
        for mode, n in (("none", 1), ("sharded", 4), ("pmap", 4)):
            fn, state, host, key, exp = snntrain_step(
                [*overrides, f"trainer.parallel={mode}", f"trainer.devices={n}"])
            _, sps, _ = time_steps(fn, state, host, key, exp.surrogate, exp.parallel, steps)
            res[f"{name}/{mode}x{n}"] = sps
        res[f"{name}/sharded_vs_1"] = res[f"{name}/shardedx4"] / res[f"{name}/nonex1"]
        res[f"{name}/pmap_vs_1"] = res[f"{name}/pmapx4"] / res[f"{name}/nonex1"]
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and sections (< 1 min)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--workloads", default="mlp,conv,digits")
    ap.add_argument("--no-devices", action="store_true", help="skip the 1-vs-4-device section")
    args = ap.parse_args(argv)
    steps, rounds = (10, 2) if args.quick else (40, 3)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if os.environ.get("OPENBLAS_CORETYPE"):
        print(f"note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} (affects numpy's peak)")
    gemm = gemm_gflops()
    print(f"float32 GEMM peak (numpy 2048^3): {gemm:.1f} GFLOP/s")
    results: dict = {"gemm_gflops": gemm, "workloads": {}}
    with tempfile.TemporaryDirectory() as tmp:
        npz = synthetic_npz(Path(tmp) / "mnist_like.npz")
        print(f"{'workload':8} {'steps/s':>8} {'samples/s':>10} {'frac_peak':>9} "
              f"{'ref steps/s':>11} {'ours/ref':>8} {'compile s':>9} {'RSS MB':>7}")
        for name in args.workloads.split(","):
            r = run_workload(name, npz, steps, rounds, gemm)
            results["workloads"][name] = r
            print(f"{name:8} {r['steps_per_s']:8.2f} {r['samples_per_s']:10.0f} "
                  f"{r['frac_peak']:9.3f} {r.get('ref_steps_per_s', float('nan')):11.2f} "
                  f"{r.get('ratio_vs_ref', float('nan')):8.2f} {r['compile_s']:9.2f} "
                  f"{r['peak_rss_mb']:7.0f}")
        if not args.quick:
            mem, speed = {}, {}
            for name in ("mlp", "conv"):
                for T, remat, dtype in ((25, False, "float32"), (25, True, "float32"),
                                        (100, False, "float32"), (100, True, "float32"),
                                        (25, False, "bfloat16"), (100, True, "bfloat16")):
                    key = (f"{name}/T{T}{'/remat' if remat else ''}"
                           f"{'/bf16' if dtype != 'float32' else ''}")
                    mem[key], speed[key] = memory(name, npz, T, remat, dtype)
                mem[f"{name}/T100remat_vs_T25"] = mem[f"{name}/T100/remat"] / mem[f"{name}/T25"]
            results["step_temp_memory_mib"] = mem
            results["steps_per_s_by_config"] = speed
            print("config              temp MiB  steps/s")
            for k, v in speed.items():
                print(f"{k:18} {mem[k]:9.1f} {v:8.2f}")
            print("T=100 remat / T=25 memory:",
                  ", ".join(f"{k} {v:.2f}" for k, v in mem.items() if k.endswith("_vs_T25")))
        if not args.no_devices:
            dev = devices_section(npz, 8 if args.quick else 30)
            results["devices"] = dev
            print("1 vs 4 virtual CPU devices (steps/s):",
                  ", ".join(f"{k} {v:.2f}" for k, v in dev.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
