"""Event datasets: SHD, SSC, N-MNIST, DVS128 Gesture and a user's ``.npz`` of events.

Each sample is a list of events (time, channel or pixel, polarity). It is binned into exactly
``T`` time steps (:func:`bin_events`) and stored time-major per sample, ``x_NxTx...`` (uint8
counts; uint16 if a bin holds more than 255 events), so a batch is ``x_BxTx...`` and the
``none`` encoder hands the model ``x_TxBx...``. The frame of one step is ``C`` channels (SHD,
SSC, ``(t, unit)`` events) or ``H x W x P`` pixels (cameras: polarity as channels,
channels-last), which is what :attr:`snntrain.data.Splits.image_shape` holds.

Binning (``dataset.*``; :class:`Binning`):

* window: ``[t_lo, t_hi]`` with ``t_lo`` the sample's first event (``origin: first``) or 0
  (``origin: zero``); by default ``t_hi`` is its last event and the window is split into ``T``
  equal bins, ``bin = min(floor((t - t_lo) T / (t_hi - t_lo)), T - 1)``, so every event lands
  in a bin; with ``dt_ms`` the bins are ``dt_ms`` wide, ``bin = floor((t - t_lo) / dt)``,
  and the window is cropped (or zero-padded) to ``T`` bins.
* Only the bin index is floored, never the timestamps: the sum of a sample's tensor is the
  number of its events inside the window (Tonic issue #313: ``Downsample(time_factor)``
  floors the timestamps and can empty frames). Non-finite timestamps are dropped and counted.
* ``downsample``: the target size (SHD ``700 -> 140`` channels: ``140``; DVS ``128 -> 32``:
  ``32`` or ``[32, 32]``); coordinate ``c`` maps to ``c * out // in`` (exact integers).
* ``binary``: 1 where a bin holds any event; ``polarity: false`` sums the two polarities.

Augmentations (``dataset.augment``, all off by default; :class:`Augment`) act on the events of
training samples before binning, drawn from ``default_rng([seed, epoch, row])`` for the
sample in row ``row`` of the training file, so a run is reproducible and resumes mid-epoch to
the same batches. Binned samples are cached once per binning config as ``.npy`` files
(``<data_dir>/<Dataset>/snntrain_cache/``, keyed by a hash of the binning config and the source
files' names, sizes and modification times) and memory-mapped: in memory when they fit
(``in_memory: auto``: below 2 GiB), else read by index, a batch at a time.

On-disk formats are those Tonic's ``save_to`` writes (``<data_dir>/SHD/shd_train.h5``,
``<data_dir>/NMNIST/Train/<label>/<id>.bin``, ...); nothing is ever downloaded here: a missing
dataset raises a one-line :class:`EventDataError` naming where it looked and the
``python -m snntrain.data prepare NAME --data_dir DIR`` command (:func:`prepare`, which uses
Tonic on a machine with internet).

References:
  Cramer et al., "The Heidelberg spiking data sets for the systematic evaluation of spiking
  neural networks", IEEE TNNLS 2020 (SHD, SSC); Orchard et al., "Converting static image
  datasets to spiking neuromorphic datasets using saccades", Front. Neurosci. 2015 (N-MNIST);
  Amir et al., "A low power, fully event-based gesture recognition system", CVPR 2017 (DVS128
  Gesture); Lenz et al., Tonic (github.com/neuromorphs/tonic).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import tarfile
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snntrain.data import DatasetError, Splits, split_indices

log = logging.getLogger(__name__)

EVENTS_EXTRA = "pip install 'snntrain[events]' (in a checkout: pip install -e '.[events]')"
IN_MEMORY_MAX_BYTES = 2 * 2**30
CACHE_VERSION = 1
ORIGINS = ("first", "zero")
TIME_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}
# Bound the temporary int64 counts and the events held at once while binning.
_CHUNK_CELLS = 2**23
_CHUNK_EVENTS = 2**23


class EventDataError(DatasetError):
    """An event dataset that is missing, unreadable or malformed (one line: which file, which
    sample, and how to fix it)."""


# ---- binning ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Binning:
    """How events become ``T`` frames (see the module docstring for the formulas)."""

    T: int
    dt_ms: float | None = None
    origin: str = "first"
    binary: bool = False
    downsample: tuple[int, ...] | None = None
    polarity: bool = True

    def __post_init__(self):
        if isinstance(self.T, bool) or int(self.T) < 1:
            raise EventDataError(f"T={self.T!r} is invalid: must be an integer >= 1")
        if self.dt_ms is not None and not (math.isfinite(self.dt_ms) and self.dt_ms > 0):
            raise EventDataError(f"dataset.dt_ms={self.dt_ms!r} is invalid: must be > 0 or null")
        if self.origin not in ORIGINS:
            raise EventDataError(
                f"dataset.origin={self.origin!r} is invalid: must be one of {', '.join(ORIGINS)}"
            )

    def frame_shape(self, sensor: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one step: ``(C',)`` for a ``(C,)`` sensor, ``(H', W', P')`` for a
        camera of Tonic's ``sensor_size`` ``(W, H, P)``."""
        if len(sensor) == 1:
            return (self._target(sensor, 1)[0],)
        w, h, p = sensor
        h2, w2 = self._target((h, w), 2)
        return (h2, w2, p if self.polarity else 1)

    def _target(self, native: tuple[int, ...], n: int) -> tuple[int, ...]:
        if self.downsample is None:
            return tuple(native)
        d = tuple(int(v) for v in self.downsample)
        d = d * n if len(d) == 1 else d
        if len(d) != n or any(not 1 <= a <= b for a, b in zip(d, native, strict=True)):
            want = "C" if n == 1 else "N or [H, W]"
            raise EventDataError(
                f"dataset.downsample={list(self.downsample)} is invalid for a sensor of "
                f"{'x'.join(map(str, native))}: must be {want} target sizes between 1 and the "
                "native size"
            )
        return d


