"""Plots of linear-SG sweeps: the (α, β) phase diagram with the theory's boundary drawn over it."""

from __future__ import annotations

import numpy as np

from sgtheory.linear.sweep import SweepResult


def plot_phase_diagram(result: SweepResult, rho=None, *, mismatch=None, seed_index: int = 0,
                       scale_index: int = 0, ax=None, title: str | None = None):
    """Colour each (α, β) cell by its simulated status; draw the predicted boundary ρ(J) = 1 when
    ``rho`` (A, B) is given, and mark ``mismatch`` cells (bool, like ``result.status``) with crosses.

    Shows the slice (``seed_index``, ``scale_index``) (:func:`sgtheory.plotting.phase.draw_phase_diagram`).
    Returns ``(fig, ax)``.
    """
    from sgtheory.plotting.phase import draw_phase_diagram  # matplotlib: imported only when plotting

    status = np.asarray(result.status)[seed_index, scale_index]
    mis = None if mismatch is None else np.asarray(mismatch)[seed_index, scale_index]
    return draw_phase_diagram(result.alphas, result.betas, status, rho, mismatch=mis, ax=ax, title=title)


__all__ = ["plot_phase_diagram"]
