"""Event datasets: tiny files in each real on-disk format, read back through the real loaders."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import compose

from snntrain import data, encoding, event_formats, events
from snntrain.config import ConfigError

h5py = pytest.importorskip("h5py")


# ---- writers of the real formats (what Tonic's save_to leaves on disk) -------------------


def write_hdf5(path: Path, samples, labels) -> None:
    """SHD/SSC: variable-length ``spikes/times`` (s) and ``spikes/units`` per sample."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),),
                                 dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(samples),),
                                 dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(samples):
            times[i], units[i] = np.asarray(t, np.float32), np.asarray(u, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        f.create_dataset("extra/speaker", data=np.zeros(len(samples), np.uint16))


def nmnist_bytes(x, y, p, t) -> bytes:
    """The 5-byte N-MNIST event records, packed byte by byte (independently of the reader)."""
    out = bytearray()
    for xi, yi, pi, ti in zip(x, y, p, t, strict=True):
        out += bytes([xi, yi, (pi << 7) | ((ti >> 16) & 0x7F), (ti >> 8) & 0xFF, ti & 0xFF])
    return bytes(out)


def write_nmnist(root: Path, split: str, label: int, name: str, ev: dict) -> Path:
    path = root / "NMNIST" / split / str(label) / f"{name}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(nmnist_bytes(ev["x"], ev["y"], ev["p"], ev["t"]))
    return path


def write_gesture(root: Path, split: str, user: str, label: int, ev: dict) -> Path:
    """DVS Gesture as Tonic stores it: ``N x 4`` (x, y, p, t in ms)."""
    path = root / "DVSGesture" / f"ibmGesture{split}" / user / f"{label}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.stack([ev["x"], ev["y"], ev["p"], ev["t_ms"]], 1).astype(np.int64))
    return path


def random_camera(rng, n, size, t_max):
    return {"x": rng.integers(0, size, n), "y": rng.integers(0, size, n),
            "p": rng.integers(0, 2, n), "t": np.sort(rng.integers(0, t_max, n))}


def make_shd(root: Path, n_train=12, n_test=6, n_events=60, seed=0, name="shd", valid=0):
    rng = np.random.default_rng(seed)
    written = {}
    splits = {"train": n_train, "test": n_test, **({"valid": valid} if valid else {})}
    for split, n in splits.items():
        samples = [(np.sort(rng.uniform(0, 1.0, n_events)), rng.integers(0, 700, n_events))
                   for _ in range(n)]
        labels = rng.integers(0, 20, n)
        write_hdf5(root / name.upper() / f"{name}_{split}.h5", samples, labels)
        written[split] = (samples, labels)
    return written


def make_nmnist(root: Path, n=3, n_events=40, seed=0):
    rng = np.random.default_rng(seed)
    for split in ("Train", "Test"):
        for label in range(n):
            write_nmnist(root, split, label, f"{label:05d}", random_camera(rng, n_events, 34,
                                                                           300_000))


def make_gesture(root: Path, n=3, n_events=200, seed=0):
    rng = np.random.default_rng(seed)
    for split in ("Train", "Test"):
        for label in range(n):
            ev = random_camera(rng, n_events, 128, 6000)
            write_gesture(root, split, "user01_led", label, {**ev, "t_ms": ev["t"]})


def make_npz(path: Path, n=10, n_events=30, seed=0, **override):
    rng = np.random.default_rng(seed)
    arrays = {"sensor_size": np.array([64])}
    for split in ("train", "test"):
        counts = np.full(n, n_events)
        t = np.concatenate([np.sort(rng.uniform(0, 1e5, n_events)) for _ in range(n)])
        arrays.update({f"t_{split}": t, f"unit_{split}": rng.integers(0, 64, n * n_events),
                       f"counts_{split}": counts, f"labels_{split}": rng.integers(0, 4, n)})
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


# ---- decoding ------------------------------------------------------------------------------


def test_nmnist_decodes_the_bytes_written():
    # x=3, y=5, on, t=0x012345 is the bytes 03 05 81 23 45 (polarity bit 7, 23-bit time).
    assert nmnist_bytes([3], [5], [1], [0x012345]) == bytes([0x03, 0x05, 0x81, 0x23, 0x45])
    ev = event_formats.decode_nmnist(bytes([0x03, 0x05, 0x81, 0x23, 0x45]))
    assert (ev["x"][0], ev["y"][0], ev["p"][0], ev["t"][0]) == (3, 5, 1, 0x012345)
    # An overflow marker (y == 240) is removed and adds 2^13 us to every later event.
    raw = nmnist_bytes([1, 0, 2], [2, 240, 3], [0, 0, 1], [10, 0, 20])
    ev = event_formats.decode_nmnist(raw)
    np.testing.assert_array_equal(ev["x"], [1, 2])
    np.testing.assert_array_equal(ev["t"], [10, 20 + 2**13])


def test_readers_return_what_was_written(tmp_path):
    written = make_shd(tmp_path)
    r = events.readers("shd", tmp_path)
    samples, labels = written["train"]
    got = r["train"].read([0, 3, 4])  # non-contiguous, then a contiguous slice
    got += r["train"].read([5, 6])
    for g, i in zip(got, [0, 3, 4, 5, 6], strict=True):
        np.testing.assert_allclose(g["t"], np.float32(samples[i][0]).astype(np.float64) * 1e6)
        np.testing.assert_array_equal(g["x"], samples[i][1])
    np.testing.assert_array_equal(r["train"].labels, labels)

    rng = np.random.default_rng(1)
    ev = random_camera(rng, 50, 34, 2**23 - 1)
    write_nmnist(tmp_path, "Train", 7, "00001", ev)
    write_nmnist(tmp_path, "Test", 2, "00002", ev)
    r = events.readers("nmnist", tmp_path)
    (got,) = r["train"].read([0])
    assert r["train"].labels.tolist() == [7]
    for k in ("x", "y", "p", "t"):
        np.testing.assert_array_equal(got[k], ev[k])

    ev = random_camera(rng, 50, 128, 6000)
    write_gesture(tmp_path, "Train", "user02_fluorescent", 10, {**ev, "t_ms": ev["t"]})
    write_gesture(tmp_path, "Test", "user03_led", 4, {**ev, "t_ms": ev["t"]})
    r = events.readers("dvs_gesture", tmp_path)
    (got,) = r["train"].read([0])
    assert r["train"].labels.tolist() == [10] and r["test"].labels.tolist() == [4]
    np.testing.assert_array_equal(got["t"], ev["t"] * 1000.0)  # ms -> us
    for k in ("x", "y", "p"):
        np.testing.assert_array_equal(got[k], ev[k])


# ---- binning -------------------------------------------------------------------------------


def test_binning_by_hand():
    # Events at 0, 25, 50, 99, 100 us in channels 0, 1, 1, 2, 3 of a 4-channel sensor;
    # T = 4 over the duration [0, 100]: bins floor(t * 4 / 100) = 0, 1, 2, 3 and t = 100 -> 3.
    s = {"t": np.array([0.0, 25.0, 50.0, 99.0, 100.0]), "x": np.array([0, 1, 1, 2, 3])}
    frames, kept, nonfinite = events.bin_events([s], (4,), events.Binning(T=4))
    want = np.zeros((4, 4), int)
    for b, c in [(0, 0), (1, 1), (2, 1), (3, 2), (3, 3)]:
        want[b, c] += 1
    np.testing.assert_array_equal(frames[0], want)
    assert kept.tolist() == [5] and nonfinite.tolist() == [0]
    # Fixed 30 us bins from the first event, cropped to T = 3: bins 0, 0, 1, 3 (out), 3 (out).
    frames, kept, _ = events.bin_events([s], (4,), events.Binning(T=3, dt_ms=0.03))
    want = np.zeros((3, 4), int)
    want[0, 0] = want[0, 1] = want[1, 1] = 1
    np.testing.assert_array_equal(frames[0], want)
    assert kept.tolist() == [3] == [frames[0].sum()]
    # origin first vs zero: events at 1000..1100 us, 2 bins of 100 us each.
    s2 = {"t": np.array([1000.0, 1050.0, 1100.0]), "x": np.array([0, 0, 0])}
    first = events.bin_events([s2], (1,), events.Binning(T=2))[0][0, :, 0]
    zero = events.bin_events([s2], (1,), events.Binning(T=2, origin="zero"))[0][0, :, 0]
    assert first.tolist() == [1, 2] and zero.tolist() == [0, 3]  # [1000,1050),[1050,1100]
    # Non-finite timestamps are dropped and counted; the rest is binned as if they were not there.
    s3 = {"t": np.array([np.nan, 0.0, np.inf, 10.0]), "x": np.array([0, 1, 2, 3])}
    frames, kept, nonfinite = events.bin_events([s3], (4,), events.Binning(T=2))
    assert nonfinite.tolist() == [2] and kept.tolist() == [2]
    np.testing.assert_array_equal(frames[0], [[0, 1, 0, 0], [0, 0, 0, 1]])


def test_binning_conserves_every_event():
    # The Tonic #313 trap: integer time division can empty bins; here every event is counted.
    rng = np.random.default_rng(0)
    samples = [{"t": np.sort(rng.uniform(0, 1e6, n)), "x": rng.integers(0, 700, n)}
               for n in (0, 1, 7, 1000, 8000)]
    for T in (1, 3, 7, 128, 1000):
        frames, kept, _ = events.bin_events(samples, (700,), events.Binning(T=T))
        assert frames.shape == (5, T, 700)
        assert frames.sum(axis=(1, 2)).tolist() == kept.tolist() == [0, 1, 7, 1000, 8000]
    cam = [random_camera(rng, 5000, 128, 10**6)]
    frames, kept, _ = events.bin_events(cam, (128, 128, 2), events.Binning(T=9, downsample=(32,)))
    assert frames.shape == (1, 9, 32, 32, 2) and frames.sum() == kept[0] == 5000


def test_downsample_and_polarity():
    s = {"t": np.array([0.0, 1.0, 2.0, 3.0]), "x": np.array([0, 4, 5, 699])}
    frames = events.bin_events([s], (700,), events.Binning(T=1, downsample=(140,)))[0]
    # channel c -> c * 140 // 700 = c // 5: 0, 0, 1, 139
    want = np.zeros(140, int)
    want[[0, 1, 139]] = [2, 1, 1]
    np.testing.assert_array_equal(frames[0, 0], want)
    cam = {"t": np.zeros(3), "x": np.array([0, 33, 33]), "y": np.array([1, 2, 33]),
           "p": np.array([0, 1, 1])}
    f = events.bin_events([cam], (34, 34, 2), events.Binning(T=1, downsample=(17,)))[0][0, 0]
    assert f.shape == (17, 17, 2) and f.sum() == 3
    assert f[0, 0, 0] == 1 and f[1, 16, 1] == 1 and f[16, 16, 1] == 1  # [y//2, x//2, p]
    merged = events.bin_events([cam], (34, 34, 2), events.Binning(T=1, polarity=False))[0]
    assert merged.shape == (1, 1, 34, 34, 1) and merged[0, 0, 2, 33, 0] == 1
    binary = events.bin_events([cam], (34, 34, 2), events.Binning(T=1, downsample=(1,),
                                                                  binary=True))[0]
    assert binary.reshape(-1).tolist() == [1, 1]
    # a wide sensor (a flattened camera): channel x frame overflowed int32 (events went to
    # the wrong channel and bin, or a traceback); 100,000 channels -> 50,000: c // 2
    wide = {"t": np.array([0.0, 10.0, 20.0]), "x": np.array([99999, 60000, 5])}
    f = events.bin_events([wide], (100000,), events.Binning(T=2, downsample=(50000,)))[0][0]
    assert np.argwhere(f).tolist() == [[0, 49999], [1, 2], [1, 30000]]
    f = events.bin_events([{"t": np.array([0.0, 1.0]), "x": np.array([49999, 3])}], (50000,),
                          events.Binning(T=1))[0][0, 0]
    assert f[49999] == f[3] == 1 and f.sum() == 2


# ---- loading, caching, resuming -------------------------------------------------------------


def test_shd_loads_binned_and_cached(tmp_path, monkeypatch):
    written = make_shd(tmp_path)
    kw = dict(T=5, downsample=140, data_dir=str(tmp_path), seed=3)
    a = data.load("shd", **kw)
    assert isinstance(a.train, events.Frames) and a.image_shape == (140,) and a.n_classes == 20
    assert len(a.train) + len(a.val) == 12 and len(a.test) == 6
    cache = list((tmp_path / "SHD" / "snntrain_cache").glob("*.npy"))
    assert len(cache) == 2  # train and test, keyed by the binning config
    c = data.load("shd", **kw, cache=False)
    with monkeypatch.context() as m:  # from the cache: nothing is binned again
        m.setattr(events, "_bin_into", lambda *a: pytest.fail("binned again"))
        b = data.load("shd", **kw, in_memory=False)
    assert isinstance(b.train.x, np.memmap) and b.train.prefetch
    assert not isinstance(c.train.x, np.memmap) and not c.train.prefetch
    for s in ("train", "val", "test"):
        xa, ya = getattr(a, s)[np.arange(len(getattr(a, s)))]
        for other in (b, c):
            xo, yo = getattr(other, s)[np.arange(len(getattr(other, s)))]
            np.testing.assert_array_equal(xa, xo)
            np.testing.assert_array_equal(ya, yo)
    # Test rows are the file's rows: the event count per sample is conserved.
    x, y = a.test[np.arange(6)]
    assert x.shape == (6, 5, 140) and x.dtype == np.float32
    assert x.sum(axis=(1, 2)).tolist() == [60] * 6
    np.testing.assert_array_equal(y, written["test"][1])
    # Another binning gets its own cache entry.
    data.load("shd", **{**kw, "T": 4})
    assert len(list((tmp_path / "SHD" / "snntrain_cache").glob("*.npy"))) == 4
    assert json.loads(next((tmp_path / "SHD" / "snntrain_cache").glob("*.json")).read_text())[
        "in_window"] > 0


def test_a_cropping_window_says_how_many_events_it_leaves_out(tmp_path, caplog):
    """Fixed-width bins crop each sample to T * dt_ms: the run says how many events fell
    outside (before, 97% of a dataset could be cropped away without a word), cached or not."""
    written = make_shd(tmp_path)
    kw = dict(T=5, dt_ms=100.0, origin="zero", data_dir=str(tmp_path), seed=0, val_fraction=0)
    for attempt in ("binned", "cached"):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="snntrain.events"):
            a = data.load("shd", **kw)
        for split in ("train", "test"):
            t = np.concatenate([times for times, _ in written[split][0]])
            outside = int((t >= 0.5).sum())  # the window is [0, 500 ms)
            assert 0 < outside < len(t)
            line = (f"shd {split}: {outside} of {len(t)} events ({100 * outside / len(t):.1f}%) "
                    "fall outside the 500 ms window (T=5 x dataset.dt_ms=100, "
                    "dataset.origin=zero) and are not used")
            assert line in caplog.messages, (attempt, caplog.messages)
            x, _ = getattr(a, split)[np.arange(len(getattr(a, split)))]
            assert int(x.sum()) == len(t) - outside
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="snntrain.events"):
        data.load("shd", **{**kw, "dt_ms": None})  # the whole sample split in T bins
    assert not [m for m in caplog.messages if "outside" in m]


