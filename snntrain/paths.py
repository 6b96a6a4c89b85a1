"""Where the Hydra configs live (``snntrain/conf`` in a wheel, top-level ``conf/`` in a
checkout), and how run directories are named: ``${snntrain.stamp:}`` and
``${snntrain.dirname:...}`` in ``conf/config.yaml``, registered when this module is imported.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from snntrain import started_from_the_command_line  # noqa: F401 - (kept importable here)

_PACKAGE = Path(__file__).resolve().parent
CONFIG_DIR = _PACKAGE / "conf" if (_PACKAGE / "conf").is_dir() else _PACKAGE.parent / "conf"


# ---- naming: stable across a SLURM requeue, never nested by a '/' in an override ----------

MAX_NAME = 80


def stamp() -> str:
    """``slurm-<job>[_<task>]`` under SLURM (stable across requeues), else ``<date>/<time>``."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if job:
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        return f"slurm-{job}" + (f"_{task}" if task and os.environ.get("SLURM_ARRAY_JOB_ID")
                                 else "")
    return time.strftime("%Y-%m-%d/%H-%M-%S")


def dirname(overrides: str) -> str:
    """Hydra's ``override_dirname`` made one safe path component of at most 80 characters.

    Characters other than letters, digits and ``._=,+-`` become ``_`` (so an absolute path in
    an override does not nest the directory); a long name keeps its start and a hash of all.
    """
    import hashlib
    import re

    safe = re.sub(r"[^A-Za-z0-9._=,+\-]+", "_", str(overrides)).strip("_")
    if len(safe) <= MAX_NAME:
        return safe
    return f"{safe[:MAX_NAME - 9]}-{hashlib.sha1(safe.encode()).hexdigest()[:8]}"


def suffix(overrides: str) -> str:
    """``-<dirname>``, or nothing for a run without overrides (its directory ended in ``-``)."""
    name = dirname(overrides)
    return f"-{name}" if name else ""


def direction(metric: str) -> str:
    """The Optuna sweeper's ``direction`` for ``optimize_metric``: ``minimize`` for a loss or a
    time (``val_loss``, ``wall_time_s``), else ``maximize`` (a search on ``val_loss`` kept
    ``maximize`` and returned the worst trial as its best)."""
    return "minimize" if "loss" in metric or metric.endswith("time_s") else "maximize"


def register_resolvers() -> None:
    """``${snntrain.stamp:}``, ``${snntrain.dirname:...}`` and ``${snntrain.suffix:...}`` for
    conf/config.yaml, ``${snntrain.direction:...}`` for conf/hparams_search/optuna.yaml."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("snntrain.stamp"):
        OmegaConf.register_new_resolver("snntrain.stamp", stamp, use_cache=True)
        OmegaConf.register_new_resolver("snntrain.dirname", dirname)
    if not OmegaConf.has_resolver("snntrain.suffix"):
        OmegaConf.register_new_resolver("snntrain.suffix", suffix)
    if not OmegaConf.has_resolver("snntrain.direction"):
        OmegaConf.register_new_resolver("snntrain.direction", direction)


register_resolvers()


# ---- how this process was started, and the sweep it belongs to ----------------------------


SWEEP_RECORD = ".snntrain_sweep.json"  # a sweep's overrides (an Optuna sweep has no multirun.yaml)


def sweep_command(sweep_dir: Path) -> list[str] | None:
    """The arguments of the sweep recorded in ``sweep_dir`` (``-m``, Hydra's own overrides,
    the task's), without its directory; None when none is recorded."""
    try:
        record = json.loads((Path(sweep_dir) / SWEEP_RECORD).read_text())
        return [*map(str, record.get("config", [])), "-m", *map(str, record.get("hydra", [])),
                *map(str, record["task"])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# The command line's multirun (here, below every module that asks: startup, lifecycle,
# callbacks).
MULTIRUN_FLAGS = ("-m", "--multirun")


def is_multirun_mode(arg: str) -> bool:
    """Whether ``arg`` is the override ``hydra.mode=MULTIRUN`` (any case)."""
    return arg.lstrip("+~").replace(" ", "").lower() == "hydra.mode=multirun"


def multirun_requested(argv: Sequence[str]) -> bool:
    """Whether the command line ``argv`` asks Hydra for a multirun: ``-m``, ``--multirun`` or
    the override ``hydra.mode=MULTIRUN`` (any case)."""
    return any(a in MULTIRUN_FLAGS or is_multirun_mode(a) for a in argv)
