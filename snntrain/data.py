"""Datasets and the input pipeline.

A dataset is a :class:`Splits` of three random-access sources (``train``, ``val``, ``test``),
each with ``len(source)`` and ``source[indices] -> (x_Bx..., y_B)``; images are float32 in
[0, 1] with shape ``N x H x W x C`` (rate coding reads pixels as spike probabilities). Sources
held in memory are numpy arrays (:class:`Arrays`, uint8 pixels are scaled on read); datasets too
large for memory are read from tfds's array_record files by index, a batch at a time
(:class:`snntrain.tfds_data.Records`). ``val`` is always carved from train by seeded indices,
so model selection never touches ``test``. Sources, :class:`Splits` and the dataset errors are
defined in :mod:`snntrain.sources` (shared with :mod:`snntrain.tfds_data`) and re-exported here.

Loaders (``conf/dataset/<name>.yaml`` ↔ :data:`LOADERS`): ``digits`` (scikit-learn, offline),
``mnist``, ``fashion_mnist``, ``kmnist``, ``emnist_letters``, ``cifar10``, ``svhn`` and any other
tfds image classification dataset (``tfds``) through ``tfds.data_source`` — no TensorFlow needed
to read a prepared dataset; loaded by :mod:`snntrain.tfds_data` — ``arrays``, a user's
``.npz`` file, and the event datasets of :mod:`snntrain.events` (``shd``, ``ssc``, ``nmnist``,
``dvs_gesture``, ``events``). A dataset that is missing, cannot be downloaded (no network:
detected in seconds, not after tfds's 3-minute retry loop) or needs TensorFlow to prepare
raises a one-line :class:`DatasetError` (a ``ValueError``) that says how to fix it;
``python -m snntrain.data prepare NAME`` prepares one ahead of time.

The pipeline (:func:`batches`, reading the rows of :func:`batch_plan`) is index based and
therefore resumable: the order of epoch ``e`` is ``permutation(seed, e)``, and batch ``k`` of it
is rows ``order[k*B:(k+1)*B]``. Every batch has exactly ``B`` rows; the last partial batch of an
epoch is padded (repeating its first row) and carries ``mask_B`` (1 for real rows, 0 for
padding) so that losses and metrics ignore the padding, no example is dropped, and no new shape
is ever compiled. A source whose reads depend on the epoch (augmentation) defines
``at_epoch(seed, epoch) -> source``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import logging
import math
import os
import queue
import sys
import threading
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snntrain import events, tfds_data
from snntrain.errors import ConfigError
from snntrain.registry import Registry
from snntrain.sources import (  # noqa: F401 - re-exported: the names callers know from here
    TEST_SEED,
    Arrays,
    BadArrays,
    DatasetError,
    NotPrepared,
    Source,
    Splits,
    TensorFlowMissing,
    UnknownDataset,
    class_count,
    first_line,
    make_splits,
    n_classes_of,
    split_indices,
    split_off,
    take,
    to_unit,
)
from snntrain.tfds_data import TFDS_DATASETS  # noqa: F401 - re-exported


def from_arrays(
    name: str, x_train, y_train, x_test, y_test, n_classes: int, val_fraction: float, seed: int
) -> Splits:
    """Build :class:`Splits` from in-memory arrays, carving ``val`` from train with ``seed``."""
    return make_splits(
        name,
        Arrays(x_train, y_train),
        Arrays(x_test, y_test),
        x_train.shape[1:],
        n_classes,
        val_fraction,
        seed,
    )


# ---- digits -----------------------------------------------------------------------------


def load_digits(val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """scikit-learn's bundled 8x8 digits (1797 images, offline).

    A fixed 20% test split (seed :data:`TEST_SEED`, the same for every run), then a
    ``val_fraction`` of the rest, carved with the run ``seed``. Pixels 0..16 are scaled to [0, 1].
    """
    from sklearn.datasets import load_digits as sk_load_digits

    raw = sk_load_digits()
    x = (raw.data.reshape(-1, 8, 8, 1) / 16.0).astype(np.float32)
    y = raw.target.astype(np.int32)
    (x_train, y_train), (x_test, y_test) = split_off(x, y, test_fraction, TEST_SEED)
    return from_arrays("digits", x_train, y_train, x_test, y_test, 10, val_fraction, seed)


# ---- a user's arrays --------------------------------------------------------------------


def _check_images(x: np.ndarray, key: str, path: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or 0 in x.shape[1:]:
        raise BadArrays(f"{path}: {key} has shape {x.shape}; expected N x H x W or N x H x W x C")
    if x.shape[1] <= 4 < min(x.shape[2:]):  # N x C x H x W would be read as H=C, C=W
        raise BadArrays(
            f"{path}: {key} has shape {x.shape}, which looks channels-first (N x C x H x W); "
            f"store N x H x W x C (np.moveaxis({key}, 1, -1))"
        )
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise BadArrays(
            f"{path}: {key} has dtype {x.dtype}; expected uint8 (0..255) or float in [0, 1]"
        )
    finite = np.isfinite(x)
    if not finite.all():
        raise BadArrays(
            f"{path}: {key} has {int((~finite).sum())} NaN/Inf values (the first in image "
            f"{int(np.argwhere(~finite)[0][0])}); float images must be finite, in [0, 1] (or "
            "save uint8 0..255)"
        )
    if x.size and not (x.min() >= 0.0 and x.max() <= 1.0):
        out = int(((x < 0) | (x > 1)).sum())  # (repr: 1.0000001 printed as 1 read as valid)
        raise BadArrays(
            f"{path}: {key} values span {float(x.min())!r}..{float(x.max())!r} ({out} outside "
            "[0, 1]); float images must be in [0, 1] (np.clip(x, 0, 1), or save uint8 0..255)"
        )
    return x.astype(np.float32, copy=False)


def _check_labels_array(y: np.ndarray, key: str, path: str) -> np.ndarray:
    if y.ndim != 1:
        # a column (N, 1) is indices: argmax of it would make every label 0
        hint = ("y.ravel()" if y.ndim == 2 and y.shape[1] == 1 else "one-hot? y.argmax(-1)")
        raise BadArrays(
            f"{path}: {key} has shape {y.shape}; expected class indices of shape (N,) ({hint})"
        )
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise BadArrays(
            f"{path}: {key} has dtype {y.dtype}; labels must be integers (y.astype(int))"
        )
    return y.astype(np.int64)


def _check_npz(path: str, keys: tuple[str, ...], load: bool = True
               ) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` at ``path``, each member's header checked against
    the bytes it holds before anything is allocated; any damage is one :class:`BadArrays`
    line naming the file and the member. ``load=False``: only that the file is an ``.npz``
    holding ``keys`` (its zip directory is read, no member); returns ``{}``."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except FileNotFoundError:
        raise BadArrays(f"dataset.path={path}: no such file") from None
    except OSError as e:
        raise BadArrays(f"{path} is not a readable .npz file ({first_line(e)})") from None
    if magic == b"\x93NUMPY":
        raise BadArrays(
            f"{path} is a single .npy array, not an .npz with x_train, y_train, "
            "x_test, y_test (np.savez(path, x_train=..., ...))"
        )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise BadArrays(
            f"{path} is not a readable .npz file (truncated or not a zip archive: "
            f"{first_line(e)})"
        ) from None
    with archive:
        members = {n[:-4] if n.endswith(".npy") else n: n for n in archive.namelist()}
        missing = [k for k in keys if k not in members]
        if missing:
            raise BadArrays(
                f"{path} is missing {', '.join(missing)}; it has "
                f"{', '.join(members) or 'no arrays'}"
            )
        return {k: _check_member(archive, members[k], path) for k in keys} if load else {}


def _check_member(archive: zipfile.ZipFile, member: str, path: str) -> np.ndarray:
    where = f"{path}: member {member}"
    size = archive.getinfo(member).file_size
    try:
        with archive.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is not None:
                shape, _, dtype = read_header(fp)
                if dtype.hasobject:
                    raise BadArrays(
                        f"{where} holds Python objects (samples of different shapes?), which "
                        "are not read (pickle); pad or crop every sample to one shape and save "
                        "one numeric N x H x W [x C] array"
                    )
                claimed = math.prod(shape) * dtype.itemsize
                if fp.tell() + claimed > size:
                    raise BadArrays(
                        f"{where} claims shape {shape} of {dtype} ({claimed:,} bytes) but "
                        f"holds {size - fp.tell():,} bytes: the file is truncated or corrupt"
                    )
        with archive.open(member) as fp:
            return np.lib.format.read_array(fp, allow_pickle=False)
    except BadArrays:
        raise
    except MemoryError:
        raise BadArrays(f"{where} is too large to load into memory") from None
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise BadArrays(
                f"{where}: cannot read it without pickle ({first_line(e)}); save "
                "numeric arrays with np.savez"
            ) from None
        raise BadArrays(f"{where} is not a .npy array ({first_line(e)})") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
        raise BadArrays(f"{where} is corrupt ({first_line(e)})") from None


ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


def check_arrays_file(path: str | None, n_classes: Any = None) -> None:
    """``dataset=arrays``' file at start-up, before the run directory exists: every check of
    :func:`load_arrays` (it said x and y of different lengths, float pixels outside [0, 1],
    float or negative labels after the run directory existed; :func:`load_arrays` says when
    no path is given)."""
    if path not in (None, "", "???"):
        _checked_arrays(os.path.expanduser(str(path)), n_classes, note=False)


def _checked_arrays(path: str, n_classes: Any, note: bool = True
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """The images and labels of each split of the ``.npz`` at ``path``, and the class count;
    raises :class:`BadArrays` naming what is wrong."""
    xs, ys = _read_arrays(path)
    k = class_count(ys, n_classes, {s: f"{path} (y_{s})" for s in ys}, BadArrays, note=note)
    return xs, ys, k


# The last file read and checked, by its name, size and times: the start-up's check and the
# run in the same process read it once (a large file was read twice).
_LAST_READ: dict[tuple, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = {}


def _read_arrays(path: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The checked images and labels of each split of the ``.npz`` at ``path``."""
    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    except OSError:
        key = None
    if key is not None and key in _LAST_READ:
        return _LAST_READ[key]
    arrays = _check_npz(path, ARRAY_KEYS)
    xs = {s: _check_images(arrays[f"x_{s}"], f"x_{s}", path) for s in ("train", "test")}
    ys = {s: _check_labels_array(arrays[f"y_{s}"], f"y_{s}", path) for s in ("train", "test")}
    for s in ("train", "test"):
        if len(xs[s]) != len(ys[s]):
            raise BadArrays(f"{path}: x_{s} has {len(xs[s])} images but y_{s} {len(ys[s])} labels")
        if not len(ys[s]):
            raise BadArrays(f"{path}: the {s} split is empty")
    if xs["train"].shape[1:] != xs["test"].shape[1:]:
        raise BadArrays(
            f"{path}: x_train images are {xs['train'].shape[1:]} but x_test {xs['test'].shape[1:]}"
        )
    if xs["train"].dtype != xs["test"].dtype:
        raise BadArrays(
            f"{path}: x_train is {xs['train'].dtype} but x_test {xs['test'].dtype}; use one dtype"
        )
    _LAST_READ.clear()
    if key is not None:
        _LAST_READ[key] = xs, ys
    return xs, ys


