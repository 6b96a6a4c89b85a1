"""What every run needs around its training loop, solo or population.

Run-directory resolution (continuing the unfinished run of the same command), SIGTERM/SIGINT
as a flag the loop checks between steps, the wandb run's name/group/tags, the command that
resumes a pre-empted run, and the summary written to ``summary.json``. Shared by
:mod:`snntrain.train` and :mod:`snntrain.population`, which both import it (never each other
the other way round).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
from omegaconf import DictConfig, OmegaConf

from snntrain import autotune, hostenv, rundir, synops, writers
from snntrain import checkpoint as ckpt_lib
from snntrain.errors import ConfigError, RefusedConfig
from snntrain.experiment import Experiment, device_info
from snntrain.registry import plain
from snntrain.runstate import TIMES, RunProgress, TrainingError

# JAX logs, at INFO, each accelerator backend it did not find ("Unable to initialize backend
# 'tpu'"); under Hydra's INFO logging that is noise on every CPU run.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

# Block on results at least this often: many un-awaited collective steps in flight deadlock
# XLA's virtual CPU devices ("rendezvous ... only 3 arrived").
MAX_STEPS_IN_FLIGHT = 20
EVAL_KEY = 2**31 - 1

def throughput(steps: int, batch_size: int, seconds: float) -> float:
    """Training samples per second (padded rows of a last batch count: they are computed);
    0.0 when nothing was timed (a run whose only step was the one that compiled)."""
    return steps * batch_size / seconds if steps and seconds > 0 else 0.0


class ChunkedEpoch:
    """An epoch of compiled steps whose metrics stay on the device until a chunk is fetched:
    every :attr:`chunk` steps, at every ``trainer.checkpoint_every`` step and when ``stop()``
    turns true, so that when a step is yielded as the last of its chunk, the runner's state is
    the state after that step. Yields ``(step, metrics)``.

    A runner (:class:`snntrain.train.StepRunner`, :class:`snntrain.population.GroupRunner`)
    gives the epoch's batches, the step and the fetch; a step for which
    :meth:`_first_step` returns true (it compiled) is left out of the training time.
    """

    chunk: int
    ckpt_every: int
    batch_size: int
    train_s: float = 0.0
    timed_steps: int = 0  # the steps whose time is in train_s
    samples_per_s: float = 0.0

    def _batches(self, progress: RunProgress) -> Iterator[Any]:
        raise NotImplementedError

    def step(self, batch: Any) -> Any:
        raise NotImplementedError

    def _fetch(self, pending: list[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        """The pending steps' metrics on the host, in order; empties ``pending``."""
        raise NotImplementedError

    def _first_step(self, metrics: Any, t0: float) -> bool:
        """Whether this step compiled (its time, since ``t0``, is not training time)."""
        return False

    def epoch(self, progress: RunProgress, stop: Callable[[], bool]
              ) -> Iterator[tuple[int, Any]]:
        step, done, pending = progress.step, 0, []  # done: steps timed since t0
        t0 = time.perf_counter()
        for batch in self._batches(progress):
            metrics = self.step(batch)
            step += 1
            if self._first_step(metrics, t0):
                t0 = time.perf_counter()
            else:
                done += 1
            pending.append((step, metrics))
            at_ckpt = self.ckpt_every and step % self.ckpt_every == 0
            if len(pending) >= self.chunk or at_ckpt or stop():
                yield from self._fetch(pending)
                self.samples_per_s = throughput(done, self.batch_size, time.perf_counter() - t0)
                if stop():
                    break
        yield from self._fetch(pending)
        elapsed = time.perf_counter() - t0
        self.train_s, self.timed_steps = self.train_s + elapsed, self.timed_steps + done
        self.samples_per_s = throughput(done, self.batch_size, elapsed)


