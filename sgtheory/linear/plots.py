"""Plots of linear-SG sweeps: the (α, β) phase diagram with the theory's boundary drawn over it."""

from __future__ import annotations

import numpy as np

from sgtheory.linear.sweep import STATUS, SweepResult

STATUS_COLOURS = ("#3b7dd8", "#f2c14e", "#d1495b")  # converged, not converged, diverged


def plot_phase_diagram(result: SweepResult, rho=None, *, mismatch=None, seed_index: int = 0,
                       scale_index: int = 0, ax=None, title: str | None = None):
    """Colour each (α, β) cell by its simulated status; draw the predicted boundary ρ(J) = 1 when
    ``rho`` (A, B) is given, and mark ``mismatch`` cells (bool, like ``result.status``) with crosses.

    Shows the slice (``seed_index``, ``scale_index``). Returns ``(fig, ax)``.
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from sgtheory.plotting import get_ax, style

    fig, ax = get_ax(ax, figsize=(5.2, 4.4))
    a, b = np.asarray(result.alphas), np.asarray(result.betas)
    status = np.asarray(result.status)[seed_index, scale_index]
    with style():
        cmap = ListedColormap(STATUS_COLOURS)
        ax.pcolormesh(a, b, status.T, cmap=cmap, norm=BoundaryNorm([-0.5, 0.5, 1.5, 2.5], 3), shading="nearest")
        handles = [Patch(color=c, label=s) for c, s in zip(STATUS_COLOURS, STATUS)]
        if rho is not None and a.size > 1 and b.size > 1:
            ax.contour(a, b, np.asarray(rho).T, levels=[1.0], colors="k", linewidths=1.5)
            handles.append(Line2D([], [], color="k", label="theory: ρ(J) = 1"))
        if mismatch is not None:
            mis = np.asarray(mismatch)[seed_index, scale_index]
            ia, ib = np.nonzero(mis)
            if ia.size:
                ax.scatter(a[ia], b[ib], marker="x", s=10, c="k", linewidths=0.6)
                handles.append(Line2D([], [], color="k", marker="x", linestyle="", label="theory ≠ simulation"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("main learning rate α")
        ax.set_ylabel("SG learning rate β")
        if title:
            ax.set_title(title)
        ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=True, framealpha=0.9)
    return fig, ax


__all__ = ["plot_phase_diagram", "STATUS_COLOURS"]
