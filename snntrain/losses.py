"""The training objective and its masked batch sums.

Every quantity is a *sum* over the batch with padding rows masked out (``mask_B == 0``), so a
data-parallel step can ``psum`` the sums of its shards and divide by the global example count:

* cross-entropy ``sum_b mask_b * CE(logits_b, y_b)``, correct predictions, the example count;
* per spiking layer, the firing rate ``rate/<layer>`` (fraction of neuron-steps that spiked);
* the firing-rate regulariser ``weight * mean_l (rate_l - target)^2`` (``loss.rate_reg``), a
  penalty on the global-batch rate of each spiking layer (e.g. Zenke & Vogels 2021).

:class:`Sums` carries a step's named sums out of ``jit`` as one array.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

import jax
import jax.numpy as jnp
import optax


@dataclasses.dataclass(frozen=True)
class RateRegularizer:
    """``weight * mean_l (rate_l - target)^2`` over the spiking layers (``loss.rate_reg``)."""

    weight: float = 0.0
    target: float = 0.0

    def __call__(self, rates: dict[str, jax.Array]) -> jax.Array:
        if not self.weight or not rates:
            return jnp.zeros((), jnp.float32)
        penalty = sum((r - self.target) ** 2 for r in rates.values())
        return self.weight * penalty / len(rates)


def batch_sums(logits_BxC: jax.Array, aux: dict, batch: dict) -> dict[str, jax.Array]:
    """Masked sums over the batch: ``loss``, ``correct``, ``count`` and ``rate/<layer>``."""
    mask_B = batch["mask"]
    ce_B = optax.softmax_cross_entropy_with_integer_labels(logits_BxC, batch["y"])
    correct_B = (jnp.argmax(logits_BxC, -1) == batch["y"]).astype(jnp.float32)
    per_example = {"loss": ce_B, "correct": correct_B, "count": jnp.ones_like(mask_B),
                   **{f"rate/{name}": rate_B for name, rate_B in aux["rates"].items()}}
    # one stacked product (a matrix-vector dot, like synops.eval_sums): one fixed summation
    # order, so a population member's sums equal its solo run's whatever XLA fuses around them
    sums_K = jnp.stack([v.astype(jnp.float32) for v in per_example.values()]) @ mask_B
    return {name: sums_K[i] for i, name in enumerate(per_example)}


@jax.tree_util.register_pytree_node_class
class Sums(Mapping):
    """Named float32 sums packed along the last axis of one array: read like a dict
    (``sums["loss"]``, ``.items()``), but a jitted step returns one buffer instead of one per
    name (each output costs XLA:CPU a slice and the runtime a buffer: the evaluation step
    with the cost metrics returns ~20 of them). A pytree whose names are static, so ``psum``,
    ``vmap`` (members on leading axes) and ``jax.device_get`` act on the one array."""

    def __init__(self, names: tuple[str, ...], values: jax.Array):
        self.names, self.values = tuple(names), values
        self._index = {k: i for i, k in enumerate(self.names)}

    @classmethod
    def pack(cls, sums: Mapping[str, jax.Array]) -> Sums:
        names = tuple(sums)
        return cls(names, jnp.stack([jnp.asarray(sums[k], jnp.float32) for k in names], -1))

    def __getitem__(self, name: str) -> jax.Array:
        return self.values[..., self._index[name]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def tree_flatten(self):
        return (self.values,), self.names

    @classmethod
    def tree_unflatten(cls, names, children) -> Sums:
        return cls(names, children[0])
