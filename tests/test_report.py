"""The sweep report: numbers against hand computations on synthetic run directories.

Every run directory here is written by hand (config.yaml, metrics.jsonl, summary.json) in the
formats the trainer writes, so these tests need neither training nor wandb.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import statistics
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import scipy.stats
import yaml

from snntrain import compare, plots, report, runs, writers

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
    assert runs.mean_std([None, 0.2, 0.4])[:2] == pytest.approx((0.3, statistics.stdev([0.2, 0.4])))
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
    binary = write_run(root / "6-binary", s, 6, [0.9], [0.9], {"lif0": 0.1}, 1.0)
    with open(binary / "metrics.jsonl", "ab") as f:  # UnicodeDecodeError: a traceback
        f.write(b"\xff\xfe garbage\n")
    (root / "5-nosummary-json").mkdir()
    (root / "5-nosummary-json" / "config.yaml").write_text(yaml.safe_dump({"seed": 5}))
    (root / "5-nosummary-json" / "summary.json").write_text("{not json")

    by_name = {r.path.name: r for r in map(runs.load_run, runs.find_runs([root]))}
    assert {k: r.status for k, r in by_name.items()} == {
        "0-ok": "completed",
        "1-diverged": "diverged",  # a result of its configuration, counted apart
        "2-dead": "failed",
        "3-running": "running",
        "4-broken": "completed",  # its summary.json is whole: a damaged line of its curves
        "5-nosummary-json": "failed",
        "6-binary": "completed",
    }
    assert by_name["6-binary"].reason == ("metrics.jsonl line 3 is not JSON: counted from its "
                                          "summary.json, its curves miss the lines that are not")
    assert "diverged" in by_name["1-diverged"].reason
    assert "no summary.json" in by_name["2-dead"].reason
    assert by_name["4-broken"].reason.startswith("metrics.jsonl line 2 is not JSON")

    out = report.make_report([root])
    assert out == root / "report"
    _, table = report.summarize(list(by_name.values()))
    sig = next(r for r in table if r["surrogate"] == "sigmoid")
    assert (sig["n"], sig["n_failed"], sig["n_diverged"], sig["n_running"]) == (3, 1, 1, 1)
    assert sig["test_accuracy_mean"] == 0.9 and sig["test_accuracy_std"] == 0.0
    md = (out / "summary.md").read_text()
    html = (out / "index.html").read_text()
    assert "Not in the means: 1 diverged, 2 failed and 1 running of 7 runs" in md
    assert md.split("## Runs in the means with damaged records\n\n")[1].splitlines()[:2] == [
        f"- `{by_name[n].path}`: {by_name[n].reason}" for n in ("4-broken", "6-binary")]
    assert "<h2>Runs in the means with damaged records</h2>" in html
    assert "**diverged** `" in md
    for name in by_name:
        if name != "0-ok":
            assert name in md and name in html
    assert "**running**" in md and "**failed**" in md
    assert str(ok) not in md.split("## Runs not in the means")[1]


def test_a_completed_run_trained_on_is_running_or_killed_not_completed(tmp_path):
    """A completed 1-epoch run resumed with trainer.epochs=30 keeps its old summary.json until
    it ends: the report counted it as a completed 30-epoch run with its 1-epoch numbers (and
    named it the winner), and after a kill for good."""
    s = {"name": "sigmoid", "alpha": 4.0}
    live = write_run(tmp_path / "live", s, 0, [0.2, 0.5, 0.9], [0.2, 0.5, 0.9], {}, 1.0)
    summary = json.loads((live / "summary.json").read_text())
    (live / "summary.json").write_text(json.dumps({**summary, "epochs": 1}))
    cfg = yaml.safe_load((live / "config.yaml").read_text())
    cfg["trainer"]["epochs"] = 30
    (live / "config.yaml").write_text(yaml.safe_dump(cfg))
    shutil.copytree(live, tmp_path / "dead")
    old = time.time() - 3 * 3600
    for dirpath, _, files in os.walk(tmp_path / "dead"):
        for f in [*files, "."]:
            os.utime(os.path.join(dirpath, f), (old, old))
    a, b = runs.load_run(live), runs.load_run(tmp_path / "dead")
    assert (a.status, a.reason) == ("running", "trained on from its 1 completed epochs to "
                                    "trainer.epochs=30: epoch 3/30, last write 0 s ago")
    assert b.status == "failed" and b.reason == (
        "trained on from its 1 completed epochs to trainer.epochs=30: epoch 3/30, last write "
        "3.0 h ago (killed or crashed; rerun its command to go on)")


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
    # Runs from before cost metrics: no cost columns, no cost plot, empty CSV cells.
    assert not (out / "accuracy_vs_synops.png").exists() and "synaptic ops" not in html
    assert {r["synops_mean"] for r in _csv_rows(out)} == {""}


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
    # a key another run lacks, given as null (sgd's momentum: null beside adam's config, which
    # has none), does not vary: it made a column of dashes named in every verdict line
    write_run(root / "5", {"name": "sigmoid", "alpha": 1.0, "width": 3.0}, 1, [0.6], [0.5],
              {"lif0": 0.1}, 1.0, **{"optimizer.momentum": None})
    columns, table = report.summarize([runs.load_run(d) for d in runs.find_runs([root])])
    assert columns == ["surrogate", "alpha", "optimizer.lr"]
    assert [(r["surrogate"], r["n"]) for r in table][0] == ("sigmoid", 2)


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
    capsys.readouterr()
    assert report.main([str(root), "--out", "/proc/no/report"]) == 2
    assert capsys.readouterr().err == ("snntrain-report: error: cannot write the report to "
                                       "/proc/no: No such file or directory\n")
    for bad in (["--target", "2"], ["--target", "x"], ["--stale-after", "-5"]):
        with pytest.raises(SystemExit):  # argparse's one line naming the option
            report.main([str(root), *bad])
        assert f"argument {bad[0]}: {bad[1]}: " in capsys.readouterr().err


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
    cfg["surrogate"] = {"name": "sigmoid", "alpha": 4.0, "normalize": True}
    assert writers.run_tags(cfg)[:3] == ["surrogate=sigmoid", "alpha=4", "normalized"]
    cfg["surrogate"]["normalize"] = False
    assert "normalized" not in writers.run_tags(cfg)


def test_preempted_run_is_preempted_until_it_resumes(tmp_path, capsys):
    """A pre-empted run is its own kind, with the way to resume it, not a failure (before:
    "1 failed"; and a sweep pre-empted before any run finished blamed a missing validation
    split)."""
    s = {"name": "sigmoid", "alpha": 4.0}
    run_dir = write_run(tmp_path / "r", s, 0, [0.5], [0.5], {"lif0": 0.1}, 1.0, status="preempted")
    old = time.time() - 3600
    for dirpath, _, files in os.walk(run_dir):
        for f in [*files, "."]:
            os.utime(os.path.join(dirpath, f), (old, old))
    run = runs.load_run(run_dir)
    assert run.status == "preempted" and run.reason == "pre-empted; rerun its command to resume it"
    assert report.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "No run has completed: no configuration can be selected." in out
    assert ("Not in the means: 1 pre-empted (rerun the command to resume them; a sweep's with "
            "hydra.sweep.dir=<its directory>), 0 failed and 0 running of 1 runs") in out
    assert "1 runs: 0 completed, 0 running, 0 failed, 1 pre-empted, under" in out
    write_run(tmp_path / "done", s, 1, [0.6], [0.6], {"lif0": 0.1}, 1.0)
    assert report.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Selected by best validation accuracy" in out
    head = next(line for line in out.splitlines() if line.startswith("| rank"))
    assert head.rstrip(" |").endswith("| running | pre-empted")
    with open(run_dir / "metrics.jsonl", "a") as f:  # the requeued job resumed and writes
        f.write(json.dumps({"split": "train", "step": 11, "epoch": 2}) + "\n")
    run = runs.load_run(run_dir)
    assert run.status == "running" and "resumed" in run.reason
    # an attempt refused at start touches only its lock, .hydra/ and its log (and probes the
    # directory): the run stays pre-empted (it read as running for 30 minutes)
    os.utime(run_dir / "metrics.jsonl", (old, old))
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / "report").mkdir()  # (and a report of the run itself)
    for name in (".lock", ".hydra/overrides.yaml", "snntrain.log", ".write_test1",
                 "report/index.html"):
        (run_dir / name).write_text("x")
    (run_dir / ".write_test1").unlink()
    assert runs.load_run(run_dir).status == "preempted"
    # a failed run rerun (it continues, as a pre-empted one) is running while it writes
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "status": "failed"}))
    os.utime(run_dir / "summary.json", (old, old))
    assert runs.load_run(run_dir).status == "failed"
    (run_dir / "metrics.jsonl").touch()
    run = runs.load_run(run_dir)
    assert run.status == "running" and run.reason == "resumed after a failure, epoch 1"
    # a multirun job resumes by rerunning its sweep in its directory (a plain rerun of `-m`
    # starts a new sweep)
    sweep = tmp_path / "sweep"
    job = write_run(sweep / "0-seed=0", s, 0, [0.5], [0.5], {"lif0": 0.1}, 1.0, status="preempted")
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    assert runs.load_run(job, now=time.time() + 3600).reason == (
        f'pre-empted; rerun its sweep\'s command with hydra.sweep.dir="{sweep.absolute()}" to '
        "resume it")
    # a population member resumes with its population (rerun in the member's directory, its
    # command trained a new run from step 0 there); a population in a sweep, with the sweep
    for pop, how in ((tmp_path / "pop", "rerun the population's command to resume it"),
                     (sweep / "1-pop", f"rerun its sweep's command with hydra.sweep.dir="
                                       f'"{sweep.absolute()}" to resume it')):
        member = write_run(pop / "members" / "0-seed=0", s, 0, [0.5], [0.5], {"lif0": 0.1}, 1.0,
                           status="preempted")
        (pop / "config.yaml").write_text("seed: 0\n")
        assert runs.load_run(member, now=time.time() + 3600).reason == (
            f"pre-empted with its population {pop.absolute()}; {how}")


def test_resume_command_parses_as_hydra_overrides(tmp_path, monkeypatch):
    """The printed resume command failed as written: a default run directory holds '=' and
    ',' (from the overrides), which Hydra's override grammar refuses unquoted."""
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from snntrain import lifecycle

    run_dir = tmp_path / "12-16-53-logger=none,trainer.population.seed=_0,1"
    args = ["trainer.population.seed=[0,1]", "logger=none", "hydra.run.dir=old"]
    parser = OverridesParser.create()
    for argv, key, where in ((args, "hydra.run.dir", run_dir),
                             (["-m", *args[:2]], "hydra.sweep.dir", tmp_path)):
        monkeypatch.setattr("sys.argv", ["snntrain", *argv])
        words = shlex.split(lifecycle.resume_command(run_dir))
        assert words[:3] == ["python", "-m", "snntrain"] and "hydra.run.dir=old" not in words
        parsed = {o.key_or_group: o.value() for o in
                  parser.parse_overrides([w for w in words[3:] if w != "-m"])}
        assert parsed[key] == str(where.absolute())
        assert parsed["trainer.population.seed"] == [0, 1]
    # a multirun job under submitit: argv is submitit's; the sweep's command is its record
    (tmp_path / ".snntrain_sweep.json").write_text(json.dumps(
        {"task": ["seed=0,1", "logger=none"], "hydra": ["hydra/launcher=submitit_local"]}))
    monkeypatch.setattr("sys.argv", ["/x/submitit/core/_submit.py", "/s/.submitit/%j"])
    monkeypatch.setattr(lifecycle, "_multirun", lambda: True)
    assert shlex.split(lifecycle.resume_command(tmp_path / "0-seed=0")) == [
        "python", "-m", "snntrain", "-m", "hydra/launcher=submitit_local", "seed=0,1",
        "logger=none", f'hydra.sweep.dir="{tmp_path.absolute()}"']
    # --config-dir (or -cn): without it the command composed another config
    from omegaconf import OmegaConf

    from snntrain.paths import CONFIG_DIR
    from snntrain.startup import config_flags

    hydra = {"runtime": {"config_sources": [
        {"path": "hydra.conf", "schema": "pkg", "provider": "hydra"},
        {"path": str(CONFIG_DIR), "schema": "file", "provider": "main"},
        {"path": "/my/conf", "schema": "file", "provider": "command-line"}]},
        "job": {"config_name": "mine"}}
    flags = config_flags(OmegaConf.create({"hydra": hydra}))
    assert flags == ["--config-dir", "/my/conf", "--config-name", "mine"]
    (tmp_path / ".snntrain_sweep.json").write_text(json.dumps(
        {"task": ["seed=0,1"], "hydra": [], "config": flags}))
    assert shlex.split(lifecycle.resume_command(tmp_path / "0-seed=0")) == [
        "python", "-m", "snntrain", "--config-dir", "/my/conf", "--config-name", "mine", "-m",
        "seed=0,1", f'hydra.sweep.dir="{tmp_path.absolute()}"']
    monkeypatch.undo()
    # train_and_evaluate from a script: its own arguments were printed as overrides
    monkeypatch.setattr("sys.argv", ["myscript.py", "term11", str(tmp_path)])
    assert lifecycle.resume_command(run_dir) == (
        f"train_and_evaluate(<the same config>, {str(run_dir.absolute())!r}) again")


