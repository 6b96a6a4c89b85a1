"""Training and evaluation: ``train_and_evaluate(cfg, run_dir) -> summary``.

The loop (:func:`train_and_evaluate`) reads top to bottom: build the experiment, restore or
start, then per epoch train, evaluate, record and checkpoint, then the summary. Its pieces:

* :func:`snntrain.experiment.build`: config -> :class:`~snntrain.experiment.Experiment`;
* :mod:`snntrain.steps`: the pure train/eval steps, compiled by :mod:`snntrain.parallel`;
* :class:`StepRunner` / :class:`FusedRunner`: one epoch step by step from the host pipeline, or
  in one compiled ``lax.scan``; both yield the same ``(step, metrics)`` stream;
* :class:`snntrain.runstate.RunProgress`: where the run is (what every checkpoint stores),
  :class:`~snntrain.runstate.MetricSums` and :class:`~snntrain.runstate.DivergencePolicy`;
* :func:`evaluate` and :func:`end_of_epoch`: the split means and the epoch record;
* :class:`snntrain.writers.RunRecorder`: ``config.yaml``, ``metrics.jsonl``, wandb, summary.

A run is a pure function of its config and seed (see :mod:`snntrain.steps`), and resuming at
any checkpoint reproduces the uninterrupted run bit for bit.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
from omegaconf import DictConfig, OmegaConf

from snntrain import autotune, malloctune, rundir, writers
from snntrain import checkpoint as ckpt_lib
from snntrain import data as data_lib
from snntrain import parallel as par
from snntrain.errors import ConfigError
from snntrain.experiment import Experiment, build, fingerprint, params_of
from snntrain.lifecycle import (
    EVAL_KEY,
    MAX_STEPS_IN_FLIGHT,
    ChunkedEpoch,
    Signals,
    check_epochs_left,
    check_kind,
    epoch_record,
    last_good,
    own_epochs,
    resolve_run_dir,
    restore,
    resume_command,
    say_not_applied,
    say_stderr,
    split_means,
    summarize,
    throughput,
    wandb_settings,
)
from snntrain.nirgraph import nir_params
from snntrain.progress import Progress
from snntrain.runstate import (
    Diverged,
    DivergencePolicy,
    Preempted,
    RunProgress,
    TrainingError,
    failure_record,
)
from snntrain.steps import TrainState, make_epoch_fn, make_eval_step, make_train_step

PREEMPTED_EXIT_CODE = Preempted.exit_code
DIVERGED_EXIT_CODE = Diverged.exit_code


# ---- epoch runners: the same (step, metrics) stream, two ways ------------------------------


def _check_memory(fn: Any, args: tuple, devices: int) -> None:
    """Compile ``fn`` for ``args`` ahead of its first call (which then finds it compiled: only
    its tracing is paid twice) and refuse it if its working memory exceeds what is left."""
    try:
        compiled = fn.lower(*args).compile()
    except Exception:  # noqa: BLE001 - the call itself reports what is wrong
        return
    if (msg := par.memory_error(compiled, "training", devices)) is not None:
        raise TrainingError(msg)


class StepRunner(ChunkedEpoch):
    """Train an epoch one compiled step at a time, fed by the host pipeline; metrics are
    fetched every ``min(20, log_every)`` steps (:class:`snntrain.lifecycle.ChunkedEpoch`)."""

    def __init__(self, exp: Experiment, state: TrainState, key: jax.Array):
        self.exp, self.state, self.key = exp, state, key
        self.train_fn = exp.parallel.compile(make_train_step(exp))
        self.chunk = min(MAX_STEPS_IN_FLIGHT, exp.run.trainer.log_every)
        self.ckpt_every = exp.run.trainer.checkpoint_every
        self.batch_size = exp.batch_size
        self.compile_s: float | None = None
        self.malloc_trial: malloctune.MallocTrial | None = None

    def _batches(self, progress: RunProgress) -> Iterator[Any]:
        exp, dp = self.exp, self.exp.parallel
        return dp.prefetch(data_lib.batches(exp.data.train, exp.batch_size, seed=exp.seed,
                                            epoch=progress.epoch, start=progress.batch_in_epoch,
                                            rows=dp.local_rows))

    def step(self, batch: Any) -> Any:
        if self.compile_s is None:  # the first step: does it fit?
            _check_memory(self.train_fn, (self.state, batch, self.key, self.exp.surrogate),
                          len(self.exp.parallel.local_devices))

        def run() -> Any:
            self.state, metrics = self.train_fn(self.state, batch, self.key, self.exp.surrogate)
            return metrics

        metrics, self.malloc_trial = malloctune.run_step(self.malloc_trial, run)
        return metrics

    def _first_step(self, metrics: Any, t0: float) -> bool:
        """The first call compiles; then the cached malloc policy, or a trial on the next
        steps (:mod:`snntrain.malloctune`; values are the same under either policy)."""
        if self.compile_s is not None:
            return False
        jax.block_until_ready(metrics)
        self.compile_s = time.perf_counter() - t0
        signature = malloctune.config_signature(self.exp.cfg)
        self.malloc_trial = malloctune.for_run(
            signature, say=say_stderr if self.exp.parallel.is_main else (lambda _m: None))
        return True

    def _fetch(self, pending: list) -> Iterator[tuple[int, dict[str, float]]]:
        fetched = self.exp.parallel.metrics_to_host([m for _, m in pending]) if pending else []
        steps = [s for s, _ in pending]
        pending.clear()
        for s, m in zip(steps, fetched, strict=True):
            yield s, {k: float(v) for k, v in m.items()}


class FusedRunner(StepRunner):
    """Train (the rest of) an epoch in one compiled ``lax.scan`` (``trainer.fused_epoch``).

    The dataset lives on the device and each batch is gathered by the indices of
    :func:`snntrain.data.batch_plan`, so the steps equal :class:`StepRunner`'s. Checkpoints and
    signals take effect at epoch ends only.
    """

    def __init__(self, exp: Experiment, state: TrainState, key: jax.Array):
        if exp.parallel.mode != "none":
            # (it said "set trainer.devices=1" to a run on 1 device asked to shard)
            devices = (f"{exp.parallel.n_devices} devices" if exp.parallel.n_devices > 1
                       else "1 device")
            raise ConfigError(f"trainer.fused_epoch=true runs without data parallelism; this run "
                              f"has trainer.parallel={exp.parallel.mode} ({devices}): set "
                              "trainer.parallel=none, or trainer.fused_epoch=false")
        x_all, y_all = data_lib.fused_arrays(exp.data.train, exp.data.name)
        self.exp, self.state, self.key = exp, state, key
        self.epoch_fn = jax.jit(make_epoch_fn(make_train_step(exp)), donate_argnums=(0,))
        self.x_all, self.y_all = jax.device_put(x_all), jax.device_put(y_all)
        self.compile_s: float | None = None
        self.train_s, self.timed_steps, self.samples_per_s = 0.0, 0, 0.0
        self._compiled: dict[tuple[int, ...], Any] = {}  # by the plan's shape (a resumed epoch)

    def _epoch_fn(self, *args: Any) -> Any:
        """The epoch function compiled ahead of time for these arguments' shapes, so that
        compiling is timed apart from training."""
        shape = args[3].shape
        if shape not in self._compiled:
            t0 = time.perf_counter()
            self._compiled[shape] = self.epoch_fn.lower(*args).compile()
            self.compile_s = (self.compile_s or 0.0) + time.perf_counter() - t0
            if (msg := par.memory_error(self._compiled[shape], "epoch")) is not None:
                raise TrainingError(msg)
        return self._compiled[shape]

    def epoch(self, progress: RunProgress, stop: Callable[[], bool]
              ) -> Iterator[tuple[int, dict[str, float]]]:
        exp = self.exp
        if progress.batch_in_epoch >= exp.steps_per_epoch:
            return
        idx_SxB, mask_SxB = data_lib.batch_plan(len(exp.data.train), exp.batch_size,
                                                seed=exp.seed, epoch=progress.epoch,
                                                start=progress.batch_in_epoch)
        args = (self.state, self.x_all, self.y_all, idx_SxB, mask_SxB, self.key, exp.surrogate)
        epoch_fn = self._epoch_fn(*args)
        t0 = time.perf_counter()
        self.state, stacked = epoch_fn(*args)
        stacked = jax.device_get(stacked)
        elapsed = time.perf_counter() - t0
        self.train_s, self.timed_steps = self.train_s + elapsed, self.timed_steps + len(idx_SxB)
        self.samples_per_s = throughput(len(idx_SxB), exp.batch_size, elapsed)
        first = progress.step + 1  # the caller advances progress.step after each step
        for i in range(len(idx_SxB)):
            yield first + i, {k: float(v[i]) for k, v in stacked.items()}


# ---- evaluation and the epoch record -------------------------------------------------------


def evaluate(exp: Experiment, eval_fn, params, source, key) -> dict[str, float]:
    """Mean loss, accuracy and firing rates over a whole split (padding masked out)."""
    totals: dict[str, float] = {}
    host = data_lib.batches(source, exp.batch_size, shuffle=False, rows=exp.parallel.local_rows)
    for k, batch in enumerate(exp.parallel.prefetch(host)):
        sums = exp.parallel.metrics_to_host(
            eval_fn(params, batch, jax.random.fold_in(key, k), exp.surrogate))
        for name, v in sums.items():
            totals[name] = totals.get(name, 0.0) + float(v)
    return split_means(exp, totals)


def end_of_epoch(exp: Experiment, eval_fn, params, progress: RunProgress, key,
                 samples_per_s: float) -> dict[str, Any]:
    """Close the epoch in ``progress``; return its record (train means, val, test)."""
    val = None if exp.data.val is None else evaluate(exp, eval_fn, params, exp.data.val, key)
    test = evaluate(exp, eval_fn, params, exp.data.test, key)
    return epoch_record(progress, val, test, samples_per_s)


# ---- start, resume, record -----------------------------------------------------------------


def restore_or_start(exp: Experiment, ckpts: ckpt_lib.Checkpoints, say
                     ) -> tuple[TrainState, RunProgress, ckpt_lib.Checkpoints]:
    """The state and position to train from: a checkpoint (``trainer.resume``, see
    :func:`snntrain.lifecycle.restore`) or step 0 (from ``trainer.init_from`` when set)."""
    state = exp.init_state()
    restored, ckpts, where = restore(ckpts, state, fingerprint(exp), exp.run.trainer.resume,
                                     [ckpts.directory.parent], say)
    if restored is None:
        return _init_from(exp, state, say), RunProgress(), ckpts
    state, meta = restored
    progress = RunProgress.from_meta(meta, exp.steps_per_epoch)
    if check_epochs_left(exp.epochs, progress.epoch, progress.step, where):
        say(f"resuming from step {progress.step} (epoch {progress.epoch + 1}, batch "
            f"{progress.batch_in_epoch} of {exp.steps_per_epoch}) in {where}")
    else:
        say(f"nothing to train: the checkpoint in {where} has finished all {exp.epochs} epochs "
            f"(step {progress.step}); raise trainer.epochs to train on")
    return state, progress, ckpts


def _init_from(exp: Experiment, state: TrainState, say) -> TrainState:
    """A fresh start from a NIR graph's weights (``trainer.init_from``), else ``state``."""
    params = nir_params(exp)
    if params is None:
        return state
    say(f"initialised the model from {exp.run.trainer.init_from}")
    return TrainState(state.step, params, exp.tx.init(params))


