"""One worker process of a population: ``python -m snntrain.worker``, started by
:func:`snntrain.workers.run` (the parent's side, a lower module: it does not import
:mod:`snntrain.population`, which imports it). The worker pins itself to its core before JAX
starts its backend, then trains its groups with :func:`snntrain.population.train_assigned`
and says how it ended by its exit status (:data:`snntrain.workers.PREEMPTED`, ``CONFIG``,
``REFUSED``)."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path

from snntrain.errors import ConfigError
from snntrain.runstate import TrainingError
from snntrain.workers import CONFIG, PREEMPTED, REFUSED

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


def main(argv: list[str]) -> int:
    """A worker: ``<run dir> <core> <t_start> <g,...> <workers> <parent pid>``, and on stdin
    a JSON object with the population's config (YAML) and its groups (member indices).
    Pinned to its core before JAX is imported."""
    run_dir, core, t_start = Path(argv[0]), int(argv[1]), float(argv[2])
    mine, side, parent = [int(g) for g in argv[3].split(",")], int(argv[4]), int(argv[5])
    os.sched_setaffinity(0, {core})
    _die_with_parent(parent)
    from snntrain import hostenv

    hostenv.catch_stop_signals(hostenv.stop_in_one_line(
        "checkpoints written before it are kept: rerun the command to resume"))
    hostenv.exit_when_stuck_enabled = True  # (a command line: a signal may end it)
    job = json.loads(sys.stdin.read())
    from omegaconf import OmegaConf

    from snntrain import malloctune, population
    from snntrain.checkpoint import CheckpointError
    from snntrain.errors import Refused

    cfg = OmegaConf.create(job["config"])
    malloctune.prepare_run(cfg, population.malloc_signature(cfg))
    label = f"group {'+'.join(str(g + 1) for g in mine)}"
    try:
        status = population.train_assigned(cfg, run_dir, job["groups"], mine, t_start, side,
                                           label)
    except (ConfigError, TrainingError, CheckpointError) as e:
        print(f"snntrain: error: {label}: {e}", file=sys.stderr, flush=True)
        return (REFUSED if isinstance(e, Refused) else CONFIG if isinstance(e, ConfigError)
                else getattr(e, "exit_code", 1))
    except KeyboardInterrupt:  # a second Ctrl-C: the parent says it in one line
        return 128 + signal.SIGINT
    return PREEMPTED if status == "preempted" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
