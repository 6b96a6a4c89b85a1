"""Speed of snntrain's training step, measured against hand-written JAX and the GEMM peak.

    python scripts/bench.py                      # everything (~5 minutes on 2 CPU cores)
    python scripts/bench.py --quick              # the three workloads only, under a minute
    python scripts/bench.py --json bench.json --workloads mlp,conv --devices 0

Workloads (issue 9), each run through the real snntrain code path (Hydra config -> ``build`` ->
``parallel.compile(make_train_step)``, rate coding inside the step) and through a hand-written
plain-JAX reference step for the same network in the same process, in alternating rounds:

* ``mlp``: 784 -> 128 LIF -> 10 leaky readout, T = 25, batch 128, rate coding, Adam;
* ``conv``: 1x28x28 -> conv 12@5x5 -> maxpool 2 -> LIF -> conv 64@5x5 -> maxpool 2 -> LIF ->
  dense 10 -> leaky readout (VALID convolutions, no norm), T = 25, batch 64;
* ``digits``: the default config (8x8 digits, 64 -> 256 LIF -> 10, T = 25, batch 128).

Inputs are synthetic 28x28 images in an ``.npz`` read by ``dataset=arrays``; the step cost does
not depend on the pixel values beyond the spike density.

FLOP per step are counted from the layer shapes x T (XLA's cost analysis counts a ``scan`` body
once, so it undercounts scanned steps): a synaptic layer's forward pass is
``2*B*T*in*out`` for a dense layer and ``2*B*T*Ho*Wo*k*k*Cin*Cout`` for a convolution; a training
step costs 3x that (forward, input gradient, weight gradient) except for the first layer, whose
input needs no gradient (2x). Neurons, pooling, encoding and the optimizer are not counted.
mlp: 1.31 GFLOP, conv: 13.0 GFLOP, digits: 0.26 GFLOP. ``frac_peak`` = FLOP/step x steps/s /
the float32 GEMM rate of numpy (2048^3, best of 5) measured in the same run.

Other sections (skipped with ``--quick``): per-step temporary memory of the compiled step
(``memory_analysis()``: per step, not process-wide) at T = 25/100, with and without
``trainer.remat``, float32/bfloat16; 1 vs N virtual CPU devices (a subprocess with
``--xla_force_host_platform_device_count``); whole-epoch ``lax.scan`` vs per-step dispatch on
digits; and experiments (convolution formulations, ``direct`` encoding, and the gain of
huge-page malloc, which this script turns on as the snntrain CLI does: ``--no-hugepages``).
Peak RSS is ``ru_maxrss`` of this process: process-wide and monotone, so a workload's value
includes everything that ran before it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from snntrain.hostenv import ENV_SWITCH, TUNABLE, reexec_with_hugepages

# The network constants every reference shares with snntrain's defaults (conf/).
T_STEPS, BETA, THRESHOLD, ALPHA, LR = 25, 0.9, 1.0, 25.0, 2e-3
SECTIONS = ("workloads", "memory", "devices", "fused", "experiments")
MAX_IN_FLIGHT = 20  # block at least this often (virtual-device collectives deadlock otherwise)


# ---- machine -------------------------------------------------------------------------------


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Float32 GEMM rate of numpy's BLAS (best of ``repeats`` after one warm-up)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool, page faults
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def device_gemm_gflops(n: int = 4096, repeats: int = 5) -> float:
    """Float32 GEMM rate of JAX's default device (used for ``frac_peak`` on accelerators)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    jax.block_until_ready(f(a))
    best = min(_timed(lambda: jax.block_until_ready(f(a))) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (process-wide, never decreases)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    import jax

    d = jax.devices()[0]
    env = {
        k: os.environ[k]
        for k in (
            "OPENBLAS_CORETYPE",
            "XLA_FLAGS",
            "GLIBC_TUNABLES",
            "JAX_PLATFORMS",
            "OMP_NUM_THREADS",
        )
        if k in os.environ
    }
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": d.platform,
        "device_kind": d.device_kind,
        "devices": jax.device_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "env": env,
    }


# ---- FLOP counting -------------------------------------------------------------------------


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


# ---- hand-written references ---------------------------------------------------------------