@dataclasses.dataclass(frozen=True)
class Augment:
    """Training-time augmentations of the events (all 0 = off).

    * ``time_shift_ms``: every event of a sample moves by one ``s ~ U[-a, a]`` (the window
      stays; events moved out of it are cropped);
    * ``jitter_ms``: every event moves by its own ``N(0, sigma^2)``;
    * ``drop``: every event is dropped with this probability;
    * ``channel_shift``: the channels (x and y on a camera) move by integers ``~ U{-k..k}``
      per sample; events moved off the sensor are dropped (SHD: Cramer et al. 2020).
    """

    time_shift_ms: float = 0.0
    jitter_ms: float = 0.0
    drop: float = 0.0
    channel_shift: int = 0

    def __post_init__(self):
        for k in ("time_shift_ms", "jitter_ms", "channel_shift"):
            v = getattr(self, k)
            if isinstance(v, bool) or not (math.isfinite(v) and v >= 0):
                raise EventDataError(f"dataset.augment.{k}={v!r} is invalid: must be >= 0")
        if not 0.0 <= self.drop < 1.0:
            raise EventDataError(
                f"dataset.augment.drop={self.drop!r} is invalid: must be in [0, 1)"
            )

    @property
    def active(self) -> bool:
        return bool(self.time_shift_ms or self.jitter_ms or self.drop or self.channel_shift)


def _augment(cols: dict, aug: Augment, rng: np.random.Generator, sensor) -> dict:
    t, keep = cols["t"].copy(), np.ones(len(cols["t"]), bool)
    if aug.time_shift_ms:
        t += rng.uniform(-aug.time_shift_ms, aug.time_shift_ms) * 1e3
    if aug.jitter_ms:
        t += rng.normal(0.0, aug.jitter_ms * 1e3, len(t))
    if aug.drop:
        keep &= rng.random(len(t)) >= aug.drop
    out = dict(cols, t=t)
    if aug.channel_shift:
        k = int(aug.channel_shift)
        for axis, size in (("x", sensor[0]), ("y", sensor[1] if len(sensor) > 1 else None)):
            if size is not None:
                out[axis] = cols[axis] + int(rng.integers(-k, k + 1))
                keep &= (out[axis] >= 0) & (out[axis] < size)
    return {k: v[keep] for k, v in out.items()}


def windows(samples: Sequence[dict[str, np.ndarray]], binning: Binning):
    """``(lo_N, hi_N)``: each sample's window in microseconds (finite timestamps only; an
    empty sample gets ``[0, 0]``)."""
    n = len(samples)
    lens = np.array([len(s["t"]) for s in samples], np.int64)
    lo, hi = np.zeros(n), np.zeros(n)
    full = np.flatnonzero(lens)
    if not len(full):
        return lo, hi
    t = np.concatenate([np.asarray(samples[i]["t"], np.float64).reshape(-1) for i in full])
    starts = np.concatenate([[0], np.cumsum(lens[full])[:-1]])
    finite = np.isfinite(t)
    t_max = np.maximum.reduceat(np.where(finite, t, -np.inf), starts)
    has = np.isfinite(t_max)
    if binning.origin == "first":
        lo[full[has]] = np.minimum.reduceat(np.where(finite, t, np.inf), starts)[has]
    hi[full[has]] = np.maximum(t_max[has], lo[full[has]])
    return lo, hi


