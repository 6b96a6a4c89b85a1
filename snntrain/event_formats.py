"""Readers of the event datasets' on-disk formats (used by :mod:`snntrain.events`).

A :class:`Reader` is one split: ``len``, ``labels``, and ``read(rows)`` -> one dict of columns
per sample (``t`` in microseconds, ``x`` the channel or column, on a camera ``y`` the row and
``p`` the polarity), checked against the sensor. Formats: SHD/SSC HDF5 (:class:`HDF5Reader`),
N-MNIST ``.bin`` (:func:`decode_nmnist`), DVS Gesture as Tonic stores it (:class:`GestureReader`)
and a user's ``.npz`` (:func:`read_npz`). Every unreadable file raises a one-line
:class:`EventDataError` naming the file (and the sample).
"""

from __future__ import annotations

import os
import threading
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snntrain.sources import DatasetError, first_line

EVENTS_EXTRA = "pip install 'snntrain[events]' (in a checkout: pip install -e '.[events]')"
TIME_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def check_time_unit(time_unit: Any) -> None:
    """``dataset.time_unit`` is one of :data:`TIME_UNITS` (a one-line :class:`EventDataError`)."""
    if time_unit not in TIME_UNITS:
        raise EventDataError(
            f"dataset.time_unit={time_unit!r} is invalid: must be one of {', '.join(TIME_UNITS)}"
        )


class EventDataError(DatasetError):
    """An event dataset that is missing, unreadable or malformed (one line: which file, which
    sample, and how to fix it)."""


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

    def options(self) -> dict:
        """The reading options that change the events (part of the cache key)."""
        return {}

    def fingerprint(self) -> list:
        """Each file's name, size and times (part of the cache key). The change time too: a
        file replaced by one of the same size and modification time (``cp -p``, ``rsync -a``,
        ``touch -r``, a tar extract) kept the old events' cache, and no command sets it back
        (a ``chmod`` changes it as well: the split is binned once more)."""
        out = []
        for f in self.files():
            st = f.stat()
            out.append([str(f), st.st_size, st.st_mtime_ns, st.st_ctime_ns])
        return out


def _check_times(t_us: np.ndarray, where: str) -> None:
    """Refuse a negative finite time (non-finite times are dropped and counted later)."""
    bad = np.flatnonzero(np.isfinite(t_us) & (t_us < 0))
    if len(bad):
        raise EventDataError(
            f"{where} has a negative time ({t_us[bad[0]] / 1e6:g} s); times must be >= 0: the "
            "file is corrupt"
        )


def _check_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """``labels_N`` as int64; refuses another shape or non-integers in one line."""
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer)
                                and labels.dtype != np.bool_):
        raise EventDataError(
            f"{where}: labels has dtype {labels.dtype} and shape {labels.shape}; expected "
            "integers of shape (N,)"
        )
    return labels.astype(np.int64)


def _check_coords(cols: dict, sensor, where: str) -> dict:
    """``cols`` with its coordinates (``x``; on a camera ``x, y, p``) as int64, after checking
    that each is an integer (a float column must hold integral values: 3.0 is 3, 3.5 and NaN
    are refused, not truncated) inside the sensor; any other value is one line naming it."""
    names = ("x",) if len(sensor) == 1 else ("x", "y", "p")
    out = dict(cols)
    for name, size in zip(names, sensor, strict=False):
        v = np.asarray(cols[name])
        what = "unit" if len(sensor) == 1 else name
        if not (np.issubdtype(v.dtype, np.integer) or np.issubdtype(v.dtype, np.floating)):
            raise EventDataError(
                f"{where}: {what} has dtype {v.dtype}; coordinates must be integers: the file "
                "is corrupt"
            )
        if np.issubdtype(v.dtype, np.floating):
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(v) | (v != np.floor(v))
            if bad.any():
                raise EventDataError(
                    f"{where}: {what}={float(v[bad][0])} is not an integer; coordinates must "
                    "be integers: the file is corrupt"
                )
        if len(v) and (v.min() < 0 or v.max() >= size):
            bad = v[(v < 0) | (v >= size)][0]
            bad = int(bad) if np.issubdtype(v.dtype, np.floating) else bad
            raise EventDataError(
                f"{where}: {what}={bad} is outside the sensor (0..{size - 1}, sensor size "
                f"{list(sensor)}); the file is corrupt"
            )
        out[name] = v.astype(np.int64)
    return out


