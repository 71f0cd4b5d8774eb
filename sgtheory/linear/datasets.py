"""Four basic artificial data sets, in any input dimension (2-D and 100-D in the paper's C6 setting).

The paper's own four data sets (its supplement, section D) could not be read, so these are our choice.
Each has one output and comes in two target kinds: ``"regression"`` (a real target, for MSE) and
``"classes"`` (a 0/1 label, for log loss with a sigmoid output).

- ``teacher``: x ~ N(0, I_d); y = x·w* + 0.1·noise with a fixed random unit teacher w*; the class is
  1[x·w* + 0.1·noise > 0]. The textbook linear-regression problem.
- ``blobs``: two Gaussian clusters N(±μ, I_d), ‖μ‖ = 1.5 along a random direction, equal priors; the
  regression target is the class (0/1) itself. Linearly separable up to the overlap of the blobs.
- ``xor``: four clusters at (±1, ±1) in the first two coordinates (std 0.35; other coordinates N(0, 0.35²));
  the class is the XOR of the two signs. No linear model separates it: linear SG and BP must agree on a
  poor solution. The regression target is the class.
- ``correlated``: x = g·L with g ~ N(0, I_d) and a random rotation scaled by a decaying spectrum
  (condition number 30), shifted by a random mean; y = x·w* + 0.5 + 0.3·noise. Ill-conditioned,
  non-centred inputs with label noise: stresses learning rates and biases. The class is
  1[y > 0.5 + E[x]·w*] (about balanced).

``make(name, dim, n, seed, target=...)`` returns X (n, dim) and Y (n, 1) as float64 numpy arrays.
"""

from __future__ import annotations

import numpy as np

from sgtheory.errors import InputError
from sgtheory.validate import choice, int_in_range, positive
from sgtheory.validate import seed as _seed

DATASETS = ("teacher", "blobs", "xor", "correlated")
TARGETS = ("regression", "classes")


def target_for_loss(loss: str) -> str:
    """The target kind a loss trains on: ``"regression"`` for ``"mse"``, ``"classes"`` for ``"log"``.

    Args:
        loss: ``"mse"`` or ``"log"``.

    Returns:
        The ``target`` argument of :func:`make`.
    """
    return {"mse": "regression", "log": "classes"}[choice(loss, "loss", ("mse", "log"))]


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.standard_normal(dim)
    return v / np.linalg.norm(v)


def _teacher(rng, dim, n, noise=0.1):
    w = _unit(rng, dim)
    X = rng.standard_normal((n, dim))
    score = X @ w + noise * rng.standard_normal(n)
    return X, score, (score > 0).astype(float)


def _blobs(rng, dim, n, noise=1.0):
    mu = 1.5 * _unit(rng, dim)
    labels = rng.integers(0, 2, n).astype(float)
    X = noise * rng.standard_normal((n, dim)) + np.where(labels[:, None] > 0, mu, -mu)
    return X, labels, labels


def _xor(rng, dim, n, noise=0.35):
    if dim < 2:
        raise InputError("dataset xor: needs dim >= 2")
    signs = rng.choice([-1.0, 1.0], size=(n, 2))
    X = noise * rng.standard_normal((n, dim))
    X[:, :2] += signs
    labels = (signs[:, 0] * signs[:, 1] > 0).astype(float)
    return X, labels, labels


def _correlated(rng, dim, n, noise=0.3):
    Q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    spectrum = np.geomspace(1.0, 1.0 / np.sqrt(30.0), dim)  # variances from 1 to 1/30
    mean = 0.5 * rng.standard_normal(dim)
    X = (rng.standard_normal((n, dim)) * spectrum) @ Q.T + mean
    w = _unit(rng, dim)
    clean = X @ w + 0.5
    score = clean + noise * rng.standard_normal(n)
    return X, score, (score > 0.5 + mean @ w).astype(float)


_MAKERS = {"teacher": _teacher, "blobs": _blobs, "xor": _xor, "correlated": _correlated}


def make(name: str, dim: int, n: int, seed: int = 0, *, target: str = "regression", noise: float | None = None):
    """Draw ``n`` samples of data set ``name`` in ``dim`` dimensions.

    The data set's fixed parts (teacher, blob centres, rotation) are drawn from ``seed`` too, so one seed
    is one data set.

    Args:
        name: one of :data:`DATASETS`.
        dim: input dimension, ≥ 1.
        n: samples, ≥ 1.
        seed: an integer in 0 .. 2**32 − 1.
        target: ``"regression"`` (real targets, for MSE) or ``"classes"`` (0/1 labels, for log loss).
        noise: overrides the data set's noise level (teacher 0.1 and correlated 0.3: target noise std;
            blobs 1.0 and xor 0.35: cluster std).

    Returns:
        ``(X (n, dim), Y (n, 1))``, float64.

    Raises:
        InputError: an unknown name or target, a bad size, noise or seed.
    """
    choice(name, "dataset", DATASETS)
    choice(target, "target", TARGETS)
    dim = int_in_range(dim, "dim", lo=1)
    n = int_in_range(n, "n", lo=1)
    rng = np.random.default_rng(_seed(seed, "seed"))
    kw = {} if noise is None else {"noise": positive(noise, "noise")}
    X, reg, cls = _MAKERS[name](rng, dim, n, **kw)
    Y = reg if target == "regression" else cls
    return X, Y[:, None].astype(np.float64)


def plot_datasets(*, n: int = 400, seed: int = 0, axes=None):
    """Scatter the 2-D versions of the four data sets (colour = class, or the regression target).

    Args:
        n: samples per data set.
        seed: the data sets' seed (:func:`make`).
        axes: an optional array of at least 4 axes (default: a new figure).

    Returns:
        The figure.
    """
    from sgtheory.plotting import get_ax, style

    if axes is None:
        fig, axes = get_ax(None, nrows=1, ncols=4, figsize=(15, 3.2), layout="constrained")
    else:
        fig = np.ravel(axes)[0].figure
    with style():
        for ax, name in zip(np.ravel(axes), DATASETS):
            X, y = make(name, 2, n, seed, target="regression")
            sc = ax.scatter(X[:, 0], X[:, 1], c=y[:, 0], s=6, cmap="coolwarm")
            ax.set_title(name)
            ax.set_xlabel("$x_1$")
            ax.set_ylabel("$x_2$")
            fig.colorbar(sc, ax=ax, fraction=0.046)
    return fig


__all__ = ["DATASETS", "TARGETS", "make", "target_for_loss", "plot_datasets"]