def out_of_memory(e: BaseException) -> TrainingError | None:
    """XLA's ``RESOURCE_EXHAUSTED``, or the host's ``MemoryError`` (numpy's "Unable to
    allocate 29.8 GiB for an array with shape ...": a traceback before), as one line naming
    what to shrink (None for any other error). The checkpoints written before it stay."""
    text = str(e)
    if isinstance(e, MemoryError):
        return TrainingError(
            f"out of host memory ({text.strip().splitlines()[0][:200] if text else 'MemoryError'}"
            "): make T, trainer.batch_size, the model or the data (dataset.downsample, "
            "dataset.in_memory=false) smaller")
    if not (isinstance(e, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in text):
        return None
    asked = re.search(r"allocating (\d+) bytes", text)
    size = f" ({int(asked.group(1)) / 2**30:,.1f} GiB in one buffer)" if asked else ""
    from snntrain.parallel import SHRINK

    return TrainingError(f"out of memory on {jax.devices()[0].device_kind}{size}: {SHRINK} "
                         f"({text.strip().splitlines()[0][:160]})")


def say_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def wandb_settings(cfg: DictConfig, others: Iterable[str] = (),
                   member: bool = False) -> dict[str, Any] | None:
    """The logger group with the wandb run name, group and tags decided (None: no wandb).

    The default name is the surrogate and seed, then the multirun job's other overrides and
    ``others`` (``key=value``: a population member's other values), so that the runs of one
    group have different names. A ``logger.run_name`` given to a multirun's jobs or to a
    population (``member``) starts the name and the default follows it: every member had
    the one name (configuration tester)."""
    logger = plain(cfg.logger)
    if logger.get("name") == "none":
        return None
    jobs = writers.sweep_job_overrides()
    default = writers.default_run_name(plain(cfg.surrogate), int(cfg.seed), [*jobs, *others])
    given = logger.get("run_name")
    logger["name"] = (default if not given else
                      f"{given}-{default}" if member or writers.in_multirun() else given)
    # A Hydra multirun is one wandb group named after the sweep; tags name what is compared.
    logger["group"] = logger.get("group") or writers.hydra_sweep_group()
    logger["tags"] = [*(logger.get("tags") or []), *writers.run_tags(cfg)]
    return logger



def resolve_run_dir(cfg: DictConfig, run_dir: str | Path | None, say=say_stderr) -> Path:
    """``run_dir``; else Hydra's output directory, or the unfinished run it continues; else
    ``outputs/<date>/<time>``."""
    if run_dir is None:
        try:
            from hydra.core.hydra_config import HydraConfig

            run_dir = continue_unfinished(cfg, HydraConfig.get(), say)
        except ValueError:
            run_dir = Path("outputs") / time.strftime("%Y-%m-%d/%H-%M-%S")
    return rundir.prepare(run_dir, f".write_test{jax.process_index()}")


def continue_unfinished(cfg: DictConfig, hydra_cfg: Any, say) -> Path:
    """Hydra's new run directory, or (``trainer.resume=auto``, a single run in the default
    timestamped layout) the newest unfinished run of the same command, which it continues.

    Under SLURM the default directory is named after the job and is the same after a requeue;
    an explicit ``hydra.run.dir`` is always used as given.
    """
    from hydra.types import RunMode

    new = Path(hydra_cfg.runtime.output_dir)
    explicit = any(o.lstrip("+").startswith("hydra.run.dir=") for o in hydra_cfg.overrides.hydra)
    if (cfg.trainer.resume != "auto" or hydra_cfg.mode != RunMode.RUN or explicit
            or rundir.stamp().startswith("slurm-") or (new / "checkpoints").exists()):
        return new
    old = rundir.find_unfinished(new.parents[1], list(hydra_cfg.overrides.task),
                                 OmegaConf.to_container(cfg, resolve=True), exclude=new)
    if old is None:
        return new
    rundir.discard_if_empty(new)
    say(f"continuing the unfinished run of the same command in {old} "
        "(trainer.resume=never starts a new one)")
    return old



class Signals:
    """Turn SIGTERM/SIGINT into a flag the loop checks between steps."""

    def __init__(self):
        self.received: int | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue  # (ignored: a background job of a script; a Ctrl-C is not for it)
            with contextlib.suppress(ValueError):  # not the main thread (e.g. a notebook)
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def received_any(self) -> bool:
        return self.received is not None

    def _handle(self, signum, _frame):
        hostenv.signal_handled()
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.received = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)



