"""Datasets and the input pipeline: loaders, splits, determinism, resume, padding, errors.

tfds datasets are tested under ``tfds.testing.mock_data`` (random examples through
``tfds.data_source``; nothing is downloaded, TensorFlow is not needed) and on a real array_record
dataset prepared in a temporary directory from PNG bytes (which tfds writes without TensorFlow).
"""

import importlib.util
import inspect
import io
import re
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from _workers import cli
from conftest import compose
from PIL import Image

from snntrain import data, tfds_data, train
from snntrain.config import ConfigError

TFDS_CONFIGS = ["mnist", "fashion_mnist", "kmnist", "emnist_letters", "cifar10", "svhn"]
SHAPES = {
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "kmnist": (28, 28, 1),
    "emnist_letters": (28, 28, 1),
    "cifar10": (32, 32, 3),
    "svhn": (32, 32, 3),
}
N_MOCK = 40  # examples per split under mock_data
HAS_TF = importlib.util.find_spec("tensorflow") is not None


# ---- helpers ----------------------------------------------------------------------------


def _dataset_kwargs(cfg) -> dict:
    from omegaconf import OmegaConf

    kw = OmegaConf.to_container(cfg.dataset, resolve=True)
    return {"name": kw.pop("name"), **kw}


def _load_config(name: str, *overrides: str, seed: int = 0) -> data.Splits:
    kw = _dataset_kwargs(compose(f"dataset={name}", *overrides))
    return data.load(kw.pop("name"), seed=seed, **kw)


def _emnist_letters_source(self, split, **_):
    """What tfds stores for EMNIST letters: labels 1..26, images transposed (38 rows x 28)."""

    def make(s):
        rng = np.random.default_rng(len(s))
        return [
            {
                "image": rng.integers(0, 256, (28, 28, 1), dtype=np.uint8),
                "label": np.int64(1 + i % 26),
            }
            for i in range(N_MOCK)
        ]

    return [make(s) for s in split] if isinstance(split, list) else make(split)


@pytest.fixture
def mock_tfds(monkeypatch):
    """``tfds.testing.mock_data`` for ``N_MOCK`` examples per split (mocked, nothing to
    download: the network probe is not needed)."""
    monkeypatch.setattr(tfds_data, "network_problem", lambda: None)

    def enter(name: str = "mnist"):
        fn = _emnist_letters_source if name == "emnist_letters" else None
        return tfds.testing.mock_data(num_examples=N_MOCK, as_data_source_fn=fn)

    return enter


def _ids(source, batch_size, **kw) -> np.ndarray:
    """The labels of the real (unmasked) rows of one epoch, in order."""
    return np.concatenate([b["y"][b["mask"] > 0] for b in data.batches(source, batch_size, **kw)])


def _assert_batches_equal(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for k in g:
            np.testing.assert_array_equal(g[k], w[k], err_msg=k)


def _id_source(n: int) -> data.Arrays:
    """Example ``i`` has label ``i`` and every pixel ``i / n``: rows identify themselves."""
    x = np.broadcast_to((np.arange(n, dtype=np.float32) / n)[:, None, None, None], (n, 2, 2, 1))
    return data.Arrays(np.ascontiguousarray(x), np.arange(n, dtype=np.int32))


# ---- a real array_record dataset, prepared without TensorFlow ---------------------------


def _png(a: np.ndarray) -> io.BytesIO:
    buf = io.BytesIO()
    Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(buf, format="PNG")
    buf.seek(0)
    return buf


def _tiny_image(i: int) -> np.ndarray:
    """Example ``i``: pixel (0, 0) is ``i``, the rest a fixed function of ``i``."""
    a = (np.arange(30, dtype=np.int64).reshape(6, 5, 1) * 7 + i * 13) % 256
    a[0, 0, 0] = i
    return a.astype(np.uint8)


class SnntrainTinyImages(tfds.core.GeneratorBasedBuilder):
    """30 train + 10 test 6x5 grey images, 3 classes (label = id % 3; coarse_label = id % 2);
    no download."""

    VERSION = tfds.core.Version("1.0.0")
    encode_png = True  # tfds needs TensorFlow to encode raw arrays itself

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            supervised_keys=("image", "label"),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(6, 5, 1)),
                    "label": tfds.features.ClassLabel(num_classes=3),
                    "coarse_label": tfds.features.ClassLabel(num_classes=2),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(range(30)),
            "test": self._generate_examples(range(100, 110)),
        }

    def _generate_examples(self, ids):
        for i in ids:
            image = _png(_tiny_image(i)) if self.encode_png else _tiny_image(i)
            yield i, {"image": image, "label": i % 3, "coarse_label": i % 2}


@pytest.fixture
def tiny_dir(tmp_path, monkeypatch):
    """A data_dir with ``snntrain_tiny_images`` prepared (array_record) by snntrain itself."""
    monkeypatch.setattr(tfds_data, "network_problem", lambda: None)  # nothing to download
    assert data.main(["prepare", "snntrain_tiny_images", "--data_dir", str(tmp_path)]) == 0
    return str(tmp_path)


