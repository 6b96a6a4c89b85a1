"""Input encoders: static images ``x_BxD`` (values in [0, 1]) to time-major input ``x_TxBxD``.

Every encoder is ``encode(x_Bx..., key_B, T) -> x_TxBx...``. Randomness is drawn per example
from ``key_B`` (one key per example, derived from the step key and the example's position in
the global batch), so the spikes an example receives do not depend on how the batch is split
over devices.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from snntrain.registry import build

Array = jax.Array


def example_keys(key: Array, index_B: Array) -> Array:
    """One PRNG key per example: ``fold_in(key, index)`` for each global example index."""
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, index_B)


@dataclasses.dataclass(frozen=True)
class Rate:
    """Bernoulli rate coding: at each step an input spikes with probability ``gain * x``.

    ``P(s_t = 1) = clip(gain * x, 0, 1)`` independently for every step.

    References:
      Gerstner et al., *Neuronal Dynamics*, 2014, §7.2 (Poisson / Bernoulli rate codes).
    """

    gain: float = 1.0
    kind: ClassVar[str] = "rate"
    stochastic: ClassVar[bool] = True

    def __call__(self, x_BxD: Array, key_B: Array, T: int) -> Array:
        p_BxD = jnp.clip(self.gain * x_BxD, 0.0, 1.0)

        def one(key, p_D):
            return jax.random.bernoulli(key, p_D, (T,) + p_D.shape)

        s_BxTxD = jax.vmap(one)(key_B, p_BxD)
        return jnp.moveaxis(s_BxTxD, 1, 0).astype(x_BxD.dtype)


ENCODERS: dict[str, type] = {"rate": Rate}


def get(kind: str, **params: Any) -> Any:
    """Build a encoder by config name, e.g. ``get("rate")``."""
    return build(ENCODERS, kind, params, "encoder")
