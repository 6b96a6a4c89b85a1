"""Plot every surrogate: g'(x) (solid) and g(x) (dashed) on x in [-2, 2], one panel each.

    python scripts/plot_surrogates.py [--out outputs/surrogates.png]

Surrogates with a steepness ``alpha`` are drawn at a few multiples of their own default alpha
(defaults range from 0.1 to 100, so one absolute set of values would not fit them all); the
others at their defaults. The solid curve is the gradient that backpropagation through the spike
actually produces (``jax.grad`` of ``s(x)``), which is ``s.surrogate_grad(x)``. Rendered with
Matplotlib's Agg canvas through :class:`matplotlib.figure.Figure`: no display, no pyplot state.
"""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from snntrain import surrogates


def variants(name: str, alpha_scales: Sequence[float]) -> list[tuple[str, surrogates.Surrogate]]:
    """``(label, surrogate)`` pairs: ``alpha = scale * default`` for each scale, or the default."""
    default = surrogates.get(name)
    alpha = getattr(default, "alpha", 0.0)
    if not alpha:  # no alpha, or a slope of 0 (LogTailedRelu) that no scale changes
        return [("default", default)]
    return [(f"α={m * alpha:g}", surrogates.get(name, alpha=m * alpha)) for m in alpha_scales]


def make_figure(
    names: Sequence[str] | None = None,
    alpha_scales: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
    x_range: float = 2.0,
    cols: int = 4,
) -> Figure:
    """One panel per surrogate (default: all of :func:`snntrain.surrogates.available`)."""
    names = list(names or surrogates.available())
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.0 * cols, 2.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    x_N = jnp.linspace(-x_range, x_range, 801)
    for ax, name in zip(axes, names, strict=False):
        for i, (label, s) in enumerate(variants(name, alpha_scales)):
            color = f"C{i}"
            grad_N = jax.grad(lambda x, s=s: s(x).sum())(x_N)
            ax.plot(x_N, np.asarray(grad_N), color=color, lw=1.5, label=label)
            with contextlib.suppress(NotImplementedError):  # *Grad classes: g' only
                ax.plot(x_N, np.asarray(s.surrogate_fun(x_N)), color=color, lw=1, ls="--")
        ax.axhline(0.0, color="0.8", lw=0.6, zorder=0)
        ax.axvline(0.0, color="0.8", lw=0.6, zorder=0)
        ax.set_title(f"{name}\n{surrogates.get(name)!r}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="best", frameon=False)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("Surrogate gradients g'(x) (solid) and functions g(x) (dashed)", fontsize=11)
    return fig


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/surrogates.png"))
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    make_figure().savefig(args.out, dpi=100)
    print(args.out)
    return args.out


if __name__ == "__main__":
    main()
