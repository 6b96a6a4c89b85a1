"""tensorflow-datasets: tfds image classification datasets as :class:`~snntrain.sources.Splits`.

:func:`load_tfds` reads a prepared dataset through ``tfds.data_source`` (array_record files,
random access, no TensorFlow needed) either into memory (decoded once, cached as ``.npz`` next to
the dataset) or a batch at a time from disk (:class:`Records`). A dataset that is missing is
downloaded and prepared (that step needs TensorFlow); without network the failure comes in
seconds, not after tfds's minutes of retries, and every failure is a one-line
:class:`~snntrain.sources.DatasetError` that says how to fix it. :func:`prepare` prepares a
dataset ahead of time; its command line is ``python -m snntrain.data prepare NAME``.
:data:`TFDS_DATASETS` lists the tfds datasets with a config of their own; the dataset registry
(:data:`~snntrain.data.LOADERS`) and the input pipeline live in :mod:`snntrain.data`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import importlib.util
import json
import logging
import math
import os
import socket
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snntrain.sources import (
    TEST_SEED,
    Arrays,
    DatasetError,
    NotPrepared,
    Splits,
    TensorFlowMissing,
    UnknownDataset,
    carve_test,
    first_line,
    make_splits,
    take,
    to_unit,
)

# `in_memory: auto` loads a tfds dataset into RAM when its uint8 pixels take less than this.
IN_MEMORY_MAX_BYTES = 2 * 2**30
# Where tfds downloads most datasets from; reached in ms when online (see `network_problem`).
PROBE_ADDRESS = ("storage.googleapis.com", 443)
log = logging.getLogger(__name__)
TF_EXTRA = "pip install 'snntrain[tfds]' (in a checkout: pip install -e '.[tfds]')"

# The tfds datasets with a config of their own (conf/dataset/<name>.yaml repeats these values).
TFDS_DATASETS: dict[str, dict[str, Any]] = {
    "mnist": dict(tfds_name="mnist", image_shape=(28, 28, 1), n_classes=10),
    "fashion_mnist": dict(tfds_name="fashion_mnist", image_shape=(28, 28, 1), n_classes=10),
    "kmnist": dict(tfds_name="kmnist", image_shape=(28, 28, 1), n_classes=10),
    # tfds stores EMNIST letters as labels 1..26 (of 37 classes) and images transposed.
    "emnist_letters": dict(
        tfds_name="emnist/letters",
        image_shape=(28, 28, 1),
        n_classes=26,
        label_offset=-1,
        transpose=True,
    ),
    "cifar10": dict(tfds_name="cifar10", image_shape=(32, 32, 3), n_classes=10),
    "svhn": dict(tfds_name="svhn_cropped", image_shape=(32, 32, 3), n_classes=10),
}


# ---- sources read by index --------------------------------------------------------------


def _read_records(records: Any, keys: list[int]) -> Sequence[dict[str, Any]]:
    try:
        return records.__getitems__(keys)  # array_record reads a batch in parallel
    except (AttributeError, TypeError):  # e.g. tfds's mock, whose __getitems__ is unbound
        return [records[k] for k in keys]


@dataclasses.dataclass(frozen=True, eq=False)
class Records:
    """A tfds data source (``tfds.data_source``) read by index, one batch at a time.

    Only the batch being read is in memory; :func:`snntrain.data.batches` reads ahead in a
    background thread (``prefetch``). ``indices`` are the rows of ``records`` this source
    exposes (a train/val view shares the same ``records``).
    """

    records: Any
    indices: np.ndarray
    name: str
    image_key: str
    label_key: str
    image_shape: tuple[int, int, int]
    n_classes: int
    label_offset: int = 0
    transpose: bool = False
    prefetch = True

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``idx`` as stored: uint8 ``x_BxHxWxC`` and int32 labels (offset, checked)."""
        recs = _read_records(self.records, [int(i) for i in self.indices[idx]])
        x = _fit_images([np.asarray(r[self.image_key]) for r in recs], self)
        y = np.asarray([r[self.label_key] for r in recs], np.int64)
        if y.shape != (len(recs),):
            raise DatasetError(
                f"{self.name}: each {self.label_key!r} has shape {y.shape[1:]}; snntrain needs "
                "one class index per image (set dataset.label_key)"
            )
        return x, _check_labels(y + self.label_offset, self)

    def __getitem__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.read(idx)
        return to_unit(x), y

    def subset(self, idx: np.ndarray) -> Records:
        """The rows ``idx`` of this source (sharing ``records``)."""
        return dataclasses.replace(self, indices=self.indices[idx])

    def load(self, chunk: int = 1024) -> Arrays:
        """Read the whole source into memory (uint8 pixels)."""
        x = np.empty((len(self), *self.image_shape), np.uint8)
        y = np.empty(len(self), np.int32)
        for lo in range(0, len(self), chunk):
            hi = min(lo + chunk, len(self))
            x[lo:hi], y[lo:hi] = self.read(np.arange(lo, hi))
        return Arrays(x, y)


