"""Sweep reports: ``python -m snntrain.report PATH... [--out DIR] [--target 0.9]``.

Reads run directories (any directory under a PATH holding ``config.yaml`` or
``.hydra/config.yaml``) — ``summary.json``, ``metrics.jsonl`` and the config; no network, no
wandb — and writes ``summary.md``, ``summary.csv``, PNG plots and ``index.html`` into DIR
(default: ``<first PATH>/report``).

Rows of the table are configurations: surrogate (with any of its other parameters that vary
within the sweep) × alpha × every other config value that varies across the runs, except the
seed. Each row aggregates its seeds: mean ± *sample* standard deviation (ddof=1; undefined for
one seed) of the best validation accuracy and the final test accuracy, the epochs needed to
reach a target accuracy, the mean firing rate and the wall time.

A run is ``completed`` (``summary.json`` with status ``completed`` and a readable
``metrics.jsonl``), ``running`` (no ``summary.json`` yet, written to within ``stale_after_s``)
or ``failed`` (anything else); only completed runs enter the means, the others are listed.

The numerics (:func:`load_run`, :func:`summarize`, :func:`mean_std`, :func:`epochs_to_target`,
:func:`learning_curve`) are pure; plotting uses matplotlib's object API (no pyplot state).
The plots live in :mod:`snntrain.plots`. This module also names wandb groups and tags for
sweeps (:func:`hydra_sweep_group`, :func:`run_tags`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import html
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

COMPLETED, RUNNING, FAILED = "completed", "running", "failed"
STALE_AFTER_S = 30 * 60
# Config keys that never make two runs different configurations.
IGNORED_KEYS = (
    "seed",
    "logger.",
    "hydra.",
    "optimize_metric",
    "trainer.progress",
    "trainer.resume",
    "trainer.log_every",
    "trainer.checkpoint_every",
    "trainer.keep_checkpoints",
    "trainer.async_checkpointing",
    "trainer.init_timeout_s",
    "trainer.distributed",
    "trainer.coordinator_address",
    "trainer.num_processes",
    "trainer.process_id",
    "trainer.devices",
    "trainer.parallel",
)
SHORT_NAMES = {"model.name": "model", "dataset.name": "dataset"}
STD_NOTE = "± is the sample standard deviation over seeds (ddof=1; blank for a single seed)."


# ---- reading runs -------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """One run directory as the report sees it."""

    path: Path
    status: str  # completed | running | failed
    reason: str = ""
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # "epoch" records

    @property
    def seed(self) -> Any:
        return self.config.get("seed")


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories under ``paths`` (a PATH may itself be one), sorted, without duplicates."""
    found: set[Path] = set()
    for root in map(Path, paths):
        for dirpath, dirnames, _ in os.walk(root):
            d = Path(dirpath)
            if (d / "members").is_dir():  # a population: its members are the runs
                dirnames[:] = ["members"]
            elif d.name != ".hydra" and (
                (d / "config.yaml").is_file() or (d / ".hydra" / "config.yaml").is_file()
            ):
                found.add(d.resolve())
                dirnames.clear()  # checkpoints/, wandb/ and .hydra/ hold no runs
            else:
                dirnames[:] = [n for n in dirnames if not n.startswith(".")]
    return sorted(found, key=_natural_key)


def _natural_key(p: Path) -> list[Any]:
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))]


