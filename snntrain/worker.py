"""One worker process of a population: ``python -m snntrain.worker``, started by
:func:`snntrain.workers.run` (the parent's side, a lower module: it does not import
:mod:`snntrain.population`, which imports it). The worker pins itself to its core before JAX
starts its backend, then trains its groups with :func:`snntrain.population.train_assigned`
and says how it ended by its exit status (:data:`snntrain.workers.PREEMPTED`, ``CONFIG``,
``REFUSED``)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

# (snntrain's modules are imported in main, once a Ctrl-C or SIGTERM ends the worker in one
# line: one while numpy or rich were imported printed their traceback through the parent)

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """SIGTERM when the parent process dies (Linux; elsewhere nothing); exits at once if it
    has already died (before the request was in place)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        sys.exit(128 + signal.SIGTERM)


class _ToParent:
    """A stream to the parent's pipe whose writes are dropped once the parent is gone (its
    SIGTERM follows: the worker must still save its checkpoint, not fail on a print)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):  # (a closed stream; no encoding errors: backslashreplace)
            return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _output_to_parent(progress_fd: int) -> None:
    """Print to the parent's pipes (UTF-8 lines, whatever the locale) and relay the progress
    bar's fields to ``progress_fd``; all of it dropped once the parent is gone."""
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)
    sys.stdout, sys.stderr = _ToParent(sys.stdout), _ToParent(sys.stderr)
    from snntrain import progress

    os.set_inheritable(progress_fd, False)  # (not held open by a process it starts)
    progress.relay_to(os.fdopen(progress_fd, "w", encoding="utf-8", buffering=1))


def main(argv: list[str]) -> int:
    """A worker: ``<run dir> <core> <t_start> <g,...> <workers> <parent pid> <progress fd>``,
    and on stdin a JSON object with the population's config (YAML), its groups (member
    indices) and its members' wandb group. Its output goes to the parent, and its bar's
    fields to ``<progress fd>``. Pinned to its core before JAX is imported."""
    try:
        if len(argv) != 7:
            raise ValueError
        run_dir, core, t_start = Path(argv[0]), int(argv[1]), float(argv[2])
        mine, side, parent = [int(g) for g in argv[3].split(",")], int(argv[4]), int(argv[5])
        progress_fd = int(argv[6])
    except ValueError:  # (--help, or arguments of another kind: a traceback before)
        print("usage: python -m snntrain.worker RUN_DIR CORE T_START GROUPS WORKERS PARENT_PID "
              "PROGRESS_FD (a population's worker process, started by the population itself: "
              "python -m snntrain 'trainer.population...=[...]')", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {core})
    _die_with_parent(parent)
    from snntrain import hostenv

    hostenv.catch_stop_signals(hostenv.stop_in_one_line(
        "checkpoints written before it are kept: rerun the command to resume"))
    _output_to_parent(progress_fd)
    import logging

    logging.raiseExceptions = False  # (as the command line's: progress.console_notes)
    from snntrain.errors import ConfigError, Refused
    from snntrain.runstate import TrainingError
    from snntrain.workers import CONFIG, ERROR_PREFIX, FAILED, PREEMPTED, REFUSED

    hostenv.exit_when_stuck_enabled = True  # (a command line: a signal may end it)
    job = json.loads(sys.stdin.read())
    from omegaconf import OmegaConf

    from snntrain import malloctune, population
    from snntrain.checkpoint import CheckpointError

    cfg = OmegaConf.create(job["config"])
    from snntrain import writers

    writers.inherit_sweep_job_overrides(job.get("job_overrides") or [])
    malloctune.prepare_run(cfg, population.malloc_signature(
        cfg, [len(job["groups"][g]) for g in mine if 0 <= g < len(job["groups"])]))
    label = f"group {'+'.join(str(g + 1) for g in mine)}"
    try:
        status = population.train_assigned(cfg, run_dir, job["groups"], mine, t_start, side,
                                           label, job.get("wandb_group"))
    except (ConfigError, TrainingError, CheckpointError) as e:
        # (a training error's own exit status may be a refusal's or a config error's: a full
        # disk, WriteFailed's 2, was reported as a configuration error)
        print(f"{ERROR_PREFIX}{label}: {e}", file=sys.stderr, flush=True)
        return (REFUSED if isinstance(e, Refused) else CONFIG if isinstance(e, ConfigError)
                else FAILED)
    except KeyboardInterrupt:  # a second Ctrl-C: the parent says it in one line
        return 128 + signal.SIGINT
    except Exception as e:
        from snntrain.lifecycle import out_of_memory

        if (oom := out_of_memory(e)) is None:
            raise  # (a fault of ours: its traceback)
        print(f"{ERROR_PREFIX}{label}: {oom}", file=sys.stderr, flush=True)
        return FAILED
    return PREEMPTED if status == "preempted" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
