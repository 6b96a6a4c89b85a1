"""A population's groups trained side by side in worker processes, one CPU core each.

``trainer.population.workers`` (``auto``, the command line's default on a CPU: one per usable
core, at most :data:`AUTO_MAX`) deals a population's members into groups (member ``i`` into
group ``i mod n``; ``trainer.population.chunk`` sets the group size) and trains them in child
processes, ``python -m snntrain.worker`` (:mod:`snntrain.worker`), each pinned to one core
before JAX starts: XLA:CPU
then sizes its thread pool and its programs for one core and runs each group's step without
splitting operations between threads. Each group is trained exactly as a chunked population
trains it in one process (its own ``checkpoints/group<g>``, its members' records under
``members/``), so its members equal their solo runs bit for bit, and a resumed population goes
on where each group stopped, with the groups it had.

Why processes and not the CPU split into devices (``trainer.population.cpu_devices``): on 2
cores (Zen 5, ``scripts/bench_population.py``, K = 16) the workers gave 1.8-2.1x the solo
step's throughput per member, the split 1.4-1.6x: the split's two devices share XLA:CPU's two
intra-op threads, which spend about 30% more CPU time per member-step than one core running
one program alone.

The parent (:func:`run`) holds the run directory's lock, waits for the workers, forwards a
SIGTERM (or its own Ctrl-C) to them as SIGTERM (each saves a checkpoint and stops), stops the
others when one fails (SIGKILL after :data:`GRACE_S` if one does not stop), and stops them all
if it fails itself; a worker whose parent dies gets SIGTERM (``PR_SET_PDEATHSIG``). The workers
write their lines to the same console, each epoch line prefixed with its group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from snntrain.errors import ConfigError, RefusedConfig
from snntrain.runstate import TrainingError

PREEMPTED = 75  # a worker stopped by a signal after saving its checkpoint (EX_TEMPFAIL)
CONFIG = 2  # a worker's configuration or data error (as the command line's exit status)
REFUSED = 65  # a worker refused its attempt (another attempt's directory or checkpoints)
# how a worker that a SIGTERM or Ctrl-C stopped before its training loop ends (one line, or the
# signal itself before its handlers were set)
STOPPED = {128 + signal.SIGTERM, 128 + signal.SIGINT, -signal.SIGTERM, -signal.SIGINT}
AUTO_MAX = 8  # workers=auto: each holds its own copy of the data and compiles its own program
POLL_S = 0.1
GRACE_S = 60.0  # for a worker told to stop (it saves a checkpoint first)


def assign(n_groups: int, workers: int) -> list[list[int]]:
    """Groups ``0..n_groups-1`` dealt round-robin to at most ``workers`` workers."""
    return [list(range(w, n_groups, workers)) for w in range(min(workers, n_groups))]


def cores(n: int) -> list[int]:
    """The first ``n`` cores of this process's affinity mask (one per worker)."""
    return sorted(os.sched_getaffinity(0))[:n]


class WorkerFailed(TrainingError):
    """A worker process ended with an error (its own line says which, above)."""


def run(config_yaml: str, run_dir: Path, groups: list[list[int]], assignments: list[list[int]],
        t_start: float, stop: Callable[[], bool], say: Callable[[str], None]) -> list[int]:
    """Start one worker per entry of ``assignments`` (its indices into ``groups``, the
    members' indices of each group), each pinned to its own core, and wait for them; return
    their exit codes (0, or :data:`PREEMPTED`). Once ``stop()`` is true every live worker gets
    SIGTERM (once). A worker that fails stops the others (SIGTERM: they save their
    checkpoints) and raises: :class:`~snntrain.errors.RefusedConfig` or
    :class:`~snntrain.errors.ConfigError` for a worker's refusal or configuration error (as
    in one process), else :class:`WorkerFailed`."""
    where = cores(len(assignments))
    job = json.dumps({"config": config_yaml, "groups": groups})
    procs: list[subprocess.Popen] = []
    try:
        for mine, core in zip(assignments, where, strict=True):
            cmd = [sys.executable, "-m", "snntrain.worker", str(run_dir), str(core),
                   repr(t_start), ",".join(map(str, mine)), str(len(assignments)),
                   str(os.getpid())]
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, text=True)
            procs.append(p)
            with contextlib.suppress(BrokenPipeError):  # (it ended at once: its status says)
                p.stdin.write(job)
                p.stdin.close()
        say(f"population: {len(groups)} groups in {len(procs)} worker processes, one core "
            f"each (cores {', '.join(map(str, where))}; trainer.population.workers=null "
            "trains in this process)")
        codes = _wait(procs, stop)
    finally:
        _stop_all(procs)  # (this process failed or was interrupted: none trains on unwatched)
    if stop():  # a worker the signal stopped before its training loop did (its line says so)
        codes = [PREEMPTED if c in STOPPED else c for c in codes]
    bad = [(mine, c) for mine, c in zip(assignments, codes, strict=True)
           if c not in (0, PREEMPTED)]
    if bad:  # the first that failed on its own, not one stopped because of it
        mine, code = next((b for b in bad if b[1] not in STOPPED), bad[0])
        what = (f"the worker training group(s) {', '.join(str(g + 1) for g in mine)} of "
                f"{run_dir}")
        if code == REFUSED:
            raise RefusedConfig(f"{what} was refused (its line is above)")
        if code == CONFIG:
            raise ConfigError(f"{what} stopped on a configuration error (its line is above)")
        raise WorkerFailed(f"{what} stopped with exit status {code} (its error is above); "
                           "the others saved their checkpoints: rerun the command to resume")
    return codes


def _wait(procs: list[subprocess.Popen], stop: Callable[[], bool]) -> list[int]:
    """Every worker's exit status; all told to stop (SIGTERM) once ``stop()`` is true or one
    has failed, and killed if still running :data:`GRACE_S` later."""
    told = None
    while True:
        alive = [p.poll() is None for p in procs]  # (every one polled: a later failure counts)
        if not any(alive):
            return [p.returncode for p in procs]
        if told is None and (stop() or any(p.returncode not in (None, 0, PREEMPTED)
                                           for p in procs)):
            told = time.monotonic()
            for p, live in zip(procs, alive, strict=True):
                if live:
                    p.send_signal(signal.SIGTERM)
        elif told is not None and time.monotonic() - told > GRACE_S:
            for p, live in zip(procs, alive, strict=True):
                if live:
                    p.kill()
        time.sleep(POLL_S)


def _stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to every worker still running, then wait for it (SIGKILL after GRACE_S)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
