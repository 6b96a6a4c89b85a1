"""The run directory: writable, held by one run at a time, and found again to resume.

* :func:`prepare` creates it and checks it is writable (one-line error otherwise).
* :class:`RunLock` holds an OS-level lock (``fcntl.flock`` on ``<run dir>/.lock``) for the
  whole run (taken at start-up, :func:`hold`, for a run started as the command). The kernel
  releases it when the process exits in any way, SIGKILL included, so a
  stale lock never blocks a resume; a second live run on the same directory stops at once,
  naming the process that holds it, and touches nothing.
* :func:`set_aside` moves files of a run that cannot be continued out of the way (never deletes).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path

from snntrain.errors import ConfigError, Refused
from snntrain.paths import MAX_NAME, dirname, stamp  # noqa: F401 - the names' home

LOCK_NAME = ".lock"


class RunDirBusy(ConfigError, Refused):
    """Another live run holds this run directory."""


HYDRA_SUBDIR = ".hydra"
_hydra_files: dict[Path, bytes] = {}  # what .hydra/ held before Hydra rewrote it this process


def remember_hydra_files(root: Path | str, jobs: bool = False) -> None:
    """Keep in memory what ``<root>/.hydra/`` (``jobs``: every ``<root>/*/.hydra/``, a
    sweep's) holds before Hydra writes this attempt's files over it; a few kB per run."""
    pattern = f"*/{HYDRA_SUBDIR}/*" if jobs else f"{HYDRA_SUBDIR}/*"
    for path in Path(root).glob(pattern):
        with contextlib.suppress(OSError):
            if path.is_file():
                _hydra_files[path.absolute()] = path.read_bytes()


def restore_hydra_files(run_dir: Path | str) -> bool:
    """Put back ``<run_dir>/.hydra/`` as :func:`remember_hydra_files` found it (for an attempt
    that was refused); False when there was nothing there before this process."""
    folder = (Path(run_dir) / HYDRA_SUBDIR).absolute()
    kept = {p: b for p, b in _hydra_files.items() if p.parent == folder}
    if not kept:
        return False
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            if path.is_file() and path not in kept:
                path.unlink()  # a file this attempt added
        for path, content in kept.items():
            path.write_bytes(content)
    return True


def set_aside_hydra_files(run_dir: Path | str) -> Path | None:
    """Write what ``<run_dir>/.hydra/`` held before this attempt (:func:`remember_hydra_files`)
    to ``.hydra.set-aside-<time>/``, beside an earlier training's other set-aside records
    (Hydra has written this attempt's over them); None if nothing was there."""
    folder = (Path(run_dir) / HYDRA_SUBDIR).absolute()
    kept = {p: b for p, b in _hydra_files.items() if p.parent == folder}
    if not kept:
        return None
    aside = aside_path(folder)
    aside.mkdir()
    for path, content in kept.items():
        (aside / path.name).write_bytes(content)
    return aside


def prepare(run_dir: str | Path, probe_name: str = ".write_test") -> Path:
    """Create ``run_dir`` and check it is writable."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f"{probe_name}{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"output directory {run_dir} is not writable: {e.strerror}") from None
    return run_dir


_held: dict[Path, RunLock] = {}  # run directories locked at start-up (see hold)


def hold(run_dir: str | Path) -> None:
    """Lock ``run_dir`` at start-up, before Hydra writes this attempt's ``.hydra/`` files
    there: a second run refused only by the task function's lock had already written over the
    first run's record (when it started before the first had written its own, there was
    nothing to put back). The run's :class:`RunLock` takes the lock over."""
    path = _key(prepare(run_dir))
    if path not in _held:
        _held[path] = RunLock(path).__enter__()


def _key(run_dir: Path) -> Path:
    """One name per directory (``outputs/../outputs/a`` is ``outputs/a``, as Hydra names it)."""
    return Path(os.path.realpath(run_dir))


def lock_ended(run_dir: Path) -> bool:
    """Whether ``run_dir``'s lock says its run has ended: the lock file names this host and
    no process holds it (``/proc/locks``: looked up, not taken, so a run starting at that
    moment is not refused). False when unknown (no lock file, another host's, no
    ``/proc/locks``): the report then judges by the age of the last write."""
    path = Path(run_dir) / LOCK_NAME
    try:
        words = path.read_text(errors="replace").split()
        st = os.stat(path)
        locks = Path("/proc/locks").read_text()
    except OSError:
        return False
    if len(words) < 4 or words[0] != "process" or words[3] != socket.gethostname():
        return False
    me = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    return not any(line.split()[1:2] == ["FLOCK"] and me in line.split()
                   for line in locks.splitlines())


def _holder_said(holder: str) -> str:
    """The lock's holder as written (``process <pid> on <host> since ...``) and what to do. A
    population's worker processes hold their parent's lock (inherited) and may go on saving
    for a few seconds after the parent was killed: "stop it" named a process that no longer
    existed (robustness tester)."""
    words = holder.split()
    if (len(words) > 3 and words[0] == "process" and words[1].isdecimal()
            and words[3] == socket.gethostname()):
        try:
            os.kill(int(words[1]), 0)
        except ProcessLookupError:
            return (f"the worker processes of {holder} (that process has ended; they are "
                    "finishing its checkpoints and stop within seconds): run again once they "
                    "have")
        except OSError:
            pass  # (alive, another user's)
    return f"{holder}; wait for it to end (or stop it)"


class RunLock:
    """Exclusive, non-blocking lock on ``<run_dir>/.lock`` for the lifetime of a run."""

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.path = Path(run_dir) / LOCK_NAME
        self.enabled = enabled
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        if not self.enabled:
            return self
        if (held := _held.pop(_key(self.path.parent), None)) is not None:
            self._fd = held._fd  # taken at start-up by this process (hold)
            _locked[_key(self.path.parent)] = self._fd
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunDirBusy(f"run directory {self.path.parent} is in use by "
                             f"{_holder_said(holder)}, or choose another hydra.run.dir"
                             ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        self._fd = fd
        _locked[_key(self.path.parent)] = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            _locked.pop(_key(self.path.parent), None)
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the lock (if no child
            self._fd = None  # process holds a copy: locked_fd)


_locked: dict[Path, int] = {}  # the descriptors of the run directories this process locks


def locked_fd(run_dir: str | Path) -> int | None:
    """The descriptor of this process's lock on ``run_dir`` (None: not locked here). A child
    process given a copy (``pass_fds``) holds the lock with it until it exits, also when this
    process dies first (a population's workers, still saving their checkpoints)."""
    return _locked.get(_key(Path(run_dir)))


def set_aside(path: Path) -> Path | None:
    """Rename ``path`` to ``<name>.set-aside-<time>`` (kept, not deleted); return the new path."""
    if not path.exists():
        return None
    new = aside_path(path)
    path.rename(new)
    return new


def aside_path(path: Path) -> Path:
    """``<name>.set-aside-<time>`` beside ``path``: where :func:`set_aside` keeps it."""
    return path.with_name(f"{path.name}.set-aside-{time.strftime('%Y%m%d-%H%M%S')}")


# ---- resuming by default: the newest unfinished run of the same command -------------------

UNFINISHED = ("preempted", "failed")


def _status(run_dir: Path) -> str | None:
    import json

    try:
        return json.loads((run_dir / "summary.json").read_text()).get("status")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError):  # unreadable, not JSON, not an object
        return "failed"


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """The directories of ``run_dir`` that hold saved steps (``<dir>/<step>/``): a run's
    ``checkpoints/``, or a chunked population's ``checkpoints/group<g>/`` in group order."""
    ckpts = run_dir / "checkpoints"
    groups = sorted(ckpts.glob("group*"),
                    key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else -1)
    return [d for d in [ckpts, *groups]
            if d.is_dir() and any(p.name.isdigit() for p in d.iterdir())]


def has_checkpoints(run_dir: Path) -> bool:
    """Whether a run (or a chunked population) has saved any step."""
    return bool(checkpoint_dirs(run_dir))


def find_unfinished(root: Path, overrides: list[str], config: dict, exclude: Path) -> Path | None:
    """The newest run directory under ``root/*/*`` of the same overrides and resolved config
    that has checkpoints (a chunked population's too) and did not complete (no summary, or
    pre-empted/failed)."""
    from omegaconf import OmegaConf

    found = []
    for cfg_file in root.glob("*/*/config.yaml"):
        d = cfg_file.parent
        if d.resolve() == exclude.resolve() or not has_checkpoints(d):
            continue
        if _status(d) not in (None, *UNFINISHED):
            continue
        try:
            same = (list(OmegaConf.load(d / ".hydra" / "overrides.yaml")) == list(overrides)
                    and OmegaConf.to_container(OmegaConf.load(cfg_file)) == config)
        except Exception:  # noqa: BLE001 - an unreadable directory is not this run
            continue
        if same:
            found.append((cfg_file.stat().st_mtime, d))
    return max(found)[1] if found else None


def discard_if_empty(run_dir: Path) -> None:
    """Remove a run directory that holds nothing but Hydra's own files."""
    import shutil

    if run_dir.is_dir() and all(p.name in (".hydra", LOCK_NAME) or p.suffix == ".log"
                                for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)
