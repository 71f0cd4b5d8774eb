"""Synthetic-gradient modules: small nets that predict ``∂ℓ/∂h`` from ``h`` (and the label).

Two kinds (Jaderberg et al. 2017, arXiv 1608.05343; Czarnecki et al. 2017, arXiv 1703.00522):

- ``linear``: ``SG(h, y) = h A + y B + c`` with ``A`` ``(width, width)``, ``B`` ``(C, width)``
  (only when conditioned on the one-hot label ``y``), ``c`` ``(width,)``;
- ``mlp``: ``[h, y]`` → ReLU layers of ``hidden`` units → ``width`` outputs (DNI's feed-forward
  modules have two hidden layers of 1024 units).

The final layer starts at zero, so every module first outputs ``SG = 0``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory.validate import choice, int_in_range

SG_MODULES = ("linear", "mlp")


def init_sg(kind: str, width: int, n_classes: int, *, conditioned: bool, key, hidden: int = 1024,
            n_hidden: int = 2, dtype=jnp.float32) -> dict:
    """Parameters of one SG module for a layer of ``width`` units (final layer zero).

    ``linear`` → ``{"A", "c"}`` (+ ``"B"`` if conditioned); ``mlp`` → ``{"layers": [{"W", "b"}, ...]}``.
    """
    choice(kind, "sg module", SG_MODULES)
    if kind == "linear":
        p = {"A": jnp.zeros((width, width), dtype), "c": jnp.zeros((width,), dtype)}
        if conditioned:
            p["B"] = jnp.zeros((n_classes, width), dtype)
        return p
    int_in_range(hidden, "sg hidden units", 1)
    sizes = [width + (n_classes if conditioned else 0)] + [hidden] * n_hidden + [width]
    keys = jax.random.split(key, len(sizes) - 1)
    layers = []
    for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        w = jnp.zeros((a, b), dtype) if last else jax.random.normal(k, (a, b), dtype) * jnp.sqrt(2.0 / a).astype(dtype)
        layers.append({"W": w, "b": jnp.zeros((b,), dtype)})
    return {"layers": layers}


def apply_sg(params: dict, h, y_onehot):
    """Synthetic gradient for ``h`` ``(n, width)`` given one-hot labels ``y_onehot`` ``(n, C)``; ``(n, width)``.

    Unconditioned modules ignore ``y_onehot``.
    """
    if "A" in params:
        out = h @ params["A"] + params["c"]
        return out + y_onehot @ params["B"] if "B" in params else out
    layers = params["layers"]
    z = jnp.concatenate([h, y_onehot], axis=1) if layers[0]["W"].shape[0] > h.shape[1] else h
    for layer in layers[:-1]:
        z = jax.nn.relu(z @ layer["W"] + layer["b"])
    return z @ layers[-1]["W"] + layers[-1]["b"]


def sg_loss(params: dict, h, y_onehot, target):
    """SG regression loss ``mean_n ‖SG(h_n, y_n) − target_n‖²`` and the SG output (aux)."""
    out = apply_sg(params, h, y_onehot)
    return jnp.mean(jnp.sum((out - target) ** 2, axis=1)), out
