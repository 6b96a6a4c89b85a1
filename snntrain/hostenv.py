"""Process set-up for glibc's malloc: which allocation policy a run uses, set before JAX starts.

XLA:CPU allocates its large temporaries afresh at every training step (212 MiB for the bench's
convnet). glibc serves a block above its mmap threshold (at most 32 MiB) with ``mmap`` and
returns it with ``munmap``, and an XLA worker thread's own arena cannot hold a block bigger
than 64 MiB at all, so every step page-faults its working set in again, 4 KiB at a time
(CONV: ~61,000 minor faults per step on the Zen 3 machine of the README). Two remedies:

* ``heap`` (in-process, :func:`use_heap`): one arena for all threads (``M_ARENA_MAX=1``, set
  before JAX starts its threads: :func:`prepare`), no ``mmap`` (``M_MMAP_MAX=0``) and no
  trimming (``M_TRIM_THRESHOLD``), so freed temporaries stay mapped in the heap and the next
  step reuses them: 0 faults per step. The price: the process never returns its peak heap to
  the OS. ``mallopt`` can be changed at any time, so a run can time both settings on its own
  steps (:mod:`snntrain.malloctune`);
* ``hugepages``: glibc's tunable ``glibc.malloc.hugetlb=1`` (glibc >= 2.35) makes malloc ask
  for transparent huge pages (2 MiB); faults become 512x rarer. Tunables are read at process
  start, so :func:`reexec_with_hugepages` restarts the process (``os.execv``: same PID, same
  arguments) with the tunable added.

The switch ``SNNTRAIN_MALLOC`` (:func:`malloc_mode`): ``auto`` (the default: time ``default``
against ``heap`` on the run's first steps, cache the winner), ``heap``, ``default`` (glibc
untouched) or ``hugepages``. The older ``SNNTRAIN_HUGEPAGES=1`` / ``=0`` still force
``hugepages`` / ``default``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from snntrain.errors import ConfigError

TUNABLE = "glibc.malloc.hugetlb"
ENV_SWITCH = "SNNTRAIN_HUGEPAGES"  # the older switch: 1 = hugepages, 0 = default
MODE_SWITCH = "SNNTRAIN_MALLOC"
MODES = ("auto", "heap", "default", "hugepages")
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")

# mallopt(3) parameters (malloc.h) and the values glibc starts with
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -3, -4, -8
DEFAULT_MMAP_MAX = 65536
DYNAMIC_MMAP_MAX = 32 << 20  # the largest mmap threshold glibc's dynamic rule reaches (64-bit)
DYNAMIC_TRIM_MAX = 2 * DYNAMIC_MMAP_MAX  # and the trim threshold it sets with it
NO_TRIM = 2**31 - 1


def malloc_mode(env: dict[str, str] | None = None) -> str:
    """The malloc policy asked for: ``SNNTRAIN_MALLOC``, else ``SNNTRAIN_HUGEPAGES`` (1/0), else
    ``auto``; ``hugepages`` whenever the tunable is already set (the restarted process)."""
    env = os.environ if env is None else env
    if TUNABLE + "=1" in env.get("GLIBC_TUNABLES", ""):
        return "hugepages"
    mode = env.get(MODE_SWITCH, "").strip().lower()
    old = env.get(ENV_SWITCH, "").strip()
    if old not in ("", "0", "1"):  # "yes" was taken as auto without a word
        raise ConfigError(f"{ENV_SWITCH}={old!r} is not 1 or 0 (the older switch; or set "
                          f"{MODE_SWITCH} to one of {', '.join(MODES)})")
    if not mode:
        mode = {"0": "default", "1": "hugepages"}.get(old, "auto")
    if mode not in MODES:
        raise ConfigError(f"{MODE_SWITCH}={mode!r} is not a malloc policy; valid: "
                          f"{', '.join(MODES)}")
    if old == "1" and mode != "hugepages":  # (heap beside it ran heap without a word)
        raise ConfigError(f"{MODE_SWITCH}={mode} and {ENV_SWITCH}=1 disagree (the older switch "
                          f"asks for huge pages): unset {ENV_SWITCH}")
    if mode == "hugepages" and old == "0":  # the restart obeys the older switch: no huge pages
        raise ConfigError(f"{MODE_SWITCH}=hugepages and {ENV_SWITCH}=0 disagree (the older "
                          f"switch keeps huge pages off): unset {ENV_SWITCH}")
    return mode


_state = {"single_arena": False}


def single_arena() -> bool:
    """Whether :func:`prepare` put this process on one arena."""
    return _state["single_arena"]


def _libc() -> ctypes.CDLL | None:
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def mallopt(param: int, value: int) -> bool:
    """glibc's ``mallopt(param, value)``; False off glibc or when glibc refuses the value."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)))


