"""Spiking neurons: one contract, one time loop.

Time convention (used everywhere in snntrain): arrays inside a model are **time-major**,
``x_TxBx...``. A neuron is a small frozen (hashable) dataclass holding static configuration, with

* ``default_params() -> dict``: its per-neuron parameters (``beta``, ``threshold``, ...), which a
  model may turn into learnable arrays (:class:`snntrain.models.SpikingNeurons`);
* ``init_state(shape, dtype) -> state``: a dict of arrays, one entry per state variable;
* ``step(state, i_t, spike_fn, p) -> (state, s_t)``: one Euler step driven by the input current
  ``i_t`` (already through the synapse), returning the new state and the spikes ``s_t``.

:func:`run` is the single ``lax.scan`` that every model uses to unroll a neuron over time.
Layers apply their synaptic operation to all ``T*B`` rows at once and scan only this cheap
recurrence ("layer-batched time").

The step order is charge → fire → reset (as in SpikingJelly's multi-step neurons)::

    v_t  = beta * v_{t-1} + i_t            # charge (beta = exp(-dt/tau): the decay *factor*)
    s_t  = H(v_t - theta_t)                 # fire, H = Heaviside with a surrogate derivative
    v_t <- v_t - s_t * theta_t              # reset "subtract"  (v_t * (1 - s_t) for "zero")

``spike_fn`` is the surrogate (exact Heaviside forward, smooth derivative backward); it is an
argument of every step, never stored in a neuron. ``detach_reset`` stops the gradient through
``s_t`` in the reset term only (SpikingJelly's ``detach_reset``); the spike output keeps its
surrogate gradient.

Note on ``beta``: in snntrain ``beta`` is always the per-step decay factor of the membrane
(snnTorch's meaning), never ``dt/tau`` (Norse's / SpikingJelly's ``1/tau``). Giving ``tau``
(with ``dt``, default 1) sets ``beta = exp(-dt/tau)`` and overrides ``beta``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax import lax

from snntrain.errors import ConfigError
from snntrain.registry import Registry, plain

Array = jax.Array
State = dict[str, Array]
SpikeFn = Callable[[Array], Array]

RESETS = ("subtract", "zero", "none")


def _check_reset(owner: str, reset: str, detach: Any = False) -> None:
    if reset not in RESETS:
        raise ValueError(f"{owner}: reset must be one of {RESETS}, got {reset!r}")
    if not isinstance(detach, bool):  # "false" is truthy: it detached
        raise ValueError(f"{owner}: detach_reset must be true or false, got {detach!r}")


def _check_numbers(neuron: Any, names: tuple[str, ...]) -> None:
    """Refuse a string or bool where a number belongs (``beta="0.9"`` would pass ``float()``
    checks and be kept as text)."""
    for name in names:
        v = getattr(neuron, name)
        if isinstance(v, (str, bool)):
            raise ValueError(f"{type(neuron).__name__}: {name} must be a number, got {v!r}")


def _decay(owner: str, name: str, value: float, tau: float | None, dt: float,
           tau_name: str = "tau") -> float:
    """``exp(-dt/tau)`` when ``tau`` is given, else ``value``; checked to lie in (0, 1]."""
    if tau is not None:
        if not (float(tau) > 0.0 and float(dt) > 0.0):
            raise ValueError(f"{owner}: {tau_name} and dt must be > 0, got {tau_name}={tau}, "
                             f"dt={dt}")
        value = math.exp(-float(dt) / float(tau))
        if value == 0.0:  # (it blamed the config's beta, which tau had replaced)
            raise ValueError(f"{owner}: {tau_name}={tau} with dt={dt} gives {name} = "
                             f"exp(-dt/{tau_name}) = 0 (below the smallest float): "
                             f"{tau_name} must be more than dt/745")
    if value is None:  # (beta: null is allowed when tau sets it)
        raise ValueError(f"{owner}: {name} must be a number in (0, 1] unless {tau_name} is set, "
                         "got None")
    if not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{owner}: {name} must be in (0, 1], got {value}")
    return float(value)


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
    (``v_t - s_t * threshold``), to zero (``v_t * (1 - s_t)``) or not at all (``none``).

    Args:
      beta: membrane decay factor per step, in (0, 1].
      tau, dt: if ``tau`` is given, ``beta = exp(-dt / tau)`` (overrides ``beta``).
      threshold: firing threshold (> 0).
      reset: ``subtract`` | ``zero`` | ``none``.
      detach_reset: no gradient through the spike in the reset term.

    References:
      Gerstner et al., *Neuronal Dynamics*, 2014, ch. 1; Neftci, Mostafa & Zenke,
      "Surrogate gradient learning in spiking neural networks", IEEE SPM 2019.
    """

    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    detach_reset: bool = False
    tau: float | None = None
    dt: float = 1.0

    name: ClassVar[str] = "lif"

    def __post_init__(self):
        _check_numbers(self, ("beta", "threshold", "tau", "dt"))
        _decay(type(self).__name__, "beta", self.beta, self.tau, self.dt)
        if not 0.0 < float(self.threshold) < math.inf:
            raise ValueError(f"{type(self).__name__}: threshold must be finite and > 0, got "
                             f"{self.threshold}")
        _check_reset(type(self).__name__, self.reset, self.detach_reset)

    @property
    def decay(self) -> float:
        """The effective ``beta`` (from ``tau`` and ``dt`` when ``tau`` is given)."""
        return _decay(type(self).__name__, "beta", self.beta, self.tau, self.dt)

    def default_params(self) -> dict[str, float]:
        """Per-neuron parameters a model may make learnable."""
        return {"beta": self.decay, "threshold": float(self.threshold)}

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> State:
        return {"v": jnp.zeros(shape, dtype)}

    def step(self, state: State, i_t: Array, spike_fn: SpikeFn, p: dict) -> tuple[State, Array]:
        theta = p["threshold"]
        v = p["beta"] * state["v"] + i_t
        s = spike_fn(v - theta)
        return {"v": _reset(v, s, theta, self.reset, self.detach_reset)}, s


