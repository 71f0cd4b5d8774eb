"""Synthetic-gradient modules: one vocabulary for :mod:`sgtheory.linear` and :mod:`sgtheory.nets`.

An SG module reads a layer's activation ``h`` (m, w) — and, when *conditioned*, the one-hot label or target
``y`` (m, k) — and predicts ``∂L/∂h`` (m, w). Two kinds (Jaderberg et al. 2017, arXiv 1608.05343;
Czarnecki et al. 2017, arXiv 1703.00522), keys in the papers' notation:

- ``linear``: ``SG(h, y) = h A + y B + u C`` — ``A`` (w, w), ``B`` (k, w) only when conditioned, ``C`` (w,);
- ``mlp``: ``[h, y]`` → ``n_hidden`` ReLU layers of ``hidden`` units → w outputs,
  ``{"layers": [{"W", "b"}, ...]}`` (DNI's feed-forward modules: two hidden layers of 1024 units).

``u`` (m,) is the weight of the constant column: 1 for samples (the default), other values for the
square-root moment rows of :mod:`sgtheory.linear.problems`; every bias enters as ``u·b``.
The output layer starts at zero, so every module first outputs SG = 0 (Jaderberg et al. 2017).

The regression loss is ``L_SG = ½ Σ_r ω_r ‖SG(h_r, y_r) − t_r‖²`` with row weights ω (default 1/m: half the
mean squared error), so ``∂L_SG/∂SG_r = ω_r (SG_r − t_r)``. DNI writes the loss without the ½; the factor
only rescales the SG's learning rate under plain SGD and has no effect under Adam.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory.validate import choice, int_in_range

SG_KINDS = ("linear", "mlp")


def init_mlp_zero_last(key, sizes, dtype=jnp.float32) -> dict:
    """An MLP whose last layer starts at zero (its output is 0 until it learns): hidden weights He-normal.

    The shape every learned module of the project starts from — SG modules, recurrent SG modules, input
    models: a zero output leaves the net it serves untouched at the start.

    Args:
        key: PRNG key.
        sizes: layer widths ``[n_in, h_1, ..., n_out]`` (at least two).
        dtype: parameter dtype.

    Returns:
        ``{"layers": [{"W", "b"}, ...]}``, weights N(0, 2/fan_in) except the last layer's (zero); biases zero.
    """
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        w = jnp.zeros((a, b), dtype) if last else jax.random.normal(k, (a, b), dtype) * jnp.sqrt(2.0 / a).astype(dtype)
        layers.append({"W": w, "b": jnp.zeros((b,), dtype)})
    return {"layers": layers}


def init_sg(kind: str, width: int, n_classes: int, *, conditioned: bool, key, hidden: int = 1024,
            n_hidden: int = 2, dtype=jnp.float32) -> dict:
    """Parameters of one SG module for an activation of ``width`` units, output layer zero.

    Args:
        kind: ``"linear"`` or ``"mlp"``.
        width: units of the activation the module reads and predicts for.
        n_classes: width k of the conditioning input ``y``.
        conditioned: whether the module reads ``y`` (cDNI).
        key: PRNG key (MLP hidden layers: He-normal weights, N(0, 2/fan_in)).
        hidden, n_hidden: MLP hidden units and hidden layers.
        dtype: parameter dtype.

    Returns:
        ``{"A", "C"}`` (+ ``"B"`` if conditioned) for ``linear``; ``{"layers": [{"W", "b"}, ...]}`` for ``mlp``.
    """
    choice(kind, "sg module", SG_KINDS)
    if kind == "linear":
        p = {"A": jnp.zeros((width, width), dtype), "C": jnp.zeros((width,), dtype)}
        if conditioned:
            p["B"] = jnp.zeros((n_classes, width), dtype)
        return p
    int_in_range(hidden, "sg hidden units", 1)
    int_in_range(n_hidden, "sg hidden layers", 1)
    sizes = [width + (n_classes if conditioned else 0)] + [hidden] * n_hidden + [width]
    return init_mlp_zero_last(key, sizes, dtype)


def apply_sg(params: dict, h, y, u=None, *, precision=None):
    """The synthetic gradient for ``h`` (m, w); an unconditioned module ignores ``y``.

    Args:
        params: from :func:`init_sg`.
        h: activations (m, w).
        y: conditioning input (m, k), e.g. one-hot labels.
        u: weights (m,) of the constant column (default: ones).
        precision: matrix-product precision (``"highest"`` in the linear laboratory).

    Returns:
        SG (m, w).
    """
    mm = lambda a, b: jnp.matmul(a, b, precision=precision)
    bias = (lambda b: b[None, :]) if u is None else (lambda b: u[:, None] * b[None, :])
    if "A" in params:
        out = mm(h, params["A"]) + bias(params["C"])
        return out + mm(y, params["B"]) if "B" in params else out
    layers = params["layers"]
    z = jnp.concatenate([h, y], axis=1) if layers[0]["W"].shape[0] > h.shape[1] else h
    for layer in layers[:-1]:
        z = jax.nn.relu(mm(z, layer["W"]) + bias(layer["b"]))
    return mm(z, layers[-1]["W"]) + bias(layers[-1]["b"])


def sg_loss(params: dict, h, y, target, *, u=None, weight=None, precision=None):
    """The regression loss ``½ Σ_r ω_r ‖SG(h_r, y_r) − t_r‖²`` and the SG output (for ``has_aux``).

    Args:
        params, h, y, u, precision: as for :func:`apply_sg`.
        target: the regression target t (m, w) (treated as data: stop gradients before calling).
        weight: row weight ω, a scalar or (m,) (default 1/m).

    Returns:
        ``(loss, sg)``: the scalar loss and the output (m, w).
    """
    out = apply_sg(params, h, y, u, precision=precision)
    r = jnp.sum((out - target) ** 2, axis=1)
    w = 1.0 / h.shape[0] if weight is None else weight
    return 0.5 * jnp.sum(w * r), out


__all__ = ["SG_KINDS", "init_mlp_zero_last", "init_sg", "apply_sg", "sg_loss"]
