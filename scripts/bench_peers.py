"""snntrain against the PyTorch SNN libraries on this machine, interleaved in one run.

    python scripts/bench_peers.py --peer-python /path/to/torch-env/bin/python
    python scripts/bench_peers.py --peer-python ... --workloads mlp,conv,mlp1024 --rounds 3

Optional: the peers need an environment with PyTorch and the libraries (a large install, so
not part of snntrain's extras): ``python -m venv peers && peers/bin/pip install torch snntorch
spikingjelly``. Each round times snntrain's real training step (``scripts/bench.py``'s
workloads: config -> build -> compiled step, **rate coding inside the step**) in this process,
then each peer library on the same workload in a subprocess (``scripts/peers/torch_peers.py``,
which feeds them **precomputed** spikes: their tutorials' setting, and the easier one). The
best round of each is reported, with snntrain's steps/s as a ratio of each peer's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib.machine import machine_info
from benchlib.runners import snntrain_runner
from benchlib.workloads import synthetic_npz, workloads

HERE = Path(__file__).resolve().parent


def ours_steps_per_s(runner, seconds: float) -> float:
    import time

    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        runner.run(5)
        n += 5
    return max(runner.rates[-(n // 5):])


def peers(python: str, workload: str, seconds: float) -> list[dict]:
    out = subprocess.run([python, str(HERE / "peers" / "torch_peers.py"), "--workloads",
                          workload, "--seconds", str(seconds)], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"peers failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return []
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", required=True, help="python of an env with torch + peers")
    ap.add_argument("--workloads", default="mlp,conv")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="per library, round, workload")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    info = machine_info()
    print(f"machine: {info['cpu']} ({info['cpu_count']} cores; flags: {info.get('cpu_flags')})")
    npz = synthetic_npz(Path(tempfile.mkdtemp()) / "images.npz")
    ws = workloads(npz)
    extra = {"mlp1024": ["model.hidden=[1024]"]}
    results = {}
    for name in args.workloads.split(","):
        base = ws["mlp" if name == "mlp1024" else name]
        runner, _ = snntrain_runner([*base.overrides, *extra.get(name, [])])
        runner.warm()
        best: dict[str, float] = {"snntrain": 0.0}
        for _ in range(args.rounds):
            best["snntrain"] = max(best["snntrain"], ours_steps_per_s(runner, args.seconds))
            for r in peers(args.peer_python, name, args.seconds):
                best[r["library"]] = max(best.get(r["library"], 0.0), r["steps_per_s"])
        results[name] = best
        ratios = ", ".join(f"{best['snntrain'] / v:.2f}x {k}" for k, v in best.items()
                           if k != "snntrain" and v)
        print(f"{name:8s} steps/s: " + ", ".join(f"{k} {v:.2f}" for k, v in best.items())
              + f"  | snntrain = {ratios}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