def bin_events(
    samples: Sequence[dict[str, np.ndarray]],
    sensor: tuple[int, ...],
    binning: Binning,
    window: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin samples of events into ``frames_NxTx...`` (int64 counts, or 0/1 if ``binary``).

    Each sample is a dict of equal-length columns: ``t`` (microseconds), ``x`` (channel or
    column), and on a camera ``y`` (row) and ``p`` (polarity). ``window`` (default:
    :func:`windows` of ``samples``) is each sample's ``(lo_N, hi_N)``. Returns ``(frames,
    kept_N, nonfinite_N)``: the number of events inside the window (``frames[i].sum() ==
    kept[i]`` unless ``binary``) and of events dropped for a non-finite timestamp.
    """
    n, T = len(samples), int(binning.T)
    frame = binning.frame_shape(sensor)
    step = math.prod(frame)
    lo, hi = windows(samples, binning) if window is None else window
    lens = np.array([len(s["t"]) for s in samples], np.int64)
    sid = np.repeat(np.arange(n), lens)

    def cat(key: str) -> np.ndarray:
        parts = [np.asarray(s[key]).reshape(-1) for s in samples]
        return np.concatenate(parts) if parts else np.zeros(0)

    t = cat("t").astype(np.float64)
    finite = np.isfinite(t)
    nonfinite = np.bincount(sid[~finite], minlength=n)
    t, sid = t[finite], sid[finite]
    rel = t - lo[sid]
    if binning.dt_ms is None:  # the window split into T bins; t == hi goes to the last one
        span = (hi - lo)[sid]
        b = np.floor(np.divide(rel * T, span, out=np.zeros_like(rel), where=span > 0))
        inside = (rel >= 0) & (t <= hi[sid])
        b = np.minimum(b, T - 1)
    else:  # fixed-width bins from lo, cropped to T
        b = np.floor(rel / (float(binning.dt_ms) * 1e3))
        inside = (b >= 0) & (b < T)
    itype = np.int32 if n * T * step < 2**31 else np.int64
    b = np.where(inside, b, 0).astype(itype)
    idx = (sid.astype(itype) * T + b) * step
    x = cat("x").astype(itype)[finite]
    if len(sensor) == 1:
        idx += x * frame[0] // sensor[0]
    else:
        w, h, _ = sensor
        h2, w2, p2 = frame
        y = cat("y").astype(itype)[finite]
        idx += ((y * h2 // h) * w2 + x * w2 // w) * p2
        if p2 > 1:
            idx += cat("p").astype(itype)[finite]
    counts = np.bincount(idx[inside], minlength=n * T * step).reshape(n, T, *frame)
    if binning.binary:
        counts = np.minimum(counts, 1)
    return counts, np.bincount(sid[inside], minlength=n), nonfinite


def _storage(counts: np.ndarray) -> np.ndarray:
    """Counts in the smallest unsigned dtype that holds them (uint8 unless a bin has > 255)."""
    top = int(counts.max()) if counts.size else 0
    dtype = np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.uint32
    return counts.astype(dtype)


# ---- readers: one split of one dataset on disk ------------------------------------------


class Reader:
    """The samples of one split: ``len``, ``labels``, ``read(rows) -> [events dict]``.

    ``sensor`` is Tonic's ``sensor_size`` (``(C,)`` or ``(W, H, P)``); ``files`` the source
    files (their names, sizes and modification times key the cache); ``where`` names the
    split in messages.
    """

    sensor: tuple[int, ...]
    where: str

    def __len__(self) -> int:
        return len(self.labels)

    labels: np.ndarray

    def read(self, rows: Sequence[int]) -> list[dict[str, np.ndarray]]:
        raise NotImplementedError

    def files(self) -> list[Path]:
        raise NotImplementedError

    def fingerprint(self) -> list:
        out = []
        for f in self.files():
            st = f.stat()
            out.append([str(f), st.st_size, st.st_mtime_ns])
        return out


def _check_coords(cols: dict, sensor, where: str) -> None:
    names = ("x",) if len(sensor) == 1 else ("x", "y", "p")
    for name, size in zip(names, sensor, strict=False):
        v = cols[name]
        if len(v) and (v.min() < 0 or v.max() >= size):
            bad = v[(v < 0) | (v >= size)][0]
            what = "unit" if len(sensor) == 1 else name
            raise EventDataError(
                f"{where}: {what}={bad} is outside the sensor (0..{size - 1}, sensor size "
                f"{list(sensor)}); the file is corrupt"
            )


class HDF5Reader(Reader):
    """SHD / SSC: ``spikes/times`` (seconds, one variable-length array per sample),
    ``spikes/units`` (channel 0..699) and ``labels`` in an HDF5 file (Cramer et al. 2020)."""

    sensor = (700,)

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = None
        self._lock = threading.Lock()
        f = self._open()
        missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in f]
        if missing:
            raise EventDataError(
                f"{self.path}: missing {', '.join(missing)} (an SHD/SSC file has spikes/times, "
                "spikes/units and labels); the file is corrupt or not an SHD/SSC file"
            )
        n = [len(f[k]) for k in ("spikes/times", "spikes/units", "labels")]
        if len(set(n)) != 1:
            raise EventDataError(
                f"{self.path}: spikes/times has {n[0]} samples, spikes/units {n[1]}, labels "
                f"{n[2]}; the file is truncated or corrupt"
            )
        try:
            self.labels = np.asarray(f["labels"][:]).astype(np.int64)
        except (OSError, ValueError) as e:
            raise EventDataError(f"{self.path}: cannot read labels ({_first_line(e)})") from None
        self.where = str(self.path)

    def _open(self):
        if self._file is None:
            h5py = _h5py()
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as e:
                raise EventDataError(
                    f"{self.path} is not a readable HDF5 file ({_first_line(e)}); it is "
                    "truncated or corrupt: delete it and prepare again"
                ) from None
        return self._file

    def files(self) -> list[Path]:
        return [self.path]

    def read(self, rows: Sequence[int]) -> list[dict[str, np.ndarray]]:
        rows = np.asarray(rows, np.int64)
        out = []
        with self._lock:  # h5py: one reader at a time (loading thread and batch thread)
            f = self._open()
            times, units = f["spikes/times"], f["spikes/units"]
            if len(rows) and np.all(np.diff(rows) == 1):  # contiguous: one slice per column
                try:
                    ts, us = times[rows[0] : rows[-1] + 1], units[rows[0] : rows[-1] + 1]
                except (OSError, ValueError) as e:
                    raise EventDataError(
                        f"{self.path}: cannot read samples {rows[0]}..{rows[-1]} "
                        f"({_first_line(e)}); the file is truncated or corrupt"
                    ) from None
                pairs = list(zip(rows, ts, us, strict=True))
            else:
                pairs = []
                for r in rows:
                    try:
                        pairs.append((r, times[int(r)], units[int(r)]))
                    except (OSError, ValueError) as e:
                        raise EventDataError(
                            f"{self.path}: cannot read sample {r} ({_first_line(e)}); the "
                            "file is truncated or corrupt"
                        ) from None
        for r, t, u in pairs:
            t, u = np.asarray(t).reshape(-1), np.asarray(u).reshape(-1)
            if len(t) != len(u):
                raise EventDataError(
                    f"{self.path}: sample {r} has {len(t)} spike times but {len(u)} units; "
                    "the file is corrupt"
                )
            cols = {"t": t.astype(np.float64) * 1e6, "x": u.astype(np.int64)}
            _check_coords(cols, self.sensor, f"{self.path}: sample {r}")
            out.append(cols)
        return out


def _h5py():
    try:
        import h5py
    except ImportError:
        raise EventDataError(f"reading SHD/SSC needs h5py: {EVENTS_EXTRA}") from None
    return h5py


class FilesReader(Reader):
    """One file per sample (N-MNIST ``.bin``, DVS Gesture ``.npy``), labels from the path."""

    def __init__(self, paths: list[Path], labels: list[int], where: str):
        self.paths, self.labels, self.where = paths, np.asarray(labels, np.int64), where

    def files(self) -> list[Path]:
        return self.paths

    def read(self, rows: Sequence[int]) -> list[dict[str, np.ndarray]]:
        return [self.decode(self.paths[int(r)]) for r in rows]

    def decode(self, path: Path) -> dict[str, np.ndarray]:
        raise NotImplementedError


NMNIST_OVERFLOW_Y = 240
NMNIST_OVERFLOW_T = 2**13


def decode_nmnist(raw: bytes | np.ndarray) -> dict[str, np.ndarray]:
    """N-MNIST's 5-byte events: ``x`` (byte 0), ``y`` (byte 1), polarity (bit 7 of byte 2) and
    a 23-bit microsecond timestamp (bits 6..0 of byte 2, bytes 3 and 4, big-endian). An event
    with ``y == 240`` marks a timestamp overflow: later events get ``+2^13`` and the marker is
    removed, as in the dataset's reference reader (Orchard et al. 2015, ``eventvision.py``)."""
    b = np.frombuffer(raw, np.uint8).reshape(-1, 5).astype(np.int64)
    t = ((b[:, 2] & 127) << 16) | (b[:, 3] << 8) | b[:, 4]
    marker = b[:, 1] == NMNIST_OVERFLOW_Y
    t = t + NMNIST_OVERFLOW_T * np.cumsum(marker)
    keep = ~marker
    return {"t": t[keep].astype(np.float64), "x": b[keep, 0], "y": b[keep, 1],
            "p": b[keep, 2] >> 7}


