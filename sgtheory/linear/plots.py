"""Plots of linear-SG sweeps: the (α, β) phase diagram with the theory's boundary drawn over it."""

from __future__ import annotations

import numpy as np

from sgtheory.linear.sweep import SweepResult


def plot_phase_diagram(result: SweepResult, rho=None, *, mismatch=None, prediction=None, seed_index: int = 0,
                       scale_index: int = 0, ax=None, title: str | None = None):
    """Colour each (α, β) cell by its simulated status and draw the theory over it.

    Args:
      result: a :class:`~sgtheory.linear.sweep.SweepResult`.
      rho: (A, B) spectral radii: their ρ = 1 line is drawn (without ``prediction``).
      mismatch: bool, like ``result.status``: crossed cells (e.g. :func:`sgtheory.linear.score`'s).
      prediction: a :class:`~sgtheory.linear.predict.Prediction`: its boundary along the cell edges, its
        undetermined cells hatched, and the regions of different fixed points outlined.
      seed_index, scale_index: which (seed, init scale) slice is shown (the title says so).
      ax, title: the axes to draw in and a title.

    Returns:
      ``(fig, ax)`` (:func:`sgtheory.plotting.phase.draw_phase_diagram`).
    """
    from sgtheory.plotting.phase import draw_phase_diagram  # matplotlib: imported only when plotting
    from sgtheory.verdicts import PREDICTIONS

    i, j = seed_index, scale_index
    status = np.asarray(result.status)[i, j]
    mis = None if mismatch is None else np.asarray(mismatch)[i, j]
    kw = {}
    if prediction is not None:
        from sgtheory.linear.predict import KINDS

        verdict = np.asarray(prediction.verdict)[i, j]
        und = verdict == PREDICTIONS.index("undetermined")
        kw = dict(predicted=np.where(und, np.nan, (verdict == PREDICTIONS.index("converges")) * 1.0),
                  undetermined=und, kind_names=KINDS)
        index = np.asarray(prediction.fixed_point)[i, j]
        if np.size(prediction.table.get("kind", [])):
            kw["kinds"] = np.where(index >= 0, prediction.table["kind"][np.clip(index, 0, None)], -1)
        rho = np.asarray(prediction.rho_eff)[i, j]
    where = f"seed {result.seeds[i]}, init scale {result.init_scales[j]:g}"
    title = where if title is None else f"{title}; {where}"
    return draw_phase_diagram(result.alphas, result.betas, status, rho, mismatch=mis, ax=ax, title=title, **kw)


__all__ = ["plot_phase_diagram"]
