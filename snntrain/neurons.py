"""Spiking neurons: one contract, one time loop.

Time convention (used everywhere in snntrain): arrays inside a model are **time-major**,
``x_TxBx...``. A neuron is a small frozen dataclass with

* ``init_state(shape, dtype) -> state`` (a dict of arrays, one entry per state variable), and
* ``step(state, i_t, spike_fn, p) -> (state, s_t)``: one Euler step driven by the input current
  ``i_t`` (already through the synapse), returning the new state and the spikes ``s_t``.

``p`` holds the neuron's (possibly learnable) per-neuron parameters, e.g. ``{"beta": ...,
"threshold": ...}``; models own those as Flax parameters and pass them in, so the neuron itself
holds only static configuration. :func:`run` is the single ``lax.scan`` that every model uses to
unroll a neuron over time. Layers apply their synaptic operation to all ``T*B`` rows at once and
scan only this cheap recurrence ("layer-batched time").

The step order is charge → fire → reset (as in SpikingJelly's multi-step neurons)::

    v_t  = beta * v_{t-1} + i_t            # charge (beta = exp(-dt/tau): the decay *factor*)
    s_t  = H(v_t - theta)                   # fire, H = Heaviside with a surrogate derivative
    v_t <- v_t - s_t * theta                # reset "subtract"  (or v_t * (1 - s_t) for "zero")

Note on ``beta``: in snntrain ``beta`` is always the per-step decay factor of the membrane
(snnTorch's meaning), never ``dt/tau``; ``tau`` configs are converted with ``beta = exp(-dt/tau)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax import lax

from snntrain.registry import build

Array = jax.Array
State = dict[str, Array]
SpikeFn = Callable[[Array], Array]

RESETS = ("subtract", "zero", "none")


def _check_reset(owner: str, reset: str) -> None:
    if reset not in RESETS:
        raise ValueError(f"{owner}: reset must be one of {RESETS}, got {reset!r}")


def _reset(v: Array, s: Array, threshold: Array, mode: str, detach: bool) -> Array:
    """Apply the reset after a spike: subtract the threshold, set to zero, or nothing."""
    if detach:
        s = lax.stop_gradient(s)
    if mode == "subtract":
        return v - s * threshold
    if mode == "zero":
        return v * (1.0 - s)
    return v


@dataclasses.dataclass(frozen=True)
class LIF:
    """Leaky integrate-and-fire neuron.

    ``v_t = beta * v_{t-1} + i_t``; ``s_t = H(v_t - threshold)``; then reset by subtraction
    (``v_t - s_t * threshold``), to zero (``v_t * (1 - s_t)``) or not at all. With
    ``detach_reset`` the reset term does not carry gradient (SpikingJelly's ``detach_reset``).

    References:
      Gerstner et al., *Neuronal Dynamics*, 2014, ch. 1; Neftci, Mostafa & Zenke,
      "Surrogate gradient learning in spiking neural networks", IEEE SPM 2019.
    """

    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    detach_reset: bool = False

    kind: ClassVar[str] = "lif"

    def __post_init__(self):
        if not 0.0 < float(self.beta) <= 1.0:
            raise ValueError(f"LIF: beta must be in (0, 1], got {self.beta}")
        if not float(self.threshold) > 0.0:
            raise ValueError(f"LIF: threshold must be > 0, got {self.threshold}")
        _check_reset("LIF", self.reset)

    def default_params(self) -> dict[str, float]:
        """Per-neuron parameters a model may make learnable."""
        return {"beta": self.beta, "threshold": self.threshold}

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> State:
        return {"v": jnp.zeros(shape, dtype)}

    def step(self, state: State, i_t: Array, spike_fn: SpikeFn, p: dict) -> tuple[State, Array]:
        beta, theta = p["beta"], p["threshold"]
        v = beta * state["v"] + i_t
        s = spike_fn(v - theta)
        v = _reset(v, s, theta, self.reset, self.detach_reset)
        return {"v": v}, s


def run(
    neuron: Any,
    p: dict,
    i_TxBxN: Array,
    spike_fn: SpikeFn,
    *,
    recurrent: Callable[[Array], Array] | None = None,
    remat: bool = False,
) -> Array:
    """Unroll ``neuron`` over the leading (time) axis with one ``lax.scan``.

    Args:
      neuron: an object following the neuron contract (``init_state`` / ``step``).
      p: per-neuron parameters passed to every ``step``.
      i_TxBxN: input current, time-major.
      spike_fn: the spike nonlinearity (a surrogate instance).
      recurrent: optional ``s_{t-1} -> extra current`` added before each step (RLIF).
      remat: rematerialise each step in the backward pass (``jax.checkpoint``), so the scan
        keeps only the carried state per step instead of every intermediate.

    Returns:
      spikes_TxBxN with the dtype of ``i_TxBxN``.
    """
    shape, dtype = i_TxBxN.shape[1:], i_TxBxN.dtype
    state0 = neuron.init_state(shape, dtype)

    def body(carry, i_t):
        state, s_prev = carry
        if recurrent is not None:
            i_t = i_t + recurrent(s_prev)
        state, s_t = neuron.step(state, i_t, spike_fn, p)
        return (state, s_t.astype(dtype)), s_t.astype(dtype)

    if remat:
        body = jax.checkpoint(body)
    _, spikes_TxBxN = lax.scan(body, (state0, jnp.zeros(shape, dtype)), i_TxBxN)
    return spikes_TxBxN


def leaky_integrate(i_TxBxN: Array, beta: Array | float) -> Array:
    """Membrane trace of a non-spiking leaky integrator, ``v_t = beta * v_{t-1} + i_t``.

    Computed as one matmul with the causal kernel ``K[t, k] = beta**(t-k)`` for ``k <= t``
    (else 0), which is exact and cheaper than a scan for the short ``T`` of SNN training.
    """
    T = i_TxBxN.shape[0]
    t = jnp.arange(T)
    lag_TxT = t[:, None] - t[None, :]
    beta = jnp.asarray(beta, i_TxBxN.dtype)
    kernel_TxT = jnp.where(lag_TxT >= 0, beta ** jnp.maximum(lag_TxT, 0), 0).astype(i_TxBxN.dtype)
    return jnp.einsum("tk,k...->t...", kernel_TxT, i_TxBxN)


NEURONS: dict[str, type] = {"lif": LIF}


def get(kind: str, **params: Any) -> Any:
    """Build a neuron by config name, e.g. ``get("lif")``."""
    return build(NEURONS, kind, params, "neuron")
