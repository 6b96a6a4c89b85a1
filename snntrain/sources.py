"""Sources, splits and dataset errors: what every dataset loader builds on.

A *source* is random access: ``len(source)`` and ``source[indices] -> (x_Bx..., y_B)`` with
images float32 in [0, 1] (``N x H x W x C``) and int32 labels. A dataset is a :class:`Splits`
of three sources (``train``, ``val``, ``test``) plus the image shape and class count;
:func:`make_splits` carves ``val`` from train by seeded indices, so model selection never
touches ``test``. Every loader failure is a one-line :class:`DatasetError` that says how to
fix it.

:mod:`snntrain.data` (the in-memory loaders, the registry and the pipeline) and
:mod:`snntrain.tfds_data` (tfds datasets) both build on this module.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

# Fixed held-out test splits carved from train (digits; tfds datasets without a test split)
# use this seed, the same for every run.
TEST_SEED = 0


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message (one line) says why and how to fix it."""


class UnknownDataset(DatasetError):
    """A name tfds has no dataset for; ``detail`` is the message without the leading name."""

    def __init__(self, name: str, detail: str):
        super().__init__(f"{name}: {detail}")
        self.detail = detail


class NotPrepared(DatasetError):
    """A tfds dataset that is not in ``data_dir`` and cannot be downloaded now."""


class TensorFlowMissing(DatasetError):
    """TensorFlow is needed (to prepare a tfds dataset) but not installed."""


class BadArrays(DatasetError):
    """A malformed ``.npz`` file for ``dataset=arrays``."""


def n_classes_of(n_classes: Any, error: type[DatasetError] = DatasetError) -> int | None:
    """``dataset.n_classes`` as given (Python API or config): an integer >= 1 (an integral
    float counts), or None for the largest label + 1; otherwise ``error`` in one line."""
    if n_classes is None:
        return None
    ok = not isinstance(n_classes, (bool, str)) and isinstance(n_classes, (int, float, np.number))
    if not ok or n_classes != int(n_classes) or int(n_classes) < 1:
        raise error(f"dataset.n_classes={n_classes!r} is invalid: must be an integer >= 1 or "
                    "null (the largest label + 1)")
    return int(n_classes)


def class_count(ys: dict[str, np.ndarray], n_classes: Any, where: dict[str, str],
                error: type[DatasetError] = DatasetError, note: bool = True) -> int:
    """The class count of integer labels ``ys`` (per split, ``train`` among them; ``where``
    names each split's file): ``n_classes`` as given, else the largest label + 1. Refused in
    one line: labels outside ``0..n_classes-1``; with the count inferred, id-like labels (a span
    from 0 to 1000 or more in which at most half the values occur: labels like 10**8 made a
    10**8-way readout, reported as out of memory); a training split of a single class. Test
    classes the training split never shows are noted (with ``note``)."""
    n = n_classes_of(n_classes, error)
    y_all = np.concatenate([np.asarray(y).ravel() for y in ys.values()])
    if not len(y_all):
        return n or 1
    lo, top = int(y_all.min()), int(y_all.max())
    if n is None and lo >= 0 and top >= 1000 and (k := len(np.unique(y_all))) * 2 <= top + 1:
        holds_top = next(where[s] for s, y in ys.items() if len(y) and int(np.max(y)) == top)
        raise error(f"{holds_top}: labels span {lo}..{top} but only {k} "
                    "distinct values occur; labels must be class indices 0..n_classes-1 "
                    "(remap them with np.unique(y, return_inverse=True)[1], or set "
                    "dataset.n_classes)")
    n = top + 1 if n is None else n
    for split, y in ys.items():
        if len(y) and (y.min() < 0 or y.max() >= n):
            raise error(f"{where[split]}: labels span {y.min()}..{y.max()}, outside "
                        f"0..{n - 1} (dataset.n_classes={n})")
    train = np.unique(ys["train"])
    if len(train) < 2:
        raise error(f"{where['train']}: the training labels hold a single class "
                    f"({int(train[0])}); a classifier needs at least two")
    for split, y in ys.items():
        unseen = np.setdiff1d(np.asarray(y), train) if split != "train" else []
        if len(unseen) and note:
            log.info("note: %s: the %s labels hold class(es) %s that the training labels "
                     "never show (n_classes=%d); the model cannot learn them", where[split],
                     split, ", ".join(map(str, unseen[:10].tolist())), n)
    return n


def first_line(e: BaseException) -> str:
    """``"<ExceptionType>: <first line of its message>"``, for one-line error messages."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


class Source(Protocol):
    """Random-access examples. A source may also define ``subset(idx) -> Source`` (the rows
    ``idx`` as a source of its own kind), which :func:`take` uses."""

    def __len__(self) -> int: ...
    def __getitem__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def to_unit(x: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1]: uint8 is divided by 255, floats are already in range."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255)
    return x.astype(np.float32, copy=False)


@dataclasses.dataclass(frozen=True)
class Arrays:
    """An in-memory source: images ``x_NxHxWxC`` (uint8 0..255, or float32 in [0, 1]) and int32
    labels ``y_N``; reading returns float32 in [0, 1]."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return to_unit(self.x[idx]), self.y[idx]

    def subset(self, idx: np.ndarray) -> Arrays:
        return Arrays(self.x[idx], self.y[idx])

    @functools.cached_property
    def identity(self) -> str:
        """A hash of the examples and labels: a resumed run must read the same data (a
        replaced file continued a checkpoint trained on another)."""
        return content_hash([self.x, self.y])