class HDF5Reader(Reader):
    """SHD / SSC: ``spikes/times`` (seconds, one variable-length array per sample),
    ``spikes/units`` (channel 0..699) and ``labels`` in an HDF5 file (Cramer et al. 2020)."""

    sensor = (700,)

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = None
        self._lock = threading.Lock()
        f = self._open()
        try:
            missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in f]
            if missing:
                raise EventDataError(
                    f"{self.path}: missing {', '.join(missing)} (an SHD/SSC file has "
                    "spikes/times, spikes/units and labels); the file is corrupt or not an "
                    "SHD/SSC file"
                )
            for k in ("spikes/times", "spikes/units"):  # (a fixed-width N x M array was
                # read as rows of events, its zero padding trained on as spikes at t = 0)
                d = f[k]
                if len(d.shape) != 1 or _h5py().check_vlen_dtype(d.dtype) is None:
                    raise EventDataError(
                        f"{self.path}: {k} is a {len(d.shape)}-D {d.dtype} array of shape "
                        f"{tuple(d.shape)}; an SHD/SSC file has one variable-length array per "
                        "sample (1-D, vlen): the file is not in the SHD/SSC layout")
            n = [len(f[k]) for k in ("spikes/times", "spikes/units", "labels")]
        except EventDataError:
            raise
        except _H5_ERRORS as e:
            raise self._corrupt("its metadata", e) from None
        if len(set(n)) != 1:
            raise EventDataError(
                f"{self.path}: spikes/times has {n[0]} samples, spikes/units {n[1]}, labels "
                f"{n[2]}; the file is truncated or corrupt"
            )
        try:
            labels = np.asarray(f["labels"][()])
        except _H5_ERRORS as e:
            raise self._corrupt("labels", e) from None
        self.labels = _check_labels(labels, str(self.path))
        if not len(self.labels):
            raise EventDataError(
                f"{self.path}: the split is empty (0 samples); the file is truncated or not "
                "the dataset's: delete it and prepare again"
            )
        self.where = str(self.path)

    def _open(self):
        if self._file is None:
            h5py = _h5py()
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as e:
                raise EventDataError(
                    f"{self.path} is not a readable HDF5 file ({first_line(e)}); it is "
                    "truncated or corrupt: delete it and prepare again"
                ) from None
        return self._file

    def _corrupt(self, what: str, e: BaseException) -> EventDataError:
        return EventDataError(
            f"{self.path}: cannot read {what} ({first_line(e)}); the file is truncated or "
            "corrupt: delete it and prepare again (which extracts it again)"
        )

    def files(self) -> list[Path]:
        return [self.path]

    def read(self, rows: Sequence[int]) -> list[dict[str, np.ndarray]]:
        rows = np.asarray(rows, np.int64)
        out = []
        with self._lock:  # h5py: one reader at a time (loading thread and batch thread)
            f = self._open()
            try:
                times, units = f["spikes/times"], f["spikes/units"]
            except _H5_ERRORS as e:
                raise self._corrupt("spikes/times and spikes/units", e) from None
            if len(rows) and np.all(np.diff(rows) == 1):  # contiguous: one slice per column
                try:
                    ts, us = times[rows[0] : rows[-1] + 1], units[rows[0] : rows[-1] + 1]
                except _H5_ERRORS as e:
                    raise self._corrupt(f"samples {rows[0]}..{rows[-1]}", e) from None
                pairs = list(zip(rows, ts, us, strict=True))
            else:
                pairs = []
                for r in rows:
                    try:
                        pairs.append((r, times[int(r)], units[int(r)]))
                    except _H5_ERRORS as e:
                        raise self._corrupt(f"sample {r}", e) from None
        for r, t, u in pairs:
            t, u = np.asarray(t).reshape(-1), np.asarray(u).reshape(-1)
            if len(t) != len(u):
                raise EventDataError(
                    f"{self.path}: sample {r} has {len(t)} spike times but {len(u)} units; "
                    "the file is corrupt"
                )
            if t.dtype.kind not in "iuf":  # (bytes, text, complex: not a time)
                raise EventDataError(
                    f"{self.path}: sample {r}: spikes/times has dtype {t.dtype}; times must be "
                    "numbers (seconds): the file is corrupt"
                )
            cols = {"t": t.astype(np.float64) * 1e6, "x": u}
            _check_times(cols["t"], f"{self.path}: sample {r}")
            out.append(_check_coords(cols, self.sensor, f"{self.path}: sample {r}"))
        return out


