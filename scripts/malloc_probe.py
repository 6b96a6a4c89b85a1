"""Steps/s and minor page faults per step of one ``scripts/bench.py`` workload (mlp, conv,
digits) under a malloc setting, for comparing glibc policies pair by pair (README, "malloc
policy").

    python scripts/malloc_probe.py WORKLOAD STEPS ROUNDS [mallopt JSON]
    python scripts/malloc_probe.py conv 8 2 '{"-4": 0, "-1": 2147483647, "-8": 1}'  # heap
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python scripts/malloc_probe.py conv 8 2  # huge pages

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


def main() -> None:
    name, steps, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    opts = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    libc = ctypes.CDLL("libc.so.6")
    for k, v in opts.items():
        assert libc.mallopt(int(k), int(v)) == 1, (k, v)

    import jax
    from benchlib.runners import snntrain_runner
    from benchlib.workloads import synthetic_npz, workloads

    with tempfile.TemporaryDirectory() as tmp:
        ws = workloads(synthetic_npz(Path(tmp) / "x.npz"))
        r, _ = snntrain_runner(ws[name].overrides)
        r.warm()
        r.run(2)
        rates, flts = [], []
        for _ in range(rounds):
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter()
            for i in range(steps):
                r.state, out = r.call(r.state, r.host[i % len(r.host)])
                if i % 20 == 19:
                    jax.block_until_ready(out)
            jax.block_until_ready((r.state, out))
            dt = time.perf_counter() - t
            flts.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / steps)
            rates.append(steps / dt)
    print(json.dumps({"workload": name, "opts": opts, "tunables": os.environ.get(
        "GLIBC_TUNABLES", ""), "rates": rates, "minflt_per_step": flts}))


if __name__ == "__main__":
    main()
