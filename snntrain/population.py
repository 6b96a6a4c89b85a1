"""Population training: variants of one run trained together in one compiled program.

``trainer.population`` lists values for the axes that can vary inside one program: the
surrogate type (``surrogate.name``) and its float parameters, ``seed``, ``optimizer.lr`` and the
neuron's ``beta`` and ``threshold``::

    python -m snntrain 'trainer.population.surrogate.name=[sigmoid,softsign,arctan]' \\
        'trainer.population.surrogate.alpha=[0.5,1,2,4,8]' 'trainer.population.seed=[0,1,2]'

trains the 45 combinations (``mode=grid``; ``mode=zip`` pairs equal-length lists instead).
Each member is a full config, the base config with the member's values set (:func:`members`),
built by :func:`snntrain.experiment.build` exactly as its solo run, and recorded as one run
under ``<run dir>/members/<k>-<values>/`` (``config.yaml``, ``metrics.jsonl``,
``summary.json``, its own wandb run), so reports and dashboards see a population as a multirun.

One program (:mod:`snntrain.population_step`): the members' states are stacked along a
leading member axis ``K`` and the solo train step (:func:`snntrain.steps.make_train_step`,
unchanged) is mapped over it. ``trainer.population.vectorize=1`` (the CPU default, also the
fastest there) runs the members one after another inside the compiled step, each
bit-identical to its solo run; larger values ``vmap`` that many members at once (the GPU/TPU
default; equal to the solo runs up to float32 rounding). Under ``trainer.on_nan=stop`` a member
whose loss or gradient becomes non-finite is frozen on the device and recorded as
``diverged``; the others go on unchanged. ``trainer.population.chunk`` trains the members in
sequential groups, each one program, after checking that a group's step fits in memory.
With several devices the program runs on a ``members x data`` mesh (:class:`Placement`:
members split over one axis, each member's batch rows over the other; shape chosen from the
device count, the members and the batch, or ``trainer.population.mesh=[m,d]``). On a CPU, the
command line trains one group of members per core in worker processes, each pinned to its core
(``trainer.population.workers``, :mod:`snntrain.workers`); with ``workers=null`` its start-up
splits the cores into as many devices instead (``trainer.population.cpu_devices``,
:func:`split_cpu`) and spreads the members over them, members only: each device runs its
members' steps exactly as one device would, side by side with the others.
As a solo run, a population chooses glibc's malloc policy on its first steps after compiling
(:mod:`snntrain.malloctune`; one trial for the whole population, keyed by
:func:`step_signature`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from snntrain import autotune, hostenv, lifecycle, malloctune, rundir, surrogates, workers, writers
from snntrain import checkpoint as ckpt_lib
from snntrain import config as config_lib
from snntrain import data as data_lib
from snntrain.errors import ConfigError, RefusedConfig
from snntrain.experiment import (
    DATA_LOCATION_KEYS,
    MODEL_COMPUTATION_KEYS,
    Experiment,
    build,
    fingerprint,
    newest_fingerprint,
)
from snntrain.nirgraph import nir_params
from snntrain.parallel import MEMORY_FRACTION, available_memory
from snntrain.paths import CONFIG_DIR
from snntrain.population_step import (
    Program,
    build_program,
    choose_mesh,
    initial_state,
)
from snntrain.progress import Progress
from snntrain.runs import POPULATION_SETTINGS, no_number, population_axes
from snntrain.runstate import (
    TIMES,
    Diverged,
    DivergencePolicy,
    Preempted,
    RunProgress,
    failure_record,
)

KEY = "trainer.population"
SETTINGS = POPULATION_SETTINGS
# how, not what, it trains
PLACEMENT_SETTINGS = ("chunk", "vectorize", "mesh", "cpu_devices", "workers")
MODES = ("grid", "zip")
# trainer.population.<key> -> the member config key it sets (surrogate.* handled apart)
AXES = {
    "optimizer.lr": "optimizer.lr",
    "neuron.beta": "model.neuron.beta",
    "neuron.threshold": "model.neuron.threshold",
    "seed": "seed",
}
VARIABLE = "surrogate.name, surrogate.<float parameter>, seed, optimizer.lr, neuron.beta, " \
           "neuron.threshold"
# a multirun that sweeps one of these chooses its jobs' devices: the CPU is split, as before
# worker processes (each job then places its members by its own values)
DEVICE_KEYS = {"trainer.devices", "trainer.parallel", f"{KEY}.mesh", f"{KEY}.cpu_devices",
               f"{KEY}.workers"}


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- which members -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Member:
    """One variant: its position, its values (member config key -> value) and its config."""

    index: int
    values: dict[str, Any]
    cfg: DictConfig

    @property
    def name(self) -> str:
        """``<k>-<key>=<value>,...``: the directory name under ``members/`` (as a multirun's)."""
        return f"{self.index}-" + rundir.dirname(
            ",".join(f"{k}={v}" for k, v in self.values.items()))


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    if prefix.rstrip(".") in AXES or prefix.count(".") == 2 and prefix.startswith("surrogate."):
        raise ConfigError(f"{KEY}.{prefix.rstrip('.')}={node} is invalid: must be a list of "
                          "values")  # (a dict read as the axis lr.a "cannot vary")
    out: dict[str, Any] = {}
    for k, v in node.items():
        out.update(_flatten(v, f"{prefix}{k}."))
    return {k.rstrip("."): v for k, v in out.items()}


def _top_level_keys() -> set[str]:
    """The run config's top-level names: ``conf/config.yaml``'s keys and its groups."""
    primary = OmegaConf.load(CONFIG_DIR / "config.yaml")
    groups = {p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and p.name != "hydra"}
    return {str(k) for k in primary if k not in ("defaults", "hydra")} | groups


def _target(key: str) -> str:
    """The member config key set by ``trainer.population.<key>`` (or a one-line error)."""
    if key in AXES:
        return AXES[key]
    if key in ("surrogate", "surrogate.name"):
        return "surrogate"
    if key.startswith("surrogate.") and key.count(".") == 1:
        return key
    solo_key = "model." + key if key.startswith("neuron.") else key
    if key.split(".")[0] not in _top_level_keys() | {"neuron"}:
        raise ConfigError(f"{KEY}.{key} is neither a population setting nor an axis: settings "
                          f"{', '.join(SETTINGS)}; axes {VARIABLE}")
    if key in ("neuron.tau", "neuron.dt"):  # (it was said to change the model's shape)
        raise ConfigError(f"{KEY}.{key} is not an axis: it only sets beta = exp(-dt/tau); vary "
                          f"{KEY}.neuron.beta (the betas of the values you want), or use a "
                          f"multirun (python -m snntrain -m {solo_key}=<a>,<b> ...) with the "
                          f"population inside each job. Axes that can vary: {VARIABLE}")
    raise ConfigError(f"{KEY}.{key} cannot vary inside one program (it changes the data, the "
                      f"model's shape or the compiled step); use a multirun for it (python -m "
                      f"snntrain -m {solo_key}=<a>,<b> ...), with the population inside each "
                      f"job. Axes that can vary: {VARIABLE}")


def axes(cfg: DictConfig) -> dict[str, list[Any]]:
    """The population's axes, ``{member config key: values}`` in grid order (empty: none)."""
    node = OmegaConf.select(cfg, KEY, default=None)
    if node is None:
        return {}
    pop = OmegaConf.to_container(node, resolve=True)
    found: dict[str, list[Any]] = {}
    for key, values in _flatten({k: v for k, v in pop.items() if k not in SETTINGS}).items():
        if values is None:
            continue
        if values == []:  # a grid over it would have no members; null means no axis
            raise ConfigError(f"{KEY}.{key}=[] is empty: give it at least one value, or null "
                              "for no axis")
        target = _target(key)
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if any(isinstance(v, (dict, list)) for v in values):
            raise ConfigError(f"{KEY}.{key}={values} is invalid: must be a list of values")
        found[target] = values
    order = ["surrogate", *[k for k in found if k.startswith("surrogate.")],
             "optimizer.lr", "model.neuron.beta", "model.neuron.threshold", "seed"]
    return {k: found[k] for k in order if k in found}


def with_aliases(overrides: list[str]) -> list[str]:
    """``[+]trainer.population.surrogate=[a,b]`` (the surrogate types, as issue 16 and spoken
    usage write it) as ``trainer.population.surrogate.name=[a,b]``: Hydra alone refuses it
    ("Cannot merge DictConfig with ListConfig"), since the node also holds the parameters'
    axes (``trainer.population.surrogate.alpha=[...]``)."""
    out = []
    for arg in overrides:
        key, eq, value = arg.partition("=")
        if eq and key.lstrip("+") == f"{KEY}.surrogate" and not value.lstrip().startswith("{"):
            arg = f"{KEY}.surrogate.name={value}"  # (a dict {name: [...], alpha: [...]} stays)
        out.append(arg)
    return out


def alias_conflict(overrides: list[str]) -> ConfigError | None:
    """Both spellings of the surrogate axis (:func:`with_aliases`) on one command line: Hydra
    kept the last and dropped the other's types without a word."""
    given = [a for a in overrides if a.partition("=")[1] and a.partition("=")[0].lstrip("+")
             in (f"{KEY}.surrogate", f"{KEY}.surrogate.name")
             and not a.partition("=")[2].lstrip().startswith("{")]
    if len(given) > 1:
        return ConfigError(f"{' and '.join(given)} set the same axis ({KEY}.surrogate=[...] "
                           f"is short for {KEY}.surrogate.name=[...]); give the surrogate "
                           "types once")
    return None


def sweep_conflict(argv: list[str]) -> ConfigError | None:
    """The error for a key a sweep varies (``-m a=1,2``, or an Optuna search's parameters)
    that a population axis also sets (or, beside a ``surrogate.name`` axis, any
    ``surrogate.<param>``): refused before the sweep starts, not once per job (30 Optuna
    trials failed one after the other, reported as running)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(
            [a for a in argv if not a.startswith("-")])
    except Exception:  # noqa: BLE001 - a malformed override: Hydra's own message says it
        return None
    targets = set()
    for o in parsed:
        sub = o.key_or_group.removeprefix(f"{KEY}.")
        if sub != o.key_or_group and sub not in SETTINGS and o.value() is not None:
            with contextlib.suppress(ConfigError):  # said by override_error, with its key
                targets.add(_target(sub))
    if not targets:
        return None
    swept = {o.key_or_group: o.input_line for o in parsed if o.is_sweep_override()}
    for o in parsed:  # an Optuna search's parameters (hparams_search=<name>)
        if o.key_or_group == "hparams_search" and isinstance(o.value(), str):
            path = CONFIG_DIR / "hparams_search" / f"{o.value()}.yaml"
            params = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params",
                                      default=None) if path.is_file() else None
            for key in params or {}:
                swept.setdefault(str(key), f"{key} (sampled by hparams_search={o.value()})")
    return _sweep_collision(swept, targets)


def sweep_conflict_in(config: DictConfig) -> ConfigError | None:
    """:func:`sweep_conflict` for the composed config of a multirun (Hydra's
    ``on_multirun_start``): also the sweeps and axes an ``experiment=`` file sets
    (``hydra.sweeper.params``; a ``trainer.population`` axis), which the command line does
    not show (every job of ``-m experiment=alpha_scan 'trainer.population.seed=[0,1]'``
    failed)."""
    try:
        targets = set(axes(config))
    except ConfigError:
        return None  # the job's own check names it
    if not targets:
        return None
    swept = {k: quote for k, (quote, _) in config_lib.swept_in_config(config).items()}
    return _sweep_collision(swept, targets)


def _sweep_collision(swept: dict[str, str], targets: set[str]) -> ConfigError | None:
    for key, what in swept.items():
        if (collision := _collision(key, targets)) is not None:
            return ConfigError(
                f"{what} varies {key} across the sweep's jobs, and the population axis "
                f"{KEY}.{_axis_name(key if collision == 'twice' else 'surrogate')} sets it in "
                "every member, so every job would train the same population; vary it in one of "
                "the two only")
    return None


def _collision(key: str, targets: Iterable[str]) -> str | None:
    """How a run-level value of ``key`` (an override, or a key a sweep varies) meets the
    population axes that set ``targets`` (member config keys, as :func:`axes` gives them):
    ``twice`` when an axis sets the same key; ``dropped`` for ``surrogate.<param>`` beside a
    surrogate type axis, which gives every member its surrogate's own config
    (``surrogate.normalize`` is carried over, see :func:`member_config`); else None."""
    if key in targets:
        return "twice"
    if "surrogate" in targets and key.startswith("surrogate.") and key != "surrogate.normalize":
        return "dropped"
    return None


def _axis_name(target: str) -> str:
    """The ``trainer.population.<axis>`` that sets the member config key ``target``."""
    return {**{v: k for k, v in AXES.items()}, "surrogate": "surrogate.name"}.get(target, target)


def override_error(overrides: list[str]) -> ConfigError | None:
    """The error for the first command-line ``[+]trainer.population.<key>=...`` that cannot
    vary in a population or is not a population key at all: the message :func:`axes` would
    give, before Hydra's own (without ``+``, "Key ... is not in struct", suggesting ``+``)."""
    shipped = set(_flatten(OmegaConf.to_container(_default_population())))
    for arg in overrides:
        key = arg.split("=", 1)[0].removeprefix("+").removeprefix("+")
        if not key.startswith(KEY + ".") or "=" not in arg:
            continue
        key = key[len(KEY) + 1:]
        if key in shipped or any(s.startswith(key + ".") for s in shipped):
            continue
        try:
            _target(key)
        except ConfigError as e:
            return e
    return None


def is_population(cfg: DictConfig) -> bool:
    """Whether ``cfg`` asks for population training (some ``trainer.population`` axis set)."""
    return bool(axes(cfg))


def unused_settings(cfg: DictConfig) -> str | None:
    """The note for a run without population axes that sets how a population would be
    trained (``mesh``, ``chunk``, ``vectorize``, ``mode=zip``): it trains as a normal run."""
    set_ = [f"{KEY}.{k}={_setting(cfg, k)}" for k in ("mesh", "chunk", "vectorize")
            if _setting(cfg, k) is not None]
    if _setting(cfg, "cpu_devices") not in (None, "auto"):
        set_.append(f"{KEY}.cpu_devices={_setting(cfg, 'cpu_devices')}")
    if _setting(cfg, "workers") not in (None, 1, "auto"):
        set_.append(f"{KEY}.workers={_setting(cfg, 'workers')}")
    if str(_setting(cfg, "mode") or "grid") != "grid":
        set_.append(f"{KEY}.mode={_setting(cfg, 'mode')}")
    if not set_ or is_population(cfg):
        return None
    return (f"snntrain: note: {', '.join(set_)} has no effect: no {KEY} axis is set (e.g. "
            f"{KEY}.seed=[0,1,2]), so this is a normal run")


def _setting(cfg: DictConfig, name: str) -> Any:
    return OmegaConf.select(cfg, f"{KEY}.{name}", default=None)


def _combinations(found: dict[str, list[Any]], mode: str) -> list[dict[str, Any]]:
    keys = list(found)
    if mode == "grid":
        return [dict(zip(keys, combo, strict=True)) for combo in
                itertools.product(*found.values())]
    if mode == "zip":
        lengths = {len(v) for v in found.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{k}: {len(v)}" for k, v in found.items())
            raise ConfigError(f"{KEY}.mode=zip needs lists of equal length; got {sizes}")
        return [dict(zip(keys, combo, strict=True)) for combo in zip(*found.values(),
                                                                          strict=True)]
    raise ConfigError(f"{KEY}.mode={mode!r} is invalid: must be one of {', '.join(MODES)}")


def _default_population() -> DictConfig:
    return OmegaConf.create(config_lib.shipped(CONFIG_DIR / "trainer" / "default.yaml")[
        "population"])


def _surrogate_group(name: Any) -> DictConfig:
    """``conf/surrogate/<name>.yaml``: the group ``surrogate=<name>`` composes."""
    path = CONFIG_DIR / "surrogate" / f"{name}.yaml"
    if not isinstance(name, str) or not path.is_file():
        raise ConfigError(f"{KEY}.surrogate.name={name!r} is invalid: must be one of "
                          f"{', '.join(surrogates.available())}")
    return OmegaConf.create(config_lib.shipped(path))


def member_config(cfg: DictConfig, values: dict[str, Any]) -> DictConfig:
    """The base config with a member's values set and no population: a solo run's config.

    With a ``surrogate`` value the surrogate group is replaced as ``surrogate=<name>`` would
    (that surrogate's defaults), then the ``surrogate.<param>`` values are set.
    """
    member = copy.deepcopy(cfg)
    with open_dict(member):
        member.trainer.population = _default_population()
        if "surrogate" in values:  # the top-level defaults (normalize) first, as Hydra does
            top = {"normalize": cfg.surrogate.get("normalize", False)}
            member.surrogate = OmegaConf.merge(top, _surrogate_group(values["surrogate"]))
        for key, value in values.items():
            if key != "surrogate":
                OmegaConf.update(member, key, value, merge=False, force_add=True)
    return member


def members(cfg: DictConfig) -> list[Member]:
    """Every member of the population ``cfg`` describes (grid or zip of its axes)."""
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"members takes the run's composed config (an omegaconf DictConfig, "
                        f"e.g. hydra.compose(...)), got {type(cfg).__name__}")
    mode = _setting(cfg, "mode") or "grid"
    found = axes(cfg)
    _check_not_set_twice(found, cfg)
    combos = _combinations(found, str(mode))
    return [Member(k, values, member_config(cfg, values)) for k, values in enumerate(combos)]


def check_members(cfg: DictConfig) -> list[Member]:
    """:func:`members`, each member's values checked as its solo run's are at start-up
    (:func:`snntrain.config.validate`: its groups built, abstractly; once per distinct
    member, seeds aside), before the run directory exists."""
    ms = members(cfg)
    runs, seen, models = [], set(), set()
    for m in ms:
        with _named_member(m):
            runs.append(config_lib.parse(m.cfg))
            parts = OmegaConf.to_yaml(OmegaConf.masked_copy(m.cfg, ["surrogate", "model",
                                                                    "optimizer"]))
            model = OmegaConf.to_yaml(m.cfg.model)
            if parts not in seen:
                seen.add(parts)
                config_lib.check_groups(runs[-1], model=model not in models)
                models.add(model)
    _refuse_fused(runs[0])
    worker_count(cfg)
    return ms


def _refuse_fused(run: Any) -> None:
    """``trainer.fused_epoch`` runs one model's whole epoch in a scan: not a population's."""
    if run.trainer.fused_epoch:
        raise ConfigError(f"{KEY}: trainer.fused_epoch=true is not supported with a "
                          "population; set trainer.fused_epoch=false")


def _task_overrides(cfg: DictConfig) -> list[str]:
    """This job's command-line overrides (a multirun's or Optuna's swept values included):
    ``cfg``'s own ``hydra`` node (at start-up, before Hydra's config is set), else
    :func:`snntrain.config.command_overrides` (Hydra's, or those given from Python)."""
    given = OmegaConf.select(cfg, "hydra.overrides.task", default=None)
    return list(given) if given is not None else config_lib.command_overrides()


def _check_not_set_twice(found: dict[str, list[Any]], cfg: DictConfig) -> None:
    """A value a population axis would silently replace: an override of the same key (also
    one swept by ``-m`` or Optuna, which would then record values nobody trained), or
    ``model.neuron.beta`` under ``model.neuron.tau`` (which overrides beta in every member)."""
    for arg in _task_overrides(cfg):
        key, eq, value = arg.lstrip("+~").partition("=")
        collision = _collision(key, found) if eq else None
        if collision == "dropped":
            raise ConfigError(
                f"{arg} would be dropped: the population axis {KEY}.surrogate.name gives "
                f"every member its surrogate's own config; vary it as an axis "
                f"({KEY}.{key}=[{value}]) or leave it out (a key swept by -m or Optuna cannot "
                "be set under a surrogate axis either)")
        if collision == "twice":
            raise ConfigError(
                f"{key} is set twice: by the override {arg} and by the population axis "
                f"{KEY}.{_axis_name(key)}, which would replace it in every member; drop one (a "
                "key swept by -m or Optuna cannot also be a population axis)")
    tau = OmegaConf.select(cfg, "model.neuron.tau", default=None)
    if "model.neuron.beta" in found and tau is not None:
        raise ConfigError(
            f"{KEY}.neuron.beta cannot vary while model.neuron.tau={tau} sets beta = "
            "exp(-dt/tau) in every member; set model.neuron.tau=null, or vary the time "
            "constant with a multirun (-m model.neuron.tau=<a>,<b>)")


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


# ---- one group of members trained together -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a population trains: ``devices`` (the number of local devices used) and the
    ``members x data`` mesh asked for (``trainer.population.mesh``; None: chosen per program
    by :func:`snntrain.population_step.choose_mesh`)."""

    devices: int = 1
    mesh: tuple[int, int] | None = None
    members_only: bool = False  # the CPU split into devices (cpu_devices): no data axis

    @classmethod
    def from_config(cls, cfg: DictConfig) -> Placement:
        """``trainer.parallel``/``trainer.devices`` (as a solo run counts its devices) and
        ``trainer.population.mesh``, checked (one-line errors naming the key)."""
        tcfg = cfg.trainer
        local = len(jax.local_devices())
        if jax.process_count() > 1:
            raise ConfigError(f"{KEY}: population training runs in one process (its mesh spans "
                              "this process's devices); use a multirun for several hosts")
        if tcfg.parallel == "pmap":
            raise ConfigError(f"trainer.parallel=pmap is not supported with a population: "
                              f"valid: auto, sharded ({KEY}.mesh over the devices), none")
        wanted = tcfg.get("devices")
        devices = 1 if tcfg.parallel == "none" else (
            local if wanted in (None, 0, "all") else int(wanted))
        cpu = jax.default_backend() == "cpu"
        hint = (f"; on a CPU, {KEY}.cpu_devices=<n> splits the cores into n devices "
                f"(n up to {hostenv.usable_cores()} here)"
                if cpu and not hostenv.cpu_split() and hostenv.device_count_flag() is None
                else "")
        if not 1 <= devices <= local:
            raise ConfigError(f"trainer.devices={wanted}: this process has {local} local "
                              f"device(s); valid: 1..{local}{hint}")
        mesh = _setting(cfg, "mesh")
        n, asked = cpu_devices(cfg), _setting(cfg, "cpu_devices")  # (checked in every job)
        if mesh is None and cpu and asked in (None, 1):  # off: one device, whatever XLA_FLAGS
            return cls(1)
        if mesh is None and cpu and asked != "auto":  # (a multirun's job: its own count)
            flag = hostenv.device_count_flag()
            if flag is None:
                raise ConfigError(f"{KEY}.cpu_devices={n}: JAX started before the CPU could be "
                                  "split (from Python, call snntrain.hostenv.split_cpu("
                                  f"{n}) before anything starts JAX); valid here: auto, 1")
            if not hostenv.cpu_split() and flag != n:
                raise _flag_conflict(n, flag)
            return cls(min(devices, n), members_only=True)
        if mesh is None and cpu and hostenv.cpu_split():  # the split CPU: members only (a
            # data axis would change the numbers; each device computes as one device does)
            return cls(devices, members_only=True)
        if mesh is None:
            return cls(devices)
        mesh = list(mesh) if OmegaConf.is_list(mesh) or isinstance(mesh, list) else mesh
        if not (isinstance(mesh, list) and len(mesh) == 2 and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in mesh)):
            raise ConfigError(f"{KEY}.mesh={mesh!r} is invalid: must be [members, data] (two "
                              "integers >= 1) or null")
        if mesh[0] * mesh[1] != devices:
            why = ("trainer.parallel=none" if tcfg.parallel == "none" else
                   f"trainer.devices={'null' if wanted is None else wanted}, "
                   f"trainer.parallel={tcfg.parallel}")
            raise ConfigError(f"{KEY}.mesh=[{mesh[0]},{mesh[1]}] uses {mesh[0] * mesh[1]} "
                              f"devices, but this run trains on {devices} ({why}); members x "
                              f"data must be {devices}{hint}")
        return cls(devices, (mesh[0], mesh[1]))

    def pad_for(self, k: int) -> int:
        """Copies of the last member that make ``k`` members fill a members-only mesh (the
        split CPU's: 21 members on 2 devices train 22 rows, 11 per device)."""
        return -k % self.mesh_for(k, 1)[0] if self.members_only else 0

    def mesh_for(self, k: int, batch_size: int) -> tuple[int, int]:
        """The mesh shape of a program of ``k`` members (the asked one, checked)."""
        if self.members_only:  # as few devices as give the fewest members per device
            return -(-k // -(-k // min(self.devices, k))), 1
        if self.mesh is None:
            return choose_mesh(self.devices, k, batch_size)
        m, d = self.mesh
        if k % m:
            raise ConfigError(f"{KEY}.mesh=[{m},{d}]: {k} members do not divide over {m} "
                              f"devices on the members axis; valid: a divisor of {k}")
        if batch_size % d:
            raise ConfigError(f"{KEY}.mesh=[{m},{d}]: trainer.batch_size={batch_size} does not "
                              f"divide over {d} devices on the data axis; valid: a divisor of "
                              f"{batch_size}")
        return m, d


@dataclasses.dataclass
class Group:
    """Members trained together: their configs, experiments and compiled programs."""

    members: list[Member]
    exps: list[Experiment]
    programs: list[Program]
    vectorize: int
    compile_s: float = 0.0
    placement: Placement = Placement()

    @property
    def base(self) -> Experiment:
        return self.exps[0]

    def init_state(self) -> dict[str, Any]:
        """The members' initial states, as checkpoints hold them (without padding rows)."""
        return {f"program{i}": p.unpadded(p.init) for i, p in enumerate(self.programs)}

    def place(self, state: dict[str, Any]) -> dict[str, Any]:
        """A state as checkpoints hold it, as the compiled steps take it (padding rows)."""
        return {f"program{i}": p.put_members(p.padded(state[f"program{i}"])) if p.pad else
                state[f"program{i}"] for i, p in enumerate(self.programs)}

    def unpadded(self, state: dict[str, Any]) -> dict[str, Any]:
        """The compiled steps' state as checkpoints hold it (the members' rows only)."""
        return {f"program{i}": p.unpadded(state[f"program{i}"])
                for i, p in enumerate(self.programs)}

    def memory(self) -> tuple[float, float]:
        """``(per member, shared)`` bytes of the compiled steps: the arguments grow with the
        members, and so do the temporaries of vmapped members (``lax.map``-ed members reuse
        one member's)."""
        k = len(self.members)
        args = sum(p.memory["arguments"] for p in self.programs)
        temp = sum(p.memory["temporaries"] for p in self.programs)
        return ((args + temp) / k, 0.0) if self.vectorize > 1 else (args / k, float(temp))

    def data_bytes(self) -> int:
        """Bytes of the members' data held in memory (each array once; members of one seed
        share their splits, and event data is shared by every seed)."""
        held = {}
        for e in self.exps:
            held.update(e.data.held())
        return sum(held.values())

    def fingerprint(self) -> dict[str, Any]:
        fp = {k: v for k, v in fingerprint(self.base).items() if k != "seed"}
        fp["members"] = [m.name for m in self.members]
        fp["programs"] = [p.index for p in self.programs]
        return fp


def _build_member(m: Member) -> Experiment:
    """The member's experiment as its solo run builds it, on one device: the population
    places the members itself (:class:`Placement`), so the member's ``trainer.parallel``
    (and its check of the batch against the device count) does not apply."""
    cfg = copy.deepcopy(m.cfg)
    with open_dict(cfg):
        cfg.trainer.parallel, cfg.trainer.devices = "none", None  # (no "devices unused" note)
    with _named_member(m):
        exp = build(cfg)
        loaded = nir_params(exp)  # trainer.init_from: every member starts from the graph
    return exp if loaded is None else dataclasses.replace(exp, params=loaded)


@contextlib.contextmanager
def _named_member(m: Member) -> Iterator[None]:
    """A member's configuration or data error as one line naming the member."""
    try:
        yield
    except (ConfigError, data_lib.DatasetError, ValueError) as e:
        raise ConfigError(f"{KEY} member {m.name}: {e}") from None


def _check_compatible(group_members: list[Member], exps: list[Experiment]) -> None:
    base = exps[0]
    shapes = ckpt_lib.shapes_of(base.params)
    for m, e in zip(group_members, exps, strict=True):
        _refuse_fused(e.run)
        diff = ckpt_lib.describe_difference(ckpt_lib.shapes_of(e.params), shapes)
        if diff != "no difference" or len(e.data.train) != len(base.data.train) or (
                (e.data.val is None) != (base.data.val is None)):
            raise ConfigError(f"{KEY} member {m.name} differs from member "
                              f"{group_members[0].name} in shape ({diff}); use a multirun")


def build_group(group_members: list[Member], *, vectorize: int | None, by_type: bool,
                exps: list[Experiment] | None = None, placement: Placement = Placement(),
                say=_say) -> Group:
    """Build every member as its solo run would, then compile the group's program(s): one
    (members of several surrogate types through
    :class:`~snntrain.population_step.SwitchSurrogate`), or one per
    surrogate type (``by_type``), each on its ``members x data`` mesh (``placement``)."""
    if exps is None:
        exps, data = [], {}
        for m in group_members:  # members of one seed share one copy of the data
            e = _build_member(m)
            exps.append(dataclasses.replace(e, data=data.setdefault(e.seed, e.data)))
    _check_compatible(group_members, exps)
    found = set().union(*(m.values for m in group_members))
    lr_varies = "optimizer.lr" in found
    neuron_varies = bool({"model.neuron.beta", "model.neuron.threshold"} & found)
    if vectorize is None:
        vectorize = 1 if jax.default_backend() == "cpu" else len(exps)
    kinds = [e.surrogate.name for e in exps]
    parts = ([[i for i, k in enumerate(kinds) if k == kind] for kind in dict.fromkeys(kinds)]
             if by_type else [list(range(len(exps)))])
    freeze = exps[0].run.trainer.on_nan == "stop"
    meshes = [placement.mesh_for(len(idx), exps[0].batch_size) for idx in parts]
    if placement.devices > 1:
        how = (f"{KEY}.mesh" if placement.mesh else
               f"the CPU split into {placement.devices} devices, members side by side; "
               f"{KEY}.cpu_devices=1 turns it off"
               if placement.members_only else f"auto; {KEY}.mesh=[members,data] overrides")
        for idx, (m, d) in zip(parts, meshes, strict=True):
            say(f"population: {len(idx)} member{'s' * (len(idx) != 1)}, batch "
                f"{exps[0].batch_size}, on a {m} x {d} "
                f"mesh (members x data) of {m * d} of {placement.devices} devices ({how})")
    t0 = time.perf_counter()
    programs = [build_program(exps, idx, vectorize=min(vectorize, len(idx)),
                              lr_varies=lr_varies, neuron_varies=neuron_varies, freeze=freeze,
                              mesh_shape=mesh, pad=placement.pad_for(len(idx)))
                for idx, mesh in zip(parts, meshes, strict=True)]
    return Group(group_members, exps, programs, vectorize, time.perf_counter() - t0, placement)


class GroupRunner(lifecycle.ChunkedEpoch):
    """Train a group's epoch step by step: per step, every program's compiled step on its
    members' batches. Yields ``(step, [metrics of member k])`` (a frozen member's are
    ignored); like :class:`snntrain.train.StepRunner`, metrics are fetched in chunks, and when
    a step is yielded as the last of its chunk, :attr:`state` is the state after it.
    ``malloc_trial`` (:mod:`snntrain.malloctune`) times its first steps, each the whole
    population step (every program once), until it has chosen."""

    def __init__(self, group: Group, state: dict[str, Any],
                 malloc_trial: malloctune.MallocTrial | None = None):
        self.group, self.state, self.malloc_trial = group, state, malloc_trial
        base = group.base
        self.chunk = min(lifecycle.MAX_STEPS_IN_FLIGHT, base.run.trainer.log_every)
        self.ckpt_every = base.run.trainer.checkpoint_every
        self.batch_size = base.batch_size  # compiled ahead: every step is timed
        seeds = [e.seed for e in group.exps]
        self.seeds = list(dict.fromkeys(seeds))
        self.source = {e.seed: e for e in group.exps}

    @property
    def compile_s(self) -> float:
        return self.group.compile_s

    def batches(self, split: str, epoch: int, start: int, shuffle: bool) -> Iterator[list]:
        """Per step, each member's batch (members of one seed share it)."""
        base = self.group.base
        iters = {s: data_lib.batches(getattr(self.source[s].data, split), base.batch_size,
                                     seed=s, epoch=epoch, start=start, shuffle=shuffle)
                 for s in self.seeds}
        for per_seed in zip(*iters.values(), strict=True):
            by_seed = dict(zip(iters, per_seed, strict=True))
            yield [by_seed[e.seed] for e in self.group.exps]

    def _stacked(self, per_member: list[dict], program: Program) -> dict[str, np.ndarray]:
        return {name: np.stack([per_member[i][name] for i in program.rows])
                for name in per_member[0]}

    def step(self, per_member: list) -> list[dict[str, jax.Array]]:
        """One population step: every program's compiled step on its members' batches."""
        def run() -> list[dict[str, jax.Array]]:
            out = []
            for i, p in enumerate(self.group.programs):
                key = f"program{i}"
                self.state[key], metrics = p.step(
                    self.state[key], p.put_batch(self._stacked(per_member, p)), p.keys, p.args)
                out.append(metrics)
            return out

        out, self.malloc_trial = malloctune.run_step(self.malloc_trial, run)
        return out

    def _batches(self, progress: RunProgress) -> Iterator[list]:
        return self.batches("train", progress.epoch, progress.batch_in_epoch, True)

    def _fetch(self, pending: list) -> Iterator[tuple[int, list[dict[str, float]]]]:
        fetched = jax.device_get([m for _, m in pending])
        steps = [s for s, _ in pending]
        pending.clear()
        n = len(self.group.exps)
        for s, per_program in zip(steps, fetched, strict=True):
            per_member: list[dict[str, float]] = [{} for _ in range(n)]
            for p, metrics in zip(self.group.programs, per_program, strict=True):
                for j, k in enumerate(p.index):
                    per_member[k] = {name: float(v[j]) for name, v in metrics.items()}
            yield s, per_member

    def evaluate(self, split: str) -> list[dict[str, float]]:
        """Each member's mean loss, accuracy and rates over ``split`` (as
        :func:`snntrain.train.evaluate` computes them for a solo run)."""
        n = len(self.group.exps)
        totals: list[dict[str, float]] = [{} for _ in range(n)]
        for b, per_member in enumerate(self.batches(split, 0, 0, False)):
            for i, p in enumerate(self.group.programs):
                keys = p.put_members(jax.vmap(jax.random.fold_in, in_axes=(0, None))(
                    jax.vmap(jax.random.fold_in, in_axes=(0, None))(p.keys, lifecycle.EVAL_KEY), b))
                sums = jax.device_get(p.eval(self.state[f"program{i}"]["train"].params,
                                             p.put_batch(self._stacked(per_member, p)), keys,
                                             p.args))
                for j, k in enumerate(p.index):
                    for name, v in sums.items():
                        totals[k][name] = totals[k].get(name, 0.0) + float(v[j])
        return [lifecycle.split_means(e, t) for e, t in zip(self.group.exps, totals, strict=True)]


# ---- the loop ------------------------------------------------------------------------------


@dataclasses.dataclass
class MemberRun:
    """What the loop keeps per member: position, divergence policy, recorder, status."""

    member: Member
    exp: Experiment
    run_dir: Path
    progress: RunProgress
    policy: DivergencePolicy
    rec: writers.RunRecorder | None = None
    status: str = "training"  # training | diverged | completed | preempted
    diverged_at: int | None = None

    def to_meta(self, key: Any) -> dict[str, Any]:
        meta = self.progress.to_meta(self.exp.seed, key, fingerprint(self.exp))
        meta.update({"status": self.status, "diverged_at_step": self.diverged_at})
        return meta


def wandb_group(run_dir: Path) -> str:
    """The wandb group of a population's members: the sweep's inside a multirun
    (:func:`snntrain.writers.hydra_sweep_group`), else ``[<experiment>_]<date>_<time>`` (the
    run directory's last two components; the experiment from Hydra's config, which a worker
    process does not have: its parent passes the group on)."""
    if (sweep := writers.hydra_sweep_group()) is not None:
        return sweep
    prefix = None
    try:
        from hydra.core.hydra_config import HydraConfig

        prefix = HydraConfig.get().runtime.choices.get("experiment")
    except (ImportError, ValueError):
        pass
    name = "_".join(Path(run_dir).absolute().parts[-2:])
    return (f"{prefix}_{name}" if prefix not in (None, "null") else name)[:128]


def _member_say(name: str, say) -> Callable[[str], None]:
    def member_say(msg: str) -> None:
        if not msg.startswith("wandb: no API key"):  # said once for the population
            say(f"member {name}: {msg}")

    return member_say


def _recorder(run: MemberRun, group_name: str, say) -> writers.RunRecorder:
    logger = lifecycle.wandb_settings(run.member.cfg, [
        f"{k}={v}" for k, v in run.member.values.items() if writers.names_run(f"{k}={v}")],
        member=True)
    if logger is not None:
        logger["group"] = logger.get("group") or group_name
        logger["reinit"] = "create_new"  # every member's run is open at once
    # (not resumed=True: a member keeps no earlier config; its population keeps one and says
    # the changes once)
    return writers.RunRecorder(run.run_dir, OmegaConf.to_container(run.member.cfg, resolve=True),
                               logger, say=_member_say(run.member.name, say))


def _restore_or_start(group: Group, runs: list[MemberRun], ckpts: ckpt_lib.Checkpoints, say
                      ) -> tuple[dict[str, Any], RunProgress, ckpt_lib.Checkpoints]:
    """As :func:`snntrain.train.restore_or_start`, for the whole group: the stacked state,
    the group's position, and every member's progress and status (from the checkpoint)."""
    state = group.init_state()
    restored, ckpts, where = lifecycle.restore(ckpts, state, group.fingerprint(),
                                               _group_source(str(group.base.run.trainer.resume),
                                                             ckpts.directory),
                                               [r.run_dir for r in runs], say)
    if restored is None:
        return state, RunProgress(), ckpts
    state, meta = restored
    spe = group.base.steps_per_epoch
    position = RunProgress.from_meta(meta, spe)
    lifecycle.check_epochs_left(group.base.epochs, position.epoch, position.step, where)
    for run, m in zip(runs, meta["members"], strict=True):
        run.progress = RunProgress.from_meta(m, spe)
        run.status, run.diverged_at = m["status"], m.get("diverged_at_step")
    say(f"resuming {len(runs)} members from step {position.step} (epoch {position.epoch + 1}, "
        f"batch {position.batch_in_epoch} of {spe}) in {where}")
    return state, position, ckpts


def _epoch_line(records: dict[str, dict[str, Any]], n: int) -> tuple[dict[str, float], str]:
    """The console line of a group's epoch: the mean of its training members' records, how
    many of the ``n`` are training, and the member with the best val (else test) accuracy."""
    keys = ("train_loss", "train_accuracy", "val_accuracy", "test_accuracy")
    means = {k: float(np.mean([r[k] for r in records.values()])) for k in keys
             if records and all(isinstance(r.get(k), (int, float)) for r in records.values())}
    extra = f"(mean of {len(records)}/{n} training)"
    by = "val_accuracy" if "val_accuracy" in means else "test_accuracy"
    if by in means:
        name = max(records, key=lambda m: records[m][by])
        extra += f"  best {by.split('_')[0]} {records[name][by]:.4f} {name}"
    return means, extra


def _diverge(run: MemberRun, step: int, error: Diverged, say, left: int) -> None:
    run.status, run.diverged_at = "diverged", step
    say(f"member {run.member.name} diverged at step {step}; frozen, "
        + (f"the other {left} go on" if left else "no member of this group is left"))
    if run.rec is not None:
        run.rec.finish(failure_record(Diverged(str(error), step=step)))
        run.rec = None


def train_group_epochs(group: Group, runner: GroupRunner, position: RunProgress,
                       runs: list[MemberRun], ckpts: ckpt_lib.Checkpoints,
                       stop: Callable[[], bool], say, label: str = "") -> str:
    """Per epoch: train, evaluate, record, checkpoint every live member (as
    :func:`snntrain.train.train_epochs` for one run); ``completed`` (members that diverged
    are recorded as such) or ``preempted``. ``label``: a worker process's (its epoch lines
    start with it, and its bar goes to the parent: :func:`snntrain.progress.relay_to`)."""
    base = group.base
    tcfg, fp = base.run.trainer, group.fingerprint()
    every = int(tcfg.checkpoint_every or 0)

    def save() -> None:
        meta = position.to_meta(0, np.zeros(2, np.uint32), fp, runner)  # the group's;
        # each member's (with its own seed and key) below
        meta["members"] = [r.to_meta(np.asarray(jax.random.PRNGKey(r.exp.seed))) for r in runs]
        meta["autotune"] = autotune.choices()
        ckpts.save(position.step, group.unpadded(runner.state), meta)

    def live() -> list[MemberRun]:
        return [r for r in runs if r.status == "training"]

    with Progress(base.total_steps, base.steps_per_epoch,
                  enabled=bool(tcfg.progress) and not label,
                  epoch_lines=jax.process_index() == 0, label=label) as bar:
        bar.update(position.step, {})
        while position.epoch < base.epochs and live():
            for step, per_member in runner.epoch(position, stop):
                position.advance()
                for run, m in zip(runs, per_member, strict=True):
                    if run.status != "training":
                        continue
                    run.progress.advance()
                    try:
                        accepted = run.policy.accept(step, m)
                    except Diverged as e:
                        _diverge(run, step, e, say, left=len(live()) - 1)
                        continue
                    run.progress.skipped_steps += not accepted
                    if accepted:
                        run.progress.epoch_sums.add(m, m.pop("count"))
                        if step % max(1, tcfg.log_every) == 0:
                            run.rec.log({"step": step, "epoch": run.progress.epoch + 1,
                                         "split": "train", **m})
                shown = [m for r, m in zip(runs, per_member, strict=True)
                         if r.status == "training" and "loss" in m]
                if shown:
                    bar.update(step, {"loss": float(np.mean([m["loss"] for m in shown])),
                                      "accuracy": float(np.mean([m["accuracy"] for m in shown])),
                                      "samples_per_s": runner.samples_per_s})
                if every and position.step % every == 0 and (
                        position.batch_in_epoch < base.steps_per_epoch):
                    save()
                ckpts.poll()
            if stop() or not live():
                break
            val = runner.evaluate("val") if base.data.val is not None else None
            test = runner.evaluate("test")
            position.end_epoch()
            records = {}
            for k, run in enumerate(runs):
                if run.status == "training":
                    records[run.member.name] = lifecycle.epoch_record(
                        run.progress, val[k] if val else None, test[k], runner.samples_per_s)
                    run.rec.log(records[run.member.name])
            means, extra = _epoch_line(records, len(runs))
            bar.epoch_done(position.epoch, means, extra)
            save()
            # the epoch's means, as a solo run's bar (not the last, padded batch's values)
            bar.update(position.step, {**means, "samples_per_s": runner.samples_per_s})
    if live() and position.epoch < base.epochs:
        save()
        return "preempted"
    return "completed"


def _chunk_size(cfg: DictConfig, n: int) -> int | str:
    chunk = _setting(cfg, "chunk")
    if chunk is None:
        return n
    if chunk == "auto":
        return "auto"
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"{KEY}.chunk={chunk!r} is invalid: must be an integer >= 1, auto "
                          "or null")
    return min(chunk, n)


def cpu_devices(cfg: DictConfig) -> int:
    """How many devices a population's start-up splits the CPU into
    (``trainer.population.cpu_devices``; 1: none): ``auto`` is one per usable core when the
    run leaves its devices to snntrain (``trainer.parallel=auto``, ``trainer.devices`` and
    ``trainer.population.mesh`` null); an integer is taken as asked. Pure config: the split
    must precede JAX's backend (:func:`split_cpu`)."""
    n, tcfg = _setting(cfg, "cpu_devices"), cfg.trainer
    if worker_count(cfg) > 1:  # the cores are the workers'
        if n not in (None, "auto", 1):
            raise ConfigError(f"{KEY}.cpu_devices={n} and {KEY}.workers="
                              f"{_setting(cfg, 'workers')} both divide the CPU: set one of them "
                              f"(cpu_devices=1, or workers=1)")
        return 1
    if n is None or n == "auto":
        return hostenv.usable_cores() if n == "auto" and _devices_left_to_us(cfg) else 1
    cores = hostenv.usable_cores()
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= cores:
        raise ConfigError(f"{KEY}.cpu_devices={n!r} is invalid: must be auto, null or an integer "
                          f"from 1 (one device) to {cores} (this process's usable cores)")
    if n > 1 and tcfg.get("parallel") == "none":
        raise ConfigError(f"{KEY}.cpu_devices={n} and trainer.parallel=none disagree (one "
                          f"device); set trainer.parallel=auto, or leave {KEY}.cpu_devices=auto")
    return n


def _devices_left_to_us(cfg: DictConfig) -> bool:
    """Whether the run leaves its devices to snntrain (``trainer.parallel=auto``,
    ``trainer.devices`` and ``trainer.population.mesh`` null): then ``cpu_devices=auto`` splits
    the CPU, or ``workers=auto`` (with ``cpu_devices=auto``) trains in worker processes."""
    tcfg = cfg.trainer
    return (tcfg.get("parallel") == "auto" and tcfg.get("devices") is None
            and _setting(cfg, "mesh") is None)


def worker_count(cfg: DictConfig) -> int:
    """How many worker processes train the population's groups side by side, one CPU core
    each (``trainer.population.workers``; :mod:`snntrain.workers`): 1 (null) trains them in
    this process; ``auto`` is the command line's choice (:func:`split_cpu`: one per usable
    core, at most :data:`snntrain.workers.AUTO_MAX`, where it would split the CPU; 1 from
    Python); an integer is taken as asked. Pure config, no JAX."""
    n, cores = _setting(cfg, "workers"), hostenv.usable_cores()
    if n is None:
        return 1
    if n == "auto":
        if _setting(cfg, "cpu_devices") != "auto" or not _devices_left_to_us(cfg):
            return 1
        return min(hostenv.marked_workers(), cores, workers.AUTO_MAX)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= cores:
        raise ConfigError(f"{KEY}.workers={n!r} is invalid: must be auto, null or an integer "
                          f"from 1 (this process) to {cores} (this process's usable cores)")
    if n > 1 and not hasattr(os, "sched_setaffinity"):
        raise ConfigError(f"{KEY}.workers={n}: this OS cannot pin a process to a core (Linux "
                          f"only); valid here: null or auto (one process)")
    if n > 1 and _setting(cfg, "mesh") is not None:
        raise ConfigError(f"{KEY}.workers={_setting(cfg, 'workers')} trains each group on one "
                          f"core, without a mesh: unset {KEY}.mesh, or set {KEY}.workers=1")
    return n


def _workers_here(cfg: DictConfig) -> int:
    """:func:`worker_count`, for this run's backend: worker processes train on CPU cores (of
    one host: a multi-process run is refused by :class:`Placement`)."""
    n = worker_count(cfg)
    if n > 1 and jax.process_count() > 1:
        return 1
    if n > 1 and jax.default_backend() != "cpu":
        if _setting(cfg, "workers") != "auto":
            raise ConfigError(f"{KEY}.workers={n} trains on CPU cores, but this run's backend is "
                              f"{jax.default_backend()}: set {KEY}.workers=null")
        return 1
    return n


def split_cpu(cfg: DictConfig, swept: dict[str, str] | None = None) -> None:
    """Before JAX's backend starts (the command line's start-up): for a population, choose
    worker processes, one per core (``workers=auto`` where ``cpu_devices=auto`` would split:
    :func:`snntrain.hostenv.mark_workers`; not when a multirun sweeps how the devices are
    used, :data:`DEVICE_KEYS`, nor where JAX will not run on the CPU), or split the CPU into
    :func:`cpu_devices` devices (:func:`snntrain.hostenv.split_cpu`), whose members then
    train side by side, each exactly as on one device (:class:`Placement`). An asked
    count that ``XLA_FLAGS`` contradicts is refused; ``auto`` leaves a set count alone.
    ``swept``: a multirun's keys and values as written (its jobs are populations when it
    sweeps an axis or a population's experiment; they may ask for their own count)."""
    swept = {k.lstrip("+~"): v for k, v in (swept or {}).items()}
    axis_swept = any(k.startswith(f"{KEY}.") and k[len(KEY) + 1:].split(".")[0] not in SETTINGS
                     for k in swept)
    if not (is_population(cfg) or axis_swept or _population_experiment(swept.get("experiment"))):
        return
    n, flag = cpu_devices(cfg), hostenv.device_count_flag()
    if f"{KEY}.cpu_devices" in swept:  # the jobs choose: as many devices as they may ask for
        n = hostenv.usable_cores()
    elif (n > 1 and _setting(cfg, "cpu_devices") == "auto" and _setting(cfg, "workers") == "auto"
          and flag is None and not set(swept) & DEVICE_KEYS and hostenv.mark_workers(n)):
        return  # worker processes, one core each, instead (faster: snntrain.workers)
    asked = n > 1 and _setting(cfg, "cpu_devices") != "auto"
    if asked and flag is not None and flag != n:
        raise _flag_conflict(n, flag)
    if not hostenv.split_cpu(n) and asked and flag == n and not hostenv.backend_started():
        os.environ[hostenv.SPLIT_MARK] = str(n)  # the asked split, made by hand: members only


def _flag_conflict(n: int, flag: int) -> ConfigError:
    return ConfigError(f"{KEY}.cpu_devices={n}: XLA_FLAGS already sets {hostenv.DEVICE_FLAG}="
                       f"{flag}; unset it, or set {KEY}.cpu_devices=auto")


def _population_experiment(values: str | None) -> bool:
    """Whether a multirun's ``experiment=a,b`` names an experiment that trains a population."""
    for name in (values or "").split(","):
        path = CONFIG_DIR / "experiment" / f"{name.strip()}.yaml"
        if path.is_file() and population_axes(config_lib.shipped(path)):
            return True
    return False


def _vectorize(cfg: DictConfig) -> int | None:
    v = _setting(cfg, "vectorize")
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
        raise ConfigError(f"{KEY}.vectorize={v!r} is invalid: must be an integer >= 1 or null")
    return v


def step_signature(cfg: DictConfig) -> dict[str, Any]:
    """What fixes a population's compiled step besides the solo step's config
    (:data:`snntrain.malloctune.STEP_KEYS`), for the malloc policy's cache key: the members
    of a group (``chunk``, resolved as :func:`train_population` does: ``min(chunk, members)``;
    ``auto`` is decided by memory after compiling, so keyed as ``auto of <members>``), how
    many are vmapped at once (``vectorize``, as :func:`build_group` caps it at the group;
    null: the backend's default, which the key's platform fixes), the mesh asked for (null:
    chosen from the devices, whose ``trainer.parallel``/``trainer.devices`` are in the solo
    keys) and which axes vary (they change the program: several surrogate types switch, a
    varying lr or neuron value is a traced argument). Pure config, no JAX: the start-up
    looks the choice up before JAX starts its threads (:func:`snntrain.malloctune.prepare_run`).
    """
    found = axes(cfg)
    n = len(_combinations(found, str(_setting(cfg, "mode") or "grid")))
    chunk, vectorize = _chunk_size(cfg, n), _vectorize(cfg)
    size: int | str = f"auto of {n}" if chunk == "auto" else chunk
    if isinstance(size, int) and vectorize is not None:
        vectorize = min(vectorize, size)
    mesh = _setting(cfg, "mesh")
    return {"members": size, "vectorize": vectorize,
            "mesh": None if mesh is None else list(mesh), "axes": list(found),
            "cpu_devices": _setting(cfg, "cpu_devices"), "workers": worker_count(cfg)}


def malloc_signature(cfg: DictConfig, worker_groups: list[int] | None = None) -> str:
    """The malloc policy's step signature of a run's config
    (:func:`snntrain.malloctune.config_signature`), with :func:`step_signature` for a
    population (a bad population setting is keyed by its text: the run reports it);
    ``worker_groups``: the sizes of a worker process's groups, which it trains on one core
    (it was keyed as the whole population in one process)."""
    try:
        extra = step_signature(cfg) if is_population(cfg) else None
    except ConfigError:
        extra = str(OmegaConf.select(cfg, "trainer.population"))
    if worker_groups is not None and isinstance(extra, dict):
        extra = {**extra, "members": worker_groups, "worker": "one core"}
    return malloctune.config_signature(cfg, extra)


def check_mesh(cfg: DictConfig, placement: Placement) -> None:
    """Refuse an asked mesh (``trainer.population.mesh``) that a group of the members will
    not divide, from the config alone (the command line's start-up, before the run
    directory exists); with ``chunk=auto`` the first group (all the members: smaller groups
    only if they do not fit, in multiples of the mesh's members axis) and the batch."""
    if placement.mesh is None:
        return
    n = len(_combinations(axes(cfg), str(_setting(cfg, "mode") or "grid")))
    size = _chunk_size(cfg, n)
    size = n if size == "auto" else size
    _check_meshes(placement, {s // size: [min(size, n - s)] for s in range(0, n, size)},
                  size, int(cfg.trainer.batch_size))


def _check_meshes(placement: Placement, groups: dict[int, list[int]], size: int,
                  batch_size: int) -> None:
    """Refuse a group (``{index: its programs' member counts}``) whose programs do not fit
    the mesh; a later group's error says which group and the chunk."""
    for g, counts in groups.items():
        for k in counts:
            try:
                placement.mesh_for(k, batch_size)
            except ConfigError as e:
                if g == 0:
                    raise
                raise ConfigError(f"{e} (group {g} of {KEY}.chunk={size} has {sum(counts)} "
                                  "members: choose a chunk or mesh that divides every "
                                  "group)") from None


def _check_later_meshes(ms: list[Member], size: int, by_type: bool, placement: Placement,
                        batch_size: int) -> None:
    """Refuse, before the first group trains, a later group whose programs do not fit the
    asked mesh (the last group of a chunked population may be smaller: it was refused after
    the groups before it had trained, and the population recorded as failed)."""
    groups = {}
    for start in range(size, len(ms), size):
        kinds = [str(m.cfg.surrogate.name) for m in ms[start:start + size]]
        groups[start // size] = ([kinds.count(k) for k in dict.fromkeys(kinds)] if by_type
                                 else [len(kinds)])
    _check_meshes(placement, groups, size, batch_size)


def plan_groups(cfg: DictConfig, ms: list[Member], *, by_type: bool = False, say=_say
                ) -> tuple[int, Group]:
    """The group size (``trainer.population.chunk``) and the first group, compiled; refuses
    (one line, with the numbers) a group whose step will not fit in memory."""
    chunk, vectorize = _chunk_size(cfg, len(ms)), _vectorize(cfg)
    placement = Placement.from_config(cfg)
    # auto: all the members, in one group per worker process when there are several
    size = -(-len(ms) // _workers_here(cfg)) if chunk == "auto" else chunk
    while True:
        group = build_group(ms[:size], vectorize=vectorize, by_type=by_type,
                            placement=placement, say=say)
        side = min(_workers_here(cfg), -(-len(ms) // size))  # groups trained at once
        fits = _members_that_fit(group, size, side, refuse=chunk != "auto")
        if fits is not None and placement.mesh is not None:  # (groups the mesh divides)
            m, d = placement.mesh
            if fits < m:
                raise ConfigError(f"{KEY}.mesh=[{m},{d}]: only {fits} member(s) fit in "
                                  f"{_mib(available_memory())} at once, fewer than the {m} "
                                  "devices of the members axis; use a smaller members axis, "
                                  "model or batch")
            fits -= fits % m
        if fits is None:
            _check_later_meshes(ms, size, by_type, placement, group.exps[0].batch_size)
            return size, group
        say(f"population: {size} members do not fit in {_mib(available_memory())}: training "
            f"them in groups of {fits}")
        size = fits


def _plan(cfg: DictConfig, run_dir: Path, ms: list[Member], side: int, by_type: bool
          ) -> tuple[list[list[Member]], Group | None]:
    """The population's groups (:func:`partition`) and, when compiled here, the first.

    An earlier attempt's groups (its checkpoints name their members) are kept when
    ``trainer.population.chunk`` is null or their size: a population resumes on another core
    count, in one process or in workers, with the groups it has. Else: one group per worker
    (each worker compiles its own), or :func:`plan_groups`'s; other groups than the
    checkpoints' are refused (:func:`_check_groups`)."""
    autotune.pin(None)  # (an earlier run's in this process: train_groups pins each group's)
    chunk = _setting(cfg, "chunk")
    earlier = _earlier_groups(cfg, run_dir)
    if earlier and chunk != "auto" and (
            parts := _grouping_holding(ms, earlier, chunk)) is not None:
        return parts, None
    if side > 1 and chunk != "auto":
        parts, first = partition(ms, int(chunk or -(-len(ms) // side)), strided=True), None
    else:
        size, first = plan_groups(cfg, ms, by_type=by_type)
        parts = partition(ms, size, strided=side > 1)
        if first is not None and [m.index for m in first.members] != [m.index
                                                                     for m in parts[0]]:
            first = None  # (compiled for the first members; workers' groups are dealt in turn)
    _check_groups(cfg, run_dir, ms, parts)
    return parts, first


def _repeated_note(ms: list[Member]) -> str | None:
    """A note for members with the same values (``seed=[0,0]``): they train identically, and
    the report counts such a run once; said only at the end before (configuration tester)."""
    first: dict[str, int] = {}
    repeats = []
    for m in ms:
        key = json.dumps(m.values, sort_keys=True, default=str)
        if key in first:
            repeats.append(f"{m.index} (= {first[key]})")
        else:
            first[key] = m.index
    if not repeats:
        return None
    many = len(repeats) > 1
    return (f"population: member{'s' * many} {', '.join(repeats)} repeat{'' if many else 's'} "
            "another's values: they train identically, and the report counts one")


def _signal_said(signum: int | None) -> str:
    return f"signal {signum}" if signum is not None else "a signal in a worker process"


def _members_that_fit(group: Group, size: int, side: int, refuse: bool = True) -> int | None:
    """None if ``side`` groups of ``size`` members (as ``group``, compiled) fit in memory at
    once; else how many members per group would, or (``refuse``, or none would) a one-line
    error with the numbers. With ``side`` worker processes, each holds its own copy of the
    data: this process's is in use already, the others' are counted."""
    (per_member, fixed), avail = group.memory(), available_memory()
    data = (side - 1) * group.data_bytes()
    per_member, fixed = side * per_member, side * fixed + data
    need = fixed + size * per_member
    if avail is None or need <= MEMORY_FRACTION * avail:
        return None
    fits = int((MEMORY_FRACTION * avail - fixed) // per_member)
    if refuse or fits < 1 or fits >= size:
        hint = (f"set {KEY}.chunk={fits} (or auto)" if fits >= 1
                else "even one member does not fit; make the model or batch smaller")
        at_once = f" ({side} workers' groups at once)" if side > 1 else ""
        copies = f", the other workers' data {_mib(data)}" if data else ""
        raise ConfigError(f"{KEY}: {size} members need about {_mib(need)} for their "
                          f"training step{at_once} ({_mib(per_member)} per member + "
                          f"{_mib(fixed - data)} shared{copies}), but only {_mib(avail)} is "
                          f"available; {hint}")
    return fits


def partition(ms: list[Member], size: int, strided: bool = False) -> list[list[Member]]:
    """The groups of at most ``size`` members: consecutive slices (``chunk``), or for worker
    processes ``strided``, member ``i`` in group ``i mod n``, so each worker gets a like mix
    of the axes (a 66-member surrogate comparison in 2 contiguous halves trained 31 and 42 s:
    the surrogates differ in cost)."""
    n = -(-len(ms) // size)
    return ([ms[g::n] for g in range(n)] if strided
            else [ms[s:s + size] for s in range(0, len(ms), size)])


def train_population(cfg: DictConfig, run_dir: str | Path | None = None,
                     *, by_type: bool = False) -> dict[str, Any]:
    """Train every member of the population ``cfg`` describes; return the population's
    summary (also ``<run dir>/summary.json``), each member's in ``members/<name>/``.

    ``by_type`` compiles one program per surrogate type instead of one for all (measured by
    scripts/bench_population.py; the single program is the default).
    """
    t_start = time.time()
    run_dir = lifecycle.resolve_run_dir(cfg, run_dir)
    status = "completed"
    with rundir.RunLock(run_dir):
        ms = check_members(cfg)  # a bad value first, not "trained with other settings"
        lifecycle.check_kind(cfg, run_dir, True, _say)
        if (note := _repeated_note(ms)) is not None:
            _say(note)
        _check_earlier_attempt(cfg, run_dir)
        never = str(cfg.trainer.resume) == "never"
        if never and ((run_dir / "summary.json").exists() or rundir.has_checkpoints(run_dir)):
            # (the earlier training's config and Hydra's files, which this one replaced)
            kept = [p.name for p in (rundir.set_aside(run_dir / "config.yaml"),
                                     rundir.set_aside_hydra_files(run_dir)) if p]
            if kept:
                _say(f"trainer.resume=never: kept the earlier {' and '.join(kept)}")
        finished = not never and writers.completed_summary(run_dir / "summary.json") is not None
        if not finished and not (run_dir / "config.yaml").exists():  # (a run that fails to
            _save_config(cfg, run_dir)  # start is listed)
        logger = lifecycle.wandb_settings(cfg)
        if logger is not None and (notice := writers.offline_notice(
                logger, f"{run_dir}/members/*/wandb/offline-run-*")) is not None:
            _say(notice)  # once for the population (the members' own lines are dropped)
        side = 1 if by_type else _workers_here(cfg)  # (by_type: one process's programs)
        parts, first = _plan(cfg, run_dir, ms, side, by_type)
        # a finished run's config, or one with checkpoints, stays until a group's checkpoint
        # has accepted this one (a resume refused by the checkpoint's fingerprint, e.g. the
        # cosine schedule's length, had replaced it all the same)
        defer = finished or (not never and rundir.has_checkpoints(run_dir))
        if not defer:
            _save_config(cfg, run_dir)
        # in workers also for one group left: a worker's arithmetic is one core's (XLA:CPU's
        # matrix products split their sums by its threads), which this process's is not
        left = sum(not _group_done(run_dir, part, cfg) for part in parts)
        in_workers, side = side > 1 and left > 0, max(1, min(side, left))
        if never and rundir.has_checkpoints(run_dir):
            # all at once: another grouping's checkpoints (the top level's, or a group this
            # run does not have) were left to be refused on the next resume
            kept = rundir.set_aside(run_dir / "checkpoints")
            _say(f"trainer.resume=never: kept the earlier checkpoints as {kept.name}")
        if never:  # (the population's own records too: they were replaced)
            _set_aside_other_members(run_dir, {m.name for m in ms})
            for name in ("summary.json", "report"):
                rundir.set_aside(run_dir / name)
        with lifecycle.Signals() as signals:
            if in_workers:
                first = None  # (its data and program: the workers build their own)
                status, wall, trained = _train_in_workers(
                    cfg, run_dir, parts, side, signals.received_any, t_start)
                if trained and defer:  # (each group's checkpoint accepted it)
                    _save_config(cfg, run_dir, resumed=True)
            else:
                status, wall, trained = train_groups(
                    cfg, run_dir, parts, range(len(parts)), signals.received_any, t_start,
                    first=first, by_type=by_type, resumed=defer,
                    trial=malloctune.for_run(malloc_signature(cfg), say=_say))
        done = None if trained else writers.completed_summary(run_dir / "summary.json")
        summary = done or population_summary(cfg, run_dir, ms, status, wall)
        if summary["completed"] == 0 and summary["diverged"] == len(ms):
            status = summary["status"] = "diverged"  # as a solo run that diverged
        if done is None:  # a finished population run again keeps its record (its wall time)
            writers.write_json(run_dir / "summary.json", summary)
        else:  # (and says which of this command's values did not apply)
            lifecycle.say_not_applied(run_dir, OmegaConf.to_container(cfg, resolve=True), _say)
    if status == "diverged":
        raise Diverged(f"every member of the population diverged ({len(ms)}; each "
                       f"members/<name>/summary.json says at which step): {run_dir}")
    if status == "preempted":
        saved = (f"saved a checkpoint in {run_dir / 'checkpoints'}"
                 if rundir.has_checkpoints(run_dir)
                 else "stopped before its first checkpoint (the rerun starts from step 0)")
        raise Preempted(f"received {_signal_said(signals.received)}: {saved}; to resume, run: "
                        f"{lifecycle.resume_command(run_dir)}")
    return summary


def train_groups(cfg: DictConfig, run_dir: Path, parts: list[list[Member]],
                 gs: Iterable[int], stop: Callable[[], bool], t_start: float, *,
                 first: Group | None = None, by_type: bool = False, resumed: bool = False,
                 trial: malloctune.MallocTrial | None = None, label: str = "", side: int = 1,
                 group_name: str | None = None) -> tuple[str, float, bool]:
    """Train the groups ``gs`` of ``parts`` (:func:`partition`) one after another (each from
    its checkpoint; a group finished earlier is skipped); ``first``: group 0, compiled by
    :func:`plan_groups` (else each is compiled here and, for the first, the memory of ``side``
    such groups at once checked). Returns ``completed`` or ``preempted``, the groups' wall time
    (earlier attempts' included) and whether any group trained. ``resumed``: the population
    had completed, or has checkpoints (its config.yaml is replaced once the first trained
    group accepts this). ``group_name``: the members' wandb group (else :func:`wandb_group`:
    a worker process, without Hydra's config, is given its parent's)."""
    group_name = group_name or wandb_group(run_dir)
    say = _say if not label else (lambda msg: _say(f"{label}: {msg}"))
    n_groups = len(parts)
    vectorize = first.vectorize if first is not None else _vectorize(cfg)
    placement = first.placement if first is not None else Placement.from_config(cfg)
    status, wall, trained, size = "completed", 0.0, False, 0
    for g in gs:
        part = parts[g]
        ckpt_dir = _group_dir(run_dir, g, n_groups)
        if _group_done(run_dir, part, cfg, say=say):
            wall += _finished_group_wall_time(run_dir, part, ckpt_dir)
            continue
        if stop():  # (a signal as the group before finished: it compiled the next group and
            status = "preempted"  # trained a step before saving, inside the grace time)
            break
        # trains on (more epochs): this is its config, once the group's checkpoint has
        # accepted it (a refused resume replaced it all the same)
        accepted = (partial(_save_config, cfg, run_dir, resumed=True)
                    if resumed and not trained else None)
        # the group's wall time: the first trained group's from the start (the data, the plan
        # and its compile), a later one's from its build
        t_group = time.time() if trained else t_start
        trained = True
        if n_groups > 1:  # the epoch lines below start again at epoch 1 (and a later
            # group's mesh line follows)
            _say(f"population: group {g + 1} of {n_groups} ({_span(part)})")
        recorded = _recorded_choices(cfg, ckpt_dir)
        autotune.pin(recorded)  # (before the group is traced, as a solo run's resume; None:
        # a fresh group times or rules anew, whatever an earlier run in this process pinned)
        if recorded and first is not None and any(autotune.choices().get(k, v) != v
                                                  for k, v in recorded.items()):
            first = None  # (plan_groups traced it with other formulations)
        group = first if g == 0 and first is not None else build_group(
            part, vectorize=vectorize, by_type=by_type, placement=placement, say=say)
        if not size:  # the first group this process trains: its memory (unless plan_groups
            # checked it) and the malloc trial's group size
            size = len(part)
            if first is None:
                _members_that_fit(group, size, side)
        trial = trial_for_group(trial, len(part), size)
        status, group_s = _train_group(group, run_dir, ckpt_dir, group_name, stop,
                                       t_group, say=say, malloc_trial=trial,
                                       accepted=accepted, label=label, side=side)
        wall += group_s
        if status == "preempted":
            break
    return status, wall, trained


def _train_in_workers(cfg: DictConfig, run_dir: Path, parts: list[list[Member]], side: int,
                      stop: Callable[[], bool], t_start: float) -> tuple[str, float, bool]:
    """:func:`train_groups` in ``side`` processes side by side, one core each
    (:mod:`snntrain.workers`): the groups not finished earlier, dealt round-robin. Returns as
    :func:`train_groups` does; the wall time is the slowest worker's (its groups' earlier
    attempts included), or this process's since ``t_start`` if longer (the workers' start and
    exit)."""
    left = [g for g, part in enumerate(parts) if not _group_done(run_dir, part, cfg, say=_say)]
    job = copy.deepcopy(cfg)  # (each worker: one process, one device)
    with open_dict(job):
        job.trainer.population.workers, job.trainer.population.cpu_devices = None, 1
    assignments = [[left[i] for i in idx] for idx in workers.assign(len(left), side)]
    codes = workers.run(OmegaConf.to_yaml(job, resolve=True), run_dir,
                        [[m.index for m in part] for part in parts], assignments, t_start,
                        stop, _say, bars=bool(cfg.trainer.progress),
                        wandb_group=wandb_group(run_dir),
                        job_overrides=writers.sweep_job_overrides())
    walls = [sum(_finished_group_wall_time(run_dir, parts[g], _group_dir(run_dir, g, len(parts)))
                 for g in mine) for mine in assignments]
    # (a worker a signal stopped after its last group had finished, e.g. in its wandb runs'
    # ending, trained everything all the same: the population had been recorded pre-empted)
    status = ("preempted" if workers.PREEMPTED in codes and not all(
        _finished(run_dir, parts[g], cfg, since=t_start) for g in left) else "completed")
    return status, max(*walls, time.time() - t_start), True


def train_assigned(cfg: DictConfig, run_dir: Path, groups: list[list[int]], mine: list[int],
                   t_start: float, side: int, label: str, group_name: str | None = None) -> str:
    """A worker process's part (:mod:`snntrain.workers`): the groups ``mine`` of ``groups``
    (the members' indices of each of the population's groups), with ``side`` workers' groups
    in memory at once, under its own signal handling; ``completed`` or ``preempted``.
    ``group_name``: the members' wandb group, its parent's (:func:`wandb_group`)."""
    ms = members(cfg)
    if any(not 0 <= g < len(groups) for g in mine) or any(
            not 0 <= i < len(ms) for g in mine for i in groups[g]):
        raise ConfigError(f"{KEY}: a worker was given groups {mine} of {len(groups)}, "
                          f"members of {len(ms)}: its parent's population differs")
    parts = [[ms[i] for i in group] if g in mine else [] for g, group in enumerate(groups)]
    with lifecycle.Signals() as signals:
        status, _, _ = train_groups(
            cfg, run_dir, parts, mine, signals.received_any, t_start, label=label, side=side,
            group_name=group_name,
            trial=malloctune.for_run(malloc_signature(cfg, [len(groups[g]) for g in mine]),
                                     say=_say))
    return status


def _save_config(cfg: DictConfig, run_dir: Path, resumed: bool = False) -> None:
    """The population's ``config.yaml`` (``resumed``: an earlier one with other values kept
    and said)."""
    writers.save_config(run_dir, OmegaConf.to_container(cfg, resolve=True),
                        _say if resumed else None)


def _group_dir(run_dir: Path, g: int, n_groups: int) -> Path:
    """Group ``g``'s checkpoints (the population's own directory when it is one group)."""
    return run_dir / "checkpoints" / (f"group{g}" if n_groups > 1 else "")


def _set_aside_other_members(run_dir: Path, names: set[str]) -> None:
    """Move an earlier population's members that this one does not have to
    ``members.set-aside-<time>/`` (kept; the report reads ``members/`` only): with
    ``trainer.resume=never`` and other axes they stayed, and the run's report chose one."""
    members = run_dir / "members"
    other = sorted(d for d in members.iterdir() if d.is_dir() and d.name not in names
                   ) if members.is_dir() else []
    if not other:
        return
    kept = rundir.aside_path(members)
    kept.mkdir(exist_ok=True)
    for d in other:
        d.rename(kept / d.name)
    _say(f"trainer.resume=never: kept {len(other)} earlier member"
         f"{'s' if len(other) > 1 else ''} this population does not have in {kept.name}/")


def trial_for_group(trial: malloctune.MallocTrial | None, members: int, size: int
                    ) -> malloctune.MallocTrial | None:
    """The malloc trial for the next group (:mod:`snntrain.malloctune`): one trial per
    population, on the first group trained, whose choice every later group keeps (the policy
    is the process's; the key holds the group size, :func:`step_signature`). A group of
    another size (only a chunked population's last group can be smaller) does not get its
    own: it would need its own ~12 timed steps and would switch the policy mid-run for one
    group. If the trial is still unfinished there (the first group had too few steps), its
    steps would mix two step sizes: it is dropped, unchosen and uncached, with glibc's
    adapted default settings (:func:`snntrain.hostenv.use_heap` off)."""
    if trial is None or trial.done:
        return None
    if members != size:
        trial.set_heap(False)
        return None
    return trial


def _member_summary(run_dir: Path) -> dict[str, Any]:
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _span(part: list[Member]) -> str:
    """``members 0-... to 3-...``, ``member 0-...`` or, for a strided group (worker
    processes), ``members 0-..., 2-...`` or ``members 0-..., 2-..., ..., 8-... (5)``."""
    if len(part) == 1:
        return f"member {part[0].name}"
    if [m.index for m in part] == list(range(part[0].index, part[-1].index + 1)):
        return f"members {part[0].name} to {part[-1].name}"
    if len(part) <= 3:
        return f"members {', '.join(m.name for m in part)}"
    return f"members {part[0].name}, {part[1].name}, ..., {part[-1].name} ({len(part)})"


def _group_done(run_dir: Path, part: list[Member], cfg: DictConfig, say=None) -> bool:
    """A group whose members all finished in an earlier attempt: diverged, or completed
    ``trainer.epochs`` (fewer: the group resumes to train on; more: refused, as a solo run);
    ``say`` tells a finished group so."""
    done = _finished(run_dir, part, cfg)
    if done and say is not None:
        say(f"nothing to train for {_span(part)}: finished in an earlier attempt "
            f"(trainer.epochs={cfg.trainer.epochs}); raise it to train on")
        for m in part:  # (a deleted record went unmentioned: the report then said "failed")
            path = run_dir / "members" / m.name / "metrics.jsonl"
            if not path.is_file():
                say(f"{path} is missing: the records it held are lost (the member's "
                    "summary.json stands)")
    return done


def _finished(run_dir: Path, part: list[Member], cfg: DictConfig,
              since: float | None = None) -> bool:
    """(``since``: finished by the attempt that started then, also under
    ``trainer.resume=never``: an earlier attempt's records, not yet set aside by a group this
    attempt never reached, do not count.)"""
    if since is not None and any(_written_before(run_dir / "members" / m.name / "summary.json",
                                                 since) for m in part):
        return False
    if str(cfg.trainer.resume) == "never" and since is None:
        return False
    summaries = [_member_summary(run_dir / "members" / m.name) for m in part]
    if any(s.get("status") not in ("completed", "diverged") for s in summaries):
        return False
    left = [lifecycle.check_epochs_left(int(cfg.trainer.epochs), int(s.get("epochs", 0)),
                                        int(s.get("steps", 0)), run_dir / "checkpoints")
            for s in summaries if s["status"] == "completed"]
    return not any(left)


def _written_before(path: Path, t: float) -> bool:
    try:
        return path.stat().st_mtime < t
    except OSError:
        return True


# What an earlier attempt in a population's directory must share with this one to go on with
# it (what its members were trained with; a solo run's checkpoint fingerprint checks the same):
# the rest (trainer.epochs, optimizer.lr, logger, devices, chunking) may change on resume,
# trainer.epochs not under a schedule over the whole run once checkpoints hold its place
# (``schedule``).
def _resume_invariants(cfg: DictConfig, schedule: bool = True) -> dict[str, Any]:
    c = OmegaConf.to_container(cfg, resolve=True)
    pop = c["trainer"]["population"]
    return {"seed": c.get("seed"), "T": c.get("T"), "surrogate": c.get("surrogate"),
            "model": {k: v for k, v in c["model"].items() if k not in MODEL_COMPUTATION_KEYS},
            "encoder": c.get("encoder"), "dataset": c["dataset"].get("name"),
            # as the fingerprint: what the data is (not where), what is minimised and how
            # (a finished population rerun with loss.rate_reg.weight=0.5 reported the old
            # members, trained with 0, as its own)
            "dataset settings": {k: v for k, v in c["dataset"].items()
                                 if k not in DATA_LOCATION_KEYS},
            "trainer.batch_size": c["trainer"].get("batch_size"),
            "trainer.dtype": c["trainer"].get("dtype"),
            "optimizer": {k: v for k, v in c["optimizer"].items() if k != "lr"},
            "loss": c.get("loss"),
            KEY: {k: v for k, v in pop.items() if k not in PLACEMENT_SETTINGS},
            # a schedule over the whole run is another schedule for another length (its
            # checkpoints refused it in each worker, after compiling, in several lines)
            **({f"trainer.epochs (optimizer.schedule={kind} decays over the whole run)":
                c["trainer"].get("epochs")}
               if schedule and (kind := c["optimizer"].get("schedule", "constant")) != "constant"
               else {})}


def _saved_groups(run_dir: Path) -> Iterator[tuple[ckpt_lib.Checkpoints, dict[str, Any]]]:
    """Each checkpoint directory of a population (one per group of members) with the
    fingerprint of its newest step, which names the group's members and programs."""
    for directory in rundir.checkpoint_dirs(run_dir):
        ckpts = ckpt_lib.Checkpoints(directory, write=False)
        try:
            fp = newest_fingerprint(ckpts)  # (an unreadable newest meta gave a traceback)
            if not fp:
                raise ckpt_lib.CheckpointError(
                    f"no readable checkpoint in {directory} ({len(ckpts.steps())} found)")
            yield ckpts, fp
        finally:
            ckpts.close()


def _check_groups(cfg: DictConfig, run_dir: Path, ms: list[Member],
                  planned: list[list[Member]]) -> None:
    """Refuse to go on with checkpoints written for other groups of members (another
    ``chunk``, or ``auto`` deciding otherwise on this machine): their state would not be found
    and the members would silently start over."""
    resume = str(cfg.trainer.resume)
    source = run_dir if resume == "auto" else _resumed_run_dir(resume)
    earlier = _earlier_groups(cfg, run_dir)
    if not earlier or _holds(planned, earlier):
        return
    kept = _grouping_holding(ms, earlier, None)
    fix = (f"set {KEY}.chunk=null to resume them in their groups" if kept is not None else
           "they are not groups of this population's members")
    raise RefusedConfig(
        f"the checkpoints in {source / 'checkpoints'} hold other groups of members (sizes "
        f"{', '.join(str(len(g)) for g in earlier.values())}) than this run trains (groups of "
        f"{len(planned[0])}, {KEY}.chunk={_setting(cfg, 'chunk') or 'null'}): {fix}, or "
        + ("trainer.resume=never to start over" if resume == "auto" else "resume another run"))


def _holds(parts: list[list[Member]], earlier: dict[str, list[str]]) -> bool:
    """Whether ``parts`` puts each earlier group's members in the group whose checkpoints
    they are (``checkpoints/group<g>``, or ``checkpoints/`` itself for one group)."""
    for where, names in earlier.items():
        g = 0 if where == "checkpoints" else int(where.removeprefix("group"))
        if (where == "checkpoints") != (len(parts) == 1) or g >= len(parts) or (
                [m.name for m in parts[g]] != names):
            return False
    return True


def _grouping_holding(ms: list[Member], earlier: dict[str, list[str]],
                      chunk: int | None) -> list[list[Member]] | None:
    """A grouping (:func:`partition`, of size ``chunk`` if given, else the largest) that holds
    the earlier groups; None if none does. The groups without checkpoints are free: their
    members start from step 0 in any grouping. (A killed population may have saved a small
    group and not yet its largest, whose size said nothing.)"""
    for size in [int(chunk)] if chunk is not None else range(len(ms), 0, -1):
        for strided in (False, True):
            if _holds(parts := partition(ms, size, strided), earlier):
                return parts
    return None


def _earlier_groups(cfg: DictConfig, run_dir: Path) -> dict[str, list[str]] | None:
    """The groups of members an earlier attempt saved checkpoints for (where this run
    resumes from), by their checkpoint directory's name (``group<g>``, or ``checkpoints``
    for one group); None: none, or unreadable (the restore says so)."""
    resume = str(cfg.trainer.resume)
    source = run_dir if resume == "auto" else _resumed_run_dir(resume)
    if source is None:
        return None
    try:
        saved = {ckpts.directory.name: list(fp["members"]) for ckpts, fp in _saved_groups(source)
                 if re.fullmatch(r"checkpoints|group\d+", ckpts.directory.name)}
    except Exception:  # noqa: BLE001 - unreadable: the group's restore says so
        return None
    return saved or None


def _resumed_run_dir(resume: str) -> Path | None:
    """The run directory ``trainer.resume=<path>`` names (the path, or the run holding the
    ``checkpoints/`` directory it names); None for ``never`` or a directory of steps alone."""
    if resume == "never":
        return None
    where = ckpt_lib.checkpoints_in(Path(resume))
    return where.parent if where.name == "checkpoints" else None


def _recorded_choices(cfg: DictConfig, ckpt_dir: Path) -> dict[str, str] | None:
    """The autotune choices (:func:`snntrain.autotune.choices`) in the newest checkpoint the
    group saving in ``ckpt_dir`` resumes from, else None. A population's groups are traced
    before their checkpoint is restored (:func:`plan_groups` sizes them), so the choices are
    pinned from here: a resume with ``SNNTRAIN_AUTOTUNE=0`` or another cache had traced the
    rule's formulation and recorded it as the run's."""
    resume = str(cfg.trainer.resume)
    if resume == "never":
        return None
    try:
        source = (ckpt_dir if resume == "auto"
                  else ckpt_lib.checkpoints_in(Path(_group_source(resume, ckpt_dir))))
        if not source.is_dir():
            return None
        recorded = ckpt_lib.Checkpoints(source, write=False).newest_meta().get("autotune")
    except (OSError, ValueError):
        return None
    return dict(recorded) if isinstance(recorded, dict) and recorded else None


def _group_source(resume: str, ckpt_dir: Path) -> str:
    """``trainer.resume`` for the group saving in ``ckpt_dir``: a path to a population
    trained in groups (chunked, or in worker processes) is its ``checkpoints/group<g>`` (the
    population's top level has no steps: "no readable checkpoint" was all it said)."""
    source = _resumed_run_dir(resume) if resume != "auto" else None
    if source is None or ckpt_dir.name == "checkpoints":
        return resume
    group = source / "checkpoints" / ckpt_dir.name
    return str(group) if group.is_dir() else resume


def _check_earlier_attempt(cfg: DictConfig, run_dir: Path) -> None:
    """Refuse to go on with a population directory trained with other settings (before its
    config.yaml is replaced): its finished members would be kept as this run's."""
    path = run_dir / "config.yaml"
    if str(cfg.trainer.resume) == "never" or not path.is_file() or not (
            run_dir / "members").is_dir():
        return
    saved = rundir.has_checkpoints(run_dir)  # (none: it starts from step 0, any length)
    old, new = _resume_invariants(OmegaConf.load(path), saved), _resume_invariants(cfg, saved)
    if old != new:
        raise RefusedConfig(f"{run_dir} holds a population trained with other settings: "
                          f"{ckpt_lib.describe_difference(old, new, 'it has')} (use "
                          "trainer.resume=never or a new run directory)")


def _train_group(group: Group, run_dir: Path, ckpt_dir: Path, group_name: str,
                 stop: Callable[[], bool], t_group: float, say=_say,
                 malloc_trial: malloctune.MallocTrial | None = None,
                 accepted: Callable[[], Any] | None = None, label: str = "", side: int = 1
                 ) -> tuple[str, float]:
    """Train one group of members from its checkpoint (or step 0); ``accepted`` is called once
    the checkpoint is restored (its fingerprint matched), before anything is written; ``side``:
    the groups trained side by side (worker processes). Returns ``completed`` or
    ``preempted`` and the group's wall time (its earlier attempts' too)."""
    ckpts = ckpt_lib.Checkpoints(ckpt_dir, group.base.run.trainer.keep_checkpoints,
                                 async_save=group.base.run.trainer.async_checkpointing)
    runs = []
    for m, e in zip(group.members, group.exps, strict=True):
        d = rundir.prepare(run_dir / "members" / m.name)
        runs.append(MemberRun(m, e, d, RunProgress(), DivergencePolicy(
            e.run.trainer.on_nan, lambda: lifecycle.last_good(ckpts), _member_say(m.name, say))))
    failed: Exception | None = None
    try:
        state, position, ckpts = _restore_or_start(group, runs, ckpts, say)
        if accepted is not None:
            accepted()
        position.started_at = t_group  # (the group's time: this attempt's and the earlier ones')
        start_step = position.step
        for run in runs:
            if run.status == "training":
                run.rec = _recorder(run, group_name, say)
                run.rec.resume_at(start_step, epoch_open=(
                    run.progress.batch_in_epoch >= group.base.steps_per_epoch),
                    epochs=lifecycle.own_epochs(run.progress, ckpts))
                if start_step == 0:
                    run.rec.log_surrogate(run.exp.surrogate)
        runner = GroupRunner(group, group.place(state), malloc_trial)
        try:
            status = train_group_epochs(group, runner, position, runs, ckpts, stop, say,
                                        label=label)
        except Exception as e:  # each live member recorded as failed below
            failed = e
            raise
        ckpts.close()
    finally:
        ckpts.abandon()
        if failed is not None:  # (after the checkpoints are closed, as a solo run's)
            for run in runs:
                if run.rec is not None:
                    with contextlib.suppress(writers.WriteFailed):  # (the first error stays)
                        run.rec.finish(failure_record(failed))
    # the member's share of its group's times, compile and data included as in a solo run's
    # (the group's was every member's: a report's sum over members counted it once per
    # member; then it left out the compile); a resumed group's earlier attempts included;
    # with the groups of worker processes side by side, their share of it (the sum over the
    # members of 2 workers was twice the time spent)
    spent = position.time_spent(runner)
    shares = len(runs) * side
    for j, run in enumerate(runs):
        if run.rec is None:
            continue
        final = "preempted" if status == "preempted" else "completed"
        summary = lifecycle.summarize(run.exp, run.progress, runner, final, run.run_dir)
        summary.update({k: spent[k] / shares for k in TIMES if k != "timed_steps"})
        summary["samples_per_s"] = (  # the member's own: its batch per group step
            lifecycle.throughput(spent["timed_steps"], run.exp.batch_size, spent["train_time_s"])
            if spent["timed_steps"] else None)
        summary["population"] = {"dir": str(run_dir.absolute()), "members": len(runs),
                                 **{f"group_{k}": spent[k] for k in TIMES if k != "timed_steps"}}
        mesh = next(p.mesh_shape for p in group.programs if j in p.index)
        if mesh != (1, 1):  # the member's program's devices (as device_info counts a run's)
            summary["device"].update(devices=mesh[0] * mesh[1], parallel="sharded",
                                     mesh={"members": mesh[0], "data": mesh[1]})
        run.rec.finish(summary)
        run.status = final
    return status, spent["wall_time_s"]


def _finished_group_wall_time(run_dir: Path, part: list[Member], ckpt_dir: Path) -> float:
    """The wall time a group finished in an earlier attempt took: as its members recorded it
    (``population.group_wall_time_s``), else its newest checkpoint's (every member diverged),
    which leaves out the last evaluation."""
    for m in part:
        group = _member_summary(run_dir / "members" / m.name).get("population")
        if isinstance(group, dict) and isinstance(group.get("group_wall_time_s"), float):
            return group["group_wall_time_s"]
    ckpts = ckpt_lib.Checkpoints(ckpt_dir, write=False)
    try:
        return float((ckpts.newest_meta().get("history") or {}).get("wall_time_s", 0.0))
    finally:
        ckpts.close()


def population_summary(cfg: DictConfig, run_dir: Path, ms: list[Member], status: str,
                       wall_time_s: float) -> dict[str, Any]:
    """``<run dir>/summary.json``: the status, every member's outcome, and the best
    configuration by ``optimize_metric`` (what a sweeper reads: :func:`_best_configuration`)."""
    metric = str(cfg.get("optimize_metric", "test_accuracy"))
    rows = []
    for m in ms:
        d = run_dir / "members" / m.name
        try:
            s = json.loads((d / "summary.json").read_text())
        except (OSError, ValueError):
            s = {}
        outcome = s.get("status") or ("not started" if not d.is_dir() else None)
        why = no_number(s) if outcome == "completed" else None
        if why is not None:  # as the report counts it (its counts disagreed with the report's)
            outcome = "diverged"
        rows.append({"member": m.name, "values": m.values,
                     # (a later group of a pre-empted population: null before)
                     "status": outcome, **({"reason": why} if why else {}),
                     metric: s.get(metric), "best_val_accuracy": s.get("best_val_accuracy"),
                     "test_accuracy": s.get("test_accuracy"),
                     "diverged_at_step": s.get("diverged_at_step")})
    done = [r for r in rows if r["status"] == "completed" and r[metric] is not None]
    best = _best_configuration(done, metric, lambda: _report_order(run_dir, done, metric))
    return {"status": status, "population": len(ms), "members": rows,
            # (not only those with the metric: without a validation split, best_val_accuracy
            # is null and "0 completed" was said of a population that completed)
            "completed": sum(r["status"] == "completed" for r in rows),
            "diverged": sum(r["status"] == "diverged" for r in rows),
            **best, "wall_time_s": wall_time_s,  # (every attempt's: as its members')
            "run_dir": str(Path(run_dir).absolute())}


def _report_order(run_dir: Path, done: list[dict[str, Any]], metric: str) -> list[str]:
    """The member names of ``done`` in the order the report ranks their configurations by
    ``metric`` (best first; a tie in the table's order), so that the population's best
    configuration is the report's selection, ties included."""
    from snntrain import compare
    from snntrain import runs as runs_lib

    loaded = [runs_lib.load_run(run_dir / "members" / r["member"]) for r in done]
    _, rows = runs_lib.group_runs(loaded)
    ranked = compare.rank(rows, compare.selection_metric([metric]))  # (its fallbacks too)
    return [run.path.name for e in ranked for run in e.row.runs]


def _best_configuration(done: list[dict[str, Any]], metric: str,
                        order: Callable[[], list[str]] | None = None) -> dict[str, Any]:
    """The configuration (a member's values apart from the seed) with the best mean
    ``metric`` over its seeds (lowest for a loss), as the report selects: ``metric`` and
    ``test_accuracy`` are its means (what a sweeper receives: Optuna over a seed axis
    optimises the mean, not the luckiest seed), ``best_member`` its best member. A seed
    repeated in one configuration counts once. ``order()`` (member names as the report
    ranks them) decides which configuration is best, so that a tie goes the report's way;
    without it, or if it fails, the highest mean does (the first in member order on a tie)."""
    if not done:
        return {metric: None, "test_accuracy": None, "best_member": None,
                "best_configuration": None, "best_seeds": 0}
    groups: dict[str, dict[Any, dict[str, Any]]] = {}
    for r in done:
        rest = {k: v for k, v in r["values"].items() if k != "seed"}
        key = json.dumps(rest, sort_keys=True, default=str)
        groups.setdefault(key, {}).setdefault(r["values"].get("seed"), r)
    sign = -1.0 if metric.endswith("loss") else 1.0

    def mean(rs: list[dict[str, Any]], k: str) -> float | None:
        vs = [float(r[k]) for r in rs if r[k] is not None]
        return sum(vs) / len(vs) if vs else None

    key = max(groups, key=lambda k: sign * mean(list(groups[k].values()), metric))
    try:
        ranked = order() if order is not None else []
    except Exception:  # noqa: BLE001 - the report's reading failed: the plain maximum
        ranked = []
    of_member = {r["member"]: k for k, g in groups.items() for r in g.values()}
    key = next((of_member[name] for name in ranked if name in of_member), key)
    by_seed = groups[key]
    rs = list(by_seed.values())
    return {metric: mean(rs, metric), "test_accuracy": mean(rs, "test_accuracy"),
            "best_member": max(rs, key=lambda r: sign * r[metric])["member"],
            "best_configuration": ",".join(f"{k}={v}" for k, v in json.loads(key).items())
            or "(only the seed varies)", "best_seeds": len(rs)}


def params_of(run_dir: str | Path) -> dict[str, Any]:
    """Every member's newest saved parameters, ``{member name: params}`` (for a notebook)."""
    run_dir = Path(run_dir)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    if not is_population(cfg):  # (a member's gave {}, a solo run's a KeyError)
        where = (f"; a member's: params_of({str(run_dir.parent.parent)!r})[{run_dir.name!r}]"
                 if run_dir.parent.name == "members" else
                 "; a solo run's: snntrain.experiment.params_of(run_dir)")
        raise ValueError(f"{run_dir} is not a population's directory (its config.yaml sets no "
                         f"{KEY} axis){where}")
    by_name = {m.name: m for m in members(cfg)}
    out: dict[str, Any] = {}
    for ckpts, fp in _saved_groups(run_dir):
        exps = [_build_member(by_name[name]) for name in fp["members"]]
        lr_varies = any("optimizer.lr" in by_name[n].values for n in fp["members"])
        target = {f"program{i}": initial_state([exps[j] for j in idx], lr_varies)
                  for i, idx in enumerate(fp["programs"])}
        restored = ckpts.restore(target, fp)
        if restored is None:
            raise ckpt_lib.CheckpointError(
                f"no readable checkpoint in {ckpts.directory} ({len(ckpts.steps())} found)")
        state = restored[0]
        for i, idx in enumerate(fp["programs"]):
            params = state[f"program{i}"]["train"].params
            for j, k in enumerate(idx):
                out[fp["members"][k]] = jax.tree.map(lambda x, j=j: x[j], params)
    return out
