"""Golden runs: the default config (2 epochs) and the conv model (1 epoch) reproduce the metrics
and summary recorded before the training loop was restructured.

On the CPU model that recorded them the comparison is exact. XLA:CPU may choose other kernels
on another microarchitecture (float sums in another order), so elsewhere losses and rates are
compared to 1e-4 relative and accuracies to one example of the split. The runs pin the rate
encoder's ``threefry`` generator, the one the fixtures were recorded with (the default is now
the counter-based ``hash`` generator, a different but equally valid random stream).
"""

import json
from pathlib import Path

import pytest
from conftest import compose

from snntrain.hostenv import cpu_model

GOLDEN = Path(__file__).parent / "golden"
TIMING = {"samples_per_s", "wall_time_s", "train_time_s", "compile_time_s", "run_dir"}
RUNS = {
    "default": ("trainer.epochs=2", "seed=0", "encoder.generator=threefry"),
    "conv": ("model=conv", "trainer.epochs=1", "seed=0", "encoder.generator=threefry"),
}


def _close(got, want, exact: bool, key: str) -> None:
    if isinstance(want, dict):
        assert set(got) == set(want), key
        for k in want:
            _close(got[k], want[k], exact, f"{key}.{k}")
    elif isinstance(want, float) and not exact:
        tol = 1.0 / 144 if "accuracy" in key else 1e-4 * max(1.0, abs(want))
        assert got == pytest.approx(want, abs=tol), key
    else:
        assert got == want, key


@pytest.mark.parametrize("name", sorted(RUNS))
def test_golden_run(name, tmp_path):
    from snntrain.train import train_and_evaluate

    cfg = compose("logger=none", "trainer.progress=false", *RUNS[name], tiny=False)
    train_and_evaluate(cfg, tmp_path)
    summary_want = json.loads((GOLDEN / name / "summary.json").read_text())
    exact = summary_want.pop("recorded_on_cpu") == cpu_model()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    records = [{k: v for k, v in r.items() if k not in TIMING} for r in records]
    want = [json.loads(line) for line in (GOLDEN / name / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == len(want)
    for i, (got_r, want_r) in enumerate(zip(records, want, strict=True)):
        # Later features may add keys; every recorded one must keep its value.
        _close({k: got_r.get(k) for k in want_r}, want_r, exact, f"metrics[{i}]")
    summary = json.loads((tmp_path / "summary.json").read_text())
    summary = {k: v for k, v in summary.items() if k not in TIMING}
    summary["device"].pop("host")
    _close({k: summary.get(k) for k in summary_want}, summary_want, exact, "summary")