# ---- ranking, verdicts, alpha ranges -------------------------------------------------------


def _keep_figures(monkeypatch) -> list:
    """The figures the plots draw (a list filled as they are made)."""
    figures = []
    real = plots._figure
    monkeypatch.setattr(plots, "_figure", lambda *a, **k: figures.append(real(*a, **k))
                        or figures[-1])
    return figures


def _config_sweep(root: Path, configs: dict, **config) -> Path:
    """One run per (surrogate, alpha, seed): ``configs[(name, alpha)] = [(val, test), ...]``."""
    num = 0
    for (name, alpha), seeds in configs.items():
        for seed, (val, test) in enumerate(seeds):
            s = {"name": name} if alpha is None else {"name": name, "alpha": alpha}
            write_run(root / str(num), s, seed, [val], [test], {"lif0": 0.1}, 1.0, **config)
            num += 1
    return root


def _csv_rows(out: Path) -> list[dict]:
    with open(out / "summary.csv") as f:
        return list(csv.DictReader(f))


def _welch_by_hand(x: list[float], ref: list[float]) -> tuple[float, float, float, float]:
    """(diff, low, high, df): Welch's t interval written out, with only t's quantile from scipy."""
    from scipy import stats as st

    n1, n2 = len(x), len(ref)
    v1, v2 = statistics.variance(x) / n1, statistics.variance(ref) / n2
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    diff = statistics.mean(x) - statistics.mean(ref)
    half = st.t.ppf(0.975, df) * (v1 + v2) ** 0.5
    return diff, diff - half, diff + half, df


def test_welch_interval_and_verdict_match_a_hand_computation(tmp_path):
    winner = [0.95, 0.96, 0.94]
    worse = [0.93, 0.91, 0.94, 0.92]
    close = [0.94, 0.96, 0.95, 0.93]
    root = _config_sweep(
        tmp_path / "s",
        {
            ("sigmoid", 4.0): [(v, 0.9) for v in winner],
            ("arctan", 1.0): [(v, 0.9) for v in worse],
            ("erf", 1.0): [(v, 0.9) for v in close],
        },
    )
    out = report.make_report([root], tmp_path / "rep")
    rows = {r["surrogate"]: r for r in _csv_rows(out)}
    assert [r["rank"] for r in _csv_rows(out)] == ["1", "2", "3"]
    assert rows["sigmoid"]["verdict"] == "selected" and rows["sigmoid"]["diff_mean"] == ""
    diff, low, high, df = _welch_by_hand(worse, winner)
    assert df == pytest.approx(243 / 49, rel=1e-9)  # (7.5e-5)² / ((1e-4/3)²/2 + (5e-4/12)²/3)
    got = rows["arctan"]
    for key, want in (("diff_mean", diff), ("diff_low", low), ("diff_high", high), ("diff_df", df)):
        assert float(got[key]) == pytest.approx(want, rel=1e-12), key
    assert high < 0  # the interval excludes 0
    half = 100 * (high - low) / 2
    assert got["verdict"] == f"worse by 2.5 ± {half:.1f} points"
    diff, low, high, df = _welch_by_hand(close, winner)
    assert low < 0 < high and rows["erf"]["verdict"] == "within noise"
    assert float(rows["erf"]["diff_low"]) == pytest.approx(low, rel=1e-12)
    verdict = (out / "verdict.txt").read_text()
    assert verdict.startswith("Selected by best validation accuracy (mean over seeds): sigmoid")
    assert "Within noise of it" in verdict and "erf, α=1" in verdict
    assert f"\nWorse: arctan, α=1 (worse by 2.5 ± {half:.1f} points).\n" in verdict
    # no spread on either side (each seed the same count of examples): no interval, and no
    # claim (it said "worse by 0.7 points (no spread over seeds)", shown as [-0.69, -0.69])
    root = _config_sweep(tmp_path / "flat", {("sigmoid", 1.0): [(0.5, 0.9)] * 2,
                                             ("arctan", 1.0): [(71 / 144, 0.9)] * 2})
    out = report.make_report([root], tmp_path / "rep-flat")
    row = {r["surrogate"]: r for r in _csv_rows(out)}["arctan"]
    assert row["verdict"] == ("0.7 points apart, but neither varies over its seeds: no "
                              "interval, no claim can be made")
    assert row["diff_low"] == row["diff_high"] == "" and "Worse" not in (
        out / "verdict.txt").read_text()
    assert "-0.69 (no interval)" in (out / "summary.md").read_text()


def test_ranking_selects_on_validation_never_on_test(tmp_path):
    """The best-test configuration loses when its validation accuracy is lower; the test
    accuracy quoted is the selected one's, even with optimize_metric=test_accuracy."""
    root = _config_sweep(
        tmp_path / "s",
        {
            ("arctan", 1.0): [(0.97, 0.90), (0.96, 0.91), (0.97, 0.92)],  # best val
            ("sigmoid", 4.0): [(0.93, 0.99), (0.94, 0.98), (0.93, 0.99)],  # best test
        },
        optimize_metric="test_accuracy",
    )
    out = report.make_report([root], tmp_path / "rep")
    first = _csv_rows(out)[0]
    assert (first["surrogate"], first["rank"], first["selection_metric"]) == (
        "arctan",
        "1",
        "best_val_accuracy",
    )
    verdict = (out / "verdict.txt").read_text().splitlines()
    assert "arctan, α=1" in verdict[0] and "sigmoid" not in verdict[0]
    assert "not by the sweep's optimize_metric (test_accuracy)" in verdict[1]
    quote = next(line for line in verdict if line.startswith("Test accuracy of the selected"))
    assert f"{100 * statistics.mean([0.90, 0.91, 0.92]):.2f} ± " in quote
    assert f"{100 * statistics.stdev([0.90, 0.91, 0.92]):.2f} %" in quote


def test_a_validation_optimize_metric_is_used_and_losses_are_minimised():
    def row(name: str, losses: list[float]) -> runs.Row:
        done = [
            runs.Run(Path(f"{name}{i}"), "completed", summary={"val_loss": v}, config={"seed": i})
            for i, v in enumerate(losses)
        ]
        return runs.Row({"surrogate": name, "alpha": None}, {"name": name}, done)

    metric = compare.selection_metric(["val_loss", "val_loss"])
    assert metric.key == "val_loss" and not metric.higher_is_better and metric.note == ""
    ranked = compare.rank([row("high", [0.5, 0.51, 0.52]), row("low", [0.2, 0.21, 0.22])], metric)
    assert [e.row.key["surrogate"] for e in ranked] == ["low", "high"]
    assert ranked[1].verdict.startswith("worse by 0.3 ± 0.0")  # a loss: no "points"
    assert compare.selection_metric(["test_accuracy"]).key == "best_val_accuracy"
    assert compare.selection_metric([None]).key == "best_val_accuracy"


def test_one_seed_per_configuration_makes_no_claim(tmp_path):
    root = _config_sweep(
        tmp_path / "s", {("sigmoid", 4.0): [(0.95, 0.9)], ("arctan", 1.0): [(0.90, 0.9)]}
    )
    out = report.make_report([root], tmp_path / "rep")
    rows = _csv_rows(out)
    assert rows[1]["verdict"] == "1 seed: no claim can be made"
    assert rows[1]["diff_low"] == rows[1]["diff_high"] == ""
    verdict = (out / "verdict.txt").read_text()
    assert "Every configuration ran with one seed, so no claim can be made" in verdict
    assert "seed=0,1,2" in verdict and "Worse" not in verdict and "Within noise" not in verdict


ALPHA_SCAN = {
    ("sigmoid", 1.0): [0.800, 0.801, 0.799],
    ("sigmoid", 2.0): [0.945, 0.955, 0.935],
    ("sigmoid", 4.0): [0.950, 0.951, 0.949],
    ("sigmoid", 8.0): [0.938, 0.958, 0.948],
    ("sigmoid", 16.0): [0.900, 0.901, 0.899],
    # Not contiguous: α = 2 is worse, α = 1 within noise (wide spread); the range is [4, 8].
    ("arctan", 1.0): [0.90, 0.99, 0.95],
    ("arctan", 2.0): [0.900, 0.901, 0.899],
    ("arctan", 4.0): [0.960, 0.961, 0.959],
    ("arctan", 8.0): [0.950, 0.965, 0.958],
}


def test_alpha_range_is_the_contiguous_within_noise_range_of_the_best_alpha(tmp_path):
    # Expected from the hand-written Welch interval to each series' best alpha.
    for name, best, within, worse in (
        ("sigmoid", 4.0, (2.0, 8.0), (1.0, 16.0)),
        ("arctan", 4.0, (1.0, 8.0), (2.0,)),
    ):
        ref = ALPHA_SCAN[(name, best)]
        for a in within:
            _, low, high, _ = _welch_by_hand(ALPHA_SCAN[(name, a)], ref)
            assert low < 0 < high, (name, a)
        for a in worse:
            assert _welch_by_hand(ALPHA_SCAN[(name, a)], ref)[2] < 0, (name, a)
    root = _config_sweep(
        tmp_path / "s", {k: [(v, 0.9) for v in vs] for k, vs in ALPHA_SCAN.items()}
    )
    columns, rows = runs.group_runs([runs.load_run(d) for d in runs.find_runs([root])])
    ranges = {r.series: r for r in compare.alpha_ranges(rows, compare.Metric("best_val_accuracy"))}
    assert (ranges["sigmoid"].best_alpha, ranges["sigmoid"].low, ranges["sigmoid"].high) == (
        4,
        2,
        8,
    )
    assert (ranges["arctan"].best_alpha, ranges["arctan"].low, ranges["arctan"].high) == (4, 4, 8)
    assert not ranges["sigmoid"].at_edge and ranges["arctan"].at_edge
    out = report.make_report([root], tmp_path / "rep")
    verdict = (out / "verdict.txt").read_text()
    assert (
        "Alpha scan, sigmoid: best α = 4 (95.00 ± 0.10 %, 3 seeds); within noise for α from 2 to 8."
        in verdict
    )
    assert "arctan: best α = 4" in verdict and "from 4 to 8 (reaches the edge" in verdict
    assert (out / "accuracy_vs_alpha.png").is_file()


def test_alpha_range_with_one_seed_makes_no_claim(tmp_path):
    root = _config_sweep(
        tmp_path / "s", {("sigmoid", a): [(0.9 + a / 100, 0.9)] for a in (1.0, 2.0)}
    )
    columns, rows = runs.group_runs([runs.load_run(d) for d in runs.find_runs([root])])
    (rng,) = compare.alpha_ranges(rows, compare.Metric("best_val_accuracy"))
    assert rng.best_alpha == 2 and not rng.claim
    assert "too few seeds to say which alphas are within noise" in rng.text()


def test_html_opens_with_the_verdict_then_the_table_then_the_plots(sweep, tmp_path):
    root, _ = sweep
    out = report.make_report([root], tmp_path / "rep")
    page = (out / "index.html").read_text()
    verdict = (out / "verdict.txt").read_text().splitlines()[0]
    assert verdict.startswith("Selected by best validation accuracy")
    assert page.index('id="verdict"') < page.index(verdict.split(":")[0]) < page.index("<table")
    assert page.index("<table") < page.index("<img")
    assert page.count("class=selected") == 1