# ---- the loop ------------------------------------------------------------------------------


def train_and_evaluate(cfg: DictConfig, run_dir: str | Path | None = None,
                       overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Train the configured SNN, evaluate it, and write everything into ``run_dir``.

    ``overrides``: from Python, the overrides ``cfg`` was composed with, for the command
    line's checks of values a run would replace or ignore (``model.neuron.beta`` under
    ``model.neuron.tau``, ``surrogate.alpha`` beside a population's surrogate axis); the
    command line gives Hydra's. Returns the summary dict (also written to ``summary.json``).
    """
    from snntrain import config as config_lib
    from snntrain import population

    if isinstance(cfg, Mapping) and not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(dict(cfg))  # (a plain dict: an AttributeError from omegaconf)
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"train_and_evaluate: cfg must be a composed config (hydra's compose, "
                          f"or a dict of one), got {type(cfg).__name__}")
    if run_dir is not None and not isinstance(run_dir, (str, os.PathLike)):
        raise ConfigError(f"train_and_evaluate: run_dir must be a path, got {run_dir!r}")
    if isinstance(overrides, str):
        raise ConfigError(f"train_and_evaluate: overrides must be a list of strings, got "
                          f"{overrides!r}")
    from_python = not config_lib.in_hydra_job()  # (the command line's start-up checked it)
    with config_lib.given(overrides) if overrides is not None else contextlib.nullcontext():
        if population.is_population(cfg):  # trainer.population: many runs in one program
            if from_python:
                population.check_members(cfg)  # (before the run directory exists)
            return population.train_population(cfg, run_dir)
        if from_python:
            config_lib.validate(cfg)  # (a bad value: before the run directory exists)
        return _train_solo(cfg, run_dir)


def _train_solo(cfg: DictConfig, run_dir: str | Path | None) -> dict[str, Any]:
    """:func:`train_and_evaluate` of one run."""
    from snntrain import population

    if (note := population.unused_settings(cfg)) is not None:
        say_stderr(note)
    t_start = time.time()
    par.maybe_initialize_distributed(cfg.trainer)
    run_dir = resolve_run_dir(cfg, run_dir)
    with rundir.RunLock(run_dir, enabled=jax.process_index() == 0):
        exp = build(cfg)
        dp = exp.parallel
        say = say_stderr if dp.is_main else (lambda _m: None)
        if dp.is_main:
            check_kind(cfg, run_dir, False, say)
        config = OmegaConf.to_container(cfg, resolve=True)
        if dp.is_main and not (run_dir / "config.yaml").exists():
            writers.save_config(run_dir, config)  # a run that fails to start is still listed
        ckpts = ckpt_lib.Checkpoints(run_dir / "checkpoints", exp.run.trainer.keep_checkpoints,
                                     async_save=exp.run.trainer.async_checkpointing)
        failed: Exception | None = None
        try:
            state, progress, ckpts = restore_or_start(exp, ckpts, say)
            progress.started_at = t_start  # (this attempt's time counts from its start)
            if progress.epoch == exp.epochs and (
                    done := writers.completed_summary(run_dir / "summary.json")) is not None:
                # a finished run run again: its record stays as it was, Hydra's files too
                # (this command's were written over them), and other values are said
                if dp.is_main:
                    say_not_applied(run_dir, config, say)
                return done
            # only now: a resume refused above leaves the run's config.yaml and wandb run alone
            rec = writers.RunRecorder(run_dir, config, wandb_settings(cfg), enabled=dp.is_main,
                                      say=say, resumed=progress.step > 0)
            start_step = progress.step
            rec.resume_at(start_step, epoch_open=progress.batch_in_epoch >= exp.steps_per_epoch,
                          epochs=own_epochs(progress, ckpts))
            if start_step == 0:
                rec.log_surrogate(exp.surrogate)
            Runner = FusedRunner if exp.run.trainer.fused_epoch else StepRunner
            runner = Runner(exp, dp.replicate(state), jax.random.PRNGKey(exp.seed))
            with Signals() as signals:
                try:
                    status = train_epochs(exp, runner, progress, rec, ckpts,
                                          signals.received_any, say)
                except Exception as e:  # recorded and closed below, not only by the CLI: a
                    failed = e  # Python caller's diverged run read as running, and its open
                    raise  # wandb run cost the next one its fallback
            if progress.skipped_steps:
                say(f"{progress.skipped_steps} of {progress.step} steps were skipped (non-finite "
                    "loss or gradient, trainer.on_nan=skip_step): skipped_steps in summary.json")
            ckpts.close()
        finally:
            ckpts.abandon()  # never leave orbax's threads running (they block the exit)
            if failed is not None:  # (after the checkpoints are closed: a WriteFailed says
                # which are intact when first shown; on a full disk the first failed write
                # stays the error, not summary.json's)
                with contextlib.suppress(writers.WriteFailed):
                    rec.finish(failure_record(failed))
        summary = summarize(exp, progress, runner, status, run_dir)
        rec.finish(summary)
    if status == "preempted":
        raise Preempted(f"received signal {signals.received}: saved a checkpoint at step "
                        f"{progress.step} in {ckpts.directory}; to resume, run: "
                        f"{resume_command(run_dir)}")
    return summary


def train_epochs(exp: Experiment, runner: StepRunner, progress: RunProgress,
                 rec: writers.RunRecorder, ckpts: ckpt_lib.Checkpoints,
                 stop: Callable[[], bool], say) -> str:
    """Per epoch: train, evaluate, record, checkpoint; ``completed`` or ``preempted``."""
    tcfg, fp = exp.run.trainer, fingerprint(exp)
    eval_fn = exp.parallel.compile(make_eval_step(exp), donate_state=False)
    eval_key = jax.random.fold_in(runner.key, EVAL_KEY)
    policy = DivergencePolicy(str(tcfg.on_nan), lambda: last_good(ckpts), say)

    def save() -> None:
        ckpts.save(progress.step, exp.parallel.unreplicate(runner.state),
                   {**progress.to_meta(exp.seed, runner.key, fp, runner),
                    "autotune": autotune.choices()})

    with Progress(exp.total_steps, exp.steps_per_epoch, exp.parallel.is_main and tcfg.progress,
                  batch_size=exp.batch_size, epoch_lines=exp.parallel.is_main) as bar:
        bar.update(progress.step, {})
        while progress.epoch < exp.epochs:
            for step, m in runner.epoch(progress, stop):
                progress.advance()
                if policy.accept(step, m):
                    progress.epoch_sums.add(m, m.pop("count"))
                    if step % max(1, tcfg.log_every) == 0:
                        rec.log({"step": step, "epoch": progress.epoch + 1, "split": "train", **m})
                    bar.update(step, {**m, "samples_per_s": runner.samples_per_s})
                else:
                    progress.skipped_steps += 1
                if _periodic_save_due(progress, exp):
                    save()
                ckpts.poll()
            if stop():
                break  # checkpoint below; a resumed run finishes the epoch (and its end)
            record = end_of_epoch(exp, eval_fn, runner.state.params, progress, eval_key,
                                  runner.samples_per_s)
            rec.log(record)
            save()
            bar.update(progress.step, record)
            bar.epoch_done(progress.epoch, record)
    if progress.epoch < exp.epochs:
        save()
        return "preempted"
    return "completed"


def _periodic_save_due(progress: RunProgress, exp: Experiment) -> bool:
    """``trainer.checkpoint_every``, except on an epoch's last step: the epoch-end save
    follows it, after the evaluation, so a checkpoint never holds a finished epoch's sums.
    Never under ``trainer.fused_epoch``, whose state is already the epoch's last."""
    every = exp.run.trainer.checkpoint_every
    if exp.run.trainer.fused_epoch:  # its steps are replayed after the epoch ran: none mid-epoch
        return False
    return bool(every) and progress.step % every == 0 and (
        progress.batch_in_epoch < exp.steps_per_epoch)


__all__ = ["train_and_evaluate", "build", "make_train_step", "make_eval_step", "make_epoch_fn",
           "TrainState", "Experiment", "evaluate", "TrainingError", "ConfigError", "params_of",
           "StepRunner", "FusedRunner", "end_of_epoch", "restore_or_start", "summarize"]

