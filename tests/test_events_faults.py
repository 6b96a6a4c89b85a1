"""Event-data faults found by testing with files in the real formats: each test failed before
its fix (silently wrong runs, tracebacks, leftover files, misleading messages)."""

import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import compose
from test_events import make_gesture, make_nmnist, make_npz, make_shd, write_hdf5

from snntrain import data, events
from snntrain.event_formats import EVENTS_EXTRA, NPZ_EXAMPLE, Reader

h5py = pytest.importorskip("h5py")


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def _all(source) -> np.ndarray:
    return source[np.arange(len(source))][0]


# ---- 1. the cache key holds every option that changes the binned tensor -----------------


def test_time_unit_keys_the_cache(tmp_path):
    """``dataset.time_unit=s`` after a run in us reused the us-binned cache."""
    make_npz(tmp_path / "cam.npz")
    kw = dict(path=str(tmp_path / "cam.npz"), T=5, dt_ms=50)
    us = data.load("events", **kw)
    s = data.load("events", **kw, time_unit="s")
    fresh = data.load("events", **kw, time_unit="s", cache=False)
    np.testing.assert_array_equal(_all(s.test), _all(fresh.test))
    assert _all(us.test).sum() == 300  # 0..100 ms: inside 5 x 50 ms
    assert _all(s.test).sum() < 300  # 0..1e5 s: mostly outside
    assert len(list((tmp_path / "snntrain_cache").glob("*.npy"))) == 4


def test_every_binning_option_changes_the_cache_key(tmp_path):
    make_npz(tmp_path / "cam.npz", sensor_size=np.array([8, 8, 2]),
             **{f"{k}_{s}": np.zeros(300, int) for k in ("x", "y", "p") for s in ("train", "test")},
             unit_train=None, unit_test=None)
    reader = _npz_reader(tmp_path / "cam.npz", "us")
    base = dict(T=4, dt_ms=None, origin="first", binary=False, downsample=None, polarity=True)
    changes = dict(T=5, dt_ms=10.0, origin="zero", binary=True, downsample=(4,), polarity=False)
    keys = {events._cache_key(reader, events.Binning(**base))}
    for k, v in changes.items():
        keys.add(events._cache_key(reader, events.Binning(**{**base, k: v})))
    keys.add(events._cache_key(_npz_reader(tmp_path / "cam.npz", "ms"),
                               events.Binning(**base)))
    assert len(keys) == 2 + len(changes)
    # equal configs share one entry: dt_ms 50 (Hydra's int) and 50.0, downsample 4 and [4]
    assert (events._cache_key(reader, events.Binning(**{**base, "dt_ms": 50}))
            == events._cache_key(reader, events.Binning(**{**base, "dt_ms": 50.0})))
    assert (events._cache_key(reader, events.Binning(**{**base, "downsample": 4}))
            == events._cache_key(reader, events.Binning(**{**base, "downsample": [4]})))


def test_a_file_replaced_with_the_same_size_and_time_is_binned_again(tmp_path):
    """A file replaced by another of the same size and modification time (cp -p, rsync -a,
    touch -r, tar) trained on the old file's cached events."""
    path = tmp_path / "cam.npz"
    make_npz(path)
    kw = dict(path=str(path), T=5, dt_ms=50)
    before = _all(data.load("events", **kw).test)
    other = tmp_path / "other.npz"
    with np.load(path) as z:
        arrays = dict(z)
    arrays["t_test"] = np.full_like(arrays["t_test"], 5)  # every event in the first step
    np.savez(other, **arrays)
    assert other.stat().st_size == path.stat().st_size
    st = path.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)
    cache = tmp_path / "snntrain_cache"
    data.load("events", **{**kw, "dt_ms": 25})  # another binning: its own lineage
    assert len(list(cache.glob("*.npy"))) == 4
    after = _all(data.load("events", **kw).test)
    np.testing.assert_array_equal(after, _all(data.load("events", **kw, cache=False).test))
    assert not np.array_equal(before, after) and after[:, 1:].sum() == 0
    # the earlier version's caches of this binning are gone (one more per change, for good:
    # the change time in their keys can never come back), the other binning's stay
    assert len(list(cache.glob("*.npy"))) == len(list(cache.glob("*.json"))) == 4
    metas = [json.loads(f.read_text()) for f in cache.glob("*.json")]
    assert len({m["lineage"] for m in metas}) == 2  # the 2 binnings (a split has its tag)


def test_event_labels_are_checked_as_an_arrays_files_are(tmp_path, caplog):
    """A single-class training split trained (test 0.45), and id-like labels {0, 10**8} made
    a 10**8-way readout reported as "out of memory ... make the model smaller" (tester): the
    checks dataset=arrays makes, from one function."""
    path = tmp_path / "cam.npz"
    make_npz(path, labels_train=np.zeros(10, int))
    with pytest.raises(data.DatasetError) as err:
        data.load("events", path=str(path), T=5, dt_ms=50)
    assert _one_line(err).endswith(": the training labels hold a single class (0); a classifier "
                                   "needs at least two")
    with np.load(path) as z:
        n_train, n_test = len(z["labels_train"]), len(z["labels_test"])
    make_npz(path, labels_train=np.arange(n_train) % 2 * 10**8,
             labels_test=np.arange(n_test) % 2 * 10**8)
    with pytest.raises(data.DatasetError) as err:
        data.load("events", path=str(path), T=5, dt_ms=50)
    assert "labels span 0..100000000 but only 2 distinct values occur; labels must be class " \
        "indices 0..n_classes-1" in _one_line(err)
    make_npz(path, labels_train=np.arange(n_train) % 2, labels_test=np.full(n_test, 2))
    with caplog.at_level(logging.INFO, logger="snntrain"):
        assert data.load("events", path=str(path), T=5, dt_ms=50).n_classes == 3
    assert any("the test labels hold class(es) 2 that the training labels never show" in m
               for m in caplog.messages)


def _npz_reader(path: Path, time_unit: str) -> Reader:
    from snntrain.event_formats import read_npz

    return read_npz(str(path), time_unit)["train"]


