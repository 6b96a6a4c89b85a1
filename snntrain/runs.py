"""Reading run directories: find runs, load one, group them into configurations, average seeds.

A run directory is any directory holding ``config.yaml`` or ``.hydra/config.yaml``; a run
writes ``metrics.jsonl`` (one JSON object per logged train step, ``split: train``, and per
epoch, ``split: epoch``) and, when it ends, ``summary.json``. Nothing here needs wandb or the
network, and nothing raises for a broken run: it becomes ``failed`` with the reason.

A run is ``completed`` (``summary.json`` with status ``completed`` and a ``metrics.jsonl``;
a damaged line of it is the run's ``reason``, its numbers come from the summary), ``running``
(no ``summary.json`` yet, written to within ``stale_after_s``) or ``failed`` (anything else).

Configurations (:class:`Row`) are the surrogate (with any of its other parameters that vary
within the sweep) × alpha × every other config value that varies across the runs, except the
seed and bookkeeping (:data:`IGNORED_KEYS`). The numerics (:func:`mean_std`,
:func:`epochs_to_target`, :func:`learning_curve`, :func:`step_curve`, :func:`run_cost`) are
pure functions.
:mod:`snntrain.report` and :mod:`snntrain.plots` both read runs through this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import textwrap
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snntrain.rundir import HYDRA_SUBDIR, LOCK_NAME, lock_ended

COMPLETED, RUNNING, FAILED = "completed", "running", "failed"
RUN_KEYS = {"seed", "T", "surrogate", "model", "dataset", "trainer"}  # (a run's config has some)
GROUP_KEYS = ("surrogate", "model", "dataset", "trainer", "optimizer", "encoder")  # (mappings)
DIVERGED = "diverged"  # its loss became NaN/Inf: a result of the configuration, not an error
PREEMPTED = "preempted"  # stopped by a signal with a checkpoint: rerunning its command resumes it
DUPLICATE = "duplicate"  # a finished run repeating a configuration and seed already counted
STALE_AFTER_S = 30 * 60
# A completed run's results: one that is NaN/Inf makes the run diverged (not in the means,
# which would otherwise silently leave that seed out of the metric it lacks and keep it in others)
RESULT_KEYS = ("best_val_accuracy", "val_accuracy", "val_loss", "test_accuracy", "test_loss",
               "train_loss", "train_accuracy")
# Config keys that never make two runs different configurations.
IGNORED_KEYS = (
    "seed",
    "logger.",
    "hydra.",
    "optimize_metric",
    "trainer.progress",
    "trainer.resume",
    "trainer.log_every",
    "trainer.checkpoint_every",
    "trainer.keep_checkpoints",
    "trainer.async_checkpointing",
    "trainer.init_timeout_s",
    "trainer.distributed",
    "trainer.coordinator_address",
    "trainer.num_processes",
    "trainer.process_id",
    "trainer.devices",
    "trainer.parallel",
)
# how a run is computed or where its data lies, not what it computes (the same values: as
# experiment.MODEL_COMPUTATION_KEYS and DATA_LOCATION_KEYS, which a resume may change); the
# report says when a sweep varies one (a timing sweep's runs are one configuration)
EXECUTION_KEYS = (
    "trainer.remat",
    "trainer.fused_epoch",
    "model.remat_chunk",
    "model.conv_method",
    "dataset.data_dir",
    "dataset.cache",
    "dataset.cache_dir",
    "dataset.in_memory",
    "dataset.download",
)
IGNORED_KEYS += EXECUTION_KEYS
SHORT_NAMES = {"model.name": "model", "dataset.name": "dataset"}
# Per-example cost of a network (snntrain.synops), as the report names it -> the epoch-record
# keys (after the ``val_`` / ``test_`` prefix) that are summed to give it.
COST_KEYS = {
    "synops": ("synops/total/acs", "synops/total/macs"),  # effective ACs + MACs
    "energy_uj": ("energy_uj",),
    "sparsity": ("sparsity/total",),
}


# ---- reading runs -------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """One run directory as a report sees it."""

    path: Path
    status: str  # completed | running | failed
    reason: str = ""
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # "epoch" records
    steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # "train" records
    unstarted_population: bool = False  # a population directory without members/ yet

    @property
    def seed(self) -> Any:
        return self.config.get("seed")


# trainer.population: not axes
POPULATION_SETTINGS = ("mode", "chunk", "vectorize", "mesh", "cpu_devices", "workers")


def population_axes(config: dict[str, Any]) -> list[str]:
    """The ``trainer.population`` axes a run's config sets (empty: a solo run or a member)."""

    def leaves(node: Any, prefix: str) -> list[str]:
        if isinstance(node, dict):
            return [k for key, v in node.items() for k in leaves(v, f"{prefix}{key}.")]
        return [] if node is None else [prefix[:-1]]

    trainer = config.get("trainer")  # (trainer: [1] in a hand-edited config: a traceback)
    pop = (trainer.get("population") if isinstance(trainer, dict) else None) or {}
    if not isinstance(pop, dict):
        return []
    return leaves({k: v for k, v in pop.items() if k not in POPULATION_SETTINGS}, "")


