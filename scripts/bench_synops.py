"""How much the cost metrics (:mod:`snntrain.synops`) slow the evaluation step down.

Times the trainer's own evaluation step (config -> ``build`` -> ``make_eval_step``) with
``metrics.synops=true`` and ``false`` on the same batches, in alternating rounds in one process,
and prints the ratio (issue 17's goal: < 1.05). Workloads: those of ``scripts/bench.py``
(``mlp``: 784 -> 128 LIF -> 10, B = 128; ``conv``: 28x28 12C5-MP2-64C5-MP2, B = 64; ``digits``:
the default config, 64 -> 256 LIF -> 10, B = 128; all T = 25) and ``digits_conv`` (the default
conv model on digits). ``scripts/bench.py`` runs the same measurement as its ``synops`` section.

    python scripts/bench_synops.py [--workloads mlp,digits,conv] [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchlib import cli
from benchlib.evalcost import SECONDS, measure, print_synops
from benchlib.workloads import Workload, synthetic_npz, workloads


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default=["mlp", "digits", "conv"],
                    type=cli.subset(("mlp", "digits", "conv", "digits_conv")),
                    help="subset of mlp,digits,conv,digits_conv")
    ap.add_argument("--seconds", type=cli.positive_float, default=SECONDS, help="per workload")
    ap.add_argument("--json", type=cli.json_path)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ws = workloads(synthetic_npz(Path(tmp) / "mnist_like.npz"))
        base = ["logger=none", "trainer.progress=false"]
        ws["digits_conv"] = Workload("digits_conv", [*base, "model=conv"], 0, lambda: None, 0)
        res = {}
        for n in a.workloads:
            res[n] = measure(ws[n], a.seconds)
            print_synops({n: res[n]})
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