# What a run directory holds of an earlier training (its wandb id too: a fresh start must not
# continue the old wandb run, whose history is ahead of step 0)
# (wandb/: its offline run would be uploaded with the new one by `wandb sync .../offline-run-*`)
RECORD_FILES = ("metrics.jsonl", "summary.json", "wandb_id.txt", "wandb")


def set_aside_earlier(ckpts: ckpt_lib.Checkpoints, run_dirs: list[Path], say, why: str
                      ) -> ckpt_lib.Checkpoints:
    """Rename an earlier training's checkpoints and the records of ``run_dirs`` (a run's own,
    or a population's members') to ``*.set-aside-<time>`` (kept, never deleted) before a
    start from step 0; the fresh :class:`Checkpoints` of the same directory."""
    directory = ckpts.directory
    ckpts.close()
    empty = directory.is_dir() and not any(directory.iterdir())  # (made by this attempt)
    # (its config.yaml and Hydra's files too: they were replaced by this attempt's, and the
    # set-aside records were left without the config that made them)
    moved = [p for p in [None if empty else rundir.set_aside(directory)]
             + [rundir.set_aside(d / f) for d in run_dirs for f in (*RECORD_FILES, "config.yaml")]
             + [rundir.set_aside_hydra_files(d) for d in run_dirs] if p]
    shown = ", ".join(os.path.relpath(p, directory.parent) for p in moved[:4])
    say(f"{why}; kept the earlier files as {shown}" + (f" and {len(moved) - 4} more"
                                                        if len(moved) > 4 else ""))
    return ckpt_lib.Checkpoints(directory, keep=ckpts.keep, async_save=ckpts.async_save)


def check_kind(cfg: DictConfig, run_dir: Path, population: bool, say) -> None:
    """Refuse to train a population in a single run's directory, or a single run in a
    population's (each went on silently: the other's ``summary.json`` and ``config.yaml``
    were replaced and its checkpoints and records left beside the new ones, and a report
    then read the single run as a member); ``trainer.resume=never`` sets the other's files
    aside (its checkpoints and records: the run's own start from step 0 does the rest)."""
    if population:  # (a population of one group has its checkpoints where a run has them)
        what, marks = "a single run", [run_dir / "metrics.jsonl"]
    else:  # (a member's record: a refused population leaves its members' empty directories)
        what, marks = "a population", [*sorted((run_dir / "members").glob("*/config.yaml")),
                                        *sorted((run_dir / "checkpoints").glob("group*"))]
    found = next((p for p in marks if p.exists()), None)
    if found is None:
        return
    if str(cfg.trainer.resume) != "never":
        this = "a population" if population else "a single run"
        raise RefusedConfig(f"{run_dir} holds {what} ({found.relative_to(run_dir)}), and this "
                            f"is {this}: use a new run directory (hydra.run.dir), or "
                            "trainer.resume=never to set its files aside")
    moved = [p for name in (RECORD_FILES if population else ("members", "report"))
             if (p := rundir.set_aside(run_dir / name)) is not None]
    if moved:
        say(f"trainer.resume=never: kept the earlier {what.split(' ', 1)[1]}'s files as "
            f"{', '.join(p.name for p in moved)}")


def has_earlier(ckpts: ckpt_lib.Checkpoints, run_dirs: list[Path]) -> bool:
    """Whether a run directory (or a population's members) holds an earlier training."""
    return ckpts.write and (bool(ckpts.steps()) or any(
        (d / f).exists() for d in run_dirs for f in RECORD_FILES))


def last_good(ckpts: ckpt_lib.Checkpoints) -> str:
    good = ckpts.steps()
    return (f"last good checkpoint: {ckpts.directory / str(good[-1])}" if good
            else "no checkpoint was written yet")



