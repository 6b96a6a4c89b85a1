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