def _spike_fn():
    """Heaviside forward, fast-sigmoid derivative ``1 / (ALPHA |v| + 1)^2`` backward."""
    import jax
    import jax.numpy as jnp

    @jax.custom_jvp
    def spike(v):
        return (v >= 0).astype(v.dtype)

    @spike.defjvp
    def _(primals, tangents):
        (v,), (dv,) = primals, tangents
        return spike(v), dv / (ALPHA * jnp.abs(v) + 1.0) ** 2

    return spike


def _lif(spike, i_TxN):
    """LIF over the leading time axis (charge, fire, subtract reset): one ``lax.scan``."""
    import jax
    import jax.numpy as jnp

    def body(v, i):
        v = BETA * v + i
        s = spike(v - THRESHOLD)
        return v - s * THRESHOLD, s

    return jax.lax.scan(body, jnp.zeros(i_TxN.shape[1:], i_TxN.dtype), i_TxN)[1]


def _readout_mean(o_TxBxC):
    """Mean over time of the leaky membrane ``v_t = BETA v_{t-1} + o_t`` (a causal matmul)."""
    import jax.numpy as jnp

    t = jnp.arange(o_TxBxC.shape[0])
    lag = t[:, None] - t[None, :]
    kern_TxT = jnp.where(lag >= 0, BETA ** jnp.maximum(lag, 0), 0.0).astype(o_TxBxC.dtype)
    return jnp.einsum("tk,kbc->bc", kern_TxT, o_TxBxC) / o_TxBxC.shape[0]


def _rate_levels(x, key, shape):
    """Bernoulli spikes ``u < round(256 x)`` from 8-bit uniforms (four per 32-bit word).

    ``x`` broadcasts against ``shape`` (whose last axis must divide by 4); as snntrain's
    default ``encoder.resolution=8``, with one key for the whole batch.
    """
    import jax
    import jax.numpy as jnp

    words = jax.random.bits(key, (*shape[:-1], shape[-1] // 4), jnp.uint32)
    u = jax.lax.bitcast_convert_type(words, jnp.uint8).reshape(shape)
    level = jnp.round(x * 256).astype(jnp.int32)
    return (u.astype(jnp.int32) < level).astype(jnp.float32)


def _make_step(loss_fn, params):
    """``(jitted step, state, step)``: an Adam step ``(state, batch, key) -> (state, loss)``,
    jitted with the state donated, and the plain function (to scan it)."""
    import jax
    import jax.numpy as jnp
    import optax

    tx = optax.adam(LR)

    def step(state, batch, key):
        params, opt, n = state
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, jax.random.fold_in(key, n))
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), opt, n + 1), loss

    state = (params, tx.init(params), jnp.zeros((), jnp.int32))
    return jax.jit(step, donate_argnums=0), state, step


def reference_mlp(sizes: list[int], T: int = T_STEPS, epoch: bool = False):
    """The fastest MLP step we know: each layer's matmul on all T*B rows, scan only the LIF.

    Returns ``(loss_fn, params)``; ``loss_fn(params, batch, key)``.
    """
    import jax
    import jax.numpy as jnp
    import optax

    spike = _spike_fn()
    keys = jax.random.split(jax.random.PRNGKey(0), len(sizes) - 1)
    params = [
        (jax.random.normal(k, (a, b)) / np.sqrt(a), jnp.zeros(b))
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]

    def loss_fn(params, batch, key):
        x_BxD = batch["x"].reshape(batch["x"].shape[0], -1)
        B, D = x_BxD.shape
        h = _rate_levels(x_BxD, key, (T, B, D)).reshape(T * B, D)
        for w, b in params[:-1]:
            h = _lif(spike, (h @ w + b).reshape(T, B, -1)).reshape(T * B, -1)
        w, b = params[-1]
        logits_BxC = _readout_mean((h @ w + b).reshape(T, B, -1))
        return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, batch["y"]).mean()

    return loss_fn, params


