"""Train the benchmark workloads in spyx and print steps/s as JSON lines (one per variant).

Run by ``scripts/bench_peers.py`` with snntrain's own Python (spyx is a JAX library, installed
by snntrain's ``interop`` extra); prints nothing when spyx is not installed.

The networks are written the way spyx's documentation and ``spyx.optimize`` write them: a
``spyx.nn.Sequential`` of Flax NNX layers and spyx neurons, run over time by ``spyx.nn.run``
(one ``lax.scan`` over the whole stack), ``LIF`` with the SuperSpike surrogate (spyx's default,
``1 / (1 + 25 |v|)^2``, the fast sigmoid of snntrain's default), a leaky ``LI`` readout, beta
0.9, threshold 1, cross-entropy on the readout's mean membrane, Optax Adam. Inputs are
**precomputed** spikes, as the PyTorch peers get. Workloads as ``scripts/peers/torch_peers.py``:
``mlp`` 784-128-10, T=25, B=128; ``mlp1024`` 784-1024-10; ``conv`` 12C5-MP2-64C5-MP2 (VALID
convolutions) on 28x28x1, T=25, B=64, channels-last as Flax's ``Conv``.

Two variants, both spyx's model: ``nnx.jit`` (``spyx.optimize.make_train_step``, the step
spyx's ``fit`` uses) and ``jax.jit`` of the same step on ``nnx.split`` state (no per-call graph
traversal); ``scripts/bench_peers.py`` keeps the faster as spyx's number.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

WORKLOADS = {
    "mlp": dict(kind="mlp", hidden=128, T=25, B=128),
    "mlp1024": dict(kind="mlp", hidden=1024, T=25, B=128),
    "conv": dict(kind="conv", T=25, B=64),
}
BETA, LR = 0.9, 1e-3


def model(w):
    import spyx
    from flax import nnx

    rngs = nnx.Rngs(0)
    act = spyx.axn.superspike(25.0)
    lif = functools.partial(spyx.nn.LIF, beta=BETA, threshold=1.0, activation=act, rngs=rngs)
    if w["kind"] == "mlp":
        h = w["hidden"]
        return spyx.nn.Sequential(
            nnx.Linear(784, h, rngs=rngs), lif((h,)),
            nnx.Linear(h, 10, rngs=rngs), spyx.nn.LI((10,), beta=BETA, rngs=rngs))
    pool = functools.partial(nnx.max_pool, window_shape=(2, 2), strides=(2, 2))
    return spyx.nn.Sequential(
        nnx.Conv(1, 12, (5, 5), padding="VALID", rngs=rngs), pool, lif((12, 12, 12)),
        nnx.Conv(12, 64, (5, 5), padding="VALID", rngs=rngs), pool, lif((4, 4, 64)),
        spyx.nn.Flatten(), nnx.Linear(64 * 4 * 4, 10, rngs=rngs),
        spyx.nn.LI((10,), beta=BETA, rngs=rngs))


def loss_fn(m, x_TxBx, y_B):
    import optax
    import spyx

    traces_TxBxC, _ = spyx.nn.run(m, x_TxBx)
    return optax.softmax_cross_entropy_with_integer_labels(traces_TxBxC.mean(0), y_B).mean()


def steps(w, variant: str):
    """A zero-argument training step returning its (asynchronous) loss, on fixed precomputed
    spikes."""
    import jax
    import numpy as np
    import optax
    import spyx
    from flax import nnx

    m = model(w)
    tx = optax.adam(LR)
    shape = (w["T"], w["B"], 784) if w["kind"] == "mlp" else (w["T"], w["B"], 28, 28, 1)
    rng = np.random.default_rng(0)
    x = jax.device_put((rng.random(shape) < 0.2).astype(np.float32))
    y = jax.device_put(rng.integers(0, 10, w["B"]).astype(np.int32))
    if variant == "nnx.jit":
        opt = nnx.Optimizer(m, tx, wrt=nnx.Param)
        train_step = spyx.optimize.make_train_step(loss_fn)
        return lambda: train_step(m, opt, x, y)

    graphdef, params, rest = nnx.split(m, nnx.Param, ...)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(
            lambda p: loss_fn(nnx.merge(graphdef, p, rest), x, y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    state = [params, tx.init(params)]

    def run():
        state[0], state[1], loss = step(state[0], state[1], x, y)
        return loss

    return run


def steps_per_s(run, seconds: float) -> float:
    """Steps/s with asynchronous dispatch, blocking every ``chunk`` steps (up to 10, as
    snntrain's runner; 1 for steps slower than 0.1 s), at least 2 chunks."""
    import jax

    for _ in range(3):  # compiles (twice for jax.jit: its outputs are committed arrays)
        jax.block_until_ready(run())
    t0 = time.perf_counter()
    jax.block_until_ready(run())
    chunk = max(1, min(10, int(0.1 / (time.perf_counter() - t0))))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 2 * chunk:
        for _ in range(chunk):
            loss = run()
        jax.block_until_ready(loss)
        n += chunk
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="mlp,conv")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--variants", default="nnx.jit,jax.jit")
    args = ap.parse_args()
    try:
        import spyx
    except ImportError:
        return
    for name in args.workloads.split(","):
        for variant in args.variants.split(","):
            sps = steps_per_s(steps(WORKLOADS[name], variant), args.seconds)
            print(json.dumps({"library": "spyx", "variant": variant, "workload": name,
                              "steps_per_s": sps, "spyx": spyx.__version__}), flush=True)


if __name__ == "__main__":
    main()
