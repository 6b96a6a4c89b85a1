"""Spiking network models (Flax NNX), picked by name from ``conf/model/``.

The contract, for every model:

* ``model(x_TxBx..., spike_fn, remat=False) -> (logits_BxC, aux)``. Input is time-major (an
  array, a :class:`snntrain.encoding.Repeated` from the ``direct`` encoder, or a lazy
  :class:`snntrain.encoding.Encoded` that each remat block draws its own steps of). ``spike_fn`` is
  the surrogate, passed at call time and never stored, so one set of parameters serves any
  surrogate (including one with traced parameters, for vmapped sweeps). ``remat`` is
  ``trainer.remat``: when ``T > remat_chunk`` (a model option, default 25) time runs in blocks
  of ``remat_chunk`` steps, each under ``jax.checkpoint``, so activation memory stays that of
  one block however long ``T`` is; otherwise each neuron scan body is checkpointed. Either way
  the values and gradients are those of ``remat=False``.
* ``aux["rates"]``: ``{layer: rate_B}``, the firing rate of every hidden spiking layer per example
  (mean over time and neurons; the trainer masks, averages and regularises them);
  ``aux["spike_counts"]``: ``{layer: count_B}``, the total number of spikes per example;
  for :mod:`snntrain.synops`, ``aux["updates"]`` (neuron-state updates per example, readout
  included) and, per synaptic layer of ``model.synapses()``, ``aux["in_counts"]`` (nonzero
  inputs per example summed over time; per input pixel for convolutions), ``aux["in_steps"]``
  and ``aux["in_binary"]``.
* ``model.trace(x, spike_fn, remat) -> (out_TxBxC, aux)``: the readout before the reduction
  over time (output membrane, or output spikes for ``spike_count``); ``__call__`` reduces it.
  Tests use it to check causality.

Layers are *layer-batched in time* (the faster formulation on every backend we measured): each
synaptic operation (dense, convolution, pooling, norm) runs once on all ``T*B`` rows
(:func:`fold_time`), and only the cheap neuron recurrence is scanned
(:func:`snntrain.neurons.run`). With ``direct`` input the first synaptic operation runs once on
the ``B`` examples and is broadcast over time. Images come in channels-last
(``T x B x H x W x C``); inside the conv blocks the examples are the minor axis
(``C x H x W x (T*B)``), each convolution and its max-pooling are one GEMM in space-to-depth
coordinates (:func:`snntrain.convpool.conv_pool`; a dense Toeplitz matrix for small images) and
the neurons scan ``T x C x H x W x B``: the formulation that was fastest on XLA:CPU, and exact.

Parameters are named ``fc0, conv0, lif0, ...`` (string keys; no lists of modules) so
checkpoints stay flat. Readouts (``model.readout``): ``membrane_mean`` (default),
``membrane_max``, ``membrane_last`` of a non-spiking leaky output layer, or ``spike_count``
(a spiking output layer; logits = ``readout_scale`` * output spikes summed over time).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from snntrain import neurons as neurons_lib
from snntrain.convpool import CONV_METHODS, conv_pool, max_pool, time_major
from snntrain.encoding import Encoded, Repeated, realize, window
from snntrain.errors import shortened
from snntrain.registry import Registry

Array = jax.Array

READOUTS = ("membrane_mean", "membrane_max", "membrane_last", "spike_count")
NORMS = ("none", "layer")
PADDINGS = ("SAME", "VALID")


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def make_neuron(cfg: dict | None) -> Any:
    """A neuron from its config dict ``{"name": "lif", ...}`` or name (default: LIF)."""
    return neurons_lib.from_config({"name": cfg} if isinstance(cfg, str) else cfg)


def fold_time(fn: Callable[[Array], Array], x: Array | Repeated) -> Array:
    """Apply a per-example ``fn`` (``N x ... -> N x ...``) to every time step at once.

    ``x_TxBx...`` is reshaped to ``(T*B) x ...``, so ``fn`` runs once on all rows. For a
    :class:`Repeated` input (the same ``x_Bx`` at every step) ``fn`` runs on the ``B`` rows
    only and its result is broadcast over time.
    """
    if isinstance(x, Repeated):
        y = fn(x.x_Bx)
        return jnp.broadcast_to(y[None], (x.T, *y.shape))
    T, B = x.shape[:2]
    y = fn(x.reshape(T * B, *x.shape[2:]))
    return y.reshape(T, B, *y.shape[1:])


def _record(aux: dict, name: str, s_TxBx: Array, batch_axis: int = 1) -> None:
    """Store a layer's per-example firing rate and spike count in ``aux`` (the examples are
    on ``batch_axis``: 1 for ``T x B x ...``, -1 for the conv layers' ``T x C x H x W x B``)."""
    batch_axis %= s_TxBx.ndim
    axes = tuple(a for a in range(s_TxBx.ndim) if a != batch_axis)
    # accumulated in float32: a bfloat16 sum rounds counts above 256 (5303 spikes gave 5312)
    aux["rates"][name] = s_TxBx.mean(axis=axes, dtype=jnp.float32)
    aux["spike_counts"][name] = s_TxBx.sum(axis=axes, dtype=jnp.float32)
    n_B = s_TxBx.shape[batch_axis]
    aux["updates"][name] = jnp.full((n_B,), s_TxBx.size // max(n_B, 1), jnp.float32)


def _record_input(
    aux: dict,
    name: str,
    x: Array,
    step_axis: int = 0,
    batch_axis: int = 1,
    spikes: bool = False,
    per_feature: bool = False,
    encoded: bool = False,
) -> None:
    """Store what entered the synaptic layer ``name`` (read by :mod:`snntrain.synops`) from all
    its evaluations ``x`` (``S`` of them on ``step_axis``: ``S = T``, or 1 for the ``direct``
    input, whose first layer runs once; examples on ``batch_axis``): the number of nonzero
    inputs per example summed over the evaluations (``in_counts``: ``B``, or ``B x F...`` per
    input feature with ``per_feature``, for a convolution's non-uniform fan-out), ``S``
    (``in_steps``, ``B``), and whether every input was 0 or 1 (``in_binary``, ``B``: spikes,
    i.e. accumulates; else analog multiply-accumulates), checked unless ``spikes`` says so
    (the output of a spiking layer, or its max-pooling, or a spike code's output: exactly 0 or
    1 by construction).

    ``encoded``: ``x`` (``S x B x F...``, 0/1) is the encoder's output, which a dense layer
    reads as ``(S*B) x F`` rows (:func:`fold_time`). It is then counted by a matrix-vector
    product over the same rows: XLA materialises the encoding once for both products, whereas
    it fuses (recomputes) the encoder into any reduction, and an elementwise test of a
    ``T x B x F`` array costs XLA:CPU as much as the layer's GEMM (issue 17: the counts cost
    1.3x the MLP's evaluation step before)."""
    step_axis, batch_axis = step_axis % x.ndim, batch_axis % x.ndim
    others = tuple(a for a in range(x.ndim) if a != batch_axis)
    if per_feature:  # an unrolled sum over the steps: XLA:CPU reduces a major axis ~20x slower
        counts = jnp.zeros(x.shape[:step_axis] + x.shape[step_axis + 1 :], jnp.float32)
        for t in range(x.shape[step_axis]):
            x_t = jax.lax.index_in_dim(x, t, step_axis, keepdims=False)
            counts = counts + (x_t if spikes else x_t != 0)
        counts = jnp.moveaxis(counts, batch_axis - (step_axis < batch_axis), 0)
    elif encoded:  # the GEMM's rows times ones: exact (integers < 2**24 in float32)
        S, B = x.shape[:2]
        x_NxF = x.reshape(S * B, math.prod(x.shape[2:]))
        ones_F = jnp.ones((x_NxF.shape[1],), x.dtype)
        counts = jnp.dot(x_NxF, ones_F, preferred_element_type=jnp.float32).reshape(S, B).sum(0)
    elif spikes:  # 0/1: the count is the sum (the same reduction as the layer's spike count)
        counts = x.sum(axis=others, dtype=jnp.float32)
    else:
        counts = (x != 0).astype(jnp.float32).sum(axis=others)
    aux["in_counts"][name] = counts
    aux["in_steps"][name] = jnp.full((x.shape[batch_axis],), x.shape[step_axis], jnp.float32)
    if spikes:
        aux["in_binary"][name] = jnp.ones((x.shape[batch_axis],), jnp.float32)
    else:
        aux["in_binary"][name] = ((x == 0) | (x == 1)).all(axis=others).astype(jnp.float32)


# Encoders (``snntrain.encoding``, by name) whose output is 0/1 spikes by construction: the
# counts of the first layer's inputs need no elementwise test (``_record_input``).
SPIKE_CODES = ("rate", "latency")


def _spike_code(x: Array | Repeated | Encoded) -> bool:
    """Whether ``x`` is (a window of) a spike code's output, not yet drawn."""
    return isinstance(x, Encoded) and getattr(x.encoder, "name", None) in SPIKE_CODES


def _evaluations(h: Array | Repeated) -> Array:
    """The inputs a layer's synaptic operation actually runs on, stacked: ``T x B x ...``, or
    ``1 x B x ...`` for a :class:`Repeated` input (computed once, broadcast over time)."""
    return h.x_Bx[None] if isinstance(h, Repeated) else h


POOL_MODES = ("max", "avg")
# what a forward pass records in ``aux`` (see the module docstring); the counts add up over
# time blocks, ``rates`` is a mean and ``in_binary`` a logical and
AUX_SUMMED = ("spike_counts", "updates", "in_counts", "in_steps")
AUX_KEYS = ("rates", *AUX_SUMMED, "in_binary")


class SpikingNeurons(nnx.Module):
    """Per-neuron parameters of a spiking layer; learnable ``beta`` stays in (0, 1).

    A learnable ``beta`` is stored as a logit (``beta = sigmoid(w)``), as in PLIF
    (Fang et al., ICCV 2021); a learnable threshold is stored directly. ``size`` is the shape
    the parameters are stored with: ``N`` for dense layers, ``(C,)`` (per channel) for
    convolutions; ``broadcast`` is the shape they take to broadcast against the input's
    non-time axes (``(C, 1, 1, 1)`` for the conv layers' ``C x H x W x B`` neurons). A neuron
    without a ``beta`` (``if``) refuses ``learn_beta``.
    """

    def __init__(
        self,
        neuron: Any,
        size: int | tuple[int, ...],
        learn_beta: bool,
        learn_threshold: bool,
        broadcast: tuple[int, ...] | None = None,
    ):
        for key, flag in (("learn_beta", learn_beta), ("learn_threshold", learn_threshold)):
            if not isinstance(flag, (bool, np.bool_)):  # "false" is truthy: it learned
                raise ValueError(f"model.{key} must be true or false, got {flag!r}")
        self.neuron = neuron
        shape = (size,) if isinstance(size, int) else tuple(size)
        self.broadcast = tuple(broadcast or shape)
        defaults = neuron.default_params()
        if learn_beta and "beta" not in defaults:  # was ignored without a word
            raise ValueError(f"model.learn_beta=true is invalid: the {type(neuron).__name__} "
                             "neuron has no beta to learn; set model.learn_beta=false, or "
                             "model/neuron=lif")
        self.learn_beta = learn_beta and "beta" in defaults
        self.learn_threshold = learn_threshold and "threshold" in defaults
        if self.learn_beta:
            if not 0.0 < defaults["beta"] < 1.0:
                raise ValueError(
                    f"learn_beta needs an initial beta in (0, 1), got {defaults['beta']}"
                )
            self.beta_logit = nnx.Param(jnp.full(shape, _logit(defaults["beta"]), jnp.float32))
        if self.learn_threshold:
            self.threshold = nnx.Param(jnp.full(shape, defaults["threshold"], jnp.float32))

    def params(self, dtype: Any) -> dict[str, Any]:
        p = dict(self.neuron.default_params())
        for name in ("beta", "threshold"):  # per-member values (snntrain.population)
            if hasattr(self, f"{name}_value"):
                p[name] = getattr(self, f"{name}_value")[...].astype(dtype)
        if self.learn_beta:
            p["beta"] = jax.nn.sigmoid(self.beta_logit[...]).astype(dtype).reshape(self.broadcast)
        if self.learn_threshold:
            p["threshold"] = self.threshold[...].astype(dtype).reshape(self.broadcast)
        return p

    def __call__(
        self,
        i_TxBxN: Array,
        spike_fn: Callable,
        remat: bool = False,
        recurrent: Callable | None = None,
        carry: Any = None,
        return_carry: bool = False,
    ) -> Array | tuple[Array, Any]:
        """Spikes ``s_TxBxN`` (see :func:`snntrain.neurons.run` for the arguments)."""
        p = self.params(neurons_lib.state_dtype(i_TxBxN.dtype))
        return neurons_lib.run(
            self.neuron,
            p,
            i_TxBxN,
            spike_fn,
            recurrent=recurrent,
            remat=remat,
            carry=carry,
            return_carry=return_carry,
        )


class Readout(nnx.Module):
    """Output layer: a linear map of the last hidden spikes, then a trace over time.

    * ``membrane_*``: non-spiking leaky membrane ``v_t = beta * v_{t-1} + W s_t + b``; logits
      are its mean over time (``membrane_mean``), maximum (``membrane_max``) or final value
      (``membrane_last``).
    * ``spike_count``: the output layer is spiking (the model's neuron); logits are
      ``scale * sum_t s_t``, so cross-entropy acts on the output spike counts (snnTorch's
      ``ce_count_loss``).
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        mode: str,
        beta: float,
        *,
        neuron: Any = None,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        scale: float = 1.0,
        rngs: nnx.Rngs,
    ):
        if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or (
                n_classes < 1):
            raise ValueError(f"n_classes must be an integer >= 1, got {n_classes!r}")
        if mode not in READOUTS:
            raise ValueError(f"unknown readout {mode!r}; valid: {', '.join(READOUTS)}")
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"readout_beta must be in (0, 1], got {beta}")
        if not isinstance(scale, numbers.Real) or isinstance(scale, bool) or not (
                0.0 < scale < math.inf):  # (NaN made every logit NaN)
            raise ValueError(f"readout_scale must be a finite number > 0, got {scale!r}")
        self.mode, self.beta, self.scale = mode, float(beta), float(scale)
        self.linear = nnx.Linear(in_features, n_classes, rngs=rngs)
        if mode == "spike_count":
            self.neurons = SpikingNeurons(
                neuron or neurons_lib.LIF(), n_classes, learn_beta, learn_threshold
            )

    def synapse(self) -> dict:
        """The static description of the output synapses (see ``SNN.synapses``)."""
        return _dense("readout", self.linear.in_features, self.linear.out_features)

    def trace(
        self, s_TxBxN: Array, spike_fn: Callable, remat: bool = False, carry: Any = None
    ) -> tuple[Array, Any]:
        """Output membrane ``v_TxBxC`` (or output spikes ``s_TxBxC`` for ``spike_count``),
        and the carry to continue on the next time block (``carry``: the previous one)."""
        i_TxBxC = self.linear(s_TxBxN)
        if self.mode == "spike_count":
            return self.neurons(i_TxBxC, spike_fn, remat, carry=carry, return_carry=True)
        v_TxBxC = neurons_lib.leaky_integrate(i_TxBxC, self.beta, carry)
        if v_TxBxC.shape[0]:
            return v_TxBxC, v_TxBxC[-1]
        return v_TxBxC, (jnp.zeros(i_TxBxC.shape[1:], v_TxBxC.dtype) if carry is None
                         else carry)

    @property
    def linear_in_time(self) -> bool:
        """Whether the logits are a fixed linear function of the spikes (:meth:`logits`)."""
        return self.mode in ("membrane_mean", "membrane_last")

    def time_weights(self, T: int) -> np.ndarray:
        """``c_T`` of :meth:`logits`: the column means (``membrane_mean``) or the last row
        (``membrane_last``) of the causal kernel ``K[t, k] = beta**(t-k)``, ``k <= t``:
        ``c_k = (1/T) sum_{j <= T-1-k} beta**j``, or ``beta**(T-1-k)``. Without the ``T x T``
        kernel (T = 100,000 asked for 74.5 GiB): its column sums, added row by row, are the
        running sums of ``beta**j``, to the bit (tested)."""
        if self.mode == "membrane_mean":
            return np.cumsum(self.beta ** np.arange(T))[::-1] / T
        return self.beta ** np.arange(T - 1, -1, -1)

    def logits(self, s_TxBxN: Array) -> Array:
        """``reduce(trace(s))`` for the readouts linear in time, without the trace.

        ``v_t = sum_{k<=t} beta**(t-k) (W s_k + b)``, so its mean over time (or last value) is
        ``W (sum_k c_k s_k) + b sum_k c_k`` with :meth:`time_weights` ``c``: the spikes are
        weighted and summed over time first, and the output layer's matrix product runs on
        ``B`` rows instead of ``T*B`` (its forward and both backward products are ``T`` times
        smaller). Equal to the trace's reduction up to float rounding.
        """
        c_T = self.time_weights(s_TxBxN.shape[0])
        s_BxN = _weighted_time_sum(np.asarray(c_T, s_TxBxN.dtype), s_TxBxN)
        kernel = self.linear.kernel[...].astype(s_BxN.dtype)
        if self.linear.bias is None:
            return s_BxN @ kernel
        # the bias (its weight sum_k c_k) inside the product: the logits are the product's
        # output, one array. Added after it, XLA:CPU computed the additions again inside each
        # consumer (the loss's maximum, its exponentials), one with a fused multiply-add and
        # one without: at |logits| ~ 1e31 (optimizer.lr=1e30) they differed by more than exp
        # takes, and a population member's loss was inf or -inf where its solo run's was not
        ones_Bx1 = jnp.full((s_BxN.shape[0], 1), c_T.sum(), s_BxN.dtype)
        bias_1xC = self.linear.bias[...].astype(s_BxN.dtype)[None]
        return (jnp.concatenate([s_BxN, ones_Bx1], -1)
                @ jnp.concatenate([kernel, bias_1xC], 0))

    def reduce(self, out_TxBxC: Array) -> Array:
        """Logits from the trace: reduce over time."""
        if self.mode == "membrane_mean":
            return out_TxBxC.mean(0)
        if self.mode == "membrane_max":
            return out_TxBxC.max(0)
        if self.mode == "membrane_last":
            return out_TxBxC[-1]
        return self.scale * out_TxBxC.sum(0)


class SNN(nnx.Module):
    """Base class: time blocks, chunked rematerialisation, and the readout reduction.

    A subclass defines :meth:`features`, which runs the hidden layers on one block of time
    steps, continuing every layer from ``carry`` (a dict ``{layer: state}``, missing entries
    mean the resting state) and writing the final states back into it.
    """

    readout: Readout
    remat_chunk: int = 0
    spiking_features: bool = True  # features() returns exact 0/1 spikes
    draw_per_step: bool = False  # draw a lazy (Encoded) input step by step (encoding.realize)
    example_shape: tuple[int, ...] = ()  # one input example's shape (set by the subclass)
    flat_input: bool = False  # any example shape of prod(example_shape) features is accepted

    def features(
        self,
        x_TxBx: Array | Repeated,
        spike_fn: Callable,
        remat: bool,
        carry: dict,
        aux: dict,
        spike_code: bool = False,
    ) -> Array:
        """The last hidden layer's spikes ``s_TxBxN`` (rates and counts recorded in ``aux``);
        ``spike_code``: ``x_TxBx`` is a spike code's output (0/1 by construction)."""
        raise NotImplementedError

    def _spiking(
        self,
        name: str,
        i_TxBx: Array,
        spike_fn: Callable,
        remat: bool,
        carry: dict,
        aux: dict,
        recurrent: Callable | None = None,
        batch_axis: int = 1,
    ) -> Array:
        """Run the spiking layer ``name`` from ``carry[name]``; record its rate and count."""
        s_TxBx, carry[name] = getattr(self, name)(
            i_TxBx, spike_fn, remat, recurrent, carry.get(name), return_carry=True
        )
        _record(aux, name, s_TxBx, batch_axis)
        return s_TxBx

    def _hidden(self, x_TxBx, spike_fn: Callable, remat: bool, carry: dict):
        """``(s_TxBxN, aux)``: the last hidden spikes of one time block, from ``carry``
        (updated in place), with the readout's input and updates recorded."""
        aux: dict[str, dict[str, Array]] = {k: {} for k in AUX_KEYS}
        spike_code = _spike_code(x_TxBx)
        x = realize(x_TxBx, self.draw_per_step)
        s_TxBxN = self.features(x, spike_fn, remat, carry, aux, spike_code)
        _record_input(aux, "readout", s_TxBxN, spikes=self.spiking_features)
        T, B = s_TxBxN.shape[:2]
        aux["updates"]["readout"] = jnp.full((B,), T * self.readout.linear.out_features,
                                             jnp.float32)
        return s_TxBxN, aux

    def _block(self, x_TxBx, spike_fn: Callable, remat: bool, carry: dict | None):
        """``(out_TxBxC, carry, aux)`` of one time block, starting from ``carry``."""
        carry = dict(carry or {})
        s_TxBxN, aux = self._hidden(x_TxBx, spike_fn, remat, carry)
        out_TxBxC, carry["readout"] = self.readout.trace(
            s_TxBxN, spike_fn, remat, carry.get("readout")
        )
        if self.readout.mode == "spike_count":  # a spiking layer too: rates, counts, rate_reg
            _record(aux, "readout", out_TxBxC)
        return out_TxBxC, carry, aux

    def trace(
        self, x_TxBx: Array | Repeated | Encoded, spike_fn: Callable, remat: bool = False
    ) -> tuple[Array, dict]:
        """``(out_TxBxC, aux)``: the readout trace over time, before the reduction."""
        x_TxBx = _floating(x_TxBx)
        chunk = self._chunk(x_TxBx.shape[0], remat)
        if chunk:
            return self._chunked_trace(x_TxBx, spike_fn, chunk)
        out_TxBxC, _, aux = self._block(x_TxBx, spike_fn, remat, None)
        return out_TxBxC, aux

    def _chunk(self, T: int, remat: bool) -> int:
        """Time steps per rematerialised block, or 0: the whole run is one block. Between one
        and two blocks, two halves: one block and a remainder (T = 30 in blocks of 25) used
        more memory than no remat at all (XLA's straight-line schedule recomputed the first
        block while the second's activations were still held)."""
        chunk = int(self.remat_chunk)
        if not (remat and 0 < chunk < T):
            return 0
        return chunk if 2 * chunk <= T else T // 2

    def _chunked_trace(self, x_TxBx, spike_fn: Callable, chunk: int) -> tuple[Array, dict]:
        """Run time in blocks of ``chunk`` steps (a ``lax.scan`` over blocks), each block under
        ``jax.checkpoint``: the backward pass keeps only the states between blocks and
        recomputes one block at a time, so activation memory is that of ``chunk`` steps."""
        T = x_TxBx.shape[0]
        n, rest = divmod(T, chunk)
        block = jax.checkpoint(lambda x, c: self._block(x, spike_fn, False, c))
        carry0 = self._block(window(x_TxBx, 0, 0), spike_fn, False, None)[1]  # resting states
        if isinstance(x_TxBx, jax.Array):  # scan over the blocks of the array
            xs = x_TxBx[: n * chunk].reshape(n, chunk, *x_TxBx.shape[1:])
        else:  # a Repeated or an Encoded input: scan over the block starts, draw inside
            xs = jnp.arange(n) * chunk

        def body(carry, x):
            x = x if isinstance(x_TxBx, jax.Array) else window(x_TxBx, x, chunk)
            out, carry, aux = block(x, carry)
            return carry, (out, aux)

        carry, (out, aux) = jax.lax.scan(body, carry0, xs, length=n)
        out = out.reshape(n * chunk, *out.shape[2:])
        # A Repeated (direct) input reaches the first synaptic layer once per run, though each
        # block computes it again: its counts are one block's, not their sum (4x at 4 blocks).
        # (only the layer that reads the model's input: conv0 of a conv net, whose fc0 reads
        # spikes at every step and was counted for one block only)
        once = (self.synapses()[0]["name"],) if isinstance(x_TxBx, Repeated) else ()

        def add(g: str, k: str, total: Array, more: Array) -> Array:
            return total if g in ("in_counts", "in_steps") and k in once else total + more

        rates = {k: r.sum(0) * chunk for k, r in aux["rates"].items()}
        totals = {g: {k: c[0] if g in ("in_counts", "in_steps") and k in once else c.sum(0)
                      for k, c in aux[g].items()} for g in AUX_SUMMED}
        binary = {k: b.min(0) for k, b in aux["in_binary"].items()}
        if rest:
            out_r, _, aux_r = block(window(x_TxBx, n * chunk, rest), carry)
            out = jnp.concatenate([out, out_r])
            rates = {k: r + aux_r["rates"][k] * rest for k, r in rates.items()}
            totals = {g: {k: add(g, k, c, aux_r[g][k]) for k, c in d.items()}
                      for g, d in totals.items()}
            binary = {k: jnp.minimum(b, aux_r["in_binary"][k]) for k, b in binary.items()}
        return out, {"rates": {k: r / T for k, r in rates.items()}, **totals, "in_binary": binary}

    def __call__(
        self, x_TxBx: Array | Repeated | Encoded, spike_fn: Callable, remat: bool = False
    ) -> tuple[Array, dict]:
        x_TxBx, T = _floating(x_TxBx), x_TxBx.shape[0]
        if T < 1:  # the mean over no step was NaN
            raise ValueError(f"the model's input has T=0 time steps (shape {tuple(x_TxBx.shape)}"
                             "): inputs are time-major, x_TxBx..., with T >= 1")
        self._check_example_shape(tuple(x_TxBx.shape))
        if self.readout.linear_in_time and T and not self._chunk(T, remat):
            s_TxBxN, aux = self._hidden(x_TxBx, spike_fn, remat, {})
            return self.readout.logits(s_TxBxN), aux
        out_TxBxC, aux = self.trace(x_TxBx, spike_fn, remat)
        return self.readout.reduce(out_TxBxC), aux


    def _check_example_shape(self, shape: tuple[int, ...]) -> None:
        """A one-line error for an input that is not ``T x B x example_shape`` (a reshape or
        unpacking error deep inside the layers used to say it)."""
        want, got = self.example_shape, shape[2:]
        if not want or (len(shape) >= 3 and (
                math.prod(got) == math.prod(want) if self.flat_input else got == want)):
            return
        what = f"{math.prod(want)} features per example" if self.flat_input else (
            f"examples of shape {want}")
        raise ValueError(f"the model's input has shape {shape}; it takes time-major input "
                         f"T x B x ... with {what} (built for in_shape={want})")


def _floating(x: Array | Repeated | Encoded) -> Array | Repeated | Encoded:
    """Integer or boolean input (counts, 0/1 arrays) as float32: the conv kernel took the
    input's dtype (integer weights) and the neuron scan's state did not match its update."""
    if isinstance(x, Repeated) and not jnp.issubdtype(x.x_Bx.dtype, jnp.floating):
        return Repeated(jnp.asarray(x.x_Bx, jnp.float32), x.T)
    if isinstance(x, (jax.Array, np.ndarray)) and not jnp.issubdtype(x.dtype, jnp.floating):
        return jnp.asarray(x, jnp.float32)
    return x


def _dense(name: str, n_in: int, n_out: int) -> dict:
    return {"name": name, "kind": "dense", "in_shape": (int(n_in),), "n_out": int(n_out)}


def _remat_chunk(chunk: int) -> int:
    if isinstance(chunk, bool) or int(chunk) < 0:
        raise ValueError(f"model.remat_chunk must be an integer >= 0, got {chunk!r}")
    return int(chunk)


def _flat(z: Array) -> Array:
    return z.reshape(z.shape[0], math.prod(z.shape[1:]))  # (no -1: blocks may be empty)


class MLP(SNN):
    """Fully connected SNN: ``[Linear → spiking neuron] × L → readout``.

    Args:
      in_shape: shape of one input example (flattened to ``prod(in_shape)`` features).
      n_classes: number of output classes.
      hidden: sizes of the spiking hidden layers.
      neuron: neuron config (``{"name": "lif", "beta": 0.9, ...}``, see ``conf/model/neuron``).
      readout: ``membrane_mean`` | ``membrane_max`` | ``membrane_last`` | ``spike_count``.
      readout_beta: decay of the non-spiking output membrane.
      readout_scale: logits per output spike (``spike_count`` only).
      learn_beta, learn_threshold: make the neurons' ``beta`` / threshold per-neuron parameters.
      remat_chunk: time steps per rematerialised block when called with ``remat=True``
        (0: never split time; only the neuron scan bodies are checkpointed).
    """

    recurrent = False

    def __init__(
        self,
        in_shape: Sequence[int],
        n_classes: int,
        *,
        hidden: Sequence[int] = (256,),
        neuron: dict | None = None,
        readout: str = "membrane_mean",
        readout_beta: float = 0.9,
        readout_scale: float = 1.0,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        remat_chunk: int = 25,
        rngs: nnx.Rngs,
    ):
        hidden = _sizes(hidden, "model.hidden must be a non-empty list of sizes >= 1")
        cell = make_neuron(neuron)
        self.remat_chunk = _remat_chunk(remat_chunk)
        self.n_layers = len(hidden)
        self.example_shape, self.flat_input = tuple(int(d) for d in in_shape), True
        sizes = [math.prod(in_shape), *hidden]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            setattr(self, f"fc{i}", nnx.Linear(n_in, n_out, rngs=rngs))
            if self.recurrent:
                setattr(self, f"rec{i}", nnx.Linear(n_out, n_out, use_bias=False, rngs=rngs))
            setattr(self, f"lif{i}", SpikingNeurons(cell, n_out, learn_beta, learn_threshold))
        self.readout = Readout(
            sizes[-1],
            n_classes,
            readout,
            readout_beta,
            neuron=cell,
            learn_beta=learn_beta,
            learn_threshold=learn_threshold,
            scale=readout_scale,
            rngs=rngs,
        )

    def features(self, x_TxBx, spike_fn, remat, carry, aux, spike_code=False):
        h = x_TxBx
        for i in range(self.n_layers):
            fc = getattr(self, f"fc{i}")
            x_SxBx = _evaluations(h)
            x_SxBxF = x_SxBx.reshape(*x_SxBx.shape[:2], fc.in_features)
            code = i == 0 and spike_code
            _record_input(aux, f"fc{i}", x_SxBxF, spikes=i > 0 or code, encoded=code)
            i_TxBxN = fold_time(lambda z, fc=fc: fc(_flat(z)), h)
            rec = None
            if self.recurrent:
                w_NxN = getattr(self, f"rec{i}").kernel[...]
                rec = lambda s_BxN, w_NxN=w_NxN: s_BxN @ w_NxN
                prev = carry.get(f"lif{i}")  # (state, s_{t-1}) at the block start
            h = self._spiking(f"lif{i}", i_TxBxN, spike_fn, remat, carry, aux, rec)
            if self.recurrent:  # step t of the scan feeds back s_{t-1}
                s_prev = jnp.zeros_like(h[:1]) if prev is None else prev[1][None]
                s_TxBxN = jnp.concatenate([s_prev, h])[: h.shape[0]]
                _record_input(aux, f"rec{i}", s_TxBxN, spikes=True)
        return h

    def synapses(self) -> tuple[dict, ...]:
        """A static description of every synaptic layer, in order (for
        :mod:`snntrain.synops`): ``name``, ``kind`` (``dense``), ``in_shape``, ``n_out``."""
        out = []
        for i in range(self.n_layers):
            fc = getattr(self, f"fc{i}")
            out.append(_dense(f"fc{i}", fc.in_features, fc.out_features))
            if self.recurrent:
                out.append(_dense(f"rec{i}", fc.out_features, fc.out_features))
        return (*out, self.readout.synapse())


class RecurrentMLP(MLP):
    """Recurrent SNN (RLIF): an :class:`MLP` whose hidden neurons also receive their own
    previous spikes through a learned weight (``rec0, rec1, ...``, no bias)::

        i_t = W_in h_t + b + W_rec s_{t-1}

    The feed-forward part stays layer-batched; only ``W_rec s_{t-1}`` runs inside the scan.
    Arguments as :class:`MLP`.

    References:
      Zenke & Vogels, "The remarkable robustness of surrogate gradient learning for instilling
      complex function in spiking neural networks", Neural Computation 2021; Bellec et al.,
      NeurIPS 2018.
    """

    recurrent = True


MAX_SIZE = 2**31 - 1  # an array dimension (10**400 raised OverflowError: a traceback)


def _weighted_time_sum(c_T: np.ndarray, s_TxBx: Array) -> Array:
    """``sum_t c_t s_t`` (a product over time), whose gradient ``c_t g`` is written time-major.

    The transpose of the product (XLA's own reverse pass) is the same outer product, but
    XLA:CPU laid it out time-minor and copied it back to the scan's time-major layout: 0.9 of
    7.5 ms of a profiled digits member-step. The values are the same products, to the bit.
    """

    @jax.custom_vjp
    def weighted(s):
        return jnp.einsum("t,tb...->b...", c_T, s)

    def fwd(s):
        return weighted(s), None

    def bwd(_, g_Bx):
        return (jnp.asarray(c_T).reshape((-1,) + (1,) * g_Bx.ndim) * g_Bx[None],)

    weighted.defvjp(fwd, bwd)
    return weighted(s_TxBx)


def _is_integer(v: Any) -> bool:
    return not isinstance(v, bool) and (isinstance(v, numbers.Integral) or (
        isinstance(v, numbers.Real) and float(v).is_integer()))


def _sizes(value: Any, rule: str, empty: bool = False) -> list[int]:
    """``value`` as a list of integers >= 1 (integral floats too), else ``ValueError(rule)``: a
    string "32" was read as the layers [3, 2] and 1.5 became 1."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not all(
            _is_integer(v) and 1 <= v <= MAX_SIZE for v in value) or not (value or empty):
        big = isinstance(value, Sequence) and any(
            _is_integer(v) and v > MAX_SIZE for v in value)
        raise ValueError(f"{rule}{f' and <= {MAX_SIZE}' * big}, got {shortened(repr(value))}")
    return [int(v) for v in value]


def _per_layer(value: int | Sequence[int], n: int, what: str) -> list[int]:
    rule = f"model.{what} must be an integer >= 1 or a list of {n} of them (one per conv layer)"
    values = [value] * n if _is_integer(value) else value
    values = _sizes(values, rule)
    if len(values) != n:
        raise ValueError(f"{rule}, got {value!r}")
    return values


class ConvSNN(SNN):
    """Convolutional SNN for ``H x W x C`` images (channels-last)::

        [conv k×k → pool → (norm) → neuron] × L → flatten → [Linear → neuron] × D → readout

    With ``pool_before_neuron`` (default) each block is ``conv → pool → (norm) → neuron``:
    max-pooling the input *current* instead of the output spikes lets the neuron scan run on
    ``pool²`` times fewer neurons (the cheaper order, as in the bench's CONV workload); with
    ``false`` it is ``conv → (norm) → neuron → pool`` (pooling spikes: an OR over the window).
    The norm always sits directly before the neuron.

    Inputs and the flattened features are channels-last (``T x B x H x W x C``); inside the
    conv blocks the examples are the minor axis: the synaptic ops run on ``C x H x W x (T*B)``
    (:func:`conv_pool` fuses each conv with its pooling into one GEMM) and the neurons scan
    ``T x C x H x W x B``, the fastest layout on XLA:CPU; the values are those of
    the step-by-step network (``tests/test_models.py``).

    Args:
      in_shape: ``(H, W, C)`` or ``(H, W)`` of one example.
      n_classes: number of output classes.
      channels: output channels of each conv layer, e.g. ``[12, 64]`` (12C5-MP2-64C5-MP2).
      kernel_size: one size for all conv layers, or one per layer.
      padding: ``SAME`` (keeps ``H x W``; works on 8x8 digits) or ``VALID``.
      pool: max-pool window (= stride) after each conv layer; one value or one per layer
        (1: no pooling).
      pool_before_neuron: pool the current before the neuron (true) or the spikes after it.
      pool_mode: ``max`` (default) or ``avg`` (the mean over each window: linear, so the
        network can be exported to NIR, whose pooling nodes are sum and average).
      norm: ``none`` | ``layer`` (LayerNorm of each image's current at each step, over
        ``H, W, C``, with per-channel scale and bias; time-local and per example, so it keeps
        causality and data-parallel equality, unlike batch norm). The default ``layer`` made
        the 12C5-MP2-64C5-MP2 net reach >= 98% on digits for every seed we tried (without it,
        2 of 6 runs stayed below); ``none`` is the plain classic net.
      conv_method: how :func:`conv_pool` computes conv + pool: ``auto`` (the fastest
        formulation for each layer's shapes on this machine, timed once and cached), ``rule``
        (a fixed rule), ``s2d``, ``dense`` or ``lax``; the same values either way.
      dense: sizes of spiking dense layers between the flatten and the readout.
      neuron, readout, readout_beta, readout_scale, learn_beta, learn_threshold, remat_chunk:
        as :class:`MLP`; learnable ``beta`` / threshold are per channel in conv layers.
    """

    # the first conv's patches read every input pixel (k/pool)^2 times (9 for 5x5, pool 2):
    # drawn step by step, the rate code is computed once instead of once per read (XLA:CPU
    # fuses the generator into each patch slice): 1.05-1.08x the CONV training step
    draw_per_step = True

    def __init__(
        self,
        in_shape: Sequence[int],
        n_classes: int,
        *,
        channels: Sequence[int] = (12, 64),
        kernel_size: int | Sequence[int] = 5,
        padding: str = "SAME",
        pool: int | Sequence[int] = 2,
        pool_before_neuron: bool = True,
        pool_mode: str = "max",
        norm: str = "layer",
        conv_method: str = "auto",
        dense: Sequence[int] = (),
        neuron: dict | None = None,
        readout: str = "membrane_mean",
        readout_beta: float = 0.9,
        readout_scale: float = 1.0,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        remat_chunk: int = 25,
        rngs: nnx.Rngs,
    ):
        in_shape = tuple(int(d) for d in in_shape)
        if len(in_shape) == 2:
            in_shape = (*in_shape, 1)
        if len(in_shape) != 3:
            raise ValueError(f"conv model needs H x W x C images, got example shape {in_shape}")
        channels = _sizes(channels, "model.channels must be a non-empty list of integers >= 1")
        if padding not in PADDINGS:
            raise ValueError(f"model.padding must be one of {PADDINGS}, got {padding!r}")
        if norm not in NORMS:
            raise ValueError(f"model.norm must be one of {NORMS}, got {norm!r}")
        if pool_mode not in POOL_MODES:
            raise ValueError(f"model.pool_mode must be one of {POOL_MODES}, got {pool_mode!r}")
        dense = _sizes(dense, "model.dense must be a list of sizes >= 1", empty=True)
        kernels = _per_layer(kernel_size, len(channels), "kernel_size")
        pools = _per_layer(pool, len(channels), "pool")
        cell = make_neuron(neuron)
        self.remat_chunk = _remat_chunk(remat_chunk)
        self.n_conv, self.n_dense = len(channels), len(dense)
        self.padding, self.pools = padding, tuple(pools)
        self.pool_before_neuron, self.norm = bool(pool_before_neuron), norm
        self.pool_mode, self.kernels = pool_mode, tuple(kernels)
        # averaged spikes are not 0/1: the layer after them does multiply-accumulates
        self.spiking_features = pool_mode == "max" or bool(pool_before_neuron) or bool(dense)
        h, w, c = in_shape
        conv_in = []  # (C, H, W) entering each conv layer
        for i, (c_out, k, p) in enumerate(zip(channels, kernels, pools, strict=True)):
            conv_in.append((c, h, w))
            if padding == "SAME" and k > 2 * min(h, w) - 1:  # taps no output position reaches
                raise ValueError(
                    f"model.kernel_size={k} is too large for conv layer {i}'s {h}x{w} input: "
                    f"with padding SAME at most {2 * min(h, w) - 1}")  # (1000: compiled for ever)
            setattr(self, f"conv{i}", Conv(c, c_out, k, padding, conv_method, rngs=rngs))
            if padding == "VALID":
                h, w = h - k + 1, w - k + 1
            if min(h, w) < 1 or min(h // p, w // p) < 1:
                raise ValueError(
                    f"conv layer {i} (kernel {k}, pool {p}, padding {padding}) "
                    f"leaves no pixels of the {in_shape} input; use "
                    f"{'padding SAME, smaller kernels or ' if padding == 'VALID' else ''}fewer "
                    "pools or layers (model.pool, model.channels)"
                )
            if self.pool_before_neuron:
                h, w = h // p, w // p
            if norm == "layer":
                setattr(
                    self,
                    f"norm{i}",
                    nnx.LayerNorm(c_out, reduction_axes=(-3, -2, -1), feature_axes=-1, rngs=rngs),
                )
            setattr(
                self,
                f"lif{i}",
                SpikingNeurons(cell, (c_out,), learn_beta, learn_threshold, (c_out, 1, 1, 1)),
            )
            if not self.pool_before_neuron:
                h, w = h // p, w // p
            c = c_out
        self.conv_in_shapes, self.example_shape = tuple(conv_in), tuple(in_shape)
        sizes = [h * w * c, *dense]
        for j, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            setattr(self, f"fc{j}", nnx.Linear(n_in, n_out, rngs=rngs))
            setattr(
                self,
                f"lif{self.n_conv + j}",
                SpikingNeurons(cell, n_out, learn_beta, learn_threshold),
            )
        self.readout = Readout(
            sizes[-1],
            n_classes,
            readout,
            readout_beta,
            neuron=cell,
            learn_beta=learn_beta,
            learn_threshold=learn_threshold,
            scale=readout_scale,
            rngs=rngs,
        )

    def features(self, x_TxBx, spike_fn, remat, carry, aux, spike_code=False):
        repeated = isinstance(x_TxBx, Repeated)  # direct input: the first conv runs on B rows
        if repeated:
            (B, *_), T = x_TxBx.x_Bx.shape, x_TxBx.T
            h_CxHxWxN = x_TxBx.x_Bx.transpose(3, 1, 2, 0)
        else:
            T, B = x_TxBx.shape[:2]
            h_CxHxWxN = _to_examples_minor(x_TxBx)
        # after a neuron, the next layer's inputs are spikes (0/1), unless averaged
        spikes_in = self.pool_mode == "max" or self.pool_before_neuron
        for i in range(self.n_conv):
            conv, p = getattr(self, f"conv{i}"), self.pools[i]
            if repeated and i == 0:
                x_1xBxCxHxW = x_TxBx.x_Bx.transpose(0, 3, 1, 2)[None]
                _record_input(aux, "conv0", x_1xBxCxHxW, per_feature=True)
            else:
                x_CxHxWxTxB = h_CxHxWxN.reshape(*h_CxHxWxN.shape[:3], T, B)
                binary = spikes_in if i > 0 else spike_code
                _record_input(aux, f"conv{i}", x_CxHxWxTxB, 3, 4, binary, True)
            p_now = p if self.pool_before_neuron else 1
            if self.pool_mode == "max":
                z = conv(h_CxHxWxN, p_now)
            else:
                z = avg_pool(conv(h_CxHxWxN, 1), p_now)
            if self.norm == "layer":
                z = _layer_norm(z, getattr(self, f"norm{i}"))
            if repeated and i == 0:
                i_TxCxHxWxB = jnp.broadcast_to(z[None], (T, *z.shape))
            else:
                i_TxCxHxWxB = time_major(z, T, B)
            s = self._spiking(f"lif{i}", i_TxCxHxWxB, spike_fn, remat, carry, aux, batch_axis=-1)
            h_CxHxWxN = jnp.moveaxis(s, 0, 3).reshape(*s.shape[1:4], T * B)
            if not self.pool_before_neuron:
                pool_fn = max_pool if self.pool_mode == "max" else avg_pool
                h_CxHxWxN = pool_fn(h_CxHxWxN, p)
        c, hh, ww, _ = h_CxHxWxN.shape
        h = h_CxHxWxN.reshape(c, hh, ww, T, B).transpose(3, 4, 1, 2, 0).reshape(T, B, hh * ww * c)
        for j in range(self.n_dense):
            fc = getattr(self, f"fc{j}")
            _record_input(aux, f"fc{j}", h, spikes=j > 0 or spikes_in)
            i_TxBxN = fold_time(lambda z, fc=fc: fc(_flat(z)), h)
            h = self._spiking(f"lif{self.n_conv + j}", i_TxBxN, spike_fn, remat, carry, aux)
        return h

    def synapses(self) -> tuple[dict, ...]:
        """A static description of every synaptic layer, in order (for
        :mod:`snntrain.synops`): ``name``, ``kind`` (``conv`` | ``dense``), ``in_shape``
        (``(C, H, W)`` for convolutions), ``n_out``; convolutions also ``kernel``, ``padding``
        and ``pool`` (the pooling applied to the conv output before the neuron, 1 if none:
        conv outputs outside whole pooling windows are never needed)."""
        out = []
        for i, (shape, k) in enumerate(zip(self.conv_in_shapes, self.kernels, strict=True)):
            n_out = int(getattr(self, f"conv{i}").kernel.shape[-1])
            pool = self.pools[i] if self.pool_before_neuron else 1
            out.append({"name": f"conv{i}", "kind": "conv", "in_shape": shape, "n_out": n_out,
                        "kernel": k, "padding": self.padding, "pool": pool})
        for j in range(self.n_dense):
            fc = getattr(self, f"fc{j}")
            out.append(_dense(f"fc{j}", fc.in_features, fc.out_features))
        return (*out, self.readout.synapse())


def _to_examples_minor(x_TxBxHxWxC: Array) -> Array:
    """``T x B x H x W x C -> C x H x W x (T*B)`` (time-major examples as the minor axis)."""
    T, B, H, W, C = x_TxBxHxWxC.shape
    return x_TxBxHxWxC.transpose(4, 2, 3, 0, 1).reshape(C, H, W, T * B)


def _layer_norm(z_CxHxWxN: Array, norm: nnx.LayerNorm) -> Array:
    """LayerNorm of each example over ``C, H, W`` with ``norm``'s per-channel scale and bias
    (``nnx.LayerNorm`` parameters, applied in the examples-minor layout); statistics in
    float32, as Flax does."""
    z = z_CxHxWxN.astype(jnp.promote_types(z_CxHxWxN.dtype, jnp.float32))
    mu = z.mean(axis=(0, 1, 2), keepdims=True)
    var = jnp.square(z - mu).mean(axis=(0, 1, 2), keepdims=True)
    y = (z - mu) * jax.lax.rsqrt(var + norm.epsilon)
    y = y * norm.scale[...][:, None, None, None] + norm.bias[...][:, None, None, None]
    return y.astype(z_CxHxWxN.dtype)


def avg_pool(x_CxHxWxN: Array, k: int) -> Array:
    """Non-overlapping ``k x k`` average pooling over axes 1 and 2 (``VALID``: trailing
    rows/columns are dropped), the mean of each window (NIR's ``AvgPool2d``)."""
    if k == 1:
        return x_CxHxWxN
    c, h, w, n = x_CxHxWxN.shape
    x = x_CxHxWxN[:, : h // k * k, : w // k * k]
    return x.reshape(c, h // k, k, w // k, k, n).mean(axis=(2, 4))


class Conv(nnx.Module):
    """Stride-1 ``k x k`` convolution and ``pool x pool`` max-pooling on examples-minor
    ``C x H x W x N`` input, computed by :func:`conv_pool` (one GEMM).

    Parameters ``kernel`` (``k x k x C_in x C_out``, LeCun-normal like ``nnx.Conv``) and
    ``bias`` (``C_out``, added after the pooling: the same values, ``max(a_i + b) =
    max(a_i) + b``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: str = "SAME",
        method: str = "auto",
        *,
        rngs: nnx.Rngs,
    ):
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if method not in CONV_METHODS:
            raise ValueError(f"model.conv_method must be one of {CONV_METHODS}, got {method!r}")
        self.padding, self.method = padding, method
        init = nnx.initializers.lecun_normal()
        shape = (kernel_size, kernel_size, in_channels, out_channels)
        self.kernel = nnx.Param(init(rngs.params(), shape, jnp.float32))
        self.bias = nnx.Param(jnp.zeros((out_channels,), jnp.float32))

    def __call__(self, x_CxHxWxN: Array, pool: int = 1) -> Array:
        kernel = self.kernel[...].astype(x_CxHxWxN.dtype)
        y = conv_pool(x_CxHxWxN, kernel, self.padding, pool, self.method)
        return y + self.bias[...].astype(kernel.dtype)[:, None, None, None]


MODELS: Registry[Any] = Registry(
    "model", {"mlp": MLP, "recurrent": RecurrentMLP, "conv": ConvSNN}, internal=("rngs",)
)


def create(
    name: str, in_shape: Sequence[int], n_classes: int, seed: int, **kwargs: Any
) -> nnx.Module:
    """Build the model ``name`` from ``conf/model/<name>.yaml`` values, initialised from ``seed``.

    ``rate_reg`` (the firing-rate regulariser, read by the train step) is not a model argument
    and is ignored here.
    """
    kwargs.pop("rate_reg", None)
    return from_config({"name": name, **kwargs}, in_shape, n_classes, seed)


def from_config(cfg: Any, in_shape: Sequence[int], n_classes: int, seed: int) -> nnx.Module:
    """The model of a ``model`` config group (``name`` + its parameters) for examples of shape
    ``in_shape`` and ``n_classes`` classes, initialised from ``seed``."""
    return MODELS.build(cfg, in_shape=tuple(in_shape), n_classes=n_classes, rngs=nnx.Rngs(seed))
