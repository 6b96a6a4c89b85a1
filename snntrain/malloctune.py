"""Choose glibc's malloc policy for a run by timing its own first training steps, once.

With ``SNNTRAIN_MALLOC=auto`` (the default; :mod:`snntrain.hostenv`), :class:`MallocTrial`
runs the first steps after compilation in windows alternating ``default`` (glibc as it is) and
``heap`` (freed blocks kept mapped: :func:`snntrain.hostenv.use_heap`), ``ROUNDS`` windows
each: one untimed step after each switch, then ``k`` timed steps (each blocked on), ``k`` such
that a window lasts about ``WINDOW_S`` (2 to 20 steps). The winner is the policy with the lower
median step time, where ``heap`` must be 10% faster and ``default`` must page-fault at least
``MIN_FAULTS`` times per step (``ru_minflt``: 4 MiB of 4 KiB pages mapped in again each step),
so that a step whose blocks glibc already keeps is never switched on timing noise or on the
trial's single arena alone (:func:`choose`); it stays on for the rest of
the run and is cached in the autotune cache (:func:`snntrain.autotune.cache_path`) under the
JAX platform and version, the machine (CPU model and SIMD flags, glibc, transparent-huge-page
mode) and the step (:func:`config_signature`: T, model, encoder, dataset, batch size, ...), so
later runs apply it at start-up (:func:`prepare_run`, before JAX's threads) without timing.
The trial steps are the run's own steps (values are the same under either policy), so the first run
costs only the lost overlap of the blocked steps. The choice is logged once, in one line.
``SNNTRAIN_AUTOTUNE=0`` turns the trial off (glibc's default stays).

Which loops run it: the per-step loop of a solo run (:class:`snntrain.train.StepRunner`) and
of a population (:class:`snntrain.population.GroupRunner`: one trial step is the whole
population step, every program of the group once), both on their first steps after
compilation; a population's key adds what fixes its step
(:func:`snntrain.population.malloc_signature`), so it never shares the solo run's choice. A run
that ends before the trial has its ``4 (k + 1)`` steps caches nothing (the next run tries
again). ``trainer.fused_epoch=true`` runs no trial and keeps glibc's default unless
``SNNTRAIN_MALLOC`` forces a policy: its loop is one compiled call per epoch, so a trial of
four windows would cost four whole epochs with blocked, serial timing, and a policy chosen
for the per-step loop is a different program's (not shared: ``trainer.fused_epoch`` is in
:data:`STEP_KEYS`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import jax

from snntrain import autotune, hostenv

CANDIDATES = ("default", "heap")
MARGIN = 0.1
MIN_FAULTS = 1024  # minor page faults per step under ``default`` for ``heap`` to be eligible
# faults per step (64 MiB mapped in again) above which heap's lead is the faults it removes,
# so a small lead is enough (HEAVY_MARGIN); the CONV workload ~60,000, MLP-1024 ~20,000
HEAVY_FAULTS, HEAVY_MARGIN = 16384, 0.02
ROUNDS = 2
WINDOW_S = 0.1
MIN_STEPS, MAX_STEPS = 2, 20
# config keys that fix the step's parameter, batch and temporary shapes
STEP_KEYS = ("T", "model", "encoder", "dataset", "loss", "metrics", "trainer.batch_size",
             "trainer.remat", "trainer.dtype", "trainer.parallel", "trainer.devices",
             "trainer.fused_epoch")


def machine() -> str:
    """What besides the device decides the winner: CPU, glibc and huge-page mode."""
    return (f"{hostenv.cpu_model()}; {hostenv.cpu_flags()}; {hostenv.glibc_version()}; "
            f"thp {hostenv.thp_mode()}")


def config_signature(cfg: Any, population: Any = None) -> str:
    """A short stable name for the training step a config makes: its :data:`STEP_KEYS`
    (which fix the parameter, batch and temporary shapes), hashed; for a population also
    ``("trainer.population", population)``, what fixes its step
    (:func:`snntrain.population.malloc_signature` passes it), so a solo config keeps the
    signature it always had. Needs no JAX, so the start-up can look the choice up before JAX
    starts its threads."""
    from omegaconf import OmegaConf

    parts: list[tuple[str, Any]] = []
    for k in STEP_KEYS:
        try:
            v = OmegaConf.select(cfg, k, throw_on_missing=True)
            v = OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        except Exception:  # noqa: BLE001 - unresolvable here: its text still names the step
            v = str(OmegaConf.select(cfg, k))
        parts.append((k, v))
    if population is not None:
        parts.append(("trainer.population", population))
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def key(signature: str) -> str:
    """The cache key: platform, JAX version, machine, the CPU's device count (``XLA_FLAGS``:
    a population's members side by side on a split CPU) and step (no JAX call: see above)."""
    platform = os.environ.get("JAX_PLATFORMS") or "default"
    devices = hostenv.device_count_flag() or 1
    return f"{platform}|jax {version('jax')}|malloc|{machine()}|cpu devices {devices}|{signature}"


