"""The run configuration: checked once, then read as typed values.

* :func:`parse` turns a composed config into a frozen :class:`RunConfig`, without importing
  JAX (a bad value is reported in about a second). Defaults live in ``conf/`` only: a key the
  config lacks is an error naming it, never filled in here.
* :func:`check_groups` checks what needs the registries (and so JAX): every group's keys
  against the parameters its class or function accepts; the surrogate, encoder, neuron and
  optimizer are built once, the model abstractly. It loads no data and compiles nothing.
* :func:`validate` is both; :func:`named` re-raises a builder's ``ValueError`` naming the key.

Every error is a :class:`ConfigError` with one line naming the key the user typed, the value
and what is allowed (``python -m snntrain`` prints it and exits with status 2). An unknown key
gets the closest valid one suggested.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import functools
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from snntrain.errors import ConfigError, finite_float64, shortened
from snntrain.paths import CONFIG_DIR


class UnresolvedConfig(ConfigError):
    """An interpolation in the config that cannot be resolved."""


# What ``optimize_metric`` may name: the numeric entries of every run's ``summary.json``.
SUMMARY_METRICS = (
    "test_accuracy", "test_loss", "val_accuracy", "val_loss", "best_val_accuracy",
    "best_val_epoch", "train_accuracy", "train_loss", "steps", "epochs", "n_params",
    "samples_per_s", "wall_time_s", "train_time_s", "compile_time_s",
)
# Keys that moved: a config still setting the old one gets a one-line error naming the new.
MOVED = {"model.rate_reg": "loss.rate_reg"}
MOVED_NODES = {"loss.rate_reg": ("weight", "target")}  # what a moved key is, if a node
GROUPS = ("surrogate", "model", "dataset", "encoder", "optimizer", "trainer", "loss", "metrics",
          "logger")
# The groups read as plain dicts (their keys belong to what their ``name`` picks, or, for
# metrics and logger, which have no name to ask, to the shipped ``conf/<group>/*.yaml``).
DICT_GROUPS = ("logger", "surrogate", "model", "dataset", "encoder", "optimizer", "metrics")

# ---- rules: each returns None for a good value, else what is allowed ---------------------

Rule = Callable[[Any], "str | None"]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


FLOAT32_MAX = 3.4028234663852886e38  # (a value above it is inf where it is computed)
FLOAT32_TINY = 1.1754943508222875e-38  # (a nonzero value below it is 0 where it is computed)


def _in_float32(v: float) -> bool:
    return v == 0 or FLOAT32_TINY <= abs(v) <= FLOAT32_MAX


def _is_number(v: Any) -> bool:
    return finite_float64(v) and _in_float32(v)


def _finite_text(v: Any) -> str:
    """"a finite number", said "in float32" of a value only float64 holds (1e39, 1e-50)."""
    return "a finite number" + (
        f" (in float32: {FLOAT32_TINY:.4g} to {FLOAT32_MAX:.4g} in size, or 0)"
        if finite_float64(v) and not _in_float32(v)
        or _is_int(v) and not finite_float64(v) else "")


INT_MAX = 2**31  # no count, size or step of a run reaches it (10**400 trained on, or raised)


def integer(lo: int, hi: int | None = None, *, null: bool = False) -> Rule:
    """An int (not a bool) ``>= lo`` and ``< hi`` (or None); ``hi`` is at most
    :data:`INT_MAX` (said only to a value above it)."""

    def rule(v: Any) -> str | None:
        top = INT_MAX if hi is None else min(hi, INT_MAX)
        if (v is None and null) or (_is_int(v) and lo <= v < top):
            return None
        said = hi if hi is not None else top if _is_int(v) and v >= top else None
        return (f"an integer >= {lo}" + (f" and < {said}" if said is not None else "")
                + (" or null" if null else ""))

    return rule


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = True,
           hi_open: bool = False, null: bool = False) -> Rule:
    """A finite int or float within the bounds (or None)."""

    def rule(v: Any) -> str | None:
        ok = (v is None and null) or (
            _is_number(v)
            and (lo is None or (v > lo if lo_open else v >= lo))
            and (hi is None or (v < hi if hi_open else v <= hi)))
        if ok:
            return None
        bounds = ([f"{'>' if lo_open else '>='} {lo}"] if lo is not None else []) + (
            [f"{'<' if hi_open else '<='} {hi}"] if hi is not None else [])
        return (_finite_text(v) + (" " + " and ".join(bounds) if bounds else "")
                + (" or null" if null else ""))

    return rule


def one_of(*choices: Any) -> Rule:
    """One of ``choices``, type included (``1`` is not ``True``)."""

    def rule(v: Any) -> str | None:
        if any(v == c and type(v) is type(c) for c in choices):
            return None
        return "one of " + ", ".join("null" if c is None else str(c).lower()
                                     if isinstance(c, bool) else str(c) for c in choices)

    return rule


def text(*, null: bool = False) -> Rule:
    """A non-empty string (or None)."""

    def rule(v: Any) -> str | None:
        if (v is None and null) or (isinstance(v, str) and v):
            return None
        quote = (f" (Hydra reads {v} as a number: quote it, '...=\"{v}\"')"
                 if isinstance(v, (int, float)) and not isinstance(v, bool) else "")
        return "a non-empty string" + (" or null" if null else "") + quote

    return rule


def address() -> Rule:
    """``host:port`` (port 1..65535; an IPv6 host in brackets), or None: ``nohost`` reached
    jax.distributed as "list index out of range"."""

    def rule(v: Any) -> str | None:
        m = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+):(\d+)", v) if isinstance(v, str) \
            else None
        if v is None or (m and 1 <= int(m.group(2)) <= 65535):
            return None
        return "host:port (a port from 1 to 65535) or null"

    return rule


def sizes(*, empty: bool = True, scalar: bool = False) -> Rule:
    """A list of integers >= 1 (layer widths, channels; ``empty``: may be ``[]``), or with
    ``scalar`` one such integer for every layer."""

    def rule(v: Any) -> str | None:
        if scalar and _is_int(v) and v >= 1:
            return None
        if isinstance(v, (list, tuple)) and (v or empty) and all(_is_int(x) and x >= 1
                                                                 for x in v):
            return None
        return ("an integer >= 1 or " if scalar else "") + "a list of integers >= 1, e.g. " \
            + ("[128,128]" if not scalar else "[5,3]")

    return rule


def finite(*, null: bool = False) -> Rule:
    """A finite number of either sign (a class checks its range), or None."""

    def rule(v: Any) -> str | None:
        return None if (v is None and null) or _is_number(v) else (
            _finite_text(v) + (" or null" if null else ""))

    return rule


def _tags(v: Any) -> str | None:
    return None if isinstance(v, (list, tuple)) and all(isinstance(t, str) and t for t in v) \
        else "a list of non-empty strings, e.g. [baseline,v2]"


def _devices(v: Any) -> str | None:
    return None if v is None or v == "all" or (_is_int(v) and v >= 1) else (
        "an integer >= 1, all or null")


def _resume(v: Any) -> str | None:
    if v in ("auto", "never") or (isinstance(v, str) and v and Path(v).expanduser().is_dir()):
        return None
    return "auto, never or an existing checkpoints/ directory"


def _data_dir(v: Any) -> str | None:
    """A directory (it may not exist yet: a download creates it), or None (or ""): a file
    there was reported as a dataset "not prepared in" it."""
    if v is None or v == "":
        return None
    if not isinstance(v, (str, int, os.PathLike)) or isinstance(v, bool):
        return "a directory or null"
    path = Path(str(v)).expanduser()
    return "a directory (not a file) or null" if path.exists() and not path.is_dir() else None


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # at byte 0, 512, 1024, 2048, ... (after a user block)


def _nir_file(v: Any) -> str | None:
    if v is None:
        return None
    if not (isinstance(v, str) and Path(v).expanduser().is_file()):
        return "null or an existing .nir file"
    try:
        with open(Path(v).expanduser(), "rb") as fh:
            size, at = os.fstat(fh.fileno()).st_size, 0
            while at + 8 <= size:  # at 0, 512, 1024, 2048, ...
                fh.seek(at)
                if fh.read(8) == HDF5_SIGNATURE:
                    return None
                at = max(512, 2 * at)
    except OSError as e:
        return f"a readable .nir file ({e.strerror})"
    return "a .nir file (NIR graphs are HDF5 files; this one is not)"


def _warmup(optimizer: Mapping) -> int:
    w = optimizer.get("warmup_steps") or 0
    return w if _is_int(w) and w > 0 else 0


def _field(rule: Rule) -> Any:
    return dataclasses.field(metadata={"rule": rule})


# ---- the typed config ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """``conf/trainer/default.yaml``: one field per key, each checked by its rule."""

    epochs: int = _field(integer(1))
    batch_size: int = _field(integer(1))  # global batch, split over all devices
    log_every: int = _field(integer(1))
    parallel: str = _field(one_of("auto", "none", "sharded", "pmap"))
    devices: int | str | None = _field(_devices)  # null or all: every local device
    distributed: bool | str = _field(one_of(True, False, "auto"))
    coordinator_address: str | None = _field(address())
    num_processes: int | None = _field(integer(1, null=True))
    process_id: int | None = _field(integer(0, null=True))
    init_timeout_s: int = _field(integer(1))
    checkpoint_every: int = _field(integer(0))  # 0: only at epoch ends
    keep_checkpoints: int = _field(integer(1))
    async_checkpointing: bool = _field(one_of(True, False))
    resume: str = _field(_resume)
    on_nan: str = _field(one_of("stop", "skip_step"))
    remat: bool = _field(one_of(True, False))
    dtype: str = _field(one_of("float32", "bfloat16"))
    progress: bool = _field(one_of(True, False))
    fused_epoch: bool = _field(one_of(True, False))
    init_from: str | None = _field(_nir_file)
    init_from_dt: float | None = _field(number(0.0, null=True))
    # the axes of a population and its settings (mode, chunk, vectorize, mesh: [members,
    # data] devices), checked by snntrain.population (Placement for the mesh) when any is set
    population: dict = _field(lambda v: None if isinstance(v, Mapping) else "a mapping")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """``conf/loss/``: terms added to the cross-entropy.

    Firing-rate regulariser: ``rate_reg_weight * (rate_l - rate_reg_target)**2`` averaged over
    the spiking layers ``l`` (``rate_l``: the layer's mean spikes per neuron and step).
    """

    rate_reg_weight: float = _field(number(0.0, lo_open=False))
    rate_reg_target: float = _field(number(0.0, 1.0, lo_open=False))


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A checked run configuration. The groups without a typed form (their keys are the
    parameters of the class or function their ``name`` picks) are plain dicts; treat them as
    read-only."""

    seed: int
    T: int
    optimize_metric: str
    trainer: TrainerConfig
    loss: LossConfig
    logger: dict[str, Any]
    surrogate: dict[str, Any]
    model: dict[str, Any]
    dataset: dict[str, Any]
    encoder: dict[str, Any]
    optimizer: dict[str, Any]
    metrics: dict[str, Any]


_TOP_RULES: dict[str, Rule] = {
    # JAX keys hold 32 bits here: a larger seed overflowed (a traceback) or wrapped onto another
    "seed": integer(0, 2**31),
    "T": integer(1),
    "optimize_metric": one_of(*SUMMARY_METRICS),
}
# Group keys that nothing checks before data is loaded (applied when the key is present).
GROUP_RULES: dict[str, Rule] = {
    "surrogate.normalize": one_of(True, False),
    # types the model's classes would coerce (bool("maybe"), int(1.5)) or fail on unnamed
    "model.hidden": sizes(),
    "model.channels": sizes(empty=False),
    "model.dense": sizes(),
    "model.kernel_size": sizes(empty=False, scalar=True),
    "model.pool": sizes(empty=False, scalar=True),
    "model.remat_chunk": integer(0),
    "model.learn_beta": one_of(True, False),
    "model.learn_threshold": one_of(True, False),
    "model.pool_before_neuron": one_of(True, False),
    "model.readout_beta": finite(),
    "model.readout_scale": number(0.0),
    "model.neuron.beta": finite(null=True),  # null with tau (which sets it)
    "model.neuron.threshold": finite(),
    "model.neuron.tau": finite(null=True),
    "model.neuron.tau_a": finite(null=True),
    "model.neuron.rho": finite(),
    "model.neuron.b": finite(),
    "model.neuron.dt": number(0.0),
    "model.neuron.detach_reset": one_of(True, False),
    "encoder.gain": finite(),
    "encoder.threshold": finite(),  # latency (its class checks the range)
    "encoder.tau": finite(),
    "optimizer.lr": number(0.0),
    "optimizer.grad_clip": number(0.0, null=True),
    "optimizer.weight_decay": number(0.0, lo_open=False),
    "optimizer.warmup_steps": integer(0),
    "optimizer.momentum": number(0.0, 1.0, lo_open=False, hi_open=True, null=True),
    # optax's own parameters (before: a string or list failed inside optax's first update
    # with a traceback, and b1=2 or nesterov=abc trained without a word)
    "optimizer.b1": number(0.0, 1.0, lo_open=False, hi_open=True),
    "optimizer.b2": number(0.0, 1.0, lo_open=False, hi_open=True),
    "optimizer.eps": number(0.0, lo_open=False),
    "optimizer.eps_root": number(0.0, lo_open=False),
    "optimizer.nesterov": one_of(True, False),
    "optimizer.mu_dtype": one_of(None, "float32", "bfloat16", "float16"),
    "optimizer.accumulator_dtype": one_of(None, "float32", "bfloat16", "float16"),
    "optimizer.mask": lambda v: None if v is None else (
        "null (a mask of the parameters is set from Python, not a config value)"),
    "dataset.n_classes": integer(1, null=True),
    "dataset.T": integer(1),  # event datasets' time steps (the top-level T by default)
    "dataset.data_dir": _data_dir,
    "dataset.cache_dir": _data_dir,  # (a file there skipped the cache without a word)
    "trainer.population.mode": one_of("grid", "zip"),
    "trainer.population.chunk": lambda v: None if v is None or v == "auto" or (
        _is_int(v) and v >= 1) else "an integer >= 1, auto or null",
    "trainer.population.vectorize": integer(1, null=True),
    "trainer.population.mesh": lambda v: None if v is None or (
        isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(x) and x >= 1 for x in v)
    ) else "[members, data] (two integers >= 1) or null",
    "dataset.val_fraction": number(0.0, 0.99, lo_open=False),
    "dataset.test_fraction": number(0.0, 0.99, lo_open=False),  # 0: unused with a test_split
    "dataset.download": one_of(True, False),
    "dataset.in_memory": one_of(True, False, "auto"),
    "logger.name": one_of("wandb", "none"),
    "logger.mode": one_of("auto", "online", "offline", "disabled"),
    "logger.entity": text(null=True),
    "logger.group": text(null=True),
    "logger.run_name": text(null=True),
    "logger.tags": _tags,
    "logger.project": text(),
    "logger.init_timeout_s": number(0.0),
    "metrics.synops": one_of(True, False),
}


