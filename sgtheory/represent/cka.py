"""Centred kernel alignment (Kornblith et al. 2019, arXiv 1905.00414): linear, RBF, debiased, minibatch.

``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` for Gram matrices ``K`` of ``X`` and ``L``
of ``Y`` over the same ``n`` samples, ``(n_samples, n_features)`` each.

- Biased HSIC: ``tr(K H L H) / (n-1)²`` with ``H = I - 11^T/n``. For the linear kernel on centred
  views this gives ``CKA = ‖Y^T X‖²_F / (‖X^T X‖_F ‖Y^T Y‖_F)``.
- Unbiased HSIC (Song et al. 2012, JMLR 13): with ``K̃, L̃`` the Gram matrices with zeroed diagonals,
  ``HSIC_1 = [tr(K̃L̃) + 1^T K̃ 1 · 1^T L̃ 1 / ((n-1)(n-2)) - 2/(n-2) · 1^T K̃ L̃ 1] / (n(n-3))``,
  computed here as ``⟨U(K), U(L)⟩ / (n(n-3))`` with the U-centring ``U`` of Székely & Rizzo (2014).
  Debiased CKA uses it in all three places; it needs ``n ≥ 4`` and can be slightly below 0 for
  unrelated views.
- Minibatch CKA (Nguyen et al. 2021, arXiv 2010.15327): sums of per-batch unbiased HSIC.

Similarities lie in [0, 1] (debiased and minibatch estimates may fall slightly below 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgtheory.errors import InputError
from sgtheory.represent._validate import paired
from sgtheory.validate import positive

__all__ = ["linear_cka", "rbf_cka", "minibatch_cka", "MinibatchCKA"]


def linear_cka(X, Y, *, debiased: bool = False) -> float:
    """Linear CKA ``‖Y_c^T X_c‖²_F / (‖X_c^T X_c‖_F ‖Y_c^T Y_c‖_F)`` on centred views.

    Invariant to orthogonal transforms and isotropic scaling of either view; identical views give 1.

    Args:
      X: ``(n, d_x)`` first view.
      Y: ``(n, d_y)`` second view, the same samples.
      debiased: replace each HSIC by the unbiased estimator (needs ``n ≥ 4``).

    Returns:
      The similarity, in [0, 1] (debiased: may fall slightly below 0 for unrelated views).
    """
    x, y = paired(X, Y, min_samples=4 if debiased else 2, rescale=True)
    return _linear_pair(_Linear.of(x, "X", debiased), _Linear.of(y, "Y", debiased))


def rbf_cka(X, Y, *, sigma_frac: float = 1.0, debiased: bool = False) -> float:
    """CKA with Gaussian kernels ``K_ij = exp(-‖x_i - x_j‖² / (2 σ²))``, one bandwidth per view.

    Costs ``O(n²)`` memory per view.

    Args:
      X: ``(n, d_x)`` first view.
      Y: ``(n, d_y)`` second view, the same samples.
      sigma_frac: ``σ = sigma_frac · sqrt(median of the n² squared pairwise distances)``, the diagonal
        zeros included, as in Kornblith et al.'s reference code.
      debiased: use the unbiased HSIC estimator (needs ``n ≥ 4``).

    Returns:
      The similarity, in [0, 1] (debiased: may fall slightly below 0).
    """
    frac = positive(sigma_frac, "sigma_frac")
    x, y = paired(X, Y, min_samples=4 if debiased else 2, rescale=True)
    return _gram_pair(_Gram.rbf(x, "X", frac, debiased), _Gram.rbf(y, "Y", frac, debiased))


def minibatch_cka(X, Y, *, batch_size: int = 256) -> float:
    """Minibatch linear CKA over consecutive batches of ``batch_size`` samples (Nguyen et al. 2021).

    ``Σ_b HSIC_1(K_b, L_b) / sqrt(Σ_b HSIC_1(K_b, K_b) · Σ_b HSIC_1(L_b, L_b))`` with the unbiased
    HSIC of each batch. A final partial batch is used when it has at least 4 samples (the unbiased
    estimator's minimum) and dropped otherwise. Shuffle the rows first if their order is not random
    (sorted rows, e.g. by class, bias the value upward). For streams, use :class:`MinibatchCKA`.

    Args:
      X: ``(n, d_x)`` first view, ``n ≥ 4``.
      Y: ``(n, d_y)`` second view, the same samples.
      batch_size: samples per batch, ≥ 4.

    Returns:
      The estimate (may fall slightly below 0 for unrelated views).
    """
    if int(batch_size) != batch_size or batch_size < 4:
        raise InputError(f"batch_size: must be an integer >= 4 (the unbiased HSIC needs 4 samples), got {batch_size!r}")
    x, y = paired(X, Y, min_samples=4, drop_constant=False, rescale=True)
    acc = MinibatchCKA()
    for start in range(0, x.shape[0], int(batch_size)):
        if x.shape[0] - start >= 4:
            acc.update(x[start:start + batch_size], y[start:start + batch_size])
    return acc.value


class MinibatchCKA:
    """Accumulator for minibatch linear CKA over a stream of ``(X_b, Y_b)`` batches.

    ``update`` adds one batch (``(b, d_x)``, ``(b, d_y)``, ``b ≥ 4``); ``value`` is the CKA so far.
    Constant features are kept (they add nothing to a centred linear kernel), so every batch of a
    stream is treated alike.
    """

    def __init__(self):
        self.hsic_xy = 0.0
        self.hsic_xx = 0.0
        self.hsic_yy = 0.0
        self.n_batches = 0

    def update(self, X, Y) -> MinibatchCKA:
        """Add one batch: ``X`` ``(b, d_x)`` and ``Y`` ``(b, d_y)``, the same ``b ≥ 4`` samples. Returns ``self``."""
        x, y = paired(X, Y, min_samples=4, drop_constant=False)
        lx, ly = _Linear.of(x, "X", True, check=False), _Linear.of(y, "Y", True, check=False)
        self.hsic_xy += _unbiased_linear_hsic(lx, ly)
        self.hsic_xx += lx.self_hsic
        self.hsic_yy += ly.self_hsic
        self.n_batches += 1
        return self

    @property
    def value(self) -> float:
        """The minibatch CKA of the batches so far (an :class:`~sgtheory.InputError` before any batch)."""
        if self.n_batches == 0:
            raise InputError("minibatch CKA: no batch has been added")
        if self.hsic_xx <= 0 or self.hsic_yy <= 0:
            raise InputError("minibatch CKA: the summed HSIC of a view with itself is <= 0 "
                             "(constant views or too few samples); use larger batches")
        return float(self.hsic_xy / np.sqrt(self.hsic_xx * self.hsic_yy))


# -- per-view preparation (reused by similarity_matrix) ------------------------------------------


@dataclass(frozen=True)
class _Linear:
    """Centred view plus what its self-HSIC needs: row squared norms and the self term."""

    xc: np.ndarray  # (n, d), centred
    sq_norms: np.ndarray  # (n,) ‖x_i‖² of centred rows (unbiased estimator only)
    self_hsic: float  # ‖X_c^T X_c‖_F (biased) or HSIC_1(K, K) (unbiased)
    debiased: bool

    @classmethod
    def of(cls, x: np.ndarray, name: str, debiased: bool, *, check: bool = True) -> _Linear:
        xc = x - x.mean(axis=0)
        sq = np.einsum("ij,ij->i", xc, xc)
        if debiased:
            self_term = _unbiased_linear_hsic_parts(xc, xc, sq, sq)
            if check and self_term <= 0:
                raise InputError(f"{name}: too few samples for debiased CKA "
                                 f"(the unbiased HSIC of the view with itself is {self_term:.3g} <= 0)")
        else:
            small = xc.T if xc.shape[1] <= xc.shape[0] else xc  # ‖X^T X‖_F = ‖X X^T‖_F: use the smaller Gram
            self_term = float(np.linalg.norm(small @ small.T))
        return cls(xc, sq, float(self_term), debiased)

    def take(self, rows: np.ndarray) -> _Linear:
        """The same view with its samples permuted (centring and self terms are unchanged)."""
        return _Linear(self.xc[rows], self.sq_norms[rows], self.self_hsic, self.debiased)


def _cross_fro2(xc: np.ndarray, yc: np.ndarray) -> float:
    """‖Y^T X‖²_F, through the cheaper of the feature product and the Gram product."""
    n, dx, dy = xc.shape[0], xc.shape[1], yc.shape[1]
    if dx * dy <= n * n:
        cross = xc.T @ yc
        return float(np.einsum("ij,ij->", cross, cross))
    return float(np.einsum("ij,ij->", xc @ xc.T, yc @ yc.T))


def _unbiased_linear_hsic_parts(xc, yc, sx, sy, fro2: float | None = None) -> float:
    """Song et al.'s HSIC_1 for linear kernels of centred views, in feature space.

    With ``1^T X_c = 0``: ``tr(K̃L̃) = ‖Y^T X‖² - Σ_i sx_i sy_i``, ``1^T K̃ 1 = -Σ_i sx_i`` and
    ``1^T K̃ L̃ 1 = Σ_i sx_i sy_i`` (``sx_i = ‖x_i‖²``); the estimator is shift-invariant, so centring
    first changes nothing. ``fro2``: ``‖Y^T X‖²_F`` when already computed.
    """
    n = xc.shape[0]
    diag = float(sx @ sy)
    trace = (_cross_fro2(xc, yc) if fro2 is None else fro2) - diag
    return (trace + sx.sum() * sy.sum() / ((n - 1) * (n - 2)) - 2.0 * diag / (n - 2)) / (n * (n - 3))


def _unbiased_linear_hsic(lx: _Linear, ly: _Linear) -> float:
    return _unbiased_linear_hsic_parts(lx.xc, ly.xc, lx.sq_norms, ly.sq_norms)


def _linear_pair(lx: _Linear, ly: _Linear, fro2: float | None = None) -> float:
    """Linear CKA of two prepared views; ``fro2 = ‖Y_c^T X_c‖²_F`` may be passed in (device path)."""
    if lx.debiased:
        hsic = _unbiased_linear_hsic_parts(lx.xc, ly.xc, lx.sq_norms, ly.sq_norms, fro2)
        return float(hsic / np.sqrt(lx.self_hsic * ly.self_hsic))
    return float((_cross_fro2(lx.xc, ly.xc) if fro2 is None else fro2) / (lx.self_hsic * ly.self_hsic))


@dataclass(frozen=True)
class _Gram:
    """A view's centred (biased) or U-centred (unbiased) Gram matrix and its Frobenius norm."""

    centred: np.ndarray  # (n, n)
    norm: float

    @classmethod
    def rbf(cls, x: np.ndarray, name: str, sigma_frac: float, debiased: bool) -> _Gram:
        x = x - x.mean(axis=0)  # distances are shift-invariant; centring avoids cancellation in the expansion
        sq = np.einsum("ij,ij->i", x, x)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
        np.fill_diagonal(d2, 0.0)
        med = float(np.median(d2))
        if med <= 0:
            raise InputError(f"{name}: the median squared distance between samples is 0 (mostly repeated "
                             "samples); the RBF bandwidth is undefined")
        gram = np.exp(-d2 / (2.0 * sigma_frac**2 * med))
        centred = _u_centre(gram) if debiased else _centre_gram(gram)
        norm2 = float(np.einsum("ij,ij->", centred, centred))
        if norm2 <= 0:
            raise InputError(f"{name}: too few samples for debiased CKA (the unbiased HSIC of the view "
                             "with itself is <= 0)")
        return cls(centred, float(np.sqrt(norm2)))

    def take(self, rows: np.ndarray) -> _Gram:
        return _Gram(self.centred[np.ix_(rows, rows)], self.norm)


def _centre_gram(gram: np.ndarray) -> np.ndarray:
    """``H K H`` with ``H = I - 11^T/n``."""
    row = gram.mean(axis=0)
    return gram - row[None, :] - row[:, None] + row.mean()


def _u_centre(gram: np.ndarray) -> np.ndarray:
    """U-centring (Székely & Rizzo 2014): ``⟨U(K), U(L)⟩ / (n(n-3))`` is Song et al.'s HSIC_1."""
    n = gram.shape[0]
    k = gram.copy()
    np.fill_diagonal(k, 0.0)
    row = k.sum(axis=0) / (n - 2)
    k -= row[None, :] + row[:, None] - k.sum() / ((n - 1) * (n - 2))
    np.fill_diagonal(k, 0.0)
    return k


def _gram_pair(gx: _Gram, gy: _Gram) -> float:
    return float(np.einsum("ij,ij->", gx.centred, gy.centred) / (gx.norm * gy.norm))

