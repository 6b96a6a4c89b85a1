"""Plot every surrogate: g'(x) (solid) and g(x) (dashed) on x in [-2, 2], one panel each.

    python scripts/plot_surrogates.py [--out outputs/surrogates.png] [--normalize]
    (with --normalize the default is outputs/surrogates_normalized.png)

Surrogates with a steepness ``alpha`` are drawn at a few multiples of their own default alpha
(defaults range from 0.1 to 100, so one absolute set of values would not fit them all); the
others at their defaults. The solid curve is the gradient that backpropagation through the spike
actually produces (``jax.grad`` of ``s(x)``), which is ``s.surrogate_grad(x)``. Each legend
entry gives the curve's scale: its peak max g'(x) and its integral ∫g'(x) dx (``s.peak()``,
``s.integral()``); ``--normalize`` draws every surrogate with a finite integral rescaled to unit
integral (``s.normalized()``, what ``surrogate.normalize=true`` trains with), to compare shapes
at equal scale. Panels of surrogates that define only g'(x) say so. Rendered with
Matplotlib's Agg canvas through :class:`matplotlib.figure.Figure`: no display, no pyplot state.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from snntrain import surrogates
from snntrain.plots import image_path


def variants(
    name: str, alpha_scales: Sequence[float], normalize: bool = False
) -> list[tuple[str, surrogates.Surrogate]]:
    """``(label, surrogate)`` pairs: ``alpha = scale * default`` for each scale, or the default;
    rescaled to unit integral with ``normalize`` where the integral is finite."""
    default = surrogates.get(name)
    alpha = getattr(default, "alpha", 0.0)
    if not alpha:  # no alpha, or a slope of 0 (LogTailedRelu) that no scale changes
        out = [("default", default)]
    else:
        out = []
        for m in alpha_scales:
            try:
                out.append((f"α={m * alpha:g}", surrogates.get(name, alpha=m * alpha)))
            except ValueError:  # outside the valid range (q_pseudo_spike_paper: α > 1)
                continue
    if normalize:
        out = [(label, _normalized(s)) for label, s in out]
    return out


def _normalized(s: surrogates.Surrogate) -> surrogates.Surrogate:
    try:
        return s.normalized()
    except ValueError:  # no finite integral: drawn as it is (its legend says ∫ ∞)
        return s


def scale_text(s: surrogates.Surrogate) -> str:
    """``peak 1, ∫ 0.08``."""
    area = float(s.integral())
    return f"peak {float(s.peak()):.3g}, ∫ {'∞' if area == math.inf else f'{area:.3g}'}"


def has_fun(s: surrogates.Surrogate) -> bool:
    try:
        s.surrogate_fun(jnp.zeros(1))
    except NotImplementedError:
        return False
    return True


def make_figure(
    names: Sequence[str] | None = None,
    alpha_scales: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
    x_range: float = 2.0,
    cols: int = 4,
    normalize: bool = False,
) -> Figure:
    """One panel per surrogate (default: all of :func:`snntrain.surrogates.available`)."""
    names = list(names or surrogates.available())
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.0 * cols, 3.1 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    x_N = jnp.linspace(-x_range, x_range, 801)
    for ax, name in zip(axes, names, strict=False):
        pairs = variants(name, alpha_scales, normalize)
        fun = has_fun(pairs[0][1])
        for i, (label, s) in enumerate(pairs):
            color = f"C{i}"
            grad_N = jax.grad(lambda x, s=s: s(x).sum())(x_N)
            ax.plot(x_N, np.asarray(grad_N), color=color, lw=1.5, label=f"{label}: {scale_text(s)}")
            if fun:
                ax.plot(x_N, np.asarray(s.surrogate_fun(x_N)), color=color, lw=1, ls="--")
        ax.axhline(0.0, color="0.8", lw=0.6, zorder=0)
        ax.axvline(0.0, color="0.8", lw=0.6, zorder=0)
        ax.set_title(f"{name}\n{surrogates.get(name)!r}", fontsize=8)
        ax.set_xlabel("x = v − threshold", fontsize=7)
        ax.set_ylabel("$g'(x)$ solid, $g(x)$ dashed" if fun else "$g'(x)$", fontsize=7)
        if not fun:
            ax.text(
                0.98,
                0.97,
                "defines only $g'(x)$:\nno $g(x)$ to draw",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=6,
                color="0.35",
            )
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left", frameon=False)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    title = "Surrogate gradients g'(x) (solid) and functions g(x) (dashed)"
    fig.suptitle(title + (", rescaled to unit integral" if normalize else ""), fontsize=11)
    return fig


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=image_path, default=None,
                        help="image file (default outputs/surrogates.png, with --normalize "
                             "outputs/surrogates_normalized.png)")
    parser.add_argument(
        "--normalize", action="store_true", help="rescale every g' to unit integral (if finite)"
    )
    args = parser.parse_args(argv)
    if args.out is None:  # (--normalize replaced the plain figure without a word)
        args.out = Path(f"outputs/surrogates{'_normalized' if args.normalize else ''}.png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    make_figure(normalize=args.normalize).savefig(args.out, dpi=100)
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
