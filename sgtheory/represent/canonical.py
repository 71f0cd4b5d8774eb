"""Canonical correlation analysis between two views: CCA, SVCCA and PWCCA.

Views are ``(n_samples, n_features)``; each is centred, then decomposed once (see :func:`_decompose`):
an orthonormal basis ``Q`` of its column space, whose dimension (the rank ``r``) is decided on the
centred columns scaled to unit norm, so that the rank and everything after it do not depend on the
features' scales; and, where a measure needs it, the thin SVD ``X_c = U S V^T`` of the unscaled view.
The canonical correlations are the singular values of ``Q_x^T Q_y``: the cosines of the principal
angles between the two column spaces, i.e. the square roots of the eigenvalues of
``Σxx⁻¹ Σxy Σyy⁻¹ Σyx`` (Hotelling 1936). They are invariant to any invertible linear map of either
view, per-feature rescaling included. The per-view decomposition is the reusable work that
:func:`sgtheory.represent.similarity_matrix` computes once per layer.

Sample size: with ``r_x + r_y > m - 1``, ``m`` the number of distinct samples (distinct rows of the two
views side by side: a repeated sample adds no dimension), the centred column spaces must intersect, so
correlations of exactly 1 appear whatever the data; such input is refused (reduce the dimension with
:func:`svcca`, pass ``regularization``, or use more samples). Below ``m < 2 (r_x + r_y)`` a
:class:`~sgtheory.represent.SmallSampleWarning` gives the bias expected for independent data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sgtheory.errors import InputError
from sgtheory.represent._validate import cca_sample_check, distinct_samples, fraction, paired, sample_groups

__all__ = ["cca", "svcca", "pwcca"]


def cca(X, Y, *, regularization: float = 0.0) -> np.ndarray:
    """Canonical correlations ``ρ_1 ≥ ρ_2 ≥ … ≥ 0`` between two views (Hotelling 1936).

    Invariant to invertible linear maps and shifts of either view (per-feature rescaling included).
    Constant features are dropped with a warning; linearly dependent ones reduce the rank ``r`` of the
    view, with a warning. The summary similarity is ``cca(X, Y).mean()``.

    Args:
      X: ``(n, d_x)`` first view.
      Y: ``(n, d_y)`` second view, the same ``n`` samples in the same order.
      regularization: ``λ ≥ 0`` for ridge CCA: each covariance becomes ``Σ + λ · mean(diag Σ) · I``
        (λ relative to the average feature variance), which keeps the problem well posed when samples
        are few; the correlations then shrink towards 0 (and, like the ridge itself, depend on the
        features' scales).

    Returns:
      ``(min(r_x, r_y),)`` float64 correlations in [0, 1], descending.

    Raises:
      InputError: bad input, or too few distinct samples for the two ranks (see the module docstring).
    """
    reg = _regularization(regularization)
    x, y = paired(X, Y, min_samples=3, rescale=True)
    bx, by = _cca_basis(x, "X", reg), _cca_basis(y, "Y", reg)
    return _correlations(bx, by, "cca", reg)


def svcca(X, Y, *, variance: float = 0.99, n_components: int | None = None) -> float:
    """SVCCA similarity: mean canonical correlation after an SVD reduction of each view.

    Each centred view keeps its top ``k`` singular directions, the fewest whose variance (squared
    singular values) reaches ``variance`` of the total (Raghu et al. 2017, arXiv 1706.05806, keep 99%).
    This SVD step ranks directions by variance, so (by its definition) it depends on the features'
    scales; the CCA step after it does not. ``variance=1`` keeps the whole column space and equals
    ``cca(X, Y).mean()``.

    Differences from the google/svcca reference code: its ``get_cca_similarity`` reports as
    "mean" the average of only the leading correlations whose running sum reaches 98% of their
    total (``threshold=0.98``), which raises the value; here every correlation is averaged, and
    0.99 refers only to the variance kept by the SVD step.

    Args:
      X: ``(n, d_x)`` first view.
      Y: ``(n, d_y)`` second view, the same samples.
      variance: share of each view's variance to keep, in (0, 1].
      n_components: keep exactly ``min(n_components, r)`` directions instead (overrides ``variance``).

    Returns:
      The mean of all ``min(k_x, k_y)`` canonical correlations, in [0, 1].
    """
    var = fraction(variance, "variance")
    if n_components is not None and (int(n_components) != n_components or n_components < 1):
        raise InputError(f"n_components: expected a positive integer, got {n_components!r}")
    x, y = paired(X, Y, min_samples=3, rescale=True)
    bx, by = _svcca_basis(x, "X", var, n_components), _svcca_basis(y, "Y", var, n_components)
    return float(_correlations(bx, by, "svcca", 0.0).mean())


def pwcca(X, Y) -> float:
    """Projection-weighted CCA (Morcos et al. 2018, arXiv 1806.05759), weights from ``X``'s neurons.

    ``PWCCA = Σ_i α_i ρ_i / Σ_i α_i`` with ``α_i = Σ_j |⟨p_i, x_j⟩|``, ``x_j`` the raw (uncentred)
    column of neuron ``j`` of ``X`` and ``p_i`` the i-th column of the orthonormal ``Q`` of a QR
    decomposition of the direction matrix ``D`` (n × c, ``c = min(r_x, r_y)``):
    ``D[:, i] = X_c u_i + μ_i``, where ``u_i`` is the i-th left singular vector of the whitened
    cross-covariance ``Σxx^{-1/2} Σxy Σyy^{-1/2}`` (symmetric inverse square roots) and ``μ_i``
    the mean of neuron ``i``.

    This is exactly what ``compute_pwcca`` of google/svcca computes, the neuron means added back
    included (note ``D`` is not the whitened canonical variate ``X_c Σxx^{-1/2} u_i``; we keep the
    reference's choice so results agree, to about 1e-10 on equal widths). Unlike the reference,
    which switches to the narrower view's neurons and fails with an IndexError when ``X`` is wider,
    the weights here always come from ``X`` and unequal widths work: the ``c`` canonical pairs are
    weighted, and the extra directions of the wider view (correlation 0) are left out. Two more
    differences: constant (dead) neurons are dropped first, with a warning, where the reference keeps
    them as zero-variance directions; and the rank is decided on unit-norm columns, so features of very
    different scales are not mistaken for linearly dependent ones. The correlations ``ρ_i`` are
    invariant to per-feature rescaling; the weights ``α_i`` (raw neurons) are not, by definition. Because
    ``μ_i`` is added to direction ``i``, the value (like the reference's) changes when the neurons of a
    view with non-zero means are reordered, and it depends on the signs LAPACK gives the singular vectors.

    Args:
      X: ``(n, d_x)`` the view whose neurons weight the correlations.
      Y: ``(n, d_y)`` the other view, the same samples.

    Returns:
      The weighted mean correlation, in [0, 1].
    """
    x, y = paired(X, Y, min_samples=3, rescale=True)
    return _pwcca_pair(_PWView.of(x, "X"), _PWView.of(y, "Y"))


# -- per-view preparation (reused by similarity_matrix) ------------------------------------------


@dataclass(frozen=True)
class _Basis:
    """Centred column-space basis ``(n, r)`` (columns scaled by the ridge factor when regularised), and the
    sample groups of the view (``None``: every row distinct; else an id per row, equal for repeated rows)."""

    B: np.ndarray
    groups: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> _Basis:
        """The same basis for permuted samples (valid for permutations only: centring is kept)."""
        return _Basis(self.B[rows], None if self.groups is None else self.groups[rows])


@dataclass(frozen=True)
class _PWView:
    """What PWCCA needs of a view: raw values, neuron means, the thin SVD of the centred view, sample groups."""

    raw: np.ndarray  # (n, d)
    mean: np.ndarray  # (d,)
    U: np.ndarray  # (n, r)
    Vt: np.ndarray  # (r, d)
    groups: np.ndarray | None = None

    @classmethod
    def of(cls, x: np.ndarray, name: str) -> _PWView:
        mean = x.mean(axis=0)
        dec = _decompose(x - mean, name, raw=True)
        return cls(x, mean, dec.U, dec.Vt, sample_groups(x))

    def take(self, rows: np.ndarray) -> _PWView:
        return _PWView(self.raw[rows], self.mean, self.U[rows], self.Vt,
                       None if self.groups is None else self.groups[rows])


class _Decomposition(NamedTuple):
    """``Q`` ``(n, r)``: orthonormal basis of the centred column space; ``U, s, Vt``: the unscaled view's thin
    SVD truncated to ``r`` directions (``None`` unless asked for)."""

    Q: np.ndarray
    U: np.ndarray | None
    s: np.ndarray | None
    Vt: np.ndarray | None


def _decompose(xc: np.ndarray, name: str, *, raw: bool) -> _Decomposition:
    """Rank, column-space basis and (with ``raw``) the thin SVD of a centred view ``xc`` ``(n, d)``.

    The rank is the number of singular values above ``max(n, d) · eps · s_max``. On the unscaled view that
    rule mistakes features of very different scales for linearly dependent ones (a feature 1e16 times
    smaller than another is below the threshold), so the rank is decided on the columns scaled to unit
    norm, where it depends on the directions only; rescaling features is an invertible map, so the
    column space is unchanged. When the unscaled SVD (needed by ridge CCA, SVCCA's variance step and
    PWCCA) is already of full rank, so is the scaled view and one decomposition serves both. A rank
    below ``min(n - 1, d)`` warns: the features are linearly dependent.
    """
    n, d = xc.shape
    full = min(n - 1, d)
    if raw:
        U, s, Vt = _svd(xc)
        r = _rank(s, n, d)
        if r >= full:
            return _Decomposition(U[:, :r], U[:, :r], s[:r], Vt[:r])
    Uz, sz, _ = _svd(xc / np.linalg.norm(xc, axis=0))
    r = _rank(sz, n, d)
    if r < full:
        warnings.warn(f"{name}: features are linearly dependent (rank {r} of {d}); using {r} directions",
                      UserWarning, stacklevel=4)
    if raw:
        # the unscaled view's trailing singular values may lie below its own threshold (features of tiny
        # scale); their directions are still the view's, so r of them are kept
        return _Decomposition(Uz[:, :r], U[:, :r], s[:r], Vt[:r])
    return _Decomposition(Uz[:, :r], None, None, None)


def _svd(a: np.ndarray):
    """Thin SVD ``(U (n, k), s (k,), Vt (k, d))``, ``k = min(n, d)``, singular values descending.

    Tall, well-conditioned matrices (``n ≥ 2d``, condition number ≤ 1e3) use the eigen-decomposition of
    the ``d × d`` Gram matrix, ``A^T A = V S² V^T`` and ``U = A V S⁻¹`` (one product and a small symmetric
    eigenproblem instead of LAPACK's bidiagonalisation of the tall matrix); squaring the condition number
    there costs at most ``eps · cond² ≈ 2e-10`` in the orthogonality of ``U``. Everything else goes through LAPACK's
    SVD, which is accurate at any conditioning.
    """
    n, d = a.shape
    if n >= 2 * d:
        lam, V = np.linalg.eigh(a.T @ a)
        if lam[0] > 1e-6 * lam[-1]:
            s, V = np.sqrt(lam[::-1]), V[:, ::-1]
            return a @ (V / s), s, np.ascontiguousarray(V.T)
    return np.linalg.svd(a, full_matrices=False)


def _rank(s: np.ndarray, n: int, d: int) -> int:
    return int(np.count_nonzero(s > s[0] * max(n, d) * np.finfo(s.dtype).eps))


def _cca_basis(x: np.ndarray, name: str, reg: float) -> _Basis:
    groups = sample_groups(x)
    if reg == 0:
        return _Basis(_decompose(x - x.mean(axis=0), name, raw=False).Q, groups)
    dec = _decompose(x - x.mean(axis=0), name, raw=True)
    # Ridge: X_c (Σ + λ m I)^{-1/2} ∝ U diag(s / sqrt(s² + λ Σs²/d)) V^T, with m = Σs²/((n-1) d).
    shrink = dec.s / np.sqrt(dec.s**2 + reg * np.sum(dec.s**2) / x.shape[1])
    return _Basis(dec.U * shrink, groups)


def _svcca_basis(x: np.ndarray, name: str, variance: float, n_components: int | None) -> _Basis:
    dec = _decompose(x - x.mean(axis=0), name, raw=True)
    r = dec.s.size
    if n_components is not None:
        k = min(int(n_components), r)
    elif variance == 1.0:
        k = r  # all of the variance: the whole column space, however small some directions' share
    else:
        share = np.cumsum(dec.s**2) / np.sum(dec.s**2)
        # relative slack 1e-12 so that a share a hair below the target (round-off in the running sum) is met
        k = min(int(np.searchsorted(share, variance * (1 - 1e-12))) + 1, r)
    # The whole column space is taken from Q, which (unlike U) does not depend on the features' scales.
    B = dec.Q if k == r else dec.U[:, :k]
    return _Basis(np.ascontiguousarray(B), sample_groups(x))  # contiguous: each pair's product is one GEMM


def _correlations(bx: _Basis, by: _Basis, what: str, reg: float) -> np.ndarray:
    n = bx.B.shape[0]
    cca_sample_check(n, bx.B.shape[1], by.B.shape[1], what, regularization=reg,
                     distinct=distinct_samples(bx.groups, by.groups, n))
    rho = np.linalg.svd(bx.B.T @ by.B, compute_uv=False)
    return np.clip(rho, 0.0, 1.0)


def _pwcca_pair(vx: _PWView, vy: _PWView) -> float:
    n = vx.raw.shape[0]
    rx, ry = vx.U.shape[1], vy.U.shape[1]
    cca_sample_check(n, rx, ry, "pwcca", distinct=distinct_samples(vx.groups, vy.groups, n))
    # Whitened cross-covariance Σxx^{-1/2} Σxy Σyy^{-1/2} = V_x (U_x^T U_y) V_y^T, built explicitly so its
    # singular vectors (and their signs, which matter once the means are added back) match the reference's.
    arr = vx.Vt.T @ (vx.U.T @ vy.U) @ vy.Vt
    u, rho, _ = np.linalg.svd(arr, full_matrices=False)
    c = min(rx, ry)
    u, rho = u[:, :c], np.clip(rho[:c], 0.0, 1.0)
    directions = (vx.raw - vx.mean) @ u + vx.mean[:c]
    q, _ = np.linalg.qr(directions)
    alpha = np.abs(q.T @ vx.raw).sum(axis=1)
    return float(np.sum(alpha * rho) / np.sum(alpha))


def _regularization(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"regularization: expected a number >= 0, got {value!r}") from None
    if not np.isfinite(v) or v < 0:
        raise InputError(f"regularization: must be a finite number >= 0, got {value!r}")
    return v
