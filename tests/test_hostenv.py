"""Huge-page malloc: the process restarts itself once with the glibc tunable, same PID."""

import os
import subprocess
import sys

import pytest

from snntrain import hostenv

CHILD = (
    "import os, sys\n"
    "print(os.getpid(), file=sys.stderr)\n"
    "from snntrain.hostenv import reexec_with_hugepages\n"
    "reexec_with_hugepages()\n"
    "print(os.getpid(), os.environ.get('GLIBC_TUNABLES', ''))\n"
)


def _run(env_changes: dict[str, str | None]) -> tuple[list[str], list[str]]:
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    env.pop(hostenv.ENV_SWITCH, None)
    for k, v in env_changes.items():
        if v is not None:
            env[k] = v
    res = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stderr.split(), res.stdout.split()


def test_with_hugepages_appends_the_tunable():
    assert hostenv.with_hugepages({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
    env = hostenv.with_hugepages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "A": "b"})
    assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "A": "b"}


@pytest.mark.skipif(not hostenv.hugepages_available(), reason="no glibc >= 2.35 with THP here")
def test_reexec_restarts_once_with_the_tunable_and_keeps_the_pid():
    before, (pid, tunables) = _run({})
    assert before == [pid, pid]  # started twice (printed twice before the exec), one PID
    assert tunables == "glibc.malloc.hugetlb=1"


def test_reexec_is_off_with_the_switch_or_when_the_tunable_is_set():
    before, (pid, *tunables) = _run({hostenv.ENV_SWITCH: "0"})
    assert before == [pid] and tunables == []
    before, (pid, tunables) = _run({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})
    assert before == [pid] and tunables == "glibc.malloc.hugetlb=0"


@pytest.mark.parametrize(
    ("argv0", "cli"),
    [
        ("/venv/lib/python3.11/site-packages/snntrain/__main__.py", True),  # python -m snntrain
        ("/venv/bin/snntrain", True),  # the console script
        ("/venv/lib/python3.11/site-packages/ipykernel_launcher.py", False),  # a notebook
        ("/somewhere/else/__main__.py", False),
        ("", False),  # python -c / an embedded interpreter
    ],
)
def test_only_the_command_line_entry_restarts_its_process(monkeypatch, argv0, cli):
    from snntrain import __main__ as entry

    monkeypatch.setattr(sys, "argv", [argv0])
    assert entry.started_from_the_command_line() == cli


FAULTS_CHILD = (
    "import ctypes, resource\n"
    "libc = ctypes.CDLL('libc.so.6')\n"
    "libc.malloc.restype = ctypes.c_void_p\n"
    "libc.free.argtypes = [ctypes.c_void_p]\n"
    "n = 64 << 20\n"
    "def touch():\n"
    "    p = libc.malloc(n)\n"
    "    ctypes.memset(p, 1, n)\n"
    "    libc.free(p)\n"
    "touch()\n"
    "f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
    "touch()\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)\n"
)


@pytest.mark.skipif(hostenv._libc() is None, reason="glibc only")
def test_heap_tunables_keep_a_freed_block_mapped_for_the_next_one():
    """A process started with ``tunables_for("heap")`` reuses a freed 64 MiB block without
    faulting it in again (0 faults, 4 KiB pages: 16,384 without the tunables, where glibc
    maps and unmaps the block each time)."""
    def faults(tunables: str) -> int:
        env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
        if tunables:
            env["GLIBC_TUNABLES"] = tunables
        res = subprocess.run([sys.executable, "-c", FAULTS_CHILD], env=env,
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return int(res.stdout)

    assert hostenv.tunables_for("default") == ""
    assert hostenv.tunables_for("hugepages") == "glibc.malloc.hugetlb=1"
    assert faults(hostenv.tunables_for("heap")) < 100
    assert faults("") > (64 << 20) // 4096 // 2


_STUCK = """
import signal, sys, time
from snntrain import hostenv
hostenv.exit_when_stuck_enabled = {enabled}
signal.signal(signal.SIGTERM, {handler})
with hostenv.exit_when_stuck("reading some.h5", grace_s=0.5):
    print("ready", flush=True)
    end = time.monotonic() + 4
    while time.monotonic() < end:  # (a handler that does not take the signal: as if stuck)
        pass
print("finished", flush=True)
"""


@pytest.mark.parametrize(("enabled", "handler", "ends"), [
    (True, "lambda *a: None", True),  # the handler never took it: as if the thread were stuck
    (True, "lambda *a: hostenv.signal_handled()", False),  # the training loop's: it goes on
    (False, "lambda *a: None", False),  # not a command line (a notebook): never
])
def test_a_signal_no_handler_takes_ends_the_process_in_one_line(enabled, handler, ends):
    """A damaged HDF5 file made libhdf5 loop forever in the main thread while binning, where
    Python's signal handlers never ran: SIGTERM and Ctrl-C did nothing (kill -9 only)."""
    p = subprocess.Popen([sys.executable, "-c", _STUCK.format(enabled=enabled, handler=handler)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(15)
    out, err = p.communicate(timeout=60)
    if ends:
        assert p.returncode == 143 and "finished" not in out
        assert err == ("snntrain: terminated (SIGTERM) while reading some.h5, which has not "
                       "returned to Python in 0.5 s (a damaged HDF5 file can make libhdf5 "
                       "loop forever: if this happens again, check the file with h5dump or "
                       "fetch it again); checkpoints written before it are kept\n")
    else:
        assert p.returncode == 0 and out == "finished\n" and err == "", (p.returncode, err)


def test_an_ignored_sigint_stays_ignored_in_the_training_loop_and_the_command_lines():
    """A run a script starts with ``&`` ignores SIGINT (the terminal's Ctrl-C is not for
    it): the command lines' handlers left it alone, but the training loop's replaced it while
    it trained, so a Ctrl-C meant for the foreground job stopped the background run. SIGTERM
    is taken by both."""
    import signal

    from snntrain.lifecycle import Signals

    old = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with Signals() as s:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == s._handle
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        stop = hostenv.stop_in_one_line("advice")
        hostenv.catch_stop_signals(stop)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is stop
        signal.signal(signal.SIGINT, signal.default_int_handler)  # (a terminal's run)
        with Signals() as s:
            assert signal.getsignal(signal.SIGINT) == s._handle
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])


@pytest.mark.parametrize("signum, said", [(2, "interrupted (Ctrl-C)"),
                                          (15, "terminated (SIGTERM)")])
def test_the_command_lines_stop_in_one_line_with_128_plus_the_signal(signum, said):
    code = ("from snntrain import hostenv\n"
            f"hostenv.stop_in_one_line('rerun it')({signum})\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 128 + signum
    assert res.stderr == f"snntrain: {said}; rerun it\n"


def test_usable_cores_are_the_affinity_at_most_the_cgroup_quota(tmp_path, monkeypatch):
    """A container's CPU quota (cgroup v2 ``cpu.max``) caps the cores: ``docker --cpus=2`` on
    a 64-core host split the CPU into (and would start workers for) 64."""
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    monkeypatch.setattr(hostenv, "CGROUP_CPU_MAX", str(cpu_max))
    assert hostenv.usable_cores() == affinity  # (no file: the affinity)
    for text, want in (("max 100000\n", affinity), ("150000 100000\n", min(affinity, 2)),
                       ("50000 100000\n", 1), ("garbage\n", affinity)):
        cpu_max.write_text(text)
        assert hostenv.usable_cores() == want, text