def test_ssc_uses_its_valid_split(tmp_path):
    make_shd(tmp_path, n_train=5, n_test=3, valid=4, name="ssc")
    s = data.load("ssc", T=3, data_dir=str(tmp_path))
    assert (len(s.train), len(s.val), len(s.test), s.n_classes) == (5, 4, 3, 35)


@pytest.mark.parametrize("augment", [None, {"time_shift_ms": 50, "jitter_ms": 5, "drop": 0.2,
                                            "channel_shift": 3}])
def test_mid_epoch_batches_equal_uninterrupted(tmp_path, augment):
    make_shd(tmp_path, n_train=23)
    s = data.load("shd", T=4, data_dir=str(tmp_path), augment=augment, val_fraction=0.0)
    whole = list(data.batches(s.train, 5, seed=7, epoch=2))
    resumed = list(data.batches(s.train, 5, seed=7, epoch=2, start=3))
    assert len(whole) == 5 and len(resumed) == 2
    for a, b in zip(whole[3:], resumed, strict=True):
        np.testing.assert_array_equal(a["x"], b["x"])
        np.testing.assert_array_equal(a["mask"], b["mask"])
    again = list(data.batches(s.train, 5, seed=7, epoch=2))
    other = list(data.batches(s.train, 5, seed=7, epoch=3, shuffle=False))
    first = list(data.batches(s.train, 5, seed=7, epoch=2, shuffle=False))
    np.testing.assert_array_equal(whole[0]["x"], again[0]["x"])
    if augment is None:  # the cached frames, the same every epoch
        np.testing.assert_array_equal(first[0]["x"], other[0]["x"])
    else:  # a new draw every epoch, but at most the sample's own events
        assert not np.array_equal(first[0]["x"], other[0]["x"])
        assert (first[0]["x"].sum(axis=(1, 2)) <= 60).all()
        assert s.val is None and s.test[np.arange(2)][0].sum() == 120  # test: no augmentation