# ---- tfds configs under mock_data -------------------------------------------------------


@pytest.mark.parametrize("name", TFDS_CONFIGS)
def test_tfds_config_loads_under_mock(name, mock_tfds):
    with mock_tfds(name):
        splits = _load_config(name)
    n_val = round(0.1 * N_MOCK)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (N_MOCK - n_val, n_val, N_MOCK)
    assert splits.image_shape == SHAPES[name]
    assert splits.n_classes == (26 if name == "emnist_letters" else 10)
    for src in (splits.train, splits.val, splits.test):
        x, y = src[np.arange(len(src))]
        assert x.shape == (len(src), *SHAPES[name]) and x.dtype == np.float32
        assert y.shape == (len(src),) and y.dtype == np.int32
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.5  # scaled, not binarised
        assert y.min() >= 0 and y.max() < splits.n_classes


def test_emnist_letters_labels_and_orientation(mock_tfds):
    """Stored labels 1..26 become 0..25; stored (transposed) images are transposed back."""
    stored = _emnist_letters_source(None, "train")
    with mock_tfds("emnist_letters"):
        splits = _load_config("emnist_letters", "dataset.val_fraction=0")
    x, y = splits.train[np.arange(N_MOCK)]
    rows, _ = data.split_indices(N_MOCK, 0.0, 0)  # train is in the seeded split order
    stored = [stored[i] for i in rows]
    np.testing.assert_array_equal(y, [r["label"] - 1 for r in stored])
    assert y.min() == 0 and y.max() == 25
    want = np.stack([r["image"].swapaxes(0, 1) for r in stored]).astype(np.float32) / 255
    np.testing.assert_array_equal(x, want)


def test_labels_outside_the_classes_are_an_error(mock_tfds):
    """Plain mock EMNIST letters draws labels from all 37 stored classes: 0 and 27..36 fail."""
    with mock_tfds(), pytest.raises(data.DatasetError, match=r"outside 0\.\.25 after "):
        _load_config("emnist_letters")


@pytest.mark.parametrize(
    "name", [n if n == "mnist" else pytest.param(n, marks=pytest.mark.slow) for n in TFDS_CONFIGS]
)
def test_one_training_step_on_each_tfds_config(name, mock_tfds):
    with mock_tfds(name):
        exp = train.build(
            compose(f"dataset={name}", "trainer.batch_size=8", "T=4", "model.hidden=[16]")
        )
    step = exp.parallel.compile(train.make_train_step(exp))
    batch = exp.parallel.put_batch(next(data.batches(exp.data.train, 8, seed=0)))
    state, metrics = step(
        exp.parallel.replicate(exp.init_state()), batch, jax.random.PRNGKey(0), exp.surrogate
    )
    metrics = exp.parallel.metrics_to_host(metrics)
    assert bool(metrics["finite"]) and float(metrics["count"]) == 8.0
    # cross-entropy of a near-uniform untrained readout is about log(n_classes)
    assert (
        0.3 * np.log(exp.data.n_classes) < float(metrics["loss"]) < 3 * np.log(exp.data.n_classes)
    )
    assert int(exp.parallel.unreplicate(state).step) == 1


def test_in_memory_and_streaming_give_identical_batches(mock_tfds):
    with mock_tfds():
        mem = _load_config("cifar10", "dataset.in_memory=true", seed=3)
        disk = _load_config("cifar10", "dataset.in_memory=false", seed=3)
    assert isinstance(mem.train, data.Arrays) and isinstance(disk.train, tfds_data.Records)
    for a, b in ((mem.train, disk.train), (mem.val, disk.val), (mem.test, disk.test)):
        kw = dict(seed=3, epoch=1)
        _assert_batches_equal(list(data.batches(b, 16, **kw)), list(data.batches(a, 16, **kw)))


# ---- a real prepared dataset ------------------------------------------------------------


def test_prepare_cli_prints_where_it_went(tiny_dir, capsys):
    assert data.main(["prepare", "snntrain_tiny_images", "--data_dir", tiny_dir]) == 0
    out = capsys.readouterr().out
    assert f"prepared in {tiny_dir}/snntrain_tiny_images/1.0.0 (train 30, test 10)" in out
    assert "dataset.data_dir" in out