# ---- 2. an empty HDF5 split is refused at load time and by prepare ---------------------


@pytest.mark.parametrize("name,split", [("shd", "test"), ("ssc", "valid")])
def test_an_empty_hdf5_split_is_refused(tmp_path, capsys, name, split):
    """Before: trained, then ``KeyError: 'count'`` after the first epoch; prepare said ready."""
    make_shd(tmp_path, n_train=5, n_test=3, valid=4 if name == "ssc" else 0, name=name)
    path = tmp_path / name.upper() / f"{name}_{split}.h5"
    write_hdf5(path, [], [])
    message = (f"{path}: the split is empty (0 samples); the file is truncated or not the "
               "dataset's: delete it and prepare again")
    with pytest.raises(events.EventDataError) as err:
        data.load(name, T=3, data_dir=str(tmp_path))
    assert _one_line(err) == message
    assert data.main(["prepare", name, "--data_dir", str(tmp_path)]) == 2
    out = capsys.readouterr()
    assert "ready" not in out.out and out.err.strip().endswith(f"error: {message}")


# ---- 3. binning leaves no temporary file; the cache is checked beyond its shape ---------


def _temporaries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob(".*")) if cache.exists() else []


def test_failed_or_interrupted_binning_leaves_no_temporary_file(tmp_path, monkeypatch):
    cache = tmp_path / "SHD" / "snntrain_cache"
    write_hdf5(tmp_path / "SHD" / "shd_train.h5", [([0.1, 0.2], [1, 2]), ([0.1], [700])], [0, 1])
    write_hdf5(tmp_path / "SHD" / "shd_test.h5", [([0.1], [1])], [0])
    with pytest.raises(events.EventDataError, match="unit=700 is outside the sensor"):
        data.load("shd", T=2, data_dir=str(tmp_path))
    assert cache.is_dir() and _temporaries(cache) == []

    make_shd(tmp_path)

    def interrupted(*_):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(events, "_bin_into", interrupted)
        with pytest.raises(KeyboardInterrupt):
            data.load("shd", T=2, data_dir=str(tmp_path))
    assert _temporaries(cache) == []


def test_a_killed_binnings_temporary_file_is_removed_later(tmp_path):
    """A process ended without ``finally`` (SIGKILL, SIGTERM, the CLI's Ctrl-C exit) leaves
    its temporary file: the next binning on this host removes it once that process is gone."""
    make_shd(tmp_path)
    cache = tmp_path / "SHD" / "snntrain_cache"
    cache.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = events.hostenv.HOST
    stale = cache / f".shd_train_0123456789abcdef.{host}.{dead.pid}.7.npy"
    alive = cache / f".shd_train_0123456789abcdef.{host}.{os.getpid()}.7.npy"
    other_host = cache / f".shd_train_0123456789abcdef.not-{host}.{dead.pid}.7.npy"
    for f in (stale, alive, other_host):
        f.write_bytes(b"x")
    assert socket.gethostname()
    data.load("shd", T=2, data_dir=str(tmp_path))
    assert _temporaries(cache) == sorted([alive.name, other_host.name])


def test_a_cache_of_another_dtype_or_without_stats_is_binned_again(tmp_path):
    make_shd(tmp_path)
    kw = dict(T=3, data_dir=str(tmp_path), val_fraction=0.0)
    want = _all(data.load("shd", **kw).test)
    npy = next((tmp_path / "SHD" / "snntrain_cache").glob("shd_test_*.npy"))
    np.save(npy, np.zeros(want.shape, np.uint16))  # same shape, another dtype
    got = data.load("shd", **kw).test
    np.testing.assert_array_equal(_all(got), want)
    assert got.x.dtype == np.uint8
    del got  # (while a split is held in memory, another load shares it: no file is read)
    meta = npy.with_suffix(".json")
    np.save(npy, np.zeros(want.shape, np.uint8))
    meta.write_text(json.dumps({"dtype": "uint8"}))  # no event counts: not a finished binning
    np.testing.assert_array_equal(_all(data.load("shd", **kw).test), want)
    assert json.loads(meta.read_text())["events"] == 6 * 60


def test_a_cache_with_damaged_bytes_is_binned_again(tmp_path, caplog):
    """Bytes damaged in the cached tensor's data passed the shape and header checks, and the
    damaged counts were trained on; the cache records its total now."""
    make_shd(tmp_path)
    kw = dict(T=3, data_dir=str(tmp_path), val_fraction=0.0)
    want = _all(data.load("shd", **kw).test)
    npy = next((tmp_path / "SHD" / "snntrain_cache").glob("shd_test_*.npy"))
    assert json.loads(npy.with_suffix(".json").read_text())["total"] == int(want.sum())
    raw = bytearray(npy.read_bytes())
    raw[-20:] = b"\x09" * 20
    npy.write_bytes(raw)
    with caplog.at_level(logging.WARNING, logger="snntrain.events"):
        got = _all(data.load("shd", **kw).test)
    np.testing.assert_array_equal(got, want)
    damaged = int(want.sum()) - int(want.reshape(-1)[-20:].sum()) + 9 * 20
    assert f"does not add up to its record ({damaged} events, its .json says " \
        f"{int(want.sum())}): damaged, binning again" in caplog.text
    np.testing.assert_array_equal(np.load(npy), want)  # and cached again


# ---- 4. negative HDF5 times; the window note without dt_ms -----------------------------


def test_a_negative_hdf5_time_names_the_file_and_sample(tmp_path):
    """Before, with origin=zero: ``unsupported operand type(s) for *: 'int' and 'NoneType'``."""
    make_shd(tmp_path)
    path = tmp_path / "SHD" / "shd_train.h5"
    write_hdf5(path, [([0.1, 0.2], [1, 2]), ([-0.05, 0.3], [3, 4])], [0, 1])
    for origin in ("zero", "first"):
        with pytest.raises(events.EventDataError) as err:
            data.load("shd", T=2, data_dir=str(tmp_path), origin=origin)
        assert _one_line(err) == (f"{path}: sample 1 has a negative time (-0.05 s); times must "
                                  "be >= 0: the file is corrupt")