def restore(ckpts: ckpt_lib.Checkpoints, state: Any, fp: dict[str, Any], resume: str,
            run_dirs: list[Path], say) -> tuple[tuple[Any, dict] | None, ckpt_lib.Checkpoints,
                                                 Path]:
    """The checkpoint a run (or a population, whose members' directories are ``run_dirs``)
    continues from, as ``trainer.resume`` says: ``(state, meta)`` or None for step 0, the
    checkpoints to write to, and the directory restored from.

    ``never``, or ``auto`` finding checkpoints none of which is readable, sets the earlier
    checkpoints and records aside (renamed, not deleted) before step 0; a path with no
    readable checkpoint is refused.
    """
    if resume == "never":
        if has_earlier(ckpts, run_dirs):  # the old steps would be found again later
            ckpts = set_aside_earlier(ckpts, run_dirs, say,
                                      "trainer.resume=never: starting from step 0")
        return None, ckpts, ckpts.directory
    origin = None if resume == "auto" else ckpt_lib.checkpoints_in(Path(resume)).resolve()
    # (resumed_from names <run>/checkpoints, which checkpoints_in skips once it is deleted)
    started = ckpts.newest_meta().get("resumed_from") if origin is not None else None
    if origin is not None and (origin == ckpts.directory.resolve()
                               or started in (str(origin), str(origin / "checkpoints"))):
        resume = "auto"  # its own directory, or this run's own training from that checkpoint
    source = ckpts if resume == "auto" else ckpt_lib.Checkpoints(origin, write=False)
    restored = source.restore(state, fp, say, hint=(
        "use trainer.resume=never or a new run directory" if resume == "auto" else
        f"trainer.resume={resume} continues a run of the same config: give that run's "
        "values, or train this config from step 0 in a new run directory without "
        "trainer.resume"))
    if restored is not None and resume != "auto" and has_earlier(ckpts, run_dirs):
        # this directory's own earlier training: its steps were kept with only their meta
        # replaced (another training's parameters under this one's record), its records mixed
        ckpts = set_aside_earlier(ckpts, run_dirs, say, f"trainer.resume={resume}: going on "
                                  f"from step {restored[1].get('step')} of {source.directory}")
    ckpts.own = resume == "auto"  # (what own_epochs counts)
    if restored is not None and not ckpts.own:  # the other run's time is its own, not this one's
        history = restored[1].get("history") or {}
        restored[1]["history"] = {k: v for k, v in history.items() if k not in TIMES}
    if restored is not None:  # (a rerun of a run started from another's checkpoint: its own;
        # the epochs before resumed_at_epoch are recorded in the other run's directory)
        ckpts.lineage = ({"resumed_from": str(origin),
                          "resumed_at_epoch": int(restored[1].get("epoch", 0))}
                         if resume != "auto" else
                         {k: v for k, v in restored[1].items() if k in LINEAGE})
    # (the formulations the continued run chose: the new attempt traces with them)
    autotune.pin(None if restored is None else restored[1].get("autotune"))
    if restored is None:
        if resume != "auto":
            if (msg := ckpt_lib.one_step_error(resume)) is not None:
                raise ConfigError(msg)
            # (a population's groups: chunked, or trained in worker processes)
            groups = sorted(p.name for p in source.directory.glob("group*") if p.is_dir())
            raise ConfigError(f"trainer.resume={resume}: no readable checkpoint in "
                              f"{source.directory}" + (
                                  f" (it holds a population's groups, {groups[0]} ...: only "
                                  "a population with the same members resumes it)"
                                  if groups else ""))
        if ckpts.steps() or ckpts.set_aside:
            n = len(ckpts.steps()) + len(ckpts.set_aside)
            ckpts = set_aside_earlier(ckpts, run_dirs, say, f"no usable checkpoint in "
                                      f"{ckpts.directory} ({n} found, none readable): starting "
                                      "from step 0")
        elif ckpts.write and (found := _earlier_records(run_dirs)):
            # (its checkpoints deleted to save disk: the records and config.yaml of another
            # config were replaced without a word, and a finished run's summary.json was kept
            # under the new config, which the report credited with the old result)
            ckpts = set_aside_earlier(ckpts, run_dirs, say, f"no checkpoint in "
                                      f"{ckpts.directory}, but {found} holds an earlier "
                                      "training's record: starting from step 0")
    return restored, ckpts, source.directory