@pytest.mark.slow
def test_report_renders_in_headless_chromium(sweep, tmp_path):
    """The page in a real browser: the verdict is the first text and the screenshot is not blank."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium (Debian: apt-get install chromium)")
    root, _ = sweep
    out = report.make_report([root], tmp_path / "rep")
    url = (out / "index.html").as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1400,1800", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    body = dom[dom.index("<body>") :]
    assert body.index("Selected by best validation accuracy") < body.index("<table")
    img = matplotlib.image.imread(shot)
    assert img.shape[:2] == (1800, 1400) and img.std() > 0.05
    print(f"screenshot: {shot}")


# ---- the console: progress bar and end-of-run summary --------------------------------------


def test_progress_says_compiling_then_measures_speed_and_eta_after_it():
    from snntrain.progress import COMPILING, Progress

    bar = Progress(total_steps=100, steps_per_epoch=10, enabled=False, batch_size=32)
    assert bar.status(0, {}, now=0.0) == COMPILING
    bar.compiled(step=1, now=30.0)  # the first step compiled for 30 s
    # the steps queued behind it finish at once: no rate yet (it showed 665,597 samples/s)
    assert "- samples/s ETA -" in bar.status(5, {"loss": 1.0}, now=30.001)
    # Fewer steps than log_every in an epoch: only the epoch record's train_* values arrive.
    text = bar.status(10, {"train_loss": 0.5, "train_accuracy": 0.8}, now=31.0)
    assert "loss 0.500 acc 0.800" in text
    assert f"{9 * 32 / 1.0:,.0f} samples/s" in text  # 9 steps after compiling in 1 s
    assert "ETA 0:00:10" in text  # 90 steps left at 9 steps/s
    text = bar.status(55, {"loss": 0.25, "accuracy": 0.9, "samples_per_s": 1e9}, now=36.0)
    assert "loss 0.250 acc 0.900" in text and f"{54 * 32 / 6:,.0f} samples/s" in text
    assert "loss 1.23e+30 acc 0.900" in bar.status(60, {"loss": 1.234e30}, now=37.0)


def test_progress_without_batch_size_skips_the_first_reported_speed():
    from snntrain.progress import COMPILING, Progress

    bar = Progress(100, 10, enabled=False)
    assert bar.status(0, {"samples_per_s": 5.0}, now=0.0) == COMPILING
    first = bar.status(10, {"samples_per_s": 1e9}, now=20.0)  # no compiled(): inferred here
    assert "- samples/s" in first and "ETA -" in first
    assert "2,000 samples/s" in bar.status(30, {"samples_per_s": 2000.0}, now=22.0)


def test_epoch_lines_print_without_the_bar_and_population_lines_name_the_best(capsys):
    """``trainer.progress=false`` (a log file) hid the one-line epoch summaries too; a
    population printed none. Now both print unless ``epoch_lines`` is off (other hosts)."""
    from snntrain.population import _epoch_line
    from snntrain.progress import Progress

    record = {"train_loss": 0.5, "train_accuracy": 0.75, "val_accuracy": 0.5,
              "test_accuracy": 0.25}
    with Progress(10, 5, enabled=False, epoch_lines=True) as bar:
        bar.epoch_done(1, record)
    with Progress(10, 5, enabled=False) as bar:  # the other hosts of a multi-host run
        bar.epoch_done(2, record)
    assert capsys.readouterr().err.splitlines() == [
        "epoch   1  loss 0.5000  train 0.7500  val 0.5000  test 0.2500"]
    records = {"0-seed=0": record, "1-seed=1": {**record, "train_loss": 1.0, "val_accuracy": 1.0,
                                                "test_accuracy": 0.0}}
    means, extra = _epoch_line(records, 3)
    assert means == {"train_loss": 0.75, "train_accuracy": 0.75, "val_accuracy": 0.75,
                     "test_accuracy": 0.125}
    assert extra == "(mean of 2/3 training)  best val 1.0000 1-seed=1"
    assert _epoch_line({}, 3) == ({}, "(mean of 0/3 training)")


def test_wandb_names_tell_apart_what_a_sweep_or_population_varies(tmp_path):
    """Runs of one group varying optimizer.lr (a multirun, or a population's lr axis) all had
    the name ``<surrogate>-seed<s>``; the name now ends with the other varied values."""
    from omegaconf import OmegaConf

    from snntrain import writers

    assert writers.default_run_name({"name": "sigmoid", "alpha": 4.0}, 1) == \
        "sigmoid(alpha=4.0)-seed1"
    assert writers.default_run_name({"name": "arctan", "alpha": 2.0, "normalize": True}, 0,
                                    ["optimizer.lr=0.01", "model.neuron.beta=0.9"]) == \
        "arctan(alpha=2.0)-normalized-seed0-optimizer.lr=0.01-model.neuron.beta=0.9"
    long = [f"model.hidden=[{','.join(['4'] * 44)},{k}]" for k in (4, 5)]  # differ at 140
    assert len({writers.default_run_name({"name": "sigmoid"}, 0, [o]) for o in long}) == 2
    OmegaConf.save({"hydra": {"overrides": {"task": [
        "surrogate=sigmoid,softsign", "optimizer.lr=0.001,0.01", "trainer.epochs=1",
        "+model.x=range(2)", "seed=0,1"]}}}, tmp_path / "multirun.yaml")
    assert writers._swept_keys(tmp_path, {"surrogate.alpha": "interval(1,8)"}) == {
        "surrogate", "optimizer.lr", "model.x", "seed", "surrogate.alpha"}
    assert writers._swept_keys(tmp_path / "nowhere", {}) == set()
    assert [o for o in ("surrogate=sigmoid", "surrogate.alpha=2", "seed=1", "optimizer.lr=0.1",
                        "logger.mode=offline", "hydra.job.chdir=true", "model=conv")
            if writers.names_run(o)] == ["optimizer.lr=0.1", "model=conv"]


def test_print_summary_names_what_ran_and_lists_existing_files_unwrapped(tmp_path):
    import io

    from rich.console import Console

    from snntrain.progress import print_summary

    run_dir = tmp_path / ("a-long-directory-name-" * 4 + "end")
    (run_dir / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "metrics.jsonl", "summary.json"):
        (run_dir / name).write_text("{}")
    summary = {
        "status": "completed",
        "surrogate": "Sigmoid(alpha=4.0)",
        "dataset": "digits: train 1294, val 144, test 359, image (8, 8, 1), 10 classes",
        "test_accuracy": 0.9,
        "run_dir": str(run_dir),
    }
    config = {"seed": 3, "T": 25, "model": {"name": "mlp", "hidden": [64]}}
    buf = io.StringIO()
    print_summary(summary, Console(file=buf, width=40), config=config)
    lines = buf.getvalue().splitlines()
    assert (
        lines[0]
        == "snntrain run completed: Sigmoid(alpha=4.0) · model mlp [64] · digits · T=25 · seed 3"
    )
    assert f"run directory: {run_dir}" in lines  # one line, although wider than the console
    assert "written: config.yaml, metrics.jsonl, summary.json, checkpoints/" in lines
    assert "wandb" not in buf.getvalue()


def test_report_shows_each_surrogates_peak_and_integral_and_warns_on_mixed_scales(tmp_path):
    configs = {("sigmoid", 4.0): [(0.9, 0.9)], ("fast_sigmoid", 25.0): [(0.8, 0.8)]}
    root = _config_sweep(tmp_path / "s", {**configs, ("q_pseudo_spike", 2.0): [(0.7, 0.7)]})
    out = report.make_report([root], tmp_path / "rep")
    scale = {r["surrogate"]: (r["surrogate_peak"], r["surrogate_integral"]) for r in _csv_rows(out)}
    # sigmoid: peak α/4 = 1, ∫ 1; fast_sigmoid: peak 1, ∫ 2/α; q_pseudo_spike: 1, (α+1)/(α−1)
    want = {"sigmoid": (1.0, 1.0), "fast_sigmoid": (1.0, 0.08), "q_pseudo_spike": (1.0, 3.0)}
    assert set(scale) == set(want)
    for name, (peak, integral) in want.items():
        assert float(scale[name][0]) == pytest.approx(peak)
        assert float(scale[name][1]) == pytest.approx(integral)
    assert (
        "Scale differs: the integral of g′(x) ranges from 0.08 to 3"
        in (out / "verdict.txt").read_text()
    )
    same = report.make_report(
        [_config_sweep(tmp_path / "t", configs | {("arctan", 1.0): [(0.9, 0.9)]})]
    )
    assert "Scale differs" in (same / "verdict.txt").read_text()  # fast_sigmoid is still there
    one = report.make_report(
        [
            _config_sweep(
                tmp_path / "u", {("sigmoid", 4.0): [(0.9, 0.9)], ("arctan", 1.0): [(0.8, 0.8)]}
            )
        ]
    )
    assert "Scale differs" not in (one / "verdict.txt").read_text()  # both ∫ 1


def test_normalized_runs_are_their_own_configurations_at_unit_integral(tmp_path):
    root = tmp_path / "s"
    for i, norm in enumerate([False, True]):
        s = {"name": "fast_sigmoid", "alpha": 25.0, "normalize": norm}
        write_run(root / str(i), s, 0, [0.9], [0.9], {"lif0": 0.1}, 1.0)
    columns, table = report.summarize([runs.load_run(d) for d in runs.find_runs([root])])
    assert [r["surrogate"] for r in table] == [
        "fast_sigmoid(normalize=False)",
        "fast_sigmoid(normalize=True)",
    ]
    assert runs.surrogate_scale({"name": "fast_sigmoid", "alpha": 25.0}) == pytest.approx((1, 0.08))
    scaled = runs.surrogate_scale({"name": "fast_sigmoid", "alpha": 25.0, "normalize": True})
    assert scaled == pytest.approx((12.5, 1.0))
    assert np.isnan(runs.surrogate_scale({"name": "no_such_surrogate"})).all()


# ---- cost: synaptic operations, energy, sparsity -------------------------------------------


def test_pareto_front_on_hand_made_points():
    nan = float("nan")
    costs = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, nan, 4.0, 0.5]
    accs = [0.80, 0.85, 0.83, 0.84, 0.90, 0.90, 0.99, 0.90, 0.70]
    # 8 (cheapest), 0, 1, then 4 and its duplicate 7; 2 and 3 lose to 1, 5 to 4 (same
    # accuracy, more ops), 6 has no cost.
    assert compare.pareto_front(costs, accs) == [8, 0, 1, 4, 7]
    # A loss is minimised: the front is the lowest loss for at most that cost.
    losses = [0.5, 0.4, 0.45, 0.4, 0.2]
    assert compare.pareto_front([1, 2, 3, 3, 9], losses, higher_is_better=False) == [0, 1, 4]
    # The definition by brute force on random points: nobody costs <= and scores >= with one
    # of the two strictly.
    rng = np.random.default_rng(0)
    c, a = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 40) / 10
    dominated = {
        i
        for i in range(40)
        for j in range(40)
        if c[j] <= c[i] and a[j] >= a[i] and (c[j] < c[i] or a[j] > a[i])
    }
    front = compare.pareto_front(c.tolist(), a.tolist())
    assert sorted(front) == sorted(set(range(40)) - dominated)
    assert [c[i] for i in front] == sorted(c[i] for i in front)


def _ranked_with_costs(configs: dict) -> tuple[list, list[float]]:
    """Rows from ``configs[name] = (best val accuracies, synaptic ops per seed)``, ranked by
    the compare machinery, and each ranked row's mean ops (through Row.cost_values)."""
    rows = []
    for name, (accs, ops) in configs.items():
        done = [
            runs.Run(
                Path(f"{name}{i}"),
                "completed",
                config={"seed": i},
                summary={"best_val_accuracy": v, "best_val_epoch": 1},
                epochs=[{"epoch": 1, "val_synops/total/acs": o, "val_synops/total/macs": 0.0}],
            )
            for i, (v, o) in enumerate(zip(accs, ops, strict=True))
        ]
        rows.append(runs.Row({"surrogate": name, "alpha": None}, {"name": name}, done))
    metric = compare.Metric("best_val_accuracy")
    ranked = compare.rank(rows, metric)
    return ranked, report.synops_means(ranked, metric, "val")


WINNER, CLOSE, WORSE = [0.95, 0.96, 0.94], [0.94, 0.96, 0.95, 0.93], [0.93, 0.91, 0.94, 0.92]


def test_cheapest_within_noise_on_fixed_numbers():
    # close is within noise of the winner and worse is not (Welch intervals of the test above).
    ranked, ops = _ranked_with_costs(
        {
            "winner": (WINNER, [900, 1000, 1100]),
            "close": (CLOSE, [700, 720, 690, 730]),  # mean 710
            "worse": (WORSE, [100] * 4),  # cheapest, but worse
            "single": ([0.93], [50]),  # one seed: no claim, not a candidate
        }
    )
    assert [e.row.key["surrogate"] for e in ranked] == ["winner", "close", "single", "worse"]
    assert [e.within_noise for e in ranked] == [True, True, None, False]
    assert ops == pytest.approx([1000, 710, 50, 100])
    assert compare.cheapest_within_noise(ranked, ops) == 1
    _, low, high, _ = _welch_by_hand([700, 720, 690, 730], [900, 1000, 1100])
    assert high < 0  # clearly fewer: claimed, with the interval
    assert report.cheapest_line(ranked, ops, "val") == (
        "Cheapest in synaptic operations within noise of the selected configuration: close, "
        f"0.71× its synaptic operations per example (710 vs 1k, val split; 95% interval of the "
        f"difference {report.si(low)} to {report.si(high)})."
    )
    # Fewer on average but within the seeds' spread (or 1.00×): stated as a saving before.
    for close_ops, said in (([700, 990, 1200, 800], "0.92× (922 vs 1k, val split), within the "
                                                    "seeds' spread"),
                            ([998, 999, 998, 999], "1.00× (998 vs 1k, val split), within the "
                                                   "seeds' spread")):
        ranked, ops = _ranked_with_costs({"winner": (WINNER, [900, 1000, 1100]),
                                          "close": (CLOSE, close_ops)})
        assert report.cheapest_line(ranked, ops, "val") == (
            "No configuration within noise of the selected one needs clearly fewer synaptic "
            f"operations: the fewest, close, needs {said}.")
    ranked, ops = _ranked_with_costs({"winner": (WINNER, [1000, 1000.1, 1000.2]),
                                      "close": (CLOSE, [997, 997.1, 997.2, 997.3])})
    assert report.cheapest_line(ranked, ops, "val").endswith(
        "needs 1.00× (997 vs 1k, val split), under 0.5% fewer.")  # (the interval excludes 0)
    # The selected one is itself the cheapest: the line says so, with what the others need.
    ranked, ops = _ranked_with_costs(
        {"winner": (WINNER, [500] * 3), "close": (CLOSE, [700, 720, 690, 730])}
    )
    assert compare.cheapest_within_noise(ranked, ops) == 0
    assert report.cheapest_line(ranked, ops, "val").endswith(
        "the selected one itself (500 per example, val split; the other one within noise of it "
        "needs 1.42× as many)."
    )
    # ... when that is clear: the same test as for another's saving (it said "the selected one
    # itself (5.36k ...; the 2 within noise of it need 1.00× to 1.00× as many)")
    ranked, ops = _ranked_with_costs(
        {"winner": (WINNER, [5361, 5326, 5396]), "close": (CLOSE, [5378, 5329, 5427, 5378])}
    )
    assert report.cheapest_line(ranked, ops, "val") == (
        "No configuration within noise of the selected one needs clearly fewer synaptic "
        "operations: the selected one needs the fewest (5.36k per example, val split), and the "
        "other one within noise of it needs 1.00× as many, within the seeds' spread.")
    # counts that never vary over the seeds: no interval (it said "within the seeds' spread")
    ranked, ops = _ranked_with_costs({"winner": (WINNER, [2000, 2000, 2000]),
                                      "close": (CLOSE, [1000, 1000, 1000, 1000])})
    assert report.cheapest_line(ranked, ops, "val").endswith(
        "needs 0.50× (1k vs 2k, val split), the same counts on every seed, so no interval.")
    # Nothing within noise, or the winner's cost unknown: no choice, no line.
    ranked, ops = _ranked_with_costs({"winner": (WINNER, [1] * 3), "worse": (WORSE, [1] * 4)})
    assert compare.cheapest_within_noise(ranked, ops) is None
    assert report.cheapest_line(ranked, ops, "val") == ""
    assert compare.cheapest_within_noise(ranked, [float("nan"), 1.0]) is None


def _add_cost(run_dir: Path, cost: dict[int, dict[str, float]]) -> None:
    """Put ``cost[epoch]`` (epoch-record keys such as ``val_energy_uj``) into metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    for rec in recs:
        if rec["split"] == "epoch":
            rec.update(cost.get(rec["epoch"], {}))
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_cost_columns_are_seed_means_at_the_best_val_epoch_and_old_runs_stay_empty(tmp_path):
    root = tmp_path / "s"
    # Best validation accuracy at epoch 1 of 2: the cost columns read epoch 1 (where it was
    # measured); epoch 2 and the test split hold other numbers that must not be used.
    configs = {("sigmoid", 4.0): WINNER, ("erf", 1.0): CLOSE, ("arctan", 1.0): WORSE}
    acs = {"sigmoid": [900, 1000, 1100], "erf": [700, 720, 690, 730], "arctan": [2000] * 4}
    macs = {"sigmoid": [10, 10, 10], "erf": [0] * 4, "arctan": [0] * 4}
    energy = {"sigmoid": [0.01, 0.02, 0.03], "erf": [0.004, 0.005, 0.006, 0.007]}
    sparsity = {"sigmoid": [0.9, 0.8, 0.85], "erf": [0.95, 0.9, 0.85, 0.8]}
    num = 0
    for (name, alpha), vals in configs.items():
        for seed, v in enumerate(vals):
            d = write_run(
                root / str(num),
                {"name": name, "alpha": alpha},
                seed,
                [v, v - 0.1],
                [0.9, 0.9],
                {"lif0": 0.1},
                1.0,
            )
            at_best = {
                "val_synops/total/acs": acs[name][seed],
                "val_synops/total/macs": macs[name][seed],
                "val_energy_uj": energy.get(name, [0.001] * 4)[seed],
                "val_sparsity/total": sparsity.get(name, [0.5] * 4)[seed],
                "test_synops/total/acs": 1e6,
            }
            _add_cost(d, {1: at_best, 2: {k: 7e5 for k in at_best}})
            num += 1
    for seed, v in enumerate([0.5, 0.51]):  # from before cost metrics: empty cells
        write_run(
            root / str(num + seed),
            {"name": "fast_sigmoid", "alpha": 25.0},
            seed,
            [v, v],
            [0.5, 0.5],
            {"lif0": 0.1},
            1.0,
        )
    loaded = [runs.load_run(d) for d in runs.find_runs([root])]
    assert runs.cost_split(loaded) == "val"
    _, table = report.summarize(loaded)
    rows = {r["surrogate"]: r for r in table}
    for name in ("sigmoid", "erf"):
        ops = [a + m for a, m in zip(acs[name], macs[name], strict=True)]
        got = rows[name]
        assert got["synops_mean"] == pytest.approx(statistics.mean(ops), rel=1e-12)
        assert got["synops_std"] == pytest.approx(statistics.stdev(ops), rel=1e-12)
        assert got["energy_uj_mean"] == pytest.approx(statistics.mean(energy[name]), rel=1e-12)
        assert got["energy_uj_std"] == pytest.approx(statistics.stdev(energy[name]), rel=1e-12)
        assert got["sparsity_mean"] == pytest.approx(statistics.mean(sparsity[name]), rel=1e-12)
        assert got["sparsity_std"] == pytest.approx(statistics.stdev(sparsity[name]), rel=1e-12)
    assert all(np.isnan(rows["fast_sigmoid"][k]) for k in ("synops_mean", "energy_uj_mean"))
    # At the last epoch instead (a final-epoch selection metric such as val_accuracy).
    row = next(r for r in runs.group_runs(loaded)[1] if r.key["surrogate"] == "erf")
    assert row.cost_values("synops", "val") == [7e5 + 7e5] * 4
    assert row.cost_values("synops", "test", at_best_val=True) == [1e6] * 4

    out = report.make_report([root], tmp_path / "rep")
    csv_rows = {r["surrogate"]: r for r in _csv_rows(out)}
    assert float(csv_rows["sigmoid"]["synops_mean"]) == pytest.approx(1010)
    assert csv_rows["fast_sigmoid"]["synops_mean"] == csv_rows["fast_sigmoid"]["energy_uj_mean"]
    assert csv_rows["fast_sigmoid"]["synops_mean"] == ""
    # sigmoid wins with 1010 ops, erf (710) is less accurate but cheaper: both on the front;
    # arctan costs more than both and is worse; fast_sigmoid has no cost.
    assert {k: r["pareto_front"] for k, r in csv_rows.items()} == {
        "sigmoid": "True",
        "erf": "True",
        "arctan": "False",
        "fast_sigmoid": "False",
    }
    verdict = (out / "verdict.txt").read_text()
    assert (
        "Cheapest in synaptic operations within noise of the selected configuration: erf, α=1, "
        "0.70× its synaptic operations per example (710 vs 1.01k, val split; 95% interval of "
        "the difference"
    ) in verdict
    md = (out / "summary.md").read_text()
    assert "| synaptic ops / example (val) | energy / example (val) |" in md
    sigmoid = next(line for line in md.splitlines() if line.startswith("| ★ 1 | sigmoid"))
    # 1010 ± 100 ops; 0.02 ± 0.01 µJ = 20 ± 10 nJ; sparsity 0.85 ± 0.05
    assert "| 1.01k ± 0.1k | 20 ± 10 nJ | 0.850 ± 0.050 | ◆ |" in sigmoid
    old = next(line for line in md.splitlines() if "| fast_sigmoid |" in line)
    assert "| — | — | — |  |" in old
    img = matplotlib.image.imread(out / "accuracy_vs_synops.png")
    assert img.shape[:2] == (550, 800) and img.std() > 0.01
    page = (out / "index.html").read_text()
    assert page.index('src="surrogate_gradients.png"') < page.index('src="accuracy_vs_synops.png"')


def test_print_summary_shows_the_cost_when_logged():
    import io

    from rich.console import Console

    from snntrain.progress import print_summary

    def printed(summary: dict) -> str:
        buf = io.StringIO()
        print_summary({"status": "completed", **summary}, Console(file=buf, width=100), {})
        return buf.getvalue()

    text = printed(
        {"cost": {"synops/total/acs": 3937.9, "synops/total/macs": 500.0, "energy_uj": 0.005844}}
    )
    assert "synaptic ops / example (test)" in text and "4,438" in text  # 3937.9 + 500
    assert "energy µJ / example (test)" in text and "0.005844" in text
    assert "synaptic ops" not in printed({"test_accuracy": 0.9})


def test_a_populations_closing_line_names_its_members_not_the_base_surrogate():
    from snntrain.progress import what_ran

    summary = {"population": 6, "completed": 5, "best_member": "2-surrogate=arctan,seed=1"}
    config = {"surrogate": {"name": "fast_sigmoid"}, "model": {"name": "mlp", "hidden": [256]},
              "dataset": {"name": "digits"}, "T": 25, "seed": 0}
    assert what_ran(summary, config) == ("population of 6 members, 5 completed, best "
                                         "2-surrogate=arctan,seed=1 · model mlp [256] · digits "
                                         "· T=25")
    # its values are the best configuration's means: "best <member>" read as the member's own
    summary.update(best_configuration="surrogate=arctan", best_seeds=2)
    assert what_ran(summary, config).startswith(
        "population of 6 members, 5 completed, best surrogate=arctan (the mean of its 2 seeds "
        "below) · ")
    summary.update(best_configuration="(only the seed varies)", best_seeds=3)
    assert what_ran(summary, config).startswith(
        "population of 6 members, 5 completed, 3 seeds of one configuration (their means "
        "below) · ")


def test_no_alpha_plot_without_an_alpha_scan(tmp_path):
    # One alpha per surrogate (as experiment=surrogate_comparison runs them), or none: a plot
    # against alpha would show one point or a flat line per surrogate; the bars say it all.
    one_each = {("sigmoid", 4.0): [(0.9, 0.9), (0.91, 0.9)],
                ("arctan", 2.0): [(0.92, 0.9), (0.9, 0.9)], ("boxcar", None): [(0.8, 0.8)]}
    out = report.make_report([_config_sweep(tmp_path / "s", one_each)], tmp_path / "rep")
    assert not (out / "accuracy_vs_alpha.png").exists()
    assert "accuracy_vs_alpha" not in (out / "index.html").read_text()
    assert (out / "accuracy_by_config.png").is_file()
    scan = one_each | {("sigmoid", 8.0): [(0.9, 0.9)]}
    out = report.make_report([_config_sweep(tmp_path / "t", scan)], tmp_path / "rep2")
    assert (out / "accuracy_vs_alpha.png").is_file()


@pytest.mark.parametrize("n, outside", [(12, False), (13, True)])
def test_a_long_legend_goes_below_the_axes(n, outside):
    import warnings

    from matplotlib.lines import Line2D

    fig = plots._figure(8, 4)
    ax = fig.add_subplot()
    handles = [Line2D([], [], color=f"C{i % 10}", label=f"surrogate_{i}" + "x" * 100 * (i == 0))
               for i in range(n)]
    for i in range(n):
        ax.plot([0, 1], [i, i], color=f"C{i % 10}")
    plots._legend(fig, [ax], handles, fontsize=7, loc="best")
    legend = fig.legends[0] if outside else ax.get_legend()
    assert (len(fig.legends), ax.get_legend() is None) == ((1, True) if outside else (0, False))
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) == n and len(texts[0]) == plots.LABEL_CHARS and texts[0].endswith("…")
    grown = fig.get_size_inches()[1] - 4  # by the legend's rows below the axes
    assert grown >= 0.16 + 0.35 if outside else grown == 0
    with warnings.catch_warnings():  # the axes keep their room: no collapsed layout
        warnings.simplefilter("error")
        fig.savefig(io.BytesIO(), format="png")


def test_welch_on_values_equal_up_to_rounding_is_quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's "Precision loss occurred" would raise here
        d = compare.welch([0.5, 0.5 + 1e-16, 0.5], [0.5, 0.5, 0.5 + 2e-16])
        assert np.isnan(d.df) and np.isnan(d.low)  # (equal up to rounding: no spread)
        d = compare.welch([0.5, 0.5 + 1e-9, 0.5], [0.5, 0.5, 0.5 + 2e-9])  # (a real spread)
    assert d.contains_zero and abs(d.high - d.low) < 1e-7


def test_a_seed_repeated_across_sweeps_counts_once(tmp_path, capsys):
    """Reporting a population together with its equivalent multirun (or one sweep twice, or a
    population listing a seed twice) counted each seed twice: "(4 seeds)" from seeds 0 1 0 1,
    and a Welch interval a third as wide as the real one."""
    a = {"name": "sigmoid", "alpha": 4.0}
    b = {"name": "arctan", "alpha": 2.0}
    for sweep in ("pop", "multirun"):
        for s, vals in ((a, (0.90, 0.80)), (b, (0.70, 0.72))):
            for seed, v in enumerate(vals):
                write_run(tmp_path / sweep / f"{s['name']}-{seed}", s, seed, [v], [v],
                          {"lif0": 0.1}, 1.0)
                time.sleep(0.01)  # the newer copy is the one counted
    assert report.main([str(tmp_path / "pop"), str(tmp_path / "multirun")]) == 0
    out = capsys.readouterr().out
    assert "sigmoid, α=4 — 85.00 ± 7.07 % (2 seeds)" in out
    # Welch with n = 2 + 2: diff 0.14, se = sqrt(0.005/2 + 0.0002/2), df ~ 1.08
    assert "Not in the means: 4 repeating a configuration's seed (counted once), 0 failed" in out
    text = (tmp_path / "pop" / "report" / "summary.csv").read_text()
    rows = {r["surrogate"]: r for r in csv.DictReader(io.StringIO(text))}
    assert rows["sigmoid"]["seeds"] == "0 1" and rows["arctan"]["n"] == "2"
    diff = 0.14 * 100
    se = math.sqrt(0.005 / 2 + 0.0002 / 2) * 100
    df = se**4 / ((0.005 / 2 * 1e4) ** 2 + (0.0002 / 2 * 1e4) ** 2)
    half = scipy.stats.t.ppf(0.975, df) * se
    assert float(rows["arctan"]["diff_high"]) * 100 == pytest.approx(-diff + half, rel=1e-6)
    kept = runs.load_run(tmp_path / "multirun" / "sigmoid-0")
    dup = runs.load_run(tmp_path / "pop" / "sigmoid-0")
    runs.group_runs([dup, kept])
    assert kept.status == "completed" and dup.status == "duplicate"
    assert dup.reason == f"repeats seed 0 of its configuration, counted once (as {kept.path})"
    # a seed that diverged as a solo run and again as a member is one diverged seed, not two
    for where in ("solo", "member"):
        write_run(tmp_path / where / "x", a, 5, [0.1], [0.1], {"lif0": 0.1}, 1.0,
                  status="diverged")
        time.sleep(0.01)
    twice = [runs.load_run(tmp_path / w / "x") for w in ("solo", "member")]
    runs.group_runs(twice)
    assert [r.status for r in twice] == ["duplicate", "diverged"]


def test_a_summary_that_is_not_an_object_marks_its_run_failed(tmp_path, capsys):
    """``summary.json`` holding ``[1, 2]`` or ``null`` ended the report in a traceback
    (AttributeError: 'list' object has no attribute 'get')."""
    s = {"name": "sigmoid", "alpha": 4.0}
    write_run(tmp_path / "ok", s, 0, [0.5], [0.5], {"lif0": 0.1}, 1.0)
    for i, text in enumerate(("[1, 2]", "null", '"done"')):
        bad = write_run(tmp_path / f"bad{i}", s, i + 1, [0.5], [0.5], {"lif0": 0.1}, 1.0)
        (bad / "summary.json").write_text(text)
        run = runs.load_run(bad)
        assert (run.status, run.reason) == ("failed", "summary.json is not a JSON object")
    assert report.main([str(tmp_path)]) == 0
    assert "3 failed and 0 running of 4 runs" in capsys.readouterr().out


def test_the_verdict_names_the_whole_configuration(tmp_path, capsys):
    """Labels were cut at 60 characters, mid-number (``optimizer.lr=3.50233e+3…``), dropping
    alpha: the verdict names the configuration to quote."""
    s = {"name": "arctan", "alpha": 2.17}
    for seed in (0, 1):
        for lr, v in ((3.50233e34, 0.1 + 0.01 * seed), (0.002, 0.9 + 0.01 * seed)):
            write_run(tmp_path / f"lr{lr}-{seed}", s, seed, [v], [v], {"lif0": 0.1}, 1.0,
                      **{"optimizer.lr": lr, "model.neuron.beta": 0.953542 if lr > 1 else 0.5})
    assert report.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("Worse: arctan, model.neuron.beta=0.953542, optimizer.lr=3.50233e+34, α=2.17 "
            "(worse by") in out


def test_population_killed_before_its_members_started_is_no_configuration(tmp_path):
    """A population directory without members/ is listed as not started, not as a run of its
    base config (which added a failed run and a trainer.population column to the table)."""
    root = tmp_path / "sweep"
    s = {"name": "sigmoid", "alpha": 4.0}
    write_run(root / "0-solo", s, 0, [0.9], [0.9], {"lif0": 0.1}, 1.0)
    pop = {"mode": "grid", "chunk": None, "surrogate": {"name": ["sigmoid", "arctan"],
                                                         "alpha": None}, "seed": [0, 1]}
    dead = write_run(root / "1-pop", s, 0, [], [], {}, 0.0, status=None, **{
        "trainer.population": pop})
    old = time.time() - 3 * 3600
    for f in [*dead.iterdir(), dead]:
        os.utime(f, (old, old))

    by_name = {r.path.name: r for r in map(runs.load_run, runs.find_runs([root]))}
    assert by_name["1-pop"].status == "failed" and by_name["1-pop"].unstarted_population
    assert by_name["1-pop"].reason.startswith(
        "a population (seed, surrogate.name) whose members have not started")
    assert by_name["1-pop"].reason.endswith("ago); rerun its command to train it")
    live = runs.load_run(dead, now=old + 1)  # starting up: not told to be rerun
    assert live.status == "running" and live.reason == (
        "a population (seed, surrogate.name) whose members have not started (no members/ yet, "
        "last write 1 s ago)")
    assert not by_name["0-solo"].unstarted_population
    columns, rows = runs.group_runs(list(by_name.values()))
    assert columns == ["surrogate", "alpha"]  # no trainer.population.* column
    assert [[r.path.name for r in row.runs] for row in rows] == [["0-solo"]]
    out = report.make_report([root])
    md = (out / "summary.md").read_text()
    assert "1 failed and 0 running of 2 runs" in md
    assert "whose members have not started" in md.split("## Runs not in the means")[1]
    # A population that has started: its members are the runs, the directory is not one.
    (dead / "members").mkdir()
    write_run(dead / "members" / "m0", s, 1, [0.8], [0.8], {"lif0": 0.1}, 1.0)
    assert [p.name for p in runs.find_runs([root])] == ["0-solo", "m0"]


def test_one_directory_given_as_a_string(sweep, tmp_path):
    """make_report("dir") iterated the string's characters: "/" made it report every run on
    the machine."""
    root, _ = sweep
    one = report.make_report(str(root), out=tmp_path / "one")
    listed = report.make_report([root], out=tmp_path / "listed")
    assert (one / "summary.csv").read_text() == (listed / "summary.csv").read_text()


# ---- faults reported by a tester -----------------------------------------------------------


def test_a_population_that_failed_before_its_members_started_is_failed_with_its_error(tmp_path):
    """A population job that failed on a bad value (summary.json with the error, no members/)
    was "running", then "a population ... whose members have not started"."""
    root = tmp_path / "sweep"
    pop = {"mode": "grid", "chunk": None, "surrogate": {"alpha": [1, 2]}, "seed": [0, 1]}
    job = write_run(root / "0-pop", {"name": "sigmoid", "alpha": 2.0}, 0, [], [], {}, 0.0,
                    status=None, **{"trainer.population": pop})
    (job / "metrics.jsonl").unlink()  # the job failed before writing any
    error = ("ConfigError: surrogate.alpha is set twice: by the override surrogate.alpha=2 and "
             "by the population axis trainer.population.surrogate.alpha")
    (job / "summary.json").write_text(json.dumps({"status": "failed", "error": error}))
    for now in (None, time.time() + 3 * 3600):  # just written, and after --stale-after
        run = runs.load_run(job, now=now)
        assert (run.status, run.reason) == ("failed", f"status 'failed': {error}")
        assert run.unstarted_population  # not a run of its base configuration
    out = report.make_report([root], tmp_path / "rep")
    md = (out / "summary.md").read_text()
    assert "1 runs: 0 completed, 0 running, 1 failed, under" in md
    assert f"- **failed** `{job.resolve()}`: status 'failed': {error}\n" in md
    assert "members have not started" not in md


def _rows(configs: dict) -> list[runs.Row]:
    """``configs[(name, alpha)] = [best_val_accuracy, ...]`` -> rows of completed runs."""
    return [
        runs.Row({"surrogate": name, "alpha": alpha}, {"name": name, "alpha": alpha}, [
            runs.Run(Path(f"{name}{alpha}-{i}"), "completed", config={"seed": i},
                     summary={"best_val_accuracy": v}) for i, v in enumerate(vs)])
        for (name, alpha), vs in configs.items()
    ]


def test_an_alpha_next_to_the_best_with_one_seed_is_not_called_worse(tmp_path):
    """The alpha scan said "every neighbouring alpha is worse" of a neighbour with one seed
    (no comparison made), and "No other configuration is within noise of it." when nothing
    could be compared."""
    root = _config_sweep(tmp_path / "s", {
        ("sigmoid", 2.0): [(0.95, 0.9), (0.96, 0.9), (0.94, 0.9)],
        ("sigmoid", 4.0): [(0.90, 0.9)],
    })
    out = report.make_report([root], tmp_path / "rep")
    assert (out / "verdict.txt").read_text().splitlines() == [
        "Selected by best validation accuracy (mean over seeds): sigmoid, α=2 — "
        "95.00 ± 1.00 % (3 seeds).",
        "No other configuration could be compared with it: they have one seed each (rerun them "
        "with more seeds, e.g. seed=0,1,2).",
        "One seed, no claim can be made: sigmoid, α=4.",
        "Test accuracy of the selected configuration, the number to quote: 90.00 ± 0.00 % "
        "(3 seeds; test took no part in the selection).",
        "Alpha scan, sigmoid: best α = 2 (95.00 ± 1.00 %, 3 seeds); no claim can be made about "
        "α=4 next to it (one seed); it is the smallest alpha scanned: the best may lie beyond.",
    ]
    metric = compare.Metric("best_val_accuracy")
    # one side worse, the other not comparable
    (rng,) = compare.alpha_ranges(_rows({("sigmoid", 1.0): [0.80, 0.81, 0.79],
                                         ("sigmoid", 2.0): [0.95, 0.96, 0.94],
                                         ("sigmoid", 4.0): [0.90]}), metric)
    assert (rng.low, rng.high, rng.unclaimed) == (2, 2, [4.0])
    assert rng.text() == ("sigmoid: best α = 2 (95.00 ± 1.00 %, 3 seeds); α=1 is worse; no claim "
                          "can be made about α=4 next to it (one seed)")
    # a range that stops at an alpha with one seed
    (rng,) = compare.alpha_ranges(_rows({("sigmoid", 1.0): [0.90],
                                         ("sigmoid", 2.0): [0.95, 0.96, 0.94],
                                         ("sigmoid", 4.0): [0.951, 0.961, 0.941],
                                         ("sigmoid", 8.0): [0.80, 0.81, 0.79]}), metric)
    assert (rng.best_alpha, rng.low, rng.high, rng.unclaimed) == (4, 2, 4, [1.0])
    assert rng.text() == (
        "sigmoid: best α = 4 (95.10 ± 1.00 %, 3 seeds); within noise for α from 2 to 4; no "
        "claim can be made about α=1 next to the range (one seed): it may be wider")
    # both neighbours compared and worse: unchanged
    (rng,) = compare.alpha_ranges(_rows({("sigmoid", 1.0): [0.80, 0.81, 0.79],
                                         ("sigmoid", 2.0): [0.95, 0.96, 0.94],
                                         ("sigmoid", 4.0): [0.70, 0.71, 0.69]}), metric)
    assert rng.text().endswith("; every neighbouring alpha is worse") and not rng.unclaimed


def test_a_preempted_optuna_trial_resumes_by_rerunning_its_sweep(tmp_path):
    """An Optuna sweep writes no multirun.yaml: its pre-empted trial said "rerun its command",
    which starts a new study instead of resuming the trial."""
    s = {"name": "sigmoid", "alpha": 4.0}
    later = time.time() + 3600
    sweep = tmp_path / "optuna"
    trial = write_run(sweep / "3", s, 0, [0.5], [0.5], {"lif0": 0.1}, 1.0, status="preempted")
    (trial / ".hydra").mkdir()
    (trial / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {
        "mode": "MULTIRUN", "sweep": {"dir": "outputs/x", "subdir": "${hydra.job.num}"},
        "sweeper": {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper."
                                "OptunaSweeper", "n_trials": 30},
        "overrides": {"task": ["surrogate=sigmoid", "surrogate.alpha=4.0"]}}}))
    want = (f'pre-empted; rerun its Optuna sweep\'s command with hydra.sweep.dir="'
            f'{sweep.absolute()}" to resume it')
    assert not (sweep / "multirun.yaml").exists()
    assert runs.load_run(trial, now=later).reason == want
    # a finished study's directory says so too, without the trial's .hydra/
    done = tmp_path / "study"
    trial = write_run(done / "0", s, 0, [0.5], [0.5], {"lif0": 0.1}, 1.0, status="preempted")
    (done / "optimization_results.yaml").write_text("name: optuna\nbest_value: 0.5\n")
    assert runs.load_run(trial, now=later).reason == want.replace(str(sweep.absolute()),
                                                                 str(done.absolute()))
    # a single run (mode RUN) still resumes by rerunning its own command
    single = write_run(tmp_path / "single", s, 0, [0.5], [0.5], {"lif0": 0.1}, 1.0,
                       status="preempted")
    (single / ".hydra").mkdir()
    (single / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {
        "mode": "RUN", "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper."
                                               "BasicSweeper"}}}))
    assert runs.load_run(single, now=later).reason == "pre-empted; rerun its command to resume it"


def test_a_tie_for_the_selection_is_said_not_broken_silently(tmp_path):
    root = _config_sweep(tmp_path / "s", {
        ("arctan", 2.0): [(0.2, 0.95)] * 3,
        ("sigmoid", 4.0): [(0.1, 0.10), (0.2, 0.10), (0.3, 0.10)],
    })
    out = report.make_report([root], tmp_path / "rep")
    verdict = (out / "verdict.txt").read_text().splitlines()
    assert verdict[:4] == [
        "Selected by best validation accuracy (mean over seeds): arctan, α=2 — "
        "20.00 ± 0.00 % (3 seeds).",
        "Tied with sigmoid, α=4 (the same mean, 20.00 %): the selection between them is "
        "arbitrary (the first in the table's order is taken), and so is which test accuracy "
        "is quoted.",
        "Within noise of it (the 95% Welch interval of the difference contains 0): sigmoid, α=4.",
        "Test accuracy of the selected configuration, the number to quote: 95.00 ± 0.00 % "
        "(3 seeds; test took no part in the selection).",
    ]
    rows = _csv_rows(out)
    assert [(r["surrogate"], r["rank"], r["verdict"]) for r in rows] == [
        ("arctan", "1", "selected"),
        ("sigmoid", "2", "tied: the same mean as the selected one"),
    ]
    # no tie, no line; a tie with one seed makes no claim about noise
    assert not compare.tied(0.2, 0.2 + 1e-9) and compare.tied(0.2, 0.1 + 0.1 + 1e-17)
    ranked = compare.rank(_rows({("a", 1.0): [0.5, 0.5], ("b", 1.0): [0.5]}),
                          compare.Metric("best_val_accuracy"))
    assert ranked[1].tied and ranked[1].within_noise is None
    assert ranked[1].verdict == (
        "tied: the same mean as the selected one (1 seed: no claim can be made about noise)")


def test_best_val_epoch_is_no_selection_metric(tmp_path):
    """optimize_metric=best_val_epoch ranked configurations by their best epoch, later first."""
    assert [compare.is_validation_metric(k) for k in (
        "best_val_accuracy", "val_accuracy", "val_loss", "best_val_loss", "best_val_epoch",
        "test_accuracy")] == [True, True, True, True, False, False]
    metric = compare.selection_metric(["best_val_epoch"])
    assert (metric.key, metric.note) == (
        "best_val_accuracy",
        "ranked by best validation accuracy, not by the sweep's optimize_metric (best_val_epoch): "
        "it is neither an accuracy nor a loss")
    root = tmp_path / "s"
    for seed in range(2):
        write_run(root / f"a{seed}", {"name": "arctan", "alpha": 1.0}, seed, [0.9, 0.5],
                  [0.9, 0.9], {"lif0": 0.1}, 1.0, optimize_metric="best_val_epoch")
        write_run(root / f"s{seed}", {"name": "sigmoid", "alpha": 1.0}, seed, [0.5, 0.8],
                  [0.9, 0.9], {"lif0": 0.1}, 1.0, optimize_metric="best_val_epoch")
    out = report.make_report([root], tmp_path / "rep")
    verdict = (out / "verdict.txt").read_text().splitlines()
    assert verdict[:2] == [
        "Selected by best validation accuracy (mean over seeds): arctan, α=1 — "
        "90.00 ± 0.00 % (2 seeds).",
        "Note: ranked by best validation accuracy, not by the sweep's optimize_metric "
        "(best_val_epoch): it is neither an accuracy nor a loss.",
    ]
    assert {r["selection_metric"] for r in _csv_rows(out)} == {"best_val_accuracy"}


def test_report_into_a_closed_pipe_exits_quietly(tmp_path, monkeypatch):
    """`python -m snntrain.report PATH | head -1` ended in a BrokenPipeError traceback."""
    import subprocess
    import sys

    root = tmp_path / "s"
    write_run(root / "0", {"name": "sigmoid", "alpha": 4.0}, 0, [0.9], [0.9], {"lif0": 0.1}, 1.0)

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert report.main([str(root), "--out", str(tmp_path / "a")]) == 141
    monkeypatch.undo()
    read, write = os.pipe()
    os.close(read)  # the reader (head) has gone before the first line
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "snntrain.report", str(root), "--out", str(tmp_path / "b")],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=600,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_the_alpha_range_stops_at_an_alpha_whose_seeds_all_diverged(tmp_path):
    """Sigmoid α = 1 and 4 within noise, every seed of α = 2 diverged: the range was "from 1 to
    4" straight over α = 2 (and the plot's band with it). It stops at α = 2 and says why; a
    diverged largest alpha is not "the edge of the scan"."""
    configs = {("sigmoid", 1.0): [(0.90, 0.9), (0.91, 0.9), (0.92, 0.9)],
               ("sigmoid", 4.0): [(0.92, 0.9), (0.93, 0.9), (0.91, 0.9)],
               ("sigmoid", 8.0): [(0.5, 0.5)] * 3}
    root = _config_sweep(tmp_path / "s", configs)
    for num, seed in ((9, 0), (10, 1), (11, 2)):  # sigmoid α = 2: diverged
        write_run(root / str(num), {"name": "sigmoid", "alpha": 2.0}, seed, [0.1], [0.1],
                  {"lif0": 0.1}, 1.0, status="diverged")
    columns, rows = runs.group_runs([runs.load_run(d) for d in runs.find_runs([root])])
    (rng,) = compare.alpha_ranges(rows, compare.Metric("best_val_accuracy"))
    assert (rng.best_alpha, rng.low, rng.high, rng.no_result) == (4, 4, 4, [(2, "3 diverged")])
    assert rng.text() == ("sigmoid: best α = 4 (92.00 ± 1.00 %, 3 seeds); α=8 is worse; α=2 "
                          "has no completed run (3 diverged): the range stops there")
    for num, seed in ((12, 0), (13, 1), (14, 2)):  # α = 16 diverged too, beyond α = 8
        write_run(root / str(num), {"name": "sigmoid", "alpha": 16.0}, seed, [0.1], [0.1],
                  {"lif0": 0.1}, 1.0, status="diverged")
    del configs[("sigmoid", 8.0)]
    for num in range(6, 9):
        shutil.rmtree(root / str(num))
    columns, rows = runs.group_runs([runs.load_run(d) for d in runs.find_runs([root])])
    (rng,) = compare.alpha_ranges(rows, compare.Metric("best_val_accuracy"))
    assert (rng.low, rng.high, rng.at_edge) == (4, 4, False)
    assert rng.text().endswith("; α=2 has no completed run (3 diverged): the range stops there"
                               "; α=16 has no completed run (3 diverged): the range stops there")


def test_a_completed_run_with_a_non_finite_result_is_counted_as_diverged(tmp_path):
    """A completed run (trainer.on_nan=skip_step) whose best_val_accuracy is NaN: the verdict
    left it out of the mean silently ("2 seeds") while the table said 3 seeds and no section
    listed it. It is now a diverged run, listed with its reason, in no mean."""
    root = _config_sweep(tmp_path / "s", {
        ("sigmoid", 1.0): [(0.95, 0.9), (0.96, 0.9), (0.97, 0.9)],
        ("arctan", 1.0): [(0.90, 0.9), (0.91, 0.9), (0.92, 0.9)]})
    summary = json.loads((root / "2" / "summary.json").read_text())
    summary["best_val_accuracy"] = "NaN"
    (root / "2" / "summary.json").write_text(json.dumps(summary))
    run = runs.load_run(root / "2")
    assert (run.status, run.reason) == (
        "diverged", "completed, but its best_val_accuracy is nan: counted as diverged")
    _, rows = runs.group_runs([runs.load_run(d) for d in runs.find_runs([root])])
    sigmoid = next(r for r in rows if r.key["surrogate"] == "sigmoid")
    assert sigmoid.stats(0.9)["n"] == 2 and sigmoid.stats(0.9)["n_diverged"] == 1
    out = report.make_report([root], tmp_path / "rep")
    verdict = (out / "verdict.txt").read_text()
    assert "sigmoid, α=1 — 95.50 ± 0.71 % (2 seeds)" in verdict
    assert "Not in the means: 1 diverged" in verdict
    assert ("completed, but its best_val_accuracy is nan: counted as diverged"
            in (out / "summary.md").read_text())


def test_how_a_run_is_computed_or_where_its_data_lies_does_not_split_a_configuration(tmp_path):
    """Two sweeps of one comparison, one with trainer.remat=true (or another data_dir): the
    report made four rows of two seeds and a verdict about remat. Keys that a resume may
    change (experiment.MODEL_COMPUTATION_KEYS, DATA_LOCATION_KEYS but name and path) and the
    ways to compute a run are ignored: two rows of four seeds."""
    from snntrain.experiment import DATA_LOCATION_KEYS, MODEL_COMPUTATION_KEYS

    for key in MODEL_COMPUTATION_KEYS:
        assert runs._is_ignored(f"model.{key}")
    for key in set(DATA_LOCATION_KEYS) - {"name", "path"}:
        assert runs._is_ignored(f"dataset.{key}")
    assert not runs._is_ignored("dataset.path") and not runs._is_ignored("trainer.dtype")
    scores = {("sigmoid", 1.0): [(0.95, 0.9), (0.96, 0.9)], ("arctan", 1.0): [(0.91, 0.9),
                                                                             (0.92, 0.9)]}
    _config_sweep(tmp_path / "a", scores, **{  # (a composed config has every key)
        "trainer.remat": False, "dataset.data_dir": "~/data", "model.remat_chunk": 0})
    _config_sweep(tmp_path / "b", {k: v for k, v in scores.items()}, **{
        "trainer.remat": True, "dataset.data_dir": "/scratch/data", "model.remat_chunk": 4})
    for num in range(4):  # the second sweep's seeds are 2 and 3
        cfg = yaml.safe_load((tmp_path / "b" / str(num) / "config.yaml").read_text())
        cfg["seed"] += 2
        (tmp_path / "b" / str(num) / "config.yaml").write_text(yaml.safe_dump(cfg))
    columns, rows = runs.group_runs(
        [runs.load_run(d) for d in runs.find_runs([tmp_path / "a", tmp_path / "b"])])
    assert sorted((r.key["surrogate"], r.stats(0.9)["n"]) for r in rows) == [
        ("arctan", 4), ("sigmoid", 4)]
    assert "trainer.remat" not in columns and "dataset.data_dir" not in columns
    # a key some runs lack does not vary (an MLP has no model.conv_method)
    mlp = runs.Run(Path("a"), "completed", config={"model": {"name": "mlp"}})
    conv = runs.Run(Path("b"), "completed", config={"model": {"name": "conv",
                                                              "conv_method": "auto"}})
    assert runs.execution_keys_varying([mlp, conv]) == []
    verdict = (report.make_report([tmp_path / "a", tmp_path / "b"], tmp_path / "rep")
               / "verdict.txt").read_text()
    assert ("trainer.remat, model.remat_chunk, dataset.data_dir vary across these runs, but "
            "they change only how a run is computed or where its data lies, not its results: "
            "runs differing only in them are one configuration (compare speed or memory with "
            "scripts/bench.py).") in verdict


def test_runs_on_different_datasets_are_said_not_comparable_first(tmp_path):
    """Sigmoid and arctan on digits and on mnist: the verdict selected an mnist row and called
    the digits rows "worse" without a word."""
    scores = {("sigmoid", 1.0): [(0.95, 0.9), (0.96, 0.9)]}
    _config_sweep(tmp_path / "a", scores)
    _config_sweep(tmp_path / "b", scores, **{"dataset.name": "mnist"})
    out = report.make_report([tmp_path / "a", tmp_path / "b"], tmp_path / "rep")
    assert (out / "verdict.txt").read_text().splitlines()[0] == (
        "These runs are on 2 datasets (digits, mnist), ranked together below, but accuracies on "
        "different datasets are not comparable: report each dataset's runs apart (python -m "
        "snntrain.report <its directories>).")
    out = report.make_report([tmp_path / "a"], tmp_path / "rep1")
    assert "datasets" not in (out / "verdict.txt").read_text()
    # a failed run on another dataset is not ranked: nothing to warn about
    write_run(tmp_path / "c" / "0", {"name": "sigmoid", "alpha": 1.0}, 0, [0.1], [0.1], {},
              1.0, status="failed", **{"dataset.name": "mnist"})
    out = report.make_report([tmp_path / "a", tmp_path / "c"], tmp_path / "rep2")
    assert "datasets" not in (out / "verdict.txt").read_text()


def test_the_accuracy_plot_shows_every_error_bar_whole(tmp_path, monkeypatch):
    """Test accuracies 0.95, 0.96, 0.30 (one seed failed to learn): 73.7 ± 37.5 %, but the x
    axis was [lowest mean - 5, 100] = [68.7, 100], so the bar ran off both edges, capless."""
    from snntrain import plots

    root = _config_sweep(tmp_path / "s", {
        ("sigmoid", 1.0): [(0.9, 0.95), (0.9, 0.96), (0.9, 0.30)],
        ("arctan", 1.0): [(0.9, 0.90), (0.9, 0.91)]})
    _, rows = runs.group_runs([runs.load_run(d) for d in runs.find_runs([root])])
    figures = _keep_figures(monkeypatch)
    plots.plot_accuracy_by_config(tmp_path / "acc.png", rows)
    (ax,) = figures[0].axes
    mean, std = statistics.mean([95, 96, 30]), statistics.stdev([95, 96, 30])
    low, high = ax.get_xlim()
    assert low <= mean - std and high >= mean + std and low == max(0, mean - std - 5)
    assert ax.get_ylim() == (1.5, -0.5)


def test_the_metric_note_stays_when_nothing_can_be_selected(tmp_path):
    """optimize_metric=test_accuracy without a validation split: only "No completed run has
    best_val_accuracy" was said, not why the sweep's own metric was not used."""
    root = _config_sweep(tmp_path / "s", {("sigmoid", 1.0): [(0.9, 0.9), (0.9, 0.9)]},
                         optimize_metric="test_accuracy")
    for d in runs.find_runs([root]):
        summary = json.loads((d / "summary.json").read_text())
        summary["best_val_accuracy"] = None
        (d / "summary.json").write_text(json.dumps(summary))
    out = report.make_report([root], tmp_path / "rep")
    assert (out / "verdict.txt").read_text().splitlines()[0] == (
        "No completed run has best_val_accuracy (is there a validation split? "
        "dataset.val_fraction > 0): no configuration can be selected. Note: ranked by best "
        "validation accuracy, not by the sweep's optimize_metric (test_accuracy): selecting on "
        "it would bias the number to quote.")


def test_plot_scripts_refuse_an_image_format_matplotlib_does_not_write():
    """``plot_surrogates.py --out x.pdff`` drew the figure, then ended in matplotlib's
    traceback; the argparse type says it in one line, with the formats."""
    import argparse

    from snntrain.plots import image_path

    assert image_path("a/b.PNG") == Path("a/b.PNG")
    for text, said in (("x.pdff", "x.pdff: .pdff is not an image format matplotlib writes; "),
                       ("x", "x: no file extension; ")):
        with pytest.raises(argparse.ArgumentTypeError) as err:
            image_path(text)
        assert str(err.value).startswith(said + "use one of ") and "pdf, pgf, png" in str(err.value)


def test_plot_scripts_refuse_an_out_under_a_file(tmp_path):
    """``--out afile/s.png``: FileExistsError after the figure was drawn."""
    import argparse

    from snntrain.plots import image_path

    (tmp_path / "afile").write_text("")
    with pytest.raises(argparse.ArgumentTypeError, match=r"afile is not a directory$"):
        image_path(str(tmp_path / "afile" / "sub" / "s.png"))
    assert image_path(str(tmp_path / "new" / "s.png")) == tmp_path / "new" / "s.png"


def test_plot_events_refuses_more_steps_than_a_figure_shows():
    """``plot_events.py --T 1000000`` binned 2.8 GB of frames for a 700-pixel-wide figure."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "scripts/plot_events.py", "--T", "1000000"],
                         capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert res.returncode == 2
    assert res.stderr.splitlines()[-1] == (
        "plot_events.py: error: argument --T: '1000000': must be an integer in [1, 10000] (the "
        "figure shows one column per step)")


def test_members_of_a_preempted_population_that_never_started_are_named(tmp_path):
    """A population with chunk=1 pre-empted in its first group: the later members have no
    directory, so the report named a winner among the started ones without a word of them."""
    pop = tmp_path / "pop"
    write_run(pop / "members" / "0-surrogate=sigmoid", {"name": "sigmoid", "alpha": 4.0}, 0,
              [0.5], [0.5], {"lif0": 0.1}, 1.0)
    (pop / "config.yaml").write_text(yaml.safe_dump({"seed": 0}))
    rows = [{"member": "0-surrogate=sigmoid", "status": "completed"},
            {"member": "1-surrogate=arctan", "status": None},  # as written before this stop
            {"member": "2-surrogate=erf", "status": "not started"}]
    (pop / "summary.json").write_text(json.dumps({"status": "preempted", "members": rows}))
    assert runs.members_not_started([tmp_path]) == {
        pop.resolve(): ["1-surrogate=arctan", "2-surrogate=erf"]}
    out = report.make_report([tmp_path], tmp_path / "rep")
    assert (f"Not started: 2 members of {pop.resolve()} (1-surrogate=arctan, 2-surrogate=erf): "
            "the selection above is among the others only; rerun the population's command to "
            "train them.") in (out / "verdict.txt").read_text()
    assert runs.members_missing([tmp_path]) == {}
    # a trained member whose directory was deleted: the others were ranked without a word
    rows.append({"member": "3-surrogate=boxcar", "status": "completed"})
    (pop / "summary.json").write_text(json.dumps({"status": "preempted", "members": rows}))
    assert runs.members_missing([tmp_path]) == {pop.resolve(): ["3-surrogate=boxcar"]}
    out = report.make_report([tmp_path], tmp_path / "rep2")
    assert (f"Missing: 1 member of {pop.resolve()} (3-surrogate=boxcar): the population's "
            "summary.json records it as trained, but its directory is gone: the selection "
            "above is among the others only.") in (out / "verdict.txt").read_text()


def test_a_path_that_is_no_run_directory_is_an_error(tmp_path, capsys):
    """A mistyped PATH beside a real one was ignored (and listed as a source); --out holding
    the runs said "no run directories"."""
    s = {"name": "sigmoid", "alpha": 4.0}
    write_run(tmp_path / "sweep" / "0", s, 0, [0.5], [0.5], {"lif0": 0.1}, 1.0)
    (tmp_path / "empty").mkdir()
    for args, said in (
        ([tmp_path / "sweep", tmp_path / "typo"], f"{tmp_path / 'typo'}: no such directory"),
        ([tmp_path / "sweep" / "0" / "config.yaml"],
         f"{tmp_path / 'sweep' / '0' / 'config.yaml'}: not a directory"),
        ([tmp_path / "sweep", tmp_path / "empty"], "no run directories (with config.yaml) under "
         f"{tmp_path / 'empty'} (the other paths have some)"),
        ([tmp_path / "sweep", "--out", tmp_path], f"the 1 run directories under "
         f"{tmp_path / 'sweep'} are inside the report's directory {tmp_path} (--out), which is "
         "never read for runs: choose an --out outside them"),
    ):
        assert report.main([str(a) for a in args]) == 2
        assert capsys.readouterr().err.strip() == f"snntrain-report: error: {said}"


def test_the_alpha_plot_marks_an_alpha_with_no_result(tmp_path, monkeypatch):
    """Every seed at alpha 2 diverged: the line ran straight from 1 to 4 with no tick at 2, a
    smooth curve; it breaks there now, an x marks it, and the tick is kept. A scan whose only
    other alpha failed drew one point per panel."""
    s = {("sigmoid", a): [(0.5 + 0.01 * a + 0.001 * k, 0.5) for k in range(2)] for a in (1, 4, 8)}
    root = _config_sweep(tmp_path / "s", s)
    for seed in range(2):
        write_run(root / f"d{seed}", {"name": "sigmoid", "alpha": 2.0}, seed, [0.1], [0.1],
                  {"lif0": 0.1}, 1.0, status="diverged")
    figures = _keep_figures(monkeypatch)
    out = report.make_report([root], tmp_path / "rep")
    assert (out / "accuracy_vs_alpha.png").is_file()
    ax = next(f.axes[0] for f in figures if f.axes[0].get_xlabel() == "surrogate α")
    line = next(ln for ln in ax.get_lines() if ln.get_marker() == "o")
    x, y = line.get_data()
    assert list(x) == [1, 2, 4, 8] and np.isnan(y[1]) and not np.isnan(y[[0, 2, 3]]).any()
    (cross,) = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert list(cross.get_xdata()) == [2.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4", "8"]
    assert "×: α with no result" in ax.figure.get_supxlabel()
    # only one alpha with results: no scan to draw
    one = _config_sweep(tmp_path / "one", {("sigmoid", 4.0): [(0.5, 0.5), (0.6, 0.5)]})
    write_run(one / "bad", {"name": "sigmoid", "alpha": -1.0}, 0, [0.1], [0.1], {"lif0": 0.1},
              1.0, status="failed")
    assert not (report.make_report([one], tmp_path / "rep1") / "accuracy_vs_alpha.png").exists()


def test_a_surrogate_that_cannot_be_drawn_is_named_in_the_legend(tmp_path, monkeypatch):
    """sigmoid alpha=-1 (a failed job): "cannot evaluate: ValueError" was written across the
    middle of the panel, over the alpha=4 curve, naming no configuration."""
    root = _config_sweep(tmp_path / "s", {("sigmoid", 4.0): [(0.5, 0.5)],
                                          ("sigmoid", -1.0): [(0.5, 0.5)]})
    _, rows = runs.group_runs([runs.load_run(d) for d in runs.find_runs([root])])
    figures = _keep_figures(monkeypatch)
    plots.plot_surrogate_gradients(tmp_path / "g.png", rows)
    ax = figures[0].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "alpha=-1: cannot evaluate (ValueError)" in labels and not ax.texts


def test_labels_of_nearby_configurations_do_not_pile_up():
    """Six configurations at nearly the same cost and accuracy: their "α=1"/"α=4" labels were
    all drawn at the same offset, on one another."""
    fig = plots._figure(8, 5.5)
    ax = fig.add_subplot()
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    labels = [("α=1", 50.0, 50.0), ("α=4", 50.2, 50.1), ("α=1", 50.1, 49.9), ("α=9", 10.0, 10.0)]
    places = plots._label_places(ax, labels)
    offsets = [p[3] for p in places]
    assert len(set(offsets[:3])) == 3  # three nearby labels, three places
    assert offsets[0] == offsets[3] == (9, 7)  # a label alone keeps the first place
    assert plots._label_places(ax, [("α=2", 90.0, 50.0)])[0][3] == (-9, 7)  # right: to the left


def test_jobs_of_an_interrupted_sweep_that_never_started_are_named(tmp_path):
    """A sweep interrupted in its first job: the report said "of 1 runs" for a sweep of 2
    and never mentioned the job that did not start (it has no directory)."""
    sweep = tmp_path / "sweep"
    job = write_run(sweep / "0-seed=0", {"name": "sigmoid", "alpha": 4.0}, 0, [0.5], [0.5],
                    {"lif0": 0.1}, 1.0)
    (job / ".hydra").mkdir()
    numbered = {"subdir": "${hydra.job.num}_${hydra.job.override_dirname}"}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                    "max_batch_size": None, "params": {"surrogate": "sigmoid,arctan"}},
        "sweep": numbered, "overrides": {"task": ["seed=0,1", "trainer.epochs=1"]}}}))
    assert runs.sweep_jobs(sweep) == 4
    assert runs.jobs_not_started([tmp_path]) == {sweep.resolve(): (3, 4)}
    # a job without .hydra/ (hydra.output_subdir=null) has started: its config.yaml says so
    write_run(sweep / "a" / "1-seed=1", {"name": "sigmoid", "alpha": 4.0}, 1, [0.5], [0.5],
              {"lif0": 0.1}, 1.0)
    assert runs.jobs_not_started([tmp_path]) == {sweep.resolve(): (2, 4)}
    shutil.rmtree(sweep / "a")
    assert report.main([str(sweep), "--out", str(tmp_path / "r")]) == 0
    verdict = (tmp_path / "r" / "verdict.txt").read_text()
    assert (f"Not started: 3 of the 4 jobs of the sweep in {sweep.resolve()}: the selection "
            "above is among the others only; rerun the sweep's command with "
            f"hydra.sweep.dir={sweep.resolve()} to run them.") in verdict
    # a glob over a group of ours is expanded as Hydra does; a grid that has all its jobs: none
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                    "params": None}, "sweep": numbered,
        "overrides": {"task": ["surrogate=glob(*)", "seed=0"]}}}))
    assert runs.sweep_jobs(sweep) == 22
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"},
        "sweep": numbered, "overrides": {"task": ["seed=0"]}}}))
    assert runs.jobs_not_started([tmp_path]) == {}
    # jobs that may share a directory (hydra.sweep.subdir=same): not counted
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"},
        "sweep": {"subdir": "same"}, "overrides": {"task": ["seed=0,1,2"]}}}))
    assert runs.sweep_jobs(sweep) is None


def test_seeds_of_the_same_value_on_both_sides_give_no_interval_and_say_why():
    """Three seeds each of 100/144 and 130/144: the variance of three equal values is 1e-32,
    not 0, so the test of "no spread" missed it and the report said "worse by 20.8 ± 3.3e-14
    points"; such rows were also listed as "One seed" (of 3 seeds), in the alpha scan too."""
    d = compare.welch([100 / 144] * 3, [130 / 144] * 3)
    assert np.isnan(d.low) and np.isnan(d.high) and np.isnan(d.df)
    assert d.diff == pytest.approx(-30 / 144, abs=1e-15)
    rows = _rows({("sigmoid", 1.0): [100 / 144] * 3, ("sigmoid", 2.0): [130 / 144] * 3,
                  ("sigmoid", 4.0): [110 / 144] * 3, ("sigmoid", 8.0): [0.5]})
    metric = compare.Metric("best_val_accuracy")
    ranked = compare.rank(rows, metric)
    assert [e.verdict for e in ranked] == [
        "selected",
        "13.9 points apart, but neither varies over its seeds: no interval, no claim can be made",
        "20.8 points apart, but neither varies over its seeds: no interval, no claim can be made",
        "1 seed: no claim can be made"]
    (rng,) = compare.alpha_ranges(rows, metric)
    assert rng.text() == ("sigmoid: best α = 2 (90.28 ± 0.00 %, 3 seeds); no claim can be made "
                          "about α=1 and α=4 next to it (no spread over seeds)")
    lines = report.verdict_lines(ranked, metric, [rng])
    assert lines[1:4] == [
        "No other configuration could be compared with it (see below).",
        "One seed, no claim can be made: sigmoid, α=8.",
        "No spread over seeds on either side (every seed gave the same value), so no interval "
        "and no claim can be made: sigmoid, α=4; sigmoid, α=1."]
    # the selected one with fewer seeds than a row: its count is said as its own
    assert compare.verdict(None, metric, 2, 1) == ("the selected one has 1 seed: no claim can be "
                                                   "made")


def test_a_run_whose_config_is_empty_or_not_a_mapping_is_failed(tmp_path):
    """An empty config.yaml was a completed run of surrogate "?" (the report could select
    it); a YAML list raised AttributeError (a traceback)."""
    root = tmp_path / "sweep"
    ok = write_run(root / "0-ok", {"name": "sigmoid", "alpha": 4.0}, 0, [0.9], [0.9],
                   {"lif0": 0.1}, 1.0)
    for name, text in (("1-empty", ""), ("2-list", "[1, 2]\n"), ("3-scalar", "hello\n"),
                       ("4-trainer-list", "trainer: [1]\n")):
        shutil.copytree(ok, root / name)
        (root / name / "config.yaml").write_text(text)
    by_name = {r.path.name: r for r in map(runs.load_run, runs.find_runs([root]))}
    assert {k: (r.status, r.reason) for k, r in by_name.items() if k != "0-ok"} == {
        k: ("failed", "config.yaml holds no snntrain config (empty, not a mapping, none of T, "
                      "dataset, model, seed, surrogate, trainer, or a group that is not a "
                      "mapping)")
        for k in ("1-empty", "2-list", "3-scalar", "4-trainer-list")}
    out = report.make_report([root], tmp_path / "rep")
    assert (out / "verdict.txt").read_text().startswith(
        "Selected by best validation accuracy (mean over seeds): sigmoid, α=4")


def test_impossible_results_and_empty_records_are_damaged_not_averaged(tmp_path):
    """A hand-edited best_val_accuracy of 5 was averaged in (297 %, and selected); a value
    that is no number was dropped from the mean while the seed count kept it; an empty
    metrics.jsonl counted as "not reached" in the epochs to the target (tester)."""
    s = {"name": "sigmoid", "alpha": 4.0}
    good = [write_run(tmp_path / f"g{i}", s, i, [0.5, 0.9], [0.5, 0.8], {"lif0": 0.1}, 1.0)
            for i in range(2)]
    for name, value in (("five", 5), ("text", "high"), ("flag", True)):
        d = write_run(tmp_path / name, s, 7, [0.5, 0.9], [0.5, 0.8], {"lif0": 0.1}, 1.0)
        summary = json.loads((d / "summary.json").read_text())
        summary["best_val_accuracy"] = value
        (d / "summary.json").write_text(json.dumps(summary))
        run = runs.load_run(d)
        assert run.status == runs.FAILED, name
        assert run.reason == (f"summary.json is damaged: best_val_accuracy={value!r} is "
                              + ("not an accuracy (0 to 1)" if name == "five" else
                                 "not a number"))
    empty = write_run(tmp_path / "empty", s, 3, [0.5, 0.9], [0.5, 0.8], {"lif0": 0.1}, 1.0)
    (empty / "metrics.jsonl").write_text("")
    run = runs.load_run(empty)
    assert run.status == runs.COMPLETED and run.reason.startswith(
        "metrics.jsonl holds no epoch record: counted from its summary.json")
    row = runs.group_runs([runs.load_run(p) for p in [*good, empty]])[1][0]
    stats = row.stats(0.85)
    assert (stats["n"], stats["reached_target"], stats["target_of"]) == (3, 2, 2)
    assert stats["best_val_accuracy_mean"] == pytest.approx(0.9)


def test_a_run_whose_config_is_lost_is_listed_as_failed(tmp_path):
    """A run directory with its summary.json but no config.yaml was left out of the report
    without a word (tester)."""
    s = {"name": "sigmoid", "alpha": 4.0}
    write_run(tmp_path / "a", s, 0, [0.5, 0.9], [0.5, 0.8], {"lif0": 0.1}, 1.0)
    b = write_run(tmp_path / "b", s, 1, [0.5, 0.9], [0.5, 0.8], {"lif0": 0.1}, 1.0)
    (b / "config.yaml").unlink()
    found = runs.find_runs([tmp_path])
    assert found == [(tmp_path / "a").resolve(), b.resolve()]
    run = runs.load_run(b)
    assert (run.status, run.reason) == (runs.FAILED, "config.yaml is missing (its summary.json "
                                                     "is there)")


def test_mean_over_fewer_seeds_than_the_row_says_so(tmp_path, capsys):
    """A run without a validation split has no best_val_accuracy (null): the row's mean is over
    the other seeds, and its cell says how many (the seed column alone said 3 of a mean of 2)."""
    s = {"name": "sigmoid", "alpha": 4.0}
    for seed, val in enumerate([0.6, 0.8, 0.7]):
        write_run(tmp_path / f"r{seed}", s, seed, [val], [0.5 + seed / 10], {"lif0": 0.1}, 1.0)
    summary = tmp_path / "r2" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "best_val_accuracy": None}))
    assert report.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| ★ 1"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert "3" in cells  # the seed column counts the completed runs
    assert "70.00 ± 14.14 (2 of 3 seeds)" in cells  # mean and std of 0.6 and 0.8
    assert "60.00 ± 10.00" in cells  # every seed has its test accuracy: no count shown


