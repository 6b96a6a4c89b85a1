"""Datasets and the input pipeline.

A dataset is a :class:`Splits` of three random-access sources (``train``, ``val``, ``test``),
each with ``len(source)`` and ``source[indices] -> (x_Bx..., y_B)``; images are float32 in
[0, 1] with shape ``N x H x W x C``. Sources held in memory are numpy arrays (:class:`Arrays`);
large tfds datasets are read by index without loading them whole.

The pipeline (:func:`batches`) is index based and therefore resumable: the order of epoch ``e``
is ``permutation(seed, e)``, and batch ``k`` of it is rows ``order[k*B:(k+1)*B]``. Every batch
has exactly ``B`` rows; the last partial batch of an epoch is padded (repeating row 0) and
carries ``mask_B`` (1 for real rows, 0 for padding) so that losses and metrics ignore the
padding, no example is dropped, and no new shape is ever compiled.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

# The held-out test split of `digits` is fixed, independent of the run seed.
DIGITS_TEST_SEED = 0


class Source(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclasses.dataclass(frozen=True)
class Arrays:
    """An in-memory source: ``x_NxHxWxC`` float32 in [0, 1] and int32 labels ``y_N``."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.x[idx], self.y[idx]


@dataclasses.dataclass(frozen=True)
class Splits:
    """The three splits of a dataset plus what a model needs to know about it."""

    name: str
    train: Source
    val: Source | None
    test: Source
    image_shape: tuple[int, ...]
    n_classes: int

    def describe(self) -> str:
        val = len(self.val) if self.val is not None else 0
        return (f"{self.name}: train {len(self.train)}, val {val}, test {len(self.test)}, "
                f"image {self.image_shape}, {self.n_classes} classes")


def split_off(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Split ``(x, y)`` into ``(rest, held)`` with ``round(fraction * N)`` seeded rows held out."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"split fraction must be in [0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(y))
    n_held = int(round(fraction * len(y)))
    held, rest = order[:n_held], order[n_held:]
    return (x[rest], y[rest]), (x[held], y[held])


def from_arrays(name: str, x_train, y_train, x_test, y_test, n_classes: int,
                val_fraction: float, seed: int) -> Splits:
    """Build :class:`Splits` from in-memory arrays, carving ``val`` from train with ``seed``."""
    (x_tr, y_tr), (x_va, y_va) = split_off(x_train, y_train, val_fraction, seed)
    val = Arrays(x_va, y_va) if len(y_va) else None
    return Splits(name, Arrays(x_tr, y_tr), val, Arrays(x_test, y_test),
                  tuple(x_train.shape[1:]), n_classes)


def load_digits(val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                **_: Any) -> Splits:
    """scikit-learn's bundled 8x8 digits (1797 images, offline).

    A fixed 20% test split (seed :data:`DIGITS_TEST_SEED`, the same for every run), then a
    ``val_fraction`` of the rest, carved with the run ``seed``. Pixels 0..16 are scaled to [0, 1].
    """
    from sklearn.datasets import load_digits as sk_load_digits

    raw = sk_load_digits()
    x = (raw.data.reshape(-1, 8, 8, 1) / 16.0).astype(np.float32)
    y = raw.target.astype(np.int32)
    (x_train, y_train), (x_test, y_test) = split_off(x, y, test_fraction, DIGITS_TEST_SEED)
    return from_arrays("digits", x_train, y_train, x_test, y_test, 10, val_fraction, seed)


LOADERS = {"digits": load_digits}


def load(name: str, **kwargs: Any) -> Splits:
    """Load the dataset of ``conf/dataset/<name>.yaml``."""
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(sorted(LOADERS))}")
    return LOADERS[name](**kwargs)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The order of examples in ``epoch``: a permutation seeded by ``(seed, epoch)``."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


def batches(source: Source, batch_size: int, *, seed: int = 0, epoch: int = 0,
            start: int = 0, shuffle: bool = True, rows: slice | None = None
            ) -> Iterator[dict[str, np.ndarray]]:
    """Yield the batches of one epoch from batch index ``start`` on.

    Each batch is ``{"x": x_Bx..., "y": y_B, "mask": mask_B, "index": index_B}`` with exactly
    ``batch_size`` rows; ``index`` is each row's position in the global batch (used to derive
    per-example random keys). ``rows`` selects this process's slice of every global batch
    (multi-host data loading).
    """
    n = len(source)
    order = epoch_order(n, seed, epoch, shuffle)
    rows = rows or slice(0, batch_size)
    position = np.arange(batch_size, dtype=np.int32)[rows]
    for k in range(start, steps_per_epoch(n, batch_size)):
        chunk = order[k * batch_size:(k + 1) * batch_size]
        mask = np.zeros(batch_size, np.float32)
        mask[:len(chunk)] = 1.0
        padded = np.concatenate([chunk, np.full(batch_size - len(chunk), chunk[0])])[rows]
        x, y = source[padded]
        yield {"x": np.asarray(x, np.float32), "y": np.asarray(y, np.int32),
               "mask": mask[rows], "index": position}