# what h5py raises on a damaged file: OSError (unreadable data), RuntimeError (bad metadata:
# "bad symbol table node signature", "bad heap free list"), KeyError (a damaged link), ...
_H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError,
              AttributeError, SystemError, OverflowError, MemoryError)


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
        if not raw:
            raise EventDataError(
                f"{path}: the file is empty (0 bytes, no N-MNIST events); the file is "
                "truncated: extract it again"
            )
        if len(raw) % 5:
            raise EventDataError(
                f"{path}: {len(raw)} bytes is not a whole number of 5-byte N-MNIST events; "
                "the file is truncated: extract it again"
            )
        return _check_coords(decode_nmnist(raw), self.sensor, str(path))


class GestureReader(FilesReader):
    """DVS128 Gesture as Tonic stores it: one ``.npy`` of ``N x 4`` columns ``x, y, p, t``
    (``t`` in milliseconds) per gesture, named ``<label>.npy``, under ``user<NN>_<lighting>/``."""

    sensor = (128, 128, 2)

    def decode(self, path: Path) -> dict[str, np.ndarray]:
        try:
            if not _is_npy(path):  # np.load would try it as a pickle, and advise allowing it
                raise ValueError("no .npy header")
            a = np.load(path, allow_pickle=False)
        except Exception as e:  # a damaged header: TokenError, SyntaxError, MemoryError, ...
            raise EventDataError(
                f"{path}: not a readable .npy of events ({first_line(e)}); the file is "
                "truncated or corrupt: extract it again"
            ) from None
        if a.ndim != 2 or a.shape[1] != 4 or not np.issubdtype(a.dtype, np.number):
            raise EventDataError(
                f"{path}: holds a {a.dtype} array of shape {a.shape}; expected N x 4 numbers "
                "(x, y, p, t in ms) as Tonic's DVSGesture files"
            )
        if not len(a):  # (as an empty N-MNIST file: a recording always has events)
            raise EventDataError(f"{path}: holds no events (0 x 4); the file is truncated: "
                                 "extract it again")
        cols = {"t": a[:, 3].astype(np.float64) * 1e3, "x": a[:, 0], "y": a[:, 1], "p": a[:, 2]}
        _check_times(cols["t"], str(path))
        return _check_coords(cols, self.sensor, str(path))


class ArraysReader(Reader):
    """One split of a user's ``.npz`` (validated by :func:`read_npz`), held in memory."""

    def __init__(self, path: Path, split: str, cols: dict, counts, labels, sensor,
                 time_unit: str = "us"):
        self.path, self.where, self.time_unit = path, f"{path} ({split})", time_unit
        self.cols, self.labels, self.sensor = cols, labels, tuple(sensor)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def files(self) -> list[Path]:
        return [self.path]

    def options(self) -> dict:
        return {"time_unit": self.time_unit}

    def read(self, rows: Sequence[int]) -> list[dict[str, np.ndarray]]:
        o = self.offsets
        return [{k: v[o[r] : o[r + 1]] for k, v in self.cols.items()} for r in rows]


NPZ_EXAMPLE = (
    "np.savez(path, t_train=..., unit_train=..., counts_train=..., labels_train=..., "
    "<the same for _test>, sensor_size=[C])"
)


