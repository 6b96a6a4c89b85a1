"""Event datasets: SHD, SSC, N-MNIST, DVS128 Gesture and a user's ``.npz`` of events.

Each sample is a list of events (time, channel or pixel, polarity). It is binned into exactly
``T`` time steps (:func:`bin_events`) and stored time-major per sample, ``x_NxTx...`` (uint8
counts; uint16 if a bin holds more than 255 events), so a batch is ``x_BxTx...`` and the
``none`` encoder hands the model ``x_TxBx...``. The frame of one step is ``C`` channels (SHD,
SSC, ``(t, unit)`` events) or ``H x W x P`` pixels (cameras: polarity as channels,
channels-last), which is what :attr:`snntrain.sources.Splits.image_shape` holds.

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
(``<data_dir>/<Dataset>/snntrain_cache/``, keyed by a hash of the binning config, the sensor,
the format and its options such as ``time_unit``, and the source files' names, sizes and
modification times) and memory-mapped: in memory when they fit
(``in_memory: auto``: below 2 GiB), else read by index, a batch at a time.

On-disk formats (read by :mod:`snntrain.event_formats`) are those Tonic's ``save_to`` writes
(``<data_dir>/SHD/shd_train.h5``, ``<data_dir>/NMNIST/Train/<label>/<id>.bin``, ...); nothing
is ever downloaded here: a missing dataset raises a one-line :class:`EventDataError` naming
where it looked and the ``python -m snntrain.data prepare NAME --data_dir DIR`` command
(:func:`prepare`, which uses Tonic on a machine with internet).

References:
  Cramer et al., "The Heidelberg spiking data sets for the systematic evaluation of spiking
  neural networks", IEEE TNNLS 2020 (SHD, SSC); Orchard et al., "Converting static image
  datasets to spiking neuromorphic datasets using saccades", Front. Neurosci. 2015 (N-MNIST);
  Amir et al., "A low power, fully event-based gesture recognition system", CVPR 2017 (DVS128
  Gesture); Lenz et al., Tonic (github.com/neuromorphs/tonic).
"""

from __future__ import annotations

import dataclasses
import fractions
import functools
import glob
import gzip
import hashlib
import json
import logging
import math
import os
import re
import tarfile
import threading
import weakref
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snntrain import hostenv
from snntrain.errors import finite_float64
from snntrain.event_formats import (
    EVENTS_EXTRA,
    EventDataError,
    GestureReader,
    HDF5Reader,
    NMNISTReader,
    Reader,
    check_time_unit,
    read_npz,
)
from snntrain.sources import Splits, class_count, content_hash, first_line, val_indices

log = logging.getLogger(__name__)

IN_MEMORY_MAX_BYTES = 2 * 2**30
CACHE_VERSION = 2  # 2: the key holds the reader's options (time_unit) and format
CACHE_DTYPES = ("uint8", "uint16", "uint32")
ORIGINS = ("first", "zero")
# Bound the temporary int64 counts and the events held at once while binning.
_CHUNK_CELLS = 2**23
_CHUNK_EVENTS = 2**23


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
        if not (_integral(self.T) and self.T >= 1):
            raise EventDataError(f"T={self.T!r} is invalid: must be an integer >= 1")
        if self.dt_ms is not None and not (_number(self.dt_ms) and self.dt_ms > 0):
            raise EventDataError(f"dataset.dt_ms={self.dt_ms!r} is invalid: must be > 0 or null")
        if self.origin not in ORIGINS:
            raise EventDataError(
                f"dataset.origin={self.origin!r} is invalid: must be one of {', '.join(ORIGINS)}"
            )
        # normalized, so that equal configs give one cache key (dt_ms 50 and 50.0)
        set_ = object.__setattr__
        set_(self, "T", int(self.T))
        set_(self, "dt_ms", None if self.dt_ms is None else float(self.dt_ms))
        set_(self, "binary", flag("binary", self.binary))
        set_(self, "polarity", flag("polarity", self.polarity))
        if self.downsample is not None:
            set_(self, "downsample", _ds(self.downsample))

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
        for k in ("time_shift_ms", "jitter_ms"):
            v = getattr(self, k)
            if not (_number(v) and v >= 0):
                raise EventDataError(f"dataset.augment.{k}={v!r} is invalid: must be >= 0")
        k = self.channel_shift
        if not (_integral(k) and k >= 0):
            raise EventDataError(
                f"dataset.augment.channel_shift={k!r} is invalid: must be an integer >= 0"
            )
        object.__setattr__(self, "channel_shift", int(k))
        if not (_number(self.drop) and 0.0 <= self.drop < 1.0):
            raise EventDataError(
                f"dataset.augment.drop={self.drop!r} is invalid: must be in [0, 1)"
            )

    @property
    def active(self) -> bool:
        return bool(self.time_shift_ms or self.jitter_ms or self.drop or self.channel_shift)