def test_a_report_stopped_while_it_draws_leaves_the_earlier_report_whole(tmp_path,
                                                                         monkeypatch):
    """A report killed while it drew its plots had written the new verdict.txt, summary.csv
    and summary.md beside the old index.html and plots (tester). The new report's files are
    written beside it and replace the old ones only when all are written; a staging directory
    left by a killed report of this host is removed by the next one."""
    s = {"name": "sigmoid", "alpha": 4.0}
    write_run(tmp_path / "sweep" / "r0", s, 0, [0.6], [0.5], {"lif0": 0.1}, 1.0)
    out = report.make_report(tmp_path / "sweep")
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    write_run(tmp_path / "sweep" / "r1", s, 1, [0.8], [0.7], {"lif0": 0.1}, 1.0)

    def killed(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "plot_learning_curves", killed)
    with pytest.raises(KeyboardInterrupt):
        report.make_report(tmp_path / "sweep")
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    assert [p.name for p in (tmp_path / "sweep").iterdir() if p.name.startswith(".")] == []
    monkeypatch.undo()
    dead = tmp_path / "sweep" / f".report.writing-{report.hostenv.HOST}-999999999"
    dead.mkdir()  # (no such pid)
    report.make_report(tmp_path / "sweep")
    assert "(2 seeds)" in (out / "verdict.txt").read_text() and not dead.exists()