def _fit_images(images: list[np.ndarray], src: Records) -> np.ndarray:
    """Stack one batch of stored images into ``BxHxWxC`` uint8 of ``src.image_shape``."""
    h, w, c = src.image_shape
    out = []
    for im in images:
        im = im[..., None] if im.ndim == 2 else im
        if src.transpose:
            im = im.swapaxes(0, 1)
        if im.shape[:2] != (h, w):
            from PIL import Image

            im = np.asarray(
                Image.fromarray(im.squeeze(-1) if im.shape[-1] == 1 else im).resize(
                    (w, h), Image.BILINEAR
                )
            ).reshape(h, w, -1)
        out.append(im)
    x = np.stack(out)
    if x.shape[1:] != src.image_shape or x.dtype != np.uint8:
        raise DatasetError(
            f"{src.name}: images are {x.dtype} {x.shape[1:]}, expected uint8 "
            f"{src.image_shape} (set dataset.image_shape or dataset.resize)"
        )
    return x


def _check_labels(y: np.ndarray, src: Records) -> np.ndarray:
    bad = (y < 0) | (y >= src.n_classes)
    if bad.any():
        raise DatasetError(
            f"{src.name}: label {int(y[bad][0])} (stored {int(y[bad][0]) - src.label_offset}) is "
            f"outside 0..{src.n_classes - 1} after dataset.label_offset={src.label_offset}; "
            "check dataset.n_classes and dataset.label_offset"
        )
    return y.astype(np.int32)


# ---- tensorflow-datasets ----------------------------------------------------------------


def network_problem(timeout: float = 3.0) -> str | None:
    """``None`` if the internet (or the configured https proxy) answers within ``timeout``
    seconds, else why not. Offline, tfds would retry each download for ~3.5 minutes."""
    host, port = PROBE_ADDRESS
    proxy = urllib.request.getproxies().get("https")
    if proxy:
        url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = url.hostname or host, url.port or (443 if url.scheme == "https" else 80)
    result: list[str | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(None)
        except OSError as e:
            result.append(f"cannot reach {host}:{port}: {e.strerror or e}")

    thread = threading.Thread(target=attempt, daemon=True)  # bounds a hanging DNS lookup too
    thread.start()
    thread.join(timeout + 1.0)
    return result[0] if result else f"cannot reach {host}:{port} within {timeout:g} s"


def _tensorflow_off_gpu(load: bool = False) -> None:
    """Keep TensorFlow off the GPUs (it only feeds data; JAX owns them) if it is loaded, or
    with ``load`` if it is installed (before tfds imports it to prepare a dataset)."""
    if load and "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow"):
        import tensorflow  # noqa: F401
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        # RuntimeError: TensorFlow already initialised its devices.
        with contextlib.suppress(RuntimeError, ValueError, AttributeError):
            tf.config.set_visible_devices([], "GPU")