def _earlier_records(run_dirs: list[Path]) -> str | None:
    """The first record of an earlier training in ``run_dirs`` (``summary.json``, or a
    ``metrics.jsonl`` that is not empty), relative to its run's directory's parent."""
    for d in run_dirs:
        for name in ("summary.json", "metrics.jsonl"):
            p = d / name
            with contextlib.suppress(OSError):
                if p.is_file() and (name == "summary.json" or p.stat().st_size > 0):
                    return str(p.relative_to(run_dirs[0].parent))
    return None


LINEAGE = ("resumed_from", "resumed_at_epoch")


def own_epochs(progress: RunProgress, ckpts: ckpt_lib.Checkpoints) -> int:
    """The closed epochs whose records this run's ``metrics.jsonl`` should hold after
    :func:`restore` (0 unless it resumed its own checkpoints, which a rerun of
    ``trainer.resume=<path>`` does too: a run started from another's has the epochs after the
    one it started at)."""
    if not ckpts.own:
        return 0
    return progress.epoch - int(ckpts.lineage.get("resumed_at_epoch", 0))


def epoch_record(progress: RunProgress, val: dict[str, float] | None, test: dict[str, float],
                 samples_per_s: float) -> dict[str, Any]:
    """Close the epoch in ``progress``; its record: the train means, then ``val_*`` (when the
    run has a validation split, also its best accuracy so far) and ``test_*``."""
    epoch = progress.epoch + 1  # epochs are numbered from 1 in records and messages
    record = {"step": progress.step, "epoch": epoch, "split": "epoch", **progress.end_epoch(),
              # null when no step of the epoch was timed (one step, which compiled)
              "samples_per_s": samples_per_s or None}
    progress.last_epoch = record
    if val is not None:
        record.update({f"val_{k}": v for k, v in val.items()})
        progress.record_val(val["accuracy"], epoch)
    record.update({f"test_{k}": v for k, v in test.items()})
    return record


def check_epochs_left(requested: int, trained: int, step: int, where: Path | str) -> bool:
    """Whether a resumed run has epochs left to train (``trainer.epochs`` > ``trained``);
    raises :class:`RefusedConfig` when it has trained more than asked: its results are not
    those of the ``requested`` epochs (and the run's records stay as they were)."""
    if trained > requested:
        from snntrain.errors import RefusedConfig

        raise RefusedConfig(
            f"trainer.epochs={requested}, but the checkpoint in {where} has trained {trained} "
            f"epochs (step {step}); to train {requested}, use a new run directory or "
            "trainer.resume=never")
    return trained < requested


def resume_command(run_dir: Path) -> str:
    """The command that continues this run: the same arguments, in the same directory
    (``hydra.run.dir``; for a multirun job the sweep's command as recorded at its start, in its
    ``hydra.sweep.dir``, where the rerun sweep finds each job's directory again: finished jobs
    say ``nothing to train``). Called from another program (a script, a notebook, one's own
    Hydra app), the call to make again: that program's argv is not snntrain's."""
    from snntrain.paths import started_from_the_command_line, sweep_command

    run_dir = Path(run_dir).absolute()
    key, where, args = "hydra.run.dir", run_dir, None
    if _multirun():
        key, where = "hydra.sweep.dir", run_dir.parent
        args = sweep_command(where)  # (inside a submitit job, argv is submitit's)
    if args is None and started_from_the_command_line():
        args = [a for a in sys.argv[1:]
                if not a.lstrip("+").startswith(("hydra.run.dir=", "hydra.sweep.dir="))]
    if args is None:
        return f"train_and_evaluate(<the same config>, {str(run_dir)!r}) again"
    quoted = str(where).replace("\\", "\\\\").replace('"', '\\"')  # Hydra's string grammar
    return " ".join(["python -m snntrain", *map(shlex.quote, args),
                     shlex.quote(f'{key}="{quoted}"')])


