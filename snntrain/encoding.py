"""Input encoders: static images ``x_Bx...`` (values in [0, 1]) to time-major input ``x_TxBx...``.

Every encoder is ``encode(x_Bx..., key_B, T) -> x_TxBx...``. Randomness is drawn per example
from ``key_B`` (one key per example, derived from the step key and the example's position in
the global batch), so the spikes an example receives do not depend on how the batch is split
over devices.

``direct`` returns a :class:`Repeated` instead of an array: the same ``x_Bx...`` at each of the
``T`` steps, not yet broadcast. Models apply their first synaptic operation to ``x_Bx...`` once
and broadcast the result over time (:func:`snntrain.models.fold_time`), which is exact and ``T``
times cheaper than convolving ``T`` identical copies; anything else sees an ordinary array
through ``jnp.asarray`` (``__jax_array__``) or :meth:`Repeated.materialize`.

``rate`` and ``latency`` also draw any window of steps on its own (``steps(x, key_B, start,
length, T)``; step ``t`` of example ``b`` depends only on ``key_B[b]`` and ``t``), so under
``trainer.remat`` the trainer hands the model an :class:`Encoded` and each rematerialised time
block draws (and redraws in the backward pass) only its own steps: input memory stays that of
one block however long ``T`` is.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from snntrain.registry import Registry

Array = jax.Array


def _check_T(T: Any) -> None:
    """An encoder's ``T`` is a static number of time steps >= 1."""
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"an encoder's T (time steps) must be an integer >= 1, got {T!r}")


def example_keys(key: Array, index_B: Array) -> Array:
    """One PRNG key per example: ``fold_in(key, index)`` for each global example index."""
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, index_B)


@dataclasses.dataclass(frozen=True)
class Repeated:
    """``x_Bx...`` presented unchanged at each of ``T`` steps: a lazy ``x_TxBx...``.

    A pytree (``x_Bx`` is data, ``T`` static), so it passes through ``jit`` and ``vmap``.
    """

    x_Bx: Array
    T: int

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.T, *self.x_Bx.shape)

    @property
    def dtype(self) -> Any:
        return self.x_Bx.dtype

    @property
    def ndim(self) -> int:
        return self.x_Bx.ndim + 1

    def materialize(self) -> Array:
        """The ``x_TxBx...`` array this stands for."""
        return jnp.broadcast_to(self.x_Bx[None], self.shape)

    def __jax_array__(self) -> Array:
        return self.materialize()


jax.tree_util.register_dataclass(Repeated, data_fields=["x_Bx"], meta_fields=["T"])


@dataclasses.dataclass(frozen=True)
class Encoded:
    """``encoder(x_Bx, key_B, T)[start : start + length]``, not yet drawn: a lazy
    ``x_LxBx...`` (``L = length``). :meth:`window` narrows it, :meth:`materialize` draws it.

    A pytree (``x_Bx``, ``key_B`` and ``start`` are data, so ``start`` may be traced, e.g. the
    block index of a ``lax.scan`` over time blocks; the rest is static).
    """

    encoder: Any
    x_Bx: Array
    key_B: Array
    T: int  # the whole run's number of steps (latency codes depend on it)
    start: Any = 0
    length: int | None = None
    dtype: Any = None  # of the drawn steps (None: x_Bx's); drawn from x_Bx as it is

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.T if self.length is None else self.length, *self.x_Bx.shape)

    def window(self, start: Any, length: int) -> Encoded:
        """Steps ``[start, start + length)`` of this window."""
        return dataclasses.replace(self, start=self.start + start, length=int(length))

    def materialize(self, per_step: bool = False) -> Array:
        """The ``x_LxBx...`` array this stands for.

        ``per_step``: draw it one step at a time in a loop (``lax.map``; the same values, since
        step ``t`` depends only on the keys and ``t``). XLA:CPU fuses a cheap generator such as
        ``rate``'s hash into every consumer of its output, so a consumer that reads each input
        several times (the 9 patch slices of a 5x5 space-to-depth convolution,
        :func:`snntrain.convpool.conv_pool`) redraws it each time; a loop's output is
        computed once and stored. A dense layer's GEMM reads its input once: no loop there.
        """
        L, dtype = self.shape[0], self.dtype or self.x_Bx.dtype
        if L == 0:
            return jnp.zeros(self.shape, dtype)
        if per_step:
            def draw(t):
                return self.encoder.steps(self.x_Bx, self.key_B, self.start + t, 1, self.T)[0]

            return jax.lax.map(draw, jnp.arange(L)).astype(dtype)
        return self.encoder.steps(self.x_Bx, self.key_B, self.start, L, self.T).astype(dtype)


