"""A population's groups trained side by side in worker processes, one CPU core each.

``trainer.population.workers=N`` (``auto``: one per usable core) splits a population into
groups of members (``trainer.population.chunk``; by default ``ceil(K / N)`` members each) and
trains them in ``N`` child processes, ``python -m snntrain.workers``, each pinned to one core
before JAX starts: XLA:CPU then sizes its thread pool and its programs for one core, and
runs each group's step without splitting operations between threads. Each group is trained
exactly as a chunked population trains it in one process (its own ``checkpoints/group<g>``,
its members' records under ``members/``), so its members equal their solo runs bit for bit,
and a resumed population goes on where each group stopped.

Why processes and not the CPU split into devices (``trainer.population.cpu_devices``): on 2
cores (Zen 5, ``scripts/bench_population.py``) two single-core processes trained 16
members' steps each at 2.7-3.2 ms per member-step at the same time, against 2.6-3.7 ms for
a solo step on both cores (about 2x), while the split into two devices of one process gave
1.3-1.7x: its two devices' programs share XLA:CPU's two intra-op threads, which spend
13-22% more CPU time per member-step than one core running one program alone.

The parent (:func:`run`) holds the run directory's lock, waits for the workers, forwards a
SIGTERM (or its own Ctrl-C) to them as SIGTERM (each saves a checkpoint and stops), and
stops the others when one fails. A worker whose parent dies is sent SIGTERM
(``PR_SET_PDEATHSIG``), so nothing trains on unwatched. The workers write their lines to the
same console, each prefixed with its group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from snntrain.runstate import TrainingError

PREEMPTED = 75  # a worker stopped by a signal after saving its checkpoint (EX_TEMPFAIL)
POLL_S = 0.1
# how a worker that a SIGTERM or Ctrl-C stopped before its training loop ends (one line, or the
# signal itself before its handlers were set)
STOPPED = {128 + signal.SIGTERM, 128 + signal.SIGINT, -signal.SIGTERM, -signal.SIGINT}
PR_SET_PDEATHSIG = 1


def assign(n_groups: int, workers: int) -> list[list[int]]:
    """Groups ``0..n_groups-1`` dealt round-robin to at most ``workers`` workers."""
    return [list(range(w, n_groups, workers)) for w in range(min(workers, n_groups))]


def cores(n: int) -> list[int]:
    """The first ``n`` cores of this process's affinity mask (one per worker)."""
    return sorted(os.sched_getaffinity(0))[:n]


class WorkerFailed(TrainingError):
    """A worker process ended with an error (its own line says which, above)."""


def run(config_yaml: str, run_dir: Path, assignments: list[list[int]], t_start: float,
        n_groups: int, stop: Callable[[], bool], say: Callable[[str], None]) -> list[int]:
    """Start one worker per entry of ``assignments`` (its indices of the ``n_groups``
    groups), each pinned to its own core, and wait for them; return their exit codes (0, or
    :data:`PREEMPTED`). Once ``stop()`` is true every live worker gets SIGTERM (once). A
    worker that fails stops the others (SIGTERM: they save their checkpoints) and raises
    :class:`WorkerFailed`."""
    procs = []
    for groups, core in zip(assignments, cores(len(assignments)), strict=True):
        cmd = [sys.executable, "-m", "snntrain.workers", str(run_dir), str(core),
               repr(t_start), ",".join(map(str, groups)), str(n_groups),
               str(len(assignments))]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, text=True)
        with contextlib.suppress(BrokenPipeError):  # (it ended at once: its status says)
            p.stdin.write(config_yaml)
            p.stdin.close()
        procs.append(p)
    say(f"population: {sum(map(len, assignments))} group(s) in {len(procs)} worker processes, "
        f"one core each (cores {', '.join(map(str, cores(len(procs))))}; "
        "trainer.population.workers=null trains in this process)")
    forwarded = False
    while any(p.poll() is None for p in procs):
        if not forwarded and (stop() or any(p.returncode not in (None, 0, PREEMPTED)
                                            for p in procs)):
            forwarded = True
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
        time.sleep(POLL_S)
    codes = [p.returncode for p in procs]
    if stop():  # a worker the signal stopped before its training loop did (its line says so)
        codes = [PREEMPTED if c in STOPPED else c for c in codes]
    bad = [(groups, c) for groups, c in zip(assignments, codes, strict=True)
           if c not in (0, PREEMPTED)]
    if bad:
        groups, code = bad[0]
        shown = ", ".join(str(g + 1) for g in groups)
        raise WorkerFailed(f"the worker training group(s) {shown} of "
                           f"{run_dir} stopped with exit status {code} (its error is above); "
                           "the others saved their checkpoints: rerun the command to resume")
    return codes


def _die_with_parent() -> None:
    """SIGTERM when the parent process dies (Linux; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    """A worker: ``<run dir> <core> <t_start> <group,...> <groups> <workers>``, the
    population's config (YAML) on stdin. Pinned to its core before JAX is imported."""
    run_dir, core, t_start = Path(argv[0]), int(argv[1]), float(argv[2])
    groups, n_groups, side = [int(g) for g in argv[3].split(",")], int(argv[4]), int(argv[5])
    os.sched_setaffinity(0, {core})
    _die_with_parent()
    from snntrain import hostenv

    hostenv.catch_stop_signals(hostenv.stop_in_one_line(
        "checkpoints written before it are kept: rerun the command to resume"))
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(sys.stdin.read())
    from snntrain import malloctune, population
    from snntrain.checkpoint import CheckpointError
    from snntrain.errors import ConfigError

    malloctune.prepare_run(cfg, population.malloc_signature(cfg))
    label = f"group {'+'.join(str(g + 1) for g in groups)}"
    try:
        status = population.train_assigned(cfg, run_dir, groups, n_groups, t_start, side,
                                           label)
    except (ConfigError, TrainingError, CheckpointError) as e:
        print(f"snntrain: error: {label}: {e}", file=sys.stderr, flush=True)
        return getattr(e, "exit_code", 2)
    except KeyboardInterrupt:  # a second Ctrl-C: the parent says it in one line
        return 128 + signal.SIGINT
    return PREEMPTED if status == "preempted" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
