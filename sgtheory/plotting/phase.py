"""The (α, β) phase diagram of a convergence sweep, from plain arrays (no JAX: a child process draws it
for ``sgtheory sweep``, see :mod:`sgtheory.cli._plot_child`).

:func:`draw_phase_diagram` draws it in one go; :func:`phase_axes` and :func:`fill_phase_axes` are its two
halves (the frame, then the data), so that the frame can be drawn before the data exist."""

from __future__ import annotations

import numpy as np

from sgtheory.plotting import get_ax, style
from sgtheory.verdicts import STATUS

STATUS_COLOURS = ("#3b7dd8", "#f2c14e", "#d1495b")  # converged, not converged, diverged


def phase_axes(alphas, betas, *, ax=None, title: str | None = None):
    """The frame: log α × log β axes, labels, title and an all-"converged" (A, B) cell mesh.
    Returns ``(fig, ax, mesh)``; :func:`fill_phase_axes` puts the data in. Tick labels are plain numbers
    (0.01, 0.1, 1, 10): matplotlib's default 10^k labels go through its mathtext parser, whose set-up
    is a third of the command's first draw."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, ax = get_ax(ax, figsize=(5.2, 4.4))
    a, b = np.asarray(alphas), np.asarray(betas)
    with style():
        mesh = ax.pcolormesh(a, b, np.zeros((b.size, a.size), np.int8), cmap=ListedColormap(STATUS_COLOURS),
                             norm=BoundaryNorm([-0.5, 0.5, 1.5, 2.5], 3), shading="nearest")
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        for axis, v in ((ax.xaxis, a), (ax.yaxis, b)):  # minor ticks labelled only within ~2 decades
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(plain if v.max() < 100 * v.min() else NullFormatter())
        ax.set_xlabel("main learning rate α")
        ax.set_ylabel("SG learning rate β")
        if title:
            ax.set_title(title)
    return fig, ax, mesh


def fill_phase_axes(ax, mesh, alphas, betas, status, rho=None, *, mismatch=None) -> None:
    """Colour the cells by ``status`` (A, B) (indices into :data:`sgtheory.verdicts.STATUS`); draw the
    predicted boundary ρ(J) = 1 when ``rho`` (A, B) is given; cross the ``mismatch`` cells (bool (A, B));
    add the legend."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    a, b = np.asarray(alphas), np.asarray(betas)
    with style():
        mesh.set_array(np.asarray(status).T)
        handles = [Patch(color=c, label=s) for c, s in zip(STATUS_COLOURS, STATUS)]
        if rho is not None and a.size > 1 and b.size > 1:
            ax.contour(a, b, np.asarray(rho).T, levels=[1.0], colors="k", linewidths=1.5)
            handles.append(Line2D([], [], color="k", label="theory: ρ(J) = 1"))
        if mismatch is not None:
            ia, ib = np.nonzero(np.asarray(mismatch))
            if ia.size:
                ax.scatter(a[ia], b[ib], marker="x", s=10, c="k", linewidths=0.6)
                handles.append(Line2D([], [], color="k", marker="x", linestyle="", label="theory ≠ simulation"))
        ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=True, framealpha=0.9)


def draw_phase_diagram(alphas, betas, status, rho=None, *, mismatch=None, ax=None, title: str | None = None):
    """The whole phase diagram (:func:`phase_axes`, then :func:`fill_phase_axes`). Returns ``(fig, ax)``."""
    fig, ax, mesh = phase_axes(alphas, betas, ax=ax, title=title)
    fill_phase_axes(ax, mesh, alphas, betas, status, rho, mismatch=mismatch)
    return fig, ax


__all__ = ["STATUS_COLOURS", "phase_axes", "fill_phase_axes", "draw_phase_diagram"]