@dataclasses.dataclass(frozen=True)
class IF:
    """Integrate-and-fire neuron: :class:`LIF` without leak (``beta = 1``).

    ``v_t = v_{t-1} + i_t``; ``s_t = H(v_t - threshold)``; reset as in :class:`LIF`. It has no
    ``beta`` parameter, so a model's ``learn_beta`` does not apply to it.

    References:
      Lapicque, 1907; Gerstner et al., *Neuronal Dynamics*, 2014, §1.3.
    """

    threshold: float = 1.0
    reset: str = "subtract"
    detach_reset: bool = False

    name: ClassVar[str] = "if"

    def __post_init__(self):
        _check_numbers(self, ("threshold",))
        if not 0.0 < float(self.threshold) < math.inf:
            raise ValueError(f"IF: threshold must be finite and > 0, got {self.threshold}")
        _check_reset("IF", self.reset, self.detach_reset)

    def default_params(self) -> dict[str, float]:
        return {"threshold": float(self.threshold)}

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> State:
        return {"v": jnp.zeros(shape, dtype)}

    def step(self, state: State, i_t: Array, spike_fn: SpikeFn, p: dict) -> tuple[State, Array]:
        theta = p["threshold"]
        v = state["v"] + i_t
        s = spike_fn(v - theta)
        return {"v": _reset(v, s, theta, self.reset, self.detach_reset)}, s


