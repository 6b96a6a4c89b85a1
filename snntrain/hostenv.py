"""Process set-up that must happen before JAX starts: glibc's malloc on huge pages.

XLA:CPU allocates its large temporaries afresh at every training step (tens of MiB for a
convnet), glibc hands such blocks out with ``mmap`` and returns them with ``munmap``, so every
step page-faults its working set in again, 4 KiB at a time. With the glibc tunable
``glibc.malloc.hugetlb=1`` (glibc >= 2.35) malloc asks for transparent huge pages (2 MiB), and
those faults become 512x rarer: the benchmark's CONV training step ran 1.05-1.4x faster, the MLP
step about the same (``scripts/bench.py``, huge-page section).

Tunables are read once, when the process starts, so :func:`reexec_with_hugepages` restarts the
process (``os.execv``: same PID, same arguments) with the tunable added. It does nothing when
the tunable is already set, off Linux, on glibc < 2.35, when transparent huge pages are
disabled (``/sys/kernel/mm/transparent_hugepage/enabled`` says ``[never]``), or when
``SNNTRAIN_HUGEPAGES=0``.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

TUNABLE = "glibc.malloc.hugetlb"
ENV_SWITCH = "SNNTRAIN_HUGEPAGES"
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


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
    try:
        return "[never]" not in THP_SETTING.read_text()
    except OSError:
        return False


def with_hugepages(env: dict[str, str]) -> dict[str, str]:
    """A copy of ``env`` with ``glibc.malloc.hugetlb=1`` added to ``GLIBC_TUNABLES``."""
    env = dict(env)
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), f"{TUNABLE}=1"]))
    return env


def reexec_with_hugepages() -> None:
    """Restart this process with huge-page malloc, if it is off and available (see above).

    Call it first thing in an entry point, before anything heavy is imported or any file is
    written: the process image is replaced and starts over.
    """
    if os.environ.get(ENV_SWITCH, "1") == "0" or TUNABLE in os.environ.get("GLIBC_TUNABLES", ""):
        return
    if not hugepages_available():
        return
    env = with_hugepages(os.environ)
    env[ENV_SWITCH] = "0"  # never loop, whatever the tunable string looks like afterwards
    argv = list(getattr(sys, "orig_argv", [])) or [sys.executable, *sys.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv[1:]], env)


# ---- what the machine is (printed by the benchmarks, recorded with golden runs) ----------


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