class NMNISTReader(FilesReader):
    sensor = (34, 34, 2)

    def decode(self, path: Path) -> dict[str, np.ndarray]:
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise EventDataError(f"{path}: cannot read it ({e.strerror})") from None
        if len(raw) % 5:
            raise EventDataError(
                f"{path}: {len(raw)} bytes is not a whole number of 5-byte N-MNIST events; "
                "the file is truncated: extract it again"
            )
        cols = decode_nmnist(raw)
        _check_coords(cols, self.sensor, str(path))
        return cols


class GestureReader(FilesReader):
    """DVS128 Gesture as Tonic stores it: one ``.npy`` of ``N x 4`` columns ``x, y, p, t``
    (``t`` in milliseconds) per gesture, named ``<label>.npy``, under ``user<NN>_<lighting>/``."""

    sensor = (128, 128, 2)

    def decode(self, path: Path) -> dict[str, np.ndarray]:
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise EventDataError(
                f"{path}: not a readable .npy of events ({_first_line(e)}); the file is "
                "truncated or corrupt: extract it again"
            ) from None
        if a.ndim != 2 or a.shape[1] != 4 or not np.issubdtype(a.dtype, np.number):
            raise EventDataError(
                f"{path}: holds a {a.dtype} array of shape {a.shape}; expected N x 4 numbers "
                "(x, y, p, t in ms) as Tonic's DVSGesture files"
            )
        cols = {"t": a[:, 3].astype(np.float64) * 1e3, "x": a[:, 0].astype(np.int64),
                "y": a[:, 1].astype(np.int64), "p": a[:, 2].astype(np.int64)}
        _check_coords(cols, self.sensor, str(path))
        return cols


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


class ArraysReader(Reader):
    """One split of a user's ``.npz`` (validated by :func:`read_npz`), held in memory."""

    def __init__(self, path: Path, split: str, cols: dict, counts, labels, sensor):
        self.path, self.where = path, f"{path} ({split})"
        self.cols, self.labels, self.sensor = cols, labels, tuple(sensor)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def files(self) -> list[Path]:
        return [self.path]

    def read(self, rows: Sequence[int]) -> list[dict[str, np.ndarray]]:
        o = self.offsets
        return [{k: v[o[r] : o[r + 1]] for k, v in self.cols.items()} for r in rows]


NPZ_EXAMPLE = (
    "np.savez(path, t_train=..., unit_train=..., counts_train=..., labels_train=..., "
    "<the same for _test>, sensor_size=[C])"
)


