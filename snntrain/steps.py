"""Pure step functions: ``train_step(state, batch, key, surrogate)`` and friends.

Each builder takes what it needs from a built :class:`snntrain.experiment.Experiment` and
returns a pure function ``step(..., *, axis_name=None)``; :mod:`snntrain.parallel` compiles the
same function for one device, a device mesh, or pmap (``axis_name`` names the axis whose shards
are ``psum``-reduced).

Randomness is explicit: the key of training step ``s`` is ``fold_in(key, s)`` and each example
draws from ``fold_in(step_key, example_index)`` (:func:`snntrain.encoding.example_keys`), so a
run is a pure function of its config and seed.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import nnx

from snntrain import encoding, synops
from snntrain import parallel as par
from snntrain.losses import Sums, batch_sums


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training (the data position is derived from ``step``)."""

    step: jax.Array
    params: Any
    opt_state: Any


def make_forward(exp):
    """``forward(params, batch, key, surrogate) -> (logits_BxC float32, aux)``."""
    graphdef, rest, encoder, dtype = exp.graphdef, exp.rest, exp.encoder, exp.dtype
    T, remat = exp.T, exp.remat

    def forward(params, batch, key, surrogate):
        if dtype != jnp.float32:  # compute in bf16, keep float32 master parameters
            params = jax.tree.map(lambda p: p.astype(dtype), params)
        model = nnx.merge(graphdef, params, rest)
        keys_B = encoding.example_keys(key, batch["index"])
        # (encoded from the float32 pixels, then cast: bfloat16 pixels moved the rate code's
        # probabilities by up to 1/343, not 1/512, and some latency spikes by a step)
        x_Bx = batch["x"]
        if hasattr(encoder, "steps"):  # drawn by the model (each remat block its own steps),
            x_TxBx = encoding.Encoded(encoder, x_Bx, keys_B, T)  # which knows the code
        else:
            x_TxBx = encoder(x_Bx, keys_B, T)
        x_TxBx = encoding.cast(x_TxBx, dtype)
        logits_BxC, aux = model(x_TxBx, surrogate, remat)
        return logits_BxC.astype(jnp.float32), aux

    return forward


def _global_mean(part: jax.Array, axis_name: str | None) -> jax.Array:
    """The sum of every shard's ``part`` as a value, with this shard's own gradient only.

    A penalty of the global mean (``loss.rate_reg``) differentiated through ``psum`` gave each
    shard the whole batch's gradient, and the ``psum`` of the gradients then counted it once
    per device (2 devices: twice the one-device gradient). With the other shards' parts held
    constant, the summed shard gradients are the global mean's: ``g'(r) * sum_s dr_s``.
    """
    if axis_name is None:
        return part
    fixed = jax.lax.stop_gradient(part)
    return par.psum(fixed, axis_name) + (part - fixed)


def make_train_step(exp):
    """The training step: masked mean cross-entropy over the *global* batch, one optax update.

    Each shard divides its loss sum by the global example count and the gradients are summed
    (``psum``), which equals the gradient of the global mean. A step whose loss or gradient is
    not finite leaves parameters and optimizer state unchanged and reports ``finite = False``
    (the divergence policy on the host decides whether to stop).
    """
    forward, tx, reg = make_forward(exp), exp.tx, exp.rate_reg

    def train_step(state: TrainState, batch, key, surrogate, *, axis_name=None):
        step_key = jax.random.fold_in(key, state.step)
        count = jnp.maximum(par.psum(batch["mask"].sum(), axis_name), 1.0)

        def loss_fn(params):
            logits_BxC, aux = forward(params, batch, step_key, surrogate)
            sums = batch_sums(logits_BxC, aux, batch)
            loss = sums["loss"] / count
            if reg.weight:
                loss = loss + reg({k: _global_mean(sums[f"rate/{k}"] / count, axis_name)
                                   for k in aux["rates"]})
            return loss, sums

        grads, sums = jax.grad(loss_fn, has_aux=True)(state.params)
        grads, sums = par.psum(grads, axis_name), par.psum(sums, axis_name)
        grad_norm = optax.tree.norm(grads)
        loss = sums["loss"] / count
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
        new_state = TrainState(state.step + 1, keep(params, state.params),
                               keep(opt_state, state.opt_state))
        metrics = {"loss": loss, "accuracy": sums["correct"] / count, "grad_norm": grad_norm,
                   "finite": finite, "count": count}
        metrics.update({k: v / count for k, v in sums.items() if k.startswith("rate/")})
        for name, g in grads.items():
            metrics[f"grad_norm/{name}"] = optax.tree.norm(g)
        return new_state, metrics

    return train_step


def make_epoch_fn(train_step):
    """(The rest of) an epoch in one ``lax.scan`` with the dataset on device.

    ``epoch_fn(state, x_Nx, y_N, idx_SxB, mask_SxB, key, surrogate)`` gathers each batch by
    index from the device-resident arrays, exactly as :func:`snntrain.data.batches` would from
    the same :func:`snntrain.data.batch_plan`, and returns the new state and the per-step
    metrics stacked along a leading ``S`` axis (``trainer.fused_epoch``).
    """

    def epoch_fn(state, x_Nx, y_N, idx_SxB, mask_SxB, key, surrogate, *, axis_name=None):
        index_B = jnp.arange(idx_SxB.shape[1], dtype=jnp.int32)

        def body(state, inputs):
            idx_B, mask_B = inputs
            batch = {"x": x_Nx[idx_B], "y": y_N[idx_B], "mask": mask_B, "index": index_B}
            return train_step(state, batch, key, surrogate, axis_name=axis_name)

        return jax.lax.scan(body, state, (idx_SxB, mask_SxB))

    return epoch_fn


def make_eval_step(exp):
    """``eval_step(params, batch, key, surrogate) -> sums``: loss, correct, count, rates and,
    unless ``metrics.synops=false``, the cost counts of :func:`snntrain.synops.eval_sums`
    (from the same forward pass), as one :class:`snntrain.losses.Sums` (a read-only dict
    packed into one array)."""
    forward, synapses = make_forward(exp), exp.synapses

    def eval_step(params, batch, key, surrogate, *, axis_name=None):
        logits_BxC, aux = forward(params, batch, key, surrogate)
        sums = batch_sums(logits_BxC, aux, batch)
        if synapses is not None:
            sums.update(synops.eval_sums(aux, batch["mask"], synapses))
        return par.psum(Sums.pack(sums), axis_name)

    return eval_step
