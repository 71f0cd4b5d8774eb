"""Uncertainty for any similarity measure: a permutation test and a bootstrap confidence interval."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from sgtheory.errors import InputError
from sgtheory.represent._registry import Measure, lookup, reemit, scalar_function
from sgtheory.represent._validate import fraction, paired
from sgtheory.validate import generator, int_in_range

__all__ = ["permutation_test", "bootstrap_ci", "PermutationResult", "BootstrapResult"]


@dataclass(frozen=True)
class PermutationResult:
    """``value``: the measure on the data; ``p_value``; ``null``: the measure on each permutation."""

    value: float
    p_value: float
    null: np.ndarray


@dataclass(frozen=True)
class BootstrapResult:
    """``value`` on the data and the percentile interval ``[low, high]`` at ``level``; ``samples``: the replicates."""

    value: float
    low: float
    high: float
    level: float
    samples: np.ndarray


def permutation_test(X, Y, measure="linear_cka", n_permutations: int = 1000, seed=0,
                     **options) -> PermutationResult:
    """One-sided permutation test of "``X`` and ``Y`` are unrelated" for any measure.

    The rows of ``Y`` are shuffled ``n_permutations`` times, breaking the pairing of samples while
    keeping each view's own structure. The p-value is ``(1 + #{null ≥ value}) / (1 + n_permutations)``
    (Phipson & Smyth 2010), so it is never 0 and is uniform on its grid under the null. Named measures
    prepare each view once and permute the prepared ``Y`` where that is exact (CKA, CCA, SVCCA, PWCCA).

    Args:
      X: ``(n, d_x)`` first view.
      Y: ``(n, d_y)`` second view, the same samples.
      measure: a name as in :func:`sgtheory.represent.similarity_matrix`, or a callable ``f(X, Y, **options)``.
      n_permutations: how many shuffles, ≥ 1.
      seed: an int or a ``np.random.Generator`` (``np.random.default_rng(seed)``).
      **options: passed to the measure.

    Returns:
      A :class:`PermutationResult`.
    """
    n_perm = int_in_range(n_permutations, "n_permutations", lo=1)
    rng = generator(seed, "seed")
    m = lookup(measure)
    if isinstance(m, Measure):
        opts = m.options(options, measure)
        x, y = paired(X, Y, min_samples=m.min_for(opts), drop_constant=m.drop_constant, rescale=True)
        px, py = m.prepare(x, "X", **opts), m.prepare(y, "Y", **opts)
        value = m.pair(px, py, **opts)
        if hasattr(py, "take"):
            shuffled = lambda rows: m.pair(px, py.take(rows), **opts)
        else:
            shuffled = lambda rows: m.pair(px, m.prepare(y[rows], "Y", **opts), **opts)
    else:
        f = scalar_function(measure, options)
        x, y = paired(X, Y, min_samples=1, drop_constant=False)  # shapes only; the measure checks the rest
        value = f(x, y)
        shuffled = lambda rows: f(x, y[rows])
    n = x.shape[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        null = np.empty(n_perm)
        for k in range(n_perm):
            try:
                null[k] = shuffled(rng.permutation(n))
            except InputError as exc:
                raise InputError(f"permutation {k + 1} of {n_perm}: {exc}") from None
    reemit(caught, "the permutations")
    # slack of 1e-12 (relative) so that a permutation reproducing the data's value counts as ≥ despite round-off
    p = (1 + np.count_nonzero(null >= value - 1e-12 * max(1.0, abs(value)))) / (1 + n_perm)
    return PermutationResult(float(value), float(p), null)


def bootstrap_ci(X, Y, measure="linear_cka", n_boot: int = 1000, level: float = 0.95, seed=0,
                 **options) -> BootstrapResult:
    """Percentile bootstrap interval of a measure over samples (Efron & Tibshirani 1993).

    Each replicate draws ``n`` rows with replacement (the same rows of ``X`` and ``Y``) and recomputes
    the measure; ``[low, high]`` are the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the
    replicates. A replicate holds about ``0.63 n`` distinct samples, and CCA-type measures count distinct
    samples: they warn about (or refuse, naming the replicate) replicates that the full data supports;
    use fewer features then.

    Args:
      X: ``(n, d_x)`` first view.
      Y: ``(n, d_y)`` second view, the same samples.
      measure: a name as in :func:`sgtheory.represent.similarity_matrix`, or a callable ``f(X, Y, **options)``.
      n_boot: replicates, ≥ 2.
      level: the interval's coverage, in (0, 1].
      seed: an int or a ``np.random.Generator``.
      **options: passed to the measure.

    Returns:
      A :class:`BootstrapResult`.
    """
    n_boot = int_in_range(n_boot, "n_boot", lo=2)
    level = fraction(level, "level")
    rng = generator(seed, "seed")
    f = scalar_function(measure, options)
    x, y = paired(X, Y, min_samples=1, drop_constant=False)
    value = f(x, y)
    n = x.shape[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = np.empty(n_boot)
        for b in range(n_boot):
            rows = rng.integers(0, n, size=n)
            try:
                samples[b] = f(x[rows], y[rows])
            except InputError as exc:  # e.g. too few distinct samples in a replicate for a CCA-type measure
                raise InputError(f"bootstrap replicate {b + 1} of {n_boot}: {exc}") from None
    reemit(caught, "the bootstrap replicates")
    low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return BootstrapResult(float(value), float(low), float(high), level, samples)