# ---- errors -------------------------------------------------------------------------------


def _show(v: Any) -> str:
    """``v`` as one types it in an override (``'abc'``, ``true``, ``null``, ``[1, 2]``)."""
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "null"}[v]
    if _is_int(v):  # (1000...0 of 400 digits: the line's length)
        return shortened(str(v))
    return repr(v) if isinstance(v, str) else str(v)


def _invalid(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{key}={_show(value)} is invalid: must be {allowed}")


def _check(key: str, value: Any, rule: Rule) -> Any:
    allowed = rule(value)
    if allowed is not None:
        raise _invalid(key, value, allowed)
    return value


def unknown_key(key: str, valid: Any) -> ConfigError:
    """``unknown key a.b (did you mean a.c?); valid: ...`` for a key not in ``valid``."""
    prefix, _, last = key.rpartition(".")
    valid = sorted(valid)
    close = difflib.get_close_matches(last, valid, n=1, cutoff=0.6)
    hint = f" (did you mean {prefix + '.' if prefix else ''}{close[0]}?)" if close else ""
    return ConfigError(f"unknown key {key}{hint}; valid: {', '.join(valid) or '(none)'}")


def _no_unknown(prefix: str, d: Mapping[str, Any], valid: Any) -> None:
    for k in d:
        if k not in valid:
            raise unknown_key(f"{prefix}.{k}" if prefix else k, valid)


def moved(key: str) -> ConfigError | None:
    """The error for ``key`` (``a.b.c``) if it, or a key above it, has moved (:data:`MOVED`)."""
    for old, new in MOVED.items():
        if key == old or key.startswith(old + "."):
            where = f"{new}{key[len(old):]}"
            if where in MOVED_NODES:  # (a node: its keys take the values)
                where = f"{where}.<key> ({', '.join(f'{where}.{k}' for k in MOVED_NODES[where])})"
            return ConfigError(f"{old} moved to {new}: set {where} instead")
    return None


def moved_in_overrides(overrides: list[str]) -> ConfigError | None:
    """The error for the first command-line override (``[+~]key=value``) of a moved key:
    Hydra alone would only say that the old key is not in the config."""
    for arg in overrides:
        if "=" in arg and (err := moved(arg.lstrip("+~").split("=", 1)[0])) is not None:
            return err
    return None


@contextlib.contextmanager
def named(group: str, params: Mapping[str, Any], keys: Sequence[str] = ("name",)
          ) -> Iterator[None]:
    """Re-raise a ``ValueError``/``TypeError`` of building ``group`` from ``params`` as a
    :class:`ConfigError` naming the key: ``model.neuron.beta=1.5 is invalid: LIF: beta must be
    in (0, 1], got 1.5``. The key is the first of ``params`` the message mentions; a message
    that already names a full key is kept as it is. ``params`` that are not a mapping (an
    override ``model.neuron=alif`` replaced the node with a string) are named as such, with
    the node's ``keys``."""
    if not isinstance(params, Mapping):
        group_dir = group.replace(".", "/")
        pick = (f"choose one with {group_dir}=<option> or " if (CONFIG_DIR / group_dir).is_dir()
                else "")
        raise ConfigError(f"{group}={_show(params)} is invalid: {group} is a config node, not a "
                          f"value; {pick}set its keys ("
                          + ", ".join(f"{group}.{k}=..." for k in keys) + ")")
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise _name_error(group, params, e) from None


def _scalars(v: Any) -> list[Any]:
    items = v if isinstance(v, list) else [v]
    return [x for x in items if isinstance(x, (str, int, float)) and not isinstance(x, bool)]


def _name_error(group: str, params: Mapping[str, Any], e: Exception) -> ConfigError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    top = group.split(".")[0]
    if re.search(rf"\b{re.escape(top)}\.\w", msg):
        return ConfigError(msg)
    mentioned = sorted((m.start(), k) for k in params if k not in ("name", "kind")
                       for m in [re.search(rf"(?<![\w.]){re.escape(k)}(?![\w(])", msg)] if m)
    # else the key whose value the message quotes, if only one does
    quoted = [k for k, v in params.items()
              if any(re.search(rf"(?<![\w.]){re.escape(repr(x))}", msg) for x in _scalars(v))]
    key = mentioned[0][1] if mentioned else quoted[0] if len(quoted) == 1 else None
    if key is None:
        return ConfigError(f"{group}: {msg}")
    return ConfigError(f"{group}.{key}={_show(params[key])} is invalid: {msg}")


# ---- parse --------------------------------------------------------------------------------


def _plain(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The config as plain Python values, interpolations resolved (``hydra`` left out)."""
    out = {}
    for k in cfg:
        if k == "hydra":
            continue
        try:
            v = cfg[k]
            out[k] = OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        except OmegaConfBaseException as e:
            first = str(e).strip().splitlines()[0]
            key = getattr(e, "full_key", None) or k  # the leaf: trainer.epochs, not trainer
            raise UnresolvedConfig(f"{key}: cannot resolve the config ({first})") from None
    return out


def _get(d: Mapping[str, Any], key: str, prefix: str) -> Any:
    if key not in d:
        full = f"{prefix}.{key}" if prefix else key
        raise ConfigError(f"{full} is missing from the config (conf/ holds every default)")
    return d[key]


def _typed(cls: type, d: Mapping[str, Any], prefix: str, keys: Mapping[str, str]) -> Any:
    """``cls`` from ``d``: ``keys`` maps each field to its config key (relative to prefix)."""
    values = {}
    for f in dataclasses.fields(cls):
        path = keys[f.name].split(".")
        node, where = d, prefix
        for part in path[:-1]:
            node = _get(node, part, where)
            where = f"{where}.{part}"
            if not isinstance(node, Mapping):
                raise _invalid(where, node, "a mapping")
        values[f.name] = _check(f"{where}.{path[-1]}", _get(node, path[-1], where),
                                f.metadata["rule"])
    return cls(**values)


def parse(cfg: DictConfig | Mapping[str, Any]) -> RunConfig:
    """Check a composed config (without importing JAX) and return it typed: the top-level
    values, ``trainer`` and ``loss`` field by field, the other groups' names,
    :data:`GROUP_RULES` and the logger's keys.

    Raises:
      ConfigError: the first missing, unknown, moved or invalid key (one line naming it).
    """
    d = _plain(cfg)
    for old in MOVED:
        node: Any = d
        for part in old.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            raise moved(f"{old}.{next(iter(node))}" if isinstance(node, Mapping) and node
                        else old)
    for group in GROUPS:
        node = cfg.get(group) if OmegaConf.is_config(cfg) else None
        required = sorted(OmegaConf.missing_keys(node)) if OmegaConf.is_config(node) else []
        if required:
            raise ConfigError(f"{required[0]} is required: set {required[0]}=...")
    for group in GROUPS:
        if not isinstance(d.get(group), Mapping):
            raise ConfigError(f"config group {group!r} is missing (add it to the defaults list)")
    _no_unknown("", d, {*GROUPS, *_TOP_RULES})
    top = {k: _check(k, _get(d, k, ""), rule) for k, rule in _TOP_RULES.items()}
    trainer_keys = {f.name: f.name for f in dataclasses.fields(TrainerConfig)}
    _no_unknown("trainer", d["trainer"], trainer_keys)
    trainer = _typed(TrainerConfig, d["trainer"], "trainer", trainer_keys)
    _no_unknown("loss", d["loss"], {"rate_reg"})
    if isinstance(d["loss"].get("rate_reg"), Mapping):
        _no_unknown("loss.rate_reg", d["loss"]["rate_reg"], {"weight", "target"})
    loss = _typed(LossConfig, d["loss"], "loss",
                  {"rate_reg_weight": "rate_reg.weight", "rate_reg_target": "rate_reg.target"})
    for group in ("surrogate", "model", "dataset", "encoder", "optimizer", "logger"):
        name = _get(d[group], "name", group)
        if not isinstance(name, str):
            raise _invalid(f"{group}.name", name, f"a name (pick one with {group}=<name>)")
    for key, rule in GROUP_RULES.items():
        node: Any = d
        for part in key.split("."):
            node = node.get(part, _ABSENT) if isinstance(node, Mapping) else _ABSENT
        if node is not _ABSENT:
            _check(key, node, rule)
    ds = d["dataset"]
    if ds.get("test_fraction") == 0 and ds.get("test_split", None) is None:  # carved: digits,
        raise _invalid("dataset.test_fraction", 0, "a finite number > 0.0 and <= 0.99 where "
                       "the test split is carved from the data (0 only with a test_split)")
    for group in ("logger", "metrics"):
        _no_unknown_nested(group, d[group], _shipped_keys(group))
    return RunConfig(**top, trainer=trainer, loss=loss, **{g: d[g] for g in DICT_GROUPS})


_ABSENT = object()


def check_trainer(t: TrainerConfig, notes: bool = True) -> None:
    """Refuse ``trainer`` values that ask for several processes in a run that has one (they
    were ignored without a word: ``trainer.num_processes=2`` trained one process), and a
    process index out of range; note values that only go unused (``init_from_dt`` without
    ``init_from``, a coordinator address: a multirun may sweep their partner). For a run
    about to train (:func:`snntrain.experiment.build`, the start-up), not in :func:`parse`: a
    finished run's ``config.yaml`` is read as it was written. ``notes``: said (the start-up
    checks without them: the run's build says them once)."""
    from snntrain.parallel import wants_distributed

    if not wants_distributed(dataclasses.asdict(t)):
        for key, single in (("num_processes", 1), ("process_id", 0)):
            if (v := getattr(t, key)) not in (None, single):  # (1 and 0: one process's own)
                raise ConfigError(
                    f"trainer.{key}={_show(v)} asks for a multi-process run, and this one has "
                    "one process: set trainer.distributed=true (auto finds several only under "
                    "SLURM, on a TPU pod or with JAX_COORDINATOR_ADDRESS set), or drop it")
        if t.coordinator_address is not None and notes:
            _note(f"note: trainer.coordinator_address={_show(t.coordinator_address)} has no "
                  "effect in a one-process run (trainer.distributed)")
    if t.init_from_dt is not None and not t.init_from and notes:
        _note(f"note: trainer.init_from_dt={_show(t.init_from_dt)} has no effect without "
              "trainer.init_from (the graph it is the dt of)")
    if None not in (t.num_processes, t.process_id) and t.process_id >= t.num_processes:
        raise _invalid("trainer.process_id", t.process_id,
                       f"an integer from 0 to {t.num_processes - 1} "
                       f"(trainer.num_processes={t.num_processes})")


def _note(message: str) -> None:
    logging.getLogger("snntrain.config").info(message)


def _no_unknown_nested(prefix: str, d: Mapping[str, Any], valid: Mapping[str, Any]) -> None:
    _no_unknown(prefix, d, valid)
    for k, v in d.items():
        if isinstance(v, Mapping) and isinstance(valid[k], Mapping):
            _no_unknown_nested(f"{prefix}.{k}", v, valid[k])


@functools.cache
def _read_shipped(path: Path) -> Any:
    return OmegaConf.to_container(OmegaConf.load(path))


def shipped(path: Path) -> Any:
    """A ``conf/`` file's contents as plain containers, read once per process (a fresh copy
    for each call: callers may change it)."""
    return copy.deepcopy(_read_shipped(Path(path)))


@functools.cache
def _shipped_keys(group: str) -> dict[str, Any]:
    """The keys of every ``conf/<group>/*.yaml``, nested (for a group with no class to ask:
    any of them may be set whichever is chosen, e.g. an experiment's ``logger.tags``)."""

    def keys(node: Any) -> Any:
        return {k: keys(v) for k, v in node.items()} if isinstance(node, Mapping) else None

    out: dict[str, Any] = {}
    for path in sorted((CONFIG_DIR / group).glob("*.yaml")):
        for k, v in keys(OmegaConf.to_container(OmegaConf.load(path))).items():
            if k != "defaults":
                out[k] = {**(out.get(k) or {}), **v} if isinstance(v, dict) else out.get(k, v)
    return out


# ---- the groups, checked against their registries ------------------------------------------


def _own_params(fn: Any, *skip: str) -> set[str]:
    """The named keyword parameters of ``fn`` (its ``**kwargs`` aside)."""
    return {p.name for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - set(skip)


def _keys(prefix: str, d: Mapping[str, Any], registry: Any, name: str,
          given: tuple[str, ...] = (), also: tuple[str, ...] = ()) -> None:
    """``name`` is in ``registry`` (its own one-line error otherwise) and every key of ``d``
    is a parameter ``registry[name]`` takes (unchecked if it takes any)."""
    try:
        registry.lookup(name)
    except ValueError as e:  # (a DatasetError for datasets)
        raise ConfigError(str(e)) from None
    valid = registry.params(name, given)
    if valid is not None:
        try:
            _no_unknown(prefix, _without(d, "name"), {*valid, *also})
        except ConfigError as e:  # another <prefix>.name kept the old one's parameters
            if not _overridden(f"{prefix}.name"):
                raise
            raise ConfigError(f"{e} ({_switch_hint(prefix, name)})") from None
    if _overridden(f"{prefix}.name"):
        _no_kept_values(prefix, d, name)
    _no_deleted_values(prefix, d, name)


def no_overridden_decay(neuron: Mapping[str, Any],
                        swept: Mapping[str, tuple[str, Any]] | None = None) -> None:
    """``model.neuron.beta`` given beside ``tau`` (or ``rho`` beside ``tau_a``), which sets it:
    the value was replaced without a word (a multirun over beta trained one network).
    ``swept``: a multirun's swept keys (:func:`swept_in_config`), named as written. In a
    multirun's job it is a note: the sweep's start refused a swept beta, and a job of a swept
    tau (``-m model.neuron.tau=null,20``) uses the beta given in the others."""
    for decay, tau in (("beta", "tau"), ("rho", "tau_a")):
        key = f"model.neuron.{decay}"
        if neuron.get(tau) is not None and _overridden(key) and neuron.get(decay) is not None:
            given = (swept[key][0] if swept and key in swept
                     else f"{key}={_show(neuron[decay])}")
            msg = (f"{given} has no effect: model.neuron.{tau}={_show(neuron[tau])} sets "
                   f"{decay} = exp(-dt/{tau}); give one of them (model.neuron.{tau}=null to use "
                   f"{decay})")
            if swept is None and _in_multirun_job():
                _note(f"note: {msg}")
                continue
            raise ConfigError(msg)


def _in_multirun_job() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except (ImportError, ValueError):
        return False


def _switch_hint(prefix: str, name: str) -> str:
    return (f"to switch {prefix}.name, pick the config with {prefix.replace('.', '/')}={name}: "
            f"it brings that {prefix.split('.')[-1]}'s parameters")


def _no_kept_values(prefix: str, d: Mapping[str, Any], name: str) -> None:
    """``surrogate.name=sigmoid`` (for ``surrogate=sigmoid``) kept the chosen config's values
    (fast_sigmoid's alpha=25, not sigmoid's 4) without a word: a value the config chosen before
    set, which ``conf/<group>/<name>`` sets otherwise, not given on the command line, is
    refused (an experiment's or a population member's own value is no leftover)."""
    group = prefix.replace(".", "/")
    before, path = _chosen_file(group), CONFIG_DIR / group / f"{name}.yaml"
    if before is None or not path.is_file():
        return  # (a user's own config directory: not ours to judge)
    was = shipped(before)
    bases = [e for e in was.get("defaults", []) if isinstance(e, str) and e != "_self_"]
    if was.get("name", bases[0] if bases else before.stem) == name:
        return  # no switch (conv_vgg's name is conv's: its defaults list starts from conv)
    now = shipped(path)
    for k, v in d.items():
        want = now.get(k, v)
        if (k == "name" or want == v or was.get(k) != v or _overridden(f"{prefix}.{k}")
                or (isinstance(want, str) and "${" in want)):
            continue
        raise ConfigError(f"{prefix}.{k}={_show(v)} is not {group}={name}'s value ({_show(want)})"
                          f": it was kept from {group}={before.stem}, chosen before "
                          f"{prefix}.name={name} ({_switch_hint(prefix, name)}, or set "
                          f"{prefix}.{k} too)")
    # (model.neuron.name=alif from lif: alif's rho, tau_a and b were the code's defaults,
    # unrecorded in config.yaml)
    if missing := [k for k in now if k not in d and k not in ("defaults", "name")]:
        raise ConfigError(f"{prefix}.name={name} leaves out {group}={name}'s "
                          f"{', '.join(missing)} (the code's defaults would run, unrecorded in "
                          f"config.yaml): {_switch_hint(prefix, name)}")


def _no_deleted_values(prefix: str, d: Mapping[str, Any], name: str) -> None:
    """``~model.neuron.beta`` ran with the code's default, which config.yaml did not record."""
    group = prefix.replace(".", "/")
    path = _chosen_file(group)
    if path is None:
        return
    for k, v in shipped(path).items():
        if k not in d and k != "defaults" and _overridden(f"{prefix}.{k}", deleted=True):
            raise ConfigError(f"~{prefix}.{k} deletes a value the run needs (the code's default "
                              f"would run, unrecorded in config.yaml): set {prefix}.{k}=<value> "
                              f"instead ({group}={path.stem} has {_show(v)})")


def _chosen_file(group: str) -> Path | None:
    """``conf/<group>/<option>.yaml`` of the option this run composed for ``group``
    (``surrogate``, ``model/neuron``): Hydra's record of its choices in a Hydra job, else the
    command line's ``group=option`` or the defaults lists; None if not a shipped file."""
    choice = None
    try:
        from hydra.core.hydra_config import HydraConfig

        choice = HydraConfig.get().runtime.choices.get(group)
    except (ImportError, ValueError):
        given = [o.split("=", 1)[1] for o in sys.argv[1:]
                 if "=" in o and o.lstrip("+").split("=", 1)[0] == group]
        parent, _, leaf = group.rpartition("/")
        owner = (CONFIG_DIR / "config.yaml" if not parent
                 else _chosen_file(parent))  # model/neuron: the chosen model's defaults
        defaults = shipped(owner).get("defaults", []) if owner is not None else []
        listed = [e[leaf] for e in defaults if isinstance(e, dict) and leaf in e]
        choice = given[-1] if given else (listed[0] if listed else None)
    path = CONFIG_DIR / group / f"{choice}.yaml"
    return path if isinstance(choice, str) and path.is_file() else None


# The overrides of a run started from Python (train_and_evaluate's ``overrides``); the command
# line's are Hydra's, or ``sys.argv`` before Hydra has started (FROM_COMMAND_LINE).
_GIVEN: list[str] = []
FROM_COMMAND_LINE = False


def in_hydra_job() -> bool:
    """Whether a Hydra job is running (its config set): the command line's runs."""
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:
        return False
    return HydraConfig.initialized()


def command_overrides() -> list[str]:
    """This run's overrides: the Hydra job's; before Hydra has started, the command line's
    (``sys.argv``, only in ``python -m snntrain``: a script's own arguments are none of
    them); from Python, those given to :func:`snntrain.train.train_and_evaluate`."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):
        return list(sys.argv[1:]) if FROM_COMMAND_LINE else list(_GIVEN)


@contextlib.contextmanager
def given(overrides: Sequence[str] | None) -> Iterator[None]:
    """Within: ``overrides`` are :func:`command_overrides` of a run started from Python."""
    global _GIVEN
    before, _GIVEN = _GIVEN, list(overrides or [])
    try:
        yield
    finally:
        _GIVEN = before


def _overridden(key: str, deleted: bool = False) -> bool:
    """Whether this run's overrides (:func:`command_overrides`) set ``key`` (``deleted``:
    delete it, ``~key``)."""
    return any(o.lstrip("+~").split("=", 1)[0] == key and (o.startswith("~") or not deleted)
               for o in command_overrides())


def unused_values(run: RunConfig, data_shape: Sequence[int] = ()) -> list[str]:
    """Notes for values given on the command line that this configuration does not use
    (each trained bit for bit as without it, without a word): the readout's ``readout_scale``
    (``spike_count`` only) and ``readout_beta`` (the membrane readouts), the latency code's
    ``tau`` (``mode=log``), ``model.remat_chunk`` (``trainer.remat``), and
    ``dataset.polarity`` on a sensor of channels (``data_shape`` of one dimension)."""
    m, e, d = run.model, run.encoder, run.dataset
    unused = [
        ("model.readout_scale", m.get("readout") != "spike_count",
         f"model.readout={m.get('readout')} (it scales model.readout=spike_count's counts)"),
        ("model.readout_beta", m.get("readout") == "spike_count",
         "model.readout=spike_count (it is the decay of the membrane readouts)"),
        ("encoder.tau", e.get("name") == "latency" and e.get("mode") != "log",
         f"encoder.mode={e.get('mode')} (it is the time constant of encoder.mode=log)"),
        ("model.remat_chunk", not run.trainer.remat,
         "trainer.remat=false (it splits the time loop of a rematerialised run)"),
        ("dataset.polarity", len(data_shape) == 1,
         f"dataset={d.get('name')}'s sensor of channels (it sums a camera's polarities)"),
        # (configuration tester: accepted, recorded, and without effect or word)
        ("optimizer.nesterov", not run.optimizer.get("momentum"),
         f"optimizer.momentum={run.optimizer.get('momentum')} (optax's sgd applies Nesterov's "
         "correction to its momentum)"),
        ("model.neuron.detach_reset", (m.get("neuron") or {}).get("reset") == "none",
         "model.neuron.reset=none (there is no reset term to detach)"),
        ("loss.rate_reg.target", not run.loss.rate_reg_weight,
         "loss.rate_reg.weight=0 (it is the firing rate the regularizer pulls toward)"),
        *((f"metrics.energy.{k}", not run.metrics.get("synops", True),
           "metrics.synops=false (the energy is estimated from the synaptic operations)")
          for k in (run.metrics.get("energy") or {})),
        *((f"model.{k}", m.get("name") == "conv" and _no_pooling(m.get("pool")),
           f"model.pool={m.get('pool')} (no layer pools)")
          for k in ("pool_mode", "pool_before_neuron")),
    ]
    return [f"note: {key}={_show(_get_path(run, key))} has no effect with {why}"
            for key, unused_here, why in unused if unused_here and _overridden(key)]


def _no_pooling(pool: Any) -> bool:
    """Whether a conv model's ``pool`` (one window or one per layer) pools nowhere."""
    return all(p == 1 for p in (pool if isinstance(pool, (list, tuple)) else [pool]))


def _get_path(run: RunConfig, key: str) -> Any:
    group, _, rest = key.partition(".")
    value: Any = getattr(run, group)
    if dataclasses.is_dataclass(value):  # (loss.rate_reg.target: LossConfig.rate_reg_target)
        return getattr(value, rest.replace(".", "_"), None)
    for part in rest.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _without(d: Mapping[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in drop}


# Model checks before the data is loaded build on this input: large enough that no conv stack
# fails on it that would not fail on the real (smaller) images; shape errors of the real data
# are reported when the model is built for it.
STAND_IN_SHAPE, STAND_IN_CLASSES = (256, 256, 3), 10


def check_groups(run: RunConfig, model: bool = True) -> None:
    """Check each group's keys against what its ``name`` accepts (its registry), and build
    each part once: surrogate, encoder, neuron, optimizer and cost metrics as they are, the
    model abstractly (``nnx.eval_shape``) on a stand-in input (not if ``model`` is false:
    a population member whose model config another member's check built). Imports JAX;
    loads no data, allocates nothing. The lighter imports come first, so most errors come
    sooner.

    Raises:
      ConfigError: an unknown name or key (the closest valid one suggested), or a value the
        builder rejects (its message, prefixed with the key).
    """
    from snntrain import encoding, neurons, surrogates

    s = run.surrogate
    _keys("surrogate", s, surrogates.REGISTRY, s["name"], also=("normalize",))
    with named("surrogate", s):
        surrogates.from_config(s)

    _keys("encoder", run.encoder, encoding.ENCODERS, run.encoder["name"])
    with named("encoder", run.encoder):
        encoding.from_config(run.encoder)
    steps = run.dataset.get("T")
    if run.encoder["name"] == "none" and isinstance(steps, int) and steps != run.T:
        # (found after binning both splits, with a failed run directory left behind)
        raise ConfigError(f"dataset.T={steps} and T={run.T} differ: the events are binned "
                          f"into dataset.T steps and encoder none feeds them as they are; "
                          "set T alone (dataset.T follows it)")

    neuron = run.model.get("neuron")
    if neuron is None and _chosen_file("model/neuron") is not None:  # ~model.neuron, =null
        raise ConfigError("model.neuron is deleted: the code's default neuron would run, "
                          "unrecorded in config.yaml; pick one with model/neuron=<name> "
                          f"({', '.join(neurons.NEURONS.names())})")
    if isinstance(neuron, Mapping) and "kind" not in neuron:  # (kind: from_config says)
        _keys("model.neuron", neuron, neurons.NEURONS, neuron.get("name"))
        no_overridden_decay(neuron)
    with named("model.neuron", neuron or {}):
        cell = neurons.from_config(neuron)
    # (refused when the graph was read, after the run directory existed)
    if run.trainer.init_from and (problems := neurons.nir_problems(cell)):
        raise ConfigError(f"trainer.init_from={run.trainer.init_from}: {'; '.join(problems)}")

    from snntrain import data, events, optim, synops

    _keys("dataset", run.dataset, data.LOADERS, run.dataset["name"], given=("seed",))
    temporal = run.dataset["name"] in events.LOADERS  # (only event data is spikes already)
    if (msg := encoder_mismatch(run.encoder["name"], run.dataset["name"], run.T,
                                temporal)) is not None:
        raise ConfigError(msg)
    if temporal:  # binning, augmentation: before any data is read
        try:
            events.check_settings(**events.dataset_settings(dict(run.dataset), run.T))
        except events.EventDataError as e:
            raise ConfigError(str(e)) from None

    o = run.optimizer
    _keys("optimizer", o, optim.OPTIMIZERS, o["name"], given=("learning_rate",),
          also=tuple(_own_params(optim.make, "name", "total_steps")))
    with named("optimizer", o):
        # a run longer than its warm-up (the run's own length is checked when it is built)
        optim.from_config(o, total_steps=_warmup(o) + 1)

    with named("metrics.energy", run.metrics.get("energy") or {},
               keys=[f.name for f in dataclasses.fields(synops.Energy)]):
        synops.energy_from_config(run.metrics.get("energy"))

    if not model:
        return
    from flax import nnx

    from snntrain import models

    _keys("model", run.model, models.MODELS, run.model["name"], given=("in_shape", "n_classes"))
    if run.dataset["name"] in ("shd", "ssc"):  # (their sensor: (700,) channels)
        _model_takes(run, (700,))
    with named("model", run.model):  # abstractly (nothing allocated), on a stand-in input
        nnx.eval_shape(lambda: models.from_config(run.model, STAND_IN_SHAPE,
                                                  STAND_IN_CLASSES, 0))


def encoder_mismatch(encoder: str, dataset: str, T: int, temporal: bool,
                     image_shape: tuple[int, ...] | None = None) -> str | None:
    """Why ``encoder`` cannot feed ``dataset`` (None if it can): event data is spikes binned
    into ``T`` steps already (``encoder=none``); images need an encoder. Before, a rate-coded
    event dataset failed inside the compiled step with a reshape traceback, and an image
    dataset through ``encoder=none`` was refused after the run directory existed."""
    if temporal and encoder != "none":
        return (f"encoder={encoder} cannot encode dataset={dataset}: its samples are spikes "
                "binned into T steps already; use encoder=none (the event datasets' default)")
    if not temporal and encoder == "none":  # (also when the first axis happens to be T)
        shape = "" if image_shape is None else f" of shape {tuple(image_shape)}"
        return (f"encoder=none passes samples through as spikes over T={T} steps, but "
                f"dataset={dataset} holds images{shape}; use encoder=rate, latency or direct")
    return None


def _model_takes(run: RunConfig, sensor: tuple[int, ...] | None, where: str = "") -> None:
    """Refuse ``model=conv`` on events of a 1-D sensor (channels, not an image). Before, it
    was refused when the model was built for the data, after the run directory existed."""
    if run.model["name"] == "conv" and sensor is not None and len(sensor) == 1:
        raise ConfigError(f"model=conv needs H x W x C images, but dataset="
                          f"{run.dataset['name']}{where} gives a 1-D vector of {sensor[0]} "
                          "channels per step; use model=mlp or model=recurrent")


def data_shape(run: RunConfig, sensor: tuple[int, ...] | None = None
               ) -> tuple[int, ...] | None:
    """The shape of one step of the run's data, where the config (or the event files'
    ``sensor``) says it before the data is loaded: digits, the named tfds datasets (their
    ``image_shape``, or ``resize``) and event data; None where only the data says."""
    from snntrain import events

    d = run.dataset
    if d["name"] == "digits":
        return (8, 8, 1)
    if sensor is not None:
        binning = events.Binning(1, downsample=d.get("downsample"),
                                 polarity=d.get("polarity", True))
        return binning.frame_shape(sensor)
    shape, resize = d.get("image_shape"), d.get("resize")
    if d["name"] == "tfds" or not shape or len(shape) != 3:
        return None
    return (*map(int, resize), int(shape[-1])) if resize else tuple(map(int, shape))


def _model_fits(run: RunConfig, shape: tuple[int, ...]) -> None:
    """The model built for the data's ``shape`` (abstractly): a layer that does not fit it
    (a kernel larger than a conv layer's input) was refused after the run directory existed."""
    from flax import nnx

    from snntrain import models

    with named("model", run.model):
        nnx.eval_shape(lambda: models.from_config(run.model, shape, STAND_IN_CLASSES, 0))


def check_files(run: RunConfig, model: bool = True) -> tuple[int, ...] | None:
    """The files a new run will read, at its start-up (not in :func:`validate`, which also
    loads a finished run's parameters, whose data may have moved since): ``dataset=arrays``'
    file must pass every check of its loader (:func:`snntrain.data.check_arrays_file`); an
    event dataset's split files must be in Tonic's layout under ``dataset.data_dir`` (found
    and their headers read, as the loader does first: :func:`snntrain.events.readers`; before,
    a missing dataset was reported after the run directory existed). With ``model`` (the
    run's model is known), its input must fit the events' sensor (``dataset=events``: read
    from the file's ``sensor_size``), and the model built for the data's shape where it is
    known (:func:`data_shape`). Returns that shape, or None.

    Raises:
      ConfigError: naming the file and what is wrong with it.
    """
    from snntrain import data, event_formats, events, tfds_data
    from snntrain.event_formats import EventDataError
    from snntrain.sources import class_count

    name, sensor = run.dataset["name"], None
    try:
        if name == "arrays":
            data.check_arrays_file(run.dataset.get("path"), run.dataset.get("n_classes"))
        elif name in events.DATASETS:
            found = events.readers(name, run.dataset.get("data_dir"))
            sensor = next(iter(found.values())).sensor
            if model:
                _model_takes(run, sensor)
        elif name == "events" and (path := run.dataset.get("path")) not in (None, "", "???"):
            where = Path(os.path.expanduser(str(path)))
            if not where.is_file():
                raise ConfigError(f"dataset.path={path}: " + (
                    "a directory; give the .npz file of events (dataset=events reads one file)"
                    if where.is_dir() else "no such file"))
            sensor = event_formats.npz_sensor(path)
            labels = event_formats.npz_labels(path)
            if sensor is None or labels is None:  # (damaged: read_npz says how, in one line)
                event_formats.read_npz(path, run.dataset.get("time_unit", "us"))
            else:  # (a single class or id-like labels were refused after the run directory)
                class_count(labels, run.dataset.get("n_classes"),
                            {s: f"{path} (labels_{s})" for s in labels}, EventDataError,
                            note=False)
            if model:
                _model_takes(run, sensor, f" ({path})")
        elif name in tfds_data.TFDS_DATASETS and (why := tfds_data.unprepared(
                name, run.dataset.get("data_dir"), run.dataset.get("download", True))):
            raise ConfigError(why)
        shape = data_shape(run, sensor)
    except (data.BadArrays, events.EventDataError) as e:
        raise ConfigError(str(e)) from None
    if model and shape is not None:
        _model_fits(run, shape)
    return shape


def validate(cfg: DictConfig | Mapping[str, Any]) -> RunConfig:
    """:func:`parse` and :func:`check_groups`: everything that can be checked before data."""
    run = parse(cfg)
    check_groups(run)
    return run


# ---- what a multirun varies ----------------------------------------------------------------


def swept_in(params: Mapping[str, Any], task: list[str]) -> dict[str, tuple[str, Any]]:
    """Every key a multirun varies, ``{key: (the sweep as written, its parsed override)}``:
    ``params`` (``hydra.sweeper.params``: an experiment's or Optuna's search space) and the
    command line's sweeps (``task``), which replace the file's (a plain value on the command
    line drops it)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()

    def parsed(line: str) -> Any:
        try:
            return parser.parse_overrides([line])[0]
        except Exception:  # noqa: BLE001 - Hydra says what is wrong with it
            return None

    swept = {str(k): (f"{k}={v} (hydra.sweeper.params)", parsed(f"{k}={v}"))
             for k, v in (params or {}).items()}
    for line in task:
        if (o := parsed(line)) is None:
            continue
        if o.is_sweep_override():
            swept[o.key_or_group] = (o.input_line, o)
        else:
            swept.pop(o.key_or_group, None)
    return swept


def swept_in_config(config: DictConfig) -> dict[str, tuple[str, Any]]:
    """:func:`swept_in` of a composed multirun config (Hydra's ``on_multirun_start``)."""
    return swept_in(OmegaConf.select(config, "hydra.sweeper.params", default=None) or {},
                    list(OmegaConf.select(config, "hydra.overrides.task", default=None) or []))
