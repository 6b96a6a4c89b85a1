"""Picture of the event path: a raster of one SHD sample (its spikes, and the same sample binned
into T steps) and one DVS Gesture sample binned into T frames (ON - OFF counts).

    python scripts/plot_events.py [--data_dir DIR] [--T 16] [--out outputs/events.png]

With ``--data_dir`` the first training samples of ``<DIR>/SHD`` and ``<DIR>/DVSGesture`` are
drawn (each falls back to synthetic data if missing); without it, synthetic samples: a spoken
"digit" as three formant bands sweeping across the 700 channels, and a hand waving in front of
the 128x128 camera. Binning is :func:`snntrain.events.bin_events`, as in training. Rendered with
Matplotlib's Agg canvas (:class:`matplotlib.figure.Figure`): no display, no pyplot state.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from snntrain import events
from snntrain.plots import image_path


def synthetic_shd(seed: int = 0, n: int = 8000) -> dict[str, np.ndarray]:
    """Three formant-like bands that sweep across the cochlea channels over ~0.7 s."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.05, 0.75, n))
    band = rng.integers(0, 3, n)
    centre = np.choose(band, [120 + 150 * t, 330 - 120 * t, 520 + 60 * np.sin(8 * t)])
    x = np.clip(np.round(centre + rng.normal(0, 12, n)), 0, 699).astype(np.int64)
    return {"t": t * 1e6, "x": x}


def synthetic_gesture(seed: int = 0, n: int = 300_000) -> dict[str, np.ndarray]:
    """A hand (a blob) waving left and right for 2 s, edges ON in front and OFF behind."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 2e6, n))
    phase = 2 * np.pi * t / 1e6
    cx, cy = 64 + 35 * np.sin(phase), 50 + 10 * np.cos(2 * phase)
    ang = rng.uniform(0, 2 * np.pi, n)
    r = 14 + rng.normal(0, 1.5, n)
    x = np.clip(np.round(cx + r * np.cos(ang)), 0, 127).astype(np.int64)
    y = np.clip(np.round(cy + 1.4 * r * np.sin(ang)), 0, 127).astype(np.int64)
    moving_right = np.cos(phase) > 0
    p = ((np.cos(ang) > 0) == moving_right).astype(np.int64)
    return {"t": t, "x": x, "y": y, "p": p}


def first_sample(name: str, data_dir: str | None):
    if data_dir:
        try:
            reader = events.readers(name, data_dir)["train"]
            return reader.read([0])[0], f"{name} train sample 0 ({reader.where})"
        except events.EventDataError as e:
            text = str(e).removeprefix(f"{name}: ")  # (the error names the dataset already)
            print(f"{name}: {text.split('; on a machine with internet')[0]} -> synthetic sample")
    if name == "shd":
        return synthetic_shd(), "synthetic SHD-like sample"
    return synthetic_gesture(), "synthetic DVS-Gesture-like sample"


def make_figure(data_dir: str | None = None, T: int = 16) -> Figure:
    shd, shd_title = first_sample("shd", data_dir)
    dvs, dvs_title = first_sample("dvs_gesture", data_dir)
    shd_frames = events.bin_events([shd], (700,), events.Binning(T=T))[0][0]
    dvs_frames = events.bin_events([dvs], (128, 128, 2), events.Binning(T=T, downsample=(32,)))[
        0][0]
    n_show = min(T, 8)
    fig = Figure(figsize=(2.0 * n_show, 8.5), layout="constrained")
    grid = fig.add_gridspec(3, n_show, height_ratios=[1.2, 1.0, 0.9])
    ax = fig.add_subplot(grid[0, : n_show // 2])
    keep = np.isfinite(shd["t"])
    ax.scatter(shd["t"][keep] / 1e3, shd["x"][keep], s=0.3, c="k", marker=".", linewidths=0)
    ax.set(xlabel="time (ms)", ylabel="channel", ylim=(0, 700), title=f"{shd_title}: "
           f"{keep.sum()} spikes")
    ax = fig.add_subplot(grid[0, n_show // 2 :])
    im = ax.imshow(shd_frames.T, aspect="auto", origin="lower", cmap="Greys",
                   interpolation="nearest")
    ax.set(xlabel=f"time step (T = {T}, the duration split into T bins)", ylabel="channel",
           title=f"binned: x_TxC, sum = {int(shd_frames.sum())} (every spike)")
    fig.colorbar(im, ax=ax, label="spikes per bin")
    steps = np.linspace(0, T - 1, n_show).round().astype(int)
    vmax = max(1, np.abs(dvs_frames[..., 1] - dvs_frames[..., 0]).max())
    for j, step in enumerate(steps):
        ax = fig.add_subplot(grid[1, j])
        diff = dvs_frames[step, ..., 1].astype(int) - dvs_frames[step, ..., 0]
        ax.imshow(diff, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set(xticks=[], yticks=[], title=f"t = {step}")
    fig.text(0.5, 0.36, f"{dvs_title}: 128x128x2 -> 32x32x2, T = {T} frames (ON - OFF counts)",
             ha="center")
    ax = fig.add_subplot(grid[2, :])
    ax.plot(dvs_frames[..., 1].sum(axis=(1, 2)), label="ON events per step")
    ax.plot(dvs_frames[..., 0].sum(axis=(1, 2)), label="OFF events per step")
    ax.set(xlabel="time step", ylabel="events", title=f"sum over the frames = "
           f"{int(dvs_frames.sum())} = the sample's {len(dvs['t'])} events")
    ax.legend()
    return fig


MAX_T = 10_000  # the figure is ~700 pixels wide; T = 10^6 binned 2.8 GB of frames for it


def _steps(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_T:
        raise argparse.ArgumentTypeError(f"{text!r}: must be an integer in [1, {MAX_T}] (the "
                                         "figure shows one column per step)")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default=None, help="Tonic's save_to directory")
    parser.add_argument("--T", type=_steps, default=16, help="time steps per sample")
    parser.add_argument("--out", type=image_path, default="outputs/events.png")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    make_figure(args.data_dir, args.T).savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
