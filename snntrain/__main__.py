"""``python -m snntrain [overrides]``: Hydra entry point around :func:`train_and_evaluate`.

The config is checked before anything heavy starts (:mod:`snntrain.startup`, a Hydra callback
that runs before the run directory is created); the task function checks it again, for the
jobs of a multirun and for callers that compose without the callback.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from pathlib import Path

from snntrain import hostenv, started_from_the_command_line  # (light: no JAX, no Hydra)

# Ctrl-C or SIGTERM outside the training loop (which saves a checkpoint on the first)
_interrupted = hostenv.stop_in_one_line(
    "checkpoints written before it are kept: rerun the command to resume")


def _catch_signals() -> None:
    """:data:`_interrupted` for SIGINT and SIGTERM, under ``python -m snntrain`` and the
    ``snntrain`` script only: not when SIGINT is ignored (a background job of a script) or
    another program (a notebook kernel, whose interrupt must not end it) imported this
    module; the training loop's own handler replaces it there. Installed before the imports
    below (Hydra, JAX: about a second; a Ctrl-C in it gave a traceback, a SIGTERM no
    word)."""
    if started_from_the_command_line():
        hostenv.catch_stop_signals(_interrupted)


_catch_signals()

# after the signal handlers (the rest of the imports take about a second)
import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from snntrain.config import moved_in_overrides  # noqa: E402
from snntrain.paths import CONFIG_DIR  # noqa: E402
from snntrain.progress import console_notes  # noqa: E402
from snntrain.startup import MULTIRUN_FLAGS, composition_error, fail  # noqa: E402

__all__ = ["main", "run", "started_from_the_command_line"]


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
def run(cfg: DictConfig) -> float | None:
    """Train one configuration; return ``summary[optimize_metric]`` for sweepers."""
    from snntrain.config import ConfigError, parse

    try:
        metric = parse(cfg).optimize_metric
    except ConfigError as e:
        return _failed(e)
    from snntrain.checkpoint import CheckpointError
    from snntrain.lifecycle import resolve_run_dir
    from snntrain.train import TrainingError, train_and_evaluate

    run_dir = None  # (the unfinished run it continues, not Hydra's new directory: a failure
    try:  # was recorded there, after that directory had been removed)
        from snntrain.parallel import maybe_initialize_distributed

        maybe_initialize_distributed(cfg.trainer)  # (before resolve_run_dir asks jax)
        run_dir = resolve_run_dir(cfg, None)
        summary = train_and_evaluate(cfg, run_dir)
    except (ConfigError, TrainingError, CheckpointError) as e:
        return _failed(e, run_dir)
    except Exception as e:
        from snntrain.lifecycle import out_of_memory

        if (oom := out_of_memory(e)) is not None:
            return _failed(oom, run_dir)
        _record_failure(e, run_dir)
        raise
    from snntrain.progress import print_summary
    from snntrain.report import silence_stdout

    try:
        print_summary(summary)
    except BrokenPipeError:  # `... | head`: the reader has gone; the records are all written
        silence_stdout()
    if "population" in summary and _report_enabled():  # its verdict, as a multirun's
        from snntrain.callbacks import write_sweep_report

        try:
            write_sweep_report(summary["run_dir"])
        except BrokenPipeError:
            silence_stdout()
    return summary.get(metric)


def _report_enabled() -> bool:
    """``hydra.callbacks.report.enabled`` (a population's report too: it was written anyway)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return bool(HydraConfig.get().callbacks.report.get("enabled", True))
    except Exception:  # noqa: BLE001 - outside Hydra, or the callback removed: the default
        return True


def _failed(e: Exception, run_dir: Path | None = None) -> None:
    """Report ``e`` in one line, record it in ``summary.json``, and exit.

    In a multirun the line names the job and its directory, and the sweep goes on: the job
    returns None to the sweeper (Optuna records a failed trial: its ``max_failure_rate`` is 1;
    NaN would make it raise), and the sweep exits with status 2 at its end, after its report
    (:class:`snntrain.callbacks.SweepReport`), which lists the job with its reason; a diverged
    job is a result, not a failure. A pre-emption ends the sweep (status 75), as it ends a
    run.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from snntrain.errors import Refused

    hc = HydraConfig.get()
    run_dir = run_dir or Path(hc.runtime.output_dir)
    if isinstance(e, Refused):  # the directory is another attempt's: leave its records as they were
        from snntrain.rundir import restore_hydra_files

        restore_hydra_files(run_dir)
        preempted = False
    else:
        preempted = _record_failure(e, run_dir)
    where = ""
    if hc.mode == RunMode.MULTIRUN:
        overrides = ",".join(hc.overrides.task) or "no overrides"
        where = f"job {hc.job.num} ({overrides}) in {run_dir}: "
    # a pre-emption is not an error: the run saved its place and says how to continue it; a
    # divergence is a result of the configuration (a sweep counts it so, and goes on)
    from snntrain.runstate import Diverged

    label = "pre-empted" if preempted else "diverged" if isinstance(e, Diverged) else "error"
    from snntrain.errors import shortened

    print(f"snntrain: {label}: {where}{shortened(str(e))}", file=sys.stderr, flush=True)
    if where and not preempted:
        return None
    sys.exit(getattr(e, "exit_code", 2))


def _record_failure(e: BaseException, run_dir: Path | None = None) -> bool:
    """Leave ``<run_dir>/summary.json`` (Hydra's output directory by default) with the status
    and the error, so reports list the run as failed (a pre-empted run wrote its own: True)."""
    from hydra.core.hydra_config import HydraConfig

    from snntrain.runstate import Preempted, failure_record
    from snntrain.writers import WriteFailed, kept_summary, write_json

    if isinstance(e, Preempted):
        return True
    record = failure_record(e)  # (as train_and_evaluate and a population's member record it)
    status = record["status"]
    path = Path(run_dir or HydraConfig.get().runtime.output_dir) / "summary.json"
    # A completed run's record stays, and so does one this attempt wrote with this status (a
    # population whose members all diverged); an earlier attempt's "preempted" (or "failed")
    # must not outlive this attempt's failure.
    old = None
    with contextlib.suppress(OSError, ValueError):
        old = json.loads(path.read_text())
    kept = old.get("status") if isinstance(old, dict) else None
    if kept == "completed" and not kept_summary(path, _last_step(path.with_name("metrics.jsonl"))):
        kept = None  # it trained on past its completed record
    if kept != "completed" and not (kept == status != "failed"):
        if kept == "preempted" and status == "failed":
            # a pre-empted record's partial results stay beside this attempt's failure
            # (a resume refused at run time, e.g. a batch that no longer divides over the
            # devices, left a two-key record: epochs, best val accuracy and the rest were gone)
            record = {**old, **record, "earlier_status": "preempted"}
        # (on the full disk that may have caused the failure: its one line is the record)
        with contextlib.suppress(WriteFailed):
            write_json(path, record)
    elif kept == "completed":  # and so do the .hydra/ files of the run it records
        from snntrain.rundir import restore_hydra_files

        restore_hydra_files(path.parent)
    return False


def _last_step(metrics: Path) -> int | None:
    from snntrain.runs import read_metrics

    try:
        epochs, steps, _, _ = read_metrics(metrics)
    except (OSError, UnicodeDecodeError):
        return None
    return max((int(r["step"]) for r in epochs + steps if isinstance(r.get("step"), int)),
               default=None)


def flags_first(argv: list[str]) -> list[str]:
    """``argv`` with ``-m``/``--multirun`` moved in front of the overrides. Hydra's argparse
    takes overrides only on one side of it: ``snntrain seed=1 -m surrogate=a,b`` stopped
    with a usage page and "unrecognized arguments"; the flag's place means nothing."""
    flags = [a for a in argv if a in MULTIRUN_FLAGS]
    return flags + [a for a in argv if a not in MULTIRUN_FLAGS]


def main() -> None:
    _catch_signals()  # (again: a caller may have reset them since the import)
    from snntrain import config

    config.FROM_COMMAND_LINE = True  # (sys.argv holds the overrides until Hydra has them)
    hostenv.exit_when_stuck_enabled = started_from_the_command_line()
    if any(a in ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info") for a in sys.argv[1:]):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `--help | head`: no BrokenPipeError
    console_notes()
    sys.argv[1:] = flags_first(sys.argv[1:])
    if (err := moved_in_overrides(sys.argv[1:])) is not None:
        fail(str(err))
    if any(arg.lstrip("+").startswith("trainer.population.") for arg in sys.argv[1:]):
        from snntrain.population import alias_conflict, override_error, sweep_conflict, with_aliases

        if (err := alias_conflict(sys.argv[1:])) is not None:
            fail(str(err))
        sys.argv[1:] = with_aliases(sys.argv[1:])
        if (err := override_error(sys.argv[1:]) or sweep_conflict(sys.argv[1:])) is not None:
            fail(str(err))
    from snntrain.callbacks import guard_optuna, missing_slurm, missing_sweep_extra

    if (msg := missing_sweep_extra(sys.argv[1:]) or missing_slurm(sys.argv[1:])) is not None:
        fail(msg)
    guard_optuna(sys.argv[1:])
    if (msg := composition_error(sys.argv[1:])) is not None:
        fail(msg)
    try:
        run()
    except KeyboardInterrupt:  # a second Ctrl-C inside the training loop
        _interrupted()


if __name__ == "__main__":
    main()