def test_nmnist_dvs_and_npz_load(tmp_path):
    make_nmnist(tmp_path)
    make_gesture(tmp_path)
    n = data.load("nmnist", T=3, data_dir=str(tmp_path), val_fraction=0.0)
    assert n.image_shape == (34, 34, 2) and n.train[np.arange(3)][0].shape == (3, 3, 34, 34, 2)
    assert n.test[np.arange(3)][0].sum() == 3 * 40
    g = data.load("dvs_gesture", T=4, data_dir=str(tmp_path), downsample=32, val_fraction=0.0)
    assert g.image_shape == (32, 32, 2) and g.n_classes == 11
    assert g.test[np.arange(3)][0].sum() == 3 * 200
    make_npz(tmp_path / "mine.npz")
    e = data.load("events", path=str(tmp_path / "mine.npz"), T=6)
    assert e.image_shape == (64,) and e.n_classes == 4 and e.name == "events:mine.npz"
    assert e.test[np.arange(10)][0].sum() == 300


def test_encoder_none_is_time_major_and_checks_T():
    enc = encoding.get("none")
    x_BxTxC = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    out = np.asarray(enc(x_BxTxC, None, 3))
    assert out.shape == (3, 2, 4)
    np.testing.assert_array_equal(out[1, 0], x_BxTxC[0, 1])
    with pytest.raises(ConfigError, match="the data has 3 time steps per sample but T=5"):
        enc(x_BxTxC, None, 5)


