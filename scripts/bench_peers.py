"""snntrain against spyx, snnTorch and SpikingJelly on this machine, interleaved in one run.

    python scripts/bench_peers.py --peer-python /path/to/torch-env/bin/python
    python scripts/bench_peers.py --peer-python ... --workloads mlp,conv,mlp1024 --rounds 3
    python scripts/bench_peers.py --workloads mlp           # spyx only (no torch environment)

Each round times, on each workload, in this order:

* ``snntrain``: the real training step (``scripts/bench.py``'s workloads: config -> build ->
  compiled step) with **rate coding inside the step**, the default path;
* ``snntrain/precomputed``: the same step fed precomputed spikes (``encoder=none``'s
  pass-through), as the peers are fed: ``1 - snntrain / precomputed`` is the share of the
  default step spent on rate coding;
* ``jax-reference``: the hand-written plain-JAX step for the same network
  (``benchlib.references``, rate coding inside), the best formulation we know;
* ``spyx`` in a subprocess of this Python (``scripts/peers/spyx_peer.py``; spyx comes with
  snntrain's ``interop`` extra; the faster of its ``nnx.jit`` and ``jax.jit`` steps);
* ``snntorch`` and ``spikingjelly`` in a subprocess of ``--peer-python``
  (``scripts/peers/torch_peers.py``), the PyTorch libraries.

Peers get precomputed spikes (their tutorials' setting, the easier one). The order of the five
rotates from round to round, and every timed window follows an untimed step. The best round of
each is reported and the median of the rounds, then the ratios of the issue's goals with
met/missed.

glibc's malloc policy (:mod:`snntrain.hostenv`): like the snntrain CLI and ``scripts/bench.py``,
this process starts with ``SNNTRAIN_MALLOC`` (default ``auto``) and, under ``auto``, runs
:mod:`snntrain.malloctune`'s trial on each workload's snntrain step (not cached); the winner
stays on for the three in-process rows (snntrain, precomputed, hand-written JAX). The peers
run as their users run them: glibc untouched (``--peer-malloc default``, the default), or
under the policy snntrain chose for the workload (``--peer-malloc same``, given to them
through ``GLIBC_TUNABLES``: :func:`snntrain.hostenv.tunables_for`), which isolates the
libraries from the allocator.

Optional: the PyTorch peers need an environment with PyTorch and the libraries (a large install,
not one of snntrain's extras): ``python -m venv peers && peers/bin/pip install torch snntorch
spikingjelly`` (a CPU-only torch wheel is much smaller than the default CUDA one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import cli
from benchlib.machine import machine_info
from benchlib.references import reference_conv, reference_mlp
from benchlib.runners import reference_runner, snntrain_runner
from benchlib.workloads import malloc_trial, synthetic_npz, workloads

from snntrain import hostenv

HERE = Path(__file__).resolve().parent
TORCH_LIBS = ("snntorch", "spikingjelly")
# (label, numerator row, denominator row(s), goal): the goals as ratios
GOALS = (
    ("CONV default vs best PyTorch library", "conv", "snntrain", TORCH_LIBS, 1.2),
    ("MLP default vs spyx", "mlp", "snntrain", ("spyx",), 1.5),
    ("MLP default vs snnTorch", "mlp", "snntrain", ("snntorch",), None),
    ("MLP-1024 default vs snnTorch", "mlp1024", "snntrain", ("snntorch",), 1.5),
)


def ours_steps_per_s(runner, seconds: float) -> float:
    """Steps/s over a window of about ``seconds`` (at least 3 steps) after one untimed step,
    as the peers measure."""
    import time

    runner.run(1)
    runner.rates.pop()  # the untimed step
    chunk = 5 if runner.rates and runner.rates[-1] > 5 else 1
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        runner.run(chunk)
        n += chunk
    return n / (time.perf_counter() - t0)


def subprocess_rows(cmd: list[str], what: str, env: dict[str, str]) -> list[dict]:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"{what} failed: {last}", file=sys.stderr)
        return []
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def our_runners(name: str, base: list[str]) -> list:
    overrides = [*base, "model.hidden=[1024]"] if name == "mlp1024" else base
    ours, exp = snntrain_runner(overrides)
    pre, _ = snntrain_runner(overrides, name="snntrain/precomputed", precomputed=True)
    if name == "conv":
        ref = reference_conv("chwn_s2d")
    else:
        ref = reference_mlp([784, 1024 if name == "mlp1024" else 128, 10])
    return [ours, pre, reference_runner(ref, ours.host, name="jax-reference")]


def summarize(best: dict[str, float]) -> dict[str, float]:
    out = {}
    if best.get("snntrain/precomputed"):
        out["encoding_share"] = 1 - best["snntrain"] / best["snntrain/precomputed"]
    if best.get("jax-reference"):
        out["ours_vs_reference"] = best["snntrain"] / best["jax-reference"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", type=cli.executable,
                    help="python of an env with torch + snntorch/spikingjelly "
                    "(omitted: no PyTorch peers)")
    ap.add_argument("--workloads", default=["mlp", "conv", "mlp1024"],
                    type=cli.subset(("mlp", "conv", "mlp1024")), help="subset of mlp,conv,mlp1024")
    ap.add_argument("--rounds", type=cli.positive_int, default=3)
    ap.add_argument("--seconds", type=cli.positive_float, default=3.0,
                    help="per library, round, workload")
    ap.add_argument("--no-spyx", action="store_true", help="skip spyx")
    ap.add_argument("--peer-malloc", choices=("default", "same"), default="default",
                    help="the peers' malloc: glibc untouched, or the policy snntrain chose")
    ap.add_argument("--json", type=cli.json_path, help="also write the results here")
    args = ap.parse_args(argv)
    mode = cli.prepare_malloc()  # as the snntrain CLI does (auto: one arena; hugepages: restart)
    info = machine_info()
    print(f"machine: {info['cpu']} ({info['cpu_count']} cores; flags: {info.get('cpu_flags')})")
    print(f"malloc: SNNTRAIN_MALLOC={mode}; peers: {args.peer_malloc}")
    npz = synthetic_npz(Path(tempfile.mkdtemp()) / "images.npz")
    ws = workloads(npz)
    results: dict = {}
    for name in args.workloads:
        runners = our_runners(name, ws["mlp" if name == "mlp1024" else name].overrides)
        for r in runners:
            r.warm()
        trial = malloc_trial(runners[0])  # None unless SNNTRAIN_MALLOC=auto
        policy = trial["choice"] if trial else ("default" if mode == "auto" else mode)
        if trial:
            print(f"{name:8s} malloc trial: {policy} (median step ms {trial['ms']})")
        peer_env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
        if args.peer_malloc == "same" and hostenv.tunables_for(policy):
            peer_env["GLIBC_TUNABLES"] = hostenv.tunables_for(policy)
        best: dict[str, float] = {r.name: 0.0 for r in runners}
        rounds: dict[str, list[float]] = {r.name: [] for r in runners}
        variants: dict[str, str] = {}
        peer_args = ["--workloads", name, "--seconds", str(args.seconds)]
        for round_ in range(args.rounds):
            per_lib: dict[str, float] = {}
            tasks = [("ours", r) for r in runners]
            if not args.no_spyx and not (name == "conv" and round_ > 0):
                # spyx's conv step is ~20x slower than the others': one round of its
                # faster variant (jax.jit on the MLP) is enough to place it
                variant = ["--variants", "jax.jit"] if name == "conv" else []
                tasks.append(("peer", [sys.executable, str(HERE / "peers" / "spyx_peer.py"),
                                       *peer_args, *variant]))
            if args.peer_python:
                tasks.append(("peer", [args.peer_python, str(HERE / "peers" / "torch_peers.py"),
                                       *peer_args]))
            shift = round_ % len(tasks)  # rotate the order: no one always runs first
            for kind, task in tasks[shift:] + tasks[:shift]:
                if kind == "ours":
                    rounds[task.name].append(ours_steps_per_s(task, args.seconds))
                    best[task.name] = max(rounds[task.name])
                    continue
                for row in subprocess_rows(task, Path(task[1]).stem, peer_env):
                    lib = row["library"]
                    per_lib[lib] = max(per_lib.get(lib, 0.0), row["steps_per_s"])
                    if row["steps_per_s"] > best.get(lib, 0.0):
                        best[lib] = row["steps_per_s"]
                        variants[lib] = row.get("variant", "")
            for lib, v in per_lib.items():
                rounds.setdefault(lib, []).append(v)
        median = {k: statistics.median(v) for k, v in rounds.items() if v}
        results[name] = {"steps_per_s": best, "rounds": rounds, "median_steps_per_s": median,
                         "spyx_variant": variants.get("spyx"), "malloc": policy,
                         "malloc_trial": trial, "peer_malloc": args.peer_malloc,
                         **summarize(best)}
        print(f"{name:8s} steps/s: " + ", ".join(f"{k} {v:.3g}" for k, v in best.items()))
        print(f"{'':8s} median of rounds: "
              + ", ".join(f"{k} {v:.3g}" for k, v in median.items()))
        for k, v in summarize(best).items():
            print(f"{'':8s} {k}: {v:.3f}")
    print("\ngoals (ratios of the best rounds in this run; of the medians in brackets):")
    for label, w, num, dens, goal in GOALS:
        got = results.get(w, {}).get("steps_per_s", {})
        med = results.get(w, {}).get("median_steps_per_s", {})
        den = max((got.get(d, 0.0) for d in dens), default=0.0)
        med_den = max((med.get(d, 0.0) for d in dens), default=0.0)
        if w not in results:
            continue
        if not den:  # (it vanished without a word when the peers were missing)
            print(f"  {label}: not measured (no row from {', '.join(dens)} in this run)")
            continue
        ratio = got[num] / den
        ok = "met" if goal is not None and ratio >= goal else "MISSED"
        verdict = "" if goal is None else f" (goal >= {goal}: {ok})"
        print(f"  {label}: {ratio:.2f}x [{med[num] / med_den:.2f}x]{verdict}")
    if "mlp" in results and "encoding_share" in results["mlp"]:
        share = results["mlp"]["encoding_share"]
        print(f"  MLP encoding share of the step: {share:.1%} "
              f"(goal <= 15%: {'met' if share <= 0.15 else 'MISSED'})")
    for w, r in results.items():
        if "ours_vs_reference" in r:
            ok = r["ours_vs_reference"] >= 0.9
            print(f"  {w} framework vs hand-written JAX: {r['ours_vs_reference']:.2f}x "
                  f"(goal >= 0.90: {'met' if ok else 'MISSED'})")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