def test_prepare_names_our_configs_for_an_unknown_name(tmp_path, capsys):
    """A misspelt config name is matched against snntrain's configs, not only tfds's ~250
    names (before: ``prepare shdd`` said ``see the tfds catalog``); digits needs nothing."""
    assert data.main(["prepare", "shdd", "--data_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("snntrain.data: error: shdd is not a dataset config: did you mean "
                          "shd? (valid: mnist, ") and err.endswith("dvs_gesture, or any tfds name)")
    assert data.main(["prepare", "snntrain_no_such_set", "--data_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("snntrain.data: error: snntrain_no_such_set is not a dataset config "
                          "(mnist, ") and "and tfds has no dataset 'snntrain_no_such_set'" in err
    assert data.main(["prepare", "digits"]) == 0
    assert capsys.readouterr().out.startswith("digits: nothing to prepare: it ships with "
                                              "scikit-learn")


@pytest.mark.parametrize("in_memory", [True, False])
def test_real_array_record_dataset(tiny_dir, in_memory):
    """Every pixel and label survives the trip through tfds's files, in RAM or streamed."""
    splits = data.load(
        "tfds",
        tfds_name="snntrain_tiny_images",
        data_dir=tiny_dir,
        seed=1,
        in_memory=in_memory,
        val_fraction=0.2,
    )
    assert splits.image_shape == (6, 5, 1) and splits.n_classes == 3
    assert (len(splits.train), len(splits.val), len(splits.test)) == (24, 6, 10)
    ids = {}
    for split in ("train", "val", "test"):
        src = getattr(splits, split)
        x, y = src[np.arange(len(src))]
        got = np.round(x * 255).astype(np.int64)
        ids[split] = got[:, 0, 0, 0]
        np.testing.assert_array_equal(got, np.stack([_tiny_image(i) for i in ids[split]]))
        np.testing.assert_array_equal(y, ids[split] % 3)
    assert sorted([*ids["train"], *ids["val"]]) == list(range(30))
    assert sorted(ids["test"]) == list(range(100, 110))


def test_real_dataset_cache_and_resize(tiny_dir):
    kw = dict(tfds_name="snntrain_tiny_images", data_dir=tiny_dir, seed=0)
    first = data.load("tfds", in_memory=True, **kw)
    cached = list((Path(tiny_dir) / "snntrain_tiny_images/1.0.0/snntrain_cache").iterdir())
    assert [p.name[:-len("_0123456789ab.npz")] for p in sorted(cached)] == [
        "test_6x5x1_offset0", "train_6x5x1_offset0"]
    again = data.load("tfds", in_memory=True, **kw)
    np.testing.assert_array_equal(again.train.x, first.train.x)
    # another label key is another cache (it loaded the cached labels of the first), and the
    # cached labels are checked against dataset.n_classes (they were not: NaN loss, "diverged")
    coarse = data.load("tfds", in_memory=True, label_key="coarse_label", **kw)
    x, y = coarse.test[np.arange(len(coarse.test))]
    np.testing.assert_array_equal(y, np.round(x[:, 0, 0, 0] * 255).astype(int) % 2)
    assert len(list(cached[0].parent.iterdir())) == 4
    decoded = []
    load = tfds_data.Records.load
    with pytest.MonkeyPatch.context() as mp:  # (refused from the cache: nothing decoded again)
        mp.setattr(tfds_data.Records, "load", lambda self: decoded.append(1) or load(self))
        with pytest.raises(data.DatasetError, match=r"label 2 \(stored 2\) is outside 0\.\.1"):
            data.load("tfds", in_memory=True, n_classes=2, **kw)
    assert decoded == []
    mem = data.load("tfds", in_memory=True, resize=[4, 4], **kw)
    disk = data.load("tfds", in_memory=False, resize=[4, 4], **kw)
    assert mem.image_shape == (4, 4, 1)
    _assert_batches_equal(list(data.batches(disk.train, 8)), list(data.batches(mem.train, 8)))


def test_real_dataset_errors(tiny_dir):
    kw = dict(tfds_name="snntrain_tiny_images", data_dir=tiny_dir)
    with pytest.raises(data.DatasetError, match="has no split 'validation'; splits: train, test"):
        data.load("tfds", test_split="validation", **kw)
    with pytest.raises(data.DatasetError, match=r"label 2 \(stored 2\) is outside 0\.\.1"):
        data.load("tfds", n_classes=2, in_memory=True, **kw)
    with pytest.raises(data.DatasetError, match=r"image_shape=\[28, 28, 1\] but the images are"):
        data.load("tfds", image_shape=[28, 28, 1], **kw)
    with pytest.raises(data.DatasetError, match="did you mean mnist"):
        data.load("tfds", tfds_name="mnistt")
    with pytest.raises(data.DatasetError, match="takes no parameter 'tfds_nmae'"):
        data.load("tfds", tfds_nmae="mnist")
    carved = data.load("tfds", test_split=None, test_fraction=0.5, val_fraction=0, **kw)
    assert (len(carved.train), len(carved.test)) == (15, 15)
    # tfds' split arithmetic (it was refused: "has no split 'train+test'")
    summed = data.load("tfds", train_split="train+test[:5]", val_fraction=0, **kw)
    assert (len(summed.train), len(summed.test)) == (35, 10)
    with pytest.raises(data.DatasetError, match="has no split 'train\\+valid'; splits: train"):
        data.load("tfds", train_split="train+valid", **kw)


# ---- offline and failure behaviour ------------------------------------------------------


def test_unprepared_dataset_without_download_fails_in_seconds(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(data.NotPrepared) as err:
        _load_config("mnist", f"dataset.data_dir={tmp_path}", "dataset.download=false")
    assert time.perf_counter() - t0 < 30
    msg = str(err.value)
    assert "\n" not in msg
    assert f"mnist is not prepared in {tmp_path} (looked for {tmp_path}/mnist/3.0.1)" in msg
    assert f"python -m snntrain.data prepare mnist --data_dir {tmp_path}" in msg


def test_offline_download_fails_in_seconds_through_the_trainer(tmp_path, monkeypatch):
    """No network (simulated by an unresolvable probe host): a one-line ConfigError from build,
    in seconds, instead of tfds's ~205 s of download retries."""
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(tfds_data, "PROBE_ADDRESS", ("snntrain-offline-test.invalid", 443))
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        train.build(compose("dataset=fashion_mnist", f"dataset.data_dir={tmp_path}"))
    assert time.perf_counter() - t0 < 30
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"fashion_mnist is not prepared in {tmp_path} ")
    assert (
        "there is no network to download it (cannot reach snntrain-offline-test.invalid:443" in msg
    )
    assert "python -m snntrain.data prepare fashion_mnist --data_dir DIR" in msg


def test_network_probe_goes_through_the_https_proxy(monkeypatch):
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    t0 = time.perf_counter()
    assert tfds_data.network_problem(timeout=2.0).startswith("cannot reach 127.0.0.1:9")
    assert time.perf_counter() - t0 < 5


def test_network_probe_of_an_https_proxy_without_port_tries_443(monkeypatch):
    tried = []

    def connect(address, timeout):
        tried.append(address)
        raise OSError("refused")

    monkeypatch.setattr(tfds_data.urllib.request, "getproxies",
                        lambda: {"https": "https://proxy.example.org"})
    monkeypatch.setattr(tfds_data.socket, "create_connection", connect)
    assert tfds_data.network_problem(timeout=2.0) == "cannot reach proxy.example.org:443: refused"
    assert tried == [("proxy.example.org", 443)]


def test_prepare_cli_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tfds_data, "network_problem", lambda: "cannot reach x:443: no route")
    assert data.main(["prepare", "kmnist", "--data_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snntrain.data: error: kmnist is not prepared in ")
    assert f"run this on a machine with internet and copy {tmp_path} here" in err


@pytest.mark.skipif(HAS_TF, reason="TensorFlow is installed")
def test_preparing_without_tensorflow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_data, "network_problem", lambda: None)
    monkeypatch.setattr(SnntrainTinyImages, "encode_png", False)  # tfds must encode: needs TF
    with pytest.raises(
        data.TensorFlowMissing,
        match=r"needs TensorFlow, which is not "
        r"installed: pip install 'snntrain\[tfds\]'",
    ):
        tfds_data.prepare("snntrain_tiny_images", str(tmp_path))


def test_tfrecord_dataset_needs_tensorflow(tiny_dir, capsys):
    """A dataset stored as tfrecord (``tfds.load``'s default) is readable only with TF."""
    info = Path(tiny_dir) / "snntrain_tiny_images/1.0.0/dataset_info.json"
    info.write_text(info.read_text().replace('"array_record"', '"tfrecord"'))
    kw = dict(tfds_name="snntrain_tiny_images", data_dir=tiny_dir)
    if not HAS_TF:
        with pytest.raises(
            data.TensorFlowMissing,
            match=rf"in {tiny_dir} is stored as tfrecord, "
            r"which needs TensorFlow to read: pip install 'snntrain\[tfds\]'",
        ):
            data.load("tfds", **kw)
    with pytest.raises(data.DatasetError, match="has no random access|needs TensorFlow"):
        data.load("tfds", in_memory=False, **kw)
    assert data.main(["prepare", "snntrain_tiny_images", "--data_dir", tiny_dir]) == 2
    assert "for an array_record copy choose another directory" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_TF, reason="needs TensorFlow (pip install -e '.[tfds]')")
