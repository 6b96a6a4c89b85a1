"""Steps/s and minor page faults per step of one ``scripts/bench.py`` workload (mlp, conv,
digits) under a malloc setting, for comparing glibc policies pair by pair (README, "malloc
policy").

    python scripts/malloc_probe.py WORKLOAD STEPS ROUNDS [mallopt JSON]
    python scripts/malloc_probe.py conv 8 2 '{"-4": 0, "-1": 2147483647, "-8": 1}'  # heap
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python scripts/malloc_probe.py conv 8 2  # huge pages
    python scripts/malloc_probe.py population-vmap 8 2  # K = 16 digits members, vectorize=16

``population-vmap`` / ``population-map``: the population step of 16 members of the default
(digits) config, ``trainer.population.vectorize=16`` / ``1`` (one step: every program once,
as :class:`snntrain.population.GroupRunner` runs it).

The ``mallopt(param, value)`` pairs (malloc.h: -1 trim threshold, -3 mmap threshold, -4 mmap
max, -8 arena max) are applied before JAX is imported; a warm-up (compile + 2 steps) precedes
ROUNDS rounds of STEPS steps. Prints one JSON line: steps/s and ``ru_minflt`` per step of
each round. Run it under ``flock -x /tmp/cpu.lock`` on a shared machine.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import benchlib  # noqa: E402 - (its names only: no JAX before mallopt)

POPULATION = {"population-vmap": 16, "population-map": 1}  # name -> vectorize (K = 16)
WORKLOADS = (*benchlib.WORKLOADS, *POPULATION)
USAGE = ("usage: python scripts/malloc_probe.py WORKLOAD STEPS ROUNDS [mallopt JSON] "
         f"(WORKLOAD: one of {', '.join(WORKLOADS)}; STEPS, ROUNDS: integers >= 1)")


def _options(text: str) -> dict[str, int]:
    """The mallopt JSON: ``{"<param>": <value>, ...}`` of integers (one line otherwise)."""
    try:
        opts = json.loads(text)
        if any(isinstance(v, bool) or not isinstance(v, int) for v in opts.values()):
            raise ValueError  # (true was taken for 1)
        return {str(int(k)): v for k, v in opts.items()}
    except (ValueError, TypeError, AttributeError):
        sys.exit(f"malloc_probe.py: {text!r} is no JSON object of integer mallopt pairs, e.g. "
                 '\'{"-4": 0, "-1": 2147483647, "-8": 1}\'')


def main() -> None:
    args = sys.argv[1:]
    if (len(args) not in (3, 4) or args[0] not in WORKLOADS or not args[1].isdecimal()
            or not args[2].isdecimal() or min(int(args[1]), int(args[2])) < 1):
        print(USAGE, file=sys.stderr if args[:1] not in (["-h"], ["--help"]) else sys.stdout)
        sys.exit(0 if args[:1] in (["-h"], ["--help"]) else 2)
    name, steps, rounds = args[0], int(args[1]), int(args[2])
    opts = _options(args[3]) if len(args) > 3 else {}
    libc = ctypes.CDLL("libc.so.6")
    for k, v in opts.items():
        if libc.mallopt(int(k), int(v)) != 1:
            sys.exit(f"malloc_probe.py: glibc refused mallopt({k}, {v})")

    import jax
    from benchlib.runners import snntrain_runner
    from benchlib.workloads import synthetic_npz, workloads

    with tempfile.TemporaryDirectory() as tmp:
        if name in POPULATION:
            step = population_step(POPULATION[name])
        else:
            ws = workloads(synthetic_npz(Path(tmp) / "x.npz"))
            r, _ = snntrain_runner(ws[name].overrides)
            r.warm()

            def step(i: int):
                r.state, out = r.call(r.state, r.host[i % len(r.host)])
                return out
        for i in range(2):
            jax.block_until_ready(step(i))
        rates, flts = [], []
        for _ in range(rounds):
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter()
            for i in range(steps):
                out = step(2 + i)
                if i % 20 == 19:
                    jax.block_until_ready(out)
            jax.block_until_ready(out)
            dt = time.perf_counter() - t
            flts.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / steps)
            rates.append(steps / dt)
    print(json.dumps({"workload": name, "opts": opts, "tunables": os.environ.get(
        "GLIBC_TUNABLES", ""), "rates": rates, "minflt_per_step": flts}))



def population_step(vectorize: int):
    """``step(i)``: the ``i``-th population step (batches of epoch 0, cycled) of 16 members."""
    from hydra import compose, initialize_config_dir

    from snntrain import population
    from snntrain.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[
            "logger=none", f"trainer.population.seed=[{','.join(map(str, range(16)))}]",
            f"trainer.population.vectorize={vectorize}"])
    group = population.build_group(population.members(cfg), vectorize=vectorize,
                                   by_type=False, say=lambda _m: None)
    runner = population.GroupRunner(group, group.init_state())
    batches = list(runner.batches("train", 0, 0, True))
    return lambda i: runner.step(batches[i % len(batches)])


if __name__ == "__main__":
    main()