def _number(v: Any) -> bool:
    """A finite real number (not a bool, not a string)."""
    return isinstance(v, (np.integer, np.floating)) and math.isfinite(v) or finite_float64(v)


def _integral(v: Any) -> bool:
    return _number(v) and int(v) == v


def flag(key: str, v: Any) -> bool:
    """``dataset.<key>`` as a bool; anything but a boolean (e.g. the string ``no``, which
    ``bool()`` calls true) is a one-line error."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    raise EventDataError(f"dataset.{key}={v!r} is not a boolean; valid: true, false")


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
        # dt in us as an exact fraction (16.1 ms is 16100/1 us; 16.1 * 1e3 is 16100.000000000002,
        # which put the events on bin borders one bin early): floor(rel * den / num)
        dt_us = fractions.Fraction(repr(float(binning.dt_ms))) * 1000
        b = np.floor(rel * dt_us.denominator / dt_us.numerator)
        inside = (b >= 0) & (b < T)
    # (the downsampling products below reach sensor x frame: a 100,000-channel sensor
    # overflowed int32 and put events in the wrong channel and bin)
    small = n * T * step < 2**31 and max(sensor) * max(frame) < 2**31
    itype = np.int32 if small else np.int64
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


def _cache_key(reader: Reader, binning: Binning, times: bool = True) -> str:
    """Everything that changes the binned tensor: every :class:`Binning` field, the sensor,
    the format and its options (``time_unit``), the files' names, sizes and times.

    ``times=False``: the files' names only, the same for every version of the files (their
    caches' lineage: a cache of an earlier version can never be read again, since the change
    time is in its key, and is removed when the new version's is written)."""
    files = reader.fingerprint() if times else [f[0] for f in reader.fingerprint()]
    spec = {"version": CACHE_VERSION, "binning": dataclasses.asdict(binning),
            "sensor": [int(v) for v in reader.sensor], "format": type(reader).__name__,
            "options": reader.options(), "files": files}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _remove_superseded(path: Path, lineage: str) -> None:
    """Remove the caches beside ``path`` of earlier versions of the same files and binning
    (their ``.json`` records ``lineage``): each held a whole split that no run can read again
    (a file replaced, or only ``chmod``-ed, left one behind each time)."""
    prefix = path.stem.rsplit("_", 1)[0] + "_"
    for meta_path in path.parent.glob(f"{glob.escape(prefix)}*.json"):
        old = meta_path.with_suffix(".npy")
        if old == path or meta_path.stem.rsplit("_", 1)[0] + "_" != prefix:
            continue
        try:
            if json.loads(meta_path.read_text()).get("lineage") != lineage:
                continue
            old.unlink(missing_ok=True)  # (a process reading it keeps its mapping)
            meta_path.unlink(missing_ok=True)
        except (OSError, ValueError, AttributeError):
            continue
        log.info("removed %s: the cache of an earlier version of the same files", old.name)


def _cache_ok(x: np.ndarray, meta: Any, shape: tuple[int, ...]) -> bool:
    """Whether a cached ``x`` and its ``.json`` are a complete binning of ``shape``."""
    counts = ("events", "in_window", "nonfinite")
    return (x.shape == shape and x.dtype.name in CACHE_DTYPES and isinstance(meta, dict)
            and meta.get("dtype") == x.dtype.name
            and all(isinstance(meta.get(k), int) and meta[k] >= 0 for k in counts)
            and meta["in_window"] + meta["nonfinite"] <= meta["events"])


