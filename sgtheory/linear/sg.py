"""Synthetic-gradient modules: parameters, outputs and the exact line-search step.

An SG module at activation h (m, w) with labels y (m, k) predicts ∂L/∂h (m, w). Row vectors; ``u`` (m,)
is the constant-1 column (see :mod:`sgtheory.linear.problems`), so a constant term enters as u·C.

- ``"linear"``:      SG(h) = hA + uC                     A (w, w), C (w,)
- ``"cond-linear"``: SG(h, y) = hA + yB + uC             B (k, w)       (cDNI, Jaderberg et al. 2017)
- ``"mlp"``:         SG(h, y) = relu(hA1 + yB1 + u c1) W2 + u c2, hidden width ``hidden``

The output layer (A, B, C for the linear variants; W2, c2 for the MLP) starts at zero, so the first
synthetic gradients are zero (Jaderberg et al. 2017). The SG regresses onto its target t with the loss
L_SG = ½ Σ_rows ω ‖SG − t‖² (ω the row weight).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory.linear.precision import mm


def sg_init(variant: str, width: int, k: int, *, key, hidden: int = 16, dtype=jnp.float32) -> dict:
    """Parameters of one SG module at an activation of ``width`` units (outputs zero-initialised)."""
    zeros = lambda *s: jnp.zeros(s, dtype)  # noqa: E731
    if variant == "linear":
        return {"A": zeros(width, width), "C": zeros(width)}
    if variant == "cond-linear":
        return {"A": zeros(width, width), "B": zeros(k, width), "C": zeros(width)}
    if variant == "mlp":
        ka, kb = jax.random.split(key)
        return {
            "A1": jax.random.normal(ka, (width, hidden), dtype) / jnp.sqrt(width + k),
            "B1": jax.random.normal(kb, (k, hidden), dtype) / jnp.sqrt(width + k),
            "c1": zeros(hidden),
            "W2": zeros(hidden, width),
            "c2": zeros(width),
        }
    raise ValueError(f"unknown SG variant {variant!r}")


def sg_apply(params: dict, h, y, u):
    """SG output (m, w) for activations ``h`` (m, w), labels ``y`` (m, k), constant column ``u`` (m,)."""
    if "W2" in params:
        z = jax.nn.relu(mm(h, params["A1"]) + mm(y, params["B1"]) + u[:, None] * params["c1"])
        return mm(z, params["W2"]) + u[:, None] * params["c2"]
    out = mm(h, params["A"]) + u[:, None] * params["C"]
    if "B" in params:
        out = out + mm(y, params["B"])
    return out


def sg_loss_value(params: dict, h, y, u, target, weight):
    """L_SG = ½ ω Σ_rows ‖SG(h, y) − target‖² (differentiate w.r.t. ``params`` only: the target is data)."""
    r = sg_apply(params, h, y, u) - target
    return 0.5 * weight * jnp.sum(r * r)


def line_search_rate(grad: dict, h, y, u, weight):
    """Exact minimiser β* of L_SG(ψ − β g) along the gradient g, for a linear SG.

    SG output is linear in ψ, so L_SG(ψ − βg) = L_SG(ψ) − β‖g‖² + ½β² ω Σ‖SG_g(h, y)‖², where SG_g is
    the module evaluated with parameters g. Hence β* = ‖g‖² / (ω Σ‖SG_g‖²) (0 where g = 0).
    """
    g2 = sum(jnp.sum(v * v) for v in jax.tree_util.tree_leaves(grad))
    s = sg_apply(grad, h, y, u)
    curv = weight * jnp.sum(s * s)
    safe = curv > 0
    return jnp.where(safe, g2 / jnp.where(safe, curv, 1.0), 0.0)


__all__ = ["sg_init", "sg_apply", "sg_loss_value", "line_search_rate"]