@dataclasses.dataclass(frozen=True)
class ALIF(LIF):
    """Adaptive LIF (the LSNN neuron): the threshold rises after each spike and decays back.

    With ``a_0 = 0`` and ``s_0 = 0``, step ``t = 1, 2, ...`` computes::

        a_t     = rho * a_{t-1} + s_{t-1}          # adaptation: the spike of the previous step
        theta_t = threshold + b * a_t              # adaptive threshold
        v_t     = beta * v_{t-1} + i_t
        s_t     = H(v_t - theta_t)
        v_t    <- v_t - s_t * theta_t              # (or zero / none; the reset uses theta_t)

    so a spike at step ``t`` raises the threshold by ``b`` from step ``t + 1`` on, decaying by
    ``rho = exp(-dt / tau_a)`` per step. The state stores ``a_{t+1} = rho * a_t + s_t`` (the
    value the next step uses), so ``step`` needs no extra spike variable. Bellec et al. write
    ``b_t = rho b_{t-1} + (1 - rho) s_{t-1}`` and ``theta_t = threshold + beta_a * b_t``; that is
    this neuron with ``b = beta_a * (1 - rho)``. The gradient flows through ``a`` (it is not
    detached); ``detach_reset`` affects the reset term only.

    Args:
      beta, tau, dt, threshold, reset, detach_reset: as in :class:`LIF`.
      rho: adaptation decay per step, in (0, 1].
      tau_a: if given, ``rho = exp(-dt / tau_a)`` (overrides ``rho``).
      b: threshold increment per spike (>= 0).

    References:
      Bellec, Salaj, Subramoney, Legenstein & Maass, "Long short-term memory and
      learning-to-learn in networks of spiking neurons", NeurIPS 2018.
    """

    rho: float = 0.95
    tau_a: float | None = None
    b: float = 0.2

    name: ClassVar[str] = "alif"

    def __post_init__(self):
        super().__post_init__()
        _check_numbers(self, ("rho", "tau_a", "b"))
        _decay("ALIF", "rho", self.rho, self.tau_a, self.dt, "tau_a")
        if not 0.0 <= float(self.b) < math.inf:
            raise ValueError(f"ALIF: b must be finite and >= 0, got {self.b}")

    def default_params(self) -> dict[str, float]:
        return {
            **super().default_params(),
            "rho": _decay("ALIF", "rho", self.rho, self.tau_a, self.dt, "tau_a"),
            "b": float(self.b),
        }

    def init_state(self, shape: tuple[int, ...], dtype: Any = jnp.float32) -> State:
        return {"v": jnp.zeros(shape, dtype), "a": jnp.zeros(shape, dtype)}

    def step(self, state: State, i_t: Array, spike_fn: SpikeFn, p: dict) -> tuple[State, Array]:
        a = state["a"]
        theta = p["threshold"] + p["b"] * a
        v = p["beta"] * state["v"] + i_t
        s = spike_fn(v - theta)
        v = _reset(v, s, theta, self.reset, self.detach_reset)
        return {"v": v, "a": p["rho"] * a + s}, s


def state_dtype(dtype: Any) -> Any:
    """The dtype of a neuron's state and parameters for inputs of ``dtype``: at least float32.

    In bfloat16 a decay factor rounds to a multiple of 2**-8 near 1 (beta = 0.99 to 0.98828,
    tau 100 to 85 steps; any beta > 0.998 to exactly 1, no leak), and so does the membrane at
    every step, so the recurrence runs in float32 whatever the compute dtype; the spikes (0 or
    1, exact) and the currents keep the compute dtype."""
    return jnp.promote_types(dtype, jnp.float32)


def init_carry(neuron: Any, shape: tuple[int, ...], dtype: Any, recurrent: bool = False) -> Any:
    """The state :func:`run` starts from: ``neuron.init_state`` in :func:`state_dtype` (plus
    zero previous spikes in ``dtype`` when the layer is recurrent)."""
    state = neuron.init_state(shape, state_dtype(dtype))
    return (state, jnp.zeros(shape, dtype)) if recurrent else state


def run(
    neuron: Any,
    p: dict,
    i_TxBxN: Array,
    spike_fn: SpikeFn,
    *,
    recurrent: Callable[[Array], Array] | None = None,
    remat: bool = False,
    carry: Any = None,
    return_carry: bool = False,
) -> Array | tuple[Array, Any]:
    """Unroll ``neuron`` over the leading (time) axis with one ``lax.scan``.

    Args:
      neuron: an object following the neuron contract (``init_state`` / ``step``).
      p: per-neuron parameters passed to every ``step`` (arrays broadcast against ``N``).
      i_TxBxN: input current, time-major; ``N`` may be several axes (e.g. ``HxWxC``).
      spike_fn: the spike nonlinearity (a surrogate instance).
      recurrent: optional ``s_{t-1} -> extra current`` added before each step (RLIF).
      remat: rematerialise each step in the backward pass (``jax.checkpoint`` on the scan
        body), so the scan keeps only the carried state per step instead of every
        intermediate; the gradients are the same.
      carry: the state to start from (default :func:`init_carry`, the resting state).
      return_carry: also return the final carry, to continue the run on the next time block.

    Returns:
      spikes_TxBxN with the dtype of ``i_TxBxN`` (and the final carry with ``return_carry``).
      The state and ``p`` are in :func:`state_dtype` (float32 for bfloat16 currents).
    """
    shape, dtype = i_TxBxN.shape[1:], i_TxBxN.dtype
    if carry is None:
        carry = init_carry(neuron, shape, dtype, recurrent is not None)
    p = {k: jnp.asarray(v, state_dtype(dtype)) if isinstance(v, jax.Array) else v
         for k, v in p.items()}  # (python floats stay weakly typed: the state's dtype)

    if recurrent is None:

        def body(state, i_t):
            state, s_t = neuron.step(state, i_t, spike_fn, p)
            return state, s_t.astype(dtype)
    else:  # carry the previous spikes, which feed back through ``recurrent``

        def body(carry, i_t):
            state, s_prev = carry
            state, s_t = neuron.step(state, i_t + recurrent(s_prev), spike_fn, p)
            s_t = s_t.astype(dtype)
            return (state, s_t), s_t

    carry, spikes_TxBxN = lax.scan(jax.checkpoint(body) if remat else body, carry, i_TxBxN)
    return (spikes_TxBxN, carry) if return_carry else spikes_TxBxN