def choose(times_s: dict[str, list[float]], faults: dict[str, list[int]] | None = None,
           margin: float = MARGIN) -> str:
    """``heap`` if its median step time is below ``(1 - margin)`` x ``default``'s and
    ``default``'s median minor page faults per step (``faults``; None: not counted) reach
    :data:`MIN_FAULTS`, else ``default``. The trial's ``default`` shares ``heap``'s single
    arena, which costs small steps with two threads 10-20% against glibc's own default that a
    later run then gets (digits, stop 24): without the faults that ``heap`` removes, its lead
    is that cost, not a gain. Where ``default`` faults :data:`HEAVY_FAULTS` times per step
    or more, ``heap`` needs only a :data:`HEAVY_MARGIN` lead: the faults are then most of the
    difference (a CONV trial on Zen 5 measured heap 8% ahead, 157 against 171 ms, kept
    ``default``, and trained at 0.6x the heap's steady 135 ms)."""
    heap, default = statistics.median(times_s["heap"]), statistics.median(times_s["default"])
    n_faults = math.inf if faults is None else statistics.median(faults["default"])
    if n_faults >= HEAVY_FAULTS and faults is not None:
        margin = min(margin, HEAVY_MARGIN)
    return "heap" if heap < (1.0 - margin) * default and n_faults >= MIN_FAULTS else "default"


