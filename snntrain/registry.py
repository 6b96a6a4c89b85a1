"""Name → class lookup shared by every config group (neurons, encoders, models, ...)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any


def build(table: dict[str, type], kind: str, params: dict[str, Any], what: str) -> Any:
    """Instantiate ``table[kind](**params)`` with one-line errors for bad names and parameters.

    Raises:
      ValueError: ``kind`` is not in ``table`` (lists the valid names), or a parameter is not
        accepted by the class (names it and lists the valid ones).
    """
    if kind not in table:
        raise ValueError(f"unknown {what} {kind!r}; valid: {', '.join(sorted(table))}")
    cls = table[kind]
    if dataclasses.is_dataclass(cls):
        valid = {f.name for f in dataclasses.fields(cls) if f.init}
    else:
        valid = set(inspect.signature(cls.__init__).parameters) - {"self"}
    bad = sorted(set(params) - valid)
    if bad:
        raise ValueError(
            f"{what} {kind!r} takes no parameter {bad[0]!r}; valid: {', '.join(sorted(valid))}"
        )
    return cls(**params)
