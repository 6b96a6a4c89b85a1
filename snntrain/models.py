"""Spiking network models (Flax NNX), picked by name from ``conf/model/``.

Every model maps time-major input ``x_TxBx...`` to ``(logits_BxC, aux)`` and takes the spike
function as an argument (``model(x, spike_fn)``), so a surrogate — including one whose
parameters are traced, for vmapped sweeps — is never baked into the parameters. ``aux`` holds
``rates``: the firing rate of every spiking layer per example (``{layer_name: rate_B}``).

Layers are *layer-batched in time*: each synaptic operation runs once on all ``T*B`` rows, and
only the neuron recurrence is scanned (:func:`snntrain.neurons.run`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from snntrain import neurons as neurons_lib
from snntrain.registry import build

Array = jax.Array

READOUTS = ("membrane_mean", "membrane_max", "membrane_last")


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class SpikingNeurons(nnx.Module):
    """Per-neuron parameters of a spiking layer; learnable ``beta`` stays in (0, 1).

    A learnable ``beta`` is stored as a logit (``beta = sigmoid(w)``), as in PLIF
    (Fang et al., ICCV 2021); a learnable threshold is stored directly.
    """

    def __init__(self, neuron: Any, size: int | tuple[int, ...], learn_beta: bool,
                 learn_threshold: bool):
        self.neuron = neuron
        shape = (size,) if isinstance(size, int) else tuple(size)
        defaults = neuron.default_params()
        self.learn_beta = learn_beta and "beta" in defaults
        self.learn_threshold = learn_threshold and "threshold" in defaults
        if self.learn_beta:
            self.beta_logit = nnx.Param(jnp.full(shape, _logit(defaults["beta"]), jnp.float32))
        if self.learn_threshold:
            self.threshold = nnx.Param(jnp.full(shape, defaults["threshold"], jnp.float32))

    def params(self, dtype: Any) -> dict[str, Any]:
        p = dict(self.neuron.default_params())
        if self.learn_beta:
            p["beta"] = jax.nn.sigmoid(self.beta_logit[...]).astype(dtype)
        if self.learn_threshold:
            p["threshold"] = self.threshold[...].astype(dtype)
        return p

    def __call__(self, i_TxBxN: Array, spike_fn: Callable, remat: bool = False,
                 recurrent: Callable | None = None) -> Array:
        return neurons_lib.run(self.neuron, self.params(i_TxBxN.dtype), i_TxBxN, spike_fn,
                               recurrent=recurrent, remat=remat)


class Readout(nnx.Module):
    """Non-spiking leaky output layer: ``v_t = beta * v_{t-1} + W s_t``; logits from ``v``.

    ``membrane_mean`` averages ``v`` over time, ``membrane_max`` takes its maximum,
    ``membrane_last`` its final value.
    """

    def __init__(self, in_features: int, n_classes: int, mode: str, beta: float, *,
                 rngs: nnx.Rngs):
        if mode not in READOUTS:
            raise ValueError(f"unknown readout {mode!r}; valid: {', '.join(READOUTS)}")
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"readout_beta must be in (0, 1], got {beta}")
        self.mode, self.beta = mode, beta
        self.linear = nnx.Linear(in_features, n_classes, rngs=rngs)

    def __call__(self, s_TxBxN: Array) -> Array:
        v_TxBxC = neurons_lib.leaky_integrate(self.linear(s_TxBxN), self.beta)
        if self.mode == "membrane_mean":
            return v_TxBxC.mean(0)
        if self.mode == "membrane_max":
            return v_TxBxC.max(0)
        return v_TxBxC[-1]


class MLP(nnx.Module):
    """Fully connected SNN: ``[Linear → spiking neuron] × L → leaky readout``.

    Args:
      in_shape: shape of one input example (flattened to ``prod(in_shape)`` features).
      n_classes: number of output classes.
      hidden: sizes of the spiking hidden layers.
      neuron: neuron config (``{"kind": "lif", "beta": 0.9, ...}``).
      readout: ``membrane_mean`` | ``membrane_max`` | ``membrane_last``.
      readout_beta: decay of the non-spiking output membrane.
      learn_beta, learn_threshold: make the neurons' ``beta`` / threshold per-neuron parameters.
    """

    def __init__(self, in_shape: Sequence[int], n_classes: int, *,
                 hidden: Sequence[int] = (256,), neuron: dict | None = None,
                 readout: str = "membrane_mean", readout_beta: float = 0.9,
                 learn_beta: bool = False, learn_threshold: bool = False, rngs: nnx.Rngs):
        hidden = [int(h) for h in hidden]
        if not hidden or any(h < 1 for h in hidden):
            raise ValueError(f"model.hidden must be a non-empty list of sizes >= 1, got {hidden}")
        neuron_cfg = dict(neuron or {"kind": "lif"})
        cell = neurons_lib.get(neuron_cfg.pop("kind", "lif"), **neuron_cfg)
        self.n_layers = len(hidden)
        sizes = [math.prod(in_shape), *hidden]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            setattr(self, f"fc{i}", nnx.Linear(n_in, n_out, rngs=rngs))
            setattr(self, f"lif{i}", SpikingNeurons(cell, n_out, learn_beta, learn_threshold))
        self.readout = Readout(sizes[-1], n_classes, readout, readout_beta, rngs=rngs)

    def __call__(self, x_TxBx: Array, spike_fn: Callable, remat: bool = False):
        T, B = x_TxBx.shape[:2]
        h = x_TxBx.reshape(T, B, -1)
        rates = {}
        for i in range(self.n_layers):
            h = getattr(self, f"lif{i}")(getattr(self, f"fc{i}")(h), spike_fn, remat)
            rates[f"lif{i}"] = h.mean(axis=(0, 2))
        return self.readout(h), {"rates": rates}


MODELS: dict[str, type] = {"mlp": MLP}


def create(name: str, in_shape: Sequence[int], n_classes: int, seed: int,
           **kwargs: Any) -> nnx.Module:
    """Build the model ``name`` from ``conf/model/<name>.yaml`` values, initialised from ``seed``."""
    return build(MODELS, name, {"in_shape": tuple(in_shape), "n_classes": n_classes,
                                "rngs": nnx.Rngs(seed), **kwargs}, "model")
