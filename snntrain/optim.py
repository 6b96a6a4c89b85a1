"""Optimizers from ``conf/optimizer/``: optax transformations built by name."""

from __future__ import annotations

from typing import Any

import optax

OPTIMIZERS = {"adam": optax.adam, "adamw": optax.adamw, "sgd": optax.sgd}
SCHEDULES = ("constant", "cosine")


def make(name: str = "adam", lr: float = 1e-3, *, weight_decay: float = 0.0,
         grad_clip: float | None = None, schedule: str = "constant", total_steps: int = 1,
         warmup_steps: int = 0, **kwargs: Any) -> optax.GradientTransformation:
    """``optax.chain(clip_by_global_norm?, <name>(schedule(lr)))``.

    Args:
      name: ``adam`` | ``adamw`` | ``sgd`` (the optax transformation of that name).
      lr: peak learning rate.
      weight_decay: decoupled weight decay (``adamw`` only).
      grad_clip: clip the global gradient norm to this value (``None``: no clipping).
      schedule: ``constant`` or ``cosine`` (warmup then cosine decay to 0 over the run).
      total_steps, warmup_steps: used by the cosine schedule.
      **kwargs: passed to the optax constructor (e.g. ``b1``, ``momentum``).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown optimizer.schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
    if schedule == "cosine":
        lr = optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps, max(total_steps, 1))
    if name == "adamw":
        kwargs["weight_decay"] = weight_decay
    opt = OPTIMIZERS[name](lr, **kwargs)
    if grad_clip:
        opt = optax.chain(optax.clip_by_global_norm(grad_clip), opt)
    return opt
