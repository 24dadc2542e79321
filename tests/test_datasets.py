"""Dataset generators, file loaders (on small files written here) and per-seed splits."""

from __future__ import annotations

import gzip
import random
import struct

import numpy as np
import pytest

from ponder.catalog.datasets import load_pool, split
from ponder.catalog.datasets.files import read_cifar_batch, read_idx
from ponder.errors import DataError


def _idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_roundtrip(tmp_path, compress, dtype):
    arr = (np.arange(2 * 3 * 4) * 3 % 251).astype(dtype).reshape(2, 3, 4)
    raw = _idx_bytes(arr)
    p = tmp_path / ("a.idx.gz" if compress else "a.idx")
    p.write_bytes(gzip.compress(raw) if compress else raw)
    out = read_idx(p)
    assert out.dtype == np.dtype(dtype) and np.array_equal(out, arr)


def test_idx_truncated_and_malformed(tmp_path):
    raw = _idx_bytes(np.zeros((3, 4), np.uint8))
    (tmp_path / "t").write_bytes(raw[:-1])
    with pytest.raises(DataError, match="truncated or malformed"):
        read_idx(tmp_path / "t")
    (tmp_path / "m").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "m")
    (tmp_path / "g").write_bytes(b"\x1f\x8bgarbage")
    with pytest.raises(DataError, match="damaged gzip"):
        read_idx(tmp_path / "g")
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "missing")


def test_mnist_idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    for stem, n in (("train", 20), ("t10k", 8)):
        (tmp_path / f"{stem}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))))
        (tmp_path / f"{stem}-labels-idx1-ubyte").write_bytes(_idx_bytes((np.arange(n) % 10).astype(np.uint8)))
    pool = load_pool("mnist_idx", {"path": str(tmp_path)})
    assert pool.x_train.shape == (20, 1, 28, 28) and pool.x_test.shape == (8, 1, 28, 28)
    assert pool.n_classes == 10 and abs(pool.x_train.mean()) < 1e-5


def test_cifar_batches(tmp_path):
    rng = np.random.default_rng(1)

    def batch(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        pixels = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        return np.concatenate([labels[:, None], pixels], 1).tobytes(), labels, pixels

    raw1, l1, p1 = batch(5)
    raw2, _, _ = batch(4)
    (tmp_path / "data_batch_1.bin").write_bytes(raw1)
    (tmp_path / "data_batch_2.bin").write_bytes(raw2)
    (tmp_path / "test_batch.bin").write_bytes(batch(3)[0])
    x, y = read_cifar_batch(tmp_path / "data_batch_1.bin")
    assert np.array_equal(y, l1) and np.array_equal(x.reshape(5, -1), p1)
    pool = load_pool("cifar10_bin", {"path": str(tmp_path)})
    assert pool.x_train.shape == (9, 3, 32, 32) and pool.x_test.shape == (3, 3, 32, 32)
    (tmp_path / "bad.bin").write_bytes(raw1[:-10])
    with pytest.raises(DataError, match="not a whole number"):
        read_cifar_batch(tmp_path / "bad.bin")


def test_npz_loader_refuses_pickles_and_missing_arrays(tmp_path):
    good = tmp_path / "d.npz"
    np.savez(good, x_train=np.ones((6, 3), np.float32), y_train=np.arange(6) % 2, x_test=np.zeros((2, 3)), y_test=np.array([0, 1]))
    pool = load_pool("npz", {"path": str(good)})
    assert pool.n_classes == 2 and pool.sample_shape == (3,)
    obj = tmp_path / "o.npz"
    np.savez(obj, x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1, int), x_test=np.zeros((1, 1)), y_test=np.zeros(1, int))
    with pytest.raises(DataError, match="never unpickles"):
        load_pool("npz", {"path": str(obj)})
    part = tmp_path / "p.npz"
    np.savez(part, x_train=np.ones((2, 2)))
    with pytest.raises(DataError, match="lacks the arrays"):
        load_pool("npz", {"path": str(part)})
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable npz"):
        load_pool("npz", {"path": str(tmp_path / "junk.npz")})


def test_nan_in_data_is_reported_before_training(tmp_path):
    p = tmp_path / "nan.npz"
    x = np.ones((4, 2), np.float32)
    x[1, 1] = np.nan
    np.savez(p, x_train=x, y_train=np.array([0, 1, 0, 1]), x_test=np.ones((2, 2)), y_test=np.array([0, 1]))
    with pytest.raises(DataError, match="1 NaN or infinite values in x_train"):
        load_pool("npz", {"path": str(p)})


def test_mnist1d_is_the_standard_split_and_leaves_global_rng_alone():
    np.random.seed(123)
    random.seed(123)
    before_np, before_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    pool = load_pool("mnist1d")
    assert (np.random.random(), random.random()) == (before_np, before_py)
    assert pool.x_train.shape == (4000, 1, 40) and pool.x_test.shape == (1000, 1, 40)
    assert pool.n_classes == 10
    # checksum of the labels catches RNG drift across numpy versions
    assert pool.y_train[:20].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1, 6, 9, 4, 3, 4, 5, 1, 9, 0, 3]
    assert int(pool.y_train.sum()) == 18018
    assert float(pool.x_train[:10].sum()) == pytest.approx(-53.7366, abs=1e-3)
    assert abs(float(np.concatenate([pool.x_train, pool.x_test]).mean())) < 1e-3


