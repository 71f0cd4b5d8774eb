"""Representational dissimilarity matrices and their comparison (Kriegeskorte et al. 2008).

An RDM of a view ``(n_samples, n_features)`` is the ``(n, n)`` matrix of distances between samples;
the default ``1 - Pearson correlation`` between the samples' activation vectors is the RDM of C9 in
the paper. Two RDMs over the same samples are compared by a rank correlation of their upper
triangles (diagonal excluded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgtheory.errors import InputError
from sgtheory.represent._validate import view
from sgtheory.validate import choice

__all__ = ["rdm", "compare_rdms", "rsa"]

METHODS = ("spearman", "kendall", "pearson")


def rdm(X, metric: str = "correlation") -> np.ndarray:
    """The ``(n, n)`` dissimilarity matrix of the samples (rows) of ``X``.

    Constant features are kept (they matter for non-correlation metrics). A sample whose features are
    all equal has no correlation with anything: refused for ``"correlation"`` (all-zero samples for
    ``"cosine"``).

    Args:
      X: ``(n, d)`` view, ``n >= 2``.
      metric: ``"correlation"``: ``1 - r(x_i, x_j)``, ``r`` the Pearson correlation of the two samples'
        feature vectors, in [0, 2]; or any metric of :func:`scipy.spatial.distance.pdist`
        (``"euclidean"``, ``"cosine"``, …).

    Returns:
      The symmetric ``(n, n)`` float64 RDM, zero diagonal.
    """
    # correlation and cosine distances do not change with a common scale: rescaled to avoid overflow
    return _rdm(X, "X", metric, rescale=metric in ("correlation", "cosine"))


def _rdm(X, name: str, metric: str, *, rescale: bool) -> np.ndarray:
    x = view(X, name, min_samples=2, drop_constant=False, rescale=rescale)
    if metric in ("correlation", "cosine"):
        degenerate = np.ptp(x, axis=1) == 0 if metric == "correlation" else ~np.any(x != 0, axis=1)
        flat = np.flatnonzero(degenerate)
        if flat.size:
            what = "constant" if metric == "correlation" else "all-zero"
            raise InputError(f"{name}: sample(s) {flat[:5].tolist()}{'…' if flat.size > 5 else ''} have {what} feature "
                             f"vectors, so the {metric} distance is undefined; use metric='euclidean'")
    import scipy.spatial.distance as ssd  # scipy.spatial and scipy.stats take seconds to import: load on use

    try:
        d = ssd.squareform(ssd.pdist(x, metric=metric), checks=False)
    except ValueError as exc:
        raise InputError(f"metric: {exc}") from None
    if not np.all(np.isfinite(d)):
        raise InputError(f"{name}: {metric} distances overflow (values up to {np.abs(x).max():.3g}); rescale the data")
    return d


def compare_rdms(R1, R2, method: str = "spearman") -> float:
    """Rank (or linear) correlation between the upper triangles (``i < j``) of two ``(n, n)`` RDMs.

    Only the upper triangles are read.

    Args:
      R1, R2: ``(n, n)`` RDMs over the same ``n >= 3`` samples.
      method: ``"spearman"`` (Pearson correlation of ranks, ties averaged), ``"kendall"`` (Kendall's
        τ_a = (concordant - discordant) / (m(m-1)/2) over the ``m`` entries, the variant recommended for
        RDMs by Nili et al. 2014; ties count as neither), or ``"pearson"``.

    Returns:
      A correlation in [-1, 1].
    """
    choice(method, "method", METHODS)
    a, b = _triangle(R1, "R1"), _triangle(R2, "R2")
    if a.size != b.size:
        raise InputError(f"R1 and R2: different sizes ({_side(a.size)} vs {_side(b.size)} samples)")
    return _compare_pair(_Triangle.of(a, "R1", method), _Triangle.of(b, "R2", method))


def rsa(X, Y, *, metric: str = "correlation", method: str = "spearman") -> float:
    """Representational similarity: ``compare_rdms(rdm(X, metric), rdm(Y, metric), method)``.

    Args:
      X: ``(n, d_x)`` first view.
      Y: ``(n, d_y)`` second view, the same samples.
      metric: the RDMs' dissimilarity (see :func:`rdm`).
      method: how the RDMs are compared (see :func:`compare_rdms`).

    Returns:
      A correlation in [-1, 1] (unchanged by a common scale of either view).
    """
    choice(method, "method", METHODS)
    if np.shape(X)[:1] != np.shape(Y)[:1]:
        raise InputError(f"X and Y: sample counts differ ({np.shape(X)[:1]} vs {np.shape(Y)[:1]})")
    return _compare_pair(_Triangle.of_view(X, "X", metric, method), _Triangle.of_view(Y, "Y", metric, method))


# -- per-view preparation (reused by similarity_matrix) ------------------------------------------


@dataclass(frozen=True)
class _Triangle:
    """The upper triangle of an RDM, standardised (Pearson), rank-transformed (Spearman) or raw (Kendall)."""

    values: np.ndarray
    method: str

    @classmethod
    def of(cls, tri: np.ndarray, name: str, method: str) -> _Triangle:
        if tri.size < 3:
            raise InputError(f"{name}: needs at least 3 samples to compare RDMs")
        if np.ptp(tri) == 0:
            raise InputError(f"{name}: all dissimilarities are equal; the correlation is undefined")
        if method == "kendall":
            return cls(tri, method)
        import scipy.stats

        v = scipy.stats.rankdata(tri) if method == "spearman" else tri
        v = v - v.mean()
        return cls(v / np.linalg.norm(v), method)

    @classmethod
    def of_view(cls, X, name: str, metric: str, method: str) -> _Triangle:
        d = _rdm(X, name, metric, rescale=True)  # RSA is unchanged by a common scale of the view
        if d.shape[0] < 3:
            raise InputError(f"{name}: needs at least 3 samples to compare RDMs")
        return cls.of(d[np.triu_indices(d.shape[0], k=1)], name, method)


def _compare_pair(a: _Triangle, b: _Triangle) -> float:
    if a.method != "kendall":
        return float(np.clip(a.values @ b.values, -1.0, 1.0))
    import scipy.stats

    tau_b = scipy.stats.kendalltau(a.values, b.values, variant="b").statistic
    # τ_b = S / sqrt((m0 - t_a)(m0 - t_b)) and τ_a = S / m0, with t the number of tied pairs of each side
    m0 = a.values.size * (a.values.size - 1) / 2
    return float(tau_b * np.sqrt((m0 - _tied_pairs(a.values)) * (m0 - _tied_pairs(b.values))) / m0)


def _tied_pairs(v: np.ndarray) -> float:
    _, counts = np.unique(v, return_counts=True)
    return float(np.sum(counts * (counts - 1) / 2))


def _triangle(R, name: str) -> np.ndarray:
    r = view(R, name, min_samples=1, drop_constant=False)
    if r.shape[0] != r.shape[1]:
        raise InputError(f"{name}: an RDM must be square, got shape {r.shape}")
    if r.shape[0] < 3:
        raise InputError(f"{name}: needs at least 3 samples to compare RDMs, got {r.shape[0]}")
    return r[np.triu_indices(r.shape[0], k=1)]


def _side(m: int) -> int:
    return int(round((1 + np.sqrt(1 + 8 * m)) / 2))