def _total(x: np.ndarray) -> int:
    """The sum of a binned tensor (one pass; recorded with the cache to find damaged bytes,
    which the shape and header checks let through: a damaged cache was trained on)."""
    return int(x.sum(dtype=np.uint64))


# One in-memory copy of a split's binned tensor per process, however many seeds' splits (a
# population's members of 3 seeds held 3) read it; the key holds the files' sizes and times.
_HELD: weakref.WeakValueDictionary[tuple[str, str], np.ndarray] = weakref.WeakValueDictionary()
_HELD_STATS: dict[tuple[str, str], dict[str, Any]] = {}



def _tmp_path(path: Path) -> Path:
    """Where this thread writes ``path`` before renaming it: ``.<stem>.<host>.<pid>.<tid>.npy``."""
    return path.with_name(f".{path.stem}.{hostenv.HOST}.{os.getpid()}.{threading.get_ident()}.npy")


def _remove_stale(cache_dir: Path) -> None:
    """Remove the temporary files of binnings on this host whose process is gone (killed, or
    ended by ``os._exit``, where no ``finally`` runs)."""
    if os.name != "posix":
        return
    for f in cache_dir.glob(".*.npy"):
        parts = f.name.rsplit(".", 4)
        if len(parts) != 5 or parts[1] != hostenv.HOST or not parts[2].isdigit():
            continue
        if hostenv.process_gone(int(parts[2])):
            f.unlink(missing_ok=True)


