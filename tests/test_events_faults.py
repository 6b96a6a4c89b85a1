"""Event-data faults found by testing with files in the real formats: each test failed before
its fix (silently wrong runs, tracebacks, leftover files, misleading messages)."""

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
from snntrain.event_formats import NPZ_EXAMPLE, Reader

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
    host = events._HOST
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
    meta = npy.with_suffix(".json")
    np.save(npy, np.zeros(want.shape, np.uint8))
    meta.write_text(json.dumps({"dtype": "uint8"}))  # no event counts: not a finished binning
    np.testing.assert_array_equal(_all(data.load("shd", **kw).test), want)
    assert json.loads(meta.read_text())["events"] == 6 * 60


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
