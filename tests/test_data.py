"""Offline data sets: shapes, scaling, deterministic stratified splits, file readers, bad files."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from sgtheory import InputError
from sgtheory.data import DATASETS, load, stratified_split
from sgtheory.data.datasets import FASHION_DEBIAN_DIR


def _check(ds, n_train, n_test, features):
    assert ds.x_train.shape == (n_train, features) and ds.x_test.shape == (n_test, features)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.x_train.max() > 0.5
    assert ds.n_classes == 10 and set(np.unique(ds.y_test)) <= set(range(10))


def test_mnist5k_embedded_split():
    ds = load("mnist5k")
    _check(ds, 4000, 1000, 784)
    assert np.all(np.bincount(ds.y_test) == 100) and np.all(np.bincount(ds.y_train) == 400)  # stratified
    again = load("mnist5k", seed=0)
    assert np.array_equal(again.x_test, ds.x_test) and np.array_equal(again.y_train, ds.y_train)
    other = load("mnist5k", seed=1)
    assert not np.array_equal(other.x_test, ds.x_test)
    # train and test are disjoint: no test image appears in the training set
    train_rows = {r.tobytes() for r in ds.x_train}
    assert sum(r.tobytes() in train_rows for r in ds.x_test) <= 2  # MNIST has a few exact duplicates


def test_digits():
    ds = load("digits")
    _check(ds, 1438, 359, 64)


def test_stratified_split_partitions():
    y = np.repeat(np.arange(3), [10, 20, 30])
    tr, te = stratified_split(y, 0.2, seed=3)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(60))
    assert np.bincount(y[te]).tolist() == [2, 4, 6]


def _idx(path: Path, arr: np.ndarray, gz: bool, magic_type: int = 0x08):
    head = bytes([0, 0, magic_type, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def _idx_folder(folder: Path, rng, gz: bool, n=(12, 7)):
    for prefix, k in zip(("train", "t10k"), n):
        _idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (k, 28, 28)), gz)
        _idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, k), gz)
    return folder


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_from_root_and_env(tmp_path, rng, monkeypatch, gz):
    _idx_folder(tmp_path, rng, gz)
    ds = load("mnist", root=tmp_path)
    assert ds.x_train.shape == (12, 784) and ds.x_test.shape == (7, 784) and ds.x_train.max() <= 1.0
    monkeypatch.setenv("SGTHEORY_MNIST", str(tmp_path))
    assert np.array_equal(load("mnist").x_test, ds.x_test)


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SGTHEORY_MNIST", raising=False)
    with pytest.raises(InputError, match="SGTHEORY_MNIST"):
        load("mnist")
    with pytest.raises(InputError, match="not a folder"):
        load("fashion-mnist", root=tmp_path / "nowhere")
    with pytest.raises(InputError, match="train-images-idx3-ubyte"):
        load("mnist", root=tmp_path)  # empty folder
    monkeypatch.delenv("SGTHEORY_CIFAR10", raising=False)
    with pytest.raises(InputError, match="binary"):
        load("cifar10")
    with pytest.raises(InputError, match="unknown value"):
        load("imagenet")


@pytest.mark.parametrize("damage", ["magic", "truncate", "count", "gzip", "type"])
def test_corrupt_idx(tmp_path, rng, damage):
    _idx_folder(tmp_path, rng, gz=False)
    img = tmp_path / "train-images-idx3-ubyte"
    raw = img.read_bytes()
    if damage == "magic":
        img.write_bytes(b"\x01" + raw[1:])
    elif damage == "truncate":
        img.write_bytes(raw[:-10])
    elif damage == "count":  # 13 labels for 12 images
        _idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, 13), gz=False)
    elif damage == "gzip":
        img.unlink()
        (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + raw[:50])
    else:
        _idx(img, rng.integers(0, 256, (12, 28, 28)), gz=False, magic_type=0x0D)
    with pytest.raises(InputError, match="train-"):
        load("mnist", root=tmp_path)


def test_cifar10_binary(tmp_path, rng):
    for name, k in [(f"data_batch_{i}.bin", 3) for i in range(1, 6)] + [("test_batch.bin", 4)]:
        rec = rng.integers(0, 256, (k, 3073)).astype(np.uint8)
        rec[:, 0] = rng.integers(0, 10, k)
        (tmp_path / name).write_bytes(rec.tobytes())
    ds = load("cifar10", root=tmp_path)
    assert ds.x_train.shape == (15, 3072) and ds.x_test.shape == (4, 3072)
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="CIFAR-10 records"):
        load("cifar10", root=tmp_path)


@pytest.mark.skipif(not FASHION_DEBIAN_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_debian_package():
    ds = load("fashion-mnist")
    _check(ds, 60000, 10000, 784)
    assert np.all(np.bincount(ds.y_test) == 1000)


def test_registry():
    assert DATASETS == ("mnist5k", "digits", "fashion-mnist", "mnist", "cifar10")