def say_not_applied(run_dir: Path, config: dict[str, Any], say) -> None:
    """A finished run (or population) run again: name this command's values that differ from
    its ``config.yaml`` (a rerun with another ``optimizer.lr`` said only "nothing to train"),
    and put back Hydra's files (this command's were written over them)."""
    with contextlib.suppress(OSError, ValueError, TypeError):
        old = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=True)
        changed = writers.config_changes(old, config)
        if changed:
            shown = ", ".join(f"{k}={b}" for k, (_a, b) in list(changed.items())[:4])
            say(f"this command's {shown}{' ...' if len(changed) > 4 else ''} did not apply: "
                "the run had finished (its config.yaml stays)")
    rundir.restore_hydra_files(run_dir)


def _multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except (ImportError, ValueError):
        from snntrain.paths import multirun_requested

        return multirun_requested(sys.argv[1:])


def summarize(exp: Experiment, progress: RunProgress, runner: Any, status: str,
              run_dir: Path) -> dict[str, Any]:
    """``summary.json``: the last epoch's metrics, best validation, timing, what ran, where
    (``runner``: anything with ``train_s``, ``timed_steps`` and ``compile_s``, e.g. a
    ``train.StepRunner``)."""
    last = progress.last_epoch
    spent = progress.time_spent(runner)  # earlier attempts' included
    timed = spent.pop("timed_steps")
    return {
        "status": status, "steps": progress.step, "epochs": progress.epoch,
        "test_accuracy": last.get("test_accuracy"), "test_loss": last.get("test_loss"),
        "train_loss": last.get("train_loss"), "train_accuracy": last.get("train_accuracy"),
        "val_accuracy": last.get("val_accuracy"), "val_loss": last.get("val_loss"),
        "best_val_accuracy": progress.best_val_accuracy,
        "best_val_epoch": progress.best_val_epoch,
        "firing_rates": {k[len("test_rate/"):]: v for k, v in last.items()
                         if k.startswith("test_rate/")},
        "cost": {k[len("test_"):]: v for k, v in last.items()
                 if k.startswith(("test_synops/total/", "test_energy", "test_sparsity/total",
                                  "test_spikes/total"))},
        **spent,
        # null when no step was timed (an epoch of one step: the step that compiled)
        "samples_per_s": (throughput(timed, exp.batch_size, spent["train_time_s"])
                          if timed else None),
        "surrogate": repr(exp.surrogate), "dataset": exp.data.describe(),
        "model": str(exp.run.model["name"]), "encoder": str(exp.run.encoder["name"]), "T": exp.T,
        "seed": exp.seed,
        "run_dir": str(run_dir.absolute()), "device": device_info(exp.parallel),
        "n_params": int(sum(np.prod(x.shape) for x in jax.tree.leaves(exp.params))),
        **({"skipped_steps": progress.skipped_steps} if progress.skipped_steps else {}),
    }




def split_means(exp: Experiment, totals: dict[str, float]) -> dict[str, float]:
    """A split's summed eval sums as per-example means: ``loss``, ``accuracy``, rates and, when
    counted, the cost metrics (:func:`snntrain.synops.finalize`). Consumes ``totals``."""
    n = max(totals.pop("count"), 1.0)
    out = {"loss": totals.pop("loss") / n, "accuracy": totals.pop("correct") / n}
    out.update({k: v / n for k, v in totals.items()})
    if exp.synapses is not None:  # per-example cost metrics, sparsity and energy
        out.update(synops.finalize(totals, n, exp.energy))
    return out
