"""Speed of snntrain's training step, measured against hand-written JAX and the GEMM peak.

    python scripts/bench.py                      # everything (~10 minutes on 2 CPU cores)
    python scripts/bench.py --quick              # the three workloads only, under a minute
    python scripts/bench.py --sections population --population-ks 1,4,16 --population-e2e
    python scripts/bench.py --json bench.json --workloads mlp,conv --devices 0

Workloads, each run through the real snntrain code path (Hydra config -> ``build`` ->
``parallel.compile(make_train_step)``, rate coding inside the step) and through a hand-written
plain-JAX reference step for the same network in the same process, in alternating rounds:

* ``mlp``: 784 -> 128 LIF -> 10 leaky readout, T = 25, batch 128, rate coding, Adam;
* ``conv``: 1x28x28 -> conv 12@5x5 -> maxpool 2 -> LIF -> conv 64@5x5 -> maxpool 2 -> LIF ->
  dense 10 -> leaky readout (VALID convolutions, no norm), T = 25, batch 64;
* ``digits``: the default config (8x8 digits, 64 -> 256 LIF -> 10, T = 25, batch 128).

Inputs are synthetic 28x28 images in an ``.npz`` read by ``dataset=arrays``; the step cost does
not depend on the pixel values beyond the spike density.

FLOP per step are counted from the layer shapes x T (XLA's cost analysis counts a ``scan`` body
once, so it undercounts scanned steps): a synaptic layer's forward pass is
``2*B*T*in*out`` for a dense layer and ``2*B*T*Ho*Wo*k*k*Cin*Cout`` for a convolution; a training
step costs 3x that (forward, input gradient, weight gradient) except for the first layer, whose
input needs no gradient (2x). Neurons, pooling, encoding and the optimizer are not counted.
mlp: 1.31 GFLOP, conv: 13.0 GFLOP, digits: 0.26 GFLOP. ``frac_peak`` = FLOP/step x steps/s /
the float32 GEMM rate of numpy (2048^3, best of 5) measured in the same run.

Other sections (skipped with ``--quick``): per-step temporary memory of the compiled step
(``memory_analysis()``: per step, not process-wide) at T = 25/100, with and without
``trainer.remat``, float32/bfloat16; 1 vs N virtual CPU devices (a subprocess with
``--xla_force_host_platform_device_count``); whole-epoch ``lax.scan`` vs per-step dispatch on
digits; experiments (convolution formulations, ``direct`` encoding); and glibc's malloc
policies (:mod:`snntrain.hostenv`): each workload in a subprocess per forced
``SNNTRAIN_MALLOC`` (default, heap, hugepages) against this run, which uses ``auto`` as the
CLI does (the trial of :mod:`snntrain.malloctune` on each workload's own steps, not cached;
``--no-hugepages`` forces glibc's default); and population training (``population``: the
digits default network's step for K = ``--population-ks`` members as one program against K
solo steps in the same process, and mixed surrogate types as one switch program against one
program per type; ``--population-e2e`` adds ``experiment=surrogate_comparison`` (every
surrogate x 3 seeds) end to end as one process against the multirun's processes:
``scripts/bench_population.py``, which also runs alone).
Peak RSS is ``ru_maxrss`` of this process: process-wide and monotone, so a workload's value
includes everything that ran before it.

The parts live in ``scripts/benchlib/``: ``machine`` (GEMM peak), ``references`` (the
hand-written JAX steps), ``runners`` (timed steps in alternating rounds), ``workloads`` (configs
and FLOP counts), ``sections`` (memory, devices, fused epoch, experiments) and ``report``
(printing); this file is the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import WORKLOADS, cli, report
from benchlib.evalcost import print_synops, synops_section
from benchlib.machine import device_gemm_gflops, gemm_gflops, machine_info
from benchlib.references import CONV_FORMULATIONS, check_conv_formulations
from benchlib.sections import (
    conv_formulations_section,
    devices_child,
    devices_section,
    direct_section,
    fused_epoch_section,
    malloc_section,
    memory_section,
)
from benchlib.workloads import conv_flop, dense_flop, run_workload, synthetic_npz, workloads

from snntrain import hostenv

__all__ = ["CONV_FORMULATIONS", "check_conv_formulations", "conv_flop", "dense_flop", "main"]

SECTIONS = ("workloads", "synops", "memory", "devices", "fused", "experiments", "malloc",
            "population")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="the three workloads with few steps, no other section (< 1 minute)",
    )
    ap.add_argument("--json", type=cli.json_path, help="write the results to this file")
    ap.add_argument("--workloads", default=list(WORKLOADS),
                    type=cli.subset(WORKLOADS), help="comma-separated subset")
    ap.add_argument(
        "--devices",
        type=int,
        default=4,
        help="virtual CPU devices for the 1-vs-N section (0: skip)",
    )
    ap.add_argument(
        "--sections",
        default=list(SECTIONS),
        type=cli.subset(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (--quick: workloads)",
    )
    ap.add_argument("--population-ks", default=[1, 4, 16, 64], type=cli.positive_ints,
                    help="population sizes for the population section (comma-separated)")
    ap.add_argument("--population-e2e", action="store_true",
                    help="population section: also experiment=surrogate_comparison end to end "
                    "(~15 min)")
    ap.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra Hydra override for every snntrain run of the chosen workloads, e.g. "
        "--workloads conv --override model.conv_method=lax (repeat); not of the shape (T, "
        "batch size, layers, data), which the FLOP counts and hand-written references fix",
    )
    ap.add_argument(
        "--no-hugepages",
        action="store_true",
        help="keep glibc's default malloc (as SNNTRAIN_MALLOC=default)",
    )
    ap.add_argument("--_devices-child", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--_npz", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_steps", type=int, default=40, help=argparse.SUPPRESS)
    ap.add_argument("--_steps-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    from snntrain.startup import composition_error

    for o in args.override:  # (T=5 printed 2.5x the GEMM peak: the FLOP count is T=25's)
        key = o.split("=", 1)[0].lstrip("+~")
        if key in SHAPE_KEYS or key.startswith(("dataset.", "dataset=")) or key == "dataset":
            ap.error(f"argument --override: {key} sets the workload's shape, which its FLOP "
                     "count and hand-written reference fix; valid: settings of how it runs "
                     "(model.conv_method, encoder.generator, trainer.dtype, ...)")
    for name in args.workloads if args.override else ():  # each workload's model (conv's
        model = "model=conv" if name == "conv" else "model=mlp"  # conv_method was refused)
        if (msg := composition_error([model, *args.override])) is not None:
            ap.error(f"argument --override (workload {name}): {msg}")
    return args


# overrides that change a workload's shape (its FLOP count and reference are fixed)
SHAPE_KEYS = ("T", "trainer.batch_size", "model", "model.hidden", "model.channels",
              "model.kernel_size", "model.pool", "model.dense", "model.padding", "model.name")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.no_hugepages:
        os.environ[hostenv.MODE_SWITCH] = "default"
    cli.prepare_malloc()  # as the snntrain CLI does (auto: one arena; hugepages: restart)

    if args._devices_child:
        print(json.dumps(devices_child(args._devices_child, args._npz, args._steps,
                                       tuple(args.workloads))))
        return 0

    names = args.workloads
    sections = {"workloads"} if args.quick else set(args.sections)
    info = machine_info()
    gemm = cpu_gemm = gemm_gflops()
    device_gemm = None
    if info["platform"] != "cpu":  # the roofline is the accelerator's, not numpy's
        gemm = device_gemm = device_gemm_gflops()
    report.print_machine(info, cpu_gemm, device_gemm)
    results: dict[str, Any] = {
        "gemm_gflops": gemm,
        "cpu_gemm_gflops": cpu_gemm,
        "machine": info,
        "workloads": {},
    }

    rounds = 2 if args.quick else 3
    scale = (0.25 if args.quick else 1.0) * args._steps_scale
    with tempfile.TemporaryDirectory() as tmp:
        npz = synthetic_npz(Path(tmp) / "mnist_like.npz")
        ws = workloads(npz, args.override)
        unknown = [n for n in names if n not in ws]
        if unknown:
            raise SystemExit(f"unknown workload(s) {unknown}; valid: {', '.join(ws)}")
        if "workloads" in sections:  # (its header was printed for other sections too)
            report.print_workload_header()
            for name in names:
                r = run_workload(ws[name], max(2, int(ws[name].steps * scale)), rounds, gemm)
                results["workloads"][name] = r
                report.print_workload(name, r)
            report.print_workload_footer()

        def skipped(section: str, why: str) -> None:  # (a requested section ran silently nothing)
            if section in sections:
                print(f"\nnote: section {section} not run: {why}")

        if "synops" in sections:  # the evaluation step's cost of the cost metrics (issue 17)
            results["synops"] = syn = synops_section(ws, names, 5.0 if args.quick else 15.0)
            print_synops(syn)

        if "memory" in sections:
            print(
                "\nper-step temporary memory of the compiled snntrain step "
                "(memory_analysis, not process-wide):"
            )
            mem = memory_section(ws, [n for n in ("mlp", "conv") if n in names], 20)
            results["memory"] = mem
            report.print_memory(mem)

        parallel = tuple(n for n in names if n in ("mlp", "conv"))
        if "devices" in sections and args.devices > 1 and parallel:
            results["devices"] = dev = devices_section(args.devices, npz, 40, parallel)
            report.print_devices(args.devices, dev)
        elif args.devices <= 1:
            skipped("devices", f"--devices {args.devices} (it compares 1 with N > 1 devices)")
        else:
            skipped("devices", "it runs the mlp and conv workloads; --workloads includes neither")

        if "fused" in sections and "digits" in names:
            results["fused_epoch"] = fe = fused_epoch_section(epochs=8)
            report.print_fused(fe)
        elif "digits" not in names:
            skipped("fused", "it runs the digits workload; --workloads does not include it")

        if "conv" not in names:
            skipped("experiments", "it runs the conv workload; --workloads does not include it")
        if "experiments" in sections and "conv" in names:
            exps: dict[str, Any] = {}
            exps["conv_formulations"] = cf = conv_formulations_section(ws["conv"], 6, 3, gemm)
            report.print_conv_formulations(cf)
            exps["conv_direct"] = d = direct_section(ws["conv"], 6, 2, gemm)
            report.print_direct(d)
            results["experiments"] = exps

        if "malloc" in sections:
            results["malloc"] = mp = malloc_section(names, results["workloads"], args.override)
            report.print_malloc(mp)

    if "population" in sections:  # issue 16: K members in one program against K solo runs
        print(f"\npopulation training, digits default network, K = {args.population_ks} "
              "(ms per member-step; gain = K solo steps / one population step; a process of "
              "its own, whose CPU is split into devices as the CLI splits it with "
              "trainer.population.workers=null, and the CLI's default worker processes, one per "
              "core):",
              flush=True)
        results["population"] = population_section(args.population_ks, rounds,
                                                   args.population_e2e)

    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0


def population_section(ks: list[int], rounds: int, e2e: bool) -> list[dict[str, Any]]:
    """``scripts/bench_population.py`` in a subprocess (the CPU split into devices must
    precede JAX's backend, which this process has started), its lines passed through."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "population.json"
        cmd = [sys.executable, str(Path(__file__).with_name("bench_population.py")), "--ks",
               ",".join(map(str, ks)), "--steps", "64", "--rounds", str(rounds),
               "--json", str(out), *(["--e2e"] if e2e else [])]
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


if __name__ == "__main__":
    sys.exit(main())