def use_heap(on: bool) -> bool:
    """Keep freed blocks in the heap (``on``: no mmap, no trimming) or let glibc map and
    return them as it does once its dynamic thresholds have adapted to a repeating big block
    (``off``: blocks above 32 MiB mapped, trimming above 64 MiB of free top). glibc's own
    adaptive state cannot be restored once set; this is where it ends up."""
    if on:
        return mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, NO_TRIM)
    return (mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX) and mallopt(M_MMAP_THRESHOLD, DYNAMIC_MMAP_MAX)
            and mallopt(M_TRIM_THRESHOLD, DYNAMIC_TRIM_MAX))


def prepare(mode: str | None = None) -> str:
    """Apply the start-up part of the policy (see the module doc) and return the mode.

    ``hugepages`` restarts the process (:func:`reexec_with_hugepages`); ``auto`` and ``heap``
    put all threads on one arena (must precede JAX's thread pools, i.e. the first device
    call), and ``heap`` also switches to :func:`use_heap`; ``default`` changes nothing.
    """
    mode = malloc_mode() if mode is None else mode
    if mode == "hugepages":
        reexec_with_hugepages()
    elif mode in ("auto", "heap"):
        _state["single_arena"] = mallopt(M_ARENA_MAX, 1)
        if mode == "heap":
            use_heap(True)
    return mode


def hugepages_available() -> bool:
    """Whether this process could use the tunable (Linux, glibc >= 2.35, THP not disabled)."""
    if sys.platform != "linux":
        return False
    lib, version = platform.libc_ver()
    try:
        if lib != "glibc" or tuple(int(v) for v in version.split(".")[:2]) < (2, 35):
            return False
    except ValueError:
        return False
    return thp_mode() not in ("never", "none")


def with_hugepages(env: dict[str, str]) -> dict[str, str]:
    """A copy of ``env`` with ``glibc.malloc.hugetlb=1`` added to ``GLIBC_TUNABLES``."""
    env = dict(env)
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), f"{TUNABLE}=1"]))
    return env


def tunables_for(policy: str) -> str:
    """The ``GLIBC_TUNABLES`` that give a process started with them ``policy`` from its first
    allocation (for programs that cannot call :func:`prepare`, such as another library's
    benchmark): ``heap`` as one arena, no mmap, no trimming; ``hugepages`` as the tunable;
    ``default`` as nothing."""
    return {"heap": f"glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:"
                    f"glibc.malloc.trim_threshold={NO_TRIM}",
            "hugepages": f"{TUNABLE}=1", "default": ""}[policy]


def reexec_with_hugepages() -> None:
    """Restart this process with huge-page malloc, if it is off and available (see above).

    Call it first thing in an entry point, before anything heavy is imported or any file is
    written: the process image is replaced and starts over. ``SNNTRAIN_HUGEPAGES=0`` or any
    ``glibc.malloc.hugetlb`` already in ``GLIBC_TUNABLES`` prevents it (so it never loops).
    """
    if os.environ.get(ENV_SWITCH, "1") == "0" or TUNABLE in os.environ.get("GLIBC_TUNABLES", ""):
        return
    if not hugepages_available():
        return
    env = with_hugepages(os.environ)
    argv = list(getattr(sys, "orig_argv", [])) or [sys.executable, *sys.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv[1:]], env)


# ---- the CPU as several JAX devices (population training) ------------------------------

DEVICE_FLAG = "--xla_force_host_platform_device_count"
SPLIT_MARK = "SNNTRAIN_CPU_DEVICES"  # set with DEVICE_FLAG when snntrain split the CPU itself


CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"  # cgroup v2: "<quota> <period>" or "max <period>"


