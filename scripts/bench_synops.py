"""How much the synaptic-operation counts slow the evaluation step down.

Times one jitted evaluation step (rate encoding, forward pass, masked loss/accuracy/rate sums,
as the trainer's ``eval_step``) with and without :func:`snntrain.synops.eval_sums`, on the
default MLP and the default conv model at digits size (8x8x1, 10 classes), and prints the ratio.

    python scripts/bench_synops.py [--batch 256] [--T 25] [--reps 20]

``measure(...)`` returns the numbers for ``scripts/bench.py`` to call.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from snntrain import encoding, models, surrogates, synops

MODELS = {
    "mlp": dict(hidden=[256]),
    "conv": dict(channels=[12, 64], kernel_size=5, pool=2, norm="layer"),
}


def _step(model: nnx.Module, T: int, with_synops: bool):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    surrogate, encoder = surrogates.FastSigmoid(), encoding.Rate()
    synapses = model.synapses()

    @jax.jit
    def eval_step(params, x_Bx, y_B, mask_B, key):
        m = nnx.merge(graphdef, params, rest)
        keys_B = encoding.example_keys(key, jnp.arange(x_Bx.shape[0]))
        logits, aux = m(encoder(x_Bx, keys_B, T), surrogate)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y_B)
        sums = {"loss": (ce * mask_B).sum(), "count": mask_B.sum(),
                "correct": ((logits.argmax(-1) == y_B) * mask_B).sum()}
        sums.update({f"rate/{k}": (r * mask_B).sum() for k, r in aux["rates"].items()})
        if with_synops:
            sums.update(synops.eval_sums(aux, mask_B, synapses))
        return sums

    return eval_step, params


def measure(name: str = "mlp", batch: int = 256, T: int = 25, reps: int = 20) -> dict[str, Any]:
    """Median seconds per evaluation step without and with the counts, and their ratio."""
    model = models.create(name, (8, 8, 1), 10, 0, **MODELS[name])
    x = jax.random.uniform(jax.random.PRNGKey(0), (batch, 8, 8, 1))
    y, mask = jnp.zeros((batch,), jnp.int32), jnp.ones((batch,))
    out: dict[str, Any] = {"model": name, "batch": batch, "T": T}
    steps = {k: _step(model, T, k == "with") for k in ("without", "with")}
    for f, p in steps.values():  # compile
        jax.block_until_ready(f(p, x, y, mask, jax.random.PRNGKey(0)))
    times: dict[str, list[float]] = {k: [] for k in steps}
    for r in range(reps):  # interleaved, so a busy machine slows both alike
        for k, (f, p) in steps.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(p, x, y, mask, jax.random.PRNGKey(r)))
            times[k].append(time.perf_counter() - t0)
    for k, ts in times.items():
        out[f"{k}_s"] = statistics.median(ts)
    out["ratio"] = out["with_s"] / out["without_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--T", type=int, default=25)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--models", default="mlp,conv")
    a = ap.parse_args()
    for name in a.models.split(","):
        r = measure(name, a.batch, a.T, a.reps)
        print(f"{name:5s} B={r['batch']} T={r['T']}: {1e3 * r['without_s']:.2f} ms -> "
              f"{1e3 * r['with_s']:.2f} ms with synops (x{r['ratio']:.3f})", flush=True)


if __name__ == "__main__":
    main()