def content_hash(parts: Sequence[Any]) -> str:
    """16 hex digits of SHA-1 over ``parts``: arrays by dtype, shape and bytes, anything else
    by its JSON text."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype.str}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).data)
        else:
            h.update(json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()[:16]


def take(source: Source, idx: np.ndarray) -> Source:
    """The rows ``idx`` of ``source`` as a source of the same kind (``source.subset``; a
    source without it but with ``x`` and ``y`` arrays becomes :class:`Arrays`)."""
    subset = getattr(source, "subset", None)
    if subset is not None:
        return subset(idx)
    return Arrays(source.x[idx], source.y[idx])  # type: ignore[attr-defined]


@dataclasses.dataclass(frozen=True)
class Splits:
    """The three splits of a dataset plus what a model needs to know about it."""

    name: str
    train: Source
    val: Source | None
    test: Source
    image_shape: tuple[int, ...]  # one example's shape (of one time step when temporal)
    n_classes: int
    temporal: bool = False  # examples are already spikes over T steps (event data)

    def held(self) -> dict[int, int]:
        """``{id: bytes}`` of the arrays the splits hold in memory (each once: splits share
        arrays; memory-mapped ones are the page cache's, shared by every process)."""
        out = {}
        for source in (self.train, self.val, self.test):
            for v in getattr(source, "__dict__", {}).values():
                while isinstance(v, np.ndarray) and isinstance(v.base, np.ndarray):
                    v = v.base  # (a view: its array's bytes)
                if isinstance(v, np.ndarray) and not isinstance(v, np.memmap):
                    out[id(v)] = v.nbytes
        return out

    def describe(self) -> str:
        val = len(self.val) if self.val is not None else 0
        return (
            f"{self.name}: train {len(self.train)}, val {val}, test {len(self.test)}, "
            f"image {self.image_shape}, {self.n_classes} classes"
        )


def split_indices(n: int, fraction: float, seed: int, key: str = "split fraction"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, held)`` row indices with ``round(fraction * n)`` seeded rows held out."""
    if not 0.0 <= fraction < 1.0:  # (from Python: the command line checks it first)
        raise DatasetError(f"{key}={fraction} is invalid: must be >= 0 and < 1")
    order = np.random.default_rng(seed).permutation(n)
    n_held = int(round(fraction * n))
    return order[n_held:], order[:n_held]


def val_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, held)`` of :func:`split_indices` for ``val``; a note (``snntrain: note: ...``
    on the command line) when ``val_fraction`` of ``n`` rounds to no sample."""
    rest, held = split_indices(n, val_fraction, seed, "dataset.val_fraction")
    if not len(rest):  # (a run "completed" 0 steps and chose by an untrained model)
        raise DatasetError(f"dataset.val_fraction={val_fraction:g} of {n} training samples "
                           f"leaves no sample to train on: it must be less than "
                           f"{(n - 0.5) / n:.4g}")
    if val_fraction > 0 and not len(held):
        log.info("note: dataset.val_fraction=%g of %d training samples is 0: no validation "
                 "split", val_fraction, n)
    return rest, held


def carve_test(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_indices` for the test split carved from ``n`` samples; raises
    :class:`DatasetError` naming ``dataset.test_fraction`` when it holds no sample."""
    rest, held = split_indices(n, test_fraction, seed, "dataset.test_fraction")
    if not len(held):
        raise DatasetError(f"dataset.test_fraction={test_fraction:g} of {n} samples is no test "
                           f"sample: it must be more than {0.5 / n:.2g}")
    if not len(rest):
        raise DatasetError(f"dataset.test_fraction={test_fraction:g} of {n} samples leaves no "
                           f"sample to train on: it must be less than {(n - 0.5) / n:.4g}")
    return rest, held


def split_off(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    """Split ``(x, y)`` into ``(rest, test)`` with ``round(test_fraction * N)`` seeded rows held
    out (:func:`carve_test`)."""
    rest, held = carve_test(len(y), test_fraction, seed)
    return (x[rest], y[rest]), (x[held], y[held])


def make_splits(
    name: str,
    train: Source,
    test: Source,
    image_shape: Sequence[int],
    n_classes: int,
    val_fraction: float,
    seed: int,
) -> Splits:
    """:class:`Splits` with ``val`` carved from ``train``: ``round(val_fraction * len(train))``
    rows chosen by ``seed`` (``val`` is ``None`` when that is 0)."""
    rest, held = val_indices(len(train), val_fraction, seed)
    val = take(train, held) if len(held) else None
    return Splits(name, take(train, rest), val, test, tuple(image_shape), int(n_classes))
