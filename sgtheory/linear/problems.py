"""Linear learning problems given by samples or by population moments.

A :class:`Problem` holds the second moments of the augmented vector z = (x, y, 1):

    Sxx = E[xᵀx] (d, d),  Sxy = E[xᵀy] (d, k),  Syy = E[yᵀy] (k, k),  mx = E[x] (d,),  my = E[y] (k,)

(row-vector convention: x is (1, d), y is (1, k)), and optionally the samples X (n, d), Y (n, k).

Everything a linear / deep linear model trained with squared error and a linear synthetic gradient
computes is an expectation E[f(z)ᵀ g(z)] of two functions *linear* in z. Such expectations depend on
the data only through Szz = E[zᵀz], so they can be evaluated on any "rows" R (m, d+k+1) with
RᵀR = Szz, summing over rows instead of averaging over samples. :func:`from_moments` builds such a
square root once (m ≤ d+k+1 rows, from an eigendecomposition), which makes full-batch MSE dynamics
cost independent of the sample count n. The rows are split into ``rows_x`` (m, d), ``rows_y`` (m, k)
and ``rows_u`` (m,), the column that plays the role of the constant 1 (so biases enter as u·b).

Non-linear quantities (log loss, an MLP synthetic gradient, minibatches) need the samples.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from sgtheory.errors import InputError
from sgtheory.validate import finite_array


class Problem(NamedTuple):
    """Population moments of (x, y), their square-root rows, and optionally the samples (a JAX pytree).

    Fields: ``Sxx`` (d, d), ``Sxy`` (d, k), ``Syy`` (k, k), ``mx`` (d,), ``my`` (k,);
    ``rows_x`` (m, d), ``rows_y`` (m, k), ``rows_u`` (m,) with Σ_rows zᵀz = Szz (see module doc);
    ``X`` (n, d) and ``Y`` (n, k) or ``None``.
    """

    Sxx: jnp.ndarray
    Sxy: jnp.ndarray
    Syy: jnp.ndarray
    mx: jnp.ndarray
    my: jnp.ndarray
    rows_x: jnp.ndarray
    rows_y: jnp.ndarray
    rows_u: jnp.ndarray
    X: jnp.ndarray | None = None
    Y: jnp.ndarray | None = None

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.Sxx.shape[0]

    @property
    def k(self) -> int:
        """Output dimension."""
        return self.Syy.shape[0]

    @property
    def n(self) -> int | None:
        """Number of samples, or ``None`` for a moments-only problem."""
        return None if self.X is None else self.X.shape[0]

    @property
    def has_samples(self) -> bool:
        return self.X is not None

    @property
    def dtype(self):
        return self.rows_x.dtype

    def astype(self, dtype) -> Problem:
        """The same problem with every array cast to ``dtype`` (e.g. float32 for sweeps; float64 needs
        JAX's 64-bit mode, as in :func:`from_moments`)."""
        dtype = _checked_dtype(dtype)
        return Problem(*(None if a is None else _to_device(a, dtype) for a in self))

    def without_samples(self) -> Problem:
        """The moments-only version of this problem."""
        return self._replace(X=None, Y=None)


def _to_device(a, dtype) -> jnp.ndarray:
    """``a`` as a JAX array of ``dtype``: cast in numpy (round to nearest, as XLA), then one transfer.
    ``jnp.asarray`` would compile and run a small program per new float32 shape."""
    import jax

    return jax.device_put(np.asarray(a).astype(dtype, copy=False))


def _checked_dtype(dtype):
    """``dtype`` (default: JAX's default float) as a numpy dtype; a 64-bit one while JAX's 64-bit mode is
    off is an :class:`InputError` (JAX would silently store float32)."""
    import jax

    if dtype is None:
        return np.dtype(jnp.asarray(0.0).dtype)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InputError(f"dtype: not a floating-point dtype: {dtype!r}") from None
    if dt not in (np.float16, np.float32, np.float64) and dt.name != "bfloat16":
        raise InputError(f"dtype: expected float32 or float64, got {dt.name}")
    if dt.itemsize == 8 and not jax.config.jax_enable_x64:
        raise InputError("dtype float64: JAX's 64-bit mode is off, so the arrays would silently be float32; "
                         "call jax.config.update('jax_enable_x64', True) first (the sgtheory command does)")
    return dt


def augmented_moments(Sxx, Sxy, Syy, mx, my) -> np.ndarray:
    """Szz = E[zᵀz] for z = (x, y, 1).

    Args:
        Sxx, Sxy, Syy: the uncentred second moments (d, d), (d, k), (k, k).
        mx, my: the means (d,) and (k,).

    Returns:
        Szz, a (d+k+1, d+k+1) symmetric matrix.
    """
    Sxx, Sxy, Syy = (np.asarray(a, dtype=np.float64) for a in (Sxx, Sxy, Syy))
    mx, my = np.asarray(mx, dtype=np.float64), np.asarray(my, dtype=np.float64)
    return np.block([
        [Sxx, Sxy, mx[:, None]],
        [Sxy.T, Syy, my[:, None]],
        [mx[None, :], my[None, :], np.ones((1, 1))],
    ])


def _square_root_rows(Szz: np.ndarray, d: int, k: int):
    """Rows R (m, d+k+1) with RᵀR = Szz, dropping directions of zero variance."""
    Szz = 0.5 * (Szz + Szz.T)
    lam, V = np.linalg.eigh(Szz)
    if lam.min() < -1e-8 * max(lam.max(), 1.0):
        raise InputError(f"moments: the matrix E[zᵀz] of z = (x, y, 1) is not positive semi-definite "
                         f"(smallest eigenvalue {lam.min():.3g})")
    keep = lam > 1e-13 * lam.max()
    R = np.sqrt(lam[keep])[:, None] * V[:, keep].T
    return R[:, :d], R[:, d:d + k], R[:, d + k]


def from_moments(Sxx, Sxy, Syy, mx=None, my=None, *, X=None, Y=None, dtype=None) -> Problem:
    """A :class:`Problem` from population moments (means default to zero).

    Second moments are uncentred (E[xᵀx], not covariances).

    Args:
        Sxx: E[xᵀx] (d, d).
        Sxy: E[xᵀy] (d, k).
        Syy: E[yᵀy] (k, k).
        mx, my: the means E[x] (d,) and E[y] (k,) (default zero).
        X, Y: optional samples (n, d) and (n, k) the moments came from (log loss and minibatches need them).
        dtype: the arrays' dtype (default JAX's default float); ``float64`` needs JAX's 64-bit mode
            (``jax.config.update("jax_enable_x64", True)`` before the call), otherwise it is an
            :class:`InputError` rather than a silent float32.

    Returns:
        The :class:`Problem`.

    Raises:
        InputError: bad shapes, NaN/inf, or moments that are not jointly positive semi-definite.
    """
    Sxx = finite_array(Sxx, "Sxx", ndim=2)
    Sxy = finite_array(Sxy, "Sxy", ndim=2)
    Syy = finite_array(Syy, "Syy", ndim=2)
    d, k = Sxy.shape
    if Sxx.shape != (d, d) or Syy.shape != (k, k):
        raise InputError(f"moments: shapes Sxx {Sxx.shape}, Sxy {Sxy.shape}, Syy {Syy.shape} do not agree")
    mx = np.zeros(d) if mx is None else finite_array(mx, "mx", ndim=1)
    my = np.zeros(k) if my is None else finite_array(my, "my", ndim=1)
    if mx.shape != (d,) or my.shape != (k,):
        raise InputError(f"moments: means of shapes {mx.shape}, {my.shape}, expected ({d},), ({k},)")
    dtype = _checked_dtype(dtype)
    rx, ry, ru = _square_root_rows(augmented_moments(Sxx, Sxy, Syy, mx, my), d, k)
    arrays = (Sxx, Sxy, Syy, mx, my, rx, ry, ru, X, Y)
    return Problem(*(None if a is None else _to_device(a, dtype) for a in arrays))


def from_samples(X, Y, *, dtype=None) -> Problem:
    """A :class:`Problem` from samples ``X`` (n, d) and ``Y`` (n, k) (a 1-D ``Y`` is read as (n, 1)).

    The moments are the sample moments (divided by n), so full-batch MSE dynamics on the moments
    equal those on the samples.

    Args:
        X: inputs (n, d).
        Y: targets (n, k) or (n,).
        dtype: as in :func:`from_moments` (``float64`` needs JAX's 64-bit mode on: an :class:`InputError`
            otherwise, never a silent float32).

    Returns:
        The :class:`Problem`, samples kept (``without_samples()`` drops them).

    Raises:
        InputError: bad shapes or NaN/inf.
    """
    X = finite_array(X, "X", ndim=2)
    Y = finite_array(Y, "Y")
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise InputError(f"Y: expected shape ({X.shape[0]}, k), got {Y.shape}")
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    n = X.shape[0]
    return from_moments(X64.T @ X64 / n, X64.T @ Y64 / n, Y64.T @ Y64 / n, X64.mean(0), Y64.mean(0),
                        X=X64, Y=Y64, dtype=dtype)


__all__ = ["Problem", "from_moments", "from_samples", "augmented_moments"]
