"""The one exception every layer raises for a configuration that cannot work, and the test
of a number every layer's checks share.

The lowest module of the package (it imports nothing of snntrain), so that the config, the
registry and every group's builders can raise it without importing each other.
"""

import math
import re
import sys
from typing import Any


def shortened(text: str) -> str:
    """``text`` with each run of more than 24 digits cut to its first 12 and its length: a
    value of 10**400 filled the one-line error with 401 digits."""
    return re.sub(r"\d{25,}", lambda m: f"{m.group()[:12]}...({len(m.group())} digits)", text)


def finite_float64(v: Any) -> bool:
    """A real number (not a bool) that float64 holds: finite (an int beyond float64,
    10**400, raised OverflowError in math.isfinite: a traceback)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and (
        abs(v) <= sys.float_info.max if isinstance(v, int) else math.isfinite(v))


class ConfigError(ValueError):
    """A configuration value that cannot work (reported in one line; exit status 2)."""


class Refused(Exception):  # noqa: N818 - a marker mixed into the errors that refuse an attempt
    """Mixed into an error that refuses an attempt on a run directory another attempt owns
    (a live run holds it, or its checkpoints are from other settings): the attempt records
    nothing there (no ``summary.json``), and Hydra's ``.hydra/`` files, which Hydra rewrote
    before the attempt started, are put back as they were
    (:func:`snntrain.rundir.restore_hydra_files`)."""


class RefusedConfig(ConfigError, Refused):
    """A configuration refused on a run directory an earlier attempt owns."""
