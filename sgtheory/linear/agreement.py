"""Theory vs simulation on an (α, β) grid: the boundary band and the agreement fraction.

The linearised prediction says a run converges iff ρ(J(α, β)) < 1 (:mod:`sgtheory.linear.theory`). The
simulation says "diverged" or not (:mod:`sgtheory.linear.sweep`; a not-yet-converged run that is not
growing counts as "not diverged", since ρ < 1 promises convergence only eventually). Cells near the
predicted boundary are left out: a cell is *in the band* when a relative change of ``rel`` in α and in β
could move ρ across 1 to first order,

    |ρ − 1| ≤ ln(1 + rel) · (|∂ρ/∂ln α| + |∂ρ/∂ln β|),

with the derivatives taken by finite differences along the grid (log-spaced rates). The default
``rel = 0.05`` is a ±5% band around the boundary in both rates.
"""

from __future__ import annotations

import numpy as np

from sgtheory.linear.sweep import DIVERGED

BAND_REL = 0.05
BAND_TEXT = ("cells within ±{pct:g}% (relative, in both α and β) of the predicted boundary are not counted: "
             "|ρ−1| ≤ ln(1+{rel:g})·(|∂ρ/∂lnα|+|∂ρ/∂lnβ|), derivatives by finite differences on the grid")


def _dlog(rho: np.ndarray, rates: np.ndarray, axis: int) -> np.ndarray:
    if rates.size < 2:
        return np.zeros_like(rho)
    return np.gradient(rho, np.log(rates), axis=axis)


def in_band(rho: np.ndarray, alphas, betas, *, rel: float = BAND_REL) -> np.ndarray:
    """Boolean (A, B): cells within the first-order ±``rel`` band of the predicted boundary ρ = 1."""
    rho = np.asarray(rho, dtype=np.float64)
    slack = np.log1p(rel) * (np.abs(_dlog(rho, np.asarray(alphas), 0)) + np.abs(_dlog(rho, np.asarray(betas), 1)))
    return np.abs(rho - 1.0) <= slack


def theory_agreement(status: np.ndarray, rho: np.ndarray, alphas, betas, *, rel: float = BAND_REL) -> dict:
    """Agreement of ρ < 1 with "not diverged" over the counted cells.

    ``status`` (..., A, B) from a sweep (every leading slice is compared with the same ``rho`` (A, B)).
    Returns ``agreement`` (fraction of counted cells that match), ``counted_fraction``, ``n_counted``,
    ``n_mismatch``, the ``band`` description and ``mismatch`` (bool, like ``status``; False off-count).
    """
    status = np.asarray(status)
    band = in_band(rho, alphas, betas, rel=rel)
    predicted = np.asarray(rho) < 1.0
    simulated = status != DIVERGED
    counted = np.broadcast_to(~band, status.shape)
    mismatch = counted & (np.broadcast_to(predicted, status.shape) != simulated)
    n = int(counted.sum())
    return {
        "agreement": float(1.0 - mismatch.sum() / n) if n else float("nan"),
        "counted_fraction": float(n / status.size),
        "n_counted": n,
        "n_mismatch": int(mismatch.sum()),
        "band": BAND_TEXT.format(pct=100 * rel, rel=rel),
        "mismatch": mismatch,
    }


__all__ = ["BAND_REL", "in_band", "theory_agreement"]