def load_arrays(
    path: str | None = None,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    n_classes: int | None = None,
    normalize: str = "unit",
) -> Splits:
    """A user's ``.npz`` with ``x_train, y_train, x_test, y_test``.

    Images are ``N x H x W`` or ``N x H x W x C``, uint8 0..255 (scaled on read) or float in
    [0, 1]; labels are integers in ``0..n_classes-1`` (``n_classes`` defaults to the largest
    label + 1). ``val_fraction`` of train is carved with ``seed``. Each malformed file raises
    :class:`BadArrays` naming the problem.
    """
    if path in (None, "", "???"):
        raise BadArrays(
            "dataset.path is required with dataset=arrays, e.g. "
            "dataset=arrays dataset.path=/data/mine.npz"
        )
    if normalize != "unit":
        raise DatasetError(f"dataset.normalize={normalize!r} is invalid: must be 'unit'")
    path = os.path.expanduser(str(path))
    xs, ys, n_classes = _checked_arrays(path, n_classes)
    top = float(xs["train"].max(initial=0))
    if top == 0:  # (said as binary images before, whatever the dtype: silent for float zeros)
        logging.getLogger(__name__).info(
            "note: %s: every pixel of x_train is 0: the rate and direct encoders give the "
            "network no input (latency with threshold 0 fires every pixel at the last step)",
            path)
    elif xs["train"].dtype == np.uint8 and top <= 1:
        logging.getLogger(__name__).info(  # (a tester's run on near-zero input, without a word)
            "note: %s: x_train is uint8 with values 0 and 1 only, read as pixels k/255 (at "
            "most 0.004: the rate code all but never spikes); store binary images as uint8 "
            "0/255 or float32 0.0/1.0", path)
    name = f"arrays:{Path(path).name}"
    return from_arrays(
        name,
        xs["train"],
        ys["train"].astype(np.int32),
        xs["test"],
        ys["test"].astype(np.int32),
        n_classes,
        val_fraction,
        seed,
    )