def leaky_integrate(i_TxBxN: Array, beta: Array | float, v0: Array | None = None) -> Array:
    """Membrane trace of a non-spiking leaky integrator, ``v_t = beta * v_{t-1} + i_t``.

    Computed as one matmul with the causal kernel ``K[t, k] = beta**(t-k)`` for ``k <= t``
    (else exactly 0), which is exact and cheaper than a scan for the short ``T`` of SNN
    training. ``v0`` is the membrane before the first step (default 0): it adds
    ``beta**(t+1) * v0``. The kernel and the trace are in :func:`state_dtype` (in bfloat16 the
    decay's powers lost 2-8% of a slow membrane's trace, and the trace disagreed with the
    time-weighted logits of the same readout).
    """
    T = i_TxBxN.shape[0]
    dtype = state_dtype(i_TxBxN.dtype)
    t = jnp.arange(T)
    lag_TxT = t[:, None] - t[None, :]
    beta = jnp.asarray(beta, dtype)
    kernel_TxT = jnp.where(lag_TxT >= 0, beta ** jnp.maximum(lag_TxT, 0), 0).astype(dtype)
    v_TxBxN = jnp.einsum("tk,k...->t...", kernel_TxT, i_TxBxN.astype(dtype))
    if v0 is not None:
        decay_T = (beta ** (t + 1)).astype(dtype)
        v_TxBxN = v_TxBxN + decay_T.reshape((T,) + (1,) * v0.ndim) * v0
    return v_TxBxN


def nir_problems(cell: Any) -> list[str]:
    """Every reason the Neuromorphic Intermediate Representation cannot hold the neuron
    ``cell`` (:mod:`snntrain.nirgraph`), each with the option to change (all of them: an ALIF
    with a subtractive reset needs both ``model/neuron=lif`` and ``model.neuron.reset=zero``).
    Here, beside the neurons, so that the config check (``trainer.init_from``) needs no NIR
    code."""
    problems = []
    if isinstance(cell, ALIF):
        problems.append("ALIF's adaptive threshold has no NIR node; use model/neuron=lif")
    elif not isinstance(cell, (LIF, IF)):
        problems.append(f"neuron {type(cell).__name__} has no NIR node; use model/neuron=lif")
    reset = getattr(cell, "reset", "zero")
    if reset != "zero":
        problems.append(f"reset={reset} has no NIR equivalent (NIR's neurons reset to v_reset); "
                        "use model.neuron.reset=zero")
    return problems


NEURONS: Registry[Any] = Registry("neuron", {"lif": LIF, "if": IF, "alif": ALIF})


def get(name: str, **params: Any) -> Any:
    """Build a neuron by config name, e.g. ``get("alif", tau_a=20.0)``.

    In Hydra, pick the neuron with ``model/neuron=<name>`` (which also swaps in that neuron's
    parameters) rather than ``model.neuron.name=<name>``.
    """
    return NEURONS.create(name, **params)


def from_config(cfg: Any = None) -> Any:
    """The neuron of a ``model.neuron`` config group (``name`` + its parameters); no config
    or no ``name`` means ``lif``."""
    params = plain(cfg)
    if "kind" in params:
        raise ConfigError(
            "model.neuron.kind was renamed to model.neuron.name "
            f"(write name: {params['kind']} in the neuron config)"
        )
    return NEURONS.build({"name": "lif", **params})
