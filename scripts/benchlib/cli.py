"""Argument types shared by the benchmark scripts: a bad value is argparse's one-line error
(``bench.py: error: argument --sections: unknown 'bogus'; valid: ...``), not a traceback or a
silently skipped section."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from snntrain import hostenv
from snntrain.errors import ConfigError


def prepare_malloc() -> str:
    """:func:`snntrain.hostenv.prepare`, as the CLI runs it at start-up; a bad
    ``SNNTRAIN_MALLOC`` or ``SNNTRAIN_HUGEPAGES`` is one line and status 2 (a traceback)."""
    try:
        return hostenv.prepare()
    except ConfigError as e:
        print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def subset(valid: Sequence[str]) -> Callable[[str], list[str]]:
    """A comma-separated subset of ``valid``, in the order given."""
    def parse(text: str) -> list[str]:
        names = [n for n in text.split(",") if n]
        unknown = [n for n in names if n not in valid]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(map(repr, unknown)) or 'empty list'}; valid: "
                f"a comma-separated subset of {','.join(valid)}")
        return names

    return parse


def positive_ints(text: str) -> list[int]:
    """Comma-separated integers >= 1 (population sizes)."""
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be comma-separated integers >= 1")
    return values


def positive_int(text: str) -> int:
    """An integer >= 1 (rounds, steps: 0 divided by zero or printed empty tables)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be an integer >= 1")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds: 0 or -1 timed 5 calls and printed a meaningless ratio)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number > 0")
    return value


def json_path(text: str) -> Path:
    """A file to write the results to, whose directory exists (checked before the run: a
    missing one was a traceback at the end, the whole run lost)."""
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: directory {path.parent} does not exist")
    if path.is_dir():  # (an IsADirectoryError after the whole run)
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file name")
    return path


def executable(text: str) -> str:
    """A program that can be run (--peer-python: a missing one was a traceback after the
    snntrain steps had compiled)."""
    import os
    import shutil

    found = shutil.which(text) or (text if os.access(text, os.X_OK) else None)
    if not found:
        raise argparse.ArgumentTypeError(f"{text}: no such executable")
    return text