def read_npz(path: str | None, time_unit: str = "us") -> dict[str, ArraysReader]:
    """A user's events file (``dataset=events``): for each split ``s`` in ``train, test``

    * ``t_s`` and either ``unit_s`` (a ``(C,)`` sensor) or ``x_s, y_s, p_s`` (a camera of
      ``sensor_size`` ``(W, H, P)``): the events of all samples, concatenated, each sample's
      times non-decreasing and >= 0 (in ``time_unit``); or one structured array ``events_s``
      with those fields;
    * ``counts_s``: the number of events of each sample; ``labels_s``: its class;

    and ``sensor_size``. Each malformed file raises :class:`EventDataError` naming the key
    (and the sample).
    """
    if path in (None, "", "???"):
        raise EventDataError(
            "dataset.path is required with dataset=events, e.g. dataset=events "
            "dataset.path=/data/mine.npz"
        )
    if time_unit not in TIME_UNITS:
        raise EventDataError(
            f"dataset.time_unit={time_unit!r} is invalid: must be one of {', '.join(TIME_UNITS)}"
        )
    path = Path(os.path.expanduser(str(path)))
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise EventDataError(f"dataset.path={path}: no such file") from None
    except AttributeError:  # a single .npy array has no .files
        raise EventDataError(f"{path} is a single .npy array, not an .npz; {NPZ_EXAMPLE}") from None
    except (OSError, ValueError, EOFError) as e:
        raise EventDataError(
            f"{path} is not a readable .npz without pickle ({_first_line(e)}); {NPZ_EXAMPLE}"
        ) from None
    if "sensor_size" not in arrays:
        raise EventDataError(f"{path} is missing sensor_size ([C] or [W, H, P]); {NPZ_EXAMPLE}")
    sensor = np.asarray(arrays["sensor_size"]).reshape(-1)
    if len(sensor) not in (1, 3) or not np.issubdtype(sensor.dtype, np.integer) or (
            sensor.min() < 1):
        raise EventDataError(
            f"{path}: sensor_size={sensor.tolist()} is invalid: must be [C] for (t, unit) "
            "events or [W, H, P] for (t, x, y, p) events, positive integers"
        )
    names = ("unit",) if len(sensor) == 1 else ("x", "y", "p")
    out = {}
    for split in ("train", "test"):
        cols = _npz_columns(arrays, split, names, path)
        n_events = len(cols["t"])
        for key in ("counts", "labels"):
            if f"{key}_{split}" not in arrays:
                raise EventDataError(
                    f"{path} is missing {key}_{split}; it has {', '.join(sorted(arrays))}"
                )
        counts = np.asarray(arrays[f"counts_{split}"])
        labels = np.asarray(arrays[f"labels_{split}"])
        for key, a in ((f"counts_{split}", counts), (f"labels_{split}", labels)):
            if a.ndim != 1 or not (np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_):
                raise EventDataError(
                    f"{path}: {key} has dtype {a.dtype} and shape {a.shape}; expected "
                    "integers of shape (N,)"
                )
        if len(counts) != len(labels):
            raise EventDataError(
                f"{path}: counts_{split} has {len(counts)} samples but labels_{split} "
                f"{len(labels)}"
            )
        if not len(counts):
            raise EventDataError(f"{path}: the {split} split is empty")
        if counts.min() < 0 or counts.sum() != n_events:
            raise EventDataError(
                f"{path}: counts_{split} sums to {counts.sum()} events (min {counts.min()}) but "
                f"t_{split} has {n_events}; counts are the events of each sample"
            )
        t = cols["t"].astype(np.float64) * TIME_UNITS[time_unit]
        sid = np.repeat(np.arange(len(counts)), counts)
        bad = np.flatnonzero(t < 0)
        if len(bad):
            raise EventDataError(
                f"{path}: sample {sid[bad[0]]} of {split} has a negative time "
                f"({cols['t'][bad[0]]}); times must be >= 0"
            )
        ok = np.isfinite(t)
        tf, sf = t[ok], sid[ok]
        down = np.flatnonzero((np.diff(tf) < 0) & (sf[1:] == sf[:-1]))
        if len(down):
            e = down[0]
            raise EventDataError(
                f"{path}: the times of sample {sf[e]} of {split} decrease ({tf[e]:g} then "
                f"{tf[e + 1]:g} us); sort each sample's events by time"
            )
        xyz = {("x" if k == "unit" else k): cols[k].astype(np.int64) for k in names}
        for k, size in zip(names, sensor.tolist(), strict=True):
            v = cols[k]
            bad = np.flatnonzero((v < 0) | (v >= size))
            if len(bad):
                raise EventDataError(
                    f"{path}: sample {sid[bad[0]]} of {split} has {k}={v[bad[0]]} outside the "
                    f"sensor (0..{size - 1}, sensor_size {sensor.tolist()})"
                )
        out[split] = ArraysReader(path, split, {"t": t, **xyz}, counts, labels.astype(np.int64),
                                  sensor.tolist())
    return out


def _npz_columns(arrays: dict, split: str, names: tuple[str, ...], path: Path) -> dict:
    """The event columns of ``split``, from ``events_<split>`` (structured) or ``<col>_<split>``."""
    if f"events_{split}" in arrays:
        ev = arrays[f"events_{split}"]
        fields = ev.dtype.names or ()
        missing = [k for k in ("t", *names) if k not in fields]
        if missing:
            raise EventDataError(
                f"{path}: events_{split} has fields {list(fields)}; missing {', '.join(missing)} "
                f"(expected t, {', '.join(names)})"
            )
        cols = {k: ev[k].reshape(-1) for k in ("t", *names)}
    else:
        missing = [f"{k}_{split}" for k in ("t", *names) if f"{k}_{split}" not in arrays]
        if missing:
            raise EventDataError(
                f"{path} is missing {', '.join(missing)}; it has {', '.join(sorted(arrays))}"
                f" ({NPZ_EXAMPLE})"
            )
        cols = {k: np.asarray(arrays[f"{k}_{split}"]) for k in ("t", *names)}
    for k, v in cols.items():
        if v.ndim != 1:
            raise EventDataError(f"{path}: {k}_{split} has shape {v.shape}; expected (n_events,)")
        integer = np.issubdtype(v.dtype, np.integer) and v.dtype != np.bool_
        if k == "t" and not (integer or np.issubdtype(v.dtype, np.floating)):
            raise EventDataError(f"{path}: t_{split} has dtype {v.dtype}; times must be numbers")
        if k != "t" and not (integer or v.dtype == np.bool_ and k == "p"):
            raise EventDataError(
                f"{path}: {k}_{split} has dtype {v.dtype}; coordinates must be integers"
            )
    lens = {k: len(v) for k, v in cols.items()}
    if len(set(lens.values())) != 1:
        raise EventDataError(
            f"{path}: the {split} columns differ in length ("
            + ", ".join(f"{k}_{split} {n}" for k, n in lens.items()) + ")"
        )
    return cols


# ---- binned splits, cached ----------------------------------------------------------------


