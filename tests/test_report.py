"""The sweep report: numbers against hand computations on synthetic run directories.

Every run directory here is written by hand (config.yaml, metrics.jsonl, summary.json) in the
formats the trainer writes, so these tests need neither training nor wandb.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml

from snntrain import plots, report, runs, writers

SURROGATES = {"sigmoid": [1.0, 4.0], "arctan": [2.0, 8.0]}
SEEDS = [0, 1, 2]


def write_run(
    run_dir: Path,
    surrogate: dict,
    seed: int,
    val_curve: list[float],
    test_curve: list[float],
    rates: dict[str, float],
    wall: float,
    status: str | None = "completed",
    **config,
) -> Path:
    """A run directory as train_and_evaluate leaves it (status None: no summary.json)."""
    run_dir.mkdir(parents=True)
    cfg = {
        "seed": seed,
        "T": 25,
        "surrogate": surrogate,
        "model": {"name": "mlp", "hidden": [256], "neuron": {"beta": 0.9}},
        "dataset": {"name": "digits"},
        "optimizer": {"name": "adam", "lr": 0.002},
        "trainer": {"epochs": len(val_curve), "progress": False},
        "logger": {"name": "wandb", "run_name": f"run-{seed}-{os.urandom(4).hex()}"},
    }
    for key, value in config.items():  # "optimizer.lr": 0.01
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    lines = []
    for e, (v, t) in enumerate(zip(val_curve, test_curve, strict=True), 1):
        lines.append(
            {
                "split": "train",
                "step": 10 * e - 5,
                "epoch": e,
                "loss": 1.0 / e,
                "accuracy": v,
                "grad_norm": 1.0,
                "rate/lif0": 0.1,
            }
        )
        lines.append(
            {
                "split": "epoch",
                "step": 10 * e,
                "epoch": e,
                "val_accuracy": v,
                "test_accuracy": t,
                "train_accuracy": v,
                **{f"test_rate/{k}": r for k, r in rates.items()},
            }
        )
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    if status is not None:
        summary = {
            "status": status,
            "epochs": len(val_curve),
            "test_accuracy": test_curve[-1],
            "best_val_accuracy": max(val_curve),
            "best_val_epoch": int(np.argmax(val_curve)) + 1,
            "firing_rates": rates,
            "wall_time_s": wall,
            "test_loss": 0.1,
        }
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


@pytest.fixture
def sweep(tmp_path: Path) -> tuple[Path, dict]:
    """2 surrogates x 2 alphas x 3 seeds with random numbers; returns (dir, expected values)."""
    rng = np.random.default_rng(0)
    expected = {}
    num = 0
    for name, alphas in SURROGATES.items():
        for alpha in alphas:
            for seed in SEEDS:
                val = sorted(rng.uniform(0.5, 1.0, size=4).tolist())
                test = rng.uniform(0.5, 1.0, size=4).tolist()
                rates = {"lif0": float(rng.uniform(0, 0.3)), "lif1": float(rng.uniform(0, 0.3))}
                wall = float(rng.uniform(5, 10))
                write_run(
                    tmp_path / "sweep" / f"{num}-surrogate={name},alpha={alpha}",
                    {"name": name, "alpha": alpha},
                    seed,
                    val,
                    test,
                    rates,
                    wall,
                )
                expected.setdefault((name, alpha), []).append((val, test, rates, wall))
                num += 1
    return tmp_path / "sweep", expected


def test_mean_and_sample_std_match_hand_computation(sweep):
    root, expected = sweep
    loaded = [runs.load_run(d) for d in runs.find_runs([root])]
    assert len(loaded) == 12 and all(r.status == "completed" for r in loaded)
    columns, table = report.summarize(loaded, target=0.8)
    assert columns == ["surrogate", "alpha"]
    assert len(table) == 4
    for row in table:
        seeds = expected[(row["surrogate"], row["alpha"])]
        best = [max(v) for v, *_ in seeds]
        test = [t[-1] for _, t, *_ in seeds]
        assert row["n"] == 3
        assert row["best_val_accuracy_mean"] == pytest.approx(statistics.mean(best), rel=1e-12)
        assert row["best_val_accuracy_std"] == pytest.approx(statistics.stdev(best), rel=1e-12)
        assert row["test_accuracy_mean"] == pytest.approx(statistics.mean(test), rel=1e-12)
        assert row["test_accuracy_std"] == pytest.approx(statistics.stdev(test), rel=1e-12)
        reach = [next((e for e, a in enumerate(v, 1) if a >= 0.8), None) for v, *_ in seeds]
        hit = [e for e in reach if e is not None]
        assert row["reached_target"] == len(hit)
        if hit:
            assert row["epochs_to_target_mean"] == pytest.approx(statistics.mean(hit))
        rate = statistics.mean(statistics.mean(r.values()) for _, _, r, _ in seeds)
        assert row["firing_rate_mean"] == pytest.approx(rate, rel=1e-12)
        assert row["wall_time_s_mean"] == pytest.approx(statistics.mean(w for *_, w in seeds))


def test_csv_holds_the_table_at_full_precision(sweep, tmp_path):
    root, expected = sweep
    out = report.make_report([root], tmp_path / "rep", target=0.8)
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        best = [max(v) for v, *_ in expected[(row["surrogate"], float(row["alpha"]))]]
        assert float(row["best_val_accuracy_mean"]) == pytest.approx(
            statistics.mean(best), rel=1e-14
        )
        assert float(row["best_val_accuracy_std"]) == pytest.approx(
            statistics.stdev(best), rel=1e-14
        )
    md = (out / "summary.md").read_text()
    assert "ddof=1" in md and md.count("\n| ") == 5  # header + 4 rows


def test_single_seed_has_no_std():
    mean, std, n = runs.mean_std([0.5])
    assert (mean, n) == (0.5, 1) and np.isnan(std)
    assert runs.mean_std([None, 0.2, 0.4])[:2] == pytest.approx(
        (0.3, statistics.stdev([0.2, 0.4]))
    )
    assert np.isnan(runs.mean_std([])[0])


def test_epochs_to_target():
    recs = [
        {"epoch": 1, "val_accuracy": 0.5, "test_accuracy": 0.92},
        {"epoch": 2, "val_accuracy": 0.91, "test_accuracy": 0.95},
    ]
    assert runs.epochs_to_target(recs, 0.9) == 2
    assert runs.epochs_to_target(recs, 0.9, split="test") == 1
    assert runs.epochs_to_target(recs, 0.99) is None


def test_failed_and_running_runs_are_listed_not_averaged(tmp_path):
    root = tmp_path / "sweep"
    s = {"name": "sigmoid", "alpha": 4.0}
    ok = write_run(root / "0-ok", s, 0, [0.9], [0.9], {"lif0": 0.1}, 1.0)
    write_run(root / "1-diverged", s, 1, [0.2], [0.1], {"lif0": 0.1}, 1.0, status="diverged")
    dead = write_run(root / "2-dead", s, 2, [0.3], [0.3], {"lif0": 0.1}, 1.0, status=None)
    old = time.time() - 3 * 3600
    for dirpath, _, files in os.walk(dead):
        for f in [*files, "."]:
            os.utime(os.path.join(dirpath, f), (old, old))
    running = write_run(root / "3-running", s, 3, [0.4], [0.4], {"lif0": 0.1}, 1.0, status=None)
    with open(running / "metrics.jsonl", "a") as f:
        f.write('{"split": "train", "st')  # a line being written right now
    broken = write_run(root / "4-broken", s, 4, [0.9], [0.9], {"lif0": 0.1}, 1.0)
    lines = (broken / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:20]
    (broken / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (root / "5-nosummary-json").mkdir()
    (root / "5-nosummary-json" / "config.yaml").write_text(yaml.safe_dump({"seed": 5}))
    (root / "5-nosummary-json" / "summary.json").write_text("{not json")

    by_name = {r.path.name: r for r in map(runs.load_run, runs.find_runs([root]))}
    assert {k: r.status for k, r in by_name.items()} == {
        "0-ok": "completed",
        "1-diverged": "failed",
        "2-dead": "failed",
        "3-running": "running",
        "4-broken": "failed",
        "5-nosummary-json": "failed",
    }
    assert "diverged" in by_name["1-diverged"].reason
    assert "no summary.json" in by_name["2-dead"].reason
    assert "line 2" in by_name["4-broken"].reason

    out = report.make_report([root])
    assert out == root / "report"
    _, table = report.summarize(list(by_name.values()))
    sig = next(r for r in table if r["surrogate"] == "sigmoid")
    assert (sig["n"], sig["n_failed"], sig["n_running"]) == (1, 3, 1)
    assert sig["test_accuracy_mean"] == 0.9 and np.isnan(sig["test_accuracy_std"])
    md = (out / "summary.md").read_text()
    html = (out / "index.html").read_text()
    for name in by_name:
        if name != "0-ok":
            assert name in md and name in html
    assert "**running**" in md and "**failed**" in md
    assert str(ok) not in md.split("## Runs not in the means")[1]


def test_pngs_are_images_of_the_expected_size_and_in_the_html(sweep, tmp_path):
    root, _ = sweep
    out = report.make_report([root], tmp_path / "rep")
    # (height, width) in pixels at 100 dpi, from the figure sizes for 2 surrogates x 2 alphas,
    # 2 layers: accuracy vs alpha 12x4.5 in; bars 8 x (1.6 + 0.3 * 4 rows) in; learning curves
    # 2 panels of 4x3 in; firing rates 8 x (1.6 + 0.25 * 4 rows * 2 layers) in; surrogate
    # shapes 2 panels of 3.2x2.6 in.
    sizes = {
        "accuracy_vs_alpha.png": (450, 1200),
        "accuracy_by_config.png": (280, 800),
        "learning_curves.png": (300, 800),
        "firing_rates.png": (360, 800),
        "surrogate_gradients.png": (260, 640),
    }
    html = (out / "index.html").read_text()
    for name, size in sizes.items():
        img = matplotlib.image.imread(out / name)
        assert img.shape[:2] == size, name
        assert img.std() > 0.01, f"{name} is blank"
        assert f'src="{name}"' in html
    assert "<table>" in html and html.count("<tr") == 5  # header + 4 configurations


class _FakeSurrogate:
    """Duck-typed surrogate (sigmoid with alpha 4): what surrogate_curve_png needs."""

    name = "fake_sigmoid"

    def surrogate_fun(self, x):
        return 1 / (1 + np.exp(-4 * np.asarray(x)))

    def surrogate_grad(self, x):
        s = self.surrogate_fun(x)
        return 4 * s * (1 - s)

    def __repr__(self):
        return "FakeSigmoid(alpha=4)"


def test_surrogate_curve_png(tmp_path):
    path = plots.surrogate_curve_png(_FakeSurrogate(), tmp_path / "g.png")
    img = matplotlib.image.imread(path)
    assert img.shape[:2] == (300, 400) and img.std() > 0.01


def test_varying_config_values_become_columns(tmp_path):
    root = tmp_path / "s"
    for i, (lr, width, seed) in enumerate(
        [(1e-3, 0.5, 0), (1e-3, 0.5, 1), (1e-2, 0.5, 0), (1e-3, 1.0, 0)]
    ):
        write_run(
            root / str(i),
            {"name": "triangular", "alpha": 1.0, "width": width},
            seed,
            [0.5 + i / 10],
            [0.5],
            {"lif0": 0.1},
            1.0,
            **{"optimizer.lr": lr},
        )
    write_run(
        root / "4",
        {"name": "sigmoid", "alpha": 1.0, "width": 3.0},
        0,
        [0.5],
        [0.5],
        {"lif0": 0.1},
        1.0,
    )
    columns, table = report.summarize([runs.load_run(d) for d in runs.find_runs([root])])
    # logger.run_name differs in every run but is bookkeeping; width varies only for
    # triangular, so it names that surrogate and is no column.
    assert columns == ["surrogate", "alpha", "optimizer.lr"]
    keys = [(r["surrogate"], r["optimizer.lr"], r["n"]) for r in table]
    assert keys == [
        ("sigmoid", 0.002, 1),
        ("triangular(width=0.5)", 0.001, 2),
        ("triangular(width=0.5)", 0.01, 1),
        ("triangular(width=1)", 0.001, 1),
    ]


def test_cli(sweep, tmp_path, capsys):
    root, _ = sweep
    assert report.main([str(root), "--target", "0.7"]) == 0
    assert "report:" in capsys.readouterr().out
    assert (root / "report" / "index.html").is_file()
    assert report.main([str(root), "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "summary.csv").is_file()
    # The report directory of an earlier report is not mistaken for runs.
    assert len(runs.find_runs([root])) == 12
    assert report.main([str(tmp_path / "empty")]) == 2


def test_sweep_group_and_tags():
    assert writers.sweep_group("outputs/multirun/2025-06-01/12-00-00") == "2025-06-01_12-00-00"
    assert (
        writers.sweep_group("/x/outputs/multirun/2025-06-01/12-00-00", "alpha_scan")
        == "alpha_scan_2025-06-01_12-00-00"
    )
    assert writers.sweep_group("/scratch/my_sweep") == "my_sweep"
    assert writers.hydra_sweep_group() is None  # not inside a Hydra job
    cfg = {
        "seed": 2,
        "surrogate": {"name": "sigmoid", "alpha": 4.0},
        "model": {"name": "mlp"},
        "dataset": {"name": "digits"},
    }
    assert writers.run_tags(cfg) == [
        "surrogate=sigmoid",
        "alpha=4",
        "model=mlp",
        "dataset=digits",
        "seed=2",
    ]
    cfg["surrogate"] = {"name": "straight_through"}
    assert "alpha" not in " ".join(writers.run_tags(cfg))


def test_preempted_run_is_failed_until_it_resumes(tmp_path):
    s = {"name": "sigmoid", "alpha": 4.0}
    run_dir = write_run(tmp_path / "r", s, 0, [0.5], [0.5], {"lif0": 0.1}, 1.0, status="preempted")
    old = time.time() - 3600
    for dirpath, _, files in os.walk(run_dir):
        for f in [*files, "."]:
            os.utime(os.path.join(dirpath, f), (old, old))
    run = runs.load_run(run_dir)
    assert run.status == "failed" and "pre-empted" in run.reason
    with open(run_dir / "metrics.jsonl", "a") as f:  # the requeued job resumed and writes
        f.write(json.dumps({"split": "train", "step": 11, "epoch": 2}) + "\n")
    run = runs.load_run(run_dir)
    assert run.status == "running" and "resumed" in run.reason