def _builder(tfds_name: str, data_dir: str | None, name: str):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(tfds_name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:  # its message lists all ~250 datasets
        base = tfds_name.split("/")[0].split(":")[0]
        close = difflib.get_close_matches(
            base, tfds.list_builders(with_community_datasets=False), n=3
        )
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else ("see https://www.tensorflow.org/datasets/catalog")
        )
        raise UnknownDataset(name, f"tfds has no dataset {tfds_name!r}; {hint}") from None
    except Exception as e:  # noqa: BLE001 - bad config/version: report in one line
        raise DatasetError(f"{name}: tfds.builder({tfds_name!r}) failed: {first_line(e)}") from e


def _is_prepared(builder) -> bool:
    # tfds warns "Variant folder ... has no dataset_info.json" for a missing dataset, which
    # gets its own, clearer error here.
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        return builder.is_prepared()
    finally:
        absl.setLevel(level)


def _random_access(builder) -> bool:
    from tensorflow_datasets.core import file_adapters

    formats = file_adapters.FileFormat.with_random_access()
    return bool(builder.info.available_file_formats() & set(formats))


def data_root(builder) -> str:
    """The tfds data directory holding ``builder``'s ``<name>/[<config>/]<version>``."""
    variant, parts = Path(builder.data_dir), Path(builder.info.full_name).parts
    if variant.parts[-len(parts) :] == parts:
        return str(variant.parents[len(parts) - 1])
    return str(builder.data_dir_root)


def _prepare_cmd(name: str, root: str) -> str:
    return f"python -m snntrain.data prepare {name} --data_dir {root}"


def _not_prepared(name: str, root: str, looked: Any, problem: str | None = None,
                  fix: str | None = None) -> str:
    """Why ``name`` cannot be loaded: not in ``root`` (``looked`` there) and ``dataset.download``
    is false (no ``problem``), or there is no network (``problem``; ``fix``: what to do)."""
    if problem is None:
        return (f"{name} is not prepared in {root} (looked for {looked}) and "
                f"dataset.download=false. Run `{_prepare_cmd(name, root)}` (on a machine with "
                "internet, then copy the directory here), or set dataset.download=true")
    fix = fix or (f"on a machine with internet run `{_prepare_cmd(name, 'DIR')}`, copy DIR here "
                  "and set dataset.data_dir=<copy>")
    return (f"{name} is not prepared in {root} (looked for {looked}) and there is no network to "
            f"download it ({problem}): {fix}")


def unprepared(name: str, data_dir: str | None, download: bool) -> str | None:
    """Why the named tfds dataset (:data:`TFDS_DATASETS`) cannot be loaded, seen from the file
    system alone (no tfds import, which costs seconds): no ``dataset_info.json`` under
    ``<data_dir>/<tfds name>`` and no download (``download`` false, or no network); None if it
    may load. At start-up: before, this was refused after the run directory existed."""
    spec = TFDS_DATASETS.get(name)
    root = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    if spec is None or "://" in str(root):  # (a bucket: tfds reads it, this does not)
        return None
    base, _, version = spec["tfds_name"].partition(":")
    looked = Path(os.path.expanduser(str(root)), *base.split("/"), *([version] if version else []))
    # (<version>/ or <config>/<version>/ below it; glob follows a linked version directory,
    # which rglob does not)
    if any(next(looked.glob(p), None) for p in ("dataset_info.json", "*/dataset_info.json",
                                                 "*/*/dataset_info.json")):
        return None
    if not download:
        return _not_prepared(name, str(root), looked)
    problem = network_problem()
    return None if problem is None else _not_prepared(name, str(root), looked, problem=problem)