def binned(
    reader: Reader, binning: Binning, cache_dir: Path | None, tag: str, key: str | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(frames_NxTx..., stats)`` of one split: read from ``cache_dir`` if this binning of these
    files was cached (memory-mapped), else binned (and cached when ``cache_dir`` is writable)."""
    shape = (len(reader), int(binning.T), *binning.frame_shape(reader.sensor))
    path = meta_path = tmp = None
    if cache_dir is not None:
        # (no ':' in the name: Windows and SMB/FAT mounts, a cluster's data_dir, refuse it)
        safe = re.sub(r"[^\w.+-]", "-", tag)
        path = cache_dir / f"{safe}_{key or _cache_key(reader, binning)}.npy"
        meta_path = path.with_suffix(".json")
        if path.exists() and meta_path.exists():
            try:
                x = np.load(path, mmap_mode="r", allow_pickle=False)
                meta = json.loads(meta_path.read_text())
                if _cache_ok(x, meta, shape):
                    total = _total(x)
                    if meta.get("total", total) == total:  # (older caches: no total)
                        return x, meta
                    log.warning("%s: the cached %s does not add up to its record (%d events, "
                                "its .json says %d): damaged, binning again", tag, path.name,
                                total, meta["total"])
            except (OSError, ValueError, EOFError) as e:  # unreadable (or empty): bin again
                log.warning("%s: the cached %s is unreadable (%s): binning again", tag,
                            path.name, type(e).__name__)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            _remove_stale(cache_dir)
            tmp = _tmp_path(path)
            tmp.touch()
        except OSError:
            log.info("%s: cache directory %s is not writable; binning in memory", tag, cache_dir)
            path = tmp = None
    where = f" (cached in {path.parent})" if path is not None else ""
    log.info("%s: binning %d samples into %d steps%s", tag, shape[0], shape[1], where)
    try:
        for dtype in (np.uint8, np.uint16, np.uint32):
            if path is not None:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            else:
                out = np.zeros(shape, dtype)
            with hostenv.exit_when_stuck(f"binning {tag} (reading {reader.where})"):
                stats = _bin_into(out, reader, binning)
            if stats is not None:
                break
        stats["dtype"] = np.dtype(out.dtype).name
        if path is None:
            return out, stats
        stats["total"] = _total(out)
        stats["lineage"] = _cache_key(reader, binning, times=False)
        out.flush()
        del out
        os.replace(tmp, path)
        meta_path.write_text(json.dumps(stats))
        _remove_superseded(path, stats["lineage"])
    except BaseException:  # a corrupt sample, Ctrl-C, ...: leave no temporary file behind
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
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
    checked: list = dataclasses.field(default_factory=list, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.rows)

    @functools.cached_property
    def identity(self) -> str:
        """A hash of the split's file sizes, labels, rows, binning and binned counts (not the
        files' names or places: a copy or a renamed file keeps it): a resumed run must read the
        same events the same way."""
        files = sorted(f.stat().st_size for f in self.reader.files()) if (
            self.reader is not None) else []
        binning = dataclasses.asdict(self.binning) if self.binning is not None else None
        # the binned counts of (up to ~64 MB of) this source's rows: other recordings of the
        # same size, names and labels (a regenerated file) are other data
        step = max(1, math.ceil(self.x[:1].nbytes * len(self.rows) / 2**26))
        sample = np.asarray(self.x[np.sort(self.rows[::step])])
        return content_hash([files, binning, self.y, self.rows, sample])

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
        frames, kept, _ = bin_events(moved, self.reader.sensor, self.binning, (lo, hi))
        if not self.checked:  # (the first batch of this run's source: its epochs share it)
            self.checked.append(True)
            plain = bin_events(samples, self.reader.sensor, self.binning, (lo, hi))[1]
            _note_augment_loss(self.augment, int(plain.sum()), int(kept.sum()))
        return frames.astype(np.float32)

    def at_epoch(self, seed: int, epoch: int) -> Frames:
        """This source as epoch ``epoch`` of a run with ``seed`` reads it (augmentation draws)."""
        if self.augment is None or not self.augment.active:
            return self
        return dataclasses.replace(self, seed=int(seed), epoch=int(epoch))


def _note_augment_loss(a: Augment, plain: int, kept: int, share: float = 0.25) -> None:
    """Say when augmentation leaves less than ``1 - share`` of the events a training batch has
    in its windows without it (``plain``), beyond what ``drop`` removes on purpose: a time
    shift beyond the samples' length cropped them all without a word (``time_shift_ms=1e300``
    trained on empty samples, at loss ln C)."""
    if plain and kept < (1 - share) * (1 - a.drop) * plain:
        log.info("note: dataset.augment (time_shift_ms=%g, jitter_ms=%g, drop=%g, "
                 "channel_shift=%d) left %d of the %d events a training batch has in its "
                 "windows without it (%.0f%%): events shifted out of the window or off the "
                 "sensor are cropped", a.time_shift_ms, a.jitter_ms, a.drop, a.channel_shift,
                 kept, plain, 100 * kept / plain)


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


class EventDataMissing(EventDataError):
    """A split's files are not there (``prepare`` then extracts or downloads them)."""


# the archive Tonic downloads for each split, which prepare extracts (Tonic's names)
ARCHIVES = {"shd": "shd_{split}.h5.zip", "ssc": "ssc_{split}.h5.zip", "nmnist": "{split}.zip",
            "dvs_gesture": "ibmGesture{Split}.tar.gz"}
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")  # what prepare (_extract) extracts


def _missing(name: str, looked: Path, what: str, split: str,
             extracted: Sequence[str] = ()) -> EventDataError:
    """Split ``split``'s ``what`` is not in ``looked``: say whether its own archive is there
    (to extract), was extracted without it (``extracted``: by prepare) or is missing too."""
    archives = sorted(p.name for p in looked.glob("*") if p.name.endswith(ARCHIVE_SUFFIXES))
    mine = [a for a in archives if split in a.lower()]
    expected = ARCHIVES[name].format(split=split, Split=split.capitalize())
    here = prepare_cmd(name).replace("DIR", str(looked.parent))
    elsewhere = (f"on a machine with internet run {prepare_cmd(name)} (after {EVENTS_EXTRA}), "
                 "copy DIR here and set dataset.data_dir=<copy>")
    if mine and mine[0] not in extracted:
        return EventDataMissing(
            f"{name}: {what} not found in {looked}, only the archive {mine[0]}: run {here} to "
            "extract it (no download)"
        )
    if mine:
        return EventDataMissing(
            f"{name}: {what} not found in {looked} after extracting {mine[0]}: the archive is "
            f"truncated or not the dataset's; delete it, then copy a good {expected} there "
            f"and run {here} again, or {elsewhere}"
        )
    if archives:
        return EventDataMissing(
            f"{name}: {what} not found in {looked}, nor its archive {expected} (there is only "
            f"{', '.join(archives)}): copy {expected} there and run {here}, or {elsewhere}"
        )
    return EventDataMissing(f"{name}: {what} not found in {looked}; {elsewhere}")


