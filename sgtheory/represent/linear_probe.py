"""Linear probes (Alain & Bengio 2016, arXiv 1610.01644): how linearly decodable a frozen layer is."""

from __future__ import annotations

import numpy as np

from sgtheory.errors import InputError
from sgtheory.represent._validate import view
from sgtheory.validate import int_in_range, positive
from sgtheory.validate import seed as _seed

__all__ = ["linear_probe"]


def linear_probe(X_train, y_train, X_test, y_test, *, C: float = 1.0, max_iter: int = 1000,
                 standardize: bool = True, seed: int = 0) -> float:
    """Held-out accuracy of a multinomial logistic-regression probe on frozen features.

    Features are standardised with the training set's mean and standard deviation when ``standardize``
    (constant features scale to 0), then an L2-regularised logistic regression (lbfgs) is fitted on the
    training split. Deterministic for a given ``seed``.

    Args:
      X_train: ``(n_train, d)`` features.
      y_train: ``(n_train,)`` integer (or string) labels, at least 2 classes.
      X_test: ``(n_test, d)`` features.
      y_test: ``(n_test,)`` labels.
      C: inverse regularisation strength, > 0.
      max_iter: lbfgs iterations.
      standardize: standardise the features first.
      seed: the model's ``random_state``.

    Returns:
      The accuracy on the test split, in [0, 1].
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    C = positive(C, "C")
    max_iter = int_in_range(max_iter, "max_iter", lo=1)
    seed = _seed(seed, "seed")
    xtr = view(X_train, "X_train", min_samples=2, drop_constant=False)
    xte = view(X_test, "X_test", min_samples=1, drop_constant=False)
    if xtr.shape[1] != xte.shape[1]:
        raise InputError(f"X_train and X_test: feature counts differ ({xtr.shape[1]} vs {xte.shape[1]})")
    ytr, yte = _labels(y_train, "y_train", xtr.shape[0]), _labels(y_test, "y_test", xte.shape[0])
    if np.unique(ytr).size < 2:
        raise InputError("y_train: needs at least 2 classes to fit a probe")
    if standardize:
        # one power of two for both splits (exact; standardising undoes it) keeps the variances finite
        top = float(np.abs(xtr).max())
        if top > 0 and not 2.0**-64 <= top <= 2.0**64:
            shift = -np.frexp(top)[1]
            xtr, xte = np.ldexp(xtr, shift), np.ldexp(xte, shift)
        scaler = StandardScaler().fit(xtr)
        xtr, xte = scaler.transform(xtr), scaler.transform(xte)
    model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    model.fit(xtr, ytr)
    return float(np.mean(model.predict(xte) == yte))


def _labels(y, name: str, n: int) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise InputError(f"{name}: expected 1-D labels, got shape {a.shape}")
    if a.shape[0] != n:
        raise InputError(f"{name}: {a.shape[0]} labels for {n} samples")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise InputError(f"{name}: contains NaN/inf labels")
    return a
