"""Plotting: the package style and shared helpers.

Plot functions across sgtheory take ``ax=None``, return the figure/axes, never call
``plt.show()``, and draw inside :func:`style` so they look the same everywhere.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402

STYLE_FILE = Path(__file__).with_name("sgtheory.mplstyle")


def style():
    """Context manager applying the sgtheory matplotlib style."""
    return plt.style.context(str(STYLE_FILE))


def get_ax(ax=None, **subplots_kw):
    """Return ``(fig, ax)``: the given axes and its figure, or a new styled figure."""
    if ax is not None:
        return ax.figure, ax
    with style():
        fig, ax = plt.subplots(**subplots_kw)
    return fig, ax


@contextlib.contextmanager
def figure(*args, **kwargs):
    """A styled ``plt.subplots`` figure that is closed after the block (for scripts)."""
    with style():
        fig, axes = plt.subplots(*args, **kwargs)
        try:
            yield fig, axes
        finally:
            plt.close(fig)


__all__ = ["STYLE_FILE", "style", "get_ax", "figure"]
