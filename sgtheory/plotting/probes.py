"""Plots for layer-wise representation probes: similarity heatmaps, per-layer curves, RDM panels.

Each function takes ``ax=None`` (or ``fig=None`` for multi-panel figures), draws in the package style and
returns the figure and axes; none calls ``plt.show()``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from sgtheory.plotting import get_ax, style


def plot_similarity(matrix, names_a: Sequence[str], names_b: Sequence[str], *, title: str = "",
                    label_a: str = "A", label_b: str = "B", vmin: float | None = 0.0, vmax: float | None = 1.0,
                    ax=None):
    """Heatmap of a layer×layer matrix ``(len(names_a), len(names_b))``; rows are ``names_a`` (y axis).

    Returns ``(fig, ax, image)``.
    """
    m = np.asarray(matrix, dtype=float)
    with style():
        fig, ax = get_ax(ax, figsize=(0.9 + 0.28 * len(names_b) + 1.2, 0.9 + 0.28 * len(names_a)))
        im = ax.imshow(m, origin="lower", vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.grid(False)
        ax.set_xticks(range(len(names_b)), [_short(n) for n in names_b], rotation=90, fontsize=6)
        ax.set_yticks(range(len(names_a)), [_short(n) for n in names_a], fontsize=6)
        ax.set_xlabel(f"{label_b} layer")
        ax.set_ylabel(f"{label_a} layer")
        if title:
            ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return fig, ax, im


def plot_per_layer(curves: Mapping[str, Sequence[float]], *, names: Sequence[str] | None = None,
                   ylabel: str = "similarity", title: str = "", markers: Sequence[float] = (), ax=None):
    """One line per entry of ``curves`` (label -> values per layer); ``markers`` draws dashed vertical lines
    (e.g. SG insertion points, in layer-index units). Returns ``(fig, ax)``."""
    with style():
        fig, ax = get_ax(ax)
        n = 0
        for label, values in curves.items():
            v = np.asarray(values, dtype=float)
            n = max(n, v.size)
            ax.plot(np.arange(v.size), v, marker="o", markersize=3, label=label)
        for x in markers:
            ax.axvline(x, color="0.5", linestyle="--", linewidth=0.8)
        if names is not None:
            ax.set_xticks(range(len(names)), [_short(s) for s in names], rotation=90, fontsize=6)
        ax.set_xlabel("layer")
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        if curves:
            ax.legend()
    return fig, ax


def plot_rdm_panels(rdms: Sequence[np.ndarray], titles: Sequence[str], *, labels=None, ncols: int = 5,
                    row_title: str = "", vmax: float | None = 2.0, fig=None):
    """A grid of RDM images, one per layer, on one colour scale ``[0, vmax]``.

    ``vmax=2`` suits ``1 − Pearson`` RDMs (values in [0, 2]); ``None`` uses the largest entry of all panels.
    ``labels`` (n,), sorted, draws class-block boundaries. Returns ``(fig, axes)``.
    """
    import matplotlib.pyplot as plt

    k = len(rdms)
    if vmax is None:
        vmax = max(float(np.max(r)) for r in rdms) or 1.0
    ncols = max(1, min(ncols, k))
    nrows = int(np.ceil(k / ncols))
    with style():
        if fig is None:
            fig = plt.figure(figsize=(1.6 * ncols, 1.6 * nrows + (0.3 if row_title else 0)))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i >= k:
                continue
            ax.imshow(np.asarray(rdms[i]), vmin=0.0, vmax=vmax, cmap="viridis", interpolation="nearest")
            ax.set_title(_short(titles[i]), fontsize=7)
            if labels is not None:
                for b in np.flatnonzero(np.diff(np.asarray(labels))) + 0.5:
                    ax.axhline(b, color="w", linewidth=0.3)
                    ax.axvline(b, color="w", linewidth=0.3)
        if row_title:
            fig.suptitle(row_title, fontsize=9)
            fig.subplots_adjust(top=0.72, bottom=0.02, wspace=0.1)
    return fig, axes


def _short(name: str, n: int = 14) -> str:
    name = str(name)
    return name if len(name) <= n else "…" + name[-(n - 1):]