def _is_npy(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(6) == b"\x93NUMPY"


def _npz_member(f, key: str, path: Path) -> np.ndarray:
    """Member ``key`` of the open .npz ``f``; a damaged member (bad CRC, bad deflate data, a
    truncated or garbled .npy header) is one line naming it, as ``dataset=arrays`` says."""
    member = f"{key}.npy" if f"{key}.npy" in f.zip.namelist() else key
    member = member if member.isprintable() else repr(member)  # a garbled name: one line
    try:
        return f[key]
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise  # "... without pickle": said below, with how to save the file
        raise EventDataError(f"{path}: member {member} is corrupt ({first_line(e)})") from None
    except MemoryError:
        raise EventDataError(f"{path}: member {member} is too large to load into memory") from None
    except Exception as e:  # BadZipFile, zlib.error, EOFError, TokenError, NotImplementedError...
        raise EventDataError(f"{path}: member {member} is corrupt ({first_line(e)})") from None


def npz_sensor(path: str | os.PathLike) -> tuple[int, ...] | None:
    """The ``sensor_size`` of a :func:`read_npz` file, reading that member alone (a start-up
    check; None if it cannot be read: :func:`read_npz` then says why)."""
    try:
        with np.load(os.path.expanduser(str(path)), allow_pickle=False) as f:
            raw = np.asarray(f["sensor_size"])
    except Exception:  # noqa: BLE001 - any damage is read_npz's to report, in its words
        return None
    return checked_sensor(path, raw)


def npz_labels(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The ``labels_<split>`` of a :func:`read_npz` file, reading those members alone (a
    start-up check; None if they cannot be read: :func:`read_npz` then says why)."""
    try:
        with np.load(os.path.expanduser(str(path)), allow_pickle=False) as f:
            return {s: _check_labels(np.asarray(f[f"labels_{s}"]), f"{path} (labels_{s})")
                    for s in ("train", "test")}
    except Exception:  # noqa: BLE001 - any damage is read_npz's to report, in its words
        return None


def checked_sensor(path: Any, sensor_size: Any) -> tuple[int, ...]:
    """A file's ``sensor_size``: ``[C]`` or ``[W, H, P]``, positive integers."""
    sensor = np.asarray(sensor_size).reshape(-1)
    if len(sensor) not in (1, 3) or not np.issubdtype(sensor.dtype, np.integer) or (
            sensor.min() < 1):
        raise EventDataError(
            f"{path}: sensor_size={sensor.tolist()} is invalid: must be [C] for (t, unit) "
            "events or [W, H, P] for (t, x, y, p) events, positive integers"
        )
    return tuple(int(v) for v in sensor)


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
    check_time_unit(time_unit)
    path = Path(os.path.expanduser(str(path)))
    if path.is_file() and not zipfile.is_zipfile(path) and not _is_npy(path):
        # np.load would try it as a pickle and say "contains pickled (object) data"
        raise EventDataError(f"{path} is not an .npz (not a zip archive); {NPZ_EXAMPLE}")
    try:
        f = np.load(path, allow_pickle=False)
        single = isinstance(f, np.ndarray)  # a single .npy array: no .files, no context manager
        if not single:
            with f:
                arrays = {k: _npz_member(f, k, path) for k in f.files}
    except FileNotFoundError:
        raise EventDataError(f"dataset.path={path}: no such file") from None
    except EventDataError:
        raise
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, UnicodeDecodeError,
            RuntimeError) as e:  # a damaged zip directory (members: _npz_member)
        raise EventDataError(
            f"{path} is not a readable .npz: its zip archive is corrupt ({first_line(e)})"
        ) from None
    except (OSError, ValueError, EOFError) as e:
        raise EventDataError(
            f"{path} is not a readable .npz without pickle ({first_line(e)}); {NPZ_EXAMPLE}"
        ) from None
    if single:
        raise EventDataError(f"{path} is a single .npy array, not an .npz; {NPZ_EXAMPLE}")
    if "sensor_size" not in arrays:
        raise EventDataError(f"{path} is missing sensor_size ([C] or [W, H, P]); {NPZ_EXAMPLE}")
    sensor = np.asarray(checked_sensor(path, arrays["sensor_size"]))
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
        if counts.min() < 0:  # (it said "sums to 2072 events ... but t has 2072")
            raise EventDataError(
                f"{path}: counts_{split} has a negative count ({counts.min()}, sample "
                f"{int(np.argmin(counts))}); counts are the events of each sample, >= 0"
            )
        if counts.sum() != n_events:
            raise EventDataError(
                f"{path}: counts_{split} sums to {counts.sum()} events (min {counts.min()}) but "
                f"t_{split} has {n_events}; counts are the events of each sample"
            )
        t = cols["t"].astype(np.float64) * TIME_UNITS[time_unit]
        sid = np.repeat(np.arange(len(counts)), counts)
        bad = np.flatnonzero(np.isfinite(t) & (t < 0))  # (-inf: dropped, as NaN and +inf)
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
                                  sensor.tolist(), time_unit)
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