def test_tfrecord_dataset_is_read_into_memory_with_tensorflow(tmp_path, tiny_dir):
    builder = SnntrainTinyImages(data_dir=str(tmp_path))
    builder.download_and_prepare(file_format="tfrecord")
    kw = dict(tfds_name="snntrain_tiny_images", seed=2)
    records = data.load("tfds", data_dir=str(tmp_path), **kw)
    arrays = data.load("tfds", data_dir=tiny_dir, in_memory=True, **kw)
    assert isinstance(records.train, data.Arrays)
    for a, b in ((records.train, arrays.train), (records.test, arrays.test)):
        order = np.argsort(a.x[:, 0, 0, 0]), np.argsort(b.x[:, 0, 0, 0])  # files order differ
        np.testing.assert_array_equal(a.x[order[0]], b.x[order[1]])
        np.testing.assert_array_equal(a.y[order[0]], b.y[order[1]])
    assert sys.modules["tensorflow"].config.get_visible_devices("GPU") == []


def test_unknown_dataset_and_missing_required_keys():
    with pytest.raises(data.DatasetError, match="unknown dataset 'mnst'; valid: arrays, cifar10"):
        data.load("mnst")
    with pytest.raises(data.DatasetError, match="dataset.tfds_name is required"):
        _load_config("tfds")
    with pytest.raises(data.BadArrays, match="dataset.path is required"):
        _load_config("arrays")


