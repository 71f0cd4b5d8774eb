"""The pair step of :func:`similarity_matrix` on a JAX device (a GPU when present), in float64.

Per-layer preparation stays in numpy, identical to the per-pair functions (validation, centring,
bases, self terms). Only the part that grows with the number of pairs runs on the device, one layer
of ``layers_a`` at a time: ``X_i^T [Y_1 … Y_M]`` is one matrix product whose column blocks are the
pairs' cross products; CCA-type measures then take the singular values of all blocks in one batched
SVD. Results equal the numpy path up to round-off (float64 throughout, via ``jax.enable_x64``).
"""

from __future__ import annotations

import numpy as np

from sgtheory.represent import cka as _cka
from sgtheory.represent._validate import cca_sample_check, distinct_samples

DEVICE_MEASURES = ("linear_cka", "cca", "svcca")


def accelerator_present() -> bool:
    """Whether JAX's default backend is an accelerator (GPU/TPU); False when JAX is missing or fails."""
    try:
        import jax

        return jax.default_backend() != "cpu"
    except Exception:  # no jax, or no usable backend: the numpy path is always available
        return False


def device_matrix(measure: str, prep_a: list, prep_b: list, opts: dict) -> np.ndarray:
    """``(len(prep_a), len(prep_b))`` values of ``measure`` from prepared layers, pair step on the device."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        if measure == "linear_cka":
            return _linear_cka(prep_a, prep_b, jnp)
        return _canonical(measure, prep_a, prep_b, float(opts.get("regularization", 0.0)), jnp)


def _linear_cka(prep_a, prep_b, jnp) -> np.ndarray:
    starts = np.cumsum([0] + [p.xc.shape[1] for p in prep_b])[:-1]
    y_all = jnp.asarray(np.concatenate([p.xc for p in prep_b], axis=1))
    out = np.empty((len(prep_a), len(prep_b)))
    for i, p in enumerate(prep_a):
        cross = jnp.asarray(p.xc).T @ y_all  # (d_i, Σ d_j)
        fro2 = np.add.reduceat(np.asarray(jnp.sum(cross * cross, axis=0)), starts)  # ‖Y_j^T X_i‖²_F per block
        out[i] = [_cka._linear_pair(p, q, float(f)) for q, f in zip(prep_b, fro2)]
    return out


def _canonical(measure: str, prep_a, prep_b, reg: float, jnp) -> np.ndarray:
    n = prep_a[0].B.shape[0]
    widths = [q.B.shape[1] for q in prep_b]
    bounds = np.cumsum([0] + widths)
    y_all = jnp.asarray(np.concatenate([q.B for q in prep_b], axis=1))
    out = np.empty((len(prep_a), len(prep_b)))
    for i, p in enumerate(prep_a):
        r = p.B.shape[1]
        for q, w in zip(prep_b, widths):
            cca_sample_check(n, r, w, measure, regularization=reg, distinct=distinct_samples(p.groups, q.groups, n))
        cross = jnp.asarray(p.B).T @ y_all  # (r_i, Σ r_j)
        if len(set(widths)) == 1:  # equal widths: one batched SVD over the blocks
            blocks = cross.reshape(r, len(widths), widths[0]).transpose(1, 0, 2)
            rho = np.asarray(jnp.linalg.svd(blocks, compute_uv=False))
            out[i] = np.clip(rho, 0.0, 1.0).mean(axis=1)
        else:
            out[i] = [np.clip(np.asarray(jnp.linalg.svd(cross[:, a:b], compute_uv=False)), 0.0, 1.0).mean()
                      for a, b in zip(bounds[:-1], bounds[1:])]
    return out