def natural_key(p: Path | str) -> list[Any]:
    """Sort key that orders ``run-2`` before ``run-10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))]


def members_not_started(paths: Iterable[str | Path]) -> dict[Path, list[str]]:
    """The members of the populations under ``paths`` that have not started (a later group
    of a pre-empted population), by population directory, from its ``summary.json``: they have
    no directory, so no run of theirs is found."""
    return _members_without_directory(paths, started=False)


def sweep_jobs(sweep_dir: Path) -> int | None:
    """How many jobs the multirun in ``sweep_dir`` launches, from its ``multirun.yaml``: the
    basic sweeper's grid (its ``params`` and the command line's sweeps, as Hydra expands
    them; a glob over this package's config groups), Optuna's ``n_trials``; None when that
    cannot be told (another sweeper, a config directory of the user's own)."""
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.load(sweep_dir / "multirun.yaml")
        sweeper = OmegaConf.select(cfg, "hydra.sweeper", default=None)
        target = str(sweeper.get("_target_", ""))
        if target.endswith("OptunaSweeper"):
            return int(sweeper.get("n_trials"))
        subdir = OmegaConf.to_container(cfg.hydra.sweep, resolve=False).get("subdir")
        if not target.endswith("BasicSweeper") or "hydra.job.num" not in str(subdir):
            return None  # (a subdir without the job's number may give jobs one directory)
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra._internal.utils import create_config_search_path
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from snntrain.paths import CONFIG_DIR

        args = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
        args += [str(o) for o in OmegaConf.select(cfg, "hydra.overrides.task", default=[])]
        loader = ConfigLoaderImpl(create_config_search_path(str(CONFIG_DIR)))  # (for a glob)
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(args)
        batches = BasicSweeper.split_arguments(parsed, None)
        return sum(len(b) for b in batches)
    except Exception:  # noqa: BLE001 - not Hydra's record, or not one this can expand
        return None


def jobs_not_started(paths: Iterable[str | Path]) -> dict[Path, tuple[int, int]]:
    """Per multirun directory under ``paths`` whose jobs did not all start (a sweep
    interrupted in an early job): ``(not started, jobs)``. They have no directory, so the
    report counted "of 1 runs" for a sweep of 2."""
    out: dict[Path, tuple[int, int]] = {}
    for d in _dirs_holding(paths, "multirun.yaml"):
        jobs = sweep_jobs(d)
        started = _job_dirs(d)
        if jobs is not None and started < jobs:
            out[d.resolve()] = (jobs - started, jobs)
    return out


def _dirs_holding(paths: Iterable[str | Path], name: str) -> Iterator[Path]:
    """The directories under ``paths`` that hold ``name`` (not searched below them)."""
    for root in map(Path, paths):
        for dirpath, dirnames, _ in os.walk(root):
            if (Path(dirpath) / name).exists():
                dirnames.clear()
                yield Path(dirpath)


def _job_dirs(sweep_dir: Path) -> int:
    """The job directories under ``sweep_dir`` (Hydra's ``.hydra/`` or the run's own
    ``config.yaml``: ``hydra.output_subdir=null`` leaves no ``.hydra/``), at any depth
    (``hydra.sweep.subdir`` may nest them)."""
    n = 0
    for dirpath, dirnames, filenames in os.walk(sweep_dir):
        if dirpath != str(sweep_dir) and (".hydra" in dirnames or "config.yaml" in filenames):
            n += 1
            dirnames.clear()
        else:
            dirnames[:] = [x for x in dirnames if x not in (".hydra", "report")]
    return n


def members_missing(paths: Iterable[str | Path]) -> dict[Path, list[str]]:
    """The members a population's ``summary.json`` records as started (completed, diverged,
    ...) whose directory is gone: the report ranked the others without a word."""
    return _members_without_directory(paths, started=True)


def _members_without_directory(paths: Iterable[str | Path], started: bool
                               ) -> dict[Path, list[str]]:
    out: dict[Path, list[str]] = {}
    for d in _dirs_holding(paths, "members"):
        try:
            rows = json.loads((d / "summary.json").read_text()).get("members") or []
        except (OSError, ValueError, AttributeError):
            continue
        names = [r.get("member") for r in rows if isinstance(r, dict)
                 and isinstance(r.get("member"), str)
                 and (r.get("status") not in (None, "not started")) == started
                 and not (d / "members" / r["member"]).is_dir()]
        if names:
            out[d.resolve()] = names
    return out


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories under ``paths`` (a PATH may itself be one): holding ``config.yaml``
    (or Hydra's copy) or ``summary.json``; sorted, without duplicates."""
    found: set[Path] = set()
    for root in map(Path, paths):
        for dirpath, dirnames, _ in os.walk(root):
            d = Path(dirpath)
            if (d / "members").is_dir():  # a population: its members are the runs
                dirnames[:] = ["members"]
            elif d.name != ".hydra" and (
                (d / "config.yaml").is_file() or (d / ".hydra" / "config.yaml").is_file()
                or (d / "summary.json").is_file()  # (a run whose config.yaml is lost: listed
            ):  # as failed; it was left out without a word)
                found.add(d.resolve())
                dirnames.clear()  # checkpoints/, wandb/ and .hydra/ hold no runs
            else:
                dirnames[:] = [n for n in dirnames if not n.startswith(".")]
    return sorted(found, key=natural_key)


def load_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's config as plain containers (resolved where possible); ``{}`` if there is none."""
    from omegaconf import OmegaConf

    run_dir = Path(run_dir)
    for path in (run_dir / "config.yaml", run_dir / ".hydra" / "config.yaml"):
        if path.is_file():
            cfg = OmegaConf.load(path)
            try:
                return OmegaConf.to_container(cfg, resolve=True)
            except Exception:  # noqa: BLE001 - e.g. ${hydra:...} outside Hydra
                return OmegaConf.to_container(cfg, resolve=False)
    return {}


def read_metrics(
    path: Path,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int | None, int]:
    """(epoch records, train records, number of the first unreadable line or None, lines)."""
    epochs, steps, bad = [], [], None
    lines = path.read_text(errors="replace").splitlines()  # (bytes not UTF-8: a bad line)
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad = bad or i
            continue
        if isinstance(rec, dict) and rec.get("split") == "epoch":
            epochs.append(rec)
        elif isinstance(rec, dict) and rec.get("split") == "train":
            steps.append(rec)
    return epochs, steps, bad, len(lines)


def last_activity(run_dir: Path) -> float:
    """The newest modification time of what a run writes in ``run_dir`` (seconds since the
    epoch). Not the start-up lock, Hydra's ``.hydra/`` files or its log: an attempt refused at
    start touches those too, and a dead pre-empted run then read as running for 30 minutes."""
    newest = 0.0  # (not the directory's own: a start-up's write probe changes it)
    for dirpath, dirnames, filenames in os.walk(run_dir):
        if dirpath == str(run_dir):  # (nor report/: a report of the run itself writes it)
            dirnames[:] = [d for d in dirnames if d not in (HYDRA_SUBDIR, "report")]
            filenames = [f for f in filenames if f != LOCK_NAME and not f.endswith(".log")]
        for name in filenames:
            # A live run may delete a file (an old checkpoint) while we walk.
            with contextlib.suppress(OSError):
                newest = max(newest, os.stat(os.path.join(dirpath, name)).st_mtime)
    return newest or run_dir.stat().st_mtime


def ago(seconds: float) -> str:
    """``95 s``, ``12 min``, ``3.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def load_run(
    run_dir: str | Path, now: float | None = None, stale_after_s: float = STALE_AFTER_S
) -> Run:
    """Read one run directory; never raises for a broken run (it becomes ``failed``)."""
    run_dir = Path(run_dir)
    run = Run(run_dir, FAILED)
    try:
        run.config = load_config(run_dir)
    except Exception as e:  # noqa: BLE001
        run.reason = f"config.yaml unreadable ({type(e).__name__})"
        return run
    if not run.config and not (run_dir / "config.yaml").exists() and not (
            run_dir / ".hydra" / "config.yaml").exists():
        run.reason = "config.yaml is missing (its summary.json is there)"
        return run
    if not isinstance(run.config, dict) or not RUN_KEYS & set(run.config) or any(
            not isinstance(run.config[k], dict) for k in GROUP_KEYS if k in run.config):
        # (an empty one, or "hello", was a completed run of surrogate "?", which the report
        # could select; a YAML list raised AttributeError: a traceback)
        run.reason, run.config = ("config.yaml holds no snntrain config (empty, not a mapping, "
                                  f"none of {', '.join(sorted(RUN_KEYS))}, or a group that is "
                                  "not a mapping)"), {}
        return run
    metrics = run_dir / "metrics.jsonl"
    bad, n_lines = None, 0
    if metrics.is_file():
        run.epochs, run.steps, bad, n_lines = read_metrics(metrics)
    summary_path = run_dir / "summary.json"
    now = time.time() if now is None else now
    if axes := population_axes(run.config):
        # find_runs reads a population's members/; without it no member has started.
        run.unstarted_population = True
        if summary_path.is_file():  # it ended before its members started (a bad value)
            return _read_summary(run, summary_path, now, stale_after_s)
        age = now - last_activity(run_dir)
        run.reason = (f"a population ({', '.join(axes)}) whose members have not started (no "
                      f"members/ yet, last write {ago(age)} ago)")
        if age < stale_after_s:
            run.status = RUNNING
        else:
            run.reason += "; rerun its command to train it"
        return run
    if not summary_path.is_file():
        age = now - last_activity(run_dir)
        epochs = (run.config.get("trainer") or {}).get("epochs", "?")
        done = f"epoch {len(run.epochs)}/{epochs}"
        if bad is not None and bad < n_lines:  # only a live run's last line may be cut
            run.reason = f"metrics.jsonl line {bad} is not JSON"
        elif (ended := _population_ended(run_dir, now - age)) is not None:
            run.reason = f"{done}; its population ended before it: {ended}"
        elif age < stale_after_s and not lock_ended(run_dir):
            run.status, run.reason = RUNNING, f"{done}, last write {ago(age)} ago"
        else:  # (a dead run on this host: its lock is free, whatever the age)
            run.reason = f"no summary.json, {done}, last write {ago(age)} ago (killed or crashed)"
        return run
    _read_summary(run, summary_path, now, stale_after_s)
    if run.reason:
        return run
    want, had = (run.config.get("trainer") or {}).get("epochs"), run.summary.get("epochs")
    if isinstance(want, int) and isinstance(had, int) and want > had:
        # a completed run trained on (more trainer.epochs): its summary is the old one until
        # the run ends; killed, it stays so (a completed summary is never overwritten)
        age = now - last_activity(run_dir)
        done = (f"trained on from its {had} completed epochs to trainer.epochs={want}: epoch "
                f"{len(run.epochs)}/{want}, last write {ago(age)} ago")
        if age < stale_after_s:
            run.status, run.reason = RUNNING, done
        else:
            run.reason = f"{done} (killed or crashed; rerun its command to go on)"
        return run
    if not metrics.is_file():
        run.reason = "metrics.jsonl is missing"
        return run
    if (why := not_a_result(run.summary)) is not None:  # (5 was averaged in: 297 %)
        run.reason = f"summary.json is damaged: {why}"
        return run
    run.status = COMPLETED
    if (why := no_number(run.summary)) is not None:
        run.status, run.reason = DIVERGED, f"{why}: counted as diverged"
    elif bad is not None:  # its summary.json is whole: only its curves miss the line
        run.reason = (f"metrics.jsonl line {bad} is not JSON: counted from its summary.json, "
                      "its curves miss the lines that are not")
    elif not run.epochs:  # (its epochs-to-target counted as "not reached")
        run.reason = ("metrics.jsonl holds no epoch record: counted from its summary.json, "
                      "without curves or epochs to the target")
    return run


def _population_ended(member_dir: Path, last_write: float) -> str | None:
    """How the population of ``member_dir`` (``<population>/members/<name>``) ended, if its
    ``summary.json`` was written after the member's last write: a member of a worker process
    that was killed has no record of its own, and read as running for 30 minutes."""
    if member_dir.parent.name != "members":
        return None
    path = member_dir.parent.parent / "summary.json"
    try:
        if path.stat().st_mtime < last_write:  # (an earlier attempt's: this one runs on)
            return None
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("status") in (None, RUNNING):
        return None
    return f"{summary['status']}" + (f" ({summary['error']})" if summary.get("error") else "")


def _read_summary(run: Run, summary_path: Path, now: float, stale_after_s: float) -> Run:
    """Set ``run``'s status and reason from its ``summary.json``: the reason stays empty (and
    the status ``failed``) only for a summary saying ``completed``, whose metrics the caller
    still checks."""
    run_dir = run.path
    try:
        run.summary = json.loads(summary_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        run.reason = "summary.json is not valid JSON"
        return run
    if not isinstance(run.summary, dict):
        run.reason, run.summary = "summary.json is not a JSON object", {}
        return run
    status = run.summary.get("status")
    written = (last_activity(run_dir) if status in ("preempted", "failed") else 0.0)
    if written > summary_path.stat().st_mtime + 1 and now - written < stale_after_s:
        # requeued or rerun, and resumed: the new attempt writes after the old summary.json
        run.status, run.reason = RUNNING, (
            f"resumed after {'pre-emption' if status == 'preempted' else 'a failure'}, epoch "
            f"{len(run.epochs)}")
    elif status == "preempted":
        run.status, run.reason = PREEMPTED, resume_hint(run_dir)
    elif status != COMPLETED:
        error = run.summary.get("error")
        run.reason = f"status {status!r}" + (f": {error}" if error else "")
        if status == DIVERGED:
            run.status = DIVERGED
    elif run.unstarted_population:  # "completed" without members: nothing to average
        run.reason = "a population whose summary.json says completed but has no members/"
    return run


def resume_hint(run_dir: Path) -> str:
    """How a pre-empted run resumes: a multirun job by rerunning its sweep's command in its
    sweep directory (a plain rerun of ``-m`` starts a new sweep), a single run by rerunning.

    A job is a multirun job when its sweep directory holds ``multirun.yaml`` (Hydra's basic
    sweeper) or ``optimization_results.yaml`` (Optuna's, at the end of a study), or when its
    ``.hydra/hydra.yaml`` says ``mode: MULTIRUN`` or names a sweeper other than the basic one
    (an Optuna study writes no ``multirun.yaml``). The sweep's command itself is not recorded
    (a job's ``hydra.overrides.task`` holds its own values, not the sweep's), so the hint names
    it rather than spelling it out. A population member resumes with its population (its
    own directory has no checkpoints: rerun there, it trained a new run from step 0)."""
    run_dir = Path(run_dir).absolute()
    if run_dir.parent.name == "members" and (run_dir.parent.parent / "config.yaml").is_file():
        pop = run_dir.parent.parent
        how = resume_hint(pop).removeprefix("pre-empted; ")
        if how == "rerun its command to resume it":
            how = "rerun the population's command to resume it"
        return f"pre-empted with its population {pop}; {how}"
    sweep = run_dir.parent
    hydra = _hydra_settings(run_dir)
    sweeper = str((hydra.get("sweeper") or {}).get("_target_") or "")
    optuna = "optuna" in sweeper.lower() or (sweep / "optimization_results.yaml").is_file()
    multirun = (
        optuna
        or (sweep / "multirun.yaml").is_file()
        or hydra.get("mode") == "MULTIRUN"
        or (bool(sweeper) and not sweeper.endswith("BasicSweeper"))
    )
    if not multirun:
        return "pre-empted; rerun its command to resume it"
    kind = "Optuna sweep" if optuna else "sweep"
    return f'pre-empted; rerun its {kind}\'s command with hydra.sweep.dir="{sweep}" to resume it'


def _hydra_settings(run_dir: Path) -> dict[str, Any]:
    """The ``hydra`` node of a job's ``.hydra/hydra.yaml`` as plain containers, unresolved;
    ``{}`` when there is none or it cannot be read."""
    import yaml

    try:
        data = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    node = data.get("hydra") if isinstance(data, dict) else None
    return node if isinstance(node, dict) else {}


# ---- numbers ------------------------------------------------------------------------------


def no_number(summary: dict[str, Any]) -> str | None:
    """``completed, but its val_loss is nan`` for a finished run (``trainer.on_nan=skip_step``)
    whose result is no number, which counts as diverged (the report, a population's summary);
    None when every result is a number."""
    bad = next(((k, v) for k in RESULT_KEYS if (v := as_float(summary.get(k))) is not None
                and not math.isfinite(v)), None)
    return None if bad is None else f"completed, but its {bad[0]} is {bad[1]}"


def not_a_result(summary: dict[str, Any]) -> str | None:
    """Why a result of ``summary`` cannot be one (an accuracy outside [0, 1], a value that is
    no number: a hand-edited or damaged file), or None. Absent and null values are allowed (no
    validation split); NaN and Inf are :func:`no_number`'s (a diverged run)."""
    for k in RESULT_KEYS:
        v = summary.get(k)
        if v is None:
            continue
        x = as_float(v)
        if x is None:
            return f"{k}={v!r} is not a number"
        if "accuracy" in k and math.isfinite(x) and not 0.0 <= x <= 1.0:
            return f"{k}={v!r} is not an accuracy (0 to 1)"
    return None


def as_float(v: Any) -> float | None:
    """A metric as a float (``summary.json`` stores NaN/Inf as strings); None when absent."""
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def format_value(v: Any) -> str:
    """A config value for a label or table cell: ``—`` for None, ``%g`` for floats."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:g}"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """(mean, sample std with ddof=1, n) over the values that are not None.

    The std is NaN for fewer than two values; the mean is NaN for none.
    """
    xs = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if xs.size == 0:
        return math.nan, math.nan, 0
    std = float(np.std(xs, ddof=1)) if xs.size > 1 else math.nan
    return float(np.mean(xs)), std, int(xs.size)


def epochs_to_target(
    epochs: Sequence[dict[str, Any]], target: float, split: str = "val"
) -> int | None:
    """The first epoch whose ``<split>_accuracy`` is at least ``target``; None if never."""
    for rec in epochs:
        acc = as_float(rec.get(f"{split}_accuracy"))
        if acc is not None and acc >= target:
            return int(rec["epoch"])
    return None


def _curve(
    runs: Sequence[Run], key: str, records: str, x: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    by_x: dict[int, list[float]] = {}
    for run in runs:
        for rec in getattr(run, records):
            v = as_float(rec.get(key))
            if v is not None and rec.get(x) is not None:
                by_x.setdefault(int(rec[x]), []).append(v)
    xs = np.array(sorted(by_x), dtype=int)
    stats = [mean_std(by_x[e]) for e in xs]
    return xs, np.array([s[0] for s in stats]), np.array([s[1] for s in stats])


def learning_curve(runs: Sequence[Run], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, std over runs) of ``key`` in the per-epoch records, aligned by epoch."""
    return _curve(runs, key, "epochs", "epoch")


def step_curve(runs: Sequence[Run], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, std over runs) of ``key`` in the logged train records, aligned by step."""
    return _curve(runs, key, "steps", "step")


def epoch_record(run: Run, epoch: int | None = None) -> dict[str, Any]:
    """The epoch record numbered ``epoch``; the last one when ``epoch`` is None or was not
    logged; ``{}`` when there is none."""
    if epoch is not None:
        for rec in reversed(run.epochs):  # a resumed run may repeat an epoch: the newest wins
            if rec.get("epoch") == epoch:
                return rec
    return run.epochs[-1] if run.epochs else {}


def run_cost(run: Run, split: str, epoch: int | None = None) -> dict[str, float | None]:
    """The per-example cost of ``run`` on ``split`` (``val`` or ``test``) at ``epoch`` (None:
    the last), one value per :data:`COST_KEYS` name: ``synops`` = effective ACs + MACs,
    ``energy_uj``, ``sparsity`` (activation sparsity of the spiking layers). None where the
    record has none of a name's keys (runs from before cost metrics, or ``metrics.synops=false``).
    """
    rec = epoch_record(run, epoch)
    out: dict[str, float | None] = {}
    for name, keys in COST_KEYS.items():
        vs = [as_float(rec.get(f"{split}_{k}")) for k in keys]
        present = [v for v in vs if v is not None]
        out[name] = math.fsum(present) if present else None
    return out


def cost_split(runs: Sequence[Run]) -> str | None:
    """The split the report's cost columns use: ``val`` when any completed run logged its cost
    there (the split the report selects on), else ``test``; None when no run has cost metrics."""
    done = [r for r in runs if r.status == COMPLETED]
    for split in ("val", "test"):
        key = f"{split}_{COST_KEYS['synops'][0]}"
        if any(key in rec for r in done for rec in r.epochs):
            return split
    return None


def steps_per_epoch(runs: Sequence[Run]) -> int | None:
    """The step count at the end of epoch 1 (from the epoch records); None if unknown."""
    for run in runs:
        for rec in run.epochs:
            if rec.get("epoch") == 1 and as_float(rec.get("step")):
                return int(rec["step"])
    return None


# ---- grouping -----------------------------------------------------------------------------


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


@dataclasses.dataclass
class Row:
    """One configuration (all seeds of it)."""

    key: dict[str, Any]  # column -> value (surrogate label, alpha, other varying keys)
    surrogate: dict[str, Any]  # the surrogate config of this row (name + parameters)
    runs: list[Run]

    @property
    def completed(self) -> list[Run]:
        return [r for r in self.runs if r.status == COMPLETED]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    @property
    def series(self) -> str:
        """The row's label without alpha: one line in the accuracy-vs-alpha plot."""
        return ", ".join(
            [str(self.key["surrogate"])]
            + [
                f"{SHORT_NAMES.get(k, k)}={format_value(v)}"
                for k, v in self.key.items()
                if k not in ("surrogate", "alpha")
            ]
        )

    @property
    def label(self) -> str:
        """The whole configuration (the verdict names what to quote: never cut)."""
        alpha = self.key.get("alpha")
        return self.series + ("" if alpha is None else f", α={alpha:g}")

    @property
    def short_label(self) -> str:
        """:attr:`label` on lines of up to 60 characters (at most 3, then cut), for a plot's
        ticks and legend (cut to one line, labels differing in a later key looked alike)."""
        lines = textwrap.wrap(self.label, 60, break_on_hyphens=False)
        return "\n".join(lines[:3]) + ("…" if len(lines) > 3 else "")

    def values(self, metric: str) -> list[float]:
        """``summary[metric]`` of every completed run that has it (one per seed)."""
        vs = [as_float(r.summary.get(metric)) for r in self.completed]
        return [v for v in vs if v is not None and math.isfinite(v)]

    def stats(self, target: float, split: str = "val") -> dict[str, Any]:
        done = self.completed
        best = mean_std([as_float(r.summary.get("best_val_accuracy")) for r in done])
        test = mean_std([as_float(r.summary.get("test_accuracy")) for r in done])
        reach = [epochs_to_target(r.epochs, target, split) for r in done if r.epochs]
        rates = [
            np.mean(list(fr.values())) if (fr := r.summary.get("firing_rates")) else None
            for r in done
        ]
        return {
            "n": len(done),
            "seeds": " ".join(str(r.seed) for r in done),
            "best_val_accuracy_mean": best[0],
            "best_val_accuracy_std": best[1],
            "test_accuracy_mean": test[0],
            "test_accuracy_std": test[1],
            # (how many seeds the means hold: a run without a validation split has no
            # best_val_accuracy, and the seed count alone overstated the mean's support)
            "best_val_accuracy_n": best[2],
            "test_accuracy_n": test[2],
            "epochs_to_target_mean": mean_std(reach)[0],
            "reached_target": sum(e is not None for e in reach),
            "target_of": len(reach),  # (runs with epoch records)
            "firing_rate_mean": mean_std(rates)[0],
            "wall_time_s_mean": mean_std([as_float(r.summary.get("wall_time_s")) for r in done])[0],
            "n_failed": self.count(FAILED),
            "n_diverged": self.count(DIVERGED),
            "n_preempted": self.count(PREEMPTED),
            "n_running": self.count(RUNNING),
        }

    def cost_values(self, name: str, split: str, at_best_val: bool = False) -> list[float]:
        """:func:`run_cost` ``[name]`` of every completed run that has it (one per seed), at
        the run's ``best_val_epoch`` when ``at_best_val`` (where ``best_val_accuracy`` was
        measured), else at its last epoch."""
        vs = [
            run_cost(r, split, r.summary.get("best_val_epoch") if at_best_val else None)[name]
            for r in self.completed
        ]
        return [v for v in vs if v is not None and math.isfinite(v)]

    def cost_stats(self, split: str | None, at_best_val: bool = False) -> dict[str, Any]:
        """Mean and sample std over seeds of each :data:`COST_KEYS` name (NaN when not logged)
        and ``cost_split``."""
        out: dict[str, Any] = {"cost_split": split}
        for name in COST_KEYS:
            m, sd, _ = mean_std(self.cost_values(name, split, at_best_val) if split else [])
            out[f"{name}_mean"], out[f"{name}_std"] = m, sd
        return out


def execution_keys_varying(runs: Sequence[Run]) -> list[str]:
    """The :data:`EXECUTION_KEYS` whose value differs among ``runs`` (ignored in grouping)."""
    flat = [flatten(r.config) for r in runs if r.config]
    # (among the runs that have the key: an MLP has no model.conv_method to vary)
    return [k for k in EXECUTION_KEYS if len({_hashable(f[k]) for f in flat if k in f}) > 1]


def _is_ignored(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in IGNORED_KEYS)


def _mark_duplicates(runs: Sequence[Run]) -> None:
    """Finished (completed or diverged) runs of one configuration that share a seed are one
    replicate, not several (the same sweep reported twice, a population and its equivalent
    multirun, a seed listed twice): the newest counts, the others become :data:`DUPLICATE`
    with the reason. (A seed that diverged as a solo run and as a member was two.)"""
    by_seed: dict[Any, list[Run]] = {}
    for r in runs:
        if r.status in (COMPLETED, DIVERGED):
            by_seed.setdefault(_hashable(r.seed), []).append(r)
    for same in by_seed.values():
        if len(same) > 1:
            same.sort(key=lambda r: ((r.path / "summary.json").stat().st_mtime,
                                     natural_key(r.path)))
            for r in same[:-1]:
                r.status = DUPLICATE
                r.reason = (f"repeats seed {r.seed} of its configuration, counted once "
                            f"(as {same[-1].path})")


def group_runs(runs: Sequence[Run]) -> tuple[list[str], list[Row]]:
    """Split runs into configurations; returns (key columns, rows sorted by key).
    Completed runs that repeat a configuration's seed are marked :data:`DUPLICATE`.

    The key is the surrogate (named with those of its non-alpha parameters that vary among
    runs of the same surrogate), alpha, and every other config value that varies across
    ``runs`` apart from the seed and bookkeeping (:data:`IGNORED_KEYS`).
    """
    runs = [r for r in runs if not r.unstarted_population]  # no configuration of its own
    flat = [flatten(r.config) for r in runs]
    known = [f for f in flat if f]  # a run with an unreadable config must not add columns
    keys = sorted({k for f in known for k in f})
    # (a key one run lacks and another has as null does not vary: sgd's momentum: null beside
    # adam, which has none, made a column of dashes named in every verdict line)
    varying = [
        k
        for k in keys
        if not k.startswith("surrogate.")
        and not _is_ignored(k)
        and len({_hashable(f.get(k)) for f in known}) > 1
    ]
    # Surrogate parameters other than alpha that vary within one surrogate name.
    by_name: dict[Any, list[dict[str, Any]]] = {}
    for r in runs:
        s = r.config.get("surrogate") or {}
        by_name.setdefault(s.get("name"), []).append(s)
    label_params = {
        name: sorted(
            k
            for k in {k for s in ss for k in s}
            if k not in ("name", "alpha") and len({_hashable(s.get(k)) for s in ss}) > 1
        )
        for name, ss in by_name.items()
    }
    rows: dict[tuple, Row] = {}
    for run, f in zip(runs, flat, strict=True):
        s = run.config.get("surrogate") or {}
        name = s.get("name", "?")
        params = label_params.get(s.get("name"), [])
        label = (
            f"{name}({', '.join(f'{p}={format_value(s.get(p))}' for p in params)})"
            if params
            else str(name)
        )
        key = {"surrogate": label, "alpha": as_float(s.get("alpha"))}
        key.update({k: f.get(k) for k in varying})
        hk = tuple(_hashable(v) for v in key.values())
        if hk not in rows:
            rows[hk] = Row(key, dict(s), [])
        rows[hk].runs.append(run)
    for row in rows.values():
        _mark_duplicates(row.runs)

    def order(row: Row) -> tuple:
        return tuple(
            (v is None, str(type(v)), v if isinstance(v, (int, float)) else str(v))
            for v in row.key.values()
        )

    return ["surrogate", "alpha", *varying], sorted(rows.values(), key=order)


# ---- the surrogate of a run ---------------------------------------------------------------


def build_surrogate(cfg: dict[str, Any]) -> Any:
    """The surrogate of a run's ``surrogate`` config (:func:`snntrain.surrogates.from_config`)."""
    from snntrain import surrogates

    return surrogates.from_config(cfg)


def surrogate_scale(cfg: dict[str, Any]) -> tuple[float, float]:
    """(peak, integral) of g'(x) for a run's ``surrogate`` config; NaNs if it cannot be built."""
    try:
        s = build_surrogate(cfg)
        return float(s.peak()), float(s.integral())
    except Exception:  # noqa: BLE001 - an unknown or old surrogate must not stop a report
        return math.nan, math.nan