def readers(name: str, data_dir: str | os.PathLike | None = None, *,
            extracted: Sequence[str] = ()) -> dict[str, Reader]:
    """The splits of ``name`` in Tonic's ``save_to`` layout under ``data_dir``, without reading
    the events (raises :class:`EventDataMissing` if a split is missing; ``extracted``: the
    archives :func:`prepare` has just extracted, which the message then does not suggest)."""
    folder, splits, _ = DATASETS[name]
    root = Path(os.path.expanduser(str(data_dir or DEFAULT_DATA_DIR))).absolute() / folder
    out: dict[str, Reader] = {}
    for split in splits:
        if name in ("shd", "ssc"):
            path = root / f"{name}_{split}.h5"
            if not path.exists():
                raise _missing(name, root, path.name, split, extracted)
            out[split] = HDF5Reader(path)
        elif name == "nmnist":
            sub = root / split.capitalize()
            files = sorted(sub.glob("*/*.bin"))
            if not files:
                raise _missing(name, root, f"{sub.name}/<label>/*.bin", split, extracted)
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
                raise _missing(name, root, f"{sub.name}/user*/<label>.npy", split,
                               extracted)
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
    if not isinstance(augment, Mapping):  # (dataset.augment=0: "'int' object is not iterable")
        raise EventDataError(f"dataset.augment={augment!r} is invalid: must be null or a "
                             f"mapping of {', '.join(sorted(fields))}")
    bad = sorted(set(augment) - fields)
    if bad:
        raise EventDataError(
            f"dataset.augment has no option {bad[0]!r}; valid: {', '.join(sorted(fields))}"
        )
    return Augment(**augment)


def check_settings(T: Any, binning: dict[str, Any], augment: Any, cache: Any = True,
                   in_memory: Any = "auto", time_unit: Any = "us") -> tuple[Binning, Augment]:
    """An event dataset's binning, augmentation and storage settings, checked without its data
    (by :func:`snntrain.config.check_groups` at start-up, before the run directory exists, and
    by :func:`build_splits`); a bad one is a one-line :class:`EventDataError`."""
    b = Binning(T=T, **binning)
    aug = _as_augment(augment)
    if not (isinstance(in_memory, bool) or in_memory == "auto"):
        raise EventDataError(f"dataset.in_memory={in_memory!r} is invalid: must be auto, true "
                             "or false")
    flag("cache", cache)
    check_time_unit(time_unit)  # (dataset=events: the unit of its files' t)
    return b, aug


def dataset_settings(dataset: dict[str, Any], T: Any) -> dict[str, Any]:
    """The :func:`check_settings` arguments of a ``dataset`` config node (``T``: the run's)."""
    binning = {k: dataset[k] for k in ("dt_ms", "origin", "binary", "downsample", "polarity")
               if k in dataset}
    if binning.get("downsample") is not None:
        binning["downsample"] = _ds(binning["downsample"])
    return dict(T=dataset.get("T", T), binning=binning, augment=dataset.get("augment"),
                cache=dataset.get("cache", True), in_memory=dataset.get("in_memory", "auto"),
                time_unit=dataset.get("time_unit", "us"))


