"""The whole-grid update of the common sweep case, written with shared matrix products.

Case: linear model p = xW (+ b), MSE, backprop or a linear / cond-linear SG at the output, fixed rates,
population (moment) form. Every configuration's state is kept with the configuration axis *last*
(θ = [W; b] as (d', k, C), A (k, k, C), B (k, k, C), C (k, C)), so the one large product Σθ is a single
matrix multiply shared by all C configurations and everything else is vectorised across them. It
computes exactly :func:`sgtheory.linear.rules.step` (tested against it), from the moments
(x̃ = (x, 1) with bias, u = 1):

    Σ = E[x̃ᵀx̃], R = E[x̃ᵀy], m = E[x̃];   Q = Σθ, E[pᵀp] = θᵀQ, E[pᵀy] = θᵀR, E[p] = θᵀm
    SG s = pA + yB + uC, target t = p − y, e = s − t = p(A − I) + y(B + I) + uC
    ∂θ = QA + RB + m C        (backprop: ∂θ = Q − R)
    ∂A = E[pᵀe],  ∂B = E[yᵀe],  ∂C = E[e]

:func:`moments` and :func:`gradients` take the array module ``xp``: ``jax.numpy`` (default; traceable) or
``numpy`` (float64 or complex128, no JAX program: the theory of this case uses it through
:mod:`sgtheory.linear.field`).
"""

from __future__ import annotations

import jax.numpy as jnp

from sgtheory.linear.config import Config
from sgtheory.linear.precision import einsum, mm


def applicable(config: Config) -> bool:
    """Whether :func:`gradients` implements ``config``'s rule (the case of the module docstring).

    Args:
        config: the model and its rule.

    Returns:
        True where the whole-grid update applies.
    """
    return (config.model == "linear" and config.loss == "mse" and config.sg in ("none", "linear", "cond-linear")
            and config.sg_step == "fixed" and config.batch_size is None and not config.uses_samples)


def moments(problem, bias: bool, dtype, xp=jnp) -> dict:
    """The moments the grid update reads, with x̃ = (x, 1) when ``bias`` (traceable).

    Args:
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        bias: append the constant input.
        dtype: the arrays' dtype.
        xp: the array module (see the module docstring).

    Returns:
        ``{"Sig": Σ (d', d'), "R": (d', k), "m": (d',), "Syy": (k, k), "my": (k,)}``.
    """
    Sxx, Sxy, Syy, mx, my = (xp.asarray(a, dtype) for a in (problem.Sxx, problem.Sxy, problem.Syy,
                                                              problem.mx, problem.my))
    if bias:
        Sig = xp.block([[Sxx, mx[:, None]], [mx[None, :], xp.ones((1, 1), dtype)]])
        R, m = xp.concatenate([Sxy, my[None, :]]), xp.append(mx, xp.ones((), dtype))
    else:
        Sig, R, m = Sxx, Sxy, mx
    return {"Sig": Sig, "R": R, "m": m, "Syy": Syy, "my": my}


def to_grid(config: Config, states) -> dict:
    """Config-first vmapped States (leading axis C) -> the config-last grid state.

    Args:
        config: the model and its rule.
        states: C :class:`~sgtheory.linear.rules.State` stacked along a leading axis.

    Returns:
        The grid state (a dict of arrays, configuration axis last).
    """
    net = states.net[0]
    theta = net["W"] if not config.bias else jnp.concatenate([net["W"], net["b"][:, None, :]], axis=1)
    grid = {"theta": jnp.moveaxis(theta, 0, -1)}
    if config.sg != "none":
        for name, v in states.sg[0].items():
            grid[name] = jnp.moveaxis(v, 0, -1)
    return grid


def _mm(a, b):
    """Per-configuration matrix product of (i, j, C) and (j, l, C) -> (i, l, C). The short sum over j
    is unrolled so every term is one elementwise loop vectorised along C."""
    return sum(a[:, j, None, :] * b[None, j, :, :] for j in range(a.shape[1]))


def _tmm(a, b, xp=jnp):
    """Per-configuration aᵀb of (i, k, C) and (i, l, C) -> (k, l, C)."""
    return xp.stack([xp.stack([xp.sum(a[:, p] * b[:, q], axis=0) for q in range(b.shape[1])])
                     for p in range(a.shape[1])])


def _shared(M, a, xp=jnp):
    """M (r, j) shared by all configurations times a (j, l, C): one matrix multiply -> (r, l, C)."""
    j, l, c = a.shape
    matmul = mm if xp is jnp else xp.matmul
    return matmul(M, a.reshape(j, l * c)).reshape(M.shape[0], l, c)


def gradients(config: Config, mom: dict, g: dict, xp=jnp) -> dict:
    """The rule's gradients at grid state ``g``.

    Args:
        config: the model and its rule (:func:`applicable`).
        mom: the problem's moments (:func:`moments`).
        g: the grid state, configuration axis last.
        xp: the array module (see the module docstring).

    Returns:
        The gradients, the same keys and shapes as ``g``.
    """
    theta = g["theta"]
    R, m = mom["R"], mom["m"]
    d, k = R.shape
    QQ = _shared(xp.concatenate([mom["Sig"], R.T, m[None]], axis=0), theta, xp)  # one product: Q, Rᵀθ, mᵀθ
    Q = QQ[:d]
    if config.sg == "none":
        return {"theta": Q - R[:, :, None]}
    Epy, Ep = xp.swapaxes(QQ[d:d + k], 0, 1), QQ[d + k]  # E[pᵀy] (k, k, C), E[p] (k, C)
    Epp = _tmm(theta, Q, xp)
    A, C = g["A"], g["C"]
    eye = xp.eye(k, dtype=A.dtype)[:, :, None]
    d_theta = _mm(Q, A) + m[:, None, None] * C[None]
    if config.sg == "cond-linear":
        B = g["B"]
        d_theta = d_theta + _shared(R, B, xp)
        ytail = B + eye
    else:
        ytail = xp.broadcast_to(eye, A.shape)
    # e = s − t = p Ā + y Ȳ + u C with Ā = A − I, Ȳ = B + I (cond-linear) or I (linear: s = pA + uC)
    Abar = A - eye
    dA = _mm(Epp, Abar) + _mm(Epy, ytail) + Ep[:, None, :] * C[None, :, :]
    dC = _mm(Ep[None], Abar)[0] + _shared(mom["my"][None], ytail, xp)[0] + C
    out = {"theta": d_theta, "A": dA, "C": dC}
    if config.sg == "cond-linear":
        out["B"] = (_mm(xp.swapaxes(Epy, 0, 1), Abar) + _shared(mom["Syy"], ytail, xp)
                    + mom["my"][:, None, None] * C[None])
    return out


def loss(mom: dict, theta):
    """½ E‖x̃θ − y‖² per configuration.

    Args:
        mom: the problem's moments (:func:`moments`).
        theta: the grid's θ (d', k, C).

    Returns:
        The losses (C,).
    """
    Q = _shared(mom["Sig"], theta)
    return 0.5 * (jnp.trace(mom["Syy"]) - 2 * einsum("ikc,ik->c", theta, mom["R"])
                  + einsum("ikc,ikc->c", theta, Q))


__all__ = ["applicable", "moments", "to_grid", "gradients", "loss"]
