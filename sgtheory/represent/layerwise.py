"""Layer-by-layer comparison of two models' representations, and class-block structure of RDMs.

:func:`compare_layers` runs the similarity measures of :mod:`sgtheory.represent` on every pair of
layers of two :class:`~sgtheory.represent.activations.LayerActivations` (same samples), plus held-out
linear-probe accuracy per layer. :func:`label_ordered_sample` and :func:`diagonal_block_distance` are
the ingredients of the RDM analysis of Czarnecki et al. (2017, arXiv 1703.00522, Fig. 7 / claim C9):
RDMs of a label-ordered sample, and how far each layer's within-class blocks are from the last layer's.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sgtheory.errors import InputError
from sgtheory.represent.activations import LayerActivations
from sgtheory.validate import seed as _seed

#: Short measure names (as on the command line) -> names of :func:`sgtheory.represent.similarity_matrix`.
#: ``rdm`` compares the layers' RDMs (1 − Pearson) by Spearman correlation of their upper triangles.
PAIR_MEASURES = {"cka": "linear_cka", "svcca": "svcca", "pwcca": "pwcca", "cca": "cca", "rdm": "rsa"}
MEASURES = tuple(PAIR_MEASURES) + ("probe",)


@dataclass(frozen=True)
class LayerComparison:
    """Result of :func:`compare_layers`.

    Attributes:
      names_a, names_b: layer names of the two models.
      matrices: short measure name -> ``(len(names_a), len(names_b))`` matrix (row i: layer i of A).
      matching: the ``(i, j)`` layer pairs compared in per-layer curves (see :func:`matching_layers`).
      probe_a, probe_b: ``(n_layers,)`` held-out linear-probe accuracies, or ``None``.
      n_samples: samples compared.
    """

    names_a: tuple[str, ...]
    names_b: tuple[str, ...]
    matrices: dict[str, np.ndarray]
    matching: tuple[tuple[int, int], ...]
    probe_a: np.ndarray | None
    probe_b: np.ndarray | None
    n_samples: int

    def matching_values(self, measure: str) -> np.ndarray:
        """``matrices[measure][i, j]`` over the :attr:`matching` pairs, as an array."""
        m = self.matrices[measure]
        return np.array([m[i, j] for i, j in self.matching])


def matching_layers(n_a: int, n_b: int) -> tuple[tuple[int, int], ...]:
    """Pairs of layers ``(i, j)`` compared in per-layer curves.

    Args:
      n_a, n_b: the two models' layer counts.

    Returns:
      ``i ↔ i`` when both have ``n`` layers, else each layer ``i`` of A with the layer of B at the same
      relative depth, ``j = round(i (n_b − 1) / (n_a − 1))``.
    """
    if n_a == n_b:
        return tuple((i, i) for i in range(n_a))
    if n_a == 1:
        return ((0, n_b - 1),)
    return tuple((i, int(round(i * (n_b - 1) / (n_a - 1)))) for i in range(n_a))


def parse_measures(text: str | Sequence[str]) -> tuple[str, ...]:
    """Validate measure names.

    Args:
      text: a comma-separated list (or a sequence) of names from :data:`MEASURES`.

    Returns:
      The names, in order, each once.
    """
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not items:
        raise InputError("measures: empty list")
    bad = [s for s in items if s not in MEASURES]
    if bad:
        raise InputError(f"measures: unknown {', '.join(bad)}; choose from {', '.join(MEASURES)}")
    return tuple(dict.fromkeys(items))


def compare_layers(a: LayerActivations, b: LayerActivations, measures: Sequence[str] = ("cka", "svcca"), *,
                   labels=None, probe_test_fraction: float = 0.5, seed: int = 0,
                   options: dict[str, dict] | None = None) -> LayerComparison:
    """All layer pairs of ``a`` and ``b`` under each measure.

    Args:
      a, b: the two models' layers, the same samples in the same order.
      measures: names in :data:`MEASURES`.
      labels: ``(n,)`` class labels for ``"probe"`` (default: ``a.labels``, else ``b.labels``): a
        logistic-regression probe per layer, trained on a stratified ``1 − probe_test_fraction`` share of
        the samples and scored on the rest (split by ``seed``).
      probe_test_fraction: the probes' held-out share, in (0, 1).
      seed: the probes' split.
      options: per short measure name, keyword options for :func:`sgtheory.represent.similarity_matrix`
        (e.g. ``{"rdm": {"metric": "euclidean"}, "svcca": {"variance": 0.98}}``).

    Returns:
      A :class:`LayerComparison`.
    """
    from sgtheory.represent import similarity_matrix

    measures = parse_measures(measures)
    seed = _seed(seed, "seed")
    if a.n_samples != b.n_samples:
        raise InputError(f"{a.source} has {a.n_samples} samples but {b.source} has {b.n_samples}; "
                         "both must hold the same samples")
    options = options or {}
    unknown = sorted(set(options) - set(PAIR_MEASURES))
    if unknown:
        raise InputError(f"options: for unknown measure(s) {', '.join(unknown)}")
    matrices = {m: similarity_matrix(list(a.arrays), list(b.arrays), PAIR_MEASURES[m], **options.get(m, {}))
                for m in measures if m in PAIR_MEASURES}
    probe_a = probe_b = None
    if "probe" in measures:
        y = labels if labels is not None else (a.labels if a.labels is not None else b.labels)
        if y is None:
            raise InputError("measure 'probe' needs class labels (a 'labels' array in the activation file, "
                             "--labels FILE, or --dataset)")
        probe_a = probe_accuracy(a, y, test_fraction=probe_test_fraction, seed=seed)
        probe_b = probe_accuracy(b, y, test_fraction=probe_test_fraction, seed=seed)
    return LayerComparison(a.names, b.names, matrices, matching_layers(len(a), len(b)), probe_a, probe_b,
                           a.n_samples)


def probe_accuracy(acts: LayerActivations, labels, *, test_fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """Held-out accuracy of a linear probe on each layer, one stratified split for all layers.

    Args:
      acts: the layers.
      labels: ``(n,)`` class labels.
      test_fraction: the held-out share, in (0, 1).
      seed: the split.

    Returns:
      ``(n_layers,)`` accuracies in [0, 1].
    """
    from sgtheory.data import stratified_split
    from sgtheory.represent import linear_probe

    seed = _seed(seed, "seed")
    y = np.asarray(labels)
    if y.shape != (acts.n_samples,):
        raise InputError(f"labels: shape {y.shape}, expected ({acts.n_samples},)")
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"probe test fraction: must be in (0, 1), got {test_fraction}")
    train, test = stratified_split(y, test_fraction, seed=seed)
    if train.size < 2 or test.size < 1:
        raise InputError(f"labels: {acts.n_samples} samples are too few for a held-out probe")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(converge|max_iter).*")
        return np.array([linear_probe(x[train], y[train], x[test], y[test], seed=seed) for x in acts.arrays])


def label_ordered_sample(labels, n: int, *, seed: int = 0) -> np.ndarray:
    """A class-balanced sample, sorted by label (then by index): the rows of an RDM with class blocks.

    Args:
      labels: ``(N,)`` class labels.
      n: how many samples; each of the ``C`` classes gets ``n // C`` random members (the first ``n % C``
        classes one more), capped by its size.
      seed: which members.

    Returns:
      The samples' indices into ``labels``.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise InputError(f"labels: expected a non-empty 1-D array, got shape {y.shape}")
    if int(n) != n or n < 1:
        raise InputError(f"n: expected a positive integer, got {n!r}")
    rng = np.random.default_rng(_seed(seed, "seed"))
    classes = np.unique(y)
    per = [n // classes.size + (1 if i < n % classes.size else 0) for i in range(classes.size)]
    picks = [np.sort(rng.permutation(np.flatnonzero(y == c))[:k]) for c, k in zip(classes, per)]
    return np.concatenate(picks)


def diagonal_block_distance(rdms: Sequence[np.ndarray], labels, *, reference: int = -1) -> np.ndarray:
    """Distance of each RDM's within-class blocks to those of the ``reference`` RDM.

    For an RDM ``R`` ``(n, n)`` and labels ``(n,)``, let ``v(R)`` collect the entries ``R[i, j]``, ``i < j``,
    with ``labels[i] == labels[j]`` (the upper triangles of the diagonal class blocks).

    Args:
      rdms: ``(n, n)`` RDMs over the same samples.
      labels: ``(n,)`` class labels of the samples.
      reference: which RDM the others are compared with (default: the last).

    Returns:
      Per RDM, the root-mean-square difference ``‖v(R_l) − v(R_ref)‖₂ / sqrt(len(v))`` (the L2 distance of
      Czarnecki et al.'s Fig. 7, divided by the square root of the entry count so it does not grow with the
      sample size).
    """
    y = np.asarray(labels)
    rows, cols = np.triu_indices(y.size, k=1)
    same = y[rows] == y[cols]
    if not same.any():
        raise InputError("labels: no two samples share a class, so there are no diagonal blocks")
    rows, cols = rows[same], cols[same]
    vs = []
    for i, r in enumerate(rdms):
        r = np.asarray(r, dtype=np.float64)
        if r.shape != (y.size, y.size):
            raise InputError(f"rdms[{i}]: shape {r.shape}, expected ({y.size}, {y.size}) for {y.size} labels")
        vs.append(r[rows, cols])
    ref = vs[reference]
    return np.array([np.sqrt(np.mean((v - ref) ** 2)) for v in vs])