def pooled_conv_kernel(w_KxKxCxO):
    """Weights of ``maxpool2(conv_kxk(x))`` as one GEMM in space-to-depth coordinates.

    The 4 pooling phases ``(a, b)`` of a pooled output see a ``(k+1) x (k+1)`` input window
    (``(k+1)/2`` squared cells of 2x2 pixels, k odd); column ``(a, b, o)`` holds ``w`` shifted
    by ``(a, b)`` in that window, zeros elsewhere. Returns ``((k+1)/2)^2 * 4C x 4O``, rows
    ordered ``(cell_i, cell_j, p, q, c)`` with pixel ``(2 cell_i + p, 2 cell_j + q)``.
    """
    import jax.numpy as jnp

    k, _, c, o = w_KxKxCxO.shape
    r = (k + 1) // 2
    padded = jnp.pad(w_KxKxCxO, ((0, 2 * r - k), (0, 2 * r - k), (0, 0), (0, 0)))
    phases = [jnp.roll(padded, (a, b), axis=(0, 1)) for a in range(2) for b in range(2)]
    w_big = jnp.stack(phases, -2).reshape(r, 2, r, 2, c, 4, o).transpose(0, 2, 1, 3, 4, 5, 6)
    return w_big.reshape(r * r * 4 * c, 4 * o)


def conv_pool_im2col(x_NxHxWxC, w_KxKxCxO):
    """snntrain's formulation: VALID conv as im2col + one GEMM, then a max of 4 slices."""
    import jax.numpy as jnp

    k, _, c, o = w_KxKxCxO.shape
    n, h, w, _ = x_NxHxWxC.shape
    ho, wo = h - k + 1, w - k + 1
    rows = jnp.concatenate([x_NxHxWxC[:, :, j : j + wo] for j in range(k)], -1)
    patches = jnp.concatenate([rows[:, i : i + ho] for i in range(k)], -1)
    y = patches @ w_KxKxCxO.reshape(k * k * c, o)
    hp, wp = ho // 2 * 2, wo // 2 * 2
    return jnp.maximum(
        jnp.maximum(y[:, 0:hp:2, 0:wp:2], y[:, 0:hp:2, 1:wp:2]),
        jnp.maximum(y[:, 1:hp:2, 0:wp:2], y[:, 1:hp:2, 1:wp:2]),
    )


