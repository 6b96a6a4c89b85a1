"""What ``python -m snntrain`` does between Hydra composing the config and the run starting.

:class:`Startup` is a Hydra callback (``hydra.callbacks.startup`` in ``conf/config.yaml``). Its
``on_run_start`` runs before Hydra creates the run directory, in this order, cheapest first:

1. :func:`snntrain.config.parse` (no JAX imported): a bad value is reported in about a second;
2. the output directory is checked (writable, or creatable) without creating it;
3. :func:`snntrain.config.check_groups` (imports JAX; loads no data, compiles nothing);
4. glibc's malloc policy is set up (:func:`snntrain.malloctune.prepare_run`; only when started
   as the ``snntrain`` command): for the default ``SNNTRAIN_MALLOC=auto``, the choice cached
   for this machine and config, else one arena for all threads (the run then times
   ``default`` against ``heap`` on its first steps); for ``hugepages`` the process restarts
   once with the glibc tunable, and the restarted process goes through 1-3 again;
5. the run directory is created and locked (:func:`snntrain.rundir.hold`; not for a
   multi-host run, whose processes share it): a second run on it stops here, before Hydra
   writes its ``.hydra/`` files over the first run's.

So a bad value never pays for a restart (about 0.8 s of CPU: Python, Hydra and JAX start
again); a good run pays for importing JAX and the registries once before it (about 2 s of
CPU). A failure prints
``snntrain: error: <one line>`` and exits with status 2, leaving no run directory behind.
``on_multirun_start`` does 1, 2 and 4 for the sweep's base config and directory; each job is
checked again by the task function, which records a failure in its ``summary.json``.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from snntrain.config import (
    ConfigError,
    UnresolvedConfig,
    check_files,
    check_groups,
    check_trainer,
    no_overridden_decay,
    parse,
    swept_in,
    swept_in_config,
)
from snntrain.paths import (  # noqa: F401 - re-exported
    MULTIRUN_FLAGS,
    SWEEP_RECORD,
    is_multirun_mode,
    multirun_requested,
    started_from_the_command_line,
)

ERROR_EXIT_CODE = 2


def fail(message: str) -> None:
    """Print ``snntrain: error: message`` (a 400-digit value shortened) and exit with status
    2 (no sweep report at exit: a sweep refused at its start has none of its own; it printed
    "no finished runs", or the report of another sweep in its directory)."""
    from snntrain.errors import shortened

    print(f"snntrain: error: {shortened(message)}", file=sys.stderr, flush=True)
    if (callbacks := sys.modules.get("snntrain.callbacks")) is not None:
        callbacks.cancel_reports()
    sys.exit(ERROR_EXIT_CODE)


MAX_SWEEP_COMPOSES = 32


def composition_error(argv: list[str]) -> str | None:
    """One line for overrides Hydra cannot compose, or None: an unknown key given without
    ``+``, a group option that does not exist, a malformed override. (Hydra's own message is
    several lines ending in a hint about ``HYDRA_FULL_ERROR``; a multirun added "no finished
    runs" after it.) The overrides are composed once more here (about 0.1 s each): a single
    run's as given; a ``-m`` sweep's as the single runs of :func:`sweep_samples`. Other flags
    (``--cfg job``, ``--info``, ``--help``) are set aside first: their overrides are checked
    alike (``--cfg job trainer.epoch=3`` printed Hydra's multi-line error)."""
    shown = _without_show_flags(argv)
    modes = {a.split("=")[0] for a in argv if a.split("=")[0] in ("--cfg", "-c", "--info", "-i")
             } | {a for a in argv if a in MULTIRUN_FLAGS}
    if len(modes & {"--cfg", "-c"}) + len(modes & {"--info", "-i"}) + len(
            modes & set(MULTIRUN_FLAGS)) > 1:  # (Hydra's ValueError traceback)
        return (f"{', '.join(sorted(modes))}: Hydra does one of -m, --cfg and --info at a time; "
                "drop the others")
    if "--hydra-help" in argv:  # Hydra's own help composes its hydra config alone
        task = [a for a in shown if not a.startswith("-")
                and not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
        return (f"{' '.join(task)}: --hydra-help shows Hydra's own help and takes only hydra.* "
                "overrides; drop the others (python -m snntrain --help shows this program's "
                "options)") if task else None
    if any(a.split("=")[0] in ("--info", "-i") for a in argv) and (
            "plugins" in argv or "--info=plugins" in argv):
        return None  # Hydra's plugin list takes no overrides: it ignores them
    argv = shown
    flags = [a for a in argv if a.startswith("-")]
    if set(flags) <= set(MULTIRUN_FLAGS) and multirun_requested(argv):  # (hydra.mode=MULTIRUN
        task = [a for a in argv if a not in MULTIRUN_FLAGS and not is_multirun_mode(a)]  # too)
        if (msg := sweep_key_error({}, task)) is not None:  # (said "write +model.hidden=...")
            return msg
        runs, shown = sweep_samples(task)
        for run in runs:
            if (msg := _composition_error(run, shown)) is not None:
                return msg
        return None
    return None if flags else _composition_error(argv)


# Hydra's flags that show something instead of running, with the values they take (None: any)
SHOW_FLAGS: dict[str, tuple[str, ...] | None] = {
    "--cfg": ("job", "hydra", "all"), "-c": ("job", "hydra", "all"),
    "--info": ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"),
    "-i": ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"),
    "--package": None, "-p": None, "--resolve": (), "--help": (), "-h": (), "--hydra-help": ()}


def _without_show_flags(argv: list[str]) -> list[str]:
    """``argv`` without :data:`SHOW_FLAGS` and their values."""
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a.split("=")[0] in SHOW_FLAGS and "=" in a:  # --cfg=job
            continue
        if a in SHOW_FLAGS:
            values = SHOW_FLAGS[a]
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            skip = nxt is not None and (values is None or nxt in values)
            continue
        out.append(a)
    return out


def sweep_samples(argv: list[str]) -> tuple[list[list[str]], dict[str, str]]:
    """Single runs of a ``-m`` sweep that between them take every option of every swept config
    group and one value of every other swept key (the first run takes each one's first value;
    each further run one other option), expanded
    as Hydra's basic sweeper expands them (``sweep_string_iterator``; the raw overrides if one
    does not parse: composing them says why), and the sweep override each single value came
    from. An ``interval`` (Optuna's) is not a list of values: its key is left out. At most
    ``MAX_SWEEP_COMPOSES`` runs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from snntrain.paths import CONFIG_DIR

    try:
        overrides = OverridesParser.create().parse_overrides(argv)
    except HydraException:
        return [argv], {}
    choices: list[list[str]] = []
    shown: dict[str, str] = {}
    for raw, o in zip(argv, overrides, strict=True):
        if not o.is_sweep_override():
            choices.append([raw])
            continue
        try:
            values = list(o.sweep_string_iterator())
        except Exception:  # noqa: BLE001 - an interval: no values to list
            continue
        if not (CONFIG_DIR / o.key_or_group.replace(".", "/")).is_dir():
            values = values[:1]  # a key composes with any value: one says whether it exists
        choices.append([f"{o.get_key_element()}={v}" for v in values] or [raw])
        shown.update(dict.fromkeys(choices[-1], raw))
    first = [c[0] for c in choices]
    runs = [first] + [first[:i] + [v] + first[i + 1:]
                      for i, c in enumerate(choices) for v in c[1:]]
    return runs[:MAX_SWEEP_COMPOSES], shown


def _population_hint(group: str) -> str:
    """Where a population could vary what a list given to ``group`` asks for."""
    return {"surrogate": " or a population (trainer.population.surrogate=[<a>,<b>])"}.get(
        group, "")


def _composition_error(argv: list[str], shown: dict[str, str] | None = None) -> str | None:
    """:func:`composition_error` of one run's overrides; ``shown``: the argument to quote for
    an override (a sweep's, for the single value tried)."""
    if not argv:
        return None
    shown = shown or {}
    from hydra import compose, initialize_config_dir
    from hydra.errors import (
        ConfigCompositionException,
        HydraException,
        MissingConfigException,
        OverrideParseException,
    )

    from snntrain.paths import CONFIG_DIR

    def composed(overrides: list[str]) -> Any:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose("config", overrides=overrides)

    for arg in argv:  # trainer=[0,1] (a TypeError traceback inside Hydra), model=[mlp,conv]
        key, eq, value = arg.partition("=")
        key = key.lstrip("+~")
        group = key.replace(".", "/")
        if eq and value.lstrip().startswith("[") and key and (CONFIG_DIR / group).is_dir():
            return (f"{shown.get(arg, arg)}: a config group takes the name of one of its "
                    f"options, not a list; to train several, use a multirun (python -m snntrain "
                    f"-m {group}=<a>,<b>){_population_hint(group)}")
    try:
        composed(list(argv))
    except MissingConfigException as e:
        text = str(e)
        found = re.search(r"Could not find '(.+)/([^/']*)'", text)
        options = re.findall(r"^\t(\S+)$", text, re.M)
        if found and options:  # (experiment= : an empty name)
            what = "no such option" if found.group(2) else "an option name is required"
            return (f"{found.group(1)}={found.group(2)}: {what}; valid: "
                    f"{', '.join(options)}")
        return _one_line(text)
    except ConfigCompositionException as e:
        cause = str(e.__cause__ or "")
        node = re.search(r"Cannot merge DictConfig with ListConfig\s+full_key: ([\w.]+)", cause)
        if node:  # trainer.population=[0,1]: a node given a list
            key = node.group(1)
            arg = next((a for a in argv if a.split("=", 1)[0].lstrip("+~") == key), key)
            return (f"{shown.get(arg, arg)}: {key} is a config node, not a list; set its keys "
                    f"one by one ({key}.<key>=<value>)")
        bad = re.search(r"Could not override '([^']+)'", str(e))
        if bad and "is not in struct" in cause:
            key = bad.group(1)
            arg = next((a for a in argv if a.split("=", 1)[0] == key), key)
            if key.startswith("hydra."):  # (compose() leaves Hydra's own node out)
                return (f"{key} is not a key of Hydra's config; to add a key it does not have, "
                        f"write +{shown.get(arg, arg)}")
            try:
                base = composed([a for a in argv if a != arg])
            except Exception:  # noqa: BLE001 - another override fails too (~trainer beside
                # trainer.epochs=1 and trainer.progress=false): this one's line, not a traceback
                return _one_line(f"{shown.get(arg, arg)} cannot be applied: {cause}")
            parent, _, leaf = key.rpartition(".")
            while parent and OmegaConf.select(base, parent) is None:  # trainer.populaton.seed
                parent, _, leaf = parent.rpartition(".")  # names trainer.populaton
            keys = _keys_of(base, parent)
            arg = shown.get(arg, arg)
            named = (parent + "." if parent else "") + leaf
            if named != key:
                key = named
            elif leaf in keys:  # trainer={a:1}: a group (or node) given a value Hydra cannot merge
                group = key.replace(".", "/")
                pick = (f" or pick an option ({group}=<name>)" if (CONFIG_DIR / group).is_dir()
                        else "")
                return (f"{arg}: {key} is a config group or node; set its keys one by one "
                        f"({key}.<key>=<value>){pick}")
            close = difflib.get_close_matches(leaf, keys, n=1)
            hint = f"did you mean {parent + '.' if parent else ''}{close[0]}? " if close else ""
            return (f"{key} is not a config key ({parent or 'the config'} has: "
                    f"{', '.join(keys)}); {hint}to add a key it does not have, write +{arg}")
        return _one_line(f"{e}; {cause}" if cause else str(e))
    except OverrideParseException as e:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parser, bad = OverridesParser.create(), None
        for a in argv:
            try:
                parser.parse_override(a)
            except HydraException:
                bad = a
                break
        return _one_line(f"cannot parse the override {bad!r}: {e}" if bad else str(e))
    except ValueError as e:  # e.g. model=null, =3: "Config group override must be a string"
        for a in argv:
            try:
                composed([a])
            except ValueError:
                key = a.split("=", 1)[0]
                if not key:
                    return f"cannot apply the override {a!r}: it names no key"
                return (f"{a}: a config group takes the name of one of its options; "
                        f"`python -m snntrain --help` lists those of {key}")
            except Exception:  # noqa: BLE001
                continue
        return _one_line(str(e))
    except Exception:  # noqa: BLE001 - anything else: Hydra composes again and says it
        return None
    return None


def sweep_value_error(config: DictConfig) -> str | None:
    """One line for a value of a multirun's sweep that its key refuses (each job checked it
    at its own start: ``trainer.batch_size=64,0`` trained job 0 and failed job 1, a typo in
    the 37th value hours in; an Optuna ``interval`` whose ends are out of the key's range
    failed every trial). Each value of every swept key that is no config group, and both
    ends of an interval, go through :func:`snntrain.config.parse` and the groups' builders
    (:func:`snntrain.config.check_groups`, the model aside) in the sweep's config."""
    from hydra.core.override_parser.types import IntervalSweep

    from snntrain.paths import CONFIG_DIR

    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    task = list(OmegaConf.select(config, "hydra.overrides.task", default=None) or [])
    base = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    for key, (written, o) in swept_in(params, task).items():
        if o is None or (CONFIG_DIR / key.replace(".", "/")).is_dir():
            continue  # (a group's options are composed: composition_error)
        v = o.value()
        try:
            values = ([v.start, v.end] if isinstance(v, IntervalSweep)
                      else list(o.sweep_iterator()))
        except Exception:  # noqa: BLE001 - a sweep Hydra itself will refuse
            continue
        for value in values:
            cfg = base.copy()
            try:
                OmegaConf.update(cfg, key, value, force_add=True)
                check_groups(parse(cfg), model=False)  # (the neuron's, the surrogate's, ...)
            except ConfigError as e:
                if f"{key}=" in str(e):
                    return f"{written}: {e}"
            except Exception:  # noqa: BLE001 - another part's, said by the jobs
                continue
    return None


def sweep_range_error(config: DictConfig) -> str | None:
    """One line for an Optuna search space or setting the sweeper would refuse with its
    traceback (exit status 1): an ``interval`` whose low end is above its high end, a
    ``tag(log, interval(...))`` reaching 0 or below, ``hydra.sweeper.direction`` other than
    minimize / maximize, ``hydra.sweeper.n_trials`` below 1."""
    from hydra.core.override_parser.types import IntervalSweep

    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    task = list(OmegaConf.select(config, "hydra.overrides.task", default=None) or [])
    for written, o in swept_in(params, task).values():
        v = o.value() if o is not None else None
        if not isinstance(v, IntervalSweep):
            continue
        if v.start > v.end:
            return (f"{written}: the interval's low end {v.start:g} is above its high end "
                    f"{v.end:g}; write interval(low, high)")
        if "log" in v.tags and v.start <= 0:
            return (f"{written}: a log interval needs a low end above 0 (it has {v.start:g}); "
                    "drop tag(log, ...) or start above 0")
    if "optuna" not in str(OmegaConf.select(config, "hydra.sweeper._target_", default="")):
        return None
    direction = OmegaConf.select(config, "hydra.sweeper.direction", default=None)
    for d in direction if isinstance(direction, (list, ListConfig)) else [direction]:
        if d is not None and str(d) not in ("minimize", "maximize"):
            return (f"hydra.sweeper.direction={d} is invalid: must be minimize or maximize "
                    "(snntrain sets it from optimize_metric)")
    n = OmegaConf.select(config, "hydra.sweeper.n_trials", default=None)
    if n is not None and not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
        return f"hydra.sweeper.n_trials={n} is invalid: must be an integer >= 1"
    return None


def sweep_key_error(params: Any, task: list[str]) -> str | None:
    """One line when a multirun varies a key that a config group's option (swept, or fixed on
    the command line) does not have: ``surrogate=choice(sigmoid,straight_through)`` beside
    Optuna's ``surrogate.alpha``, ``model=mlp,conv`` beside ``model.hidden``,
    ``model/neuron=choice(if,lif)`` beside ``model.neuron.beta``. Every job drawing that option
    fails to compose, and Hydra's error ended an Optuna search at its first such trial. Each
    option of a swept group is composed with one value of every other swept key (``params``:
    ``hydra.sweeper.params``; ``task``: the command line's overrides)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException

    from snntrain.paths import CONFIG_DIR

    swept = swept_in(params, task)
    fixed = [a for a in task if not a.startswith("-") and not _is_sweep(a)]
    groups: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for key, (_, o) in swept.items():
        if o is None:
            return None  # Hydra says what is wrong with it
        if (CONFIG_DIR / key).is_dir():
            groups[key] = _options(o, CONFIG_DIR / key)
        elif (v := _one_value(o)) is not None:
            values[key] = f"{o.get_key_element()}={v}"  # (+key=... stays an addition)
    if not values:
        return None

    def failure(overrides: list[str]) -> str | None:
        # inside the running sweep (on_multirun_start) Hydra is initialised already: a second
        # initialize_config_dir raised, and the check passed every experiment's and Optuna's
        # search space
        running = GlobalHydra.instance().is_initialized()
        try:
            with (contextlib.nullcontext() if running else
                  initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3")):
                compose("config", overrides=overrides)
        except ConfigCompositionException as e:
            bad = re.search(r"Could not override '([^']+)'", str(e))
            if bad and "is not in struct" in str(e.__cause__ or ""):
                return bad.group(1)
        except Exception:  # noqa: BLE001 - not this check's: Hydra says it
            return None
        return None

    first = {g: opts[0] for g, opts in groups.items() if opts}
    base = fixed + list(values.values())

    def prefix(group: str) -> str:
        return group.replace("/", ".") + "."

    chosen = {k: v for k, eq, v in (a.partition("=") for a in fixed)
              if eq and (CONFIG_DIR / k).is_dir()}  # the groups the command line fixes

    def said(key: str, picks: dict[str, str]) -> str:
        owner = max((g for g in picks if key.startswith(prefix(g))), key=len, default=None)
        fixer = max((g for g in chosen if key.startswith(prefix(g))), key=len, default=None)
        if owner is None and fixer is not None:  # experiment=alpha_scan surrogate=boxcar
            return (f"{swept[key][0]} varies {key}, but {fixer}={chosen[fixer]} (command line) "
                    f"has no {key.removeprefix(prefix(fixer))}: every job would fail; choose "
                    f"a {fixer} that has it, or leave {key} out")
        if owner is None:  # a key no job's config has (a group fixed to an option without
            if any(a.split("=", 1)[0].lstrip("+~") == key for a in task):  # it); the
                return None  # command line's: composition_error names the keys there are
            return (f"{swept[key][0]} varies {key}, which this config does not have: every "
                    f"job would fail; to add a key it does not have, write +{key}=...")
        return (f"{swept[key][0]} varies {key}, but {owner}={picks[owner]} "
                f"({swept[owner][0]}) has no {key.removeprefix(prefix(owner))}: every job "
                f"drawing it would fail; vary {owner} over options that have it, or leave "
                f"{key} out")

    trials = [first] + [{**first, g: o} for g, opts in groups.items()
                        if any(k.startswith(prefix(g)) for k in values) for o in opts[1:]]
    for picks in trials:
        if (key := failure(base + [f"{g}={v}" for g, v in picks.items()])) in values:
            return said(key, picks)
    return None



def _is_sweep(arg: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides([arg])[0].is_sweep_override()
    except Exception:  # noqa: BLE001
        return False


def _options(o: Any, group_dir: Path) -> list[str]:
    """The options a sweep of a config group takes (a ``glob`` over the group's files)."""
    try:
        return [str(v) for v in o.sweep_string_iterator()]
    except Exception:  # noqa: BLE001 - a glob: filtered from the group's options
        value = o.value()
        names = sorted(p.stem for p in group_dir.glob("*.yaml"))
        return list(value.filter(names)) if hasattr(value, "filter") else []


def _one_value(o: Any) -> str | None:
    """One value a swept key takes (an interval's start)."""
    try:
        return next(iter(o.sweep_string_iterator()), None)
    except Exception:  # noqa: BLE001 - an interval: its start
        start = getattr(o.value(), "start", None)
        return None if start is None else str(start)


def _keys_of(cfg: Any, dotted: str) -> list[str]:
    node = OmegaConf.select(cfg, dotted) if dotted else cfg
    return sorted(str(k) for k in node) if OmegaConf.is_dict(node) else []


def _one_line(text: str) -> str:
    return "; ".join(x.strip() for x in text.strip().splitlines() if x.strip())


def resume_error(resume: str, out: str | None) -> str | None:
    """``trainer.resume=<path>`` holding no checkpoint at all (no step or group directory),
    unless it is this run's own directory, or one checkpoint step's directory: refused before
    the run directory exists (the checkpoints found are read later, where an unreadable one
    is refused)."""
    if resume in ("auto", "never"):
        return None
    from snntrain.checkpoint import checkpoints_in, one_step_error

    if (msg := one_step_error(resume)) is not None:
        return msg
    where = checkpoints_in(Path(resume).expanduser())
    if out is not None and where.resolve() in (Path(out).resolve(),
                                               (Path(out) / "checkpoints").resolve()):
        return None
    try:
        if any(p.is_dir() and (p.name.isdigit() or p.name.startswith("group"))
               for p in where.iterdir()):
            return None
    except OSError:
        return None  # (unreadable: said where the checkpoints are read)
    return f"trainer.resume={resume}: no checkpoint in {where} (auto, never or a directory " \
           "holding a run's checkpoints)"


def check_output_dir(path: str | Path) -> None:
    """Raise :class:`ConfigError` unless ``path`` is, or could be made, a writable directory.

    Nothing is left behind: a probe directory is made and removed in the nearest existing
    ancestor (permission bits alone do not say it; root ignores them, a read-only mount not).
    """
    target = Path(path).expanduser().absolute()
    base = target
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise ConfigError(f"output directory {target} is not writable: {base} is not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".snntrain-write-test-", dir=base))
    except OSError as e:
        raise ConfigError(  # (/proc says ENOENT: the directory exists, nothing can be made)
            f"output directory {target} is not writable: {e.strerror} (making a directory in "
            f"{base})") from None


def sweep_without_multirun(config: DictConfig) -> str | None:
    """The notice for a single run of a config that defines a sweep (``hydra.sweeper.params``,
    as ``experiment=surrogate_comparison`` or ``hparams_search=optuna`` set): the sweep runs
    only with ``-m``; without it Hydra trains the config's defaults once."""
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
    if not params:
        return None
    keys = ", ".join(str(k) for k in params)
    return (f"this config defines a sweep over {keys} (hydra.sweeper.params), which runs only "
            "with -m (python -m snntrain -m ...); this is one run of its defaults")


def _prepare_malloc(config: DictConfig) -> None:
    """The malloc policy's start-up part (:func:`snntrain.malloctune.prepare_run`: a cached
    choice, one arena for a trial, or the restart for ``hugepages``); only when started as
    the command."""
    if started_from_the_command_line():
        from snntrain import malloctune, population

        malloctune.prepare_run(config, population.malloc_signature(config))


def backend_error() -> str | None:
    """One line when JAX cannot start the backend ``JAX_PLATFORMS`` names (a GPU or TPU run on
    a machine without one, or without the extra), else None: it was a traceback ending in a
    bare ``AssertionError`` (``cuda``) or JAX's RuntimeError (``gpu``, ``tpu``)."""
    from snntrain.hostenv import DEVICE_FLAG

    flags = os.environ.get("XLA_FLAGS", "")
    for v in re.findall(re.escape(DEVICE_FLAG) + r"=(\S*)", flags):
        if not (v.isdigit() and int(v) >= 1):  # (0 and -3 were JAX's traceback; abc, XLA's
            # 94-line flag listing and exit status 1)
            return (f"XLA_FLAGS: {DEVICE_FLAG}={v} is invalid: must be an integer >= 1 (the "
                    "number of CPU devices to simulate)")
    asked = os.environ.get("JAX_PLATFORMS", "")
    if not asked.strip() and not flags.strip():
        return None
    import jax

    try:
        jax.devices()
    except Exception as e:  # noqa: BLE001 - whatever the backend raises, said in one line
        if not asked.strip():
            return (f"XLA_FLAGS={flags!r}: JAX cannot start its CPU backend with them "
                    f"({_one_line(str(e))}); fix or unset XLA_FLAGS")
        why = _one_line(str(e).split(" (set JAX_PLATFORMS=")[0]) or "no such backend here"
        accelerator = any(p.strip() in ("gpu", "cuda", "rocm", "tpu") for p in asked.split(","))
        fix = ("on a GPU machine install the extra, pip install 'snntrain[gpu]' (TPU: "
               "'snntrain[tpu]'), or" if accelerator else
               "JAX's platforms are cpu, cuda, rocm and tpu (lower case, comma-separated);")
        return (f"JAX_PLATFORMS={asked!r}: JAX cannot start it on this machine ({why}); {fix} "
                "unset JAX_PLATFORMS to run on the CPU")
    return None


def device_error(config: DictConfig) -> str | None:
    """One line for a run that asks for more devices than this process has
    (``trainer.devices``; a population's ``trainer.population.mesh``, ``trainer.parallel``)
    or a mesh its members do not divide, or None: before the run directory exists. Starts
    JAX's backend (after the CPU split and the malloc policy, which must precede it)."""
    from snntrain import parallel, population

    try:
        if population.is_population(config):
            population.check_mesh(config, population.Placement.from_config(config))
        else:  # (a batch the devices do not divide was refused after the run directory)
            _, devices = parallel.resolved(
                str(OmegaConf.select(config, "trainer.parallel", default="auto")),
                OmegaConf.select(config, "trainer.devices", default=None))
            batch = int(OmegaConf.select(config, "trainer.batch_size", default=0) or 0)
            return parallel.split_error(batch, devices) or _time_loop_memory_error(config, batch)
    except ConfigError as e:
        return str(e)
    return None


def _time_loop_memory_error(config: DictConfig, batch: int) -> str | None:
    """On a CPU, a lower bound of the training step's memory: the first layer's ``T x B x N``
    currents in the compute dtype (N: its width, 1 if not a dense layer; under
    ``trainer.remat`` one ``model.remat_chunk`` block of T), and the host's ``T``-long time
    weights. ``T=2147483647`` was killed by the kernel while the model was built (status 137,
    no message); the compiled step's own estimate (:func:`snntrain.parallel.memory_error`)
    comes later."""
    import jax

    from snntrain import parallel

    if jax.local_devices()[0].platform != "cpu":
        return None
    T = int(OmegaConf.select(config, "dataset.T", default=None)
            or OmegaConf.select(config, "T", default=1))
    hidden = OmegaConf.select(config, "model.hidden", default=None)
    width = hidden[0] if hidden and isinstance(hidden[0], int) else 1
    remat = OmegaConf.select(config, "trainer.remat", default=False) is True
    chunk = OmegaConf.select(config, "model.remat_chunk", default=0) or T
    steps = min(T, int(chunk)) if remat else T
    size = 2 if OmegaConf.select(config, "trainer.dtype", default="float32") == "bfloat16" else 4
    need, avail = max(steps * batch * width * size, T * 32), parallel.available_memory()
    if avail is None or need <= parallel.MEMORY_FRACTION * avail:
        return None
    return (f"out of memory: T={T} time steps of trainer.batch_size={batch} examples x {width} "
            f"neurons need at least {need / 2**30:,.1f} GiB, {avail / 2**30:,.1f} GiB is left: "
            "make T, trainer.batch_size or the model smaller"
            + ("" if remat else ", or set trainer.remat=true"))


def another_sweep(config: DictConfig, sweep_dir: str) -> str | None:
    """A line refusing a sweep whose default directory already holds another sweep, or None.

    Under SLURM the directory is ``outputs/multirun/slurm-<job>`` (so that a requeued job
    finds its sweep again): a job's second sweep went into its first's, whose report then
    mixed in the other sweep's runs, and whose ``multirun.yaml`` Hydra replaced. The same
    sweep again (a requeue, a resume) goes on; a ``hydra.sweep.dir`` given on the command line
    is the user's choice (to extend a sweep, say)."""
    given = OmegaConf.select(config, "hydra.overrides.hydra", default=None) or []
    if any(str(o).lstrip("+").startswith("hydra.sweep.dir=") for o in given):
        return None
    old = _sweep_record(Path(sweep_dir))
    new = list(OmegaConf.select(config, "hydra.overrides.task", default=None) or [])
    if old is None or old == new:
        return None
    return (f"{sweep_dir} holds another sweep ({' '.join(old) or 'no overrides'}); this one "
            f"would mix its runs into that sweep's report: give it its own directory, e.g. "
            f"hydra.sweep.dir={sweep_dir}-2")


def _sweep_record(sweep_dir: Path) -> list[str] | None:
    """The overrides of the sweep in ``sweep_dir`` (ours, else Hydra's ``multirun.yaml``)."""
    import json

    try:
        return [str(o) for o in json.loads((sweep_dir / SWEEP_RECORD).read_text())["task"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        old = OmegaConf.select(OmegaConf.load(sweep_dir / "multirun.yaml"),
                               "hydra.overrides.task", default=None)
    except Exception:  # noqa: BLE001 - none, or not Hydra's record
        return None
    return None if old is None else [str(o) for o in old]


def config_flags(config: DictConfig) -> list[str]:
    """Where the sweep's config came from, as the flags that say it (``--config-dir``,
    ``--config-path``, ``--config-name``): a resume command without them composed another
    config ("experiment=mine: no such option")."""
    from snntrain.paths import CONFIG_DIR

    flags = []
    for source in OmegaConf.select(config, "hydra.runtime.config_sources", default=None) or []:
        where = f"{source.get('schema')}://{source.get('path')}"
        if source.get("provider") == "command-line":
            flags += ["--config-dir", str(source.get("path"))]
        elif source.get("provider") == "main" and Path(str(source.get("path"))).resolve() != (
                CONFIG_DIR.resolve()):
            flags += ["--config-path", where if source.get("schema") != "file"
                      else str(source.get("path"))]
    name = OmegaConf.select(config, "hydra.job.config_name", default=None)
    if name not in (None, "config"):
        flags += ["--config-name", str(name)]
    return flags


def record_sweep(config: DictConfig, sweep_dir: str) -> None:
    """Write ``<sweep_dir>/.snntrain_sweep.json`` (the sweep's overrides, for
    :func:`another_sweep`) if it is not there yet; a sweep directory is made anyway."""
    import json

    path = Path(sweep_dir) / SWEEP_RECORD
    if path.exists():
        return
    task = [str(o) for o in OmegaConf.select(config, "hydra.overrides.task", default=None) or []]
    # Hydra's own (hydra/launcher=..., hydra.sweeper....): with task, the sweep's command, which
    # a pre-empted job prints to resume (its argv inside a submitit job is submitit's)
    own = [str(o) for o in OmegaConf.select(config, "hydra.overrides.hydra", default=None) or []
           if not str(o).lstrip("+").startswith(("hydra.run.dir=", "hydra.sweep.dir=",
                                                 "hydra.mode="))]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"task": task, "hydra": own,
                                    "config": config_flags(config)}) + "\n")
    except OSError:  # (check_output_dir said it is writable; a race is Hydra's to report)
        pass


def _output_dir(config: DictConfig, key: str) -> str | None:
    try:
        return str(OmegaConf.select(config, key, throw_on_missing=True))
    except Exception:  # noqa: BLE001 - Hydra itself reports an unresolvable directory
        return None


def _swept_keys(config: DictConfig) -> dict[str, str]:
    """The keys a multirun's command line and sweeper set, with their values as written (its
    jobs' values are not in the sweep's own config)."""
    task = list(OmegaConf.select(config, "hydra.overrides.task", default=None) or [])
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    return dict([tuple(o.split("=", 1)) for o in task if "=" in o]
                + [(str(k), str(v)) for k, v in params.items()])


def _has_checkpoints(out: str | None) -> bool:
    from snntrain.rundir import has_checkpoints

    return out is not None and has_checkpoints(Path(out))


def _check_init_from(config: DictConfig, run: Any, shape: tuple[int, ...] | None) -> None:
    """``trainer.init_from``'s graph loaded into the model (each member's, for a population:
    a varying beta or threshold makes them differ from the base config's), built for the
    data's ``shape`` where it is known."""
    from snntrain import lifecycle, population  # noqa: F401 - (lifecycle: JAX's backend lines
    from snntrain.nirgraph import check_init_from  # quiet; nir: imported only for it)

    if not population.is_population(config):
        return check_init_from(run, shape)
    seen = set()
    for m in population.members(config):
        member = parse(m.cfg)
        key = json.dumps([member.model, member.trainer.init_from_dt], sort_keys=True,
                         default=str)
        if key not in seen:
            seen.add(key)
            check_init_from(member, shape)
    return None


def _varies(config: DictConfig, group: str) -> bool:
    """Whether a multirun's jobs differ in ``group`` or any of its keys."""
    return any(k.split(".")[0].split("@")[0] == group for k in swept_in_config(config))


class Startup(Callback):
    """Check the config and the output directory before Hydra creates anything (see above)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._start(config, "hydra.run.dir", groups=True)
        if (note := sweep_without_multirun(config)) is not None:
            print(f"snntrain: note: {note}", file=sys.stderr, flush=True)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._start(config, "hydra.sweep.dir", groups=False)

    @staticmethod
    def _start(config: DictConfig, dir_key: str, groups: bool) -> None:
        try:
            try:
                run = parse(config)
            except UnresolvedConfig as e:  # ${hydra:job.num}: the task function checks it
                if "interpolation type hydra" not in str(e):
                    raise  # ${oops}, ${oc.env:NOPE}: before the run directory exists
                run = None
            except ConfigError as e:  # a required key the sweep gives each job: they check it
                if not (dir_key == "hydra.sweep.dir" and any(
                        str(e).startswith(f"{k} is required: ")
                        for k in swept_in_config(config))):
                    raise
                run = None
            out = _output_dir(config, dir_key)
            if out is not None and dir_key == "hydra.sweep.dir" and (
                    msg := another_sweep(config, out)) is not None:
                raise ConfigError(msg)
            if dir_key == "hydra.sweep.dir" and (msg := sweep_range_error(config)
                                                  or sweep_value_error(config)):
                raise ConfigError(msg)
            if dir_key == "hydra.sweep.dir" and (msg := sweep_key_error(
                    OmegaConf.select(config, "hydra.sweeper.params", default=None) or {},
                    list(OmegaConf.select(config, "hydra.overrides.task", default=None) or []))):
                raise ConfigError(msg)
            if dir_key == "hydra.sweep.dir" and OmegaConf.select(
                    config, "trainer.population", default=None) is not None:
                from snntrain.population import sweep_conflict_in

                if (err := sweep_conflict_in(config)) is not None:
                    raise err
            if out is not None:
                check_output_dir(out)
                from snntrain.rundir import remember_hydra_files

                remember_hydra_files(out, jobs=dir_key == "hydra.sweep.dir")
            if not groups and run is not None and isinstance(run.model.get("neuron"), dict):
                # (each job's own: refused at once)
                no_overridden_decay(run.model["neuron"], swept_in_config(config))
            if not groups and run is not None and not _varies(config, "dataset"):
                # (the one file every job would read; its model, if every job has it)
                check_files(run, model=not _varies(config, "model"))
            shape = None  # (of the data, where known before it is loaded)
            if groups and run is not None:
                check_groups(run)
                check_trainer(run.trainer, notes=False)  # (the build says its notes)
                shape = check_files(run)
                if (msg := resume_error(run.trainer.resume, out)) is not None:
                    raise ConfigError(msg)
                from snntrain import population

                if population.is_population(config):
                    population.check_members(config)  # before the run directory exists
                else:  # (a value that could not work, even where it has no effect)
                    population.cpu_devices(config)
            if started_from_the_command_line():
                from snntrain.hostenv import malloc_mode
                from snntrain.population import split_cpu

                malloc_mode()  # a bad SNNTRAIN_MALLOC is reported like a bad config value
                from snntrain.autotune import check_switch

                check_switch()
                split_cpu(config, _swept_keys(config)  # (before JAX's backend starts)
                          if dir_key == "hydra.sweep.dir" else None)
        except ConfigError as e:
            fail(str(e))
        _prepare_malloc(config)
        # (after the malloc policy, which must precede JAX's threads; not for a multi-host
        # run: its devices only after jax.distributed.initialize)
        from snntrain.parallel import wants_distributed

        local = not wants_distributed(OmegaConf.select(config, "trainer", default=None) or {})
        if local and (msg := backend_error()) is not None:
            fail(msg)
        if local and groups and run is not None and (msg := device_error(config)) is not None:
            fail(msg)
        if local and groups and run is not None and run.trainer.init_from and (
                str(run.trainer.resume) == "never" or (str(run.trainer.resume) == "auto"
                                                       and not _has_checkpoints(out))):
            # (a resumed run reads its checkpoint, not the graph; after the malloc policy and
            # the CPU split, which must precede JAX's backend: loading the graph starts it)
            try:
                _check_init_from(config, run, shape)
            except ConfigError as e:
                fail(str(e))
        if not groups and out is not None:
            record_sweep(config, out)
        if groups and out is not None and local:
            from snntrain.rundir import hold  # (a multi-host run's processes share the dir)

            try:
                hold(out)
            except ConfigError as e:
                fail(str(e))