# ---- registry ---------------------------------------------------------------------------

LOADERS: Registry[Any] = Registry(
    "dataset",
    {
        "digits": load_digits,
        **{
            k: functools.partial(tfds_data.load_tfds, display_name=k, **v)
            for k, v in TFDS_DATASETS.items()
        },
        "tfds": tfds_data.load_tfds,
        "arrays": load_arrays,
        **events.LOADERS,
    },
    error=DatasetError,
    hint=" (any other tfds dataset: dataset=tfds dataset.tfds_name=<name>)",
    internal=("display_name",),
)


def load(name: str, **kwargs: Any) -> Splits:
    """Load the dataset of ``conf/dataset/<name>.yaml`` (its keys are ``kwargs``)."""
    return LOADERS.create(name, **kwargs)


def from_config(cfg: Any, seed: int) -> Splits:
    """The dataset of a ``dataset`` config group (``name`` + the loader's keys), with the run
    ``seed`` (which carves ``val`` from train)."""
    return LOADERS.build(cfg, seed=seed)


# ---- the pipeline -----------------------------------------------------------------------


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The order of examples in ``epoch``: a permutation seeded by ``(seed, epoch)``."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_plan(
    n: int, batch_size: int, *, seed: int, epoch: int, start: int = 0, shuffle: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The rows and masks of batches ``start, start + 1, ...`` of ``epoch``.

    Batch ``k`` is rows ``order[k*B:(k+1)*B]`` of ``order = epoch_order(n, seed, epoch)``; the
    last, partial batch is padded to ``B`` rows by repeating its first row, and its mask is 1
    for real rows and 0 for padding. This is the one batching rule of snntrain: the host
    pipeline (:func:`batches`) and the on-device epoch read the same rows.

    Returns:
      ``(idx_SxB, mask_SxB)``: int32 row indices and float32 masks, ``S = steps - start``.
    """
    steps = steps_per_epoch(n, batch_size)
    order = epoch_order(n, seed, epoch, shuffle)
    if n:
        pad = np.full(steps * batch_size - n, order[(steps - 1) * batch_size])
        order = np.concatenate([order, pad])
    idx_SxB = order.reshape(steps, batch_size)[start:].astype(np.int32)
    mask_SxB = (np.arange(steps * batch_size) < n).astype(np.float32)
    return idx_SxB, mask_SxB.reshape(steps, batch_size)[start:]


def fused_arrays(source: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x_Nx..., y_N)``: a training split as the arrays ``trainer.fused_epoch`` keeps on the
    device, gathered there by the batch plan's indices: images as float32 in [0, 1], binned
    events as their stored counts (the step casts them; the same values as :func:`batches`
    gives). A split that cannot be held there is a one-line :class:`ConfigError` naming why."""
    if isinstance(source, Arrays):
        return to_unit(source.x), np.asarray(source.y, np.int32)
    fix = "or set trainer.fused_epoch=false"
    if isinstance(source, events.Frames):
        if source.augment is not None and source.augment.active:
            raise ConfigError(f"trainer.fused_epoch=true keeps {name}'s binned samples on the "
                              "device, so it cannot draw dataset.augment anew each epoch: set "
                              f"the dataset.augment options to 0 {fix}")
        if isinstance(source.x, np.memmap):
            raise ConfigError(f"trainer.fused_epoch=true needs {name} in memory; it is read "
                              f"from its cache file (dataset.in_memory): set "
                              f"dataset.in_memory=true {fix}")
        return source.x[source.rows], np.asarray(source.y[source.rows], np.int32)
    raise ConfigError(f"trainer.fused_epoch=true needs {name} in memory; its training split is "
                      f"read while training ({type(source).__name__}): set "
                      f"dataset.in_memory=true {fix}")