def conv_pool_s2d_nhwc(x_NxHxWxC, w_KxKxCxO):
    """``maxpool2(conv)`` fused, channels-last: space-to-depth, (k+1)/2-square im2col, one GEMM
    with :func:`pooled_conv_kernel`, max over the 4 phase column groups. Needs even conv
    output sizes (true for the CONV workload)."""
    import jax.numpy as jnp

    k, _, c, o = w_KxKxCxO.shape
    n, h, w, _ = x_NxHxWxC.shape
    r, ho, wo = (k + 1) // 2, (h - k + 1) // 2, (w - k + 1) // 2
    s = x_NxHxWxC.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    s = s.reshape(n, h // 2, w // 2, 4 * c)
    rows = jnp.concatenate([s[:, :, j : j + wo] for j in range(r)], -1)
    patches = jnp.concatenate([rows[:, i : i + ho] for i in range(r)], -1)
    y = patches @ pooled_conv_kernel(w_KxKxCxO)
    return jnp.maximum(
        jnp.maximum(y[..., :o], y[..., o : 2 * o]),
        jnp.maximum(y[..., 2 * o : 3 * o], y[..., 3 * o :]),
    )


def conv_pool_s2d_chwn(x_CxHxWxN, w_KxKxCxO):
    """As :func:`conv_pool_s2d_nhwc` with the examples (T*B) as the minor axis: every patch
    slice copies runs of ``wo * N`` floats, and the GEMM is ``W_big^T (4O x K) @ P (K x M)``."""
    import jax.numpy as jnp

    k, _, c, o = w_KxKxCxO.shape
    _, h, w, n = x_CxHxWxN.shape
    r, ho, wo = (k + 1) // 2, (h - k + 1) // 2, (w - k + 1) // 2
    s = x_CxHxWxN.reshape(c, h // 2, 2, w // 2, 2, n).transpose(2, 4, 0, 1, 3, 5)
    s = s.reshape(4 * c, h // 2, w // 2, n)
    patches = jnp.stack([s[:, i : i + ho, j : j + wo] for i in range(r) for j in range(r)], 0)
    y = pooled_conv_kernel(w_KxKxCxO).T @ patches.reshape(r * r * 4 * c, ho * wo * n)
    y = y.reshape(4, o, ho, wo, n)
    return jnp.maximum(jnp.maximum(y[0], y[1]), jnp.maximum(y[2], y[3]))


CONV_FORMULATIONS = ("chwn_s2d", "nhwc_s2d", "nhwc_im2col")


def reference_conv(
    formulation: str = "chwn_s2d",
    channels=(12, 64),
    k: int = 5,
    hw: int = 28,
    n_classes: int = 10,
    T: int = T_STEPS,
):
    """The CONV workload by hand: both convolutions on all T*B images at once, scan only LIF.

    ``formulation``: ``chwn_s2d`` (fastest: pooled conv fused, examples minor),
    ``nhwc_s2d`` (same fused conv+pool, channels-last as snntrain) or ``nhwc_im2col``
    (snntrain's current formulation). The bias is added after the pool (the same values:
    max(a_i + b) = max(a_i) + b, rounding is monotone).
    """
    import jax
    import jax.numpy as jnp
    import optax

    if formulation not in CONV_FORMULATIONS:
        raise ValueError(f"unknown conv formulation {formulation!r}; valid: {CONV_FORMULATIONS}")
    spike = _spike_fn()
    keys = jax.random.split(jax.random.PRNGKey(0), len(channels) + 1)
    params, c, size = [], 1, hw
    for key, c_out in zip(keys, channels, strict=False):
        params.append(
            (jax.random.normal(key, (k, k, c, c_out)) / np.sqrt(k * k * c), jnp.zeros(c_out))
        )
        c, size = c_out, (size - k + 1) // 2
    n_flat = size * size * c
    params.append(
        (jax.random.normal(keys[-1], (n_flat, n_classes)) / np.sqrt(n_flat), jnp.zeros(n_classes))
    )

    def loss_nhwc(params, batch, key):
        B = batch["x"].shape[0]
        x_BxD = batch["x"].reshape(B, hw * hw)
        h = _rate_levels(x_BxD, key, (T, B, hw * hw)).reshape(T * B, hw, hw, 1)
        conv_pool = conv_pool_s2d_nhwc if formulation == "nhwc_s2d" else conv_pool_im2col
        for w, b in params[:-1]:
            i = conv_pool(h, w) + b
            h = _lif(spike, i.reshape(T, B, *i.shape[1:])).reshape(i.shape)
        w, b = params[-1]
        logits_BxC = _readout_mean((h.reshape(T * B, -1) @ w + b).reshape(T, B, -1))
        return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, batch["y"]).mean()

    def loss_chwn(params, batch, key):
        B = batch["x"].shape[0]
        x_HxWxB = batch["x"].reshape(B, hw, hw).transpose(1, 2, 0)
        h = _rate_levels(x_HxWxB[:, :, None], key, (hw, hw, T, B)).reshape(1, hw, hw, T * B)
        for w, b in params[:-1]:
            i = conv_pool_s2d_chwn(h, w) + b[:, None, None, None]  # C x H x W x (T*B)
            i_TxCxHxWxB = jnp.moveaxis(i.reshape(*i.shape[:3], T, B), 3, 0)
            h = jnp.moveaxis(_lif(spike, i_TxCxHxWxB), 0, 3).reshape(i.shape)
        w, b = params[-1]  # rows in (c, h, w) order: the same network up to a permutation
        o_CxN = w.T @ h.reshape(-1, T * B) + b[:, None]
        logits_BxC = _readout_mean(o_CxN.reshape(-1, T, B).transpose(1, 2, 0))
        return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, batch["y"]).mean()

    return (loss_chwn if formulation == "chwn_s2d" else loss_nhwc), params


def check_conv_formulations() -> dict[str, float]:
    """Max |difference| of each fused formulation from ``lax.conv`` + ``reduce_window`` max."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    rng = np.random.default_rng(0)
    out = {}
    for shape, wshape in (((64, 28, 28, 1), (5, 5, 1, 12)), ((64, 12, 12, 12), (5, 5, 12, 64))):
        x = jnp.asarray((rng.random(shape) < 0.3).astype(np.float32))
        w = jnp.asarray(rng.standard_normal(wshape).astype(np.float32) / 5)
        y = lax.conv_general_dilated(
            x,
            w,
            (1, 1),
            "VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=lax.Precision.HIGHEST,
        )
        want = np.asarray(
            lax.reduce_window(y, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        )
        got = {
            "nhwc_im2col": jax.jit(conv_pool_im2col)(x, w),
            "nhwc_s2d": jax.jit(conv_pool_s2d_nhwc)(x, w),
            "chwn_s2d": jnp.transpose(
                jax.jit(conv_pool_s2d_chwn)(jnp.transpose(x, (3, 1, 2, 0)), w), (3, 1, 2, 0)
            ),
        }
        for name, v in got.items():
            err = float(np.abs(np.asarray(v) - want).max() / np.abs(want).max())
            out[name] = max(out.get(name, 0.0), err)
    return out


# ---- runners: one timed implementation each -------------------------------------------------


@dataclasses.dataclass
class Runner:
    """A compiled step with its state and batches; ``run(n)`` times n steps (steps/s)."""

    name: str
    call: Callable[[Any, Any], tuple[Any, Any]]  # (state, host_batch) -> (state, out)
    state: Any
    host: list[dict[str, np.ndarray]]
    compile_s: float = 0.0  # 0: set by warm() (the first call compiles)
    rates: list[float] = dataclasses.field(default_factory=list)
    memory: Any = None

    def warm(self) -> None:
        import jax

        t = time.perf_counter()
        self.state, out = self.call(self.state, self.host[0])
        jax.block_until_ready(out)
        self.compile_s = self.compile_s or time.perf_counter() - t

    def run(self, n: int) -> float:
        import jax

        t = time.perf_counter()
        out = None
        for i in range(n):
            self.state, out = self.call(self.state, self.host[i % len(self.host)])
            if i % MAX_IN_FLIGHT == MAX_IN_FLIGHT - 1:
                jax.block_until_ready(out)
        jax.block_until_ready((self.state, out))
        rate = n / (time.perf_counter() - t)
        self.rates.append(rate)
        return rate

    @property
    def best(self) -> float:
        return max(self.rates)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from snntrain.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def snntrain_runner(
    overrides: list[str], name: str = "snntrain", n_batches: int = 8, aot: bool = False
):
    """(Runner, Experiment) for the real code path: config -> build -> compiled train step.

    ``aot``: compile ahead of time (``lower().compile()``, timed as ``compile_s``) and keep
    the compiled step's ``memory_analysis()`` as ``runner.memory``.
    """
    import jax

    from snntrain import data, train

    exp = train.build(compose(overrides))
    dp = exp.parallel
    fn = dp.compile(train.make_train_step(exp))
    state = dp.replicate(exp.init_state())
    host = []
    for batch in data.batches(exp.data.train, exp.batch_size, rows=dp.local_rows):
        host.append(batch)
        if len(host) == n_batches:
            break
    key, surrogate = jax.random.PRNGKey(0), exp.surrogate
    compile_s, memory = 0.0, None
    if aot:
        t = time.perf_counter()
        fn = fn.lower(state, dp.put_batch(host[0]), key, surrogate).compile()
        compile_s, memory = time.perf_counter() - t, fn.memory_analysis()

    def call(state, batch):
        return fn(state, dp.put_batch(batch), key, surrogate)

    runner = Runner(name, call, state, host, compile_s)
    runner.memory = memory
    return runner, exp


def reference_runner(loss_and_params, host: list[dict[str, np.ndarray]], name: str = "reference"):
    import jax

    step, state, _ = _make_step(*loss_and_params)
    key = jax.random.PRNGKey(0)
    device = jax.devices()[0]

    def call(state, batch):
        return step(state, jax.device_put({"x": batch["x"], "y": batch["y"]}, device), key)

    return Runner(name, call, state, host)


def alternate(runners: list[Runner], steps: int, rounds: int) -> None:
    """Warm (compile) every runner, then time them in alternating rounds."""
    for r in runners:
        r.warm()
    for _ in range(rounds):
        for r in runners:
            r.run(steps)


# ---- workloads ----------------------------------------------------------------------------


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
    }


# ---- memory: T, remat, dtype ----------------------------------------------------------------

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


# ---- devices: 1 vs N virtual CPU devices (subprocess) ---------------------------------------


def devices_section(n: int, npz: Path, steps: int) -> dict[str, Any]:
    """Re-run this script with ``--xla_force_host_platform_device_count=n`` set before JAX
    starts (appended to any XLA_FLAGS already set; nothing is unset)."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}"
    ).strip()
    cmd = [
        sys.executable,
        __file__,
        "--_devices-child",
        str(n),
        "--_npz",
        str(npz),
        "--_steps",
        str(steps),
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {res.returncode}: " + " | ".join(tail)}
    return json.loads(res.stdout.strip().splitlines()[-1])


def devices_child(n: int, npz: Path, steps: int) -> dict[str, Any]:
    import jax

    have = jax.local_device_count()
    out: dict[str, Any] = {"devices_available": have, "platform": jax.devices()[0].platform}
    if have < n:
        out["note"] = f"only {have} device(s) on {out['platform']}; 1-vs-{n} not measured"
        return out
    ws = workloads(npz)
    for name in ("mlp", "conv"):
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


# ---- whole-epoch scan vs per-step dispatch (digits) -----------------------------------------


def fused_epoch_section(epochs: int) -> dict[str, Any]:
    """Digits MLP: one epoch as one jitted ``lax.scan`` over its steps (dataset on device)
    vs one dispatch per step, for the hand-written reference and for snntrain's
    ``trainer.fused_epoch`` (``train.make_epoch_fn``)."""
    import jax
    import jax.numpy as jnp

    from snntrain import data, train

    exp = train.build(compose(["logger=none", "trainer.progress=false"]))
    B, spe = exp.batch_size, exp.steps_per_epoch
    x_N = np.asarray(data.to_unit(exp.data.train.x), np.float32)
    y_N = np.asarray(exp.data.train.y, np.int32)
    plans = [train.epoch_plan(len(y_N), B, 0, e, 0) for e in range(epochs + 1)]
    host_epochs = [[{"x": x_N[o], "y": y_N[o]} for o in order] for order, _ in plans]
    x_dev, y_dev = jax.device_put(x_N), jax.device_put(y_N)
    key = jax.random.PRNGKey(0)
    out: dict[str, Any] = {"steps_per_epoch": spe, "batch_size": B}

    # reference: per-step dispatch vs the same step scanned over an epoch
    loss_fn, params = reference_mlp([64, 256, 10])
    step, state0, raw_step = _make_step(loss_fn, params)

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
    if hasattr(train, "make_epoch_fn"):
        dp = exp.parallel
        step_fn = dp.compile(train.make_train_step(exp))
        epoch_fn = jax.jit(
            train.make_epoch_fn(exp, train.make_train_step(exp)), donate_argnums=(0,)
        )
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


# ---- experiments ----------------------------------------------------------------------------


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


def hugepage_section(names: list[str]) -> dict[str, Any]:
    """Re-run the workloads in a subprocess *without* glibc's huge-page malloc (which the
    snntrain CLI and this script turn on: :mod:`snntrain.hostenv`), to report its gain."""
    if TUNABLE not in os.environ.get("GLIBC_TUNABLES", ""):
        return {"note": "huge pages are off in this run (--no-hugepages or unavailable)"}
    env = dict(os.environ)
    env[ENV_SWITCH] = "0"
    env["GLIBC_TUNABLES"] = ":".join(
        t for t in env["GLIBC_TUNABLES"].split(":") if not t.startswith(TUNABLE)
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "no_hp.json"
        cmd = [sys.executable, __file__, "--sections", "workloads", "--workloads"]
        cmd += [",".join(names), "--json", str(path), "--_steps-scale", "0.5", "--no-hugepages"]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode != 0 or not path.exists():
            return {"error": (res.stderr or res.stdout).strip().splitlines()[-1:]}
        got = json.loads(path.read_text())["workloads"]
    return {
        name: {"steps_per_s": v["steps_per_s"], "ref_steps_per_s": v["ref_steps_per_s"]}
        for name, v in got.items()
    }


# ---- main ---------------------------------------------------------------------------------


def _row(name: str, r: dict[str, Any]) -> str:
    return (
        f"{name:8} {r['steps_per_s']:9.2f} {r['samples_per_s']:10.0f} "
        f"{r['flop_per_step'] / 1e9:8.2f} {r['frac_peak']:9.3f} {r['ref_steps_per_s']:9.2f} "
        f"{r['ref_frac_peak']:8.3f} {r['ratio_vs_ref']:8.2f} {r['compile_s']:8.2f} "
        f"{r['ref_compile_s']:8.2f} {r['peak_rss_mb']:7.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="the three workloads with few steps, no other section (< 1 minute)",
    )
    ap.add_argument("--json", type=Path, help="write the results to this file")
    ap.add_argument("--workloads", default="mlp,conv,digits", help="comma-separated subset")
    ap.add_argument(
        "--devices",
        type=int,
        default=4,
        help="virtual CPU devices for the 1-vs-N section (0: skip)",
    )
    ap.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (--quick: workloads)",
    )
    ap.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Hydra override for every snntrain run, e.g. model.conv_method=lax (repeat)",
    )
    ap.add_argument(
        "--no-hugepages",
        action="store_true",
        help="keep glibc's default malloc (the CLI's switch: SNNTRAIN_HUGEPAGES=0)",
    )
    ap.add_argument("--_devices-child", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--_npz", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_steps", type=int, default=40, help=argparse.SUPPRESS)
    ap.add_argument("--_steps-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.no_hugepages:
        reexec_with_hugepages()  # as the snntrain CLI does; both implementations get it

    if args._devices_child:
        print(json.dumps(devices_child(args._devices_child, args._npz, args._steps)))
        return 0

    names = [n for n in args.workloads.split(",") if n]
    sections = {"workloads"} if args.quick else set(args.sections.split(","))
    info = machine_info()
    gemm = cpu_gemm = gemm_gflops()
    device_gemm = None
    if info["platform"] != "cpu":  # the roofline is the accelerator's, not numpy's
        gemm = device_gemm = device_gemm_gflops()
    print(
        f"machine: {info['cpu']}, {info['cpu_count']} cores; JAX {info['jax']} on "
        f"{info['devices']} {info['platform']} device(s) ({info['device_kind']})"
    )
    for k, v in info["env"].items():
        print(
            f"note: {k}={v}" + ("  (affects numpy's GEMM peak)" if k == "OPENBLAS_CORETYPE" else "")
        )
    print(f"float32 GEMM peak (numpy 2048^3, best of 5): {cpu_gemm:.1f} GFLOP/s")
    if device_gemm:
        print(
            f"float32 GEMM on {info['device_kind']} (jnp 4096^3): {device_gemm:.1f} GFLOP/s "
            "(frac_peak uses this; default matmul precision)"
        )
    print()
    results: dict[str, Any] = {
        "gemm_gflops": gemm,
        "cpu_gemm_gflops": cpu_gemm,
        "machine": info,
        "workloads": {},
    }

    rounds = 2 if args.quick else 3
    scale = (0.25 if args.quick else 1.0) * args._steps_scale
    with tempfile.TemporaryDirectory() as tmp:
        npz = synthetic_npz(Path(tmp) / "mnist_like.npz")
        ws = workloads(npz, args.override)
        unknown = [n for n in names if n not in ws]
        if unknown:
            raise SystemExit(f"unknown workload(s) {unknown}; valid: {', '.join(ws)}")
        print(
            f"{'workload':8} {'steps/s':>9} {'samples/s':>10} {'GFLOP':>8} {'frac_peak':>9} "
            f"{'ref st/s':>9} {'ref frac':>8} {'ours/ref':>8} {'compile':>8} {'ref comp':>8} "
            f"{'RSS MB':>7}"
        )
        for name in names if "workloads" in sections else []:
            r = run_workload(ws[name], max(2, int(ws[name].steps * scale)), rounds, gemm)
            results["workloads"][name] = r
            print(_row(name, r), flush=True)
        print("(best of alternating rounds; compile = first call; RSS = process-wide peak)")

        if "memory" in sections:
            print(
                "\nper-step temporary memory of the compiled snntrain step "
                "(memory_analysis, not process-wide):"
            )
            mem = memory_section(ws, [n for n in ("mlp", "conv") if n in names], 20)
            results["memory"] = mem
            print(f"{'config':20} {'temp MiB':>9} {'steps/s':>8} {'compile s':>9}")
            for k, v in mem.items():
                if isinstance(v, dict):
                    print(
                        f"{k:20} {v['temp_mib']:9.1f} {v['steps_per_s']:8.2f} {v['compile_s']:9.2f}"
                    )
            print(
                "T=100 remat / T=25 temp memory: "
                + ", ".join(
                    f"{k.split('/')[0]}{'/bf16' if k.endswith('bf16') else ''} {v:.2f}"
                    for k, v in mem.items()
                    if "_vs_" in k
                )
            )

        if "devices" in sections and args.devices > 1:
            dev = devices_section(args.devices, npz, 40)
            results["devices"] = dev
            print(
                f"\n1 vs {args.devices} virtual devices (steps/s, subprocess): "
                + ", ".join(
                    f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in dev.items()
                )
            )

        if "fused" in sections and "digits" in names:
            fe = fused_epoch_section(epochs=8)
            results["fused_epoch"] = fe
            print(
                "\nwhole-epoch lax.scan vs per-step dispatch, digits MLP (steps/s): "
                f"reference {fe['ref_per_step_steps_per_s']:.0f} -> "
                f"{fe['ref_fused_steps_per_s']:.0f} ({fe['ref_fused_gain']:.2f}x)"
                + (
                    f"; snntrain {fe['snntrain_per_step_steps_per_s']:.0f} -> "
                    f"{fe['snntrain_fused_steps_per_s']:.0f} "
                    f"({fe['snntrain_fused_gain']:.2f}x)"
                    if "snntrain_fused_gain" in fe
                    else ""
                )
            )

        if "experiments" in sections and "conv" in names:
            exps: dict[str, Any] = {}
            exps["conv_formulations"] = cf = conv_formulations_section(ws["conv"], 6, 3, gemm)
            print(
                "\nCONV formulations (steps/s, frac of peak; alternating rounds): "
                + ", ".join(
                    f"{k} {v['steps_per_s']:.2f} ({v['frac_peak']:.3f})"
                    for k, v in cf.items()
                    if "steps_per_s" in v
                )
            )
            print(
                "  max relative error of conv+pool vs lax.conv+reduce_window: "
                + ", ".join(f"{k} {v:.1e}" for k, v in cf["max_rel_error_vs_lax_conv"].items())
            )
            exps["conv_direct"] = d = direct_section(ws["conv"], 6, 2, gemm)
            print(
                f"CONV encoder=direct (first conv once per example): "
                f"{d['direct_steps_per_s']:.2f} vs rate {d['rate_steps_per_s']:.2f} steps/s "
                f"({d['direct_vs_rate']:.2f}x; {d['direct_flop_per_step'] / 1e9:.2f} GFLOP/step"
                f", frac {d['direct_frac_peak']:.3f})"
            )
            exps["hugepages"] = hp = hugepage_section(names)
            for k, v in hp.items():  # gain = with huge pages (this run) / without (subprocess)
                if isinstance(v, dict) and k in results["workloads"]:
                    v["gain"] = results["workloads"][k]["steps_per_s"] / v["steps_per_s"]
                    v["ref_gain"] = (
                        results["workloads"][k]["ref_steps_per_s"] / v["ref_steps_per_s"]
                    )
            print(
                "without huge-page malloc (subprocess; gain = this run / that): "
                + ", ".join(
                    f"{k} {v['steps_per_s']:.2f} ({v.get('gain', float('nan')):.2f}x; reference "
                    f"{v['ref_steps_per_s']:.2f}, {v.get('ref_gain', float('nan')):.2f}x)"
                    if isinstance(v, dict)
                    else f"{k}: {v}"
                    for k, v in hp.items()
                )
            )
            results["experiments"] = exps

    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
