"""Sweep reports: ``python -m snntrain.report PATH... [--out DIR] [--target 0.9]``.

Reads run directories (any directory under a PATH holding ``config.yaml`` or
``.hydra/config.yaml``; :mod:`snntrain.runs`) — ``summary.json``, ``metrics.jsonl`` and the
config; no network, no wandb — and writes ``verdict.txt``, ``summary.md``, ``summary.csv``, PNG
plots and ``index.html`` into DIR (default: ``<first PATH>/report``). At the end of every
multirun :mod:`snntrain.callbacks` writes it into ``<sweep dir>/report/``.

The report opens with the verdict: which configuration the sweep's selection metric (a
validation metric, never test) picks, which others are within noise of it and which are worse
(Welch's t over seeds, :mod:`snntrain.compare`), the test accuracy of the selected one as the
number to quote, and for alpha scans the best alpha and the range within noise of it.

Rows of the table are configurations: surrogate (with any of its other parameters that vary
within the sweep) × alpha × every other config value that varies across the runs, except the
seed, ranked best first. Each row aggregates its seeds: mean ± *sample* standard deviation
(ddof=1; undefined for one seed) of the best validation accuracy and the final test accuracy,
the difference to the selected configuration with its 95% interval, the epochs needed to reach
a target accuracy, the mean firing rate, the surrogate's peak and integral of g'(x) (its scale),
the wall time and, for runs that logged them (:mod:`snntrain.synops`), the cost per example:
effective synaptic operations (ACs + MACs), energy and activation sparsity, on the validation
split (the one that selects; test when no run has validation metrics) at the epoch the
selection metric comes from. ``accuracy_vs_synops.png`` plots the selection metric against the
synaptic operations with the Pareto front, and the verdict names the cheapest configuration
within noise of the selected one. Only completed runs enter the means; running and failed ones
are listed.
"""

from __future__ import annotations

import argparse
import csv
import glob
import html
import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snntrain import hostenv
from snntrain.compare import (
    AlphaRange,
    Metric,
    Ranked,
    alpha_ranges,
    cheapest_within_noise,
    pareto_front,
    rank,
    selection_metric,
    welch,
)
from snntrain.runs import (
    COMPLETED,
    DIVERGED,
    DUPLICATE,
    FAILED,
    PREEMPTED,
    RUNNING,
    SHORT_NAMES,
    STALE_AFTER_S,
    Row,
    Run,
    cost_split,
    execution_keys_varying,
    find_runs,
    format_value,
    group_runs,
    jobs_not_started,
    load_run,
    mean_std,
    members_missing,
    members_not_started,
    surrogate_scale,
)

STD_NOTE = "± is the sample standard deviation over seeds (ddof=1; blank for a single seed)."
DIFF_NOTE = (
    "Δ: the difference of the selection metric's mean to the selected configuration, with its "
    "95% confidence interval from Welch's t over seeds (df: Welch–Satterthwaite degrees of "
    "freedom); within noise: the interval contains 0; worse by d ± h: h is the interval's "
    "half-width. Each interval stands alone: among many configurations equal to the selected "
    "one, about 1 in 20 is called worse by chance."
)
MAX_LISTED = 8
SI_PREFIXES = {-12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}


def summarize(
    runs: Sequence[Run], target: float = 0.9, split: str = "val"
) -> tuple[list[str], list[dict[str, Any]]]:
    """The report table in key order: (key columns, one dict per row with key and statistics).

    The cost columns are taken as for the default selection metric, ``best_val_accuracy``.
    """
    columns, rows = group_runs(runs)
    where, at_best = cost_split(runs), Metric("best_val_accuracy").at_best_val_epoch
    return columns, [
        {**row.key, **row.stats(target, split), **row.cost_stats(where, at_best)} for row in rows
    ]


def synops_means(ranked: Sequence[Ranked], metric: Metric, split: str | None) -> list[float]:
    """Mean synaptic operations per example (ACs + MACs) over seeds of each ranked
    configuration, measured where its selection metric was (NaN: not logged)."""
    if split is None:
        return [math.nan] * len(ranked)
    return [
        mean_std(e.row.cost_values("synops", split, metric.at_best_val_epoch))[0] for e in ranked
    ]