def test_an_encoder_that_does_not_fit_the_data_names_it(tmp_path):
    """Rate-coding event data failed inside the compiled step with a reshape traceback; an
    image dataset through ``encoder=none`` read its rows as time steps."""
    from snntrain import train

    make_shd(tmp_path)
    shd = ("dataset=shd", f"dataset.data_dir={tmp_path}", "T=4")
    for encoder in ("rate", "latency", "direct"):
        with pytest.raises(ConfigError, match=rf"^encoder={encoder} cannot encode dataset=shd: "
                           "its samples are spikes binned into T steps already; use "
                           "encoder=none"):
            train.build(compose(*shd, f"encoder={encoder}"))
    assert train.build(compose(*shd)).encoder.name == "none"
    with pytest.raises(ConfigError, match=r"^encoder=none passes samples through as spikes "
                       r"over T=6 steps, but dataset=digits holds images; use encoder=rate"):
        train.build(compose("encoder=none"))
    # digits' first axis is 8: with T=8 the check let it through, and the model, built for
    # the whole (8, 8, 1) image per step, stopped in the compiled step with a traceback
    with pytest.raises(ConfigError, match=r"^encoder=none passes samples through as spikes "
                       r"over T=8 steps, but dataset=digits holds images"):
        train.build(compose("encoder=none", "T=8"))


