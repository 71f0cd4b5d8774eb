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

    :func:`fill_phase_axes` puts the data in. Tick labels are plain numbers (0.01, 0.1, 1, 10):
    matplotlib's default 10^k labels go through its mathtext parser, whose set-up is a large share of
    the command's first draw.

    Args:
        alphas, betas: the grid's rates (A,) and (B,), log-spaced.
        ax: the axes to draw on (default: a new figure).
        title: the title.

    Returns:
        ``(fig, ax, mesh)``.
    """
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


def fill_phase_axes(ax, mesh, alphas, betas, status, rho=None, *, mismatch=None, predicted=None,
                    undetermined=None, kinds=None, kind_names=None) -> None:
    """Put a sweep's data into a :func:`phase_axes` frame, and add the legend.

    Args:
        ax: the frame's axes.
        mesh: the frame's cell mesh.
        alphas, betas: the grid's rates (A,) and (B,).
        status: verdict indices (A, B) into :data:`sgtheory.verdicts.STATUS` (colours the cells).
        rho: the theory's spectral radius (A, B); its line ρ = 1 is drawn when ``predicted`` is None.
        mismatch: bool (A, B), cells crossed as mismatches.
        predicted: the theory's verdict (A, B: 1 converges, 0 diverges, NaN undetermined); its boundary
            is drawn along the cell edges.
        undetermined: bool (A, B), cells hatched as left undetermined by the theory.
        kinds: int (A, B), −1 for none: where it takes more than one value, the regions of the different
            fixed points the runs are predicted to approach are outlined.
        kind_names: the names of the ``kinds`` values, for the legend.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    a, b = np.asarray(alphas), np.asarray(betas)
    with style():
        mesh.set_array(np.asarray(status).T)
        handles = [Patch(color=c, label=s) for c, s in zip(STATUS_COLOURS, STATUS)]
        two_d = a.size > 1 and b.size > 1
        if predicted is not None and two_d:
            segments = _edges(a, b, np.asarray(predicted, float))
            if segments:
                from matplotlib.collections import LineCollection

                ax.add_collection(LineCollection(segments, colors="k", linewidths=1.6, zorder=3), autolim=False)
                handles.append(Line2D([], [], color="k", label="theory: predicted boundary"))
        elif rho is not None and two_d and np.isfinite(rho).any():
            ax.contour(a, b, np.asarray(rho, float).T, levels=[1.0], colors="k", linewidths=1.5)
            handles.append(Line2D([], [], color="k", label="theory: ρ(J) = 1"))
        if undetermined is not None and np.any(undetermined):
            from matplotlib.collections import PatchCollection
            from matplotlib.patches import Rectangle

            ea, eb = _cell_edges(a), _cell_edges(b)
            cells = [Rectangle((ea[i], eb[j]), ea[i + 1] - ea[i], eb[j + 1] - eb[j])
                     for i, j in zip(*np.nonzero(np.asarray(undetermined)))]
            ax.add_collection(PatchCollection(cells, facecolor="none", edgecolor="k", linewidth=0.0, hatch="///",
                                              zorder=2), autolim=False)
            handles.append(Patch(facecolor="none", edgecolor="k", hatch="///", label="theory: undetermined"))
        if kinds is not None and two_d:
            k = np.asarray(kinds)
            present = [int(v) for v in np.unique(k) if v >= 0]
            if len(present) > 1:
                ax.contour(a, b, k.T.astype(float), levels=np.asarray(present[:-1], float) + 0.5, colors="k",
                           linestyles="--", linewidths=1.0)
                names = ", ".join(kind_names[v] if kind_names else str(v) for v in present)
                handles.append(Line2D([], [], color="k", linestyle="--", label=f"fixed points: {names}"))
        if mismatch is not None:
            ia, ib = np.nonzero(np.asarray(mismatch))
            if ia.size:
                ax.scatter(a[ia], b[ib], marker="x", s=10, c="k", linewidths=0.6)
                handles.append(Line2D([], [], color="k", marker="x", linestyle="", label="theory ≠ simulation"))
        ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=True, framealpha=0.9)


def _cell_edges(v: np.ndarray) -> np.ndarray:
    """Edges of log-spaced cells centred at ``v``: geometric midpoints, extended by half a step at the ends."""
    if v.size == 1:
        return np.array([v[0] / 1.1, v[0] * 1.1])
    mid = np.sqrt(v[1:] * v[:-1])
    return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])


def _edges(a, b, predicted: np.ndarray) -> list:
    """Line segments along the cell edges between a cell predicted to converge (1) and one predicted to
    diverge (0) (undetermined cells, NaN, border neither)."""
    ea, eb = _cell_edges(a), _cell_edges(b)
    segments = []
    for i in range(a.size):
        for j in range(b.size):
            p = predicted[i, j]
            if i + 1 < a.size and {p, predicted[i + 1, j]} == {0.0, 1.0}:
                segments.append([(ea[i + 1], eb[j]), (ea[i + 1], eb[j + 1])])
            if j + 1 < b.size and {p, predicted[i, j + 1]} == {0.0, 1.0}:
                segments.append([(ea[i], eb[j + 1]), (ea[i + 1], eb[j + 1])])
    return segments


def draw_phase_diagram(alphas, betas, status, rho=None, *, mismatch=None, predicted=None, undetermined=None,
                       kinds=None, kind_names=None, ax=None, title: str | None = None):
    """The whole phase diagram (:func:`phase_axes`, then :func:`fill_phase_axes`).

    Args:
        alphas, betas: the grid's rates (A,) and (B,), log-spaced.
        status: verdict indices (A, B) into :data:`sgtheory.verdicts.STATUS` (colours the cells).
        rho: the theory's spectral radius (A, B); its line ρ = 1 is drawn when ``predicted`` is None.
        mismatch: bool (A, B), cells crossed as mismatches.
        predicted: the theory's verdict (A, B: 1 converges, 0 diverges, NaN undetermined); its boundary
            is drawn along the cell edges.
        undetermined: bool (A, B), cells hatched as left undetermined by the theory.
        kinds: int (A, B), −1 for none: where it takes more than one value, the regions of the different
            fixed points the runs are predicted to approach are outlined.
        kind_names: the names of the ``kinds`` values, for the legend.
        ax: the axes to draw on (default: a new figure).
        title: the title.

    Returns:
        ``(fig, ax)``.
    """
    fig, ax, mesh = phase_axes(alphas, betas, ax=ax, title=title)
    fill_phase_axes(ax, mesh, alphas, betas, status, rho, mismatch=mismatch, predicted=predicted,
                    undetermined=undetermined, kinds=kinds, kind_names=kind_names)
    return fig, ax


__all__ = ["STATUS_COLOURS", "phase_axes", "fill_phase_axes", "draw_phase_diagram"]
