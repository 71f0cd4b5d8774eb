"""Canonical correlation analysis between two views: CCA, SVCCA and PWCCA.

Views are ``(n_samples, n_features)``; each is centred, then decomposed once by a thin SVD
``X_c = U S V^T`` (rank ``r`` = singular values above ``max(n, d) * eps * s_max``; see
:func:`_thin_svd` for the faster route taken by tall, well-conditioned views). The canonical
correlations are the singular values of ``U_x^T U_y``: the cosines of the principal angles between
the two column spaces, i.e. the square roots of the eigenvalues of
``Σxx⁻¹ Σxy Σyy⁻¹ Σyx`` (Hotelling 1936). The per-view SVD is the reusable work that
:func:`sgtheory.represent.similarity_matrix` computes once per layer.

Sample size: with ``r_x + r_y > n - 1`` the centred column spaces must intersect, so correlations of
exactly 1 appear whatever the data; such input is refused (reduce the dimension with :func:`svcca`,
pass ``regularization``, or use more samples). Below ``n < 2 (r_x + r_y)`` a
:class:`~sgtheory.represent.SmallSampleWarning` gives the bias expected for independent data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from sgtheory.errors import InputError
from sgtheory.represent._validate import cca_sample_check, fraction, paired

__all__ = ["cca", "svcca", "pwcca"]


def cca(X, Y, *, regularization: float = 0.0) -> np.ndarray:
    """Canonical correlations ``ρ_1 ≥ ρ_2 ≥ … ≥ 0`` between two views (Hotelling 1936).

    ``X``: ``(n, d_x)``, ``Y``: ``(n, d_y)``, the same ``n`` samples. Returns ``min(r_x, r_y)``
    values in [0, 1] (``r`` the rank of each centred view, constant features dropped with a
    warning). ``regularization = λ ≥ 0`` gives ridge CCA: each covariance becomes
    ``Σ + λ · mean(diag Σ) · I`` (so λ is relative to the average feature variance), which keeps the
    problem well posed when samples are few; the correlations then shrink towards 0.
    The summary similarity is ``cca(X, Y).mean()``.
    """
    reg = _regularization(regularization)
    x, y = paired(X, Y, min_samples=3)
    bx, by = _cca_basis(x, "X", reg), _cca_basis(y, "Y", reg)
    return _correlations(bx, by, "cca", reg)


def svcca(X, Y, *, variance: float = 0.99, n_components: int | None = None) -> float:
    """SVCCA similarity: mean canonical correlation after an SVD reduction of each view.

    Each centred view keeps its top ``k`` singular directions, the fewest whose variance
    (squared singular values) reaches ``variance`` of the total (Raghu et al. 2017, arXiv
    1706.05806, keep 99%); ``n_components`` instead keeps exactly ``min(n_components, rank)``.
    Returns the mean of all ``min(k_x, k_y)`` canonical correlations, in [0, 1].

    Differences from the google/svcca reference code: its ``get_cca_similarity`` reports as
    "mean" the average of only the leading correlations whose running sum reaches 98% of their
    total (``threshold=0.98``), which raises the value; here every correlation is averaged, and
    0.99 refers only to the variance kept by the SVD step.
    """
    var = fraction(variance, "variance")
    if n_components is not None and (int(n_components) != n_components or n_components < 1):
        raise InputError(f"n_components: expected a positive integer, got {n_components!r}")
    x, y = paired(X, Y, min_samples=3)
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
    them as zero-variance directions; and because ``μ_i`` is added to direction ``i``, the value (like
    the reference's) changes when the neurons of a view with non-zero means are reordered.
    """
    x, y = paired(X, Y, min_samples=3)
    return _pwcca_pair(_PWView.of(x, "X"), _PWView.of(y, "Y"))


# -- per-view preparation (reused by similarity_matrix) ------------------------------------------


@dataclass(frozen=True)
class _Basis:
    """Centred column-space basis ``(n, r)``; columns scaled by the ridge factor when regularised."""

    B: np.ndarray

    def take(self, rows: np.ndarray) -> "_Basis":
        """The same basis for permuted samples (valid for permutations only: centring is kept)."""
        return _Basis(self.B[rows])


