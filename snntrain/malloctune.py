"""Choose glibc's malloc policy for a run by timing its own first training steps, once.

With ``SNNTRAIN_MALLOC=auto`` (the default; :mod:`snntrain.hostenv`), :class:`MallocTrial`
runs the first steps after compilation in windows alternating ``default`` (glibc as it is) and
``heap`` (freed blocks kept mapped: :func:`snntrain.hostenv.use_heap`), ``ROUNDS`` windows
each: one untimed step after each switch, then ``k`` timed steps (each blocked on), ``k`` such
that a window lasts about ``WINDOW_S`` (2 to 20 steps). The winner is the policy with the lower
median step time; it stays on for the rest of the run and is cached in the autotune cache
(:func:`snntrain.autotune.cache_path`) under the device, the JAX version, the machine (CPU
model and SIMD flags, glibc, transparent-huge-page mode) and the step (parameter and batch
shapes, T, model, encoder, remat, dtype), so later runs apply it without timing. The trial
steps are the run's own steps (values are the same under either policy), so the first run
costs only the lost overlap of the blocked steps. The choice is logged once, in one line.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax

from snntrain import autotune, hostenv

CANDIDATES = ("default", "heap")
ROUNDS = 2
WINDOW_S = 0.1
MIN_STEPS, MAX_STEPS = 2, 20


def machine() -> str:
    """What besides the device decides the winner: CPU, glibc and huge-page mode."""
    return (f"{hostenv.cpu_model()}; {hostenv.cpu_flags()}; {hostenv.glibc_version()}; "
            f"thp {hostenv.thp_mode()}")


def step_signature(params: Any, batch: Any, settings: dict[str, Any]) -> str:
    """A short stable name for the step's shapes: leaf shapes/dtypes of ``params`` and
    ``batch`` plus the ``settings`` that size its temporaries (T, model, ...), hashed."""
    leaves = [(tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves((params, batch))]
    text = repr((leaves, sorted(settings.items())))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def key(signature: str) -> str:
    return autotune.cache_key("malloc", [machine(), signature])


def choose(times_s: dict[str, list[float]]) -> str:
    """The candidate with the lowest median time (ties: the first, ``default``)."""
    return min(times_s, key=lambda c: (statistics.median(times_s[c]), CANDIDATES.index(c)))


def cached(cache_key: str) -> str | None:
    entry = autotune.load_cache(autotune.cache_path()).get(cache_key)
    if isinstance(entry, dict) and entry.get("choice") in CANDIDATES:
        return entry["choice"]
    return None


class MallocTrial:
    """Times ``default`` against ``heap`` on the steps given to :meth:`step` (see module doc).

    ``timer`` and ``set_heap`` are injectable for tests; ``done`` turns true once chosen.
    """

    def __init__(self, cache_key: str, timer: Callable[[], float] = time.perf_counter,
                 set_heap: Callable[[bool], Any] = hostenv.use_heap,
                 say: Callable[[str], None] | None = None, cache: bool = True):
        self.cache_key, self.timer, self.set_heap = cache_key, timer, set_heap
        self.cache = cache
        self.say = say or (lambda m: print(m, file=sys.stderr, flush=True))
        self.times: dict[str, list[float]] = {c: [] for c in CANDIDATES}
        self.window, self.in_window, self.k = 0, 0, 0
        self.current, self.choice = "default", None

    @property
    def done(self) -> bool:
        return self.choice is not None

    def _switch(self, policy: str) -> None:
        if policy != self.current:
            self.set_heap(policy == "heap")
            self.current = policy

    def step(self, run: Callable[[], Any]) -> Any:
        """Run one step (``run()`` returns its outputs), timing it while the trial lasts."""
        if self.done:
            return run()
        policy = CANDIDATES[self.window % len(CANDIDATES)]
        self._switch(policy)
        t0 = self.timer()
        out = run()
        jax.block_until_ready(out)
        dt = self.timer() - t0
        if self.in_window == 0:  # the step after a switch pays the switch: untimed
            if self.k == 0:
                self.k = min(MAX_STEPS, max(MIN_STEPS, math.ceil(WINDOW_S / max(dt, 1e-9))))
        else:
            self.times[policy].append(dt)
        self.in_window += 1
        if self.in_window > self.k:
            self.window, self.in_window = self.window + 1, 0
            if self.window == ROUNDS * len(CANDIDATES):
                self._finish()
        return out

    def medians_ms(self) -> dict[str, float]:
        return {c: round(statistics.median(v) * 1e3, 3) for c, v in self.times.items() if v}

    def _finish(self) -> None:
        self.choice = choose(self.times)
        self._switch(self.choice)
        ms, path = self.medians_ms(), autotune.cache_path()
        if self.cache:
            autotune.store_cache(path, self.cache_key, {"choice": self.choice, "ms": ms})
        self.say(f"snntrain: autotune malloc: {self.choice} (median step "
                 + ", ".join(f"{c} {v:.2f} ms" for c, v in sorted(ms.items(), key=lambda x: x[1]))
                 + (f"; cached in {path})" if self.cache else ")"))


def for_run(signature: str, say: Callable[[str], None] | None = None) -> MallocTrial | None:
    """The trial a run's step loop should drive, or None: a forced ``SNNTRAIN_MALLOC`` (applied
    at start-up by :func:`snntrain.hostenv.prepare`), or a cached choice, applied here."""
    if hostenv.malloc_mode() != "auto":
        return None
    k = key(signature)
    choice = cached(k)
    if choice is not None:
        if choice == "heap":  # "default": leave glibc's own (adaptive) settings untouched
            hostenv.use_heap(True)
        return None
    return MallocTrial(k, say=say)