def _say_binned(name: str, split: str, stats: dict[str, Any], b: Binning) -> None:
    """The events a binning dropped (non-finite times) or left outside its window."""
    if stats.get("nonfinite"):
        log.info("%s %s: dropped %d events with non-finite timestamps", name, split,
                 stats["nonfinite"])
    outside = stats["events"] - stats["nonfinite"] - stats["in_window"]
    if outside > 0:  # fixed-width bins crop: the window is T * dt_ms from the origin
        window = (f"the {b.T * b.dt_ms:g} ms window (T={b.T} x dataset.dt_ms={b.dt_ms:g}, "
                  f"dataset.origin={b.origin})" if b.dt_ms is not None else
                  f"the window (dataset.dt_ms=null, dataset.origin={b.origin})")
        log.info("%s %s: %d of %d events (%.1f%%) fall outside %s and are not used", name,
                 split, outside, stats["events"], 100 * outside / stats["events"], window)


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
    b, aug = check_settings(T, binning, augment, cache, in_memory)
    where = None
    if flag("cache", cache):
        where = Path(os.path.expanduser(str(cache_dir))) if cache_dir else default_cache_dir
    for split, reader in splits.items():
        if not len(reader):
            raise EventDataError(f"{reader.where}: the {split} split is empty (0 samples)")
    labels = {s: r.labels for s, r in splits.items()}
    n_classes = class_count(labels, n_classes, {s: r.where for s, r in splits.items()},
                            EventDataError)
    sources = {}
    for split, reader in splits.items():
        tag, key = f"{name}_{split}", _cache_key(reader, b)
        x = _HELD.get((tag, key)) if in_memory is not False else None
        if x is not None:
            stats = _HELD_STATS[tag, key]
        else:
            x, stats = binned(reader, b, where, tag, key)
            if in_memory is True or (in_memory == "auto" and x.nbytes < IN_MEMORY_MAX_BYTES):
                x = np.array(x)
                x.flags.writeable = False  # (shared: another seed's splits read it too)
                for gone in [k for k in _HELD_STATS if k not in _HELD]:  # (their arrays freed)
                    del _HELD_STATS[gone]
                _HELD[tag, key], _HELD_STATS[tag, key] = x, stats
        _say_binned(name, split, stats, b)
        if not stats["in_window"]:  # (it trained on silence: exit 0, one line at most)
            raise EventDataError(
                f"{reader.where}: the {split} split has no events to bin ({stats['events']} "
                f"events, {stats['nonfinite']} with non-finite times, the rest outside the "
                "window): check the file, dataset.time_unit, dataset.dt_ms and dataset.origin")
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
        rest, held = val_indices(n_train, val_fraction, seed)
        train = source("train", np.sort(rest), True)
        val = source("train", np.sort(held), False) if len(held) else None
    test = source("test", np.arange(len(splits["test"])), False)
    frame = b.frame_shape(splits["train"].sensor)
    return Splits(name, train, val, test, frame, n_classes, temporal=True)


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
                 downsample=_ds(downsample), polarity=polarity)


def load_dvs_gesture(
    data_dir: str | None = None, *, T: int, seed: int = 0, val_fraction: float = 0.1,
    dt_ms: float | None = None, origin: str = "first", binary: bool = False,
    downsample: int | Sequence[int] | None = 32, polarity: bool = True,
    augment: dict | None = None, cache: bool = True, cache_dir: str | None = None,
    in_memory: bool | str = "auto",
) -> Splits:
    """DVS128 Gesture from ``<data_dir>/DVSGesture/ibmGesture{Train,Test}/user*/<label>.npy``
    (Tonic's files; 128x128x2, 11 classes), downsampled to 32x32 by default as in
    ``conf/dataset/dvs_gesture.yaml`` (``downsample=None``: 128x128)."""
    return _load("dvs_gesture", data_dir, T, seed, val_fraction, cache, cache_dir, in_memory,
                 augment, dt_ms=dt_ms, origin=origin, binary=binary,
                 downsample=_ds(downsample), polarity=polarity)


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
                                          downsample=_ds(downsample), polarity=polarity),
        augment=augment, cache=cache, cache_dir=cache_dir,
        default_cache_dir=p.parent / "snntrain_cache", in_memory=in_memory)