@pytest.mark.parametrize("name", ["digits", "spirals", "teacher"])
def test_builtin_generators(name):
    pool = load_pool(name)
    assert pool.x_train.dtype == np.float32 and len(pool.x_train) == len(pool.y_train)
    assert set(np.unique(pool.y_train)) == set(range(pool.n_classes))
    assert pool is load_pool(name)  # cached


def test_split_is_a_function_of_seed_and_label_noise_rate():
    y = np.arange(1000) % 10
    a = split(y, 10, seed=3, val_fraction=0.2, train_size=300, label_noise=0.0)
    b = split(y, 10, seed=3, val_fraction=0.2, train_size=300, label_noise=0.5)
    c = split(y, 10, seed=4, val_fraction=0.2, train_size=300, label_noise=0.0)
    assert np.array_equal(a.train_idx, b.train_idx) and np.array_equal(a.val_idx, b.val_idx)
    assert not np.array_equal(a.train_idx, c.train_idx)
    assert len(a.val_idx) == 200 and len(a.train_idx) == 300 and not set(a.val_idx) & set(a.train_idx)
    assert np.array_equal(a.labels, y)
    changed = (b.labels != y).mean() / (300 / 1000)
    assert 0.35 < changed < 0.55  # 50% replaced by a uniform class, 1/10 of them by the true one: 45% expected
    assert np.array_equal(b.labels[b.val_idx], y[b.val_idx])  # validation labels stay clean


def test_input_modes_keep_labels_and_change_inputs():
    base = load_pool("spirals")
    shuffled = load_pool("spirals", inputs="shuffled_pixels", input_seed=1)
    gauss = load_pool("spirals", inputs="gaussian")
    assert np.array_equal(base.y_train, shuffled.y_train)
    assert sorted(base.x_train[0]) == pytest.approx(sorted(shuffled.x_train[0]))
    assert not np.allclose(base.x_train, gauss.x_train)


# -- data sanity: refused with one sentence before training ---------------------------------------

def _npz(path, **arrays):
    import numpy as np

    base = {"x_train": np.zeros((4, 3), np.float32), "y_train": np.array([0, 1, 0, 1]),
            "x_test": np.zeros((2, 3), np.float32), "y_test": np.array([0, 1])}
    np.savez(path, **{**base, **arrays})
    return str(path)


@pytest.mark.parametrize("arrays, needle", [
    ({"x_train": np.zeros((0, 3), "float32"), "y_train": np.zeros(0, "int64")}, "x_train is empty"),
    ({"x_test": np.zeros((0, 3), "float32"), "y_test": np.zeros(0, "int64")}, "x_test is empty"),
    ({"y_train": np.array([0.0, 1.5, 0.0, 1.0])}, "non-integer values"),
    ({"y_test": np.array([0, -1])}, "negative labels"),
    ({"y_train": np.array([0, 1, 0])}, "differ in length"),
])
def test_bad_npz_data_is_refused_with_one_sentence(tmp_path, arrays, needle):
    from ponder.catalog.datasets.files import npz
    from ponder.errors import DataError

    with pytest.raises(DataError, match=needle):
        npz(_npz(tmp_path / "d.npz", **arrays))


def test_whole_float_labels_are_read_as_integers(tmp_path):
    import numpy as np

    from ponder.catalog.datasets.files import npz

    pool = npz(_npz(tmp_path / "d.npz", y_train=np.array([0.0, 1.0, 0.0, 1.0])))
    assert pool.y_train.dtype == np.int64 and pool.y_train.tolist() == [0, 1, 0, 1]


def test_an_archive_that_expands_too_far_is_refused_before_reading(tmp_path, monkeypatch):
    import numpy as np

    import ponder.catalog.datasets.files as files
    from ponder.errors import DataError

    path = _npz(tmp_path / "d.npz", x_train=np.zeros((4, 10_000), np.float32))
    monkeypatch.setattr(files, "MAX_BYTES", 100_000)  # the real cap is 4 GiB; the rule is the same
    monkeypatch.setattr(files.np, "load", lambda *a, **k: pytest.fail("np.load was reached"))
    with pytest.raises(DataError, match="expands to"):
        files.read_npz_split(path)
