"""Checks on a composed config, run before anything is built.

Each bad value stops the run with one line naming the key, the value and what is allowed
(:class:`ConfigError`); ``python -m snntrain`` prints it and exits with status 2.
Group-specific checks (surrogate parameters, model sizes) live with the code that builds them
and are re-raised as :class:`ConfigError` by :func:`snntrain.train.build`.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration value that cannot work."""


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None, throw_on_missing=False)


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{key}={value!r} is invalid: must be {allowed}")


def _int(cfg, key, lo: int | None = None, optional: bool = False) -> None:
    v = _get(cfg, key)
    if v is None and optional:
        return
    if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
        _fail(key, v, f"an integer >= {lo}" if lo is not None else "an integer")


def _float(cfg, key, lo: float | None = None, hi: float | None = None, *,
           lo_open: bool = True, optional: bool = False) -> None:
    v = _get(cfg, key)
    if v is None and optional:
        return
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if ok and lo is not None:
        ok = v > lo if lo_open else v >= lo
    if ok and hi is not None:
        ok = v <= hi
    if not ok:
        rng = []
        if lo is not None:
            rng.append(f"{'>' if lo_open else '>='} {lo}")
        if hi is not None:
            rng.append(f"<= {hi}")
        _fail(key, v, "a finite number" + (" " + " and ".join(rng) if rng else ""))


def _choice(cfg, key, choices, optional: bool = False) -> None:
    v = _get(cfg, key)
    if v is None and optional:
        return
    if v not in choices:
        _fail(key, v, f"one of {', '.join(map(str, choices))}")


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first invalid value in ``cfg``."""
    for group in ("surrogate", "model", "dataset", "encoder", "optimizer", "trainer", "logger"):
        if not isinstance(_get(cfg, group), DictConfig):
            raise ConfigError(f"config group {group!r} is missing (add it to the defaults list)")
    _int(cfg, "seed", 0)
    _int(cfg, "T", 1)
    _int(cfg, "trainer.epochs", 1)
    _int(cfg, "trainer.batch_size", 1)
    _int(cfg, "trainer.log_every", 1)
    _int(cfg, "trainer.checkpoint_every", 0, optional=True)
    _int(cfg, "trainer.keep_checkpoints", 1)
    _choice(cfg, "trainer.parallel", ("auto", "none", "sharded", "pmap"))
    devices = _get(cfg, "trainer.devices")
    if devices is not None and devices != "all":
        _int(cfg, "trainer.devices", 1)
    _choice(cfg, "trainer.on_nan", ("stop", "skip_step"))
    _choice(cfg, "trainer.dtype", ("float32", "bfloat16"), optional=True)
    _choice(cfg, "trainer.remat", (True, False), optional=True)
    _float(cfg, "optimizer.lr", 0.0)
    _float(cfg, "optimizer.grad_clip", 0.0, optional=True)
    _choice(cfg, "logger.mode", ("auto", "online", "offline", "disabled"), optional=True)
    hidden = _get(cfg, "model.hidden")
    if hidden is not None and (not isinstance(hidden, ListConfig) or not hidden or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden)):
        _fail("model.hidden", OmegaConf.to_container(hidden) if isinstance(
            hidden, ListConfig) else hidden, "a non-empty list of integers >= 1")
    surrogate = _get(cfg, "surrogate")
    if _get(cfg, "surrogate.name") is None:
        raise ConfigError("surrogate.name is missing: choose one with surrogate=<name>")
    _choice(cfg, "surrogate.normalize", (True, False), optional=True)
    for k, v in surrogate.items():
        if k == "normalize":
            continue
        if k != "name" and (isinstance(v, bool) or not isinstance(v, (int, float))):
            _fail(f"surrogate.{k}", v, "a number")
    _float(cfg, "dataset.val_fraction", 0.0, 0.99, lo_open=False, optional=True)
    _choice(cfg, "dataset.download", (True, False), optional=True)
    _choice(cfg, "dataset.in_memory", (True, False, "auto"), optional=True)