@pytest.mark.slow
def test_data_notes_are_snntrain_lines_not_hydra_logging(tmp_path):
    """Binning and caching notes print as ``snntrain: ...`` (they came out as
    ``[<time>][HYDRA] shd_test: binning ...`` through Hydra's root logger)."""
    from _workers import cli

    make_shd(tmp_path)
    p = cli("logger=none", "trainer.progress=false", "trainer.epochs=1", "dataset=shd",
            f"dataset.data_dir={tmp_path}", "T=4", "model.hidden=[8]",
            f"hydra.run.dir={tmp_path / 'run'}")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "snntrain: shd_train: binning 12 samples into 4 steps" in p.stderr, p.stderr
    assert "[HYDRA]" not in p.stderr


# ---- one-line errors -------------------------------------------------------------------


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_and_offline_say_how_to_prepare(tmp_path):
    for name in ("shd", "ssc", "nmnist", "dvs_gesture"):
        with pytest.raises(events.EventDataError) as err:
            data.load(name, T=4, data_dir=str(tmp_path))
        msg = _one_line(err)
        assert str(tmp_path) in msg and f"python -m snntrain.data prepare {name} --data_dir" in msg
    (tmp_path / "SHD").mkdir()
    (tmp_path / "SHD" / "shd_train.h5.zip").write_bytes(b"PK")
    with pytest.raises(events.EventDataError, match="only the archive shd_train.h5.zip"):
        data.load("shd", T=4, data_dir=str(tmp_path))


def test_prepare_extracts_archives_without_network(tmp_path, capsys):
    import zipfile

    make_shd(tmp_path / "src")
    (tmp_path / "SHD").mkdir()
    for split in ("train", "test"):
        with zipfile.ZipFile(tmp_path / "SHD" / f"shd_{split}.h5.zip", "w") as z:
            z.write(tmp_path / "src" / "SHD" / f"shd_{split}.h5", f"shd_{split}.h5")
    assert data.main(["prepare", "shd", "--data_dir", str(tmp_path)]) == 0
    assert "shd: ready in" in capsys.readouterr().out
    assert data.load("shd", T=2, data_dir=str(tmp_path)).n_classes == 20


def test_corrupt_files_name_the_file_and_sample(tmp_path):
    make_nmnist(tmp_path)
    bad = next((tmp_path / "NMNIST" / "Train" / "1").glob("*.bin"))
    bad.write_bytes(bad.read_bytes()[:-2])
    with pytest.raises(events.EventDataError) as err:
        data.load("nmnist", T=2, data_dir=str(tmp_path))
    assert str(bad) in _one_line(err) and "truncated" in str(err.value)

    (tmp_path / "SHD").mkdir()
    (tmp_path / "SHD" / "shd_train.h5").write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    (tmp_path / "SHD" / "shd_test.h5").write_bytes(b"")
    with pytest.raises(events.EventDataError, match="shd_train.h5 is not a readable HDF5 file"):
        data.load("shd", T=2, data_dir=str(tmp_path))
    write_hdf5(tmp_path / "SHD" / "shd_train.h5", [([0.1, 0.2], [1, 2]), ([0.1], [700])], [0, 1])
    write_hdf5(tmp_path / "SHD" / "shd_test.h5", [([0.1], [1])], [0])
    with pytest.raises(events.EventDataError) as err:
        data.load("shd", T=2, data_dir=str(tmp_path))
    assert "shd_train.h5: sample 1: unit=700 is outside the sensor" in _one_line(err)

    make_gesture(tmp_path)
    g = tmp_path / "DVSGesture" / "ibmGestureTest" / "user01_led" / "2.npy"
    g.write_bytes(g.read_bytes()[:200])
    with pytest.raises(events.EventDataError) as err:
        data.load("dvs_gesture", T=2, data_dir=str(tmp_path))
    assert str(g) in _one_line(err)