def test_configurations_tied_with_no_spread_are_not_called_within_noise(tmp_path):
    """Every seed of each configuration the same 0.9931: the table said "+0.00 (no interval)"
    but the verdict listed them "Within noise of it (the 95% Welch interval ... contains 0)"
    and the alpha scan "within noise for α from 1 to 8": there is no interval."""
    root = _config_sweep(tmp_path / "s", {
        ("sigmoid", 1.0): [(0.9931, 0.99)] * 3, ("sigmoid", 2.0): [(0.9931, 0.99)] * 3,
        ("sigmoid", 4.0): [(0.9931, 0.99)] * 3,
        ("sigmoid", 8.0): [(0.98, 0.99), (0.97, 0.99), (0.99, 0.99)]})
    out = report.make_report([root], tmp_path / "rep")
    verdict = (out / "verdict.txt").read_text().splitlines()
    assert verdict[2:4] == [
        "Within noise of it (the 95% Welch interval of the difference contains 0): sigmoid, α=8.",
        "No spread over seeds on either side (every seed gave the same value), so no interval "
        "and no claim can be made: sigmoid, α=2; sigmoid, α=4.",
    ]
    assert verdict[-1] == (
        "Alpha scan, sigmoid: best α = 1 (99.31 ± 0.00 %, 3 seeds); no claim can be made about "
        "α=2 next to it (the same mean as the best, but no spread over seeds); it is the "
        "smallest alpha scanned: the best may lie beyond.")
    rows = {r["alpha"]: r for r in _csv_rows(out)}
    assert rows["2.0"]["verdict"] == (
        "tied: the same mean as the selected one (no spread over seeds: no interval)")
    assert "| +0.00 (no interval) |" in (out / "summary.md").read_text()
    ranked = compare.rank(_rows({("a", 1.0): [0.5, 0.5], ("b", 1.0): [0.5, 0.5]}),
                          compare.Metric("best_val_accuracy"))
    assert ranked[1].tied and ranked[1].within_noise is None


def test_a_run_whose_lock_is_free_is_not_running_whatever_its_age(tmp_path):
    """A run killed a moment ago (SIGKILL, the OOM killer) was listed as running for 30
    minutes, with no word to resume it, although its lock was free (robustness tester). The
    lock, looked up in /proc/locks (not taken: a run starting then is not refused), tells."""
    import fcntl
    import socket

    from snntrain import rundir

    s = {"name": "sigmoid", "alpha": 4.0}
    run = write_run(tmp_path / "0-killed", s, 0, [0.4], [0.4], {"lif0": 0.1}, 1.0, status=None)
    lock = run / rundir.LOCK_NAME
    lock.write_text(f"process 1 on {socket.gethostname()} since 2026-12-08 01:18:51\n")
    got = runs.load_run(run)
    assert got.status != "running" and "killed or crashed" in got.reason, got.reason
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held: the run is alive
    try:
        assert runs.load_run(run).status == "running"
    finally:
        os.close(fd)
    lock.write_text("process 1 on another-host since 2026-12-08 01:18:51\n")
    assert runs.load_run(run).status == "running"  # (another host's: judged by the age)
