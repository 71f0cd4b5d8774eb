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


def view(X, name: str = "X", *, min_samples: int = 2, dtype=np.float64, drop_constant: bool = True,
         rescale: bool = False) -> np.ndarray:
    """Return ``X`` as a 2-D float array ``(n_samples, n_features)`` with constant features removed.

    Raises :class:`InputError` for non-numeric, non-2-D, empty or non-finite input, for fewer than
    ``min_samples`` rows, and when no feature varies. A feature is constant when its range
    (max - min) is at most ``10 eps`` times its largest magnitude, i.e. it varies only at round-off
    level (exactly 0 for dead ReLU units). ``rescale=True`` (for measures invariant to a common scale of
    the view) multiplies a view whose largest magnitude lies outside ``[2^-64, 2^64]`` by the power of two
    that brings it to ``[0.5, 1)``: exact, and it keeps squares and sums of squares from overflowing
    (values near 1e300) or underflowing (near 1e-300).
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
    if rescale:
        top = float(np.abs(a).max())
        if top > 0 and not 2.0**-64 <= top <= 2.0**64:
            a = np.ldexp(a, -np.frexp(top)[1])
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


def paired(X, Y, *, min_samples: int = 2, dtype=np.float64, drop_constant: bool = True, rescale: bool = False):
    """Check two views with the same samples; returns ``(X, Y)`` as from :func:`view`."""
    nx, ny = _rows(X, "X"), _rows(Y, "Y")
    if nx != ny:
        hint = ""
        if np.shape(X)[1] == np.shape(Y)[1]:
            hint = " (their column counts match: were they passed as (n_features, n_samples)?)"
        raise InputError(f"X and Y: sample counts differ ({nx} vs {ny}); rows must be the same samples{hint}")
    x = view(X, "X", min_samples=min_samples, dtype=dtype, drop_constant=drop_constant, rescale=rescale)
    y = view(Y, "Y", min_samples=min_samples, dtype=dtype, drop_constant=drop_constant, rescale=rescale)
    return x, y


def same_samples(layers, name: str) -> int:
    """Check a sequence of layer arrays shares one sample count; returns it."""
    counts = {_rows(layer, f"{name}[{i}]") for i, layer in enumerate(layers)}
    if len(counts) > 1:
        raise InputError(f"{name}: layers have different sample counts {sorted(counts)}")
    return counts.pop() if counts else 0


def sample_groups(x: np.ndarray) -> np.ndarray | None:
    """Which rows of a view ``(n, d)`` repeat: ``None`` when all ``n`` rows differ, else an ``(n,)`` id per row,
    equal for equal rows (compared bit for bit, ``-0.0`` as ``0.0``).

    Rows are first hashed (their bits as integers, a fixed random linear combination mod 2^64: equal rows
    always hash alike, so ``n`` distinct hashes prove ``n`` distinct rows); only views whose hashes repeat
    are compared exactly, row by row.
    """
    n, d = x.shape
    weights = np.random.default_rng(0x5A3E).integers(1, 2**63, size=d, dtype=np.uint64)
    step = max(1, 2**18 // d)  # rows per block: small copies (x + 0.0 turns -0.0 into 0.0, for equal bits)
    hashes = np.concatenate([_bits(x[i:i + step] + 0.0) @ weights for i in range(0, n, step)])
    if np.unique(hashes).size == n:
        return None
    a = np.ascontiguousarray(x + 0.0)
    rows = a.view(np.dtype((np.void, a.dtype.itemsize * d))).ravel()
    _, ids = np.unique(rows, return_inverse=True)
    return None if ids.max() + 1 == a.shape[0] else ids.ravel()


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.dtype(f"u{a.dtype.itemsize}")).astype(np.uint64, copy=False)


def distinct_samples(groups_x: np.ndarray | None, groups_y: np.ndarray | None, n: int) -> int:
    """Number of distinct samples ``(x_i, y_i)`` of two views, from their :func:`sample_groups`."""
    if groups_x is None or groups_y is None:
        return n
    pairs = groups_x.astype(np.int64) * (int(groups_y.max()) + 1) + groups_y
    return int(np.unique(pairs).size)


def cca_sample_check(n: int, rx: int, ry: int, what: str, *, regularization: float = 0.0,
                     distinct: int | None = None) -> None:
    """Refuse CCA when samples cannot support it; warn when they bias it upward.

    Counts distinct samples ``m`` (``distinct``, default ``n``): a repeated sample adds no dimension to
    the centred views. With ``rx + ry > m - 1`` the two centred views span subspaces of an
    ``(m - 1)``-dimensional space that must intersect, so ``rx + ry - (m - 1)`` canonical correlations
    equal 1 whatever the data: refused. Below ``m < 2 (rx + ry)`` independent data still score a
    root-mean-square canonical correlation of about ``sqrt(max(rx, ry) / (m - 1))`` (the Pillai-trace
    expectation ``rx ry / (m - 1)``): warned. Ridge regularisation (``regularization > 0``) makes the
    problem well posed, so neither applies.

    Args:
      n: rows of the views.
      rx, ry: ranks (directions) of the two views.
      what: the measure's name, for messages.
      regularization: the ridge ``λ``; > 0 skips both checks.
      distinct: distinct samples among the ``n`` rows (see :func:`distinct_samples`).

    Raises:
      InputError: when ``rx + ry > m - 1``.
    """
    if regularization > 0:
        return
    m = n if distinct is None else distinct
    count = f"{n} samples" if m == n else f"{n} samples ({m} distinct: the others repeat them)"
    if rx + ry > m - 1:
        fix = ("lower variance or set n_components" if what == "svcca"
               else "reduce the dimension (svcca, or fewer features), pass regularization > 0 (cca)")
        need = "n_samples" if m == n else "distinct samples"
        raise InputError(
            f"{what}: {count} are too few for CCA of {rx} + {ry} directions (needs {need} > {rx + ry}); "
            f"random data would score correlations of exactly 1. To fix: {fix}, or use more samples"
        )
    if m < 2 * (rx + ry):
        rms = math.sqrt(max(rx, ry) / (m - 1))
        warnings.warn(
            f"{what}: {count} for {rx} + {ry} directions; independent data of this size score an RMS canonical "
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
