"""Small input checks shared by the library and the command line.

Each raises :class:`sgtheory.InputError` with one line naming the bad input.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence

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


SEED_LIMIT = 2**32


def seed(value, name: str = "--seed") -> int:
    """A random seed: an integer with 0 <= seed < 2**32 (what numpy's and JAX's generators all accept).

    Args:
        value: the seed (an int, an integral float or numpy integer, or its decimal text).
        name: the option or argument name used in the message.

    Returns:
        The seed as a Python int.

    Raises:
        InputError: for a non-integer, negative or too large seed.
    """
    if isinstance(value, bool):
        raise InputError(f"{name}: expected an integer seed, got {value!r}")
    try:
        v = int(value.strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name}: expected an integer seed, got {value!r}") from None
    if not isinstance(value, str) and v != value:
        raise InputError(f"{name}: expected an integer seed, got {value!r}")
    if not 0 <= v < SEED_LIMIT:
        raise InputError(f"{name}: a seed must be an integer in 0..{SEED_LIMIT - 1}, got {v}")
    return v


def seeds(values, name: str = "seeds") -> list[int]:
    """A non-empty list of random seeds, each checked by :func:`seed`.

    Args:
        values: one seed or a sequence of seeds.
        name: the option or argument name used in the messages.

    Returns:
        The seeds as a list of Python ints, in the given order.

    Raises:
        InputError: for an empty sequence or any bad seed.
    """
    if isinstance(values, np.ndarray):
        items = values.ravel().tolist()
    else:
        items = list(values) if isinstance(values, (list, tuple, range)) else [values]
    if not items:
        raise InputError(f"{name}: expected at least one seed, got an empty list")
    return [seed(v, name) for v in items]


def generator(value, name: str = "seed") -> np.random.Generator:
    """A numpy random generator: ``value`` itself if it is one, else one seeded by :func:`seed`.

    Args:
        value: a ``np.random.Generator`` or a seed.
        name: the argument name used in the message.

    Returns:
        A ``np.random.Generator``.

    Raises:
        InputError: for a bad seed.
    """
    if isinstance(value, np.random.Generator):
        return value
    return np.random.default_rng(seed(value, name))


def fits_in_memory(n_bytes: float, what: str, *, fraction: float = 0.8) -> float:
    """Check that an allocation of ``n_bytes`` fits in ``fraction`` of this machine's physical memory.

    Call it at the edge, before a size from the user (a width, a grid, a sample count) reaches an
    allocator that would abort or swap instead of raising.

    Args:
        n_bytes: the estimated size of the largest allocation (or of all of them together).
        what: names the input in the message, e.g. ``"--width 1000000 (weights of 4096 runs)"``.
        fraction: the share of physical memory allowed.

    Returns:
        ``n_bytes`` as a float.

    Raises:
        InputError: ``"too large: ..."`` when it does not fit (unknown memory size: never).
    """
    need = float(n_bytes)
    if not math.isfinite(need) or need < 0:
        raise InputError(f"{what}: size estimate {n_bytes!r} is not a finite number of bytes")
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return need
    if total > 0 and need > fraction * total:
        raise InputError(f"{what}: too large: needs about {need / 2**30:.3g} GiB, more than "
                         f"{fraction:.0%} of this machine's {total / 2**30:.3g} GiB of memory")
    return need
