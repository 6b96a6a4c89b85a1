"""Plots of sweep reports and of surrogate derivatives (matplotlib's object API, no pyplot
state): accuracy vs alpha, accuracy by configuration, learning curves, firing rates, the
surrogate gradients and accuracy vs synaptic operations of a sweep
(:func:`snntrain.report.make_report` draws them), and one run's
surrogate derivative (:func:`surrogate_curve_png`, written by the trainer).

Every axis is labelled; a legend sits inside its axes, or below them when it has more than
:data:`MAX_LEGEND_INSIDE` entries. Inputs are configurations
(:class:`snntrain.runs.Row`) and, for the alpha plot, the ranking results of
:mod:`snntrain.compare`.
"""

from __future__ import annotations

import math
import os
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snntrain.compare import AlphaRange, Metric, pareto_front
from snntrain.runs import (
    Row,
    as_float,
    build_surrogate,
    format_value,
    learning_curve,
    mean_std,
    step_curve,
    steps_per_epoch,
)

DPI = 100
X_LABEL = "x = v − threshold"


def _save(fig: Any, path: Path) -> None:
    """``fig`` written to ``path``, without matplotlib's "constrained_layout not applied"
    warning (long labels: the figure is written as laid out; it reached the report's
    console above the verdict)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "constrained_layout not applied", UserWarning)
        fig.savefig(path)


def image_path(text: str) -> Path:
    """An ``--out`` image file for a plotting script (an argparse ``type``): a format
    matplotlib writes, else one line listing them (``--out x.pdff`` was matplotlib's traceback
    after the figure was drawn)."""
    import argparse

    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    suffix = Path(text).suffix.lstrip(".").lower()
    if suffix not in formats:
        raise argparse.ArgumentTypeError(
            f"{text}: " + (f".{suffix} is not an image format matplotlib writes" if suffix
                           else "no file extension") + f"; use one of {', '.join(sorted(formats))}")
    parent = Path(text).absolute().parent
    while not parent.exists():  # (a file on the way, or an unwritable place: a traceback
        parent = parent.parent  # after the figure was drawn)
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(
            f"{text}: {parent} is {'not a directory' if not parent.is_dir() else 'not writable'}")
    return Path(text)


def _figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


MAX_LEGEND_INSIDE = 12  # legend entries drawn inside the axes; more go below them
LABEL_CHARS = 80  # a legend label is cut to this many characters


def _legend(fig: Any, axes: Sequence[Any], handles: list | None = None, **inside: Any) -> None:
    """A legend per axes (``inside``: its keywords) for up to :data:`MAX_LEGEND_INSIDE`
    entries; more entries (a 22-surrogate comparison) go into one legend below the axes,
    in columns, and the figure grows by its height, so that the legend does not cover the data
    (or squeeze the axes to nothing). Labels longer than :data:`LABEL_CHARS` are cut."""
    def cut(labels: list[str]) -> list[str]:
        return [lb if len(lb) <= LABEL_CHARS else lb[: LABEL_CHARS - 1] + "…" for lb in labels]

    per_ax = ([ax.get_legend_handles_labels() for ax in axes] if handles is None
              else [(handles, [h.get_label() for h in handles])] * len(axes))
    merged = {lb: h for hs, lbs in per_ax for h, lb in zip(hs, lbs, strict=True)}
    if not merged:
        return
    if len(merged) <= MAX_LEGEND_INSIDE:
        for ax, (hs, lbs) in zip(axes, per_ax, strict=True):
            if hs:
                ax.legend(hs, cut(lbs), **inside)
        return
    handles, labels = list(merged.values()), cut(list(merged))
    width_in, height_in = fig.get_size_inches()
    char_in = 0.055  # about one character at font size 7, plus the marker and the gaps
    ncols = max(1, min(len(labels), int(width_in // (char_in * max(map(len, labels)) + 0.5))))
    rows = math.ceil(len(labels) / ncols)
    fig.set_size_inches(width_in, height_in + 0.16 * rows + 0.35)
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=7,
               title=inside.get("title"), title_fontsize=7, frameon=False)


def _err(std: list[float]) -> list[float] | None:
    """Error bar lengths; None (no bars) when no configuration has two seeds."""
    return None if all(math.isnan(x) for x in std) else list(np.nan_to_num(std))


def _dodge(group: list[str], series: str, step: float = 0.012) -> float:
    """Sideways offset (fraction of the axis) of ``series`` among the ``group`` at one alpha."""
    return (group.index(series) - (len(group) - 1) / 2) * step


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = max(1, min(n, max_cols))
    return math.ceil(max(n, 1) / cols), cols


def _evaluate_surrogate(surrogate: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    import jax.numpy as jnp

    g = np.asarray(surrogate.surrogate_grad(jnp.asarray(x)), dtype=np.float64)
    try:
        f = np.asarray(surrogate.surrogate_fun(jnp.asarray(x)), dtype=np.float64)
    except Exception:  # noqa: BLE001 - a surrogate may only define its derivative
        f = None
    return g, f


def scale_label(surrogate: Any) -> str:
    """``peak 1, ∫ 0.08`` of a surrogate's g'(x) (``∫ ∞`` for heavy tails)."""
    try:
        peak, area = float(surrogate.peak()), float(surrogate.integral())
    except Exception:  # noqa: BLE001 - a duck-typed surrogate may not say
        return ""
    return f"peak {peak:.3g}, ∫ {'∞' if area == math.inf else f'{area:.3g}'}"


def surrogate_curve_png(surrogate: Any, path: str | Path, x_range: float = 2.0) -> Path:
    """A small (400 x 300 px) plot of ``surrogate``'s g′(x) (and g(x), dashed) around x = 0.

    ``x`` is the membrane potential minus the threshold. The trainer logs this image to wandb
    once per run.
    """
    path = Path(path)
    x = np.linspace(-x_range, x_range, 801)
    g, f = _evaluate_surrogate(surrogate, x)
    fig = _figure(4, 3)
    ax = fig.add_subplot()
    scale = scale_label(surrogate)
    ax.plot(x, g, color="C0", label="$g'(x)$" + (f" ({scale})" if scale else ""))
    if f is not None:
        ax.plot(x, f, color="C1", ls="--", lw=1, label="g(x)")
    ax.step(x, (x >= 0).astype(float), where="post", color="0.6", lw=0.8, label="H(x)")
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel("$g'(x)$, $g(x)$" if f is not None else "$g'(x)$ (no $g$ defined)")
    ax.set_title(repr(surrogate), fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    _save(fig, path)
    return path


def _pct(metric: Metric) -> float:
    return 100.0 if metric.is_accuracy else 1.0


def plot_accuracy_vs_alpha(
    path: Path,
    rows: Sequence[Row],
    metric: Metric | None = None,
    ranges: Sequence[AlphaRange] = (),
) -> None:
    """The selection metric (left) and test accuracy (right) against alpha, one line per
    series, seed std as error bars. On the left, a star marks each series' best alpha and a
    band the range of alphas within noise of it (:func:`snntrain.compare.alpha_ranges`).

    Series without an alpha are drawn as a horizontal line with a ±std band. Series sharing
    an alpha are shifted sideways a little so that their error bars stay apart.
    """
    from matplotlib.ticker import FuncFormatter

    metric = metric or Metric("best_val_accuracy")
    fig = _figure(12, 4.5)
    axes = fig.subplots(1, 2, sharey=metric.is_accuracy)
    for ax in axes:  # (a shared axis hid the right panel's numbers)
        ax.tick_params(labelleft=True)
    series = list(dict.fromkeys(r.series for r in rows))
    # the alphas that have results: a failed alpha (e.g. an invalid -1) took half the axis
    alphas = sorted({r.key["alpha"] for r in rows if r.key["alpha"] is not None and r.completed})
    positive = [a for a in alphas if a > 0]
    log = len(positive) > 1 and positive[-1] / positive[0] > 10
    decades = math.log10(positive[-1] / positive[0]) if log else 0.0
    span = (alphas[-1] - alphas[0]) if len(alphas) > 1 else 1.0
    sharing: dict[float, list[str]] = {}  # alpha -> series drawn there
    for r in rows:
        if r.key["alpha"] is not None and r.series not in sharing.setdefault(r.key["alpha"], []):
            sharing[r.key["alpha"]].append(r.series)
    by_series = {r.series: r for r in ranges}

    def shifted(a: np.ndarray, s: str) -> np.ndarray:
        shift = np.array([_dodge(sharing[x], s) for x in a])
        return a * 10 ** (shift * decades) if log else a + shift * span

    unit = " %" if metric.is_accuracy else ""
    panels = (
        (metric.key, _pct(metric), f"{metric.title} (selects)", f"{metric.title}{unit}"),
        ("test_accuracy", 100.0, "final test accuracy", "final test accuracy %"),
    )
    no_result: set[float] = set()
    for ax, (key, scale, title, ylabel) in zip(axes, panels, strict=True):
        for i, s in enumerate(series):
            pts = []
            for r in rows:
                if r.series == s and (vals := r.values(key)):
                    m, sd, _ = mean_std(vals)
                    pts.append((r.key["alpha"], m, sd))
            with_a = sorted(p for p in pts if p[0] is not None)
            # alphas of the series inside its range with no result (every seed diverged or
            # failed): the line breaks there and an x marks them (it ran straight through)
            gaps = sorted({r.key["alpha"] for r in rows if r.series == s and with_a
                           and r.key["alpha"] is not None and not r.values(key)
                           and with_a[0][0] < r.key["alpha"] < with_a[-1][0]})
            no_result.update(gaps)
            # 10 colours, then the next marker / line style: >10 series stay distinguishable.
            color, marker, ls = f"C{i % 10}", "os^Dv"[i // 10 % 5], ("--", ":", "-.")[i // 10 % 3]
            if gaps:
                ax.plot(shifted(np.asarray(gaps), s), [0.03] * len(gaps), marker="x", ms=9,
                        mew=2, color=color, ls="none", transform=ax.get_xaxis_transform())
            if with_a:
                with_a = sorted(with_a + [(g, math.nan, math.nan) for g in gaps])
                a, m, sd = map(np.asarray, zip(*with_a, strict=True))
                ax.errorbar(
                    shifted(a, s),
                    scale * m,
                    yerr=scale * np.nan_to_num(sd),
                    marker=marker,
                    capsize=3,
                    color=color,
                    label=s,
                )
                rng = by_series.get(s)
                if key == metric.key and rng is not None:
                    best = np.array([rng.best_alpha])
                    ax.plot(
                        shifted(best, s),
                        [scale * rng.best.mean],
                        marker="*",
                        ms=14,
                        color=color,
                        mec="k",
                        ls="none",
                        zorder=5,
                    )
                    if rng.claim and rng.low != rng.high:
                        ax.axvspan(rng.low, rng.high, color=color, alpha=0.12, lw=0)
            for _, m, sd in (p for p in pts if p[0] is None):
                ax.axhline(scale * m, color=color, ls=ls, label=f"{s} (no α)")
                if not math.isnan(sd):
                    ax.axhspan(scale * (m - sd), scale * (m + sd), color=color, alpha=0.12)
        if log and alphas[0] <= 0:  # symlog keeps alpha = 0 (log_tailed_relu) on the axis
            ax.set_xscale("symlog", linthresh=positive[0])
            ax.set_xlim(left=alphas[0] - 0.3 * positive[0])
        elif log:
            ax.set_xscale("log")
        ticks = sorted(set(alphas) | no_result)
        if 0 < len(ticks) <= 8:  # label the alphas that were run; else the default ticks
            ax.set_xticks(ticks, [f"{a:g}" for a in ticks])
            ax.minorticks_off()
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("surrogate α")
        ax.set_ylabel(f"{ylabel} (mean ± std over seeds)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    _legend(fig, axes, fontsize=7, loc="best", framealpha=0.8)
    if ranges or no_result:  # below the axes (inside them the legend could cover it)
        fig.supxlabel(
            "; ".join((["★ best α; band: α within noise of it (95% Welch CI)"] if ranges else [])
                      + (["×: α with no result (diverged or failed)"] if no_result else [])),
            x=0.01,
            ha="left",
            fontsize=7,
        )
    _save(fig, path)


def plot_accuracy_by_config(path: Path, rows: Sequence[Row], selected: Row | None = None) -> None:
    """Test accuracy of every configuration as horizontal bars (mean ± std), in the given order
    (the ranking, best first, at the top); the selected configuration in its own colour."""
    pairs = [(r, mean_std(r.values("test_accuracy"))) for r in rows if r.completed]
    lines = max([r.short_label.count("\n") + 1 for r, _ in pairs] or [1])
    fig = _figure(8, 1.6 + 0.3 * lines * max(len(pairs), 1))
    ax = fig.add_subplot()
    y = np.arange(len(pairs))
    # points, not bars: the axis starts near the lowest mean (to show the differences), and
    # bars from its edge made 19.2 % look half of 21.5 %
    for chosen, color in ((False, "C0"), (True, "C1")):
        idx = [i for i, (r, _) in enumerate(pairs) if (r is selected) == chosen]
        if idx:
            ax.errorbar(
                [100 * pairs[i][1][0] for i in idx],
                y[idx],
                xerr=_err([100 * pairs[i][1][1] for i in idx]),
                fmt="o",
                color=color,
                capsize=2,
            )
    ax.set_yticks(
        y,
        [f"{r.short_label} (n={n}){' — selected' if r is selected else ''}"
         for r, (_, _, n) in pairs],
        fontsize=7,
    )
    ax.set_ylim(len(pairs) - 0.5, -0.5)  # ranked top down, no marker on the frame
    # the whole of every bar (a seed that failed to learn made one run off both edges, capless)
    lo = min([100 * (m - (0 if math.isnan(sd) else sd)) for _, (m, sd, _) in pairs
              if not math.isnan(m)] or [0])
    hi = max([100 * (m + (0 if math.isnan(sd) else sd)) for _, (m, sd, _) in pairs
              if not math.isnan(m)] or [100])
    ax.set_xlim(max(0, lo - 5), max(100, hi + 1))
    if hi > 100:
        ax.axvline(100, color="0.6", lw=0.8, ls=":")  # a std bar past 100 % is only arithmetic
    ax.set_xlabel("final test accuracy % (mean ± std over seeds)")
    ax.set_ylabel("configuration (ranked)", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    _save(fig, path)


def plot_learning_curves(path: Path, rows: Sequence[Row]) -> None:
    """One panel per series: val (solid) and test (dashed) accuracy per epoch, seed means; one
    colour per alpha.

    Runs of fewer than three epochs also show the training accuracy of every logged step
    (thin line), on the same epoch axis (step / steps per epoch).
    """
    from matplotlib.lines import Line2D

    series = list(dict.fromkeys(r.series for r in rows))
    nr, nc = _grid(len(series), 3)
    fig = _figure(4 * nc, 3 * nr)
    axes = np.atleast_1d(fig.subplots(nr, nc, squeeze=False, sharey=True)).ravel()
    for ax in axes:  # every panel with its numbers (the shared axis hid all but the first's)
        ax.tick_params(labelleft=True)
    for ax, s in zip(axes, series, strict=False):
        group = [r for r in rows if r.series == s and r.completed]
        n_epochs, handles, styles = 0, [], {}
        for j, row in enumerate(group):
            color = f"C{j % 10}"
            alpha = row.key["alpha"]
            handles.append(
                Line2D([], [], color=color, label="mean" if alpha is None else f"α={alpha:g}")
            )
            for key, ls, marker in (("val_accuracy", "-", "o"), ("test_accuracy", "--", "D")):
                ep, m, _ = learning_curve(row.completed, key)
                if ep.size:
                    n_epochs = max(n_epochs, int(ep.max()))
                    mark = {"marker": marker, "ms": 5} if ep.size < 3 else {}
                    if marker == "D" and mark:
                        mark["mfc"] = "none"
                    ax.plot(ep, 100 * m, ls=ls, color=color, **mark)
                    styles[key] = Line2D(
                        [], [], color="0.3", ls=ls, label=key.split("_")[0], **mark
                    )
            spe = steps_per_epoch(row.completed)
            steps, m, _ = step_curve(row.completed, "accuracy")
            if spe and steps.size and n_epochs < 3:
                dots = {"marker": ".", "ms": 4}  # (a one-epoch run may log a single step)
                ax.plot(steps / spe, 100 * m, color=color, lw=0.8, alpha=0.6, **dots)
                styles["train"] = Line2D(
                    [], [], color="0.3", lw=0.8, alpha=0.6, label="train (logged steps)", **dots
                )
        ax.set_title(textwrap.fill(s, 50, break_on_hyphens=False), fontsize=8)
        ax.set_xlabel("epoch")
        if 0 < n_epochs < 3:  # room on the right for the legend: the last points are there
            ax.set_xlim(0, n_epochs + 0.15 + 0.9 * n_epochs)
            ax.set_xticks(range(n_epochs + 1))
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("accuracy % (mean over seeds)")
        ax.grid(alpha=0.3)
        if handles:
            ax.legend(
                handles=handles + list(styles.values()),
                fontsize=6,
                loc="lower right",
                ncols=2 if len(handles) + len(styles) > 5 else 1,
                framealpha=0.8,
            )
    for ax in axes[len(series) :]:
        ax.set_visible(False)
    _save(fig, path)


def plot_firing_rates(path: Path, rows: Sequence[Row]) -> None:
    """Final test firing rate of each spiking layer, per configuration (mean ± std)."""
    rows = [r for r in rows if r.completed]
    layers = sorted(
        {k for r in rows for run in r.completed for k in (run.summary.get("firing_rates") or {})}
    )
    n = max(len(rows), 1)
    lines = max([r.short_label.count("\n") + 1 for r in rows] or [1])
    fig = _figure(8, 1.6 + 0.25 * n * max(len(layers), 1, lines))
    ax = fig.add_subplot()
    height = 0.8 / max(len(layers), 1)
    for j, layer in enumerate(layers):
        stats = [
            mean_std(
                [
                    as_float((run.summary.get("firing_rates") or {}).get(layer))
                    for run in r.completed
                ]
            )
            for r in rows
        ]
        ax.barh(
            np.arange(len(rows)) + (j - (len(layers) - 1) / 2) * height,
            [s[0] for s in stats],
            height,
            xerr=_err([s[1] for s in stats]),
            label=layer,
            color=f"C{j % 10}",
            capsize=2,
        )
    ax.set_yticks(np.arange(len(rows)), [r.short_label for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("firing rate (spikes per neuron per step, test set, last epoch)")
    ax.set_ylabel("configuration")
    ax.grid(alpha=0.3, axis="x")
    if layers:
        ax.legend(fontsize=7, loc="best", title="layer", title_fontsize=7)
    _save(fig, path)


def plot_surrogate_gradients(path: Path, rows: Sequence[Row], x_range: float = 2.0) -> None:
    """g′(x) of every compared surrogate configuration: one panel per surrogate name, each
    curve labelled with its parameters, peak and integral."""
    by_name: dict[str, list[Row]] = {}
    for r in rows:
        by_name.setdefault(str(r.surrogate.get("name")), []).append(r)
    nr, nc = _grid(len(by_name), 4)
    fig = _figure(3.2 * nc, 2.6 * nr)
    axes = fig.subplots(nr, nc, squeeze=False).ravel()
    x = np.linspace(-x_range, x_range, 801)
    for ax, (name, group) in zip(axes, by_name.items(), strict=False):
        seen: set[str] = set()
        for j, row in enumerate(group):
            params = {k: v for k, v in row.surrogate.items() if k != "name"}
            label = ", ".join(f"{k}={format_value(v)}" for k, v in sorted(params.items()))
            if label in seen:
                continue
            seen.add(label)
            try:
                s = build_surrogate(row.surrogate)
                g, _ = _evaluate_surrogate(s, x)
                scale = scale_label(s)
                ax.plot(
                    x,
                    g,
                    color=f"C{j % 10}",
                    label=(label or "defaults") + (f"\n{scale}" if scale else ""),
                )
            except Exception as e:  # noqa: BLE001 - a report must not die on one config
                # in the legend, naming the configuration (it was written across the middle
                # of the panel, over the other curves, naming none)
                ax.plot([], [], color=f"C{j % 10}", marker="x", ls="none",
                        label=f"{label or 'defaults'}: cannot evaluate ({type(e).__name__})")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(X_LABEL, fontsize=8)
        ax.set_ylabel("$g'(x)$", fontsize=8)
        bottom, top = ax.get_ylim()
        handles = ax.get_legend_handles_labels()[0]
        # headroom above the curves for the legend (it covered the peaks and boxcar's plateau)
        ax.set_ylim(min(0.0, bottom), top + (top - min(0.0, bottom)) * (0.3 + 0.25 * len(handles)
                                                                      if handles else 0.0))
        ax.grid(alpha=0.3)
        if handles:
            ax.legend(fontsize=6, loc="upper left", framealpha=0.8)
    for ax in axes[len(by_name) :]:
        ax.set_visible(False)
    _save(fig, path)


def _label_places(ax: Any, labels: list[tuple[str, float, float]]
                  ) -> list[tuple[str, float, float, tuple[int, int]]]:
    """Each label's offset (points) from its point: beside it, clear of the Pareto ring and
    inside the axes, and, greedily, of the labels placed before it (configurations of nearly
    the same cost and accuracy piled their labels on one another, unreadable)."""
    to_axes = ax.transData + ax.transAxes.inverted()
    px = ax.figure.dpi / 72  # pixels per point
    placed: list[tuple[float, float, float, float]] = []  # boxes in pixels
    out = []
    for text, x, y in labels:
        side = -1 if to_axes.transform((x, y))[0] > 0.7 else 1
        X, Y = ax.transData.transform((x, y))
        w, h = 3.3 * len(text) * px, 7 * px  # (6-point text)
        best, best_cost = None, math.inf
        for dy in (7, -12, 16, -21, 25, -30):
            x0 = X + side * 9 * px - (w if side < 0 else 0)
            box = (x0, Y + dy * px, x0 + w, Y + dy * px + h)
            cost = sum(max(0.0, min(box[2], b[2]) - max(box[0], b[0]))
                       * max(0.0, min(box[3], b[3]) - max(box[1], b[1])) for b in placed)
            if cost < best_cost:
                best, best_cost = (box, dy), cost
            if cost == 0:
                break
        placed.append(best[0])
        out.append((text, x, y, (side * 9, best[1])))
    return out


def plot_accuracy_vs_synops(
    path: Path, rows: Sequence[Row], metric: Metric | None = None, split: str = "val"
) -> None:
    """The selection metric against synaptic operations per example (effective ACs + MACs on
    ``split``, at the epoch the metric is measured), one point per configuration with seed std
    as error bars on both axes, one colour per surrogate; the Pareto front (the best metric for
    at most that many operations, :func:`snntrain.compare.pareto_front`) as a step line, its
    members ringed. The x axis is logarithmic when the operations span more than 10x, else
    linear from 0 (so that near-equal costs look near-equal).
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import EngFormatter, FuncFormatter

    metric = metric or Metric("best_val_accuracy")
    scale = _pct(metric)
    pts = []  # (row, ops mean, ops std, metric mean, metric std)
    for r in rows:
        ops, vals = r.cost_values("synops", split, metric.at_best_val_epoch), r.values(metric.key)
        if ops and vals:
            pts.append((r, *mean_std(ops)[:2], *mean_std(vals)[:2]))
    fig = _figure(8, 5.5)
    ax = fig.add_subplot()
    names = list(dict.fromkeys(str(r.key["surrogate"]) for r, *_ in pts))
    colors = {n: f"C{i % 10}" for i, n in enumerate(names)}
    labels = []  # (text, x, y): placed once the axes' limits are known
    for r, x, sx, y, sy in pts:
        name = str(r.key["surrogate"])
        ax.errorbar(
            x,
            scale * y,
            xerr=None if math.isnan(sx) else sx,
            yerr=None if math.isnan(sy) else scale * sy,
            marker="os^Dv"[names.index(name) // 10 % 5],
            ms=6,
            capsize=2,
            color=colors[name],
            ls="none",
        )
        rest = r.label[len(name) :].lstrip(", ")
        if rest and len(pts) <= 24:
            labels.append((rest, x, scale * y))
    front = [
        pts[i]
        for i in pareto_front([p[1] for p in pts], [p[3] for p in pts], metric.higher_is_better)
    ]
    xs = [p[1] for p in pts]
    if front:
        fx = [p[1] for p in front] + [max(xs)]
        fy = [scale * p[3] for p in front] + [scale * front[-1][3]]
        ax.step(fx, fy, where="post", color="k", lw=1, ls="--", zorder=1)
        ax.plot(fx[:-1], fy[:-1], "o", ms=13, mfc="none", mec="k", mew=1.2, ls="none", zorder=4)
    positive = [x for x in xs if x > 0]
    eng = EngFormatter(sep="")  # 3k, 10k, 1.5M
    if len(positive) == len(xs) and positive and max(xs) / min(xs) > 10:
        ax.set_xscale("log")
        # Minor ticks labelled at 2 and 5 (and 3 within two decades): readable, not crowded.
        lead = (2, 3, 5) if max(xs) / min(xs) < 100 else (2, 5)
        ax.xaxis.set_minor_formatter(
            FuncFormatter(
                lambda v, _: eng(v) if round(v / 10 ** math.floor(math.log10(v)), 6) in lead else ""
            )
        )
    elif xs and min(xs) >= 0:
        right = max(p[1] + (0.0 if math.isnan(p[2]) else p[2]) for p in pts)
        ax.set_xlim(0, 1.12 * right)  # distances from 0 are the ratios of the costs
    ax.xaxis.set_major_formatter(eng)
    for text, x, y, (dx, dy) in _label_places(ax, labels):
        ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=6,
                    ha="right" if dx < 0 else "left")
    handles = [
        Line2D([], [], color=colors[n], marker="os^Dv"[i // 10 % 5], ls="none", label=n)
        for i, n in enumerate(names)
    ]
    handles.append(
        Line2D(
            [], [], color="k", ls="--", lw=1, marker="o", ms=10, mfc="none", label="Pareto front"
        )
    )
    unit = " %" if metric.is_accuracy else ""
    ax.set_xlabel(
        f"synaptic operations per example (ACs + MACs, {split} split; mean ± std over seeds)"
    )
    ax.set_ylabel(f"{metric.title}{unit} (mean ± std over seeds)")
    ax.set_title(f"{metric.title} against synaptic operations", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    missing = sum(bool(r.values(metric.key)) for r in rows) - len(pts)
    if missing:
        ax.text(
            0.01,
            0.01,
            f"not shown: {missing} configuration{'s' if missing != 1 else ''} without cost metrics",
            transform=ax.transAxes,
            fontsize=7,
            va="bottom",
        )
    _legend(fig, [ax], handles, fontsize=7, loc="best", framealpha=0.8, title="surrogate",
            title_fontsize=7)
    _save(fig, path)