def _ds(downsample) -> tuple[int, ...] | None:
    if downsample is None:
        return None
    values = [downsample] if isinstance(downsample, (int, float, str)) else list(downsample)
    if not values or not all(_integral(v) and float(v) >= 1 for v in values):
        raise EventDataError(
            f"dataset.downsample={downsample!r} is invalid: must be a target size >= 1 or "
            "[H, W]"
        )
    return tuple(int(v) for v in values)


LOADERS = {"shd": load_shd, "ssc": load_ssc, "nmnist": load_nmnist,
           "dvs_gesture": load_dvs_gesture, "events": load_events}


# ---- python -m snntrain.data prepare shd --data_dir DIR -------------------------------------


def _extract(root: Path) -> list[str]:
    """Extract the archives Tonic downloaded into ``root`` (no network); their names."""
    done = []
    for archive in sorted(root.glob("*")):
        if not archive.name.endswith(ARCHIVE_SUFFIXES):
            continue
        try:
            if archive.name.endswith(".zip"):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(root)
            else:
                with tarfile.open(archive) as t:
                    t.extractall(root, filter="data")
        except (zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, zlib.error,
                EOFError) as e:
            raise EventDataError(
                f"{archive}: cannot extract it ({first_line(e)}); the archive is truncated or "
                "corrupt: delete it and download or copy it again"
            ) from None
        done.append(archive.name)
    return done


def prepare(name: str, data_dir: str | None = None) -> str:
    """Make ``name`` readable under ``data_dir`` (Tonic's layout): extract archives already
    there, else download with Tonic (needs internet and :data:`EVENTS_EXTRA`); then read every
    sample of every split with the loader's checks (a corrupt file, an empty split or a label
    out of range is the one-line :class:`EventDataError` training would give). Returns a
    one-line summary."""
    folder = DATASETS[name][0]
    base = Path(os.path.expanduser(str(data_dir or DEFAULT_DATA_DIR))).absolute()
    root = base / folder
    try:
        found = readers(name, base)
    except EventDataMissing:
        extracted = _extract(root) if root.is_dir() else []
        try:
            found = readers(name, base, extracted=extracted)
        except EventDataMissing as missing:  # a split whose archive is not here: download
            # (what is missing is said when something is there: with shd_test.h5 alone, an
            # offline prepare said only that it cannot download, not which file is missing)
            partial = extracted or (root.is_dir() and any(root.iterdir()))
            _download(name, base, missing if partial else None)
            try:
                found = readers(name, base)
            except EventDataMissing:  # downloaded, not extracted
                found = readers(name, base, extracted=_extract(root))
    class_count({s: r.labels for s, r in found.items()}, DATASETS[name][2],
                {s: r.where for s, r in found.items()}, EventDataError)
    for split, reader in found.items():
        log.info("%s %s: reading and checking the events of %d samples", name, split,
                 len(reader))
        with hostenv.exit_when_stuck(f"reading {reader.where}"):
            for start in range(0, len(reader), 16):  # decoded and checked, as training would
                reader.read(range(start, min(len(reader), start + 16)))
    sizes = ", ".join(f"{s} {len(r)}" for s, r in found.items())
    return (f"{name}: ready in {base / folder} ({sizes}; every event read and checked). "
            f"Without internet elsewhere: copy {base} there and set dataset.data_dir=<copy>")


def _download(name: str, base: Path, missing: EventDataError | None = None) -> None:
    """Download ``name`` with Tonic; if that cannot be done here and ``missing`` (what is
    missing after extracting the archives there) is given, raise it, with why."""
    try:
        import tonic.datasets as tds
    except ImportError:
        if missing is not None:
            raise EventDataError(f"{missing} (downloading needs Tonic: {EVENTS_EXTRA})") from None
        raise EventDataError(f"prepare {name} downloads with Tonic: {EVENTS_EXTRA}") from None
    from snntrain.tfds_data import network_problem

    problem = network_problem()
    if problem and missing is not None:
        raise EventDataError(f"{missing} (cannot download here: {problem})")
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
