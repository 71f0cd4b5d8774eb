"""Plotting: the package style and shared helpers.

Plot functions across sgtheory take ``ax=None``, return the figure/axes, never call ``plt.show()``,
and draw inside :func:`style` so they look the same everywhere.

Importing this package leaves matplotlib's backend alone. Figures that sgtheory creates itself (when no
``ax`` is given) are :class:`matplotlib.figure.Figure` objects outside pyplot, drawn by the
non-interactive Agg canvas: save them with ``fig.savefig``, or show one in Jupyter by evaluating ``fig``.
To draw into a pyplot window (or any figure of your own), pass ``ax=`` from ``plt.subplots()``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

STYLE_FILE = Path(__file__).with_name("sgtheory.mplstyle")

# keyword arguments of Figure.subplots; the others go to the Figure itself (figsize, dpi, layout, ...)
_SUBPLOTS_KEYS = ("nrows", "ncols", "sharex", "sharey", "squeeze", "width_ratios", "height_ratios", "subplot_kw",
                  "gridspec_kw")


def style():
    """Context manager applying the sgtheory matplotlib style.

    Returns:
      A context manager (``with style(): ...``) that sets the style's rcParams inside the block.
    """
    import matplotlib.style

    return matplotlib.style.context(str(STYLE_FILE))


def new_figure(**figure_kw):
    """A styled figure outside pyplot, with an Agg canvas (does not touch the user's backend).

    Args:
      **figure_kw: keyword arguments of :class:`matplotlib.figure.Figure` (``figsize``, ``dpi``, ``layout``...).

    Returns:
      The :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with style():
        fig = Figure(**figure_kw)
    FigureCanvasAgg(fig)
    return fig


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """Like ``plt.subplots``, styled and outside pyplot (see :func:`new_figure`).

    Args:
      nrows, ncols: the grid of axes.
      **kwargs: ``Figure.subplots`` options (``squeeze``, ``sharex``, ``gridspec_kw``...) and ``Figure`` options
        (``figsize``, ``dpi``, ``layout``...).

    Returns:
      ``(fig, axes)`` as ``plt.subplots`` returns them.
    """
    grid = {k: kwargs.pop(k) for k in _SUBPLOTS_KEYS if k in kwargs}
    fig = new_figure(**kwargs)
    with style():
        axes = fig.subplots(nrows, ncols, **grid)
    return fig, axes


def get_ax(ax=None, **subplots_kw):
    """The given axes and its figure, or a new styled figure with one axes.

    Args:
      ax: a matplotlib axes to draw into, or ``None``.
      **subplots_kw: options of :func:`subplots` for a new figure (``figsize``...).

    Returns:
      ``(fig, ax)``.
    """
    if ax is not None:
        return ax.figure, ax
    return subplots(**subplots_kw)


@contextlib.contextmanager
def figure(*args, **kwargs):
    """A styled figure for scripts: ``with figure(1, 2, figsize=(8, 3)) as (fig, axes): ...``.

    Args:
      *args, **kwargs: as for :func:`subplots`.

    Returns:
      A context manager yielding ``(fig, axes)``; the figure lives outside pyplot, so nothing needs closing.
    """
    with style():
        yield subplots(*args, **kwargs)


__all__ = ["STYLE_FILE", "style", "new_figure", "subplots", "get_ax", "figure"]
