"""Named scalar measures, split into per-view preparation and a per-pair step.

``prepare(x, name, **options)`` does everything that depends on one view only (centring, SVD,
Gram matrices, self-normalisation) and ``pair(px, py, **options)`` finishes the value. The public
per-pair functions call the same two steps, so :func:`similarity_matrix` reuses per-layer work and
still returns exactly the per-pair values. Prepared views with a ``take(rows)`` method can be
permuted without recomputation (used by the permutation test).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgtheory.errors import InputError
from sgtheory.represent import canonical as _cca
from sgtheory.represent import cka as _cka
from sgtheory.represent import rdms as _rsa
from sgtheory.represent._validate import fraction, paired
from sgtheory.validate import choice, positive


@dataclass(frozen=True)
class Measure:
    """A named measure: per-view ``prepare``, per-pair ``pair``, its options with defaults, input needs."""

    prepare: Callable[..., Any]
    pair: Callable[..., float]
    defaults: dict = field(default_factory=dict)
    min_samples: int = 2
    symmetric: bool = True
    drop_constant: bool = True

    def options(self, given: dict, name: str) -> dict:
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            allowed = ", ".join(self.defaults) or "none"
            raise InputError(f"measure {name!r}: unknown option(s) {', '.join(unknown)} (allowed: {allowed})")
        return {**self.defaults, **given}

    def min_for(self, opts: dict) -> int:
        return 4 if opts.get("debiased") else self.min_samples


def _cca_prepare(x, name, regularization):
    return _cca._cca_basis(x, name, _cca._regularization(regularization))


def _cca_pair(bx, by, regularization):
    return float(_cca._correlations(bx, by, "cca", float(regularization)).mean())


def _svcca_prepare(x, name, variance, n_components):
    if n_components is not None and (int(n_components) != n_components or n_components < 1):
        raise InputError(f"n_components: expected a positive integer, got {n_components!r}")
    return _cca._svcca_basis(x, name, fraction(variance, "variance"), n_components)


def _svcca_pair(bx, by, variance, n_components):
    return float(_cca._correlations(bx, by, "svcca", 0.0).mean())


def _rsa_prepare(x, name, metric, method):
    return _rsa._Triangle.of_view(x, name, metric, choice(method, "method", _rsa.METHODS))


MEASURES: dict[str, Measure] = {
    "linear_cka": Measure(
        prepare=lambda x, name, debiased: _cka._Linear.of(x, name, bool(debiased)),
        pair=lambda a, b, debiased: _cka._linear_pair(a, b),
        defaults={"debiased": False},
    ),
    "rbf_cka": Measure(
        prepare=lambda x, name, sigma_frac, debiased: _cka._Gram.rbf(
            x, name, positive(sigma_frac, "sigma_frac"), bool(debiased)),
        pair=lambda a, b, sigma_frac, debiased: _cka._gram_pair(a, b),
        defaults={"sigma_frac": 1.0, "debiased": False},
    ),
    "cca": Measure(prepare=_cca_prepare, pair=_cca_pair, defaults={"regularization": 0.0}, min_samples=3),
    "svcca": Measure(prepare=_svcca_prepare, pair=_svcca_pair,
                     defaults={"variance": 0.99, "n_components": None}, min_samples=3),
    "pwcca": Measure(prepare=lambda x, name: _cca._PWView.of(x, name), pair=lambda a, b: _cca._pwcca_pair(a, b),
                     min_samples=3, symmetric=False),
    "rsa": Measure(prepare=_rsa_prepare, pair=lambda a, b, metric, method: _rsa._compare_pair(a, b),
                   defaults={"metric": "correlation", "method": "spearman"}, min_samples=3, drop_constant=False),
}

#: Named measures without a per-view split: computed by calling the function on each pair.
FUNCTIONS: dict[str, Callable[..., float]] = {"minibatch_cka": _cka.minibatch_cka}

NAMES = tuple(MEASURES) + tuple(FUNCTIONS)


def lookup(measure) -> Measure | Callable:
    """A :class:`Measure` for a registered name, or the callable itself."""
    if callable(measure):
        return measure
    if isinstance(measure, str):
        choice(measure, "measure", NAMES)
        return MEASURES.get(measure) or FUNCTIONS[measure]
    raise InputError(f"measure: expected a name ({', '.join(NAMES)}) or a callable, got {type(measure).__name__}")


def scalar_function(measure, options: dict) -> Callable[[Any, Any], float]:
    """``f(X, Y) -> float`` for a name or a callable (a result's ``.value`` is taken)."""
    m = lookup(measure)
    if isinstance(m, Measure):
        opts = m.options(options, measure)

        def f(X, Y):
            x, y = paired(X, Y, min_samples=m.min_for(opts), drop_constant=m.drop_constant, rescale=True)
            return m.pair(m.prepare(x, "X", **opts), m.prepare(y, "Y", **opts), **opts)

        return f

    def g(X, Y):
        return as_float(m(X, Y, **options))

    return g


def as_float(value) -> float:
    v = getattr(value, "value", value)
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise InputError(f"measure returned {type(value).__name__}, not a number (or an object with .value)") from None
    if not np.isfinite(v):
        raise InputError(f"measure returned a non-finite value ({v})")
    return v


def reemit(caught: list, what: str) -> None:
    """Re-issue recorded warnings once per category, with a count of the repeats."""
    first: dict[type, warnings.WarningMessage] = {}
    counts: dict[type, int] = {}
    for w in caught:
        first.setdefault(w.category, w)
        counts[w.category] = counts.get(w.category, 0) + 1
    for cat, w in first.items():
        extra = f" (and {counts[cat] - 1} similar warning(s) in {what})" if counts[cat] > 1 else ""
        warnings.warn(f"{w.message}{extra}", cat, stacklevel=3)