class _NegativeReader(Reader):
    """Events before t = 0 that no reader lets through any more."""

    sensor = (4,)
    where = "neg"
    labels = np.array([0, 1])

    def read(self, rows):
        return [{"t": np.array([-5.0, 10.0, 20.0]), "x": np.array([0, 1, 2])} for _ in rows]

    def fingerprint(self):
        return []


def test_the_window_note_works_without_dt_ms(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="snntrain.events"):
        events.build_splits(
            "neg", {"train": _NegativeReader(), "test": _NegativeReader()}, T=2, seed=0,
            val_fraction=0.0, n_classes=None, binning=dict(origin="zero"), augment=None,
            cache=False, cache_dir=None, default_cache_dir=tmp_path, in_memory="auto")
    assert ("neg test: 2 of 6 events (33.3%) fall outside the window (dataset.dt_ms=null, "
            "dataset.origin=zero) and are not used") in caplog.messages


# ---- 5. boolean options accept booleans only -------------------------------------------


@pytest.mark.parametrize("key", ["binary", "polarity", "cache"])
@pytest.mark.parametrize("value", ["no", "false", "off", 1])
def test_boolean_options_accept_only_booleans(tmp_path, key, value):
    """``bool('no')`` is True: ``dataset.binary=no`` turned binary on."""
    make_npz(tmp_path / "m.npz")
    with pytest.raises(events.EventDataError) as err:
        data.load("events", path=str(tmp_path / "m.npz"), T=3, **{key: value})
    assert _one_line(err) == f"dataset.{key}={value!r} is not a boolean; valid: true, false"


def test_a_boolean_option_from_the_command_line(tmp_path):
    make_npz(tmp_path / "m.npz")
    cfg = compose("dataset=events", f"dataset.path={tmp_path / 'm.npz'}", "dataset.binary=no")
    with pytest.raises(events.EventDataError, match=r"^dataset.binary='no' is not a boolean; "
                       "valid: true, false$"):
        data.from_config(cfg.dataset, seed=0)
    cfg = compose("dataset=events", f"dataset.path={tmp_path / 'm.npz'}", "dataset.binary=true")
    assert data.from_config(cfg.dataset, seed=0).train.binning.binary is True


# ---- 6. a val_fraction that rounds to no sample says so --------------------------------


def test_a_val_split_rounded_to_zero_is_noted(tmp_path, caplog):
    note = "note: dataset.val_fraction=0.1 of 4 training samples is 0: no validation split"
    make_shd(tmp_path, n_train=4)
    with caplog.at_level(logging.INFO, logger="snntrain"):
        s = data.load("shd", T=2, data_dir=str(tmp_path))
    assert s.val is None and note in caplog.messages
    caplog.clear()
    x = np.zeros((4, 2, 2, 1), np.float32)
    with caplog.at_level(logging.INFO, logger="snntrain"):
        images = data.from_arrays("img", x, np.arange(4), x, np.arange(4), 4, 0.1, 0)
    assert images.val is None and caplog.messages == [note]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="snntrain"):
        data.from_arrays("img", x, np.arange(4), x, np.arange(4), 4, 0.0, 0)  # asked for none
        data.from_arrays("img", x, np.arange(4), x, np.arange(4), 4, 0.2, 0)  # 1 sample
    assert not [m for m in caplog.messages if "val_fraction" in m]


# ---- 7. one-line errors ----------------------------------------------------------------


@pytest.mark.parametrize("labels,what", [
    (np.zeros((2, 2), np.uint16), "dtype uint16 and shape (2, 2)"),
    (np.array([19.5, 1.0], np.float32), "dtype float32 and shape (2,)"),
])
def test_hdf5_labels_of_another_shape_or_dtype(tmp_path, labels, what):
    """2-D labels failed in optax with a traceback; float labels were truncated (19.5 -> 19)."""
    make_shd(tmp_path)
    path = tmp_path / "SHD" / "shd_train.h5"
    write_hdf5(path, [([0.1], [1]), ([0.2], [2])], [0, 0])
    with h5py.File(path, "r+") as f:
        del f["labels"]
        f.create_dataset("labels", data=labels)
    with pytest.raises(events.EventDataError) as err:
        data.load("shd", T=2, data_dir=str(tmp_path))
    assert _one_line(err) == f"{path}: labels has {what}; expected integers of shape (N,)"


def test_an_hdf5_file_of_fixed_width_rows_is_refused(tmp_path):
    """spikes/times and spikes/units as zero-padded N x M arrays (not SHD's one variable-length
    array per sample) were read as rows of events: the padding trained as spikes at t = 0 on
    channel 0 (tester)."""
    make_shd(tmp_path)
    path = tmp_path / "SHD" / "shd_train.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", data=np.array([[0.1, 0.5, 0, 0]] * 2, np.float32))
        f.create_dataset("spikes/units", data=np.array([[5, 6, 0, 0]] * 2, np.uint16))
        f.create_dataset("labels", data=np.array([0, 1], np.uint16))
    with pytest.raises(events.EventDataError) as err:
        data.load("shd", T=2, data_dir=str(tmp_path))
    assert _one_line(err) == (
        f"{path}: spikes/times is a 2-D float32 array of shape (2, 4); an SHD/SSC file has one "
        "variable-length array per sample (1-D, vlen): the file is not in the SHD/SSC layout")


def test_a_single_npy_as_the_events_file(tmp_path):
    """Before: ``'numpy.ndarray' object does not support the context manager protocol``."""
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(events.EventDataError) as err:
        data.load("events", path=str(tmp_path / "one.npy"), T=3)
    assert _one_line(err) == f"{tmp_path / 'one.npy'} is a single .npy array, not an .npz; " \
                             f"{NPZ_EXAMPLE}"


