"""Optimizers from ``conf/optimizer/``: optax transformations built by name."""

from __future__ import annotations

from typing import Any

import jax
import optax

from snntrain.errors import ConfigError
from snntrain.registry import Registry, plain

OPTIMIZERS: Registry[Any] = Registry(
    "optimizer", {"adam": optax.adam, "adamw": optax.adamw, "sgd": optax.sgd}
)


def _constant(lr: Any, total_steps: int, warmup_steps: int) -> float:
    del total_steps
    if warmup_steps:  # (it was ignored without a word)
        raise ConfigError(f"optimizer.warmup_steps={warmup_steps} needs optimizer.schedule="
                          "cosine (the constant schedule has no warm-up); valid schedules: "
                          "constant, cosine")
    return lr


def _cosine(lr: Any, total_steps: int, warmup_steps: int) -> optax.Schedule:
    """Linear warm-up from 0 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``.

    ``optax.warmup_cosine_decay_schedule(0, lr, warmup_steps, total_steps)`` composed from its
    own two parts: that function tests ``peak_value == 0`` in Python, which a traced ``lr``
    (a population's per-member rate) cannot answer; with ``end_value=0`` its parts are exactly
    these, so a float ``lr`` computes the same values and a traced one the same arithmetic.
    """
    total_steps = max(total_steps, 1)
    if warmup_steps >= total_steps:
        raise ConfigError(f"optimizer.warmup_steps={warmup_steps} must be below the run's "
                         f"{total_steps} steps (trainer.epochs x steps per epoch)")
    if warmup_steps == 0:  # (join_schedules would never use the warm-up part)
        return optax.cosine_decay_schedule(lr, total_steps)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, lr, warmup_steps),
         optax.cosine_decay_schedule(lr, total_steps - warmup_steps)], [warmup_steps])


SCHEDULES: Registry[Any] = Registry(
    "optimizer.schedule", {"constant": _constant, "cosine": _cosine}
)


# The keys of an ``optimizer`` config that :func:`make` reads itself (the rest go to optax).
_OWN = ("lr", "schedule", "warmup_steps", "grad_clip", "weight_decay")


def synaptic_weights(params: Any) -> Any:
    """The weight-decay mask: True for the synaptic weights (every leaf under a ``kernel``:
    dense, recurrent, conv and readout), False for biases, norm scales and the neurons'
    ``beta_logit`` and ``threshold``, which decay would pull towards beta = 0.5 and a
    threshold of 0 (a neuron firing at every step). The usual AdamW practice (Loshchilov &
    Hutter 2019 decay weights; biases and norms are excluded in most JAX training code)."""
    def is_kernel(path: tuple, _: Any) -> bool:
        names = [getattr(k, "key", getattr(k, "name", None)) for k in path]
        return "kernel" in names

    return jax.tree_util.tree_map_with_path(is_kernel, params)


def make(name: str = "adam", lr: Any = 1e-3, *, weight_decay: float = 0.0,
         grad_clip: float | None = None, schedule: str = "constant", total_steps: int = 1,
         warmup_steps: int = 0, **kwargs: Any) -> optax.GradientTransformation:
    """``optax.chain(clip_by_global_norm?, <name>(schedule(lr)))``.

    Args:
      name: ``adam`` | ``adamw`` | ``sgd`` (the optax transformation of that name).
      lr: peak learning rate (a float, or a traced scalar: a population member's rate).
      weight_decay: decoupled weight decay (``adamw`` only), of the synaptic weights only
        (:func:`synaptic_weights`).
      grad_clip: clip the global gradient norm to this value (``None``: no clipping).
      schedule: ``constant`` or ``cosine`` (warmup then cosine decay to 0 over the run).
      total_steps, warmup_steps: used by the cosine schedule.
      **kwargs: passed to the optax constructor (e.g. ``b1``, ``momentum``).

    Raises:
      ConfigError: an unknown optimizer, schedule or optax parameter (one line, valid ones
        listed).
    """
    if "mask" in kwargs:
        raise ConfigError("optimizer.mask cannot be set: weight decay applies to the synaptic "
                          "weights (every 'kernel'); drop the key")
    if name == "adamw":
        kwargs["weight_decay"] = weight_decay
        kwargs["mask"] = synaptic_weights
    elif weight_decay and name in OPTIMIZERS:  # (an unknown name is said below)
        raise ConfigError(f"optimizer.weight_decay={weight_decay} is decoupled weight decay, "
                          f"which only optimizer=adamw applies; optimizer={name} would ignore "
                          "it: use optimizer=adamw, or drop the key")
    OPTIMIZERS.check(name, kwargs, given=("learning_rate",), also=_OWN)
    rate = SCHEDULES.lookup(schedule)(lr, total_steps, warmup_steps)
    opt = OPTIMIZERS[name](rate, **kwargs)
    if grad_clip:
        opt = optax.chain(optax.clip_by_global_norm(grad_clip), opt)
    return opt


def from_config(cfg: Any, total_steps: int) -> optax.GradientTransformation:
    """The optimizer of an ``optimizer`` config group for a run of ``total_steps`` steps."""
    params = plain(cfg)
    return make(params.pop("name", None), total_steps=total_steps, **params)