def _blocks(reader: Reader, cells: int):
    """Rows of ``reader`` in blocks that bound the temporary counts and events."""
    n = len(reader)
    per_block = max(1, min(512, _CHUNK_CELLS // max(cells, 1)))
    for start in range(0, n, per_block):
        rows = list(range(start, min(n, start + per_block)))
        samples = reader.read(rows)
        group, size = [], 0
        for r, s in zip(rows, samples, strict=True):
            if group and size + len(s["t"]) > _CHUNK_EVENTS:
                yield group
                group, size = [], 0
            group.append((r, s))
            size += len(s["t"])
        if group:
            yield group


def _bin_into(out: np.ndarray, reader: Reader, binning: Binning) -> dict[str, int] | None:
    """Fill ``out`` (``N x T x ...``) with the binned samples; ``None`` if a count does not fit
    ``out``'s dtype. Returns the event counts (total, inside the window, non-finite)."""
    cells = math.prod(out.shape[1:])
    top = np.iinfo(out.dtype).max
    stats = {"events": 0, "in_window": 0, "nonfinite": 0}
    for group in _blocks(reader, cells):
        rows = [r for r, _ in group]
        counts, kept, nonfinite = bin_events([s for _, s in group], reader.sensor, binning)
        if counts.size and counts.max() > top:
            return None
        out[rows[0] : rows[-1] + 1] = counts
        stats["events"] += sum(len(s["t"]) for _, s in group)
        stats["in_window"] += int(kept.sum())
        stats["nonfinite"] += int(nonfinite.sum())
    return stats


def _cache_key(reader: Reader, binning: Binning) -> str:
    spec = {"version": CACHE_VERSION, "binning": dataclasses.asdict(binning),
            "sensor": list(reader.sensor), "files": reader.fingerprint()}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def binned(
    reader: Reader, binning: Binning, cache_dir: Path | None, tag: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(frames_NxTx..., stats)`` of one split: read from ``cache_dir`` if this binning of these
    files was cached (memory-mapped), else binned (and cached when ``cache_dir`` is writable)."""
    shape = (len(reader), int(binning.T), *binning.frame_shape(reader.sensor))
    path = meta_path = None
    if cache_dir is not None:
        path = cache_dir / f"{tag}_{_cache_key(reader, binning)}.npy"
        meta_path = path.with_suffix(".json")
        if path.exists() and meta_path.exists():
            try:
                x = np.load(path, mmap_mode="r", allow_pickle=False)
                meta = json.loads(meta_path.read_text())
                if x.shape == shape:
                    return x, meta
            except (OSError, ValueError):  # unreadable: bin again
                pass
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npy")
            tmp.touch()
        except OSError:
            log.info("%s: cache directory %s is not writable; binning in memory", tag, cache_dir)
            path = None
    where = f" (cached in {path.parent})" if path is not None else ""
    log.info("%s: binning %d samples into %d steps%s", tag, shape[0], shape[1], where)
    for dtype in (np.uint8, np.uint16, np.uint32):
        if path is not None:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        else:
            out = np.zeros(shape, dtype)
        stats = _bin_into(out, reader, binning)
        if stats is not None:
            break
    stats["dtype"] = np.dtype(out.dtype).name
    if path is None:
        return out, stats
    out.flush()
    del out
    os.replace(tmp, path)
    meta_path.write_text(json.dumps(stats))
    return np.load(path, mmap_mode="r", allow_pickle=False), stats


@dataclasses.dataclass(frozen=True, eq=False)
class Frames:
    """A source of binned event samples: ``source[idx] -> (x_BxTx... float32 counts, y_B)``.

    ``x`` holds a whole split file (``N x T x ...`` counts, possibly memory-mapped), ``rows``
    the rows this source serves (train or val). With an active ``augment`` each sample is read
    from ``reader`` and binned again with its own draw, ``default_rng([seed, epoch, row])``;
    :meth:`at_epoch` sets the epoch (``snntrain.data.batches`` calls it).
    """

    x: np.ndarray
    y: np.ndarray
    rows: np.ndarray
    prefetch: bool = False
    reader: Reader | None = None
    binning: Binning | None = None
    augment: Augment | None = None
    seed: int = 0
    epoch: int = 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = self.rows[np.asarray(idx)]
        if self.augment is not None and self.augment.active:
            return self._augmented(r), self.y[r]
        if isinstance(self.x, np.memmap):  # read each row once, in file order
            u, inv = np.unique(r, return_inverse=True)
            return np.asarray(self.x[u], np.float32)[inv], self.y[r]
        return np.asarray(self.x[r], np.float32), self.y[r]

    def _augmented(self, rows: np.ndarray) -> np.ndarray:
        samples = self.reader.read(rows)
        lo, hi = windows(samples, self.binning)
        moved = [
            _augment(s, self.augment, np.random.default_rng([self.seed, self.epoch, int(r)]),
                     self.reader.sensor)
            for r, s in zip(rows, samples, strict=True)
        ]
        return bin_events(moved, self.reader.sensor, self.binning, (lo, hi))[0].astype(
            np.float32)

    def at_epoch(self, seed: int, epoch: int) -> Frames:
        """This source as epoch ``epoch`` of a run with ``seed`` reads it (augmentation draws)."""
        if self.augment is None or not self.augment.active:
            return self
        return dataclasses.replace(self, seed=int(seed), epoch=int(epoch))


# ---- the datasets -------------------------------------------------------------------------

# name -> (Tonic class / folder under data_dir, splits on disk, classes)
DATASETS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "shd": ("SHD", ("train", "test"), 20),
    "ssc": ("SSC", ("train", "valid", "test"), 35),
    "nmnist": ("NMNIST", ("train", "test"), 10),
    "dvs_gesture": ("DVSGesture", ("train", "test"), 11),
}
DEFAULT_DATA_DIR = "data"


def prepare_cmd(name: str) -> str:
    return f"`python -m snntrain.data prepare {name} --data_dir DIR`"


def _missing(name: str, looked: Path, what: str) -> EventDataError:
    archives = sorted(p.name for p in looked.glob("*") if p.suffix in (".zip", ".gz", ".tar"))
    if archives:
        return EventDataError(
            f"{name}: {what} not found in {looked}, only the archive {archives[0]}: run "
            f"{prepare_cmd(name).replace('DIR', str(looked.parent))} to extract it (no download)"
        )
    return EventDataError(
        f"{name}: {what} not found in {looked}; on a machine with internet run "
        f"{prepare_cmd(name)} (after pip install -e '.[events]'), copy DIR here and set "
        "dataset.data_dir=<copy>"
    )


def readers(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, Reader]:
    """The splits of ``name`` in Tonic's ``save_to`` layout under ``data_dir``, without reading
    the events (raises :class:`EventDataError` if a split is missing)."""
    folder, splits, _ = DATASETS[name]
    root = Path(os.path.expanduser(str(data_dir or DEFAULT_DATA_DIR))).absolute() / folder
    out: dict[str, Reader] = {}
    for split in splits:
        if name in ("shd", "ssc"):
            path = root / f"{name}_{split}.h5"
            if not path.exists():
                raise _missing(name, root, path.name)
            out[split] = HDF5Reader(path)
        elif name == "nmnist":
            sub = root / split.capitalize()
            files = sorted(sub.glob("*/*.bin"))
            if not files:
                raise _missing(name, root, f"{sub.name}/<label>/*.bin")
            labels = []
            for f in files:
                if not (f.parent.name.isdigit() and int(f.parent.name) < 10):
                    raise EventDataError(
                        f"{f}: its folder {f.parent.name!r} is not a class 0..9 "
                        f"(N-MNIST is {sub}/<label>/<id>.bin)"
                    )
                labels.append(int(f.parent.name))
            out[split] = NMNISTReader(files, labels, str(sub))
        else:
            sub = root / f"ibmGesture{split.capitalize()}"
            files = sorted(sub.glob("user*/*.npy"))
            if not files:
                raise _missing(name, root, f"{sub.name}/user*/<label>.npy")
            labels = []
            for f in files:
                if not (f.stem.isdigit() and int(f.stem) < 11):
                    raise EventDataError(
                        f"{f}: {f.stem!r} is not a class 0..10 (DVS Gesture files are "
                        "<label>.npy)"
                    )
                labels.append(int(f.stem))
            out[split] = GestureReader(files, labels, str(sub))
    return out


def _as_augment(augment: Any) -> Augment:
    if augment is None:
        return Augment()
    if isinstance(augment, Augment):
        return augment
    fields = {f.name for f in dataclasses.fields(Augment)}
    bad = sorted(set(augment) - fields)
    if bad:
        raise EventDataError(
            f"dataset.augment has no option {bad[0]!r}; valid: {', '.join(sorted(fields))}"
        )
    return Augment(**augment)


def build_splits(
    name: str,
    splits: dict[str, Reader],
    *,
    T: int,
    seed: int,
    val_fraction: float,
    n_classes: int | None,
    binning: dict[str, Any],
    augment: Any,
    cache: bool,
    cache_dir: str | os.PathLike | None,
    default_cache_dir: Path,
    in_memory: bool | str,
) -> Splits:
    """Bin (or load the cache of) every split and return them as :class:`Splits` of
    :class:`Frames` (``val``: the ``valid`` split if there is one, else carved from train with
    ``seed``)."""
    b = Binning(T=int(T), **binning)
    aug = _as_augment(augment)
    if in_memory not in (True, False, "auto"):
        raise EventDataError(f"dataset.in_memory={in_memory!r} is invalid: must be auto, true "
                             "or false")
    where = None
    if cache:
        where = Path(os.path.expanduser(str(cache_dir))) if cache_dir else default_cache_dir
    labels = {s: r.labels for s, r in splits.items()}
    n_classes = int(n_classes) if n_classes else int(max(y.max() for y in labels.values())) + 1
    for split, y in labels.items():
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise EventDataError(
                f"{splits[split].where}: labels span {y.min()}..{y.max()}, outside "
                f"0..{n_classes - 1} (dataset.n_classes={n_classes})"
            )
    sources = {}
    for split, reader in splits.items():
        x, stats = binned(reader, b, where, f"{name}_{split}")
        if stats.get("nonfinite"):
            log.info("%s %s: dropped %d events with non-finite timestamps", name, split,
                     stats["nonfinite"])
        if in_memory is True or (in_memory == "auto" and x.nbytes < IN_MEMORY_MAX_BYTES):
            x = np.array(x)
        sources[split] = (x, labels[split].astype(np.int32), reader, stats)

    def source(split: str, rows: np.ndarray, augmented: bool) -> Frames:
        x, y, reader, stats = sources[split]
        return Frames(x, y, np.asarray(rows, np.int64), prefetch=isinstance(x, np.memmap) or (
            augmented and aug.active), reader=reader, binning=b,
            augment=aug if augmented else None)

    n_train = len(splits["train"])
    if "valid" in splits:
        train = source("train", np.arange(n_train), True)
        val = source("valid", np.arange(len(splits["valid"])), False)
    else:
        rest, held = split_indices(n_train, val_fraction, seed)
        train = source("train", np.sort(rest), True)
        val = source("train", np.sort(held), False) if len(held) else None
    test = source("test", np.arange(len(splits["test"])), False)
    frame = b.frame_shape(splits["train"].sensor)
    return Splits(name, train, val, test, frame, n_classes)


def _load(name: str, data_dir, T, seed, val_fraction, cache, cache_dir, in_memory, augment,
          **binning) -> Splits:
    splits = readers(name, data_dir)
    root = Path(os.path.expanduser(str(data_dir or DEFAULT_DATA_DIR))).absolute()
    return build_splits(
        name, splits, T=T, seed=seed, val_fraction=val_fraction, n_classes=DATASETS[name][2],
        binning=binning, augment=augment, cache=cache, cache_dir=cache_dir,
        default_cache_dir=root / DATASETS[name][0] / "snntrain_cache", in_memory=in_memory)


def load_shd(
    data_dir: str | None = None, *, T: int, seed: int = 0, val_fraction: float = 0.1,
    dt_ms: float | None = None, origin: str = "first", binary: bool = False,
    downsample: int | None = None, augment: dict | None = None, cache: bool = True,
    cache_dir: str | None = None, in_memory: bool | str = "auto",
) -> Splits:
    """Spiking Heidelberg Digits from ``<data_dir>/SHD/shd_{train,test}.h5`` (700 channels,
    20 classes), binned into ``T`` steps; ``val_fraction`` of train is carved with ``seed``."""
    return _load("shd", data_dir, T, seed, val_fraction, cache, cache_dir, in_memory, augment,
                 dt_ms=dt_ms, origin=origin, binary=binary, downsample=_ds(downsample))


def load_ssc(
    data_dir: str | None = None, *, T: int, seed: int = 0, dt_ms: float | None = None,
    origin: str = "first", binary: bool = False, downsample: int | None = None,
    augment: dict | None = None, cache: bool = True, cache_dir: str | None = None,
    in_memory: bool | str = "auto",
) -> Splits:
    """Spiking Speech Commands from ``<data_dir>/SSC/ssc_{train,valid,test}.h5`` (700 channels,
    35 classes); ``val`` is its own ``valid`` split."""
    return _load("ssc", data_dir, T, seed, 0.0, cache, cache_dir, in_memory, augment,
                 dt_ms=dt_ms, origin=origin, binary=binary, downsample=_ds(downsample))


def load_nmnist(
    data_dir: str | None = None, *, T: int, seed: int = 0, val_fraction: float = 0.1,
    dt_ms: float | None = None, origin: str = "first", binary: bool = False,
    downsample: int | Sequence[int] | None = None, polarity: bool = True,
    augment: dict | None = None, cache: bool = True, cache_dir: str | None = None,
    in_memory: bool | str = "auto",
) -> Splits:
    """N-MNIST from ``<data_dir>/NMNIST/{Train,Test}/<label>/<id>.bin`` (34x34x2, 10 classes)."""
    return _load("nmnist", data_dir, T, seed, val_fraction, cache, cache_dir, in_memory,
                 augment, dt_ms=dt_ms, origin=origin, binary=binary,
                 downsample=_ds(downsample), polarity=bool(polarity))


def load_dvs_gesture(
    data_dir: str | None = None, *, T: int, seed: int = 0, val_fraction: float = 0.1,
    dt_ms: float | None = None, origin: str = "first", binary: bool = False,
    downsample: int | Sequence[int] | None = None, polarity: bool = True,
    augment: dict | None = None, cache: bool = True, cache_dir: str | None = None,
    in_memory: bool | str = "auto",
) -> Splits:
    """DVS128 Gesture from ``<data_dir>/DVSGesture/ibmGesture{Train,Test}/user*/<label>.npy``
    (Tonic's files; 128x128x2, 11 classes)."""
    return _load("dvs_gesture", data_dir, T, seed, val_fraction, cache, cache_dir, in_memory,
                 augment, dt_ms=dt_ms, origin=origin, binary=binary,
                 downsample=_ds(downsample), polarity=bool(polarity))


def load_events(
    path: str | None = None, *, T: int, seed: int = 0, val_fraction: float = 0.1,
    n_classes: int | None = None, time_unit: str = "us", dt_ms: float | None = None,
    origin: str = "first", binary: bool = False, downsample: int | Sequence[int] | None = None,
    polarity: bool = True, augment: dict | None = None, cache: bool = True,
    cache_dir: str | None = None, in_memory: bool | str = "auto",
) -> Splits:
    """A user's ``.npz`` of events (layout: :func:`read_npz`), binned into ``T`` steps;
    ``n_classes`` defaults to the largest label + 1."""
    splits = read_npz(path, time_unit)
    p = splits["train"].path
    return build_splits(
        f"events:{p.name}", splits, T=T, seed=seed, val_fraction=val_fraction,
        n_classes=n_classes, binning=dict(dt_ms=dt_ms, origin=origin, binary=binary,
                                          downsample=_ds(downsample), polarity=bool(polarity)),
        augment=augment, cache=cache, cache_dir=cache_dir,
        default_cache_dir=p.parent / "snntrain_cache", in_memory=in_memory)


def _ds(downsample) -> tuple[int, ...] | None:
    if downsample is None:
        return None
    values = [downsample] if isinstance(downsample, (int, float)) else list(downsample)
    if not values or any(isinstance(v, bool) or int(v) != v for v in values):
        raise EventDataError(
            f"dataset.downsample={downsample!r} is invalid: must be a target size or [H, W]"
        )
    return tuple(int(v) for v in values)


LOADERS = {"shd": load_shd, "ssc": load_ssc, "nmnist": load_nmnist,
           "dvs_gesture": load_dvs_gesture, "events": load_events}


# ---- python -m snntrain.data prepare shd --data_dir DIR -------------------------------------


def _extract(root: Path) -> list[str]:
    """Extract the archives Tonic downloaded into ``root`` (no network); their names."""
    done = []
    for archive in sorted(root.glob("*")):
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                z.extractall(root)
        elif archive.name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive) as t:
                t.extractall(root, filter="data")
        else:
            continue
        done.append(archive.name)
    return done


def prepare(name: str, data_dir: str | None = None) -> str:
    """Make ``name`` readable under ``data_dir`` (Tonic's layout): extract archives already
    there, else download with Tonic (needs internet and :data:`EVENTS_EXTRA`). Returns a
    one-line summary."""
    folder = DATASETS[name][0]
    base = Path(os.path.expanduser(str(data_dir or DEFAULT_DATA_DIR))).absolute()
    try:
        found = readers(name, base)
    except EventDataError:
        extracted = _extract(base / folder) if (base / folder).is_dir() else []
        if not extracted:
            _download(name, base)
        found = readers(name, base)
    sizes = ", ".join(f"{s} {len(r)}" for s, r in found.items())
    return (f"{name}: ready in {base / folder} ({sizes}). Without internet elsewhere: copy "
            f"{base} there and set dataset.data_dir=<copy>")


def _download(name: str, base: Path) -> None:
    try:
        import tonic.datasets as tds
    except ImportError:
        raise EventDataError(f"prepare {name} downloads with Tonic: {EVENTS_EXTRA}") from None
    from snntrain.tfds_data import network_problem

    problem = network_problem()
    if problem:
        raise EventDataError(
            f"{name}: cannot download into {base} ({problem}); run this on a machine with "
            "internet, copy the directory here and set dataset.data_dir=<copy>"
        )
    cls = getattr(tds, DATASETS[name][0])
    for split in DATASETS[name][1]:
        log.info("%s: downloading the %s split with Tonic into %s", name, split, base)
        if name == "ssc":
            cls(save_to=str(base), split=split)
        else:
            cls(save_to=str(base), train=split == "train")