def usable_cores() -> int:
    """The cores this process may run on: its affinity mask (a SLURM or taskset share), at
    most its cgroup's CPU quota rounded up (``docker --cpus=2`` on a 64-core host: 2)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = Path(CGROUP_CPU_MAX).read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            n = min(n, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return n


def device_count_flag(env: dict[str, str] | None = None) -> int | None:
    """The CPU device count ``XLA_FLAGS`` sets (``--xla_force_host_platform_device_count``)."""
    flags = (os.environ if env is None else env).get("XLA_FLAGS", "")
    found = re.findall(re.escape(DEVICE_FLAG) + r"=(\d+)", flags)
    return int(found[-1]) if found else None


def backend_started() -> bool:
    """Whether JAX has started its backends (XLA_FLAGS are read then, and only then)."""
    bridge = sys.modules.get("jax._src.xla_bridge")
    return bridge is not None and bridge.backends_are_initialized()


def split_cpu(n: int) -> bool:
    """Make JAX's CPU backend ``n`` devices, each running its programs on its own thread, and
    mark the split as snntrain's (:func:`cpu_split`), if ``n >= 2``, ``XLA_FLAGS`` does not
    set a device count already and JAX's backends have not started; returns whether it did.

    XLA:CPU runs one program's operations one after another (a small network's step keeps
    1.7 of 2 cores busy); a population whose members are spread over several CPU devices runs
    them side by side, each member's step exactly as on one device."""
    if n < 2 or device_count_flag() is not None or backend_started():
        return False
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""),
                                                     f"{DEVICE_FLAG}={n}"]))
    os.environ[SPLIT_MARK] = str(n)
    return True


WORKERS_MARK = "SNNTRAIN_WORKERS"  # the command line's choice of worker processes


def mark_workers(n: int) -> bool:
    """Let a population with ``trainer.population.workers=auto`` train in ``n`` worker
    processes, one core each (:mod:`snntrain.workers`; the command line's start-up, in place
    of :func:`split_cpu`), if ``n >= 2``, this OS can pin a process to a core and JAX will run
    on the CPU (:func:`cpu_backend_expected`)."""
    if n < 2 or not hasattr(os, "sched_setaffinity") or not cpu_backend_expected():
        return False
    os.environ[WORKERS_MARK] = str(n)
    return True


ACCELERATOR_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin",
                       "jax_rocm7_plugin", "libtpu")


def cpu_backend_expected() -> bool:
    """Whether JAX will train on the CPU, known before it starts: ``JAX_PLATFORMS`` says
    ``cpu``, or no GPU/TPU plugin is installed."""
    import importlib.util

    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms:
        return platforms.split(",")[0].strip() == "cpu"
    return not any(importlib.util.find_spec(m) is not None for m in ACCELERATOR_PLUGINS)


def marked_workers() -> int:
    """The worker processes :func:`mark_workers` chose for this process (or its parent), else 1."""
    mark = os.environ.get(WORKERS_MARK, "")
    return int(mark) if mark.isdigit() and int(mark) >= 1 else 1


def cpu_split() -> int:
    """How many CPU devices :func:`split_cpu` made for this process (or its parent), else 0;
    a solo run keeps to one of them, as it would without the split."""
    mark = os.environ.get(SPLIT_MARK, "")
    return int(mark) if mark.isdigit() and device_count_flag() == int(mark) else 0


# ---- what the machine is (printed by the benchmarks, recorded with golden runs) ----------


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU model name (``/proc/cpuinfo``) with its family and model numbers, else what
    ``platform`` knows. A virtual machine often names only the vendor's line ("AMD EPYC" for
    Zen 3, 4 and 5 alike), and the caches keyed by it (conv formulations, malloc policy) must
    not hand one generation's winner to another on a cluster's shared home directory."""
    try:
        text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        text = ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # (the first processor's)
            fields[key.strip()] = value.strip()
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine()
    if fields.get("cpu family") and fields.get("model"):
        return f"{name} (family {fields['cpu family']} model {fields['model']})"
    return name


SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16",
              "amx_tile", "asimd", "sve")


def cpu_flags() -> str:
    """The SIMD/matrix extensions of this CPU that XLA:CPU can use (from /proc/cpuinfo)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                have = set(line.split(":", 1)[1].split())
                return " ".join(f for f in SIMD_FLAGS if f in have)
    except OSError:
        pass
    return ""


def glibc_version() -> str:
    lib, version = platform.libc_ver()
    return f"{lib} {version}".strip()