def _download_and_prepare(builder, name: str, cli: bool = False) -> None:
    """Download and prepare ``builder`` as array_record (random access without TensorFlow)."""
    root = data_root(builder)
    if not getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None) and (
        problem := network_problem()
    ):
        fix = f"run this on a machine with internet and copy {root} here" if cli else None
        raise NotPrepared(_not_prepared(name, root, builder.data_dir, problem=problem, fix=fix))
    _tensorflow_off_gpu(load=True)
    try:
        builder.download_and_prepare(file_format="array_record")
    except ImportError as e:
        if "tensorflow" not in str(e):
            raise DatasetError(f"preparing {name} in {root} failed: {first_line(e)}") from e
        raise TensorFlowMissing(
            f"preparing {name} needs TensorFlow, which is not installed: "
            f"{TF_EXTRA}; or prepare it elsewhere and copy {root}"
        ) from e
    except Exception as e:  # noqa: BLE001 - network, disk, checksum...: one line, not a trace
        raise DatasetError(f"preparing {name} in {root} failed: {first_line(e)}") from e


class _Columns:
    """Whole decoded splits (a dict of equal-length arrays) as a sequence of records."""

    def __init__(self, columns: dict[str, np.ndarray]):
        self.columns = columns

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[i] for k, v in self.columns.items()}


def _tfrecord_splits(builder, name: str, splits: list[str], in_memory: bool | str) -> list:
    """Splits of a dataset stored as tfrecord (``tfds.load``'s default), which only TensorFlow
    reads, and only in order: they are read whole, into memory."""
    copy = (
        f"prepare an array_record copy (no TensorFlow, streamable): "
        f"`{_prepare_cmd(name, 'OTHER_DIR')}`"
    )
    where = f"{name} in {data_root(builder)} is stored as tfrecord"
    if importlib.util.find_spec("tensorflow") is None:
        raise TensorFlowMissing(f"{where}, which needs TensorFlow to read: {TF_EXTRA}; or {copy}")
    if in_memory is False:
        raise DatasetError(f"{where}, which has no random access (dataset.in_memory=false): {copy}")
    import tensorflow_datasets as tfds

    _tensorflow_off_gpu(load=True)
    return [_Columns(tfds.as_numpy(builder.as_dataset(split=s, batch_size=-1))) for s in splits]


def _ready_builder(tfds_name: str, name: str, data_dir: str | None, download: bool):
    """A tfds builder whose data is prepared in a random-access format (or a one-line error)."""
    data_dir = os.path.expanduser(data_dir) if data_dir else None
    builder = _builder(tfds_name, data_dir, name)
    root = data_root(builder)
    if not _is_prepared(builder):
        if not download:
            raise NotPrepared(_not_prepared(name, root, builder.data_dir))
        _download_and_prepare(builder, name)
        builder = _builder(tfds_name, data_dir, name)  # re-read the info of the files written
    return builder


def _cache_path(builder, split: str, src: Records) -> Path:
    """The cache of ``split`` read as ``src`` reads it: keyed by everything that decides its
    arrays (another ``dataset.label_key`` or ``image_key`` loaded the earlier key's arrays)."""
    h, w, c = src.image_shape
    key = "".join(ch if ch.isalnum() else "_" for ch in split)
    key += f"_{h}x{w}x{c}_offset{src.label_offset}" + ("_transposed" if src.transpose else "")
    spec = json.dumps([split, src.image_key, src.label_key, [h, w, c], src.label_offset,
                       src.transpose])
    key += "_" + hashlib.sha256(spec.encode()).hexdigest()[:12]
    return Path(builder.data_dir) / "snntrain_cache" / f"{key}.npz"


