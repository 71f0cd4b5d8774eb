"""Layer × layer similarity matrices with per-layer work done once."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from sgtheory.errors import InputError
from sgtheory.progress import progress as _progress
from sgtheory.represent._device import DEVICE_MEASURES, accelerator_present, device_matrix
from sgtheory.represent._registry import Measure, as_float, lookup, reemit
from sgtheory.represent._validate import same_samples, view
from sgtheory.validate import choice

__all__ = ["similarity_matrix"]


def similarity_matrix(layers_a, layers_b=None, measure="linear_cka", *, backend: str = "auto",
                      show_progress: bool | None = False, **options) -> np.ndarray:
    """``S[i, j] = measure(layers_a[i], layers_b[j])`` for all pairs of layers.

    For the named measures except ``minibatch_cka``, each layer is prepared once — centred, its thin
    SVD or whitened basis, its Gram matrix and self-normalisation — and each pair then costs one
    cross product (``n d_i d_j``) plus a small SVD, instead of a full computation; values equal the
    per-pair functions' exactly (same code path). For ``"rbf_cka"`` all prepared ``(n, n)`` Gram
    matrices are held in memory (``8 n² (N + M)`` bytes). With ``layers_b=None`` and a symmetric
    measure only ``i ≤ j`` is computed. Warnings repeated over pairs are issued once, with a count.

    Args:
      layers_a: a sequence (or mapping, in its order) of ``N`` arrays ``(n_samples, d_k)`` over the same samples.
      layers_b: ``M`` such arrays, or ``None`` to compare ``layers_a`` with itself.
      measure: ``"linear_cka"``, ``"rbf_cka"``, ``"cca"`` (mean canonical correlation), ``"svcca"``,
        ``"pwcca"``, ``"rsa"``, ``"minibatch_cka"``, or any callable ``f(X, Y, **options)`` returning a
        float (or an object with ``.value``).
      backend: ``"numpy"``; ``"jax"`` runs the pair step of ``linear_cka``, ``cca`` and ``svcca`` on JAX's
        default device in float64 (per-layer work stays in numpy; equal to the numpy path up to round-off);
        ``"auto"`` (default) picks ``"jax"`` for those measures when JAX has a GPU/TPU.
      show_progress: a progress bar over the pairs.
      **options: passed to the measure (e.g. ``debiased=True``, ``variance=0.95``).

    Returns:
      The ``(N, M)`` float64 matrix.
    """
    a = _layers(layers_a, "layers_a")
    b = a if layers_b is None else _layers(layers_b, "layers_b")
    same_samples(a + (b if layers_b is not None else []), "layers")
    m = lookup(measure)
    out = np.empty((len(a), len(b)))
    pairs = [(i, j) for i in range(len(a)) for j in range(len(b))]
    symmetric = layers_b is None and isinstance(m, Measure) and m.symmetric
    if symmetric:
        pairs = [(i, j) for i, j in pairs if i <= j]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if isinstance(m, Measure):
            opts = m.options(options, measure)
            prep_a = [_prepare(m, opts, x, f"layers_a[{i}]") for i, x in enumerate(a)]
            prep_b = prep_a if layers_b is None else [_prepare(m, opts, x, f"layers_b[{j}]") for j, x in enumerate(b)]
            pair = lambda i, j: m.pair(prep_a[i], prep_b[j], **opts)
        else:
            pair = lambda i, j: as_float(m(a[i], b[j], **options))
        if _use_device(backend, measure):
            out, symmetric = device_matrix(measure, prep_a, prep_b, opts), False
        else:
            with _progress(total=len(pairs), desc="similarity", enabled=show_progress) as bar:
                for i, j in pairs:
                    out[i, j] = pair(i, j)
                    bar.update()
    if symmetric:
        upper = np.triu_indices(len(a), k=1)
        out[upper[1], upper[0]] = out[upper]
    reemit(caught, "similarity_matrix")
    return out


def _use_device(backend: str, measure) -> bool:
    choice(backend, "backend", ("auto", "numpy", "jax"))
    supported = isinstance(measure, str) and measure in DEVICE_MEASURES
    if backend == "jax" and not supported:
        raise InputError(f"backend 'jax': supports the measures {', '.join(DEVICE_MEASURES)}, not {measure!r}")
    if backend == "jax":
        return True
    return backend == "auto" and supported and accelerator_present()


def _prepare(m: Measure, opts: dict, x, name: str):
    view_x = view(x, name, min_samples=m.min_for(opts), drop_constant=m.drop_constant, rescale=True)  # all scale-free
    return m.prepare(view_x, name, **opts)


def _layers(layers, name: str) -> list:
    if isinstance(layers, Mapping):
        layers = list(layers.values())
    elif isinstance(layers, np.ndarray) and layers.ndim == 2:
        raise InputError(f"{name}: expected a sequence of layer arrays, got one 2-D array (wrap it in a list)")
    elif not isinstance(layers, (Sequence, np.ndarray)):
        raise InputError(f"{name}: expected a sequence of (n_samples, n_features) arrays, got {type(layers).__name__}")
    layers = list(layers)
    if not layers:
        raise InputError(f"{name}: no layers given")
    return layers
