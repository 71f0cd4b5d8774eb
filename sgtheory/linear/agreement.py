"""Theory vs simulation on an (α, β) grid: the boundary band, agreement and coverage.

A prediction says per cell converges / diverges / undetermined (:mod:`sgtheory.linear.predict`); the
simulation says "diverged" or not (:mod:`sgtheory.linear.sweep`; a not-yet-converged run that is not
growing counts as "not diverged", since a stable fixed point promises convergence only eventually). Cells
near the predicted boundary are left out: a cell is *in the band* when a relative change of ``rel`` in α
and in β could move its spectral radius across the threshold ρ_c to first order,

    |ρ − ρ_c| ≤ ln(1 + rel) · (|∂ρ/∂ln α| + |∂ρ/∂ln β|),

with the derivatives taken by finite differences along the grid (log-spaced rates). The default
``rel = 0.05`` is a ±5% band around the boundary in both rates.

- **agreement**: the fraction of *decided* cells outside the band whose verdict matches the simulation;
- **coverage**: decided cells outside the band / all cells (what the prediction covers at all).

With no counted cell there is no agreement to report: it is ``None`` and ``status`` says why (never NaN).
"""

from __future__ import annotations

import numpy as np

from sgtheory.verdicts import DIVERGED

BAND_REL = 0.05
BAND_TEXT = ("cells within ±{pct:g}% (relative, in both α and β) of the predicted boundary are not counted: "
             "|ρ−ρc|≤ln(1+{rel:g})·(|∂ρ/∂lnα|+|∂ρ/∂lnβ|), derivatives by finite differences on the grid")
CONVERGES, DIVERGES, UNDETERMINED = range(3)  # as sgtheory.linear.rule (kept import-light)


def _dlog(rho: np.ndarray, rates: np.ndarray, axis: int) -> np.ndarray:
    if rates.size < 2:
        return np.zeros_like(rho)
    return np.gradient(rho, np.log(rates), axis=axis)


def in_band(rho: np.ndarray, alphas, betas, *, rel: float = BAND_REL, threshold: float = 1.0) -> np.ndarray:
    """Which cells lie within the first-order ±``rel`` band of the boundary ρ = ``threshold``.

    Args:
        rho: spectral radii (..., A, B) on the log-spaced grid.
        alphas, betas: the grid's rates (A,) and (B,).
        rel: the band's relative change in each rate.
        threshold: the boundary value ρ_c.

    Returns:
        Boolean (..., A, B), False where ρ is NaN.
    """
    rho = np.asarray(rho, dtype=np.float64)
    slack = np.log1p(rel) * (np.abs(_dlog(rho, np.asarray(alphas), -2)) + np.abs(_dlog(rho, np.asarray(betas), -1)))
    with np.errstate(invalid="ignore"):
        return np.abs(rho - threshold) <= slack


def _summary(counted: np.ndarray, mismatch: np.ndarray, n_cells: int, rel: float) -> dict:
    n, bad = int(counted.sum()), int(mismatch.sum())
    out = {"agreement": round(1.0 - bad / n, 5) if n else None, "coverage": round(n / n_cells, 5) if n_cells else 0.0,
           "n_counted": n, "n_mismatch": bad, "band": BAND_TEXT.format(pct=100 * rel, rel=rel)}
    if not n:
        out["status"] = "no counted cells: every cell is undetermined or in the boundary band"
    return out


def score(prediction, status: np.ndarray, *, rel: float = BAND_REL) -> dict:
    """Agreement and coverage of a three-way ``prediction`` against the sweep's ``status`` (S, I, A, B).

    Args:
        prediction: a :class:`~sgtheory.linear.predict.Prediction` on the sweep's grid.
        status: the sweep's status codes (S, I, A, B).
        rel: the band's relative change in each rate (:func:`in_band`).

    Returns:
        A dict: ``agreement`` (None without counted cells), ``coverage``, ``n_counted``, ``n_mismatch``,
        ``band`` (its description), ``n_undetermined``, ``n_band``, and the arrays ``mismatch`` and
        ``counted`` (bool, like ``status``).
    """
    from sgtheory.linear.rule import growth_threshold

    status = np.asarray(status)
    verdict = np.broadcast_to(prediction.verdict, status.shape)
    band = in_band(prediction.rho_eff, prediction.alphas, prediction.betas, rel=rel,
                   threshold=growth_threshold(prediction.steps))
    band = np.broadcast_to(band, status.shape)
    decided = verdict != UNDETERMINED
    counted = decided & ~band
    mismatch = counted & ((verdict == CONVERGES) != (status != DIVERGED))
    out = _summary(counted, mismatch, status.size, rel)
    out.update(n_undetermined=int((~decided).sum()), n_band=int((decided & band).sum()), mismatch=mismatch,
               counted=counted)
    return out


def theory_agreement(status: np.ndarray, rho: np.ndarray, alphas, betas, *, rel: float = BAND_REL) -> dict:
    """Agreement of the two-way "ρ < 1" with "not diverged" over the counted cells (every cell decided).

    Args:
        status: sweep status codes (..., A, B); every leading slice is compared with the same ``rho``.
        rho: the theory's spectral radii (A, B).
        alphas, betas: the grid's rates (A,) and (B,).
        rel: the band's relative change in each rate (:func:`in_band`).

    Returns:
        A dict: ``agreement`` (None without counted cells, with a ``status`` saying so), ``coverage``
        (= counted fraction), ``counted_fraction``, ``n_counted``, ``n_mismatch``, the ``band``
        description and ``mismatch`` (bool, like ``status``; False off-count).
    """
    status = np.asarray(status)
    band = in_band(rho, alphas, betas, rel=rel)
    predicted = np.asarray(rho) < 1.0
    simulated = status != DIVERGED
    counted = np.broadcast_to(~band, status.shape)
    mismatch = counted & (np.broadcast_to(predicted, status.shape) != simulated)
    out = _summary(counted, mismatch, status.size, rel)
    out.update(counted_fraction=out["coverage"], mismatch=mismatch)
    return out


__all__ = ["BAND_REL", "in_band", "score", "theory_agreement"]
