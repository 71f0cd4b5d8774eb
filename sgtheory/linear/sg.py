"""The linear laboratory's SG variants on top of :mod:`sgtheory.sg`, and the exact line-search step.

The three variants of :class:`sgtheory.linear.Config` map onto the shared modules of :mod:`sgtheory.sg`
(same keys, same ½ loss convention), with ``u`` the constant column of :mod:`sgtheory.linear.problems`:

- ``"linear"``:      SG(h) = hA + uC                     A (w, w), C (w,)
- ``"cond-linear"``: SG(h, y) = hA + yB + uC             B (k, w)       (cDNI, Jaderberg et al. 2017)
- ``"mlp"``:         SG(h, y) = relu([h, y] W_1 + u b_1) W_2 + u b_2, ``hidden`` units (one hidden layer)

Every product runs at full precision (:mod:`sgtheory.linear.precision`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory import sg as _sg
from sgtheory.errors import InputError
from sgtheory.linear.precision import HIGHEST


def init_sg(variant: str, width: int, k: int, *, key, hidden: int = 16, dtype=jnp.float32) -> dict:
    """Parameters of one SG module of ``variant`` at an activation of ``width`` units (outputs zero).

    Args:
        variant: ``"linear"``, ``"cond-linear"`` or ``"mlp"``.
        width, k: widths of the activation and of the targets y.
        key: PRNG key (MLP hidden layer).
        hidden: MLP hidden units.
        dtype: parameter dtype.

    Returns:
        the parameter dict of :func:`sgtheory.sg.init_sg`.
    """
    if variant not in ("linear", "cond-linear", "mlp"):
        raise InputError(f"sg: unknown variant {variant!r}; choose from linear, cond-linear, mlp")
    if variant != "mlp":
        return _sg.init_sg("linear", width, k, conditioned=variant == "cond-linear", key=key, dtype=dtype)
    # the laboratory's MLP draws its h and y weights from separate keys with variance 1/(w + k) (LeCun);
    # the layout is that of sgtheory.sg, so apply_sg and sg_loss are shared
    ka, kb = jax.random.split(key)
    scale = 1.0 / jnp.sqrt(width + k).astype(dtype)
    W1 = jnp.concatenate([jax.random.normal(ka, (width, hidden), dtype), jax.random.normal(kb, (k, hidden), dtype)])
    return {"layers": [{"W": W1 * scale, "b": jnp.zeros((hidden,), dtype)},
                       {"W": jnp.zeros((hidden, width), dtype), "b": jnp.zeros((width,), dtype)}]}


def apply_sg(params: dict, h, y, u):
    """The SG output for activations ``h`` (full-precision products).

    Args:
        params: the module's parameters (:func:`sgtheory.sg.init_sg`).
        h: activations (m, w).
        y: targets or labels (m, k) (read by a conditioned module only).
        u: the constant column (m,).

    Returns:
        SG (m, w).
    """
    return _sg.apply_sg(params, h, y, u, precision=HIGHEST)


def sg_loss(params: dict, h, y, u, target, weight):
    """L_SG = ½ ω Σ_rows ‖SG(h, y) − target‖² (differentiate w.r.t. ``params`` only: the target is data).

    Args:
        params: the module's parameters.
        h: activations (m, w).
        y: targets or labels (m, k) (read by a conditioned module only).
        u: the constant column (m,).
        target: the regression target (m, w).
        weight: the row weight ω.

    Returns:
        L_SG, a scalar array.
    """
    return _sg.sg_loss(params, h, y, target, u=u, weight=weight, precision=HIGHEST)[0]


def line_search_rate(grad: dict, h, y, u, weight):
    """Exact minimiser β* of L_SG(ψ − β g) along the gradient g, for a linear SG.

    SG output is linear in ψ, so L_SG(ψ − βg) = L_SG(ψ) − β‖g‖² + ½β² ω Σ‖SG_g(h, y)‖², where SG_g is
    the module evaluated with parameters g. Hence β* = ‖g‖² / (ω Σ‖SG_g‖²) (0 where g = 0).

    Args:
        grad: the gradient g, shaped like the module's parameters.
        h: activations (m, w).
        y: targets or labels (m, k) (read by a conditioned module only).
        u: the constant column (m,).
        weight: the row weight ω.

    Returns:
        β*, a scalar array.
    """
    g2 = sum(jnp.sum(v * v) for v in jax.tree_util.tree_leaves(grad))
    s = apply_sg(grad, h, y, u)
    curv = weight * jnp.sum(s * s)
    safe = curv > 0
    return jnp.where(safe, g2 / jnp.where(safe, curv, 1.0), 0.0)


__all__ = ["init_sg", "apply_sg", "sg_loss", "line_search_rate"]