def batches(
    source: Source,
    batch_size: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    start: int = 0,
    shuffle: bool = True,
    rows: slice | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield the batches of one epoch from batch index ``start`` on (:func:`batch_plan`).

    Each batch is ``{"x": x_Bx..., "y": y_B, "mask": mask_B, "index": index_B}`` with exactly
    ``batch_size`` rows; ``index`` is each row's position in the global batch (used to derive
    per-example random keys). ``rows`` selects this process's slice of every global batch
    (multi-host data loading). Sources read from disk (``source.prefetch``) are read ahead in
    a background thread; the batches are the same either way.
    """
    if hasattr(source, "at_epoch"):  # sources whose reads depend on the epoch (augmentation)
        source = source.at_epoch(seed, epoch)
    plan = batch_plan(len(source), batch_size, seed=seed, epoch=epoch, start=start, shuffle=shuffle)
    gen = _read_batches(source, *plan, rows or slice(0, batch_size))
    return _in_background(gen) if getattr(source, "prefetch", False) else gen


def _read_batches(source: Source, idx_SxB: np.ndarray, mask_SxB: np.ndarray, rows: slice):
    index_B = np.arange(idx_SxB.shape[1], dtype=np.int32)[rows]
    for idx_B, mask_B in zip(idx_SxB, mask_SxB, strict=True):
        x, y = source[idx_B[rows]]
        yield {
            "x": np.asarray(x, np.float32),
            "y": np.asarray(y, np.int32),
            "mask": mask_B[rows],
            "index": index_B,
        }


def _in_background(gen: Iterator, size: int = 4) -> Iterator:
    """Run ``gen`` in a daemon thread, ``size`` items ahead; errors re-raise in the consumer.

    Stopping early (``break``, ``close()``, garbage collection) stops the thread."""
    q: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in gen:
                if not put(item):
                    return
            put(end)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put(_Failure(e))

    thread = threading.Thread(target=work, daemon=True, name="snntrain-data")
    thread.start()
    try:
        while (item := q.get()) is not end:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()


@dataclasses.dataclass
class _Failure:
    error: BaseException


# ---- python -m snntrain.data prepare NAME -----------------------------------------------


_NOTHING_TO_PREPARE = {
    "digits": "it ships with scikit-learn (python -m snntrain trains on it offline)",
    "arrays": "it reads your own .npz (dataset.path=<file>.npz)",
    "events": "it reads your own .npz of events (dataset.path=<file>.npz)",
}


def _not_a_config(name: str, error: DatasetError) -> str:
    """tfds's unknown-name error, with the dataset configs a misspelt name may have meant."""
    ours = [*TFDS_DATASETS, *events.DATASETS]
    if name in ours or not isinstance(error, UnknownDataset):
        return str(error)
    close = difflib.get_close_matches(name, [*ours, *_NOTHING_TO_PREPARE], n=3)
    if close:
        return (f"{name} is not a dataset config: did you mean {', '.join(close)}? (valid: "
                f"{', '.join(ours)}, or any tfds name)")
    return f"{name} is not a dataset config ({', '.join(ours)}) and {error.detail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snntrain.data",
        description="Prepare tfds datasets ahead of time, e.g. on a login node with internet "
        "for compute nodes without it (needs TensorFlow: " + tfds_data.TF_EXTRA + ").",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="download and prepare datasets as array_record")
    p.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help=f"a dataset config ({', '.join([*TFDS_DATASETS, *events.DATASETS])}) or "
        "any tfds name",
    )
    p.add_argument(
        "--data_dir",
        default=None,
        help="tfds data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets); for "
        "event datasets Tonic's save_to directory (default: ./data)",
    )
    args = parser.parse_args(argv)
    if args.data_dir and os.path.isfile(os.path.expanduser(args.data_dir)):
        print(f"snntrain.data: error: --data_dir {args.data_dir} is a file, not a directory",
              file=sys.stderr)  # (it said the dataset was "not prepared in" it)
        return 2
    from snntrain.progress import console_notes

    console_notes()  # the download and decoding notes
    for name in args.names:
        if name in events.DATASETS:  # event datasets: Tonic's layout, see snntrain.events
            try:
                print(events.prepare(name, args.data_dir))
            except DatasetError as e:
                print(f"snntrain.data: error: {e}", file=sys.stderr)
                return 2
            continue
        if name in _NOTHING_TO_PREPARE:
            print(f"{name}: nothing to prepare: {_NOTHING_TO_PREPARE[name]}")
            continue
        try:
            builder = tfds_data.prepare(name, args.data_dir)
        except DatasetError as e:
            print(f"snntrain.data: error: {_not_a_config(name, e)}", file=sys.stderr)
            return 2
        sizes = ", ".join(f"{k} {v.num_examples}" for k, v in builder.info.splits.items())
        print(
            f"{name}: prepared in {builder.data_dir} ({sizes}). Without internet elsewhere: "
            f"copy {tfds_data.data_root(builder)} there and set dataset.data_dir=<copy>"
        )
    return 0


if __name__ == "__main__":
    from snntrain import hostenv

    hostenv.exit_when_stuck_enabled = True  # a command line: a signal may end it
    hostenv.catch_stop_signals(hostenv.stop_in_one_line("rerun the command to go on"))
    sys.exit(main())
