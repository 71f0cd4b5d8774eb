"""Input checks shared by the representation measures.

Every measure takes views shaped ``(n_samples, n_features)``. These helpers turn bad input into one
:class:`sgtheory.InputError` line and drop constant features with a :class:`ConstantFeatureWarning`
(a constant feature carries no information about the samples and would otherwise make whitening
or normalisation divide by zero).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from sgtheory.errors import InputError


class ConstantFeatureWarning(UserWarning):
    """Some features of a view never vary over the samples; they were dropped."""


class SmallSampleWarning(UserWarning):
    """Too few samples for an unbiased reading of a CCA-type measure (see the message for the bias)."""


def view(X, name: str = "X", *, min_samples: int = 2, dtype=np.float64, drop_constant: bool = True) -> np.ndarray:
    """Return ``X`` as a 2-D float array ``(n_samples, n_features)`` with constant features removed.

    Raises :class:`InputError` for non-numeric, non-2-D, empty or non-finite input, for fewer than
    ``min_samples`` rows, and when no feature varies. A feature is constant when its range
    (max - min) is at most ``10 eps`` times its largest magnitude, i.e. it varies only at round-off
    level (exactly 0 for dead ReLU units).
    """
    a = np.asarray(X)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"{name}: not a numeric array (dtype {a.dtype})")
    if a.ndim != 2:
        raise InputError(_shape_message(name, a.shape))
    if a.shape[1] == 0:
        raise InputError(f"{name}: has no features (shape {a.shape})")
    if a.shape[0] < min_samples:
        raise InputError(f"{name}: needs at least {min_samples} samples for this measure, got {a.shape[0]}")
    if np.iscomplexobj(a):
        raise InputError(f"{name}: complex values are not supported")
    a = np.asarray(a, dtype=dtype)
    finite = np.isfinite(a)
    if not finite.all():
        raise InputError(f"{name}: contains {a.size - int(finite.sum())} NaN/inf value(s)")
    if not drop_constant:
        return a
    span = a.max(axis=0) - a.min(axis=0)
    constant = span <= 10 * np.finfo(a.dtype).eps * np.abs(a).max(axis=0)
    if constant.all():
        raise InputError(f"{name}: every feature is constant over the samples; similarity is undefined")
    if constant.any():
        warnings.warn(
            f"{name}: dropped {int(constant.sum())} constant feature(s) of {a.shape[1]}",
            ConstantFeatureWarning,
            stacklevel=4,
        )
        a = a[:, ~constant]
    return a


def paired(X, Y, *, min_samples: int = 2, dtype=np.float64, drop_constant: bool = True):
    """Check two views with the same samples; returns ``(X, Y)`` as from :func:`view`."""
    nx, ny = _rows(X, "X"), _rows(Y, "Y")
    if nx != ny:
        hint = ""
        if np.shape(X)[1] == np.shape(Y)[1]:
            hint = " (their column counts match: were they passed as (n_features, n_samples)?)"
        raise InputError(f"X and Y: sample counts differ ({nx} vs {ny}); rows must be the same samples{hint}")
    x = view(X, "X", min_samples=min_samples, dtype=dtype, drop_constant=drop_constant)
    y = view(Y, "Y", min_samples=min_samples, dtype=dtype, drop_constant=drop_constant)
    return x, y


def same_samples(layers, name: str) -> int:
    """Check a sequence of layer arrays shares one sample count; returns it."""
    counts = {_rows(layer, f"{name}[{i}]") for i, layer in enumerate(layers)}
    if len(counts) > 1:
        raise InputError(f"{name}: layers have different sample counts {sorted(counts)}")
    return counts.pop() if counts else 0


def cca_sample_check(n: int, rx: int, ry: int, what: str, *, regularization: float = 0.0) -> None:
    """Refuse CCA when samples cannot support it; warn when they bias it upward.

    With ``rx + ry > n - 1`` the two centred views span subspaces of R^(n-1) that must intersect,
    so ``rx + ry - (n - 1)`` canonical correlations equal 1 whatever the data: refused. Below
    ``n < 2 (rx + ry)`` independent data still score a root-mean-square canonical correlation of
    about ``sqrt(max(rx, ry) / (n - 1))`` (the Pillai-trace expectation ``rx ry / (n - 1)``): warned.
    Ridge regularisation (``regularization > 0``) makes the problem well posed, so neither applies.
    """
    if regularization > 0:
        return
    if rx + ry > n - 1:
        fix = ("lower variance or set n_components" if what == "svcca"
               else "reduce the dimension (svcca, or fewer features), pass regularization > 0 (cca)")
        raise InputError(
            f"{what}: {n} samples are too few for CCA of {rx} + {ry} directions (needs n_samples > {rx + ry}); "
            f"random data would score correlations of exactly 1. To fix: {fix}, or use more samples"
        )
    if n < 2 * (rx + ry):
        rms = math.sqrt(max(rx, ry) / (n - 1))
        warnings.warn(
            f"{what}: {n} samples for {rx} + {ry} directions; independent data of this size score an RMS canonical "
            f"correlation of about {rms:.2f}. Use more samples, svcca, or regularization > 0",
            SmallSampleWarning,
            stacklevel=4,
        )


def fraction(value, name: str, *, include_zero: bool = False) -> float:
    """A number in (0, 1] (or [0, 1] with ``include_zero``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number in (0, 1], got {value!r}") from None
    lo_ok = v >= 0 if include_zero else v > 0
    if not (math.isfinite(v) and lo_ok and v <= 1):
        raise InputError(f"{name}: must be in {'[' if include_zero else '('}0, 1], got {value!r}")
    return v


def _rows(X, name: str) -> int:
    shape = np.shape(X)
    if len(shape) != 2:
        raise InputError(_shape_message(name, shape))
    return shape[0]


def _shape_message(name: str, shape) -> str:
    hint = "; a single feature must be shaped (n_samples, 1)" if len(shape) == 1 else ""
    return f"{name}: expected a 2-D array (n_samples, n_features), got shape {tuple(shape)}{hint}"
