"""Small input checks shared by the library and the command line.

Each raises :class:`sgtheory.InputError` with one line naming the bad input.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from sgtheory.errors import InputError


def finite_array(x, name: str, *, ndim: int | None = None, min_rows: int = 1) -> np.ndarray:
    """Return ``x`` as an array after checking dimensionality, emptiness and finiteness."""
    a = np.asarray(x)
    if a.dtype == object:
        raise InputError(f"{name}: not a numeric array")
    if ndim is not None and a.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-D array, got shape {a.shape}")
    if a.size == 0 or (a.ndim >= 1 and a.shape[0] < min_rows):
        raise InputError(f"{name}: needs at least {min_rows} rows, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise InputError(f"{name}: not a numeric array (dtype {a.dtype})")
    if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating):
        if not np.all(np.isfinite(a)):
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise InputError(f"{name}: contains {bad} NaN/inf value(s)")
    return a


def positive(value: float, name: str) -> float:
    """A finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name}: must be a finite number > 0, got {value!r}")
    return v


def int_in_range(value: int, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer within [lo, hi] (either bound optional)."""
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected an integer, got {value!r}") from None
    if v != value and not isinstance(value, str):
        raise InputError(f"{name}: expected an integer, got {value!r}")
    if lo is not None and v < lo:
        raise InputError(f"{name}: must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise InputError(f"{name}: must be <= {hi}, got {v}")
    return v


def choice(value: str, name: str, options: Iterable[str]) -> str:
    """One of ``options``."""
    opts = list(options)
    if value not in opts:
        raise InputError(f"{name}: unknown value {value!r}; choose from {', '.join(opts)}")
    return value


def positive_list(text: str | Sequence[float], name: str) -> np.ndarray:
    """Parse a comma-separated list (or sequence) of finite positive numbers; non-empty."""
    if isinstance(text, str):
        parts = [p for p in text.split(",") if p.strip()]
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"{name}: expected comma-separated numbers, got {text!r}") from None
    else:
        vals = [float(v) for v in text]
    if not vals:
        raise InputError(f"{name}: empty list")
    for v in vals:
        if not math.isfinite(v) or v <= 0:
            raise InputError(f"{name}: values must be finite and > 0, got {v!r}")
    return np.asarray(vals, dtype=float)