jax.tree_util.register_dataclass(
    Encoded, data_fields=["x_Bx", "key_B", "start"],
    meta_fields=["encoder", "T", "length", "dtype"]
)


def cast(x: Array | Repeated | Encoded, dtype: Any) -> Array | Repeated | Encoded:
    """A time-major input whose steps are ``dtype`` (an :class:`Encoded` draws them from its
    pixels as they are, then casts: spikes are exact in bfloat16, pixels are not)."""
    if isinstance(x, Encoded):
        return dataclasses.replace(x, dtype=dtype)
    if isinstance(x, Repeated):
        return Repeated(x.x_Bx.astype(dtype), x.T)
    return x.astype(dtype)


def realize(x: Array | Repeated | Encoded, per_step: bool = False) -> Array | Repeated:
    """An :class:`Encoded` drawn (``per_step``: see :meth:`Encoded.materialize`); arrays and
    :class:`Repeated` as they are."""
    return x.materialize(per_step) if isinstance(x, Encoded) else x


def window(x: Array | Repeated | Encoded, start: Any, length: int) -> Array | Repeated | Encoded:
    """Steps ``[start, start + length)`` of a time-major input (``start`` may be traced, except
    for a plain array, which is sliced)."""
    if isinstance(x, Repeated):
        return Repeated(x.x_Bx, int(length))
    if isinstance(x, Encoded):
        return x.window(start, length)
    return jax.lax.dynamic_slice_in_dim(x, start, length)


