"""Plots of sweep reports and of surrogate derivatives (matplotlib's object API, no pyplot
state): accuracy vs alpha, accuracy by configuration, learning curves, firing rates and the
surrogate gradients of a sweep (:func:`snntrain.report.make_report` draws them), and one run's
surrogate derivative (:func:`surrogate_curve_png`, written by the trainer).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from snntrain.report import Row, _fmt_value, _num, learning_curve, mean_std

DPI = 100


def _figure(width_in: float, height_in: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


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
    ax.plot(x, g, color="C0", label="g′(x)")
    if f is not None:
        ax.plot(x, f, color="C1", ls="--", lw=1, label="g(x)")
    ax.step(x, (x >= 0).astype(float), where="post", color="0.6", lw=0.8, label="H(x)")
    ax.set_xlabel("x = v − threshold")
    ax.set_title(repr(surrogate), fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.savefig(path)
    return path


def plot_accuracy_vs_alpha(path: Path, rows: list[Row], table: list[dict[str, Any]]) -> None:
    """Best-val and test accuracy against alpha, one line per series, seed std as error bars.

    Series without an alpha are drawn as a horizontal line with a ±std band. Series sharing
    an alpha are shifted sideways a little so that their error bars stay apart.
    """
    from matplotlib.ticker import FuncFormatter

    fig = _figure(12, 4.5)
    axes = fig.subplots(1, 2, sharey=True)
    series = list(dict.fromkeys(r.series for r in rows))
    alphas = sorted({r.key["alpha"] for r in rows if r.key["alpha"] is not None})
    positive = [a for a in alphas if a > 0]
    log = len(positive) > 1 and positive[-1] / positive[0] > 10
    decades = math.log10(positive[-1] / positive[0]) if log else 0.0
    span = (alphas[-1] - alphas[0]) if len(alphas) > 1 else 1.0
    sharing: dict[float, list[str]] = {}  # alpha -> series drawn there
    for r in rows:
        if r.key["alpha"] is not None and r.series not in sharing.setdefault(r.key["alpha"], []):
            sharing[r.key["alpha"]].append(r.series)
    for ax, metric, title in zip(
        axes,
        ("best_val_accuracy", "test_accuracy"),
        ("best validation accuracy", "final test accuracy"),
        strict=True,
    ):
        for i, s in enumerate(series):
            pts = [
                (r.key["alpha"], t[f"{metric}_mean"], t[f"{metric}_std"])
                for r, t in zip(rows, table, strict=True)
                if r.series == s and t["n"]
            ]
            with_a = sorted(p for p in pts if p[0] is not None)
            # 10 colours, then the next marker / line style: >10 series stay distinguishable.
            color, marker, ls = f"C{i % 10}", "os^Dv"[i // 10 % 5], ("--", ":", "-.")[i // 10 % 3]
            if with_a:
                a, m, sd = map(np.asarray, zip(*with_a, strict=True))
                shift = np.array([_dodge(sharing[x], s) for x in a])
                a = a * 10 ** (shift * decades) if log else a + shift * span
                ax.errorbar(
                    a,
                    100 * m,
                    yerr=100 * np.nan_to_num(sd),
                    marker=marker,
                    capsize=3,
                    color=color,
                    label=s,
                )
            for _, m, sd in (p for p in pts if p[0] is None):
                ax.axhline(100 * m, color=color, ls=ls, label=f"{s} (no α)")
                if not math.isnan(sd):
                    ax.axhspan(100 * (m - sd), 100 * (m + sd), color=color, alpha=0.12)
        if log and alphas[0] <= 0:  # symlog keeps alpha = 0 (log_tailed_relu) on the axis
            ax.set_xscale("symlog", linthresh=positive[0])
            ax.set_xlim(left=alphas[0] - 0.3 * positive[0])
        elif log:
            ax.set_xscale("log")
        if 0 < len(alphas) <= 8:  # label the alphas that were run; else the default ticks
            ax.set_xticks(alphas, [f"{a:g}" for a in alphas])
            ax.minorticks_off()
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("surrogate α")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy % (mean ± std over seeds)")
    handles, labels = axes[1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, fontsize=7, loc="outside right upper")
    fig.savefig(path)


def plot_accuracy_by_config(path: Path, rows: list[Row], table: list[dict[str, Any]]) -> None:
    """Test accuracy of every configuration as horizontal bars (mean ± std)."""
    pairs = [(r, t) for r, t in zip(rows, table, strict=True) if t["n"]]
    pairs.sort(key=lambda p: p[1]["test_accuracy_mean"])
    fig = _figure(8, 1.6 + 0.3 * max(len(pairs), 1))
    ax = fig.add_subplot()
    y = np.arange(len(pairs))
    ax.barh(
        y,
        [100 * t["test_accuracy_mean"] for _, t in pairs],
        xerr=_err([100 * t["test_accuracy_std"] for _, t in pairs]),
        color="C0",
        capsize=2,
    )
    ax.set_yticks(y, [f"{r.label} (n={t['n']})" for r, t in pairs], fontsize=7)
    lo = min([100 * t["test_accuracy_mean"] for _, t in pairs] or [0])
    ax.set_xlim(max(0, lo - 5), 100)
    ax.set_xlabel("final test accuracy % (mean ± std over seeds)")
    ax.grid(alpha=0.3, axis="x")
    fig.savefig(path)


def plot_learning_curves(path: Path, rows: list[Row]) -> None:
    """One panel per series: val (solid) and test (dashed) accuracy per epoch, seed means."""
    series = list(dict.fromkeys(r.series for r in rows))
    nr, nc = _grid(len(series), 3)
    fig = _figure(4 * nc, 3 * nr)
    axes = np.atleast_1d(fig.subplots(nr, nc, squeeze=False, sharey=True)).ravel()
    for ax, s in zip(axes, series, strict=False):
        group = [r for r in rows if r.series == s and r.completed]
        for j, row in enumerate(group):
            color = f"C{j % 10}"
            alpha = row.key["alpha"]
            name = "" if alpha is None else f"α={alpha:g} "
            for key, ls in (("val_accuracy", "-"), ("test_accuracy", "--")):
                ep, m, _ = learning_curve(row.completed, key)
                if ep.size:
                    ax.plot(
                        ep,
                        100 * m,
                        ls=ls,
                        color=color,
                        marker="." if ep.size < 3 else None,
                        label=f"{name}{key.split('_')[0]}",
                    )
        ax.set_title(s, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    for ax in axes[len(series) :]:
        ax.set_visible(False)
    axes[0].set_ylabel("accuracy %")
    fig.savefig(path)


def plot_firing_rates(path: Path, rows: list[Row]) -> None:
    """Final test firing rate of each spiking layer, per configuration (mean ± std)."""
    rows = [r for r in rows if r.completed]
    layers = sorted(
        {k for r in rows for run in r.completed for k in (run.summary.get("firing_rates") or {})}
    )
    n = max(len(rows), 1)
    fig = _figure(8, 1.6 + 0.25 * n * max(len(layers), 1))
    ax = fig.add_subplot()
    height = 0.8 / max(len(layers), 1)
    for j, layer in enumerate(layers):
        stats = [
            mean_std(
                [_num((run.summary.get("firing_rates") or {}).get(layer)) for run in r.completed]
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
    ax.set_yticks(np.arange(len(rows)), [r.label for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("firing rate (spikes per neuron per step, test set, last epoch)")
    ax.grid(alpha=0.3, axis="x")
    if layers:
        ax.legend(fontsize=7)
    fig.savefig(path)


def plot_surrogate_gradients(path: Path, rows: list[Row], x_range: float = 2.0) -> None:
    """g′(x) of every compared surrogate configuration: one panel per surrogate name."""
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
            label = ", ".join(f"{k}={_fmt_value(v)}" for k, v in sorted(params.items()))
            if label in seen:
                continue
            seen.add(label)
            try:
                g, _ = _evaluate_surrogate(_build_surrogate(row.surrogate), x)
                ax.plot(x, g, color=f"C{j % 10}", label=label or "defaults")
            except Exception as e:  # noqa: BLE001 - a report must not die on one config
                ax.text(
                    0.5,
                    0.5,
                    f"cannot evaluate:\n{type(e).__name__}",
                    ha="center",
                    transform=ax.transAxes,
                    fontsize=7,
                )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("x = v − threshold", fontsize=8)
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    for ax in axes[len(by_name) :]:
        ax.set_visible(False)
    fig.savefig(path)


def _build_surrogate(cfg: dict[str, Any]) -> Any:
    from snntrain import surrogates

    params = {k: v for k, v in cfg.items() if k != "name"}
    return surrogates.get(cfg["name"], **params)