def minor_faults() -> int:
    """This process's minor page faults so far (all threads: ``getrusage`` ``ru_minflt``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def cached(cache_key: str) -> str | None:
    entry = autotune.load_cache(autotune.cache_path()).get(cache_key)
    if isinstance(entry, dict) and entry.get("choice") in CANDIDATES:
        return entry["choice"]
    return None


class MallocTrial:
    """Times ``default`` against ``heap`` on the steps given to :meth:`step` (see module doc).

    ``timer``, ``faults`` and ``set_heap`` are injectable for tests; ``done`` turns true once
    chosen.
    """

    def __init__(self, cache_key: str, timer: Callable[[], float] = time.perf_counter,
                 set_heap: Callable[[bool], Any] = hostenv.use_heap,
                 say: Callable[[str], None] | None = None, cache: bool = True,
                 faults: Callable[[], int] = minor_faults):
        self.cache_key, self.timer, self.set_heap = cache_key, timer, set_heap
        self.count_faults = faults
        self.faults: dict[str, list[int]] = {c: [] for c in CANDIDATES}
        self.cache = cache
        self.say = say or (lambda m: print(m, file=sys.stderr, flush=True))
        self.times: dict[str, list[float]] = {c: [] for c in CANDIDATES}
        self.window, self.in_window, self.k = 0, 0, 0
        self.current, self.choice = "", None  # "": set on the first step, even to default

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
        f0, t0 = self.count_faults(), self.timer()
        out = run()
        jax.block_until_ready(out)
        dt, df = self.timer() - t0, self.count_faults() - f0
        if self.in_window == 0:  # the step after a switch pays the switch: untimed
            if self.k == 0:
                self.k = min(MAX_STEPS, max(MIN_STEPS, math.ceil(WINDOW_S / max(dt, 1e-9))))
        else:
            self.times[policy].append(dt)
            self.faults[policy].append(df)
        self.in_window += 1
        if self.in_window > self.k:
            self.window, self.in_window = self.window + 1, 0
            if self.window == ROUNDS * len(CANDIDATES):
                self._finish()
        return out

    def medians_ms(self) -> dict[str, float]:
        return {c: round(statistics.median(v) * 1e3, 3) for c, v in self.times.items() if v}

    def _finish(self) -> None:
        self.choice = choose(self.times, self.faults)
        self._switch(self.choice)
        ms, path = self.medians_ms(), autotune.cache_path()
        faults = {c: int(statistics.median(v)) for c, v in self.faults.items() if v}
        cached = autotune.store_cache(path, self.cache_key, {
            "choice": self.choice, "ms": ms, "faults": faults}) if self.cache else ""
        self.say(f"snntrain: autotune malloc: {self.choice} (median step "
                 + ", ".join(f"{c} {v:.2f} ms" for c, v in sorted(ms.items(), key=lambda x: x[1]))
                 + f"; page faults per step default {faults.get('default', 0)}, heap "
                 + f"{faults.get('heap', 0)}"
                 + (f"; heap is faster here only by the trial's shared arena: default kept, "
                    f"as under {MIN_FAULTS} page faults per step"
                    if self.choice == "default" and ms.get("heap", math.inf) < ms.get(
                        "default", 0.0) * (1.0 - MARGIN) else "")
                 + (f"; {cached})" if cached else ")"))


def trial_on(run: Callable[[], Any]) -> MallocTrial:
    """A silent, uncached trial driven to its choice on calls of ``run`` (one training step
    each), whose winner stays on: benchmarks time a step under the policy a run would choose."""
    trial = MallocTrial("bench", say=lambda _m: None, cache=False)
    while not trial.done:
        trial.step(run)
    return trial


def run_step(trial: MallocTrial | None, run: Callable[[], Any]
             ) -> tuple[Any, MallocTrial | None]:
    """One step of a training loop under ``trial`` (None: just ``run()``): its outputs, and
    the trial to pass to the next step, None once it has chosen (the remaining steps then
    run as before the trial, without a wrapper)."""
    if trial is None:
        return run(), None
    out = trial.step(run)
    return out, None if trial.done else trial


def prepare_run(cfg: Any, signature: str) -> str:
    """Start-up (before JAX starts its threads): the policy for this run's config.

    A forced ``SNNTRAIN_MALLOC`` is applied as such (:func:`snntrain.hostenv.prepare`). For
    ``auto``: a cached ``heap`` is applied as ``heap``, a cached ``default`` leaves glibc
    untouched, and without a cached choice the single arena is set up so that the run can
    time both (:class:`MallocTrial`). Returns what was applied.
    """
    mode = hostenv.malloc_mode()
    if mode == "auto":
        if not autotune.enabled():
            return "default"
        mode = cached(key(signature)) or ("auto" if trials(cfg) else "default")
    return hostenv.prepare(mode)


def trials(cfg: Any) -> bool:
    """Whether the run's loop runs :class:`MallocTrial`: the per-step loop of a solo run or
    of a population (not ``trainer.fused_epoch``: see the module doc), so a trial's single
    arena is never set up for a run that would not time and switch it."""
    from omegaconf import OmegaConf

    return not OmegaConf.select(cfg, "trainer.fused_epoch", default=False)


def for_run(signature: str, say: Callable[[str], None] | None = None) -> MallocTrial | None:
    """The trial a run's step loop should drive, or None: a forced ``SNNTRAIN_MALLOC`` (applied
    at start-up by :func:`prepare_run`), ``SNNTRAIN_AUTOTUNE=0`` (glibc's default, as every
    autotuner's fixed rule), or a cached choice (applied again here, for runs not started
    from the command line)."""
    if hostenv.malloc_mode() != "auto" or not autotune.enabled():
        return None
    k = key(signature)
    choice = cached(k)
    if choice is not None:
        # "default" leaves glibc's own (adaptive) settings untouched, unless a trial's single
        # arena was set up at start-up (a multirun's base config): then trim as the trial did
        if choice == "heap" or hostenv.single_arena():
            hostenv.use_heap(choice == "heap")
        return None
    return MallocTrial(k, say=say)
