"""Argument types shared by the benchmark scripts: a bad value is argparse's one-line error
(``bench.py: error: argument --sections: unknown 'bogus'; valid: ...``), not a traceback or a
silently skipped section."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence


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