def ranked_table(
    columns: list[str],
    ranked: Sequence[Ranked],
    metric: Metric,
    target: float,
    split: str,
    cost_split: str | None = None,
) -> list[dict[str, Any]]:
    """One dict per configuration, best first: key, statistics, ranking, surrogate scale, cost
    per example on ``cost_split`` and whether it is on the Pareto front of the selection metric
    against synaptic operations."""
    ops = synops_means(ranked, metric, cost_split)
    front = set(pareto_front(ops, [e.mean for e in ranked], metric.higher_is_better))
    table = []
    for i, e in enumerate(ranked):
        peak, integral = surrogate_scale(e.row.surrogate)
        d = e.diff
        table.append(
            {
                **e.row.key,
                "rank": e.rank,
                **e.row.stats(target, split),
                **e.row.cost_stats(cost_split, metric.at_best_val_epoch),
                "pareto_front": i in front,
                "selection_metric": metric.key,
                "selection_mean": e.mean,
                "selection_std": e.std,
                "diff_mean": math.nan if d is None else d.diff,
                "diff_low": math.nan if d is None else d.low,
                "diff_high": math.nan if d is None else d.high,
                "diff_df": math.nan if d is None else d.df,
                "verdict": e.verdict,
                "surrogate_peak": peak,
                "surrogate_integral": integral,
            }
        )
    return table


# ---- the verdict --------------------------------------------------------------------------


def _listed(labels: list[str]) -> str:
    more = len(labels) - MAX_LISTED
    return "; ".join(labels[:MAX_LISTED]) + (
        f"; and {more} more (see the table)" if more > 0 else ""
    )