def _in_memory(src: Records, builder, split: str, cache: bool) -> Arrays:
    """``src`` decoded into RAM, through an ``.npz`` cache in the tfds dataset's directory when
    writable (decoding PNGs takes ~0.2 ms per image; the cache loads in well under a second)."""
    path = _cache_path(builder, split, src) if cache and _is_prepared(builder) else None
    if path is not None and path.exists():
        cached = None
        try:
            with np.load(path, allow_pickle=False) as f:
                if f["x"].shape == (len(src), *src.image_shape) and f["y"].shape == (len(src),):
                    cached = Arrays(f["x"], f["y"])
        except (OSError, ValueError, KeyError):  # unreadable: rebuild it
            pass
        if cached is not None:  # (its labels checked as read: dataset.n_classes may have
            # changed since; outside the try, which took the refusal for an unreadable file
            # and decoded the whole split again before refusing it)
            return Arrays(cached.x, _check_labels(cached.y, src))
    where = f" (cached in {path.parent} for the next run)" if path is not None else ""
    log.info("%s: decoding %d %s images into memory%s", src.name, len(src), split, where)
    arrays = src.load()
    if path is not None:
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npz")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(tmp, x=arrays.x, y=arrays.y)
            os.replace(tmp, path)
        except OSError:  # read-only data_dir: fine, just slower next time
            tmp.unlink(missing_ok=True)
    return arrays