def _load_config(run_dir: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    for path in (run_dir / "config.yaml", run_dir / ".hydra" / "config.yaml"):
        if path.is_file():
            cfg = OmegaConf.load(path)
            try:
                return OmegaConf.to_container(cfg, resolve=True)
            except Exception:  # noqa: BLE001 - e.g. ${hydra:...} outside Hydra
                return OmegaConf.to_container(cfg, resolve=False)
    return {}


def _read_metrics(path: Path) -> tuple[list[dict[str, Any]], int | None, int]:
    """(epoch records, number of the first unreadable line or None, number of lines)."""
    epochs, bad = [], None
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad = bad or i
            continue
        if isinstance(rec, dict) and rec.get("split") == "epoch":
            epochs.append(rec)
    return epochs, bad, len(lines)


def last_activity(run_dir: Path) -> float:
    """The newest modification time of anything in ``run_dir`` (seconds since the epoch)."""
    newest = run_dir.stat().st_mtime
    for dirpath, _, filenames in os.walk(run_dir):
        for name in filenames:
            # A live run may delete a file (an old checkpoint) while we walk.
            with contextlib.suppress(OSError):
                newest = max(newest, os.stat(os.path.join(dirpath, name)).st_mtime)
    return newest


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def load_run(
    run_dir: str | Path, now: float | None = None, stale_after_s: float = STALE_AFTER_S
) -> Run:
    """Read one run directory; never raises for a broken run (it becomes ``failed``)."""
    run_dir = Path(run_dir)
    run = Run(run_dir, FAILED)
    try:
        run.config = _load_config(run_dir)
    except Exception as e:  # noqa: BLE001
        run.reason = f"config.yaml unreadable ({type(e).__name__})"
        return run
    metrics = run_dir / "metrics.jsonl"
    bad, n_lines = None, 0
    if metrics.is_file():
        run.epochs, bad, n_lines = _read_metrics(metrics)
    summary_path = run_dir / "summary.json"
    now = time.time() if now is None else now
    if not summary_path.is_file():
        age = now - last_activity(run_dir)
        epochs = (run.config.get("trainer") or {}).get("epochs", "?")
        done = f"epoch {len(run.epochs)}/{epochs}"
        if bad is not None and bad < n_lines:  # only a live run's last line may be cut
            run.reason = f"metrics.jsonl line {bad} is not JSON"
        elif age < stale_after_s:
            run.status, run.reason = RUNNING, f"{done}, last write {_ago(age)} ago"
        else:
            run.reason = f"no summary.json, {done}, last write {_ago(age)} ago (killed or crashed)"
        return run
    try:
        run.summary = json.loads(summary_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        run.reason = "summary.json is not valid JSON"
        return run
    status = run.summary.get("status")
    if status == "preempted":
        # Requeued and resumed: the new attempt writes after the old summary.json.
        written = last_activity(run_dir)
        if written > summary_path.stat().st_mtime + 1 and now - written < stale_after_s:
            run.status, run.reason = RUNNING, f"resumed after pre-emption, epoch {len(run.epochs)}"
        else:
            run.reason = "pre-empted; rerun its command to resume it"
    elif status != COMPLETED:
        error = run.summary.get("error")
        run.reason = f"status {status!r}" + (f": {error}" if error else "")
    elif not metrics.is_file():
        run.reason = "metrics.jsonl is missing"
    elif bad is not None:
        run.reason = f"metrics.jsonl line {bad} is not JSON"
    else:
        run.status = COMPLETED
    return run


# ---- grouping and statistics --------------------------------------------------------------


def _num(v: Any) -> float | None:
    """A metric as a float (``summary.json`` stores NaN/Inf as strings); None when absent."""
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """(mean, sample std with ddof=1, n) over the values that are not None.

    The std is NaN for fewer than two values; the mean is NaN for none.
    """
    xs = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if xs.size == 0:
        return math.nan, math.nan, 0
    std = float(np.std(xs, ddof=1)) if xs.size > 1 else math.nan
    return float(np.mean(xs)), std, int(xs.size)


def epochs_to_target(
    epochs: Sequence[dict[str, Any]], target: float, split: str = "val"
) -> int | None:
    """The first epoch whose ``<split>_accuracy`` is at least ``target``; None if never."""
    for rec in epochs:
        acc = _num(rec.get(f"{split}_accuracy"))
        if acc is not None and acc >= target:
            return int(rec["epoch"])
    return None


def learning_curve(runs: Sequence[Run], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, std over runs) of ``key`` in the per-epoch records, aligned by epoch."""
    by_epoch: dict[int, list[float]] = {}
    for run in runs:
        for rec in run.epochs:
            v = _num(rec.get(key))
            if v is not None:
                by_epoch.setdefault(int(rec["epoch"]), []).append(v)
    ep = np.array(sorted(by_epoch), dtype=int)
    stats = [mean_std(by_epoch[e]) for e in ep]
    return (ep, np.array([s[0] for s in stats]), np.array([s[1] for s in stats]))


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def _fmt_value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:g}"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


@dataclasses.dataclass
class Row:
    """One configuration (all seeds of it)."""

    key: dict[str, Any]  # column -> value (surrogate label, alpha, other varying keys)
    surrogate: dict[str, Any]  # the surrogate config of this row (name + parameters)
    runs: list[Run]

    @property
    def completed(self) -> list[Run]:
        return [r for r in self.runs if r.status == COMPLETED]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    @property
    def series(self) -> str:
        """The row's label without alpha: one line in the accuracy-vs-alpha plot."""
        return ", ".join(
            [str(self.key["surrogate"])]
            + [
                f"{SHORT_NAMES.get(k, k)}={_fmt_value(v)}"
                for k, v in self.key.items()
                if k not in ("surrogate", "alpha")
            ]
        )

    @property
    def label(self) -> str:
        alpha = self.key.get("alpha")
        label = self.series + ("" if alpha is None else f", α={alpha:g}")
        return label if len(label) <= 60 else label[:59] + "…"

    def stats(self, target: float, split: str = "val") -> dict[str, Any]:
        done = self.completed
        best = mean_std([_num(r.summary.get("best_val_accuracy")) for r in done])
        test = mean_std([_num(r.summary.get("test_accuracy")) for r in done])
        reach = [epochs_to_target(r.epochs, target, split) for r in done]
        rates = [
            np.mean(list(fr.values())) if (fr := r.summary.get("firing_rates")) else None
            for r in done
        ]
        return {
            "n": len(done),
            "seeds": " ".join(str(r.seed) for r in done),
            "best_val_accuracy_mean": best[0],
            "best_val_accuracy_std": best[1],
            "test_accuracy_mean": test[0],
            "test_accuracy_std": test[1],
            "epochs_to_target_mean": mean_std(reach)[0],
            "reached_target": sum(e is not None for e in reach),
            "firing_rate_mean": mean_std(rates)[0],
            "wall_time_s_mean": mean_std([_num(r.summary.get("wall_time_s")) for r in done])[0],
            "n_failed": self.count(FAILED),
            "n_running": self.count(RUNNING),
        }


def _is_ignored(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in IGNORED_KEYS)


def group_runs(runs: Sequence[Run]) -> tuple[list[str], list[Row]]:
    """Split runs into configurations; returns (key columns, rows sorted by key).

    The key is the surrogate (named with those of its non-alpha parameters that vary among
    runs of the same surrogate), alpha, and every other config value that varies across
    ``runs`` apart from the seed and bookkeeping (``IGNORED_KEYS``).
    """
    flat = [flatten(r.config) for r in runs]
    known = [f for f in flat if f]  # a run with an unreadable config must not add columns
    missing = object()
    keys = sorted({k for f in known for k in f})
    varying = [
        k
        for k in keys
        if not k.startswith("surrogate.")
        and not _is_ignored(k)
        and len({_hashable(f.get(k, missing)) for f in known}) > 1
    ]
    # Surrogate parameters other than alpha that vary within one surrogate name.
    by_name: dict[Any, list[dict[str, Any]]] = {}
    for r in runs:
        s = r.config.get("surrogate") or {}
        by_name.setdefault(s.get("name"), []).append(s)
    label_params = {
        name: sorted(
            k
            for k in {k for s in ss for k in s}
            if k not in ("name", "alpha") and len({_hashable(s.get(k)) for s in ss}) > 1
        )
        for name, ss in by_name.items()
    }
    rows: dict[tuple, Row] = {}
    for run, f in zip(runs, flat, strict=True):
        s = run.config.get("surrogate") or {}
        name = s.get("name", "?")
        params = label_params.get(s.get("name"), [])
        label = (
            f"{name}({', '.join(f'{p}={_fmt_value(s.get(p))}' for p in params)})"
            if params
            else str(name)
        )
        key = {"surrogate": label, "alpha": _num(s.get("alpha"))}
        key.update({k: f.get(k) for k in varying})
        hk = tuple(_hashable(v) for v in key.values())
        if hk not in rows:
            rows[hk] = Row(key, dict(s), [])
        rows[hk].runs.append(run)

    def order(row: Row) -> tuple:
        return tuple(
            (v is None, str(type(v)), v if isinstance(v, (int, float)) else str(v))
            for v in row.key.values()
        )

    return ["surrogate", "alpha", *varying], sorted(rows.values(), key=order)


def summarize(
    runs: Sequence[Run], target: float = 0.9, split: str = "val"
) -> tuple[list[str], list[dict[str, Any]]]:
    """The report table: (key columns, one dict per row with key columns and statistics)."""
    columns, rows = group_runs(runs)
    return columns, [{**row.key, **row.stats(target, split)} for row in rows]


# ---- table output -------------------------------------------------------------------------


def _pct(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "—"
    return f"{100 * mean:.2f}" + ("" if math.isnan(std) else f" ± {100 * std:.2f}")


def _display_rows(
    columns: list[str], table: list[dict[str, Any]], target: float, split: str
) -> tuple[list[str], list[list[str]]]:
    head = [SHORT_NAMES.get(c, c) for c in columns] + [
        "n seeds",
        "best val acc %",
        "test acc %",
        f"epochs to {split} acc ≥ {100 * target:g}%",
        "firing rate",
        "wall time s",
        "failed",
        "running",
    ]
    body = []
    for r in table:
        reach = (
            "—" if r["reached_target"] == 0 else f"{r['epochs_to_target_mean']:.1f}"
        ) + f" ({r['reached_target']}/{r['n']})"
        body.append(
            [_fmt_value(r[c]) for c in columns]
            + [
                str(r["n"]),
                _pct(r["best_val_accuracy_mean"], r["best_val_accuracy_std"]),
                _pct(r["test_accuracy_mean"], r["test_accuracy_std"]),
                reach,
                "—" if math.isnan(r["firing_rate_mean"]) else f"{r['firing_rate_mean']:.3f}",
                "—" if math.isnan(r["wall_time_s_mean"]) else f"{r['wall_time_s_mean']:.1f}",
                str(r["n_failed"]),
                str(r["n_running"]),
            ]
        )
    return head, body


def _csv_cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return repr(v)  # round-trips exactly
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def write_csv(path: Path, columns: list[str], table: list[dict[str, Any]]) -> None:
    """Full-precision numbers; NaN (undefined std, no value) as an empty cell."""
    fields = [*columns, *[k for k in (table[0] if table else {}) if k not in columns]]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        w.writerows([_csv_cell(r[k]) for k in fields] for r in table)


def _not_completed(runs: Sequence[Run]) -> list[Run]:
    return [r for r in runs if r.status != COMPLETED]


def write_markdown(path: Path, columns, table, runs, target, split, sources) -> str:
    head, body = _display_rows(columns, table, target, split)
    lines = [
        f"# snntrain sweep report\n\nRuns: {len(runs)} under {', '.join(map(str, sources))}"
        f" — {sum(r.status == COMPLETED for r in runs)} completed, "
        f"{sum(r.status == RUNNING for r in runs)} running, "
        f"{sum(r.status == FAILED for r in runs)} failed.\n",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    lines += [
        "",
        f"Accuracies in %, {STD_NOTE} Best val: the highest validation accuracy of "
        "the run; test: after the last epoch; firing rate: test-set spikes per neuron "
        "and step after the last epoch, averaged over layers; epochs to target: mean "
        "over the seeds that reached it (how many in brackets).",
    ]
    other = _not_completed(runs)
    if other:
        lines += ["", "## Runs not in the means", ""]
        lines += [f"- **{r.status}** `{r.path}`: {r.reason}" for r in other]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def write_html(path: Path, columns, table, runs, target, split, images: list[str]) -> None:
    head, body = _display_rows(columns, table, target, split)
    e = html.escape
    rows = "\n".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body)
    other = "".join(
        f"<li><b>{e(r.status)}</b> <code>{e(str(r.path))}</code>: {e(r.reason)}</li>"
        for r in _not_completed(runs)
    )
    figs = "\n".join(
        f'<figure><img src="{e(i)}" alt="{e(i)}"><figcaption>{e(i)}</figcaption></figure>'
        for i in images
    )
    path.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>snntrain sweep report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} th{{background:#eee}}
img{{max-width:100%}} figure{{margin:1em 0}}</style></head><body>
<h1>snntrain sweep report</h1>
<p>{len(runs)} runs: {sum(r.status == COMPLETED for r in runs)} completed,
{sum(r.status == RUNNING for r in runs)} running, {sum(r.status == FAILED for r in runs)} failed.
Accuracies in %. {e(STD_NOTE)} Also as <a href="summary.csv">summary.csv</a> and
<a href="summary.md">summary.md</a>.</p>
<table><tr>{"".join(f"<th>{e(h)}</th>" for h in head)}</tr>
{rows}</table>
{f"<h2>Runs not in the means</h2><ul>{other}</ul>" if other else ""}
{figs}
</body></html>
""")


# ---- the report ---------------------------------------------------------------------------


def make_report(
    paths: Sequence[str | Path],
    out: str | Path | None = None,
    target: float = 0.9,
    split: str = "val",
    stale_after_s: float = STALE_AFTER_S,
) -> Path:
    """Write the report for the runs under ``paths`` into ``out``; returns ``out``.

    Raises:
      FileNotFoundError: no run directory under ``paths``.
    """
    paths = [Path(p) for p in paths]
    out = Path(out) if out is not None else paths[0] / "report"
    run_dirs = [d for d in find_runs(paths) if not d.is_relative_to(out.resolve())]
    if not run_dirs:
        raise FileNotFoundError(
            f"no run directories (with config.yaml) under {', '.join(map(str, paths))}"
        )
    now = time.time()
    runs = [load_run(d, now, stale_after_s) for d in run_dirs]
    out.mkdir(parents=True, exist_ok=True)
    columns, rows = group_runs(runs)
    table = [{**row.key, **row.stats(target, split)} for row in rows]
    write_csv(out / "summary.csv", columns, table)
    write_markdown(out / "summary.md", columns, table, runs, target, split, paths)
    from snntrain.plots import (
        plot_accuracy_by_config,
        plot_accuracy_vs_alpha,
        plot_firing_rates,
        plot_learning_curves,
        plot_surrogate_gradients,
    )

    plotted = [r for r in rows if r.completed]
    images = []
    plots = {
        "accuracy_vs_alpha.png": lambda p: plot_accuracy_vs_alpha(
            p, plotted, [t for r, t in zip(rows, table, strict=True) if r.completed]
        ),
        "accuracy_by_config.png": lambda p: plot_accuracy_by_config(
            p, plotted, [t for r, t in zip(rows, table, strict=True) if r.completed]
        ),
        "learning_curves.png": lambda p: plot_learning_curves(p, plotted),
        "firing_rates.png": lambda p: plot_firing_rates(p, plotted),
        "surrogate_gradients.png": lambda p: plot_surrogate_gradients(p, rows),
    }
    for name, plot in plots.items():
        if not plotted and name != "surrogate_gradients.png":
            continue
        try:
            plot(out / name)
            images.append(name)
        except Exception as e:  # noqa: BLE001 - one failed plot must not lose the report
            print(
                f"snntrain.report: could not draw {name}: {type(e).__name__}: {e}", file=sys.stderr
            )
    write_html(out / "index.html", columns, table, runs, target, split, images)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``snntrain-report`` / ``python -m snntrain.report``."""
    p = argparse.ArgumentParser(prog="snntrain-report", description=__doc__.split("\n\n")[1])
    p.add_argument("paths", nargs="+", metavar="PATH", help="sweep or run directories")
    p.add_argument("--out", help="report directory (default: <first PATH>/report)")
    p.add_argument(
        "--target", type=float, default=0.9, help="accuracy for 'epochs to target' (default 0.9)"
    )
    p.add_argument(
        "--split",
        choices=("val", "test"),
        default="val",
        help="split for 'epochs to target' (default val)",
    )
    p.add_argument(
        "--stale-after",
        type=float,
        default=STALE_AFTER_S / 60,
        metavar="MIN",
        help="a run without summary.json counts as running if it wrote anything "
        "in the last MIN minutes, else as failed (default 30)",
    )
    args = p.parse_args(argv)
    try:
        out = make_report(args.paths, args.out, args.target, args.split, 60 * args.stale_after)
    except FileNotFoundError as e:
        print(f"snntrain-report: error: {e}", file=sys.stderr)
        return 2
    print((out / "summary.md").read_text())
    print(f"report: {out / 'index.html'}")
    return 0


# ---- wandb names for sweeps ---------------------------------------------------------------


def sweep_group(sweep_dir: str | Path, prefix: str | None = None) -> str:
    """The wandb group of a Hydra sweep: its directory below ``.../multirun/`` (or its name).

    ``outputs/multirun/2025-06-01/12-00-00`` → ``2025-06-01_12-00-00``, prefixed with the
    experiment (or hparams_search) name when there is one: ``alpha_scan_2025-06-01_12-00-00``.
    """
    parts = Path(sweep_dir).parts
    tail = (
        parts[len(parts) - parts[::-1].index("multirun") :]
        if "multirun" in parts[:-1]
        else parts[-1:]
    )
    name = "_".join(tail) or "sweep"
    return (f"{prefix}_{name}" if prefix else name)[:128]


def hydra_sweep_group() -> str | None:
    """:func:`sweep_group` of the current Hydra multirun job; None outside a multirun."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return None
    if hc.mode != RunMode.MULTIRUN:
        return None
    choices = hc.runtime.choices
    prefix = choices.get("experiment") or choices.get("hparams_search")
    return sweep_group(hc.sweep.dir, None if prefix in (None, "null") else prefix)


def run_tags(cfg: Any) -> list[str]:
    """wandb tags ``surrogate=…``, ``alpha=…`` (if any), ``model=…``, ``dataset=…``, ``seed=…``."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    s, tags = c.get("surrogate") or {}, []
    tags.append(f"surrogate={s.get('name')}")
    if s.get("alpha") is not None:
        tags.append(
            f"alpha={s['alpha']:g}"
            if isinstance(s["alpha"], (int, float))
            else f"alpha={s['alpha']}"
        )
    tags += [
        f"model={(c.get('model') or {}).get('name')}",
        f"dataset={(c.get('dataset') or {}).get('name')}",
        f"seed={c.get('seed')}",
    ]
    return [t[:64] for t in tags]


if __name__ == "__main__":
    sys.exit(main())