# ---- arrays -----------------------------------------------------------------------------


def _npz(path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def _good(n_train=50, n_test=20, shape=(5, 4), dtype=np.uint8, n_classes=4, seed=0) -> dict:
    rng = np.random.default_rng(seed)

    def x(n):
        return (
            rng.integers(0, 256, (n, *shape)).astype(np.uint8)
            if dtype == np.uint8
            else rng.random((n, *shape)).astype(dtype)
        )

    return {
        "x_train": x(n_train),
        "y_train": rng.integers(0, n_classes, n_train),
        "x_test": x(n_test),
        "y_test": rng.integers(0, n_classes, n_test),
    }


@pytest.mark.parametrize("shape", [(5, 4), (5, 4, 3)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_arrays_loads_uint8_and_float_images(tmp_path, shape, dtype):
    arrays = _good(shape=shape, dtype=dtype)
    arrays["y_train"][0] = 3  # inferred n_classes = max label + 1
    path = _npz(tmp_path / "mine.npz", **arrays)
    splits = _load_config("arrays", f"dataset.path={path}", "dataset.val_fraction=0.2", seed=5)
    c = shape[2] if len(shape) == 3 else 1
    assert splits.image_shape == (5, 4, c) and splits.n_classes == 4
    assert (len(splits.train), len(splits.val), len(splits.test)) == (40, 10, 20)
    x, y = splits.test[np.arange(20)]
    want = arrays["x_test"].reshape(20, 5, 4, c)
    want = want.astype(np.float32) / 255 if dtype == np.uint8 else want.astype(np.float32)
    np.testing.assert_array_equal(x, want)
    assert x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(y, arrays["y_test"])
    rest, held = data.split_indices(50, 0.2, 5)  # val is carved from train with the run seed
    np.testing.assert_array_equal(splits.val.y, arrays["y_train"][held])
    assert _load_config("arrays", f"dataset.path={path}", "dataset.n_classes=7").n_classes == 7


def _bad(**changes):
    arrays = _good()
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    return arrays


BAD_NPZ = {
    "missing key": (_bad(y_test=None), r"is missing y_test; it has x_train, y_train, x_test"),
    "lengths": (_bad(y_train=np.zeros(49, int)), r"x_train has 50 images but y_train 49 labels"),
    "image dtype": (
        _bad(x_train=np.zeros((50, 5, 4), np.int64)),
        r"x_train has dtype int64; expected uint8 \(0\.\.255\) or float in \[0, 1\]",
    ),
    "label dtype": (
        _bad(y_test=np.zeros(20, np.float32)),
        r"y_test has dtype float32; labels must be integers",
    ),
    "one-hot labels": (_bad(y_test=np.zeros((20, 4), int)), r"y_test has shape \(20, 4\); "
                       r"expected class indices of shape \(N,\) \(one-hot\? y.argmax\(-1\)\)"),
    # argmax of an (N, 1) column made every label 0
    "a column of labels": (_bad(y_test=np.zeros((20, 1), int)), r"y_test has shape \(20, 1\); "
                           r"expected class indices of shape \(N,\) \(y.ravel\(\)\)"),
    # 1.0000001 was printed "1" (the span looked valid)
    "just above 1": (_bad(x_test=np.full((20, 5, 4), 0.5, np.float32) + np.eye(1, 400).reshape(
        20, 5, 4).astype(np.float32) * np.float32(0.5000001)),
        r"x_test values span 0\.5\.\.1\.0000001\d* \(1 outside \[0, 1\]\)"),
    "negative label": (_bad(y_test=np.full(20, -1)),
                       r"\(y_test\): labels span -1\.\.-1, outside 0\.\.3"),
    "value range": (
        _bad(x_test=np.full((20, 5, 4), 255.0, np.float32)),
        r"x_test values span 255\.0\.\.255\.0 \(400 outside \[0, 1\]\); float images must be "
        r"in \[0, 1\]",
    ),
    "nan": (_bad(x_test=np.where(np.arange(400).reshape(20, 5, 4) == 5, np.nan, 0.5)
                 .astype(np.float32)),
            r"x_test has 1 NaN/Inf values \(the first in image 0\); float images "
            r"must be finite"),
    "inf among valid values": (
        _bad(x_test=np.where(np.arange(400).reshape(20, 5, 4) > 390, np.inf, 0.5)
             .astype(np.float32)),
        r"x_test has 9 NaN/Inf values \(the first in image 19\)"),
    "image rank": (_bad(x_test=np.zeros((20, 20), np.uint8)), r"x_test has shape \(20, 20\)"),
    "image shapes": (
        _bad(x_test=np.zeros((20, 4, 5), np.uint8)),
        r"x_train images are \(5, 4, 1\) but x_test \(4, 5, 1\)",
    ),
    "empty": (
        _bad(x_test=np.zeros((0, 5, 4), np.uint8), y_test=np.zeros(0, int)),
        r"the test split is empty",
    ),
    "mixed dtypes": (
        _bad(x_test=np.zeros((20, 5, 4), np.float32)),
        r"x_train is uint8 but x_test float32",
    ),
    # a 1-class classifier trained to test accuracy 1.0 without a word
    "single class": (_bad(y_train=np.zeros(50, int), y_test=np.zeros(20, int)),
                     r"\(y_train\): the training labels hold a single class \(0\); a "
                     r"classifier needs at least two"),
    # 8 x 3 x 8 x 8 was read as 3 x 8 images of 8 channels
    "channels first": (
        _bad(x_train=np.zeros((50, 3, 8, 8), np.uint8), x_test=np.zeros((20, 3, 8, 8), np.uint8)),
        r"x_train has shape \(50, 3, 8, 8\), which looks channels-first \(N x C x H x W\); "
        r"store N x H x W x C \(np.moveaxis\(x_train, 1, -1\)\)"),
    "pickle": (
        _bad(y_test=np.array([1, "a"] * 10, dtype=object)),
        r"holds Python objects \(samples of different shapes\?\), which are not read "
        r"\(pickle\); pad or crop every sample to one shape",
    ),
}


@pytest.mark.parametrize("case", list(BAD_NPZ))
def test_each_malformed_npz_gives_its_error(tmp_path, case):
    arrays, message = BAD_NPZ[case]
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(data.BadArrays, match=message) as err:
        data.load("arrays", path=path)
    assert "\n" not in str(err.value) and str(err.value).startswith(path)


def test_a_test_class_missing_from_train_is_noted(tmp_path, caplog):
    """A test label above every train label silently widened the readout."""
    import logging

    arrays = _good(n_classes=4)
    arrays["y_train"] = arrays["y_train"] % 3
    arrays["y_test"][0] = 7
    with caplog.at_level(logging.INFO, logger="snntrain"):
        splits = data.load("arrays", path=_npz(tmp_path / "a.npz", **arrays))
    assert splits.n_classes == 8
    assert (f"note: {tmp_path / 'a.npz'} (y_test): the test labels hold class(es) 3, 7 that "
            "the training labels never show (n_classes=8); the model cannot learn them"
            ) in caplog.messages


def test_arrays_file_errors(tmp_path):
    with pytest.raises(data.BadArrays, match="no such file"):
        data.load("arrays", path=str(tmp_path / "nope.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(data.BadArrays, match="cannot read it without pickle|not a readable"):
        data.load("arrays", path=str(tmp_path / "junk.npz"))
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(data.BadArrays, match="single .npy array"):
        data.load("arrays", path=str(tmp_path / "one.npy"))
    with pytest.raises(data.BadArrays, match=r"labels span 0\.\.3, outside 0\.\.1 \(dataset"):
        data.load("arrays", path=_npz(tmp_path / "ok.npz", **_good()), n_classes=2)


# ---- the pipeline -----------------------------------------------------------------------


def test_shuffling_is_deterministic_per_seed_and_differs_between_epochs():
    src = _id_source(100)
    e0 = _ids(src, 16, seed=7, epoch=0)
    np.testing.assert_array_equal(e0, _ids(src, 16, seed=7, epoch=0))
    assert not np.array_equal(e0, _ids(src, 16, seed=7, epoch=1))
    assert not np.array_equal(e0, _ids(src, 16, seed=8, epoch=0))
    assert sorted(e0) == list(range(100))
    np.testing.assert_array_equal(_ids(src, 16, shuffle=False), np.arange(100))


@pytest.mark.parametrize("epoch", [0, 3])
@pytest.mark.parametrize("k", [1, 4, 6])
def test_resuming_at_step_k_of_epoch_e_yields_the_uninterrupted_batches(epoch, k):
    src = _id_source(103)
    full = list(data.batches(src, 16, seed=11, epoch=epoch))
    assert len(full) == 7
    _assert_batches_equal(list(data.batches(src, 16, seed=11, epoch=epoch, start=k)), full[k:])


def test_resuming_a_streamed_source(mock_tfds):
    with mock_tfds():
        splits = _load_config("mnist", "dataset.in_memory=false")
    full = list(data.batches(splits.train, 8, seed=2, epoch=1))
    _assert_batches_equal(list(data.batches(splits.train, 8, seed=2, epoch=1, start=3)), full[3:])


def test_last_batch_is_padded_and_masked_and_each_example_appears_once():
    src = _id_source(37)
    got = list(data.batches(src, 8, seed=0, epoch=2))
    assert len(got) == 5 and all(b["x"].shape == (8, 2, 2, 1) for b in got)
    np.testing.assert_array_equal(got[-1]["mask"], [1, 1, 1, 1, 1, 0, 0, 0])
    assert sum(b["mask"].sum() for b in got) == 37
    real = np.concatenate([b["y"][b["mask"] > 0] for b in got])
    np.testing.assert_array_equal(np.sort(real), np.arange(37))
    last = got[-1]
    assert (last["y"][5:] == last["y"][0]).all()  # padding repeats a real row (mask 0)
    for b in got:
        np.testing.assert_array_equal(b["index"], np.arange(8))
        want = b["y"].astype(np.float32) / np.float32(37)
        np.testing.assert_array_equal(b["x"][:, 0, 0, 0], want)


@pytest.mark.parametrize("n_processes", [2, 4])
def test_process_rows_concatenate_to_the_global_batch(n_processes):
    src, batch_size = _id_source(45), 8
    per = batch_size // n_processes
    whole = list(data.batches(src, batch_size, seed=4, epoch=1))
    parts = [
        list(data.batches(src, batch_size, seed=4, epoch=1, rows=slice(p * per, (p + 1) * per)))
        for p in range(n_processes)
    ]
    for i, batch in enumerate(whole):
        for key in batch:
            np.testing.assert_array_equal(
                np.concatenate([parts[p][i][key] for p in range(n_processes)]), batch[key]
            )


def test_batch_plan_by_hand_without_shuffling():
    idx_SxB, mask_SxB = data.batch_plan(10, 4, seed=0, epoch=0, shuffle=False)
    assert idx_SxB.dtype == np.int32 and mask_SxB.dtype == np.float32
    # rows 0..9 in order; the last batch [8, 9] is padded with its own first row, 8
    np.testing.assert_array_equal(idx_SxB, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 8, 8]])
    np.testing.assert_array_equal(mask_SxB, [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]])


@pytest.mark.parametrize(("n", "batch_size"), [(37, 8), (32, 8), (5, 8), (1, 1)])
def test_batch_plan_is_the_seeded_permutation_padded_with_the_last_batchs_first_row(
    n, batch_size
):
    idx_SxB, mask_SxB = data.batch_plan(n, batch_size, seed=3, epoch=2)
    steps = -(-n // batch_size)
    assert idx_SxB.shape == mask_SxB.shape == (steps, batch_size)
    order = np.random.default_rng([3, 2]).permutation(n)  # the documented epoch order
    np.testing.assert_array_equal(idx_SxB.reshape(-1)[:n], order)
    np.testing.assert_array_equal(mask_SxB.reshape(-1), np.arange(steps * batch_size) < n)
    real = n - (steps - 1) * batch_size  # rows of the last batch
    assert (idx_SxB[-1, real:] == order[(steps - 1) * batch_size]).all()


def test_batch_plan_of_no_examples_is_empty():
    idx_SxB, mask_SxB = data.batch_plan(0, 4, seed=0, epoch=0)
    assert idx_SxB.shape == mask_SxB.shape == (0, 4)


@pytest.mark.parametrize("start", [0, 2, 4, 5])
def test_batch_plan_is_what_batches_read(start):
    src = _id_source(37)  # label i for example i: the batches show the rows they read
    idx_SxB, mask_SxB = data.batch_plan(37, 8, seed=5, epoch=1, start=start)
    full_idx, full_mask = data.batch_plan(37, 8, seed=5, epoch=1)
    np.testing.assert_array_equal(idx_SxB, full_idx[start:])  # start skips whole batches
    np.testing.assert_array_equal(mask_SxB, full_mask[start:])
    got = list(data.batches(src, 8, seed=5, epoch=1, start=start))
    assert len(got) == len(idx_SxB) == 5 - start
    for b, idx_B, mask_B in zip(got, idx_SxB, mask_SxB, strict=True):
        np.testing.assert_array_equal(b["y"], idx_B)
        np.testing.assert_array_equal(b["mask"], mask_B)


def test_background_reading_stops_and_reports_errors():
    class Failing(data.Arrays):
        prefetch = True

        def __getitem__(self, idx):
            if (self.y[idx] >= 30).any():
                raise RuntimeError("disk on fire")
            return super().__getitem__(idx)

    base = _id_source(40)
    src = Failing(base.x, base.y)
    gen = data.batches(src, 10, shuffle=False)
    assert next(gen)["y"][0] == 0
    gen.close()  # stopping early ends the reader thread
    with pytest.raises(RuntimeError, match="disk on fire"):
        list(data.batches(src, 10, shuffle=False))
    assert len(list(data.batches(Failing(base.x[:30], base.y[:30]), 10, shuffle=False))) == 3


def test_digits_is_unchanged_by_the_refactor():
    splits = data.load("digits", seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1294, 144, 359)
    assert splits.train.x.dtype == np.float32 and splits.image_shape == (8, 8, 1)


def test_every_dataset_config_names_a_loader_and_only_its_parameters():
    from snntrain.paths import CONFIG_DIR

    names = sorted(p.stem for p in (CONFIG_DIR / "dataset").glob("*.yaml"))
    assert names == sorted(data.LOADERS)
    for name in names:
        kw = _dataset_kwargs(compose(f"dataset={name}"))
        assert kw.pop("name") == name
        valid = set(inspect.signature(data.LOADERS[name]).parameters)
        assert set(kw) <= valid, (name, set(kw) - valid)
        spec = data.TFDS_DATASETS.get(name, {})
        for key, value in spec.items():  # the yaml states what the code assumes
            assert tuple(kw[key]) == value if isinstance(value, tuple) else kw[key] == value


def test_reading_tfds_datasets_does_not_import_tensorflow():
    """Everything above (mocked and prepared tfds datasets) ran without TensorFlow."""
    assert HAS_TF or "tensorflow" not in sys.modules


def test_a_fraction_out_of_range_from_python_names_its_key():
    """From Python (the command line checks first) it said "split fraction must be in [0, 1)"."""
    from snntrain.sources import DatasetError

    for kw, key in (({"val_fraction": 1.0}, "dataset.val_fraction=1.0"),
                    ({"val_fraction": -0.1}, "dataset.val_fraction=-0.1")):
        with pytest.raises(DatasetError, match=rf"^{re.escape(key)} is invalid: must be >= 0 "
                                               "and < 1$"):
            data.load("digits", seed=0, **kw)


def test_an_unprepared_dataset_is_refused_before_the_run_directory(tmp_path, monkeypatch):
    """From the file system alone (no tfds import), at start-up: a named tfds dataset with no
    ``dataset_info.json`` under ``<data_dir>/<tfds name>`` and no way to download it was refused
    only after the run directory (and its failure summary.json) existed."""
    from snntrain import config

    def check(*overrides):
        return config.check_files(config.parse(compose("logger=none", *overrides, tiny=False)))

    monkeypatch.setattr(tfds_data, "network_problem", lambda: "cannot reach x:443: no route")
    with pytest.raises(ConfigError) as err:
        check("dataset=emnist_letters", f"dataset.data_dir={tmp_path}")
    assert str(err.value) == (
        f"emnist_letters is not prepared in {tmp_path} (looked for {tmp_path}/emnist/letters) "
        "and there is no network to download it (cannot reach x:443: no route): on a machine "
        "with internet run `python -m snntrain.data prepare emnist_letters --data_dir DIR`, copy "
        "DIR here and set dataset.data_dir=<copy>")
    with pytest.raises(ConfigError, match=r"dataset.download=false\. Run `python -m snntrain"):
        check("dataset=mnist", f"dataset.data_dir={tmp_path}", "dataset.download=false")
    # prepared (any version), or a network to download it: left to the loader
    info = tmp_path / "mnist" / "3.0.1" / "dataset_info.json"
    info.parent.mkdir(parents=True)
    info.write_text("{}")
    assert check("dataset=mnist", f"dataset.data_dir={tmp_path}") == (28, 28, 1)
    # a version directory linked in from a shared copy (rglob does not follow the link)
    shared = tmp_path / "shared" / "3.0.0"
    shared.mkdir(parents=True)
    (shared / "dataset_info.json").write_text("{}")
    (tmp_path / "emnist" / "letters").mkdir(parents=True)
    (tmp_path / "emnist" / "letters" / "3.0.0").symlink_to(shared)
    assert check("dataset=emnist_letters", f"dataset.data_dir={tmp_path}",
                 "dataset.download=false") == (28, 28, 1)
    monkeypatch.setattr(tfds_data, "network_problem", lambda: None)
    assert check("dataset=kmnist", f"dataset.data_dir={tmp_path}") == (28, 28, 1)
    # through the command line: nothing is written
    p = cli("logger=none", "dataset=kmnist", f"dataset.data_dir={tmp_path}",
            "dataset.download=false", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(
        f"snntrain: error: kmnist is not prepared in {tmp_path} (looked for {tmp_path}/kmnist)")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["emnist", "mnist", "shared"]


def test_binary_uint8_images_are_noted(tmp_path, caplog):
    """uint8 0/1 images are pixels 0 and 1/255: the rate code all but never spikes (a tester's
    run on near-zero input, without a word)."""
    import logging

    arrays = _good()
    arrays["x_train"] = (arrays["x_train"] > 127).astype(np.uint8)
    arrays["x_test"] = (arrays["x_test"] > 127).astype(np.uint8)
    with caplog.at_level(logging.INFO, logger="snntrain"):
        data.load("arrays", path=_npz(tmp_path / "b.npz", **arrays))
    assert [m for m in caplog.messages if "uint8 with values 0 and 1" in m] == [
        f"note: {tmp_path / 'b.npz'}: x_train is uint8 with values 0 and 1 only, read as pixels "
        "k/255 (at most 0.004: the rate code all but never spikes); store binary images as "
        "uint8 0/255 or float32 0.0/1.0"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="snntrain"):
        data.load("arrays", path=_npz(tmp_path / "g.npz", **_good()))
    assert not [m for m in caplog.messages if "uint8 with values 0 and 1" in m]
    # all zeros (uint8 or float): said as no input at all, not as binary images (tester)
    for dtype in (np.uint8, np.float32):
        arrays = _good(dtype=dtype)
        arrays["x_train"] = np.zeros_like(arrays["x_train"])
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="snntrain"):
            data.load("arrays", path=_npz(tmp_path / f"z{dtype.__name__}.npz", **arrays))
        assert [m for m in caplog.messages if m.startswith("note: ")] == [
            f"note: {tmp_path / f'z{dtype.__name__}.npz'}: every pixel of x_train is 0: the "
            "rate and direct encoders give the network no input (latency with threshold 0 fires "
            "every pixel at the last step)"]