@dataclass(frozen=True)
class _PWView:
    """What PWCCA needs of a view: raw values, neuron means and the thin SVD of the centred view."""

    raw: np.ndarray  # (n, d)
    mean: np.ndarray  # (d,)
    U: np.ndarray  # (n, r)
    Vt: np.ndarray  # (r, d)

    @classmethod
    def of(cls, x: np.ndarray, name: str) -> "_PWView":
        mean = x.mean(axis=0)
        U, _, Vt = _thin_svd(x - mean, name)
        return cls(x, mean, U, Vt)

    def take(self, rows: np.ndarray) -> "_PWView":
        return _PWView(self.raw[rows], self.mean, self.U[rows], self.Vt)


def _thin_svd(xc: np.ndarray, name: str):
    """Thin SVD ``(U (n, r), s (r,), Vt (r, d))`` of a centred view, truncated to its numerical rank.

    Tall, well-conditioned views (``n ≥ 2d``, condition number ≤ 1e3) use the eigen-decomposition of
    the ``d × d`` Gram matrix, ``X_c^T X_c = V S² V^T`` and ``U = X_c V S⁻¹``, about 3× cheaper than
    LAPACK's SVD; squaring the condition number there costs at most ``eps · cond² ≈ 2e-10`` in the
    orthogonality of ``U``. Every other view goes through the SVD, which is accurate at any
    conditioning and decides the rank (``s > max(n, d) · eps · s_max``); linear dependence warns.
    """
    n, d = xc.shape
    if n >= 2 * d:
        lam, V = np.linalg.eigh(xc.T @ xc)
        if lam[0] > 1e-6 * lam[-1]:
            s, V = np.sqrt(lam[::-1]), V[:, ::-1]
            return xc @ (V / s), s, np.ascontiguousarray(V.T)
    U, s, Vt = np.linalg.svd(xc, full_matrices=False)
    tol = s[0] * max(xc.shape) * np.finfo(xc.dtype).eps
    r = int(np.count_nonzero(s > tol))
    if r < min(n - 1, d):
        warnings.warn(f"{name}: features are linearly dependent (rank {r} of {d}); using {r} directions",
                      UserWarning, stacklevel=4)
    return U[:, :r], s[:r], Vt[:r]


def _cca_basis(x: np.ndarray, name: str, reg: float) -> _Basis:
    U, s, _ = _thin_svd(x - x.mean(axis=0), name)
    if reg == 0:
        return _Basis(U)
    # Ridge: X_c (Σ + λ m I)^{-1/2} ∝ U diag(s / sqrt(s² + λ Σs²/d)) V^T, with m = Σs²/((n-1) d).
    shrink = s / np.sqrt(s**2 + reg * np.sum(s**2) / x.shape[1])
    return _Basis(U * shrink)


def _svcca_basis(x: np.ndarray, name: str, variance: float, n_components: int | None) -> _Basis:
    U, s, _ = _thin_svd(x - x.mean(axis=0), name)
    if n_components is not None:
        k = min(int(n_components), s.size)
    else:
        share = np.cumsum(s**2) / np.sum(s**2)
        # relative slack 1e-12 so that e.g. variance=1.0 is met despite round-off in the running sum
        k = min(int(np.searchsorted(share, variance * (1 - 1e-12))) + 1, s.size)
    return _Basis(np.ascontiguousarray(U[:, :k]))  # contiguous: each pair's product runs as one plain GEMM


def _correlations(bx: _Basis, by: _Basis, what: str, reg: float) -> np.ndarray:
    n = bx.B.shape[0]
    cca_sample_check(n, bx.B.shape[1], by.B.shape[1], what, regularization=reg)
    rho = np.linalg.svd(bx.B.T @ by.B, compute_uv=False)
    return np.clip(rho, 0.0, 1.0)


def _pwcca_pair(vx: _PWView, vy: _PWView) -> float:
    n = vx.raw.shape[0]
    rx, ry = vx.U.shape[1], vy.U.shape[1]
    cca_sample_check(n, rx, ry, "pwcca")
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
