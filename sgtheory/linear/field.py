"""The joint gradient field G(x) of the whole-grid case in numpy: its value and its exact Jacobian.

For the case of :mod:`sgtheory.linear.grid` (linear model, MSE, backprop or a linear / cond-linear SG at
the output, moments) the stability theory needs only G at the fixed point and its Jacobian DG there,
both small (d'·k + 2k² + k entries). Computing them through :func:`sgtheory.linear.grid.gradients` with
``xp=numpy`` runs no JAX program: in a fresh ``sgtheory sweep`` process tracing, lowering and loading the
JAX versions (:func:`jax.jacfwd` of the flattened field) cost more than the sweep's whole theory.

The Jacobian is taken by the complex step (Squire & Trapp 1998): G is a polynomial in x (of degree 3:
E[pᵀe] multiplies θ, θ and A), so Im G(x + i·h·e_j) / h = DG(x) e_j − h²·(…), and with h = 1e-20 the
remainder lies twenty orders of magnitude below round-off; there is no subtraction, hence no
cancellation. All directions e_j are evaluated at once as the grid's configuration axis. Tested against
:func:`jax.jacfwd` of :func:`sgtheory.linear.rules.gradients`.

Flat coordinates follow :func:`jax.flatten_util.ravel_pytree` of the :class:`~sgtheory.linear.rules.State`
(W, then b, then the SG's A, B, C), so the results are interchangeable with the autodiff theory's.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from sgtheory.linear import grid as _grid
from sgtheory.linear.config import Config

COMPLEX_STEP = 1e-20


def applicable(config: Config) -> bool:
    """Whether this module evaluates ``config``'s field (the whole-grid case).

    Args:
        config: the model and its rule.

    Returns:
        True where :func:`field` and the others apply.
    """
    return _grid.applicable(config)


def _layout(config: Config, state) -> list[tuple[str, tuple]]:
    """(grid key, per-configuration shape) in flat order: θ = [W; b] (d', k), then A, B, C (sorted keys,
    as ``ravel_pytree`` orders a dict)."""
    W = state.net[0]["W"]
    theta = (W.shape[0] + int(config.bias), W.shape[1])
    sg = sorted(state.sg[0].items()) if config.sg != "none" else []
    return [("theta", theta)] + [(name, tuple(np.shape(v))) for name, v in sg]


def flatten(state) -> np.ndarray:
    """The state as a float64 vector in ``ravel_pytree`` order (no JAX program).

    Args:
        state: a :class:`~sgtheory.linear.rules.State`.

    Returns:
        The vector (n,).
    """
    return np.concatenate([np.asarray(v, np.float64).ravel() for v in jax.tree_util.tree_leaves(state)])


def unflatten(state, x: np.ndarray):
    """A state like ``state`` (same tree, shapes and dtypes; numpy leaves) holding the vector ``x``.

    Args:
        state: the layout.
        x: the values (n,) in ``ravel_pytree`` order.

    Returns:
        The new state.
    """
    leaves, tree = jax.tree_util.tree_flatten(state)
    sizes = np.cumsum([math.prod(np.shape(v)) for v in leaves])[:-1]
    parts = np.split(np.asarray(x, np.float64), sizes)
    return jax.tree_util.tree_unflatten(tree, [p.reshape(np.shape(v)).astype(v.dtype) for p, v in zip(parts, leaves)])


def field(config: Config, problem, state):
    """The joint field G as a numpy function of flat states.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: a state giving the layout only (tree, shapes).

    Returns:
        ``G``: flat states (n, C) -> the field at each of the C columns (n, C), numpy, in any dtype numpy
        multiplies (float64, complex128).
    """
    mom = _grid.moments(problem, config.bias, np.float64, xp=np)
    layout = _layout(config, state)
    sizes = np.cumsum([math.prod(shape) for _, shape in layout])[:-1]

    def G(X):
        X = np.asarray(X)
        g = {name: part.reshape(*shape, X.shape[1])
             for (name, shape), part in zip(layout, np.split(X, sizes, axis=0))}
        d = _grid.gradients(config, mom, g, xp=np)
        return np.concatenate([d[name].reshape(-1, X.shape[1]) for name, _ in layout], axis=0)

    return G


def _jacobian(G, x: np.ndarray) -> np.ndarray:
    """DG(x) (n, n) of the field ``G`` by the complex step, all n directions in one call."""
    return G(x[:, None] + 1j * COMPLEX_STEP * np.eye(x.size)).imag / COMPLEX_STEP


def residual(config: Config, problem, state) -> float:
    """‖G(x)‖ at ``state``.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: where to evaluate the field.

    Returns:
        The norm.
    """
    return float(np.linalg.norm(field(config, problem, state)(flatten(state)[:, None])))


def jacobian(config: Config, problem, state) -> np.ndarray:
    """DG at ``state`` by the complex step (module docstring).

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: where to differentiate.

    Returns:
        DG (n, n), float64.
    """
    return _jacobian(field(config, problem, state), flatten(state))


def newton(config: Config, problem, state):
    """One minimum-norm Newton step x ← x − DG⁺G (as :func:`sgtheory.linear.theory`'s).

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the current point.

    Returns:
        ``(new_state, residual)``: the stepped state and ‖G‖ there.
    """
    x, G = flatten(state), field(config, problem, state)
    new = unflatten(state, x - np.linalg.lstsq(_jacobian(G, x), G(x[:, None])[:, 0], rcond=1e-10)[0])  # DG⁺G
    return new, float(np.linalg.norm(G(flatten(new)[:, None])))  # at the state as stored (its dtype)


__all__ = ["COMPLEX_STEP", "applicable", "flatten", "unflatten", "field", "residual", "jacobian", "newton"]
