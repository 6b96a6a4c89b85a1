"""Pick the fastest of several exact formulations on the machine a run is on, once.

:func:`fastest` times each candidate (compiled, forward and backward) on the run's real shapes
for a fraction of a second, keeps the winner, and remembers it per device kind (on a CPU: its
model and core count), JAX version and shapes in ``$SNNTRAIN_CACHE_DIR`` (default
``~/.cache/snntrain``) ``/autotune.json``, so a later run on the same machine and shapes pays
nothing. The choice is logged once per process.
``SNNTRAIN_AUTOTUNE=0`` turns timing off (each caller then uses its own fixed rule). A corrupt
cache file is ignored, with a message, and replaced by the next choice cached.

The candidates must compute the same values (tests check every formulation the tuner may pick
against a reference); only their speed may differ.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from snntrain import hostenv

ENV_SWITCH = "SNNTRAIN_AUTOTUNE"
_memory: dict[str, str] = {}
_said: set[str] = set()  # unreadable caches already reported
# A run's choices, keyed by what and shapes only (not the device): the ones this process made
# (saved with each checkpoint) and the ones a resumed run made before (used instead of timing:
# the formulations round differently, and a resume that chose another one on another node, a
# cleared cache or SNNTRAIN_AUTOTUNE=0 was not the run it continued).
_chosen: dict[str, str] = {}
_pinned: dict[str, str] = {}


def run_key(what: str, shapes: Sequence[Any]) -> str:
    return json.dumps([what, [list(s) if isinstance(s, tuple) else s for s in shapes]])


def record(what: str, shapes: Sequence[Any], choice: str) -> str:
    """Note ``choice`` as this run's for ``what`` at ``shapes``; returns it."""
    _chosen[run_key(what, shapes)] = choice
    return choice


def pinned(what: str, shapes: Sequence[Any]) -> str | None:
    """The choice the run being resumed made for ``what`` at ``shapes`` (None: none)."""
    return _pinned.get(run_key(what, shapes))


def choices() -> dict[str, str]:
    """The choices made in this process (a checkpoint's ``autotune`` meta)."""
    return dict(_chosen)


def pin(recorded: Any) -> None:
    """Use ``recorded`` (a resumed checkpoint's :func:`choices`; None for a fresh start)
    instead of timing or rules from now on in this process."""
    _pinned.clear()
    if isinstance(recorded, dict):
        _pinned.update({k: v for k, v in recorded.items()
                        if isinstance(k, str) and isinstance(v, str)})


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip() != "0"


def check_switch() -> None:
    """Refuse a value of ``SNNTRAIN_AUTOTUNE`` other than 1 or 0 (``false`` or ``off`` left
    the timing on without a word)."""
    from snntrain.errors import ConfigError

    value = os.environ.get(ENV_SWITCH, "").strip()
    if value not in ("", "0", "1"):
        raise ConfigError(f"{ENV_SWITCH}={value!r} is not 1 or 0 (0 turns off the start-up "
                          "timing of formulations and malloc policies)")


def cache_path() -> Path:
    root = os.environ.get("SNNTRAIN_CACHE_DIR") or Path.home() / ".cache" / "snntrain"
    return Path(root) / "autotune.json"


def load_cache(path: Path, quiet: bool = False) -> dict[str, Any]:
    try:
        table = json.loads(path.read_text())
        if not isinstance(table, dict):
            raise ValueError("not a JSON object")
        return table
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        said = f"{path} {e}"  # once per process: start-up and the trial both read it
        if not quiet and said not in _said:
            _said.add(said)
            print(f"snntrain: ignoring the unreadable autotune cache {path} ({e}); the next "
                  "choice to be cached replaces it", file=sys.stderr)
        return {}


def store_cache(path: Path, key: str, entry: dict[str, Any]) -> str:
    """Record ``entry`` under ``key``; the words for the tuning line: ``cached in <path>``, or
    why not (a read-only home: tune again next time; it said "cached in" all the same)."""
    try:
        table = load_cache(path, quiet=True)  # (said when it was read for the lookup)
        table[key] = entry
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError as e:
        return f"not cached: {path} cannot be written ({e.strerror or type(e).__name__})"
    return f"cached in {path}"


def cache_key(what: str, shapes: Sequence[Any]) -> str:
    """The cache's key: device, JAX version, what is tuned and its shapes. On a CPU the device
    kind is just ``cpu``, so the CPU model and the core count stand in for it: a home directory
    shared by a cluster's mixed nodes must not hand one node's winner to another."""
    device = jax.devices()[0]
    kind = device.device_kind
    if device.platform == "cpu":
        kind = f"{hostenv.cpu_model()} x{os.cpu_count()}"
    return f"{device.platform}:{kind}|jax {jax.__version__}|{what}|{shapes}"


def _time(fn: Callable, args: tuple, budget_s: float, max_runs: int = 50) -> float:
    """Best wall time of ``fn(*args)`` after a first (compiling) call: at least 3 runs, more
    while within ``budget_s``."""
    jax.block_until_ready(fn(*args))
    best, spent, runs = float("inf"), 0.0, 0
    while runs < 3 or (spent < budget_s and runs < max_runs):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        dt = time.perf_counter() - t0
        best, spent, runs = min(best, dt), spent + dt, runs + 1
    return best


def fastest(what: str, shapes: Sequence[Any], candidates: dict[str, Callable],
            make_args: Callable[[], tuple], budget_s: float = 0.3) -> str:
    """The name of the fastest candidate ``fn(*args) -> array`` (timed as value and gradient
    of its sum with respect to every argument), cached as described in the module doc."""
    if (earlier := pinned(what, shapes)) in candidates:
        return record(what, shapes, earlier)
    key = cache_key(what, shapes)
    if key in _memory:
        return record(what, shapes, _memory[key])
    path = cache_path()
    entry = load_cache(path).get(key)
    if isinstance(entry, dict) and entry.get("choice") in candidates:
        _memory[key] = entry["choice"]
        return record(what, shapes, entry["choice"])
    with jax.ensure_compile_time_eval():
        args = make_args()
        times, failed = {}, None
        for name, fn in candidates.items():
            grad = jax.jit(jax.value_and_grad(lambda *a, f=fn: jnp.sum(f(*a)),
                                              argnums=tuple(range(len(args)))))
            try:
                times[name] = _time(grad, args, budget_s)
            except Exception as e:  # noqa: BLE001 - e.g. out of memory: not a candidate here
                failed = e
                continue
    if not times:  # every candidate failed alike (e.g. the input's shape): the real error
        raise failed if failed is not None else ValueError(f"autotune {what}: no candidates")
    choice = min(times, key=times.get)
    _memory[key] = choice
    cached = store_cache(path, key, {"choice": choice,
                                     "ms": {k: round(v * 1e3, 3) for k, v in times.items()}})
    print(f"snntrain: autotune {what} {shapes}: {choice} ("
          + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in sorted(times.items(), key=lambda x: x[1]))
          + f"; {cached})", file=sys.stderr)
    return record(what, shapes, choice)


def random_args(*shapes_dtypes: tuple[tuple[int, ...], Any], seed: int = 0) -> tuple:
    """Concrete random arrays of the given shapes and dtypes (0/1 spikes for ``bool``)."""
    rng = np.random.default_rng(seed)
    out = []
    for shape, dtype in shapes_dtypes:
        out.append(jnp.asarray(rng.standard_normal(shape), dtype))
    return tuple(out)