def load_tfds(
    tfds_name: str | None = None,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    data_dir: str | None = None,
    download: bool = True,
    in_memory: bool | str = "auto",
    image_shape: Sequence[int] | None = None,
    n_classes: int | None = None,
    label_offset: int = 0,
    transpose: bool = False,
    resize: Sequence[int] | None = None,
    train_split: str = "train",
    test_split: str | None = "test",
    test_fraction: float = 0.2,
    image_key: str | None = None,
    label_key: str | None = None,
    normalize: str = "unit",
    cache: bool = True,
    display_name: str | None = None,
) -> Splits:
    """A tfds image classification dataset through ``tfds.data_source`` (no TensorFlow to read).

    Args:
      tfds_name: the tfds name, e.g. ``"mnist"``, ``"emnist/letters"``, ``"cifar10:3.0.2"``.
      seed: carves ``val_fraction`` of train into ``val`` (the same rows in memory or not).
      data_dir: tfds's data directory (``None``: ``$TFDS_DATA_DIR`` or ~/tensorflow_datasets).
      download: download and prepare the dataset if it is not in ``data_dir``.
      in_memory: ``True`` decodes every image into RAM once (uint8); ``False`` reads each batch
        by index; ``"auto"``: in memory below :data:`IN_MEMORY_MAX_BYTES` of pixels.
      image_shape, n_classes: expected ``(H, W, C)`` and class count (``None``: from tfds).
      label_offset: added to stored labels (``-1`` maps EMNIST letters 1..26 to 0..25).
      transpose: swap H and W (EMNIST is stored transposed).
      resize: ``(H, W)`` to resize every image to (bilinear), for variable-size datasets.
      train_split, test_split: tfds split names; ``test_split=None`` carves ``test_fraction``
        of train as test with the fixed seed :data:`snntrain.sources.TEST_SEED`.
      image_key, label_key: feature names (``None``: tfds's ``supervised_keys``).
      normalize: ``"unit"``: pixels / 255, in [0, 1] (the only one rate coding can use).
      cache: keep the decoded in-memory arrays in ``snntrain_cache/`` inside the tfds
        dataset's directory for the next run (if writable).
    """
    name = display_name or tfds_name
    if tfds_name in (None, "", "???"):
        raise DatasetError(
            "dataset.tfds_name is required with dataset=tfds, e.g. "
            "dataset=tfds dataset.tfds_name=beans"
        )
    if normalize != "unit":
        raise DatasetError(
            f"dataset.normalize={normalize!r} is invalid: must be 'unit' "
            "(pixels / 255 in [0, 1], what the encoders expect)"
        )
    if in_memory not in (True, False, "auto"):
        raise DatasetError(
            f"dataset.in_memory={in_memory!r} is invalid: must be true, false or auto"
        )
    builder = _ready_builder(tfds_name, name, data_dir, download)
    features = builder.info.features
    keys = builder.info.supervised_keys or ("image", "label")
    image_key, label_key = image_key or keys[0], label_key or keys[1]
    for key in (image_key, label_key):
        if key not in features:
            raise DatasetError(
                f"{name} has no feature {key!r}; features: {', '.join(features)} "
                "(set dataset.image_key / dataset.label_key)"
            )
    stored = tuple(features[image_key].shape)
    stored = stored + (1,) if len(stored) == 2 else stored
    if transpose:
        stored = (stored[1], stored[0], *stored[2:])
    shape = (*map(int, resize), stored[-1]) if resize else stored
    if len(shape) != 3 or None in shape:
        raise DatasetError(
            f"{name}: images have shape {stored}; snntrain needs fixed-size "
            "HxWxC images: set dataset.resize=[H,W]"
        )
    if image_shape is not None and tuple(image_shape) != shape:
        raise DatasetError(
            f"{name}: dataset.image_shape={list(image_shape)} but the images are {list(shape)}"
        )
    n_classes = n_classes or getattr(features[label_key], "num_classes", None)
    if not n_classes:
        raise DatasetError(
            f"{name}: feature {label_key!r} is not a ClassLabel; set dataset.n_classes"
        )
    available = list(builder.info.splits)  # empty under tfds.testing.mock_data
    wanted = [s for s in (train_split, test_split) if s]
    for s in wanted:
        if available and any(p.split("[")[0].strip() not in available
                             for p in s.split("+")):  # (tfds' "train+validation" too)
            raise DatasetError(f"{name} has no split {s!r}; splits: {', '.join(available)}")
    try:
        if _is_prepared(builder) and not _random_access(builder):
            raw, in_memory = _tfrecord_splits(builder, name, wanted, in_memory), True
        else:  # (under tfds.testing.mock_data nothing is prepared but data sources work)
            raw = builder.as_data_source(split=wanted)
    except DatasetError:
        raise
    except Exception as e:  # noqa: BLE001
        raise DatasetError(f"{name}: reading {builder.data_dir} failed: {first_line(e)}") from e
    _tensorflow_off_gpu()
    whole = [
        Records(
            r,
            np.arange(len(r)),
            name,
            image_key,
            label_key,
            shape,
            int(n_classes),
            int(label_offset),
            bool(transpose),
        )
        for r in raw
    ]
    if in_memory == "auto":
        in_memory = sum(map(len, whole)) * math.prod(shape) < IN_MEMORY_MAX_BYTES
    if in_memory:
        whole = [_in_memory(r, builder, s, cache) for r, s in zip(whole, wanted, strict=True)]
    train = whole[0]
    if test_split:
        test = whole[1]
    else:
        rest, held = carve_test(len(train), test_fraction, TEST_SEED)
        train, test = take(train, rest), take(train, held)
    return make_splits(name, train, test, shape, n_classes, val_fraction, seed)


# ---- python -m snntrain.data prepare NAME -----------------------------------------------


def prepare(name: str, data_dir: str | None = None) -> Any:
    """Download and prepare a tfds dataset as array_record (what :func:`load_tfds` reads
    without TensorFlow, and can stream). Returns its tfds builder."""
    spec = TFDS_DATASETS.get(name, {"tfds_name": name})
    data_dir = os.path.expanduser(data_dir) if data_dir else None
    builder = _builder(spec["tfds_name"], data_dir, name)
    if not _is_prepared(builder):
        _download_and_prepare(builder, name, cli=True)
    elif not _random_access(builder):  # tfds converts formats in place only with Apache Beam
        raise DatasetError(
            f"{name} in {data_root(builder)} is stored as tfrecord (tfds.load's format), which "
            "snntrain reads only with TensorFlow and only into memory; for an array_record copy "
            f"choose another directory: `{_prepare_cmd(name, 'OTHER_DIR')}`"
        )
    return _builder(spec["tfds_name"], data_dir, name)