def thp_mode() -> str:
    """The bracketed choice of ``/sys/kernel/mm/transparent_hugepage/enabled`` (or ``none``)."""
    try:
        text = THP_SETTING.read_text()
        return text[text.index("[") + 1:text.index("]")]
    except (OSError, ValueError):
        return "none"


# ---- Ctrl-C and SIGTERM on the command lines -------------------------------------------------


def signal_name(signum: int) -> str:
    return "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted (Ctrl-C)"


def stop_in_one_line(advice: str) -> Callable[..., None]:
    """A SIGINT/SIGTERM handler for a command line: ``snntrain: interrupted (Ctrl-C);
    <advice>`` (or ``terminated (SIGTERM)``) and status 128 + the signal at once. Raised as
    KeyboardInterrupt in imports, Hydra's callbacks, XLA's compiler or h5py, Ctrl-C left
    tracebacks, and SIGTERM (a SLURM pre-emption while the data is binned) ended the process
    without a word."""

    said: list[int] = []

    def stop(signum: int = signal.SIGINT, _frame: object = None) -> None:
        if said:  # a second signal while the first is said (a Ctrl-C, then the forwarded
            return  # SIGTERM of a population's parent): one line, then the first's status
        said.append(signum)
        print(f"snntrain: {signal_name(signum)}; {advice}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(128 + signum)

    return stop


def catch_stop_signals(handler: Callable[..., None]) -> None:
    """``handler`` for SIGINT and SIGTERM where each has its default: not an ignored SIGINT
    (a job a script started with ``&``), nor a handler someone else set."""
    for sig, default in ((signal.SIGINT, signal.default_int_handler),
                         (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(sig) is default:
            signal.signal(sig, handler)


# ---- a signal while the main thread is stuck outside Python ---------------------------------

# Set by the command lines (``python -m snntrain``, ``python -m snntrain.data prepare``), whose
# process a signal may end: never in a notebook, whose kernel must outlive an interrupt.
exit_when_stuck_enabled = False


_handled = [0]  # signals a handler that goes on (the training loop's) has taken


def signal_handled() -> None:
    """Called by a signal handler that lets the main thread go on (it saves and stops at the
    next step): :func:`exit_when_stuck` then leaves the process alone."""
    _handled[0] += 1


@contextlib.contextmanager
def exit_when_stuck(what: str, grace_s: float = 3.0) -> Iterator[None]:
    """While the main thread does ``what``: end the process in one line (as the command
    line's handler would) when a SIGINT or SIGTERM has not been taken ``grace_s`` seconds
    after it came: the main thread is stuck in C code (libhdf5 loops forever on some damaged
    files), where Python's handlers never run. A handler that lets the thread go on marks
    the signal taken (:func:`signal_handled`); one that exits or raises needs no mark.

    Python writes the number of each signal it has a handler for to the fd given to
    :func:`signal.set_wakeup_fd`, from C, whatever the main thread does; a thread reads it.
    Only with :data:`exit_when_stuck_enabled`, in the main thread, and when no one else (an
    asyncio loop) holds the wakeup fd."""
    if not exit_when_stuck_enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except ValueError:
        old = -2
    if old != -1:  # (someone else's: leave it)
        if old >= 0:
            signal.set_wakeup_fd(old)
        os.close(r)
        os.close(w)
        yield
        return
    done, received = threading.Event(), 0

    def watch() -> None:
        nonlocal received
        with contextlib.suppress(OSError):
            while data := os.read(r, 1):
                received += 1
                if not done.wait(grace_s) and _handled[0] < received + handled_before:
                    print(f"snntrain: {signal_name(data[0])} while {what}, which has not "
                          f"returned to Python in {grace_s:g} s (a damaged HDF5 file can make "
                          "libhdf5 loop forever: if this happens again, check the file with "
                          "h5dump or fetch it again); checkpoints written before it are kept",
                          file=sys.stderr, flush=True)
                    os._exit(128 + data[0])

    handled_before = _handled[0]
    thread = threading.Thread(target=watch, name="snntrain-exit-when-stuck", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(-1)
        os.close(w)  # (the reader sees EOF and ends)
        thread.join(1.0)
        os.close(r)


HOST = re.sub(r"[^A-Za-z0-9_-]", "_", platform.node()) or "host"


def process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this host (one of another user's counts as
    running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False