def verdict_lines(
    ranked: Sequence[Ranked],
    metric: Metric,
    ranges: Sequence[AlphaRange] = (),
    runs: Sequence[Run] = (),
    cost_split: str | None = None,
    not_started: dict[Path, list[str]] | None = None,
    missing: dict[Path, list[str]] | None = None,
    jobs_missing: dict[Path, tuple[int, int]] | None = None,
) -> list[str]:
    """The conclusion in plain sentences: selected configuration, what is within noise of it,
    what is worse, the cheapest in synaptic operations among those within noise (costs measured
    on ``cost_split``), the test accuracy to quote, per alpha scan the best alpha and its range,
    and how many of ``runs`` failed or are still running."""
    if runs and not any(r.status == COMPLETED for r in runs):
        lines = ["No run has completed: no configuration can be selected."]
    else:
        lines = _verdict(ranked, metric, ranges)
    cheap = cheapest_line(ranked, synops_means(ranked, metric, cost_split), cost_split or "",
                          metric.at_best_val_epoch)
    if cheap:
        at = next(
            (i for i, v in enumerate(lines) if v.startswith(("Test accuracy", "Alpha scan"))),
            len(lines),
        )
        lines.insert(at, cheap)
    scale = _scale_warning([e.row for e in ranked if e.rank is not None])
    if scale:
        lines.append(scale)
    if varying := execution_keys_varying(runs):
        one = len(varying) == 1
        lines.append(f"{', '.join(varying)} {'varies' if one else 'vary'} across these runs, "
                     f"but {'it changes' if one else 'they change'} only how a run is computed "
                     "or where its data lies, not its results: runs differing only in "
                     f"{'it' if one else 'them'} are one configuration (compare speed or memory "
                     "with scripts/bench.py).")
    tasks = sorted({str(r.config.get("dataset", {}).get("name")) for r in runs
                    if r.status == COMPLETED and r.config  # (the ranked runs: not a failed one)
                    and isinstance(r.config.get("dataset"), dict)})
    if len(tasks) > 1:  # first: nothing above compares like with like
        lines.insert(0, f"These runs are on {len(tasks)} datasets ({', '.join(tasks)}), ranked "
                     "together below, but accuracies on different datasets are not comparable: "
                     "report each dataset's runs apart (python -m snntrain.report <its "
                     "directories>).")
    if not_started:  # no directory, so no run: the means are of the started members only
        k = sum(map(len, not_started.values()))
        lines.append(
            f"Not started: {k} member{'s' if k != 1 else ''} of "
            + "; ".join(f"{d} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                        for d, names in not_started.items())
            + ": the selection above is among the others only; rerun the population's command "
            "to train them.")
    for d, (k, jobs) in (jobs_missing or {}).items():  # a sweep interrupted early, or running
        live = any(r.status == RUNNING and d in r.path.resolve().parents for r in runs)
        lines.append(f"Not started: {k} of the {jobs} jobs of the sweep in {d}: the selection "
                     "above is among the others only; " + (
                         "the sweep is still running." if live else "rerun the sweep's command "
                         f"with hydra.sweep.dir={d} to run them."))
    if missing:  # trained, but their directories are gone
        k = sum(map(len, missing.values()))
        lines.append(
            f"Missing: {k} member{'s' if k != 1 else ''} of "
            + "; ".join(f"{d} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                        for d, names in missing.items())
            + f": the population's summary.json records {'them' if k != 1 else 'it'} as "
            f"trained, but {'their directories are' if k != 1 else 'its directory is'} gone: "
            "the selection above is among the others only.")
    n = Counter(r.status for r in runs)
    failed, running, diverged, preempted = n[FAILED], n[RUNNING], n[DIVERGED], n[PREEMPTED]
    if failed or running or diverged or preempted or n[DUPLICATE]:
        lines.append(
            f"Not in the means: {f'{diverged} diverged, ' if diverged else ''}"
            + (f"{n[DUPLICATE]} repeating a configuration's seed (counted once), "
               if n[DUPLICATE] else "")
            + (f"{preempted} pre-empted (rerun the command to resume them; a sweep's with "
               "hydra.sweep.dir=<its directory>), " if preempted else "")
            + f"{failed} failed and {running} running of {len(runs)} runs (listed with the reason "
            "under 'Runs not in the means')."
        )
    return lines


def si(value: float, std: float = math.nan, unit: str = "", space: str = "") -> str:
    """``3.94k ± 0.012k`` (``space=" "``: ``3.94 ± 0.012 nJ``): 3 significant digits, one SI
    prefix for both numbers, chosen by ``value``; ``—`` for NaN."""
    if math.isnan(value):
        return "—"
    rounded = float(f"{value:.3g}")
    e = 0 if rounded == 0 else 3 * math.floor(math.log10(abs(rounded)) / 3)
    e = min(max(e, -12), 12)
    p, k = SI_PREFIXES[e], 10.0**e
    if space:
        spread = "" if math.isnan(std) else f" ± {std / k:.2g}"
        return f"{value / k:.3g}{spread} {p}{unit}"
    spread = "" if math.isnan(std) else f" ± {std / k:.2g}{p}{unit}"
    return f"{value / k:.3g}{p}{unit}{spread}"


def cheapest_line(ranked: Sequence[Ranked], ops: Sequence[float], split: str,
                  at_best_val: bool = False) -> str:
    """The verdict's line on cost: the configuration with the fewest synaptic operations per
    example (``ops[i]``, mean over seeds of ``ranked[i]``) among the selected one and those
    within noise of it (:func:`snntrain.compare.cheapest_within_noise`), and its ratio to the
    selected one's, claimed only when the Welch interval of the seeds' operation counts
    excludes 0 and the ratio is below 0.995 (a 1.00× "saving", or one within the seeds'
    spread, was stated as one); ``""`` when there is no such choice."""
    i = cheapest_within_noise(ranked, ops)
    if i is None:
        return ""
    sel = next(j for j, e in enumerate(ranked) if e.rank == 1)
    where = f", {split} split" if split else ""
    head = "Cheapest in synaptic operations within noise of the selected configuration:"
    if i != sel:
        label, times = ranked[i].row.label, f"{ops[i] / ops[sel]:.2f}×"
        counts = f"{si(ops[i])} vs {si(ops[sel])}{where}"
        mine, theirs = (ranked[j].row.cost_values("synops", split, at_best_val) for j in (i, sel))
        if len(mine) < 2 or len(theirs) < 2:
            return (f"{head} {label}, {times} its synaptic operations per example ({counts}); "
                    "one seed, so no interval: it may be noise.")
        d = welch(mine, theirs)
        if not d.high < 0 or ops[i] / ops[sel] >= 0.995:  # (no interval: NaN)
            why = _why_no_saving(d)
            return (f"No configuration within noise of the selected one needs clearly fewer "
                    f"synaptic operations: the fewest, {label}, needs {times} ({counts}), "
                    f"{why}.")
        return (f"{head} {label}, {times} its synaptic operations per example ({counts}; 95% "
                f"interval of the difference {si(d.low)} to {si(d.high)}).")
    near = [j for j, e in enumerate(ranked)
            if j != sel and e.rank is not None and e.within_noise and math.isfinite(ops[j])]
    others = [ops[j] / ops[sel] for j in near]
    need = (
        f"the other one within noise of it needs {others[0]:.2f}× as many"
        if len(others) == 1
        else f"the {len(others)} within noise of it need {min(others):.2f}× to "
        f"{max(others):.2f}× as many"
    )
    # the same test as for another configuration's saving (a 1.00x "cheapest" was stated)
    nxt = min(near, key=lambda j: ops[j])
    mine, theirs = (ranked[j].row.cost_values("synops", split, at_best_val) for j in (sel, nxt))
    d = welch(mine, theirs) if len(mine) >= 2 and len(theirs) >= 2 else None
    if d is None or not d.high < 0 or ops[sel] / ops[nxt] >= 0.995:
        why = _why_no_saving(d)
        return (f"No configuration within noise of the selected one needs clearly fewer "
                f"synaptic operations: the selected one needs the fewest ({si(ops[sel])} per "
                f"example{where}), and {need}, {why}.")
    return f"{head} the selected one itself ({si(ops[sel])} per example{where}; {need})."


def _why_no_saving(d: Any) -> str:
    """Why a cheaper configuration's saving is not claimed (``d``: the Welch difference of
    the operation counts, None for one seed)."""
    if d is None:
        return "one seed, so no interval"
    if math.isnan(d.df):  # (it said "within the seeds' spread" of counts that never varied)
        return "the same counts on every seed, so no interval"
    return "within the seeds' spread" if not d.high < 0 else "under 0.5% fewer"


def _scale_warning(rows: Sequence[Any]) -> str:
    """A line when the compared surrogates differ in scale (∫g′ by more than 1.5x)."""
    scales = {}
    for row in rows:
        peak, integral = surrogate_scale(row.surrogate)
        if not math.isnan(integral):
            scales[row.label] = integral
    if len(scales) < 2:
        return ""
    lo, hi = min(scales.values()), max(scales.values())
    if lo > 0 and hi / lo <= 1.5:
        return ""
    span = "∞" if hi == math.inf else f"{hi:.3g}"
    return (
        f"Scale differs: the integral of g′(x) ranges from {lo:.3g} to {span} among these "
        "surrogates, so differences may come from scale as much as from shape; "
        "surrogate.normalize=true compares shapes at unit integral."
    )


def _verdict(ranked: Sequence[Ranked], metric: Metric, ranges: Sequence[AlphaRange]) -> list[str]:
    valued = [e for e in ranked if e.rank is not None]
    if not valued:
        hint = (
            " (is there a validation split? dataset.val_fraction > 0)"
            if "val" in metric.key
            else ""
        )
        return [f"No completed run has {metric.key}{hint}: no configuration can be selected."
                + (f" Note: {metric.note}." if metric.note else "")]
    best, others = valued[0], valued[1:]
    seeds = f"{best.n} seed{'s' if best.n != 1 else ''}"
    lines = [
        f"Selected by {metric.title} (mean over seeds): {best.row.label} — "
        f"{metric.fmt(best.mean, best.std)} ({seeds})."
    ]
    if ties := [e.row.label for e in others if e.tied]:
        lines.append(
            f"Tied with {_listed(ties)} (the same mean, {metric.fmt(best.mean)}): the selection "
            "between them is arbitrary (the first in the table's order is taken), and so is "
            "which test accuracy is quoted."
        )
    if metric.note:
        lines.append(f"Note: {metric.note}.")
    if not others:
        lines.append("It is the only configuration with results: nothing to compare it with.")
    elif best.n < 2 and all(e.n < 2 for e in others):
        lines.append(
            "Every configuration ran with one seed, so no claim can be made that the selected one "
            "is better than the others: the ranking may be noise. Rerun with several seeds "
            "(e.g. seed=0,1,2) to compare."
        )
    elif best.n < 2:
        lines.append(
            "The selected configuration has one seed, so no claim can be made about the "
            "differences to it; rerun it with more seeds."
        )
    else:
        within = [e.row.label for e in others if e.within_noise]
        worse = [f"{e.row.label} ({e.verdict})" for e in others if e.within_noise is False]
        unclaimed = [e for e in others if e.within_noise is None]
        one = [e.row.label for e in unclaimed if e.diff is None]
        # (several seeds each, and neither side varies over them: it was said "one seed")
        flat = [e.row.label for e in unclaimed if e.diff is not None]
        if within:
            lines.append(
                "Within noise of it (the 95% Welch interval of the difference contains 0): "
                f"{_listed(within)}."
            )
        elif not worse:  # nothing was compared: "none within noise" would be a claim
            lines.append(
                "No other configuration could be compared with it: they have one seed each "
                "(rerun them with more seeds, e.g. seed=0,1,2)." if not flat else
                "No other configuration could be compared with it (see below).")
        elif unclaimed:
            lines.append("No other configuration that could be compared is within noise of it."
                         if flat else
                         "No other configuration with two seeds or more is within noise of it.")
        else:
            lines.append("No other configuration is within noise of it.")
        if worse:
            lines.append(f"Worse: {_listed(worse)}.")
        if one:
            lines.append(f"One seed, no claim can be made: {_listed(one)}.")
        if flat:
            lines.append("No spread over seeds on either side (every seed gave the same "
                         f"value), so no interval and no claim can be made: {_listed(flat)}.")
    test = mean_std(best.row.values("test_accuracy"))
    if test[2]:
        lines.append(
            "Test accuracy of the selected configuration, the number to quote: "
            f"{Metric('test_accuracy').fmt(test[0], test[1])} ({test[2]} seed"
            f"{'s' if test[2] != 1 else ''}; test took no part in the selection)."
        )
    lines += [f"Alpha scan, {r.text()}." for r in ranges]
    return lines


# ---- table output -------------------------------------------------------------------------


def _pct(mean: float, std: float, k: int | None = None, n: int | None = None) -> str:
    """``mean ± std`` in percent, with ``(k of n seeds)`` when only ``k`` of the row's ``n``
    completed runs have the value."""
    if math.isnan(mean):
        return "—"
    part = "" if k is None or n is None or k >= n else f" ({k} of {n} seeds)"
    return f"{100 * mean:.2f}" + ("" if math.isnan(std) else f" ± {100 * std:.2f}") + part


def _diff_cell(r: dict[str, Any], metric: Metric) -> str:
    if r["rank"] == 1:
        return "selected"
    if math.isnan(r["diff_mean"]):
        return "—"
    k = 100 if metric.is_accuracy else 1
    if math.isnan(r["diff_low"]):  # neither side varies over its seeds
        return f"{k * r['diff_mean']:+.2f} (no interval)"
    text = f"{k * r['diff_mean']:+.2f} [{k * r['diff_low']:+.2f}, {k * r['diff_high']:+.2f}]"
    return text + ("" if math.isnan(r["diff_df"]) else f", df {r['diff_df']:.1f}")


def _scale_cell(v: float) -> str:
    return "—" if math.isnan(v) else ("∞" if v == math.inf else f"{v:.3g}")


def _has_cost(table: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(r.get("synops_mean", math.nan)) for r in table)


def _cost_head(table: list[dict[str, Any]]) -> list[str]:
    where = next((r["cost_split"] for r in table if r.get("cost_split")), "")
    return [
        f"synaptic ops / example ({where})",
        f"energy / example ({where})",
        f"activation sparsity ({where})",
        "Pareto front",
    ]


def _cost_cells(r: dict[str, Any]) -> list[str]:
    sparsity = (
        "—"
        if math.isnan(r["sparsity_mean"])
        else f"{r['sparsity_mean']:.3f}"
        + ("" if math.isnan(r["sparsity_std"]) else f" ± {r['sparsity_std']:.3f}")
    )
    return [
        si(r["synops_mean"], r["synops_std"]),
        si(1e-6 * r["energy_uj_mean"], 1e-6 * r["energy_uj_std"], "J", " "),
        sparsity,
        "◆" if r["pareto_front"] else "",
    ]


def _display_rows(
    columns: list[str], table: list[dict[str, Any]], metric: Metric, target: float, split: str
) -> tuple[list[str], list[list[str]]]:
    unit = " points" if metric.is_accuracy else ""
    own = metric.key != "best_val_accuracy"
    cost = _has_cost(table)  # a sweep of runs from before cost metrics shows no cost columns
    preempted = any(r.get("n_preempted") for r in table)
    head = [
        "rank",
        *[SHORT_NAMES.get(c, c) for c in columns],
        "n seeds",
        "best val acc %",
        *([metric.title] if own else []),
        f"Δ vs selected{unit} [95% CI]",
        "verdict",
        "test acc %",
        f"epochs to {split} acc ≥ {100 * target:g}%",
        "firing rate",
        "g′ peak",
        "∫g′",
        *(_cost_head(table) if cost else []),
        "wall time s",
        "failed",
        "diverged",
        "running",
        *(["pre-empted"] if preempted else []),
    ]
    body = []
    for r in table:
        reach = (
            "—" if r["reached_target"] == 0 else f"{r['epochs_to_target_mean']:.1f}"
        ) + f" ({r['reached_target']}/{r.get('target_of', r['n'])})"
        body.append(
            [
                "—" if r["rank"] is None else ("★ 1" if r["rank"] == 1 else str(r["rank"])),
                *[format_value(r[c]) for c in columns],
                str(r["n"]),
                _pct(r["best_val_accuracy_mean"], r["best_val_accuracy_std"],
                     r.get("best_val_accuracy_n"), r["n"]),
                *([metric.fmt(r["selection_mean"], r["selection_std"])] if own else []),
                _diff_cell(r, metric),
                r["verdict"],
                _pct(r["test_accuracy_mean"], r["test_accuracy_std"],
                     r.get("test_accuracy_n"), r["n"]),
                reach,
                "—" if math.isnan(r["firing_rate_mean"]) else f"{r['firing_rate_mean']:.3f}",
                _scale_cell(r["surrogate_peak"]),
                _scale_cell(r["surrogate_integral"]),
                *(_cost_cells(r) if cost else []),
                "—" if math.isnan(r["wall_time_s_mean"]) else f"{r['wall_time_s_mean']:.1f}",
                str(r["n_failed"]),
                str(r["n_diverged"]),
                str(r["n_running"]),
                *([str(r["n_preempted"])] if preempted else []),
            ]
        )
    return head, body


def _csv_cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return repr(v)  # round-trips exactly ("inf" for an infinite integral)
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


def _damaged(runs: Sequence[Run]) -> list[Run]:
    """Completed runs in the means whose records are damaged (a line of metrics.jsonl)."""
    return [r for r in runs if r.status == COMPLETED and r.reason]


def _counts(runs: Sequence[Run]) -> str:
    n = Counter(r.status for r in runs)
    return (
        f"{len(runs)} runs: {n[COMPLETED]} completed, {n[RUNNING]} running, {n[FAILED]} failed"
        + (f", {n[DIVERGED]} diverged" if n[DIVERGED] else "")
        + (f", {n[PREEMPTED]} pre-empted" if n[PREEMPTED] else "")
        + (f", {n[DUPLICATE]} repeating a seed" if n[DUPLICATE] else "")
    )


def _notes(metric: Metric | None = None, cost: bool = False) -> str:
    at = (
        "the best validation epoch"
        if metric is None or metric.at_best_val_epoch
        else "the last epoch"
    )
    costs = (
        " Cost per example (snntrain.synops, NeuroBench's definitions), on the split named in "
        f"the header at {at} (where the selection metric is measured): synaptic ops = effective "
        "accumulates + multiply-accumulates; energy: their arithmetic energy estimate (memory "
        "access ignored); activation sparsity: the fraction of zero spike outputs of the "
        "spiking layers; ◆: on the Pareto front (no configuration has a better selection "
        "metric for at most as many synaptic ops); — : not logged."
        if cost
        else ""
    )
    return (
        f"Accuracies in %, {STD_NOTE} {DIFF_NOTE} Best val: the highest validation accuracy of "
        "the run; test: after the last epoch; firing rate: test-set spikes per neuron and step "
        "after the last epoch, averaged over layers; epochs to target: mean over the seeds that "
        "reached it (how many in brackets); g′ peak and ∫g′: the height and the integral of the "
        "surrogate derivative, its scale (∞: heavy tails)." + costs
    )


def write_markdown(
    path: Path, columns, table, runs, metric, verdict, target, split, sources
) -> str:
    head, body = _display_rows(columns, table, metric, target, split)
    lines = ["# snntrain sweep report", "", *[f"{v}\n" for v in verdict]]
    lines += [
        f"{_counts(runs)}, under {', '.join(map(str, sources))}.\n",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    lines += ["", _notes(metric, _has_cost(table))]
    other = _not_completed(runs)
    if other:
        lines += ["", "## Runs not in the means", ""]
        lines += [f"- **{r.status}** `{r.path}`: {r.reason}" for r in other]
    if damaged := _damaged(runs):
        lines += ["", "## Runs in the means with damaged records", ""]
        lines += [f"- `{r.path}`: {r.reason}" for r in damaged]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


CSS = """body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1600px}
.verdict{background:#f3f7ff;border-left:5px solid #3a6fd8;padding:.6em 1.2em;margin:1em 0}
.verdict p{margin:.45em 0} .verdict p:first-child{font-size:1.15em;font-weight:600}
table{border-collapse:collapse;font-size:.9em} caption{text-align:left;padding:.3em 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#eee;white-space:normal;max-width:9em;vertical-align:bottom}
tr.selected td{background:#fff6d6;font-weight:600}
td.verdict-cell{text-align:left} .notes{font-size:.85em;color:#555;max-width:75em}
.scroll{overflow-x:auto} img{max-width:100%;border:1px solid #eee} figure{margin:1.2em 0}
code{overflow-wrap:anywhere}"""


def write_html(
    path: Path, columns, table, runs, metric, verdict, target, split, images: list[str]
) -> None:
    head, body = _display_rows(columns, table, metric, target, split)
    e = html.escape
    rows = "\n".join(
        f"<tr{' class=selected' if r['rank'] == 1 else ''}>"
        + "".join(
            f"<td{' class=verdict-cell' if h == 'verdict' else ''}>{e(c)}</td>"
            for h, c in zip(head, row, strict=True)
        )
        + "</tr>"
        for r, row in zip(table, body, strict=True)
    )
    other = "".join(
        f"<li><b>{e(r.status)}</b> <code>{e(str(r.path))}</code>: {e(r.reason)}</li>"
        for r in _not_completed(runs)
    )
    damaged = "".join(f"<li><code>{e(str(r.path))}</code>: {e(r.reason)}</li>"
                      for r in _damaged(runs))
    figs = "\n".join(
        f'<figure><img src="{e(i)}" alt="{e(i)}"><figcaption>{e(i)}</figcaption></figure>'
        for i in images
    )
    verdict_html = "\n".join(f"<p>{e(v)}</p>" for v in verdict)
    path.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>snntrain sweep report</title>
<style>{CSS}</style></head><body>
<h1>snntrain sweep report</h1>
<section class="verdict" id="verdict">
{verdict_html}
</section>
<p>{e(_counts(runs))}. Also as <a href="summary.csv">summary.csv</a> and
<a href="summary.md">summary.md</a>.</p>
<div class="scroll"><table><caption>Configurations ranked by {e(metric.title)}, the
selected one (★) first</caption>
<tr>{"".join(f"<th>{e(h)}</th>" for h in head)}</tr>
{rows}</table></div>
<p class="notes">{e(_notes(metric, _has_cost(table)))}</p>
{f"<h2>Runs not in the means</h2><ul>{other}</ul>" if other else ""}
{f"<h2>Runs in the means with damaged records</h2><ul>{damaged}</ul>" if damaged else ""}
<h2>Plots</h2>
{figs}
</body></html>
""")


# ---- the report ---------------------------------------------------------------------------


def make_report(
    paths: Sequence[str | Path] | str | Path,
    out: str | Path | None = None,
    target: float = 0.9,
    split: str = "val",
    stale_after_s: float = STALE_AFTER_S,
) -> Path:
    """Write the report for the runs under ``paths`` into ``out``; returns ``out``.

    ``out/verdict.txt`` holds the verdict lines (what the end of a multirun prints).

    Raises:
      FileNotFoundError: no run directory under ``paths``.
    """
    if isinstance(paths, (str, os.PathLike)):  # one directory (a string is not its characters)
        paths = [paths]
    paths = [Path(p) for p in paths]
    out = Path(out) if out is not None else paths[0] / "report"
    for p in paths:  # (a typo was read as a directory of no runs, with the others reported)
        if not p.is_dir():
            why = "not a directory" if p.exists() else "no such directory"
            raise FileNotFoundError(f"{p}: {why}")
    found = find_runs(paths)
    run_dirs = [d for d in found if not d.is_relative_to(out.resolve())]
    if not run_dirs and found:  # (it said "no run directories")
        raise FileNotFoundError(
            f"the {len(found)} run directories under {', '.join(map(str, paths))} are inside "
            f"the report's directory {out} (--out), which is never read for runs: choose an "
            "--out outside them")
    if not run_dirs:
        raise FileNotFoundError(
            f"no run directories (with config.yaml) under {', '.join(map(str, paths))}"
        )
    if empty := [str(p) for p in paths if not any(d.is_relative_to(p.resolve()) or
                                                  p.resolve().is_relative_to(d)
                                                  for d in run_dirs)]:
        raise FileNotFoundError(f"no run directories (with config.yaml) under {', '.join(empty)} "
                                "(the other paths have some)")
    now = time.time()
    runs = [load_run(d, now, stale_after_s) for d in run_dirs]
    final, out = out, _staging(out)
    try:
        _write_report(out, runs, paths, target, split)
        if out != final:  # each file replaced at once at the end (a report killed while it
            # drew its plots left a verdict of the new runs beside the old runs' pages)
            for f in sorted(out.iterdir()):
                os.replace(f, final / f.name)
    finally:
        if out != final:
            shutil.rmtree(out, ignore_errors=True)
    return final


def _staging(out: Path) -> Path:
    """A new directory beside ``out`` to write the report into (``out`` itself when none can
    be made); ``out`` is made too. Staging directories of reports killed before are removed
    once their process is gone."""
    out.mkdir(parents=True, exist_ok=True)
    mine = f".{out.name}.writing-{hostenv.HOST}-"
    for old in out.parent.glob(f"{glob.escape(mine)}*"):
        pid = old.name[len(mine):]
        if pid.isdigit() and hostenv.process_gone(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    staging = out.parent / f"{mine}{os.getpid()}"
    try:
        staging.mkdir()
    except OSError:
        return out
    return staging


def _write_report(out: Path, runs: list[Run], paths: list[Path], target: float, split: str
                  ) -> None:
    columns, rows = group_runs(runs)
    metric = selection_metric([r.config.get("optimize_metric") for r in runs if r.config])
    ranked = rank(rows, metric)
    ranges = alpha_ranges(rows, metric)
    where = cost_split(runs)
    verdict = verdict_lines(ranked, metric, ranges, runs, where, members_not_started(paths),
                            members_missing(paths), jobs_not_started(paths))
    table = ranked_table(columns, ranked, metric, target, split, where)
    (out / "verdict.txt").write_text("\n".join(verdict) + "\n")
    write_csv(out / "summary.csv", columns, table)
    write_markdown(out / "summary.md", columns, table, runs, metric, verdict, target, split, paths)
    from snntrain import plots

    by_rank = [e.row for e in ranked]
    done = [r for r in by_rank if r.completed]
    selected = ranked[0].row if ranked and ranked[0].rank == 1 else None
    drawings = {
        "accuracy_vs_alpha.png": lambda p: plots.plot_accuracy_vs_alpha(p, rows, metric, ranges),
    } if scans_alpha(rows) else {}
    drawings |= {
        "accuracy_by_config.png": lambda p: plots.plot_accuracy_by_config(p, done, selected),
        "learning_curves.png": lambda p: plots.plot_learning_curves(
            p, [r for r in rows if r.completed]
        ),
        "firing_rates.png": lambda p: plots.plot_firing_rates(p, done),
        "surrogate_gradients.png": lambda p: plots.plot_surrogate_gradients(p, rows),
    }
    if _has_cost(table):
        drawings["accuracy_vs_synops.png"] = lambda p: plots.plot_accuracy_vs_synops(
            p, [e.row for e in ranked if e.rank is not None], metric, where
        )
    images = []
    for name, draw in drawings.items():
        if not done and name != "surrogate_gradients.png":
            continue
        try:
            draw(out / name)
            images.append(name)
        except Exception as e:  # noqa: BLE001 - one failed plot must not lose the report
            print(
                f"snntrain.report: could not draw {name}: {type(e).__name__}: {e}", file=sys.stderr
            )
    write_html(out / "index.html", columns, table, runs, metric, verdict, target, split, images)


def scans_alpha(rows: Sequence[Row]) -> bool:
    """Whether some series ran at two alphas or more: else a plot against alpha (one point or
    one flat line per surrogate, as in ``experiment=surrogate_comparison``) shows nothing the
    bars do not, and is not drawn."""
    alphas: dict[str, set] = {}
    for r in rows:
        if r.key["alpha"] is not None and r.completed:  # (a failed alpha drew one point)
            alphas.setdefault(r.series, set()).add(r.key["alpha"])
    return any(len(a) >= 2 for a in alphas.values())


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text}: an accuracy in (0, 1], e.g. 0.9")
    return value


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"{text}: minutes >= 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """``snntrain-report`` / ``python -m snntrain.report``."""
    p = argparse.ArgumentParser(prog="snntrain-report", description=__doc__.split("\n\n")[1])
    p.add_argument("paths", nargs="+", metavar="PATH", help="sweep or run directories")
    p.add_argument("--out", metavar="DIR", help="report directory (default: <first PATH>/report)")
    p.add_argument(
        "--target", type=_fraction, default=0.9,
        help="accuracy for 'epochs to target', in (0, 1] (default 0.9)"
    )
    p.add_argument(
        "--split",
        choices=("val", "test"),
        default="val",
        help="split for 'epochs to target' (default val)",
    )
    p.add_argument(
        "--stale-after",
        type=_minutes,
        default=STALE_AFTER_S / 60,
        metavar="MIN",
        help="a run without summary.json counts as running if it wrote anything "
        "in the last MIN minutes, else as failed (default 30)",
    )
    args = p.parse_args(argv)
    try:
        out = make_report(args.paths, args.out, args.target, args.split, 60 * args.stale_after)
    except OSError as e:  # no runs; or --out (<PATH>/report) where nothing can be written
        why = (f"cannot write the report to {e.filename}: {e.strerror}" if e.filename
               else str(e))
        print(f"snntrain-report: error: {why}", file=sys.stderr)
        return 2
    try:
        print((out / "summary.md").read_text())
        print(f"report: {out / 'index.html'}")
        sys.stdout.flush()
    except BrokenPipeError:  # `snntrain-report PATH | head`: the reader has gone
        silence_stdout()
        return BROKEN_PIPE_EXIT_CODE
    return 0


BROKEN_PIPE_EXIT_CODE = 141  # 128 + SIGPIPE, as a shell reports `... | head` cutting a writer


def silence_stdout() -> None:
    """Point stdout's file descriptor at /dev/null, so that flushing what is left at exit does
    not raise BrokenPipeError again (Python's "Exception ignored ..." at shutdown)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (captured): nothing to do
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
