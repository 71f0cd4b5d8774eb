"""Plots for layer-wise representation probes: similarity heatmaps, per-layer curves, RDM panels.

Each function takes ``ax=None`` (or ``fig=None`` for multi-panel figures), draws in the package style and
returns the figure and axes; none calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from sgtheory.errors import InputError
from sgtheory.plotting import get_ax, new_figure, style


def plot_similarity(matrix, names_a: Sequence[str], names_b: Sequence[str], *, title: str = "",
                    label_a: str = "A", label_b: str = "B", vmin: float | None = 0.0, vmax: float | None = 1.0,
                    annotate: bool = True, fmt: str = ".2f", ax=None):
    """Heatmap of a layer×layer matrix, with its colour bar and (by default) the value in each cell.

    Args:
      matrix: ``(len(names_a), len(names_b))`` values; row ``i`` is layer ``names_a[i]`` (y axis).
      names_a, names_b: layer names (tick labels).
      title: axes title.
      label_a, label_b: what the two axes' layers belong to (axis labels ``"{label} layer"``).
      vmin, vmax: colour scale (``None``: the data's range).
      annotate: write each cell's value (``fmt``); skipped above 900 cells, where the text would not fit.
      fmt: format of the cell values.
      ax: axes to draw into; ``None`` makes a styled figure (see :mod:`sgtheory.plotting`).

    Returns:
      ``(fig, ax, image)``.
    """
    m = np.asarray(matrix, dtype=float)
    with style():
        fig, ax = get_ax(ax, figsize=(0.9 + 0.32 * len(names_b) + 1.2, 0.9 + 0.3 * len(names_a)))
        im = ax.imshow(m, origin="lower", vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.grid(False)
        ax.set_xticks(range(len(names_b)), [_short(n) for n in names_b], rotation=90, fontsize=6)
        ax.set_yticks(range(len(names_a)), [_short(n) for n in names_a], fontsize=6)
        ax.set_xlabel(f"{label_b} layer")
        ax.set_ylabel(f"{label_a} layer")
        if title:
            ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        if annotate and m.size <= 900:
            _annotate(ax, im, m, fmt)
    return fig, ax, im


def _annotate(ax, im, m: np.ndarray, fmt: str) -> None:
    """Each cell's value, in black on light cells and white on dark ones."""
    size = float(np.clip(9 - 0.25 * max(m.shape), 4, 7))
    for (i, j), v in np.ndenumerate(m):
        if not np.isfinite(v):
            text, light = "–", True
        else:
            r, g, b, _ = im.cmap(im.norm(v))
            text, light = format(v, fmt), 0.299 * r + 0.587 * g + 0.114 * b > 0.5
        ax.text(j, i, text, ha="center", va="center", fontsize=size, color="black" if light else "white")


def plot_per_layer(curves: Mapping[str, Sequence[float]], *, names: Sequence[str] | None = None,
                   ylabel: str = "similarity", title: str = "", markers: Sequence[float] = (), ax=None):
    """One line per entry of ``curves``, over the layers.

    Args:
      curves: label -> values per layer.
      names: x tick labels (layer names), or ``None`` for positions.
      ylabel, title: axis label and title.
      markers: x positions (layer-index units) of dashed vertical lines, e.g. SG insertion points.
      ax: axes to draw into; ``None`` makes a styled figure (see :mod:`sgtheory.plotting`).

    Returns:
      ``(fig, ax)``.
    """
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
                    row_title: str = "", vmax: float | None = 2.0, colorbar_label: str = "dissimilarity", fig=None):
    """A grid of RDM images, one per layer, on one colour scale ``[0, vmax]`` shown by a colour bar.

    Args:
      rdms: ``(n, n)`` dissimilarity matrices, one per panel.
      titles: panel titles (layer names).
      labels: ``(n,)`` sorted class labels of the samples: class-block boundaries are drawn; or ``None``.
      ncols: panels per row.
      row_title: a title over all panels.
      vmax: top of the colour scale (``2`` suits ``1 − Pearson`` RDMs, whose values lie in [0, 2]);
        ``None`` uses the largest entry of all panels.
      colorbar_label: the colour bar's label.
      fig: a figure (or subfigure) to draw into; ``None`` makes a styled one (see :mod:`sgtheory.plotting`).

    Returns:
      ``(fig, axes)``: ``axes`` a ``(rows, ncols)`` array.
    """
    k = len(rdms)
    if k == 0:
        raise InputError("plot_rdm_panels: no RDMs given")
    if vmax is None:
        vmax = max(float(np.max(r)) for r in rdms) or 1.0
    ncols = max(1, min(ncols, k))
    nrows = int(np.ceil(k / ncols))
    top = 0.72  # share of a given figure's height left to the panels under a title
    with style():
        if fig is None:
            title_lines = row_title.count("\n") + 1 if row_title else 0
            height = 1.6 * nrows + 0.2 * title_lines
            top = 1 - (0.2 * title_lines + 0.1) / height
            fig = new_figure(figsize=(1.6 * ncols + 0.6, height))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        image = None
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i >= k:
                continue
            image = ax.imshow(np.asarray(rdms[i]), vmin=0.0, vmax=vmax, cmap="viridis", interpolation="nearest")
            ax.set_title(_short(titles[i]), fontsize=7)
            if labels is not None:
                for b in np.flatnonzero(np.diff(np.asarray(labels))) + 0.5:
                    ax.axhline(b, color="w", linewidth=0.3)
                    ax.axvline(b, color="w", linewidth=0.3)
        if row_title:
            fig.suptitle(row_title, fontsize=9)
            fig.subplots_adjust(top=top, bottom=0.02, wspace=0.1)
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01, aspect=15)
        bar.set_label(colorbar_label, fontsize=7)
        bar.ax.tick_params(labelsize=6)
    return fig, axes


def _short(name: str, n: int = 14) -> str:
    name = str(name)
    return name if len(name) <= n else "…" + name[-(n - 1):]