NPZ_CASES = [
    ({"labels_test": None}, "is missing labels_test"),
    ({"sensor_size": None}, "is missing sensor_size"),
    ({"unit_train": np.zeros(5, int)}, r"columns differ in length \(t_train 300, unit_train 5\)"),
    ({"counts_train": np.full(10, 29)}, "counts_train sums to 290 events"),
    ({"counts_train": np.r_[31, -1, np.full(8, 30)]}, r"counts_train has a negative count "
                                                      r"\(-1, sample 1\); counts are"),
    ({"labels_train": np.zeros(9, int)}, "counts_train has 10 samples but labels_train 9"),
    ({"t_train": np.r_[-1.0, np.zeros(299)]}, "sample 0 of train has a negative time"),
    ({"t_train": np.r_[np.zeros(40), 5.0, np.zeros(259)]}, "times of sample 1 of train decrease"),
    ({"unit_test": np.r_[np.zeros(45, int), 64, np.zeros(254, int)]},
     r"sample 1 of test has unit=64 outside the sensor \(0..63"),
    ({"unit_train": np.zeros(300)}, "unit_train has dtype float64; coordinates must be integers"),
    ({"sensor_size": np.array([3, 3])}, r"sensor_size=\[3, 3\] is invalid"),
]


@pytest.mark.parametrize("override,message", NPZ_CASES)
def test_bad_npz_one_line(tmp_path, override, message):
    make_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(events.EventDataError, match=message) as err:
        data.load("events", path=str(tmp_path / "bad.npz"), T=3)
    _one_line(err)


def test_npz_labels_and_path_errors(tmp_path):
    make_npz(tmp_path / "m.npz")
    with pytest.raises(events.EventDataError, match=r"labels span 0..3, outside 0..1"):
        data.load("events", path=str(tmp_path / "m.npz"), T=3, n_classes=2)
    with pytest.raises(events.EventDataError, match="dataset.path is required"):
        data.load("events", T=3)
    with pytest.raises(events.EventDataError, match="no such file"):
        data.load("events", path=str(tmp_path / "none.npz"), T=3)
    (tmp_path / "text.npz").write_text("hello")  # np.load: "contains pickled (object) data"
    with pytest.raises(events.EventDataError, match=r"text.npz is not an .npz \(not a zip "
                       r"archive\); np.savez\(path, t_train="):
        data.load("events", path=str(tmp_path / "text.npz"), T=3)
    with pytest.raises(data.DatasetError, match="takes no parameter 'polarity'"):
        data.load("shd", T=3, polarity=False)
    with pytest.raises(events.EventDataError, match="dataset.augment has no option 'shift'"):
        data.load("events", path=str(tmp_path / "m.npz"), T=3, augment={"shift": 1})


# ---- one training step per dataset and model family ------------------------------------


TRAIN_CASES = [
    ("shd", ["experiment=shd_surrogate_comparison", "model.hidden=[16,16]", "T=8",
             "dataset.dt_ms=125"]),
    ("shd", ["experiment=shd_recurrent", "model.hidden=[16]", "T=6"]),
    pytest.param("nmnist", ["experiment=nmnist_conv", "model.channels=[4]", "T=3"],
                 marks=pytest.mark.slow),
    ("dvs_gesture", ["experiment=dvs_gesture_conv", "model.channels=[4]", "T=3"]),
    ("events", ["dataset=events", "model=mlp", "T=5"]),
]