@dataclasses.dataclass(frozen=True)
class Rate:
    """Bernoulli rate coding: at each step an input spikes with probability ``gain * x``.

    ``P(s_t = 1) = clip(gain * x, 0, 1)`` independently for every step, so the spike frequency
    converges to ``clip(gain * x, 0, 1)`` as ``T`` grows (binomial error ``sqrt(p (1-p) / T)``).
    With ``resolution=8`` (default) the probability is quantised to ``round(256 p) / 256``
    (|error| <= 1/512, finer than 8-bit pixels) and drawn from 8-bit uniforms, four per 32-bit
    random word; ``resolution=32`` is ``jax.random.bernoulli``.

    ``generator`` makes the 8-bit words: ``hash`` (default) is a counter-based generator, a
    hash of (example key, step, word index) with two rounds of Wellons' ``lowbias32`` integer
    mixer, about 10 integer operations per word; ``threefry`` draws them with
    ``jax.random.bits`` (20 Threefry rounds per word), which took about 40% of the MLP step on
    CPU. Both are pure functions of the example's key and the step, so resume and windowed
    (remat) drawing are exact either way.

    References:
      Gerstner et al., *Neuronal Dynamics*, 2014, §7.2 (Poisson / Bernoulli rate codes);
      Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011 (counter-based
      generators); C. Wellons, "Prospecting for hash functions", 2018 (``lowbias32``).
    """

    gain: float = 1.0
    resolution: int = 8
    generator: str = "hash"
    name: ClassVar[str] = "rate"
    stochastic: ClassVar[bool] = True

    def __post_init__(self):
        if not isinstance(self.gain, numbers.Real) or isinstance(self.gain, bool) or not (
                0.0 < float(self.gain) < float("inf")):
            raise ValueError(f"rate encoder: gain must be finite and > 0, got {self.gain!r}")
        if self.resolution not in (8, 32):
            raise ValueError(f"rate encoder: resolution must be 8 or 32, got {self.resolution}")
        if self.generator not in GENERATORS:
            raise ValueError(f"rate encoder: generator must be one of {', '.join(GENERATORS)}, "
                             f"got {self.generator!r}")

    def __call__(self, x_BxD: Array, key_B: Array, T: int) -> Array:
        _check_T(T)
        return self.steps(x_BxD, key_B, 0, T, T)

    def steps(self, x_BxD: Array, key_B: Array, start: Any, length: int, T: int) -> Array:
        """Steps ``[start, start + length)``: step ``t`` of example ``b`` is drawn with
        ``fold_in(key_B[b], t)``, so any window can be drawn on its own."""
        del T
        p_BxD = jnp.clip(self.gain * x_BxD, 0.0, 1.0)
        t_L = start + jnp.arange(length)
        if self.resolution == 8 and self.generator == "hash":
            return _hashed_spikes(p_BxD, key_B, t_L).astype(x_BxD.dtype)

        if self.resolution == 32:

            def one(key, p_D):  # one example at one step
                return jax.random.bernoulli(key, p_D)
        else:

            def one(key, p_D):
                # One 32-bit random word gives four 8-bit uniforms u in 0..255 (4x less PRNG
                # work than bernoulli); spike iff u < round(256 p), so P = round(256 p) / 256.
                p_N = p_D.reshape(-1)
                n = p_N.shape[0]
                words_M = jax.random.bits(key, (-(-n // 4),), jnp.uint32)
                u_N = jax.lax.bitcast_convert_type(words_M, jnp.uint8).reshape(-1)[:n]
                return (u_N.astype(jnp.int32) < _levels(p_N)).reshape(p_D.shape)

        def at(t):  # all examples at step t, drawn time-major (no transpose afterwards)
            keys_B = jax.vmap(jax.random.fold_in, in_axes=(0, None))(key_B, t)
            return jax.vmap(one)(keys_B, p_BxD)

        return jax.vmap(at)(t_L).astype(x_BxD.dtype)


GENERATORS = ("hash", "threefry")


def _levels(p: Array) -> Array:
    """``round(256 p)``: spike iff an 8-bit uniform ``u`` is below it (``P = level / 256``)."""
    return jnp.round(p.astype(jnp.float32) * 256).astype(jnp.int32)


def lowbias32(x: Array) -> Array:
    """Wellons' ``lowbias32`` integer hash of uint32 ``x`` (a bijection; bias ~0.17)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def hash_words(key_B: Array, t_L: Array, n_words: int) -> Array:
    """Counter-based random words ``w_LxBxM``: word ``m`` of example ``b`` at step ``t`` is
    ``lowbias32(lowbias32((t*M + m) ^ k0_b) + k1_b)`` with ``(k0_b, k1_b)`` the key's 64 bits.

    Each round is a bijection of the counter, so no two words of one example collide.
    """
    k_Bx2 = jax.random.key_data(key_B).reshape(key_B.shape[0], -1)[:, :2].astype(jnp.uint32)
    c_LxM = (t_L.astype(jnp.uint32)[:, None] * jnp.uint32(n_words)
             + jnp.arange(n_words, dtype=jnp.uint32)[None, :])
    x_LxBxM = lowbias32(c_LxM[:, None, :] ^ k_Bx2[None, :, 0, None])
    return lowbias32(x_LxBxM + k_Bx2[None, :, 1, None])


def _hashed_spikes(p_BxD: Array, key_B: Array, t_L: Array) -> Array:
    B, n = p_BxD.shape[0], math.prod(p_BxD.shape[1:])
    words_LxBxM = hash_words(key_B, t_L, -(-n // 4))
    u_LxBxN = jax.lax.bitcast_convert_type(words_LxBxM, jnp.uint8).reshape(len(t_L), B, -1)
    spikes = u_LxBxN[..., :n].astype(jnp.int32) < _levels(p_BxD.reshape(B, n))[None]
    return spikes.reshape(len(t_L), *p_BxD.shape)


LATENCY_MODES = ("linear", "log")


@dataclasses.dataclass(frozen=True)
class Latency:
    """Time-to-first-spike coding: one spike per input, earlier for stronger input.

    With ``x`` clipped to [0, 1], an input with ``x < threshold`` (``x <= threshold`` in ``log``
    mode) never spikes; every other input spikes exactly once, at step

    * ``linear``: ``t = round((1 - x) * (T - 1))`` — ``x = 1`` at step 0, ``x = 0`` at ``T - 1``;
    * ``log``: ``t = min(round(tau * ln(x / (x - threshold))), T - 1)`` — the time an RC
      membrane driven by a constant current ``x`` takes to charge up to ``threshold``
      (snnTorch's ``spikegen.latency``), clamped to the last step.

    ``round`` is round-half-to-even. The encoding is deterministic (``key_B`` is unused).

    References:
      Gerstner et al., *Neuronal Dynamics*, 2014, §7.6; Eshraghian et al., "Training spiking
      neural networks using lessons from deep learning", Proc. IEEE 2023 (snnTorch).
    """

    mode: str = "linear"
    threshold: float = 0.01
    tau: float = 5.0
    name: ClassVar[str] = "latency"
    stochastic: ClassVar[bool] = False

    def __post_init__(self):
        if self.mode not in LATENCY_MODES:
            raise ValueError(f"latency: mode must be one of {LATENCY_MODES}, got {self.mode!r}")
        if not 0.0 <= float(self.threshold) < 1.0:
            raise ValueError(f"latency: threshold must be in [0, 1), got {self.threshold}")
        for name in ("threshold", "tau"):  # (the message named mode, the valid value)
            if self.mode == "log" and not float(getattr(self, name)) > 0.0:
                raise ValueError(f"latency: {name} must be > 0 with mode=log, got "
                                 f"{name}={getattr(self, name)}")

    def spike_times(self, x_Bx: Array, T: int) -> Array:
        """The spike step of every input (int32), ``T`` where the input does not spike."""
        x = jnp.clip(x_Bx.astype(jnp.float32), 0.0, 1.0)
        if self.mode == "linear":
            fires = x >= self.threshold
            t = jnp.round((1.0 - x) * (T - 1))
        else:
            fires = x > self.threshold
            safe = jnp.where(fires, x, 1.0)
            t = jnp.round(self.tau * jnp.log(safe / (safe - self.threshold)))
        t = jnp.clip(t, 0, T - 1).astype(jnp.int32)
        return jnp.where(fires, t, T)

    def __call__(self, x_Bx: Array, key_B: Array, T: int) -> Array:
        _check_T(T)
        return self.steps(x_Bx, key_B, 0, T, T)

    def steps(self, x_Bx: Array, key_B: Array, start: Any, length: int, T: int) -> Array:
        """Steps ``[start, start + length)`` of the ``T``-step code."""
        del key_B
        t_Bx = self.spike_times(x_Bx, T)
        t_L = start + jnp.arange(length, dtype=jnp.int32)
        return (t_L.reshape((length,) + (1,) * x_Bx.ndim) == t_Bx[None]).astype(x_Bx.dtype)


@dataclasses.dataclass(frozen=True)
class Direct:
    """Direct (analog) coding: the input ``x`` is the current at every step, ``x_t = x``.

    Returns a :class:`Repeated` so the first layer computes its synaptic operation once per
    example instead of once per step; the spiking of the first neuron layer does the coding.

    References:
      Rueckauer et al., "Conversion of continuous-valued deep networks to efficient event-driven
      networks for image classification", Front. Neurosci. 2017; Wu et al., "Direct training
      for spiking neural networks: faster, larger, better", AAAI 2019.
    """

    name: ClassVar[str] = "direct"
    stochastic: ClassVar[bool] = False

    def __call__(self, x_Bx: Array, key_B: Array, T: int) -> Repeated:
        _check_T(T)
        del key_B
        return Repeated(x_Bx, int(T))


@dataclasses.dataclass(frozen=True)
class Passthrough:
    """No encoding (``encoder=none``): the data is already spikes, binned into ``T`` steps per
    sample (event datasets, :mod:`snntrain.events`). ``x_BxTx... -> x_TxBx...``, no randomness.
    """

    name: ClassVar[str] = "none"
    stochastic: ClassVar[bool] = False

    def __call__(self, x_BxTx: Array, key_B: Array, T: int) -> Array:
        _check_T(T)
        del key_B
        if x_BxTx.ndim < 2 or x_BxTx.shape[1] != T:
            from snntrain.errors import ConfigError

            steps = x_BxTx.shape[1] if x_BxTx.ndim >= 2 else "no"
            raise ConfigError(
                f"encoder none: the data has {steps} time steps per sample but T={T}; "
                "bin the events into T steps (dataset.T: ${T}) or set T to the data's steps"
            )
        return jnp.swapaxes(x_BxTx, 0, 1)


ENCODERS: Registry[Any] = Registry(
    "encoder", {"rate": Rate, "latency": Latency, "direct": Direct, "none": Passthrough}
)


def get(name: str, **params: Any) -> Any:
    """Build an encoder by config name, e.g. ``get("latency", mode="log")``."""
    return ENCODERS.create(name, **params)


def from_config(cfg: Any) -> Any:
    """The encoder of an ``encoder`` config group (``name`` + its parameters)."""
    return ENCODERS.build(cfg)
