"""Progress bars for long work (tqdm), off when not on a terminal unless asked for."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress(total: int | None = None, *, desc: str = "", enabled: bool | None = None, unit: str = "it"):
    """A tqdm bar on stderr. ``enabled=None`` shows it only when stderr is a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, disable=not enabled, unit=unit, file=sys.stderr, leave=False)