@pytest.mark.slow
def test_event_experiments_compose_every_sweep_point():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from snntrain.config import validate
    from snntrain.paths import CONFIG_DIR
    from snntrain.surrogates import from_config as build_surrogate

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        for name in ("shd_surrogate_comparison", "shd_recurrent", "nmnist_conv",
                     "dvs_gesture_conv"):
            assert (CONFIG_DIR / "experiment" / f"{name}.yaml").read_text().startswith(
                "# @package _global_")
            cfg = hydra_compose("config", [f"experiment={name}"])
            assert cfg.encoder.name == "none" and cfg.dataset.T == cfg.T
        cfg = hydra_compose("config", ["experiment=shd_surrogate_comparison"],
                            return_hydra_config=True)
        assert cfg.hydra.sweeper.params == {"surrogate": "glob(*)", "seed": "0,1,2"}
        for surrogate in sorted(p.stem for p in (CONFIG_DIR / "surrogate").glob("*.yaml")):
            cfg = hydra_compose("config", ["experiment=shd_surrogate_comparison",
                                           f"surrogate={surrogate}"])
            validate(cfg)
            build_surrogate(cfg.surrogate)
    assert (cfg.T, cfg.dataset.downsample, list(cfg.model.hidden)) == (128, 256, [128, 128])


@pytest.mark.parametrize("dataset,overrides", TRAIN_CASES,
                         ids=["shd-mlp", "shd-recurrent", "nmnist-conv", "dvs-conv", "npz-mlp"])
def test_one_training_epoch(tmp_path, dataset, overrides):
    from snntrain.train import train_and_evaluate

    root = tmp_path / "data"
    {"shd": make_shd, "nmnist": make_nmnist, "dvs_gesture": make_gesture,
     "events": lambda r: make_npz(tmp_path / "mine.npz")}[dataset](root)
    where = (f"dataset.path={tmp_path / 'mine.npz'}" if dataset == "events"
             else f"dataset.data_dir={root}")
    cfg = compose("logger=none", "trainer.progress=false", *overrides, where,
                  "trainer.batch_size=4", "trainer.epochs=1", "dataset.val_fraction=0.2",
                  tiny=False)
    assert cfg.encoder.name == "none"
    summary = train_and_evaluate(cfg, tmp_path / "run")
    assert summary["status"] == "completed" and summary["steps"] >= 1
    assert summary["test_accuracy"] is not None and np.isfinite(summary["test_loss"])


def test_resume_refuses_other_binning_or_other_events_and_accepts_a_copy(tmp_path):
    """Other binning options, or a data file replaced by other recordings, continued the old
    checkpoint without a word (the record then claimed the new settings for every epoch).
    Both are refused naming what differs; the same file copied elsewhere resumes."""
    import shutil

    from snntrain.checkpoint import CheckpointError
    from snntrain.train import train_and_evaluate

    make_npz(tmp_path / "a.npz")
    base = ("logger=none", "trainer.progress=false", "model.hidden=[8]", "T=5", "dataset=events",
            "trainer.batch_size=4", "dataset.val_fraction=0.2")

    def run(epochs, path, *more):
        cfg = compose(*base, f"dataset.path={path}", f"trainer.epochs={epochs}", *more,
                      tiny=False)
        return train_and_evaluate(cfg, tmp_path / "run")

    first = run(1, tmp_path / "a.npz")
    for more, named in ((("dataset.binary=true",), "dataset.binary: checkpoint has "
                                                   "False, this run has True"),
                        (("dataset.dt_ms=20",), "dataset.dt_ms: checkpoint has null, "
                                                "this run has 20")):
        with pytest.raises(CheckpointError, match="incompatible run") as e:
            run(2, tmp_path / "a.npz", *more)
        assert named in str(e.value)
    make_npz(tmp_path / "b.npz", seed=1)  # other recordings under the same name
    (tmp_path / "other").mkdir()
    shutil.copy(tmp_path / "b.npz", tmp_path / "other" / "a.npz")
    with pytest.raises(CheckpointError, match=r"training data \(a hash of its examples and "
                                              r"labels\): checkpoint has [0-9a-f]{16}, this run "
                                              r"has [0-9a-f]{16}"):
        run(2, tmp_path / "other" / "a.npz")
    # the same names, sizes and labels with other events (a regenerated file)
    same = dict(np.load(tmp_path / "a.npz"))
    same["unit_train"] = np.random.default_rng(7).integers(0, 64, same["unit_train"].shape)
    np.savez(tmp_path / "other" / "a.npz", **same)
    assert (tmp_path / "other" / "a.npz").stat().st_size == (tmp_path / "a.npz").stat().st_size
    with pytest.raises(CheckpointError, match=r"training data \(a hash"):
        run(2, tmp_path / "other" / "a.npz")
    # the same training events with other test recordings: two test sets in one run's records
    same = dict(np.load(tmp_path / "a.npz"))
    same["unit_test"] = np.random.default_rng(7).integers(0, 64, same["unit_test"].shape)
    np.savez(tmp_path / "other" / "a.npz", **same)
    with pytest.raises(CheckpointError, match=r"val and test data \(a hash of their examples "
                                              r"and labels\): checkpoint has [0-9a-f]{16}, "):
        run(2, tmp_path / "other" / "a.npz")
    shutil.copy(tmp_path / "a.npz", tmp_path / "other" / "moved.npz")  # the same data, moved
    again = run(2, tmp_path / "other" / "moved.npz")
    assert again["steps"] == 2 * first["steps"]


