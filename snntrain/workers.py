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
if it fails itself; a worker whose parent dies gets SIGTERM (``PR_SET_PDEATHSIG``). The
parent reads each worker's output (its lines, each epoch line prefixed with its group) and its
progress (a pipe of its bar's fields), and shows them on its own console: the lines as they
come, above one bar per worker (:class:`snntrain.progress.WorkerBars`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from snntrain.errors import ConfigError, RefusedConfig
from snntrain.progress import WorkerBars
from snntrain.rundir import locked_fd
from snntrain.runstate import TrainingError

PREEMPTED = 75  # a worker stopped by a signal after saving its checkpoint (EX_TEMPFAIL)
CONFIG = 2  # a worker's configuration or data error (as the command line's exit status)
REFUSED = 65  # a worker refused its attempt (another attempt's directory or checkpoints)
FAILED = 1  # a worker's training failed (its error line says why: a full disk, memory, ...)
# how a worker that a SIGTERM or Ctrl-C stopped before its training loop ends (one line, or the
# signal itself before its handlers were set)
STOPPED = {128 + signal.SIGTERM, 128 + signal.SIGINT, -signal.SIGTERM, -signal.SIGINT}
AUTO_MAX = 8  # workers=auto: each holds its own copy of the data and compiles its own program
POLL_S = 0.1
ERROR_PREFIX = "snntrain: error: "  # a worker's error line (worker.py), recorded by the run
GRACE_S = 60.0  # for a worker told to stop (it saves a checkpoint first)
DRAIN_S = 2.0  # reading the workers' last lines once they have ended (a process they
# started, such as wandb's service, may hold their output open longer)


def assign(n_groups: int, workers: int) -> list[list[int]]:
    """Groups ``0..n_groups-1`` dealt round-robin to at most ``workers`` workers."""
    return [list(range(w, n_groups, workers)) for w in range(min(workers, n_groups))]


def cores(n: int) -> list[int]:
    """The first ``n`` cores of this process's affinity mask (one per worker)."""
    return sorted(os.sched_getaffinity(0))[:n]


class WorkerFailed(TrainingError):
    """A worker process ended with an error (its own line says which, above)."""


def run(config_yaml: str, run_dir: Path, groups: list[list[int]], assignments: list[list[int]],
        t_start: float, stop: Callable[[], bool], say: Callable[[str], None],
        bars: bool = False, wandb_group: str | None = None,
        job_overrides: list[str] | None = None) -> list[int]:
    """Start one worker per entry of ``assignments`` (its indices into ``groups``, the
    members' indices of each group), each pinned to its own core, and wait for them; return
    their exit codes (0, or :data:`PREEMPTED`). Once ``stop()`` is true every live worker gets
    SIGTERM (once). A worker that fails stops the others (SIGTERM: they save their
    checkpoints) and raises: :class:`~snntrain.errors.RefusedConfig` or
    :class:`~snntrain.errors.ConfigError` for a worker's refusal or configuration error (as
    in one process), else :class:`WorkerFailed`. ``bars``: a progress bar per worker;
    ``wandb_group``, ``job_overrides``: the members' wandb group and the multirun job's
    overrides that name its runs (:func:`snntrain.writers.sweep_job_overrides`; a worker has
    no Hydra config to find them in)."""
    where = cores(len(assignments))
    job = json.dumps({"config": config_yaml, "groups": groups, "wandb_group": wandb_group,
                      "job_overrides": job_overrides or []})
    procs: list[subprocess.Popen] = []
    errors: dict[int, str] = {}  # each worker's error line (what the run records as its own)

    def _line(w: int, text: str) -> None:
        console.line(text)
        if text.startswith(ERROR_PREFIX):  # (without its "group 2: ")
            errors[w] = re.sub(r"^group [0-9+]+: ", "", text[len(ERROR_PREFIX):])

    first: list[int] = []  # the worker that failed first (the others may fail as they stop)

    def _failed(w: int) -> None:
        first.append(w)
        say(f"population: the worker training group(s) {_groups(assignments[w])} failed; "
            "stopping the others (each saves its checkpoint)")

    with WorkerBars(len(assignments), bars) as console, _Pipes() as pipes:
        try:
            # (each worker holds a copy of the run directory's lock: it stays locked until
            # the last worker has saved its checkpoint, also if this process is killed)
            lock = locked_fd(run_dir)
            for w, (mine, core) in enumerate(zip(assignments, where, strict=True)):
                progress_r, progress_w = os.pipe()
                cmd = [sys.executable, "-m", "snntrain.worker", str(run_dir), str(core),
                       repr(t_start), ",".join(map(str, mine)), str(len(assignments)),
                       str(os.getpid()), str(progress_w)]
                try:
                    with _without_sigint():  # (a Ctrl-C reaches a worker as this process's
                        # SIGTERM only: one while it imported printed its traceback, and two
                        # signals two lines)
                        p = subprocess.Popen(
                            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            pass_fds=(progress_w, *([lock] if lock is not None else [])))
                except BaseException:
                    os.close(progress_r)
                    raise
                finally:
                    os.close(progress_w)  # (the worker's copy is its own)
                procs.append(p)
                pipes.add(p.stdout.fileno(), lambda text, w=w: _line(w, text), p.stdout.close)
                pipes.add(progress_r, lambda text, w=w: console.relayed(w, text),
                          lambda fd=progress_r: os.close(fd))
                with contextlib.suppress(BrokenPipeError):  # (it ended at once: its status says)
                    p.stdin.write(job.encode())
                    p.stdin.close()
            n = sum(map(len, assignments))  # (the groups left: a resume's may be fewer)
            say(f"population: {n} group{'s' * (n != 1)} in {len(procs)} worker process"
                f"{'es' * (len(procs) != 1)}, one core each (core{'s' * (len(where) != 1)} "
                f"{', '.join(map(str, where))};"
                " trainer.population.workers=null trains in this process)")
            codes = _wait(procs, stop, pipes, _failed)
        finally:
            _stop_all(procs, pipes)  # (this process failed or was interrupted: none trains
            # on unwatched)
            pipes.drain(DRAIN_S)
    # a worker a signal stopped before its training loop (its line says so): pre-empted, as
    # one stopped in it (a SIGTERM to one worker while it started failed the run, saying "its
    # error is above")
    codes = [PREEMPTED if c in STOPPED else c for c in codes]
    bad = [(w, c) for w, c in enumerate(codes) if c not in (0, PREEMPTED)]
    if bad:  # the first that failed, which the line above named (not one that failed after)
        w, code = next((b for b in bad if b[0] in first[:1]), bad[0])
        raise _failure(f"the worker training group(s) {_groups(assignments[w])} of {run_dir}",
                       code, errors.get(w))
    return codes


def _failure(what: str, code: int, said: str | None) -> Exception:
    """The run's error for a worker that ended with ``code`` (its error line ``said``, if it
    printed one): as in one process for a refusal or a configuration error."""
    if code == REFUSED:
        return RefusedConfig(f"{what} was refused: {said}" if said else
                             f"{what} was refused (its line is above)")
    if code == CONFIG:
        return ConfigError(f"{what} stopped on a configuration error: {said}" if said else
                           f"{what} stopped on a configuration error (its line is above)")
    why = (said if said else f"killed by {signal.Signals(-code).name}" + (
        " (the kernel's out-of-memory killer sends it, or a kill -9)" if code == -signal.SIGKILL
        else "") if code < 0 and -code in signal.valid_signals() else "its error is above")
    return WorkerFailed(f"{what} stopped with exit status {code} ({why}); the others saved "
                        "their checkpoints: rerun the command to resume")


@contextlib.contextmanager
def _without_sigint() -> Iterator[None]:
    """SIGINT ignored while a child process is started, so that it starts ignoring it (Python
    keeps an ignored SIGINT; the child's handlers leave it so)."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: the child gets the Ctrl-C as well
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _groups(mine: list[int]) -> str:
    return ", ".join(str(g + 1) for g in mine)


class _Pipes:
    """The workers' pipes read as lines, each handed to its reader as it completes (the
    parent reads them while it waits, so no worker blocks on a full pipe). A line rewritten
    in place (``\r``, a download's progress) counts as its last version. A reader that fails
    (a console that cannot print) loses that line, not the run's supervision."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._partial: dict[int, bytes] = {}
        self._close_fd: dict[int, Callable[[], None]] = {}

    def __enter__(self) -> _Pipes:
        return self

    def __exit__(self, *exc) -> None:
        for key in list(self._sel.get_map().values()):
            if self._partial.get(key.fd):  # (a last line whose pipe a grandchild holds open)
                self._hand(key.data, self._partial[key.fd])
            self._close(key.fd)
        self._sel.close()

    def add(self, fd: int, reader: Callable[[str], None], close: Callable[[], None]) -> None:
        """Read ``fd`` into ``reader`` (a line at a time); ``close`` it when it ends."""
        os.set_blocking(fd, False)
        self._sel.register(fd, selectors.EVENT_READ, reader)
        self._partial[fd] = b""
        self._close_fd[fd] = close

    def pump(self, timeout: float) -> bool:
        """Read what is ready within ``timeout`` seconds; whether anything was."""
        if not self._sel.get_map():
            time.sleep(timeout)
            return False
        ready = self._sel.select(timeout)
        for key, _ in ready:
            try:
                data = os.read(key.fd, 1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            buf = self._partial[key.fd] + data
            if data:
                *lines, self._partial[key.fd] = buf.split(b"\n")
            else:  # the end: its last line, if it had no newline
                lines = [buf] if buf else []
            for line in lines:
                self._hand(key.data, line)
            if not data:
                self._close(key.fd)
        return bool(ready)

    @staticmethod
    def _hand(reader: Callable[[str], None], line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\r").rsplit("\r", 1)[-1]
        with contextlib.suppress(Exception):  # noqa: BLE001 - see the class's docstring
            reader(text)

    def drain(self, seconds: float) -> None:
        """Read until every pipe is closed, or nothing came for a moment, or ``seconds``."""
        end = time.monotonic() + seconds
        while self._sel.get_map() and time.monotonic() < end and self.pump(0.2):
            pass

    def _close(self, fd: int) -> None:
        self._sel.unregister(fd)
        self._partial.pop(fd, None)
        with contextlib.suppress(OSError):
            self._close_fd.pop(fd)()


def _wait(procs: list[subprocess.Popen], stop: Callable[[], bool], pipes: _Pipes,
          failed: Callable[[int], None]) -> list[int]:
    """Every worker's exit status; all told to stop (SIGTERM) once ``stop()`` is true or one
    has failed (``failed(its index)`` is called first), and killed if still running
    :data:`GRACE_S` later."""
    told = None
    while True:
        alive = [p.poll() is None for p in procs]  # (every one polled: a later failure counts)
        if not any(alive):
            return [p.returncode for p in procs]
        bad = [w for w, p in enumerate(procs)
               if p.returncode not in (None, 0, PREEMPTED) and p.returncode not in STOPPED]
        if told is None and (stop() or bad):
            if bad and not stop():
                failed(bad[0])
            told = time.monotonic()
            for p, live in zip(procs, alive, strict=True):
                if live:
                    p.send_signal(signal.SIGTERM)
        elif told is not None and time.monotonic() - told > GRACE_S:
            for p, live in zip(procs, alive, strict=True):
                if live:
                    p.kill()
        pipes.pump(POLL_S)


def _stop_all(procs: list[subprocess.Popen], pipes: _Pipes) -> None:
    """Every worker still running told to stop and waited for, its output read (SIGKILL after
    :data:`GRACE_S`): :func:`_wait` with ``stop`` true."""
    _wait(procs, lambda: True, pipes, lambda _w: None)