@pytest.mark.parametrize("value", [1.5, "1", True])
def test_channel_shift_must_be_an_integer(tmp_path, value):
    """``channel_shift=1.5`` was silently truncated to 1."""
    make_npz(tmp_path / "m.npz")
    with pytest.raises(events.EventDataError) as err:
        data.load("events", path=str(tmp_path / "m.npz"), T=3,
                  augment={"channel_shift": value})
    assert _one_line(err) == (f"dataset.augment.channel_shift={value!r} is invalid: must be an "
                              "integer >= 0")
    assert events.Augment(channel_shift=2.0).channel_shift == 2


# ---- 8. prepare reads every event --------------------------------------------------------


def test_prepare_reports_what_training_would(tmp_path, capsys):
    """prepare said ``ready`` for a truncated .bin and for units beyond 700."""
    make_nmnist(tmp_path)
    bad = next((tmp_path / "NMNIST" / "Train" / "1").glob("*.bin"))
    bad.write_bytes(bad.read_bytes()[:-2])
    assert data.main(["prepare", "nmnist", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"error: {bad}: 198 bytes is not a whole number of 5-byte N-MNIST events; the file "
        "is truncated: extract it again")
    write_hdf5(tmp_path / "SHD" / "shd_train.h5", [([0.1, 0.2], [1, 2]), ([0.1], [700])], [0, 1])
    write_hdf5(tmp_path / "SHD" / "shd_test.h5", [([0.1], [1])], [0])
    assert data.main(["prepare", "shd", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"error: {tmp_path / 'SHD' / 'shd_train.h5'}: sample 1: unit=700 is outside the sensor "
        "(0..699, sensor size [700]); the file is corrupt")
    make_shd(tmp_path)
    assert data.main(["prepare", "shd", "--data_dir", str(tmp_path)]) == 0
    assert "shd: ready in" in capsys.readouterr().out


# ---- 9. DVS Gesture: one default for Python and the config -----------------------------


def test_dvs_gesture_downsamples_to_32_from_python_as_from_the_config(tmp_path):
    make_gesture(tmp_path, n=2, n_events=50)
    assert data.load("dvs_gesture", T=2, data_dir=str(tmp_path)).image_shape == (32, 32, 2)
    assert compose("dataset=dvs_gesture").dataset.downsample == 32
    full = data.load("dvs_gesture", T=2, data_dir=str(tmp_path), downsample=None)
    assert full.image_shape == (128, 128, 2)


# ---- 10. damaged files: one line naming the file, not h5py's / zipfile's / numpy's traceback --


def _overwrite(path: Path, start: int, stop: int, seed: int = 0) -> None:
    """Random bytes over ``path[start:stop]`` (a damaged disk or transfer)."""
    raw = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    raw[start:stop] = rng.integers(0, 256, stop - start, np.uint8).tobytes()
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("start,stop,h5_error", [
    (2000, 2400, "bad symbol table node signature"),
    (700, 764, "bad heap free list"),
])
def test_an_hdf5_file_with_damaged_metadata(tmp_path, capsys, start, stop, h5_error):
    """Before: ``RuntimeError: Unable to synchronously check link existence (...)``."""
    make_shd(tmp_path)
    path = tmp_path / "SHD" / "shd_train.h5"
    _overwrite(path, start, stop)
    message = (f"{path}: cannot read its metadata (RuntimeError: Unable to synchronously check "
               f"link existence ({h5_error})); the file is truncated or corrupt: delete it and "
               "prepare again (which extracts it again)")
    with pytest.raises(events.EventDataError) as err:
        data.load("shd", T=2, data_dir=str(tmp_path))
    assert _one_line(err) == message
    assert data.main(["prepare", "shd", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"error: {message}")


def test_an_events_npz_with_a_damaged_member_is_said_as_dataset_arrays_says_it(tmp_path):
    """Before: ``zipfile.BadZipFile: Bad CRC-32 for file 'unit_train.npy'``."""
    path = tmp_path / "m.npz"
    make_npz(path)
    _overwrite(path, 3000, 3050)
    with pytest.raises(events.EventDataError) as err:
        data.load("events", path=str(path), T=3)
    assert _one_line(err) == (f"{path}: member unit_train.npy is corrupt (BadZipFile: Bad "
                              "CRC-32 for file 'unit_train.npy')")
    arrays = tmp_path / "a.npz"  # the same damage, dataset=arrays: the same words
    x = np.zeros((200, 4), np.float32)
    np.savez(arrays, x_train=x, y_train=np.zeros(200, int), x_test=x, y_test=np.zeros(200, int))
    _overwrite(arrays, 3000, 3050)
    with pytest.raises(data.DatasetError) as err:
        data.load("arrays", path=str(arrays))
    assert _one_line(err) == (f"{arrays}: member x_train.npy is corrupt (BadZipFile: Bad "
                              "CRC-32 for file 'x_train.npy')")


def test_a_gesture_npy_with_a_damaged_header(tmp_path):
    """Before: ``tokenize.TokenError: ('EOF in multi-line statement', (2, 0))``."""
    make_gesture(tmp_path)
    g = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led" / "1.npy"
    _overwrite(g, 56, 64)  # inside 'shape': (200, 4)
    with pytest.raises(events.EventDataError) as err:
        data.load("dvs_gesture", T=2, data_dir=str(tmp_path))
    assert _one_line(err) == (f"{g}: not a readable .npy of events (TokenError: ('EOF in "
                              "multi-line statement', (2, 0))); the file is truncated or "
                              "corrupt: extract it again")


# ---- 11. a missing split names its own archive; prepare does not send the user in circles --


def _zip(archive: Path, member: Path, name: str) -> None:
    import zipfile

    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as z:
        z.write(member, name)


def test_prepare_offline_with_one_of_the_two_files_names_the_other(tmp_path, capsys,
                                                                     monkeypatch):
    """shd_test.h5 alone, offline: prepare said only that it cannot download, not that
    shd_train.h5 is what is missing (a training run said it; tester)."""
    from snntrain import tfds_data

    monkeypatch.setattr(tfds_data, "network_problem", lambda: "cannot reach x:443: no route")
    make_shd(tmp_path)
    (tmp_path / "SHD" / "shd_train.h5").unlink()
    for tonic in (True, False):  # (Tonic installed, or not: the events extra)
        if not tonic:
            monkeypatch.setitem(sys.modules, "tonic", None)
        elif importlib.util.find_spec("tonic") is None:
            continue
        assert data.main(["prepare", "shd", "--data_dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert f"error: shd: shd_train.h5 not found in {tmp_path / 'SHD'}; " in err, err
        assert err.endswith("(cannot download here: cannot reach x:443: no route)" if tonic
                            else f"(downloading needs Tonic: {EVENTS_EXTRA})"), err
    # an empty directory: nothing was there, it cannot download (no file to name)
    empty = tmp_path / "empty"
    assert data.main(["prepare", "shd", "--data_dir", str(empty)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"error: prepare shd downloads with Tonic: {EVENTS_EXTRA}")


def test_prepare_with_one_of_the_two_archives(tmp_path, capsys, monkeypatch):
    """Before: extracted train, then ``shd_test.h5 not found ..., only the archive
    shd_train.h5.zip: run python -m snntrain.data prepare shd ... to extract it`` forever."""
    monkeypatch.setitem(sys.modules, "tonic", None)  # no Tonic here: prepare cannot download
    make_shd(tmp_path / "src")
    root = tmp_path / "SHD"
    _zip(root / "shd_train.h5.zip", tmp_path / "src" / "SHD" / "shd_train.h5", "shd_train.h5")
    assert data.main(["prepare", "shd", "--data_dir", str(tmp_path)]) == 2
    assert (root / "shd_train.h5").is_file()  # extracted
    assert capsys.readouterr().err.strip().endswith(
        f"error: shd: shd_test.h5 not found in {root}, nor its archive shd_test.h5.zip (there "
        f"is only shd_train.h5.zip): copy shd_test.h5.zip there and run `python -m "
        f"snntrain.data prepare shd --data_dir {tmp_path}`, or on a machine with internet run "
        f"`python -m snntrain.data prepare shd --data_dir DIR` (after {EVENTS_EXTRA}), copy "
        f"DIR here and set dataset.data_dir=<copy> (downloading needs Tonic: {EVENTS_EXTRA})")
    # an archive without its file: prepare says so instead of "run prepare to extract it"
    _zip(root / "shd_test.h5.zip", tmp_path / "src" / "SHD" / "shd_train.h5", "other.h5")
    assert data.main(["prepare", "shd", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"error: shd: shd_test.h5 not found in {root} after extracting shd_test.h5.zip: the "
        "archive is truncated or not the dataset's; delete it, then copy a good "
        f"shd_test.h5.zip there and run `python -m snntrain.data prepare shd --data_dir "
        f"{tmp_path}` again, or on a machine with internet run `python -m snntrain.data "
        f"prepare shd --data_dir DIR` (after {EVENTS_EXTRA}), copy DIR here and set "
        f"dataset.data_dir=<copy> (downloading needs Tonic: {EVENTS_EXTRA})")
    _zip(root / "shd_test.h5.zip", tmp_path / "src" / "SHD" / "shd_test.h5", "shd_test.h5")
    assert data.main(["prepare", "shd", "--data_dir", str(tmp_path)]) == 0
    assert "shd: ready in" in capsys.readouterr().out


def test_a_missing_split_names_its_own_archive(tmp_path):
    """Before: ``shd_train.h5 not found ..., only the archive shd_test.h5.zip`` (the first
    archive in alphabetical order, not train's)."""
    make_shd(tmp_path / "src")
    root = tmp_path / "SHD"
    for split in ("train", "test"):
        _zip(root / f"shd_{split}.h5.zip", tmp_path / "src" / "SHD" / f"shd_{split}.h5",
             f"shd_{split}.h5")
    (root / "shd_test.h5").write_bytes((tmp_path / "src" / "SHD" / "shd_test.h5").read_bytes())
    with pytest.raises(events.EventDataError) as err:
        data.load("shd", T=2, data_dir=str(tmp_path))
    assert _one_line(err) == (
        f"shd: shd_train.h5 not found in {root}, only the archive shd_train.h5.zip: run "
        f"`python -m snntrain.data prepare shd --data_dir {tmp_path}` to extract it (no "
        "download)")


# ---- 12. an empty N-MNIST file is truncated, not an empty sample -------------------------


def test_an_empty_nmnist_file_is_truncated(tmp_path, capsys):
    """Before: loaded as a sample without events; prepare said every event was checked."""
    make_nmnist(tmp_path)
    bad = next((tmp_path / "NMNIST" / "Test" / "2").glob("*.bin"))
    bad.write_bytes(b"")
    message = (f"{bad}: the file is empty (0 bytes, no N-MNIST events); the file is truncated: "
               "extract it again")
    with pytest.raises(events.EventDataError) as err:
        data.load("nmnist", T=2, data_dir=str(tmp_path))
    assert _one_line(err) == message
    assert data.main(["prepare", "nmnist", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"error: {message}")


def test_an_empty_gesture_file_is_truncated(tmp_path):
    """Before: a 0 x 4 array loaded as a gesture without events."""
    g = _gesture_rows(tmp_path, np.zeros((0, 4)))
    with pytest.raises(events.EventDataError) as err:
        events.readers("dvs_gesture", tmp_path)["train"].read([0])
    assert _one_line(err) == (
        f"{g}: holds no events (0 x 4); the file is truncated: extract it again")


# ---- 13. non-integer coordinates are refused, not truncated --------------------------------


def _gesture_rows(tmp_path, rows) -> Path:
    make_gesture(tmp_path, n_events=20)
    g = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led" / "0.npy"
    np.save(g, np.asarray(rows, np.float64))
    return g


@pytest.mark.parametrize("row,what", [
    ([1.7, 1, 1, 5.0], "x=1.7"),  # was x=1
    ([1, np.nan, 1, 5.0], "y=nan"),  # was y=-9223372036854775808 is outside the sensor
    ([1, 1, 0.5, 5.0], "p=0.5"),
    ([np.inf, 1, 1, 5.0], "x=inf"),
])
def test_a_non_integer_gesture_coordinate(tmp_path, row, what):
    g = _gesture_rows(tmp_path, [[2, 3, 0, 1.0], row])
    with pytest.raises(events.EventDataError) as err:
        events.readers("dvs_gesture", tmp_path)["train"].read([0])
    assert _one_line(err) == (f"{g}: {what} is not an integer; coordinates must be integers: "
                              "the file is corrupt")


def test_integral_float_coordinates_still_load(tmp_path):
    _gesture_rows(tmp_path, [[2.0, 3.0, 0.0, 1.0], [127.0, 0.0, 1.0, 5.5]])
    (ev,) = events.readers("dvs_gesture", tmp_path)["train"].read([0])
    assert ev["x"].tolist() == [2, 127] and ev["y"].tolist() == [3, 0]
    assert ev["p"].tolist() == [0, 1] and ev["x"].dtype == np.int64
    np.testing.assert_array_equal(ev["t"], [1000.0, 5500.0])
    _write_float_units(tmp_path / "SHD" / "shd_train.h5", [3.0, 699.0])
    (ev,) = events.readers("shd", tmp_path)["train"].read([1])
    assert ev["x"].tolist() == [3, 699] and ev["x"].dtype == np.int64


def _write_float_units(path: Path, units) -> None:
    """An SHD file whose sample 1 has units stored as floats."""
    make_shd(path.parent.parent)
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.float32))
        u = f.create_dataset("spikes/units", (2,), dtype=h5py.vlen_dtype(np.float32))
        t[0], u[0] = np.array([0.1], np.float32), np.array([1.0], np.float32)
        t[1] = np.linspace(0.1, 0.2, len(units)).astype(np.float32)
        u[1] = np.asarray(units, np.float32)
        f.create_dataset("labels", data=np.array([0, 1], np.uint16))


@pytest.mark.parametrize("units,what", [([2.0, 3.5], "unit=3.5"), ([np.nan], "unit=nan")])
def test_a_non_integer_shd_unit(tmp_path, units, what):
    """Before: 3.5 loaded as unit 3; NaN as unit=-9223372036854775808 outside the sensor."""
    path = tmp_path / "SHD" / "shd_train.h5"
    _write_float_units(path, units)
    with pytest.raises(events.EventDataError) as err:
        data.load("shd", T=2, data_dir=str(tmp_path))
    assert _one_line(err) == (f"{path}: sample 1: {what} is not an integer; coordinates must be "
                              "integers: the file is corrupt")


def test_prepare_with_a_damaged_archive(tmp_path, capsys):
    """Before: ``zipfile.BadZipFile: File is not a zip file`` / tarfile's traceback."""
    import tarfile

    root = tmp_path / "SHD"
    root.mkdir()
    (root / "shd_train.h5.zip").write_bytes(b"PK")
    assert data.main(["prepare", "shd", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"error: {root / 'shd_train.h5.zip'}: cannot extract it (BadZipFile: File is not a zip "
        "file); the archive is truncated or corrupt: delete it and download or copy it again")
    make_gesture(tmp_path / "src")
    tgz = tmp_path / "DVSGesture" / "ibmGestureTrain.tar.gz"
    tgz.parent.mkdir()
    with tarfile.open(tgz, "w:gz") as t:
        t.add(tmp_path / "src" / "DVSGesture" / "ibmGestureTrain", "ibmGestureTrain")
    tgz.write_bytes(tgz.read_bytes()[:-200])
    assert data.main(["prepare", "dvs_gesture", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"error: {tgz}: cannot extract it (EOFError: Compressed file ended before the "
        "end-of-stream marker was reached); the archive is truncated or corrupt: delete it and "
        "download or copy it again")


# ---- stop 32: an empty cache file, text times, dt on bin borders ---------------------------


def test_an_empty_cache_file_is_binned_again(tmp_path, caplog):
    """A 0-byte cached .npy (a crash right after the rename) raised numpy's ``EOFError: No data
    left in file`` on every later run; it is binned again, as a truncated one is (saying so)."""
    make_shd(tmp_path)
    kw = dict(T=3, data_dir=str(tmp_path), val_fraction=0.0)
    want = _all(data.load("shd", **kw).test)
    npy = next((tmp_path / "SHD" / "snntrain_cache").glob("shd_test_*.npy"))
    npy.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="snntrain.events"):
        np.testing.assert_array_equal(_all(data.load("shd", **kw).test), want)
    assert f"the cached {npy.name} is unreadable (EOFError): binning again" in caplog.text
    assert npy.stat().st_size > 0


def test_hdf5_times_that_are_not_numbers_name_the_file_and_sample(tmp_path, capsys):
    """``spikes/times`` of bytes: ``prepare`` printed a traceback (could not convert string to
    float) and a run's line named no file."""
    make_shd(tmp_path)
    path = tmp_path / "SHD" / "shd_train.h5"
    with h5py.File(path, "w") as f:
        f["spikes/times"] = np.array([b"a", b"b", b"c"])
        f["spikes/units"] = np.array([1, 2, 3])
        f["labels"] = np.array([0, 1, 2])
    line = (f"{path}: spikes/times is a 1-D |S1 array of shape (3,); an SHD/SSC file has one "
            "variable-length array per sample (1-D, vlen): the file is not in the SHD/SSC layout")
    with pytest.raises(events.EventDataError) as err:
        data.load("shd", T=2, data_dir=str(tmp_path))
    assert _one_line(err) == line
    assert data.main(["prepare", "shd", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"error: {line}")


@pytest.mark.parametrize("dt_ms", [16.1, 32.7, 0.3, 1.0])
def test_events_on_the_borders_of_fractional_bins(dt_ms):
    """bin = floor(t / dt): with dt_ms=16.1 (16.1 * 1e3 = 16100.000000000002 us) the event at
    t = k * 16100 us fell into bin k - 1 (bins [2, 1, ..., 1, 0]); Tonic's ToFrame, given the
    exact window, puts one event in each bin."""
    T = 20
    dt_us = round(dt_ms * 1000)
    t = np.arange(T, dtype=np.float64) * dt_us  # events exactly on the bin borders
    frames, kept, _ = events.bin_events([{"t": t, "x": np.zeros(T, int)}], (1,),
                                        events.Binning(T=T, dt_ms=dt_ms))
    assert frames[0, :, 0].tolist() == [1] * T and int(frames.sum()) == T
    late = t + dt_us - 0.5  # just before the next border: still bin k
    frames, _, _ = events.bin_events([{"t": late, "x": np.zeros(T, int)}], (1,),
                                     events.Binning(T=T, dt_ms=dt_ms))
    assert frames[0, :, 0].tolist() == [1] * T


@pytest.mark.parametrize("n_classes", [1.5, 0, -3, "abc", True])
def test_the_python_api_checks_n_classes_of_event_data(tmp_path, n_classes):
    """``data.load("events", n_classes=...)``: 1.5 became 1 (then "dataset.n_classes=1" in the
    label error), 0 meant null, -3 gave "outside 0..-4", "abc" int()'s ValueError."""
    make_npz(tmp_path / "ev.npz")
    with pytest.raises(events.EventDataError) as err:
        data.load("events", path=str(tmp_path / "ev.npz"), T=2, n_classes=n_classes)
    assert _one_line(err) == (f"dataset.n_classes={n_classes!r} is invalid: must be an integer "
                              ">= 1 or null (the largest label + 1)")
    assert data.load("events", path=str(tmp_path / "ev.npz"), T=2, n_classes=4.0).n_classes == 4


def test_a_gesture_npy_of_garbage_does_not_advise_unpickling_it(tmp_path):
    """numpy's own message advised loading the corrupt file with allow_pickle=True."""
    make_gesture(tmp_path)
    g = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user01_led" / "1.npy"
    g.write_bytes(b"not an npy at all" * 10)
    with pytest.raises(events.EventDataError) as err:
        data.load("dvs_gesture", T=2, data_dir=str(tmp_path))
    assert _one_line(err) == (f"{g}: not a readable .npy of events (ValueError: no .npy "
                              "header); the file is truncated or corrupt: extract it again")


_PREPARE = """
import runpy, sys, time
import snntrain.events as events
def slow(*args, **kw):
    print("ready", flush=True)
    time.sleep(30)
events.prepare = slow
sys.argv = ["snntrain.data", "prepare", "shd", "--data_dir", "/nonexistent"]
runpy.run_module("snntrain.data", run_name="__main__")
"""


@pytest.mark.parametrize(("signum", "said"), [(2, "interrupted (Ctrl-C)"),
                                              (15, "terminated (SIGTERM)")])
def test_prepare_stopped_by_a_signal_says_so_in_one_line(signum, said):
    """Ctrl-C in prepare printed a KeyboardInterrupt traceback from inside h5py; SIGTERM ended
    it without a word."""
    p = subprocess.Popen([sys.executable, "-c", _PREPARE], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signum)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signum
    assert err == f"snntrain: {said}; rerun the command to go on\n"


def test_a_missing_event_dataset_is_refused_before_the_run_directory(tmp_path):
    """Before: the run directory was made (``.hydra/``, a failed ``summary.json``), then the
    loader found the split missing. The start-up now looks for the splits as the loader does
    first (their headers read, no events)."""
    from _workers import cli

    from snntrain import config

    def check(data_dir):
        config.check_files(config.parse(compose("dataset=shd", f"dataset.data_dir={data_dir}")))

    with pytest.raises(config.ConfigError, match=rf"^shd: shd_train.h5 not found in "
                                                 rf"{tmp_path / 'SHD'}; on a machine with"):
        check(tmp_path)
    make_shd(tmp_path)
    check(tmp_path)
    (tmp_path / "SHD" / "shd_test.h5").write_bytes(b"not hdf5")
    with pytest.raises(config.ConfigError, match=r"shd_test.h5 is not a readable HDF5 file"):
        check(tmp_path)
    with pytest.raises(config.ConfigError, match=rf"^dataset.path={tmp_path}/no.npz: no such "
                                                 "file$"):
        config.check_files(config.parse(compose("dataset=events",
                                                f"dataset.path={tmp_path}/no.npz")))
    # a directory: said as one (it said "no such file"; tester)
    with pytest.raises(config.ConfigError, match=rf"^dataset.path={tmp_path}: a directory; "
                                                 r"give the .npz file of events \(dataset="
                                                 r"events reads one file\)$"):
        config.check_files(config.parse(compose("dataset=events", f"dataset.path={tmp_path}")))
    run_dir = tmp_path / "run"
    p = cli("logger=none", "dataset=shd", f"dataset.data_dir={tmp_path / 'none'}",
            f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert p.returncode == 2 and not run_dir.exists(), p.stderr[-2000:]
    assert p.stderr.strip().splitlines()[-1].startswith(
        "snntrain: error: shd: shd_train.h5 not found in "), p.stderr[-2000:]


def test_a_conv_model_on_a_one_d_events_file_is_refused_before_the_run_directory(tmp_path):
    """Before: ``model=conv`` on a ``dataset=events`` file of a ``[C]`` sensor was refused
    when the model was built for the data, after the run directory existed. The start-up
    reads the file's ``sensor_size`` (that member alone); a camera's file passes."""
    from _workers import cli

    from snntrain import config

    make_npz(tmp_path / "chan.npz")  # sensor_size [64]
    make_npz(tmp_path / "cam.npz", sensor_size=np.array([8, 8, 2]),
             **{f"{k}_{s}": np.zeros(300, int) for k in ("x", "y", "p") for s in ("train", "test")},
             unit_train=None, unit_test=None)

    def check(name):
        config.check_files(config.parse(compose("dataset=events", "model=conv",
                                                f"dataset.path={tmp_path / name}",
                                                tiny=False)))

    expected = (f"model=conv needs H x W x C images, but dataset=events ({tmp_path}/chan.npz) "
                "gives a 1-D vector of 64 channels per step; use model=mlp or model=recurrent")
    with pytest.raises(config.ConfigError) as err:
        check("chan.npz")
    assert str(err.value) == expected
    check("cam.npz")
    config.check_files(config.parse(compose("dataset=events",
                                            f"dataset.path={tmp_path}/chan.npz")))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(config.ConfigError, match=r"junk.npz is not an .npz \(not a zip "):
        check("junk.npz")  # (the loader's words, at start-up: it was after the run directory)
    run_dir = tmp_path / "run"
    p = cli("logger=none", "dataset=events", "model=conv", f"dataset.path={tmp_path}/chan.npz",
            f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert p.returncode == 2 and not run_dir.exists(), p.stderr[-2000:]
    assert p.stderr.strip().splitlines()[-1] == f"snntrain: error: {expected}", p.stderr[-2000:]


def test_splits_of_several_seeds_share_one_copy_in_memory(tmp_path):
    """A population's members of 3 seeds held 3 copies of the binned data (and binned it 3
    times without a cache); they share one now, which the memory check counts once."""
    make_shd(tmp_path)
    kw = dict(T=3, data_dir=str(tmp_path), cache=False)
    a, b = data.load("shd", **kw, seed=0), data.load("shd", **kw, seed=1)
    assert a.train.x is b.train.x and a.val.x is a.train.x and a.test.x is b.test.x
    assert not a.train.x.flags.writeable
    assert not np.array_equal(a.val.rows, b.val.rows)  # (the seeds' own validation rows)
    held = a.held()  # each array once (train and val share x and y)
    assert sum(held.values()) == sum(v.nbytes for v in (
        a.train.x, a.test.x, a.train.y, a.test.y, a.train.rows, a.val.rows, a.test.rows))
    assert held[id(a.train.x)] == 12 * 3 * 700 and held[id(a.test.x)] == 6 * 3 * 700
    mapped = data.load("shd", T=3, data_dir=str(tmp_path), in_memory=False)  # (read by index)
    assert mapped.train.x is not a.train.x and isinstance(mapped.train.x, np.memmap)
    assert id(mapped.train.x) not in mapped.held() and len(mapped.held()) == 5
    fresh = data.load("shd", T=4, data_dir=str(tmp_path), cache=False)  # another binning
    assert fresh.train.x.shape[1] == 4
    del a, b
    c = data.load("shd", **kw, seed=0)  # (none held: binned again)
    np.testing.assert_array_equal(_all(c.test), _all(mapped.test))


@pytest.mark.parametrize("what", ["nan times", "no events", "outside the window"])
def test_a_split_with_no_events_to_bin_is_refused(tmp_path, what):
    """Every time NaN, or every count 0, trained on empty input with exit 0 (one line said
    the NaN times were dropped, nothing said the rest)."""
    n, k = 10, 30
    change = {"nan times": {"t_test": np.full(n * k, np.nan)},
              "no events": {"t_test": np.zeros(0), "unit_test": np.zeros(0, int),
                            "counts_test": np.zeros(n, int)},
              "outside the window": {}}[what]
    make_npz(tmp_path / "e.npz", **change)
    kw = dict(path=str(tmp_path / "e.npz"), T=4, cache=False)
    if what == "outside the window":
        kw.update(dt_ms=1.0, origin="zero", time_unit="s")  # (events at 0..1e5 s: none in 4 ms)
    with pytest.raises(events.EventDataError) as e:
        data.load("events", **kw)
    assert _one_line(e).startswith(f"{tmp_path / 'e.npz'}") and "split has no events to bin (" \
        in str(e.value), e.value


def test_a_damaged_event_file_or_its_labels_are_refused_at_start_up(tmp_path):
    """A truncated file, a single-class training split and id-like labels were refused only
    after the run directory existed (its summary.json a failure)."""
    from snntrain import config
    from snntrain.config import ConfigError

    def check(path):
        return config.check_files(config.parse(compose("dataset=events",
                                                       f"dataset.path={path}")))

    path = tmp_path / "cam.npz"
    make_npz(path)
    assert check(path) == (64,)
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:3000])
    with pytest.raises(ConfigError, match=r"cut.npz is not an .npz \(not a zip archive\)"):
        check(tmp_path / "cut.npz")
    make_npz(path, labels_train=np.zeros(10, int))
    with pytest.raises(ConfigError) as err:
        check(path)
    assert _one_line(err) == (f"{path} (labels_train): the training labels hold a single "
                              "class (0); a classifier needs at least two")
    make_npz(path, labels_train=np.arange(10) % 2 * 10**8)
    with pytest.raises(ConfigError, match=r"labels span 0\.\.100000000 but only"):
        check(path)


def test_augmentation_that_crops_most_events_is_said_once(tmp_path, caplog):
    """time_shift_ms=1e300 trained on empty samples (loss ln C every epoch) without a word; a
    shift within the samples' length, a drop (on purpose) or a window that crops without
    augmentation (dt_ms: said by the binning) are not the augmentation's loss (review)."""
    make_npz(tmp_path / "cam.npz")  # events over 0..100 ms
    rows = np.arange(4)

    def said(**kw):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="snntrain"):
            s = data.load("events", path=str(tmp_path / "cam.npz"), T=5, val_fraction=0.0,
                          **kw)
            s.train[rows]
            s.train.at_epoch(0, 1)[rows]  # (the run's later epochs: said once)
        return [m for m in caplog.messages if "dataset.augment" in m]

    assert said(dt_ms=None, augment={"time_shift_ms": 1}) == []
    assert said(dt_ms=None, augment={"drop": 0.3}) == []
    assert said(dt_ms=5, augment={"jitter_ms": 0.01}) == []
    assert said(dt_ms=None, augment={"time_shift_ms": 1e300}) == [
        "note: dataset.augment (time_shift_ms=1e+300, jitter_ms=0, drop=0, channel_shift=0) "
        "left 0 of the 120 events a training batch has in its windows without it (0%): events "
        "shifted out of the window or off the sensor are cropped"]