@pytest.mark.slow
def test_fused_epoch_on_binned_events_equals_the_per_step_loop(tmp_path):
    """``trainer.fused_epoch`` keeps the binned counts on the device (as stored: uint8) and
    gathers each batch there: the same steps as the per-step loop, which reads float32 counts
    (before: refused, "needs ... an in-memory dataset", for any event dataset)."""
    import jax

    from snntrain.train import params_of, train_and_evaluate

    make_shd(tmp_path / "data", n_train=20, n_test=6)
    params, metrics = {}, {}
    for fused in (False, True):
        cfg = compose("logger=none", "trainer.progress=false", "model.hidden=[32]", "T=8",
                      "dataset=shd", f"dataset.data_dir={tmp_path / 'data'}",
                      "dataset.downsample=70", "trainer.batch_size=4", "trainer.epochs=2",
                      "trainer.parallel=none", f"trainer.fused_epoch={fused}", tiny=False)
        run = tmp_path / f"run{fused}"
        assert train_and_evaluate(cfg, run)["status"] == "completed"
        params[fused] = jax.tree.leaves(params_of(run))
        metrics[fused] = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()
                          if json.loads(x)["split"] == "epoch"]
    for a, b in zip(params[False], params[True], strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-6, rtol=0)
    for a, b in zip(metrics[False], metrics[True], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-6)
        assert b["test_accuracy"] == a["test_accuracy"]
    splits = data.load("shd", data_dir=str(tmp_path / "data"), T=8, downsample=70)
    x, y = data.fused_arrays(splits.train, "shd")
    xs, ys = splits.train[np.arange(len(splits.train))]
    assert x.dtype == np.uint8 and np.array_equal(x.astype(np.float32), xs)
    assert np.array_equal(y, ys)


@pytest.mark.parametrize(("overrides", "message"), [
    (("dataset.augment.drop=0.2",), "trainer.fused_epoch=true keeps shd's binned samples on "
                                    "the device, so it cannot draw dataset.augment anew"),
    (("dataset.in_memory=false",), "trainer.fused_epoch=true needs shd in memory; it is read "
                                   "from its cache file (dataset.in_memory): set "
                                   "dataset.in_memory=true or set trainer.fused_epoch=false"),
])
def test_fused_epoch_names_what_it_cannot_hold(tmp_path, overrides, message):
    from snntrain.train import train_and_evaluate

    make_shd(tmp_path / "data")
    cfg = compose("logger=none", "trainer.progress=false", "T=8", "dataset=shd",
                  f"dataset.data_dir={tmp_path / 'data'}", "trainer.parallel=none",
                  "trainer.fused_epoch=true", *overrides, tiny=False)
    with pytest.raises(ConfigError) as info:
        train_and_evaluate(cfg, tmp_path / "run")
    assert str(info.value).startswith(message)


def test_npz_minus_inf_times_are_dropped_and_counted_as_nan_and_inf(tmp_path, caplog):
    """A -inf time in an .npz stopped the run as a negative time, while NaN and +inf (and
    -inf in the HDF5 and DVS readers) are dropped and counted."""
    path = tmp_path / "ninf.npz"
    np.savez(path, t_train=[0.0, -np.inf, 20.0, np.nan, 5.0, np.inf, 6.0],
             unit_train=[0, 1, 2, 0, 3, 3, 1], counts_train=[4, 3], labels_train=[0, 1],
             t_test=[1.0, 2.0], unit_test=[1, 1], counts_test=[1, 1], labels_test=[1, 0],
             sensor_size=[4])
    with caplog.at_level(logging.INFO):
        d = data.load("events", path=str(path), T=2, val_fraction=0.0, dt_ms=0.01)
    frames = np.asarray(d.train.x)  # (sample, step, unit); times from each sample's first
    # sample 0: t=0 us (unit 0) in step 0; t=20 us is past the window (2 steps of 10 us)
    assert frames[0].tolist() == [[1, 0, 0, 0], [0, 0, 0, 0]]
    # sample 1: t=5 us (unit 3) and 6 us (unit 1), both in step 0
    assert frames[1].tolist() == [[0, 1, 0, 1], [0, 0, 0, 0]]
    assert "dropped 3 events with non-finite timestamps" in caplog.text
    # the cache's file names hold no ':' (the tag events:ninf.npz: Windows and SMB refuse it)
    names = [f.name for f in (tmp_path / "snntrain_cache").iterdir()]
    assert len(names) == 4 and not any(":" in n for n in names), names
