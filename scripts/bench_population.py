"""Speed of population training against solo runs, on the digits default network.

    python scripts/bench_population.py                    # steps at K = 1, 4, 16, 64; types
    python scripts/bench_population.py --ks 1,4,16 --e2e  # + the 66-run comparison end to end
    python scripts/bench_population.py --json out.json

Sections:

* ``steps``: the compiled training step of K members of the default config (8x8 digits,
  64 -> 256 LIF -> 10, T = 25, batch 128, Adam), seeds 0..K-1, against K sequential solo steps
  in the same process (one compiled solo step called K times). Three layouts of the population
  step: ``map`` (``vectorize=1``: ``lax.map``, members one after another inside the program,
  bit-identical to solo), ``vmap`` (``vectorize=K``) and, for K > 4, ``vmap4`` (``lax.map``
  of vmapped groups of 4); and ``split`` (what the CLI runs on a CPU: ``lax.map`` with the
  members spread over the CPU split into one JAX device per core,
  ``trainer.population.cpu_devices``; this program splits the CPU at start as the CLI does,
  and the solo step keeps to one device as a solo run does); and ``workers``
  (``trainer.population.workers=auto``: one process per usable core, each pinned to its core
  and running the ``lax.map`` step of its K / cores members; a round makes one untimed call
  in each, as for the other layouts, then starts their timed calls together and lasts until
  the last is done). Reported per member-step, as the
  gain over solo (solo time x K / population time); wall and process CPU time, each the best
  of several rounds (the machine is shared: the best round is the least disturbed one), and
  ``gain_wall_median``, the median over rounds of the gain within a round. Every step is
  compiled and warmed up first, then timed in rounds that run each step once, in turn (a
  rotated order each round), so the machine's drift over minutes falls on all of them alike.
* ``types``: K members cycling through 4 surrogate types (sigmoid, arctan, erf, fast_sigmoid),
  as one program with the switch surrogate against one program per type (``by_type``), both
  with ``map`` and with ``vmap``.
* ``e2e`` (``--e2e``): ``experiment=surrogate_comparison`` (22 surrogates x 3 seeds, 20 epochs)
  as one population process against the multirun, estimated from ``--solo-runs`` measured
  processes (each ``python -m snntrain experiment=surrogate_comparison surrogate=<s> seed=<n>``)
  times 66, both with the experiment's logger (wandb offline here).

Batches are fixed device arrays in ``steps``/``types`` (the host pipeline is not timed there;
it is in ``e2e``). glibc's malloc: the process starts as the CLI does (``SNNTRAIN_MALLOC``,
default ``auto``), and under ``auto`` every timed step first runs the CLI's malloc trial, whose
winner it is timed under (the ``malloc`` column).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import cli

from snntrain import hostenv

ROOT = Path(__file__).resolve().parents[1]
TYPES = ("sigmoid", "arctan", "erf", "fast_sigmoid")
LAYOUTS = ("map", "vmap", "vmap4", "split", "workers")


def _compose(*overrides: str):
    from hydra import compose, initialize_config_dir

    from snntrain.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=["logger=none", "trainer.progress=false",
                                            *overrides])


class _Timed:
    """A step to time in rounds interleaved with the others (the machine is shared and its
    speed drifts over minutes, so ratios are taken between rounds run side by side).

    On creation the step is warmed up and, with ``SNNTRAIN_MALLOC=auto`` (the default), the
    CLI's malloc trial (:mod:`snntrain.malloctune`, not cached) runs on its calls: its winner
    is the policy this step is timed under, as each run would choose; else the forced policy.
    """

    def __init__(self, call, state, n: int):
        import jax

        from snntrain import malloctune

        self.call, self.state, self.n = call, state, n
        self.state, out = call(state)
        jax.block_until_ready(out)
        self.auto = hostenv.malloc_mode() == "auto"
        self.policy = (malloctune.trial_on(self._once).choice if self.auto
                       else hostenv.malloc_mode())
        self.walls: list[float] = []
        self.cpus: list[float] = []

    def _once(self):
        self.state, out = self.call(self.state)
        return out

    def round(self) -> None:
        """Time ``n`` calls under this step's malloc policy (seconds per call), after one
        untimed call (which pays for the switch from the step timed before it: its policy,
        the caches)."""
        import jax

        if self.auto:
            hostenv.use_heap(self.policy == "heap")
        jax.block_until_ready(self._once())
        w, c = time.perf_counter(), time.process_time()
        for _ in range(self.n):
            out = self._once()
        jax.block_until_ready(out)
        self.walls.append((time.perf_counter() - w) / self.n)
        self.cpus.append((time.process_time() - c) / self.n)


def _interleave(timed: list[_Timed], rounds: int) -> None:
    """``rounds`` rounds of every step, each round in a rotated order."""
    for r in range(rounds):
        for t in timed[r % len(timed):] + timed[:r % len(timed)]:
            t.round()


def _stacked_batch(group, program) -> dict:
    import jax
    import numpy as np

    from snntrain import data as data_lib

    per_member = [next(data_lib.batches(e.data.train, e.batch_size, seed=e.seed))
                  for e in group.exps]
    return program.put_batch(jax.device_put({k: np.stack([per_member[i][k]
                                                          for i in program.rows])
                                             for k in per_member[0]}))


def _population_timed(group, n: int) -> _Timed:
    """The population step (all programs of ``group``), ``n`` calls per round."""
    progs = group.programs
    batches = [_stacked_batch(group, p) for p in progs]

    def call(states):
        out = []
        new = []
        for p, s, b in zip(progs, states, batches, strict=True):
            s, m = p.step(s, b, p.keys, p.args)
            new.append(s)
            out.append(m["loss"])
        return new, out

    return _Timed(call, [p.init for p in progs], n)


def _solo_timed(cfg, n: int) -> _Timed:
    """The solo step, compiled exactly as a solo run compiles it; ``n`` calls per round."""
    import jax

    from snntrain import data as data_lib
    from snntrain.experiment import build
    from snntrain.steps import make_train_step

    exp = build(cfg)
    fn = exp.parallel.compile(make_train_step(exp))
    batch = jax.device_put(next(data_lib.batches(exp.data.train, exp.batch_size, seed=0)))
    key = jax.random.PRNGKey(0)

    def call(state):
        return fn(state, batch, key, exp.surrogate)

    return _Timed(call, exp.init_state(), n)


class _WorkersTimed:
    """The ``workers`` layout: ``len(cores)`` processes (:func:`_serve`), each pinned to its
    core with a group of ``k / len(cores)`` members; a round sends every one "go" and waits
    for all (wall: the parent's clock; CPU: the workers' own, summed)."""

    def __init__(self, k: int, n: int, cores: list[int]):
        env = {key: v for key, v in os.environ.items() if key != hostenv.SPLIT_MARK}
        env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                                    if not f.startswith(hostenv.DEVICE_FLAG))
        self.calls = max(1, n * len(cores) // k)
        self.procs = [subprocess.Popen(
            [sys.executable, __file__, "--serve", f"{core},{k // len(cores)},{self.calls}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            for core in cores]
        ready = [json.loads(p.stdout.readline()) for p in self.procs]
        self.policy = "/".join(r["malloc"] for r in ready)
        self.compile_s = max(r["compile_s"] for r in ready)
        self.walls: list[float] = []
        self.cpus: list[float] = []

    def round(self) -> None:
        """One untimed call in every worker first (as :meth:`_Timed.round` makes for the
        in-process steps: the steps timed in between evicted the shared caches), then the
        timed calls of all workers together."""
        for cmd in ("warm", "go"):
            w = time.perf_counter()
            for p in self.procs:
                p.stdin.write(cmd + "\n")
                p.stdin.flush()
            cpu = sum(float(p.stdout.readline()) for p in self.procs)
        self.walls.append((time.perf_counter() - w) / self.calls)
        self.cpus.append(cpu / self.calls)

    def close(self) -> None:
        for p in self.procs:
            p.stdin.close()
            p.wait()


def _serve(spec: str) -> int:
    """A ``workers`` layout's process: ``core,members,calls``; pinned to its core before JAX
    starts, it compiles its group, prints a JSON line, then makes one untimed call per "warm"
    line on stdin and times ``calls`` calls per "go" line (printing their CPU seconds)."""
    core, k, calls = map(int, spec.split(","))
    os.sched_setaffinity(0, {core})
    cli.prepare_malloc()
    from snntrain import population

    cfg = _compose(f"trainer.population.seed=[{','.join(map(str, range(k)))}]")
    group = population.build_group(population.members(cfg), vectorize=1, by_type=False,
                                   say=lambda _: None)
    timed = _population_timed(group, calls)
    print(json.dumps({"malloc": timed.policy, "compile_s": group.compile_s}), flush=True)
    import jax

    if timed.auto:
        hostenv.use_heap(timed.policy == "heap")
    for line in sys.stdin:  # "warm": one untimed call; "go": the timed calls
        c = time.process_time()
        for _ in range(1 if line.strip() == "warm" else calls):
            out = timed._once()
        jax.block_until_ready(out)
        print(time.process_time() - c, flush=True)
    return 0


def _gains(t: _Timed, solo: _Timed, k: int) -> dict[str, float]:
    """Gain over ``k`` solo steps: of the best rounds, and the median over rounds of the
    ratio within each round (solo and population timed side by side)."""
    return {"gain_wall": min(solo.walls) * k / min(t.walls),
            "gain_cpu": min(solo.cpus) * k / min(t.cpus),
            "gain_wall_median": statistics.median(s * k / w for s, w in zip(solo.walls,
                                                                          t.walls, strict=True))}


def bench_steps(ks: list[int], n: int, rounds: int,
                layouts: tuple[str, ...] = LAYOUTS) -> list[dict[str, Any]]:
    from snntrain import population, workers

    split = hostenv.cpu_split()
    solo = _solo_timed(_compose(), n)
    timed: list[tuple[dict[str, Any], _Timed]] = [
        ({"section": "steps", "layout": "solo", "K": 1}, solo)]
    for k in ks:
        cfg = _compose(f"trainer.population.seed=[{','.join(map(str, range(k)))}]")
        ms = population.members(cfg)
        cores = workers.cores(min(hostenv.usable_cores(), workers.AUTO_MAX))  # (as the CLI's auto)
        skipped = {"vmap": "K = 1" if k == 1 else "", "vmap4": "K <= 4" if k <= 4 else "",
                   "split": ("K = 1" if k == 1 else "" if split > 1 else
                             "the CPU is not split (--no-split, or one usable core)"),
                   "workers": ("one usable core" if len(cores) < 2 else
                               f"K not a multiple of {len(cores)} workers"
                               if k % len(cores) else "")}
        for layout in layouts:
            if skipped.get(layout):
                print(f"section=steps  layout={layout}  K={k}  not timed: {skipped[layout]}")
                continue
            if layout == "workers":
                pool = _WorkersTimed(k, n, cores)
                timed.append(({"section": "steps", "layout": layout, "K": k,
                               "workers": len(cores), "compile_s": pool.compile_s}, pool))
                continue
            vectorize = {"map": 1, "vmap": k, "vmap4": 4, "split": 1}[layout]
            placement = (population.Placement(split, members_only=True) if layout == "split"
                         else population.Placement())
            group = population.build_group(ms, vectorize=vectorize, by_type=False,
                                           placement=placement, say=lambda _: None)
            timed.append(({"section": "steps", "layout": layout, "K": k,
                           "mesh": list(group.programs[0].mesh_shape),
                           "compile_s": group.compile_s},
                          _population_timed(group, max(1, n // k))))
    _interleave([t for _, t in timed], rounds)
    for _, t in timed:
        if isinstance(t, _WorkersTimed):
            t.close()
    rows = []
    for row, t in timed:
        k = row["K"]
        rows.append(row | {"ms_per_member_step": min(t.walls) / k * 1e3,
                           "cpu_ms_per_member_step": min(t.cpus) / k * 1e3,
                           "malloc": t.policy} | ({} if t is solo else _gains(t, solo, k)))
        _print(rows[-1])
    return rows


def bench_types(ks: list[int], n: int, rounds: int) -> list[dict[str, Any]]:
    from snntrain import population

    timed: list[tuple[dict[str, Any], _Timed]] = []
    for k in [k for k in ks if k >= len(TYPES)]:
        names = ",".join(TYPES[i % len(TYPES)] for i in range(k))
        cfg = _compose("trainer.population.mode=zip",
                       f"trainer.population.surrogate.name=[{names}]",
                       f"trainer.population.seed=[{','.join(map(str, range(k)))}]")
        ms = population.members(cfg)
        for vectorize, layout in ((1, "map"), (k, "vmap")):
            for by_type in (False, True):
                group = population.build_group(ms, vectorize=vectorize, by_type=by_type)
                timed.append(({"section": "types", "layout": layout,
                               "programs": "by type" if by_type else "switch", "K": k,
                               "compile_s": group.compile_s},
                              _population_timed(group, max(1, n // k))))
    _interleave([t for _, t in timed], rounds)
    rows = []
    for row, t in timed:
        rows.append(row | {"ms_per_member_step": min(t.walls) / row["K"] * 1e3,
                           "cpu_ms_per_member_step": min(t.cpus) / row["K"] * 1e3,
                           "malloc": t.policy})
        _print(rows[-1])
    return rows


def _cli(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ, WANDB_SILENT="true", JAX_PLATFORMS="cpu")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "snntrain", *args, "trainer.progress=false"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"snntrain {' '.join(args)} failed:\n{p.stderr[-3000:]}")
    return time.perf_counter() - t0, p


def bench_e2e(solo_runs: int, extra: list[str]) -> list[dict[str, Any]]:
    from snntrain import surrogates

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        solos = []
        names = surrogates.available()
        for i in range(solo_runs):
            s, seed = names[(7 * i) % len(names)], i % 3
            wall, _ = _cli("experiment=surrogate_comparison", f"surrogate={s}", f"seed={seed}",
                           f"hydra.run.dir={tmp}/solo{i}", *extra)
            solos.append(wall)
            rows.append({"section": "e2e", "what": f"solo process {s} seed {seed}",
                         "wall_s": wall})
            _print(rows[-1])
        n_runs = len(names) * 3
        multirun = sum(solos) / len(solos) * n_runs
        rows.append({"section": "e2e", "what": f"multirun estimate ({n_runs} x mean of "
                     f"{len(solos)} processes)", "wall_s": multirun})
        _print(rows[-1])
        wall, _ = _cli("experiment=surrogate_comparison_population",
                       f"hydra.run.dir={tmp}/population", *extra)
        summary = json.loads((Path(tmp) / "population" / "summary.json").read_text())
        rows.append({"section": "e2e", "what": f"population process ({summary['population']} "
                     f"members, {summary['completed']} completed)", "wall_s": wall,
                     "gain": multirun / wall})
        _print(rows[-1])
    return rows


def _print(row: dict[str, Any]) -> None:
    print("  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in row.items()), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ks", default=[1, 4, 16, 64], type=cli.positive_ints,
                   help="population sizes (comma-separated)")
    p.add_argument("--steps", type=cli.positive_int, default=64,
                   help="member-steps per timing round")
    p.add_argument("--rounds", type=cli.positive_int, default=5,
                   help="timing rounds (best is reported)")
    p.add_argument("--sections", default=["steps", "types"],
                   type=cli.subset(("steps", "types", "e2e")), help="steps,types (and e2e)")
    p.add_argument("--layouts", default=list(LAYOUTS), type=cli.subset(LAYOUTS),
                   help="the population layouts of the steps section (solo is always timed)")
    p.add_argument("--e2e", action="store_true", help="also run the end-to-end comparison")
    p.add_argument("--solo-runs", type=cli.positive_int, default=3,  # (0: ZeroDivisionError)
                   help="processes for the multirun estimate")
    p.add_argument("--e2e-args", default="", help="extra overrides for both e2e sides")
    p.add_argument("--json", type=cli.json_path, default=None, help="write the rows here")
    p.add_argument("--no-split", action="store_true",
                   help="do not split the CPU into devices (no 'split' layout)")
    p.add_argument("--serve", default=None, help=argparse.SUPPRESS)  # a workers process
    args = p.parse_args(argv)
    if args.serve:
        return _serve(args.serve)
    print(f"malloc: SNNTRAIN_MALLOC={cli.prepare_malloc()}")  # as the CLI (auto: one arena)
    if not args.no_split:  # as the CLI's start-up splits it for a population
        hostenv.split_cpu(hostenv.usable_cores())
    print(f"CPU devices: {hostenv.cpu_split() or 'not split'} (usable cores: "
          f"{hostenv.usable_cores()}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r})")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    ks = args.ks
    sections = set(args.sections) | ({"e2e"} if args.e2e else set())
    rows: list[dict[str, Any]] = []
    if "steps" in sections:
        rows += bench_steps(ks, args.steps, args.rounds, tuple(args.layouts))
    if "types" in sections:
        rows += bench_types(ks, args.steps, args.rounds)
    if "e2e" in sections:
        rows += bench_e2e(args.solo_runs, args.e2e_args.split())
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
