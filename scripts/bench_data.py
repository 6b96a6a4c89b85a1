"""Is the event data path fast enough? Samples/s that loading + binning delivers vs samples/s the
training step consumes, for SHD with the MLP and DVS Gesture with the conv model.

    python scripts/bench_data.py [--shd 512] [--dvs 32] [--steps 5] [--dir /tmp/snn_bench]

Synthetic files in the real formats, with realistic event counts (SHD ~8k spikes per sample,
DVS Gesture ~300k events), are written to ``--dir`` once. Delivery is measured through the real
loaders and :func:`snntrain.data.batches` (float32 batches on the host, as the trainer gets them):

* ``cold``: the first epoch of a fresh run: read the files, bin every sample, write the cache,
  then iterate the batches;
* ``cached``: a later run: open the cache and iterate the batches;
* ``augmented``: a training epoch with every augmentation on (each sample read and binned again
  in every epoch, in the loader's background thread as in training).

Consumption is the jitted training step of ``experiment=shd_surrogate_comparison`` (2 x 128
LIF, T = 128, 256 channels) and ``experiment=dvs_gesture_conv`` (T = 20, 32x32x2), timed after
compilation. Delivery should be at least 3x consumption once cached.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from benchlib import cli  # noqa: E402

from snntrain import data  # noqa: E402

AUGMENT = {"time_shift_ms": 20.0, "jitter_ms": 2.0, "drop": 0.1, "channel_shift": 2}


def write_shd(root: Path, n: int, n_events: int = 8000, seed: int = 0) -> None:
    import h5py

    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("test", max(1, n // 4))):
        path = root / "SHD" / f"shd_{split}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            times = f.create_dataset("spikes/times", (count,), dtype=h5py.vlen_dtype(np.float16))
            units = f.create_dataset("spikes/units", (count,), dtype=h5py.vlen_dtype(np.uint16))
            for i in range(count):
                k = int(rng.integers(n_events // 2, 3 * n_events // 2))
                times[i] = np.sort(rng.uniform(0, 1.0, k)).astype(np.float16)
                units[i] = rng.integers(0, 700, k).astype(np.uint16)
            f.create_dataset("labels", data=rng.integers(0, 20, count).astype(np.uint16))


def write_dvs(root: Path, n: int, n_events: int = 300_000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split, count in (("Train", n), ("Test", max(1, n // 4))):
        for i in range(count):
            d = root / "DVSGesture" / f"ibmGesture{split}" / f"user{i:02d}_led"
            d.mkdir(parents=True, exist_ok=True)
            k = int(rng.integers(n_events // 2, 3 * n_events // 2))
            ev = np.stack([rng.integers(0, 128, k), rng.integers(0, 128, k),
                           rng.integers(0, 2, k), np.sort(rng.integers(0, 6000, k))], 1)
            np.save(d / f"{i % 11}.npy", ev.astype(np.int32))


def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from snntrain.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=["logger=none", "trainer.progress=false",
                                                  "trainer.parallel=none", *overrides])


def delivery(name: str, root: Path, batch: int, **kw) -> dict[str, float]:
    """Samples/s of a cold run, a cached run and an augmented epoch."""
    shutil.rmtree(root / {"shd": "SHD", "dvs_gesture": "DVSGesture"}[name] / "snntrain_cache",
                  ignore_errors=True)
    out = {}
    for what in ("cold", "cached", "augmented"):
        t0 = time.perf_counter()
        splits = data.load(name, data_dir=str(root), seed=0, val_fraction=0.0,
                           augment=AUGMENT if what == "augmented" else None, **kw)
        n = 0
        for b in data.batches(splits.train, batch, seed=0, epoch=1):
            n += int(b["mask"].sum())
        out[what] = n / (time.perf_counter() - t0)
    return out


def consumption(overrides: list[str], root: Path, steps: int) -> float:
    from snntrain import train

    cfg = compose(*overrides, f"dataset.data_dir={root}", "dataset.val_fraction=0")
    exp = train.build(cfg)
    step = exp.parallel.compile(train.make_train_step(exp))
    state = exp.parallel.replicate(exp.init_state())
    key = jax.random.PRNGKey(0)
    it = iter(data.batches(exp.data.train, exp.batch_size, seed=0, epoch=0))
    first = next(it)
    batch = exp.parallel.put_batch(first)
    state, m = step(state, batch, key, exp.surrogate)  # compile
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, m = step(state, batch, key, exp.surrogate)
    jax.block_until_ready(m)
    return steps * exp.batch_size / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shd", type=cli.positive_int, default=512, help="SHD training samples")
    parser.add_argument("--dvs", type=cli.positive_int, default=32,
                        help="DVS Gesture training samples")
    parser.add_argument("--steps", type=cli.positive_int, default=5, help="timed training steps")
    parser.add_argument("--dir", default="/tmp/snntrain_bench_data")
    parser.add_argument("--json", type=cli.json_path, default=None,
                        help="also write the numbers here")
    args = parser.parse_args(argv)
    root = Path(args.dir)
    if not (root / "SHD" / "shd_train.h5").exists():
        write_shd(root, args.shd)
    else:  # (the counts asked for were ignored without a word)
        print(f"reusing the SHD files in {root} (--shd applies to a new --dir)")
    if not (root / "DVSGesture").exists():
        write_dvs(root, args.dvs)
    else:
        print(f"reusing the DVS Gesture files in {root} (--dvs applies to a new --dir)")
    results = {}
    cases = {
        "shd_mlp": ("shd", 256, dict(T=128, dt_ms=7.8125, origin="zero", binary=True,
                                     downsample=256),
                    ["experiment=shd_surrogate_comparison"]),
        "dvs_gesture_conv": ("dvs_gesture", 16, dict(T=20, downsample=32),
                             ["experiment=dvs_gesture_conv"]),
    }
    for case, (name, batch, kw, overrides) in cases.items():
        got = delivery(name, root, batch, **kw)
        got["consumed"] = consumption(overrides, root, args.steps)
        results[case] = got
        print(f"{case}: delivered {got['cold']:.0f} samples/s cold, {got['cached']:.0f} cached, "
              f"{got['augmented']:.0f} augmented; the training step consumes "
              f"{got['consumed']:.0f}/s -> cached/consumed {got['cached'] / got['consumed']:.1f}x,"
              f" cold {got['cold'] / got['consumed']:.2f}x, augmented "
              f"{got['augmented'] / got['consumed']:.2f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
