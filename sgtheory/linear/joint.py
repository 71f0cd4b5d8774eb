"""The joint field G(x) of a (model, SG) system in flat coordinates, and its Jacobian: one backend per config.

x = (θ, ψ) is the state flattened in :func:`jax.flatten_util.ravel_pytree` order (the model's layers, then
the SG modules), and G(x) stacks the rule's update directions (:func:`sgtheory.linear.rules.gradients`),
so a full-batch step is x ← x − S G(x) with S = diag(α on θ, β on ψ). The theory needs G and DG at a
handful of points; :func:`joint_field` picks how to evaluate them once per config:

- ``"numpy"``: the whole-grid case (linear model, MSE, backprop or a linear SG at the output, moments)
  through :mod:`sgtheory.linear.field` (numpy, complex-step Jacobian; no JAX program to trace);
- ``"jax"``: everything else, by JAX autodiff (one compiled program per config for G and one for DG).

Both evaluate many points at once: columns of X (n, C) for G, and (C, n, n) Jacobians.
"""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from sgtheory.linear import field as _field
from sgtheory.linear.config import Config
from sgtheory.linear.rules import State, gradients


def model_mask(state: State) -> np.ndarray:
    """Which entries of the flattened state are the model's (ravel order: net, then sg).

    Args:
        state: a :class:`~sgtheory.linear.rules.State`.

    Returns:
        Boolean (n,), True on the model's entries.
    """
    leaves = jax.tree_util.tree_leaves
    return np.concatenate([np.ones(np.size(v), bool) for v in leaves(state.net)]
                          + [np.zeros(np.size(v), bool) for v in leaves(state.sg)])


@functools.partial(jax.jit, static_argnums=(0, 3))
def _values_jit(config: Config, problem, X, unravel):
    return jax.vmap(lambda v: ravel_pytree(gradients(config, problem, unravel(v)))[0], in_axes=1, out_axes=1)(X)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _jacobians_jit(config: Config, problem, X, unravel):
    G = lambda v: ravel_pytree(gradients(config, problem, unravel(v)))[0]
    return jax.vmap(jax.jacfwd(G), in_axes=1)(X)


@functools.partial(jax.jit, static_argnums=(0, 4, 6))
def _flow_jit(config: Config, problem, X, scale, unravel, etas, steps):
    def G(V):
        return jax.vmap(lambda v: ravel_pytree(gradients(config, problem, unravel(v)))[0], in_axes=1, out_axes=1)(V)

    def body(_, carry):
        V, ok = carry
        new = V - etas[None, :] * scale * G(V)
        good = ok & jax.numpy.all(jax.numpy.isfinite(new), axis=0)
        return jax.numpy.where(good[None, :], new, V), good

    return jax.lax.fori_loop(0, steps, body, (X, jax.numpy.ones(X.shape[1], bool)))


@functools.partial(jax.jit, static_argnums=(0, 5))
def _bilinear_grad_jit(config: Config, problem, x, u, v, unravel):
    G = lambda w: ravel_pytree(gradients(config, problem, unravel(w)))[0]
    return jax.grad(lambda w: jax.numpy.dot(u, jax.jvp(G, (w,), (v,))[1]))(x)


class _Unravel:
    """Hashable wrapper of a state's unravel function, keyed by the tree and the leaf shapes and dtypes (a
    static argument of the JAX programs: one compilation per config and layout, not per call)."""

    def __init__(self, state: State):
        leaves, self.tree = jax.tree_util.tree_flatten(state)
        self.shapes = tuple((tuple(np.shape(v)), np.dtype(v.dtype).name) for v in leaves)

    def __call__(self, v):
        sizes = [math.prod(s) for s, _ in self.shapes]
        parts, lo = [], 0
        for (shape, dtype), size in zip(self.shapes, sizes):
            parts.append(v[lo:lo + size].reshape(shape).astype(dtype))
            lo += size
        return jax.tree_util.tree_unflatten(self.tree, parts)

    def __hash__(self):
        return hash((self.tree, self.shapes))

    def __eq__(self, other):
        return isinstance(other, _Unravel) and (self.tree, self.shapes) == (other.tree, other.shapes)


class JointField:
    """G and DG of ``config`` on ``problem`` at flat states, laid out like ``like`` (a State; only its tree,
    shapes and dtypes are read). ``backend`` is ``"numpy"`` or ``"jax"`` (module docstring).

    Attributes: ``n`` (state size), ``mask`` (bool (n,), True on model entries), ``backend``."""

    def __init__(self, config: Config, problem, like: State):
        self.config, self.problem = config, problem
        self._like = jax.tree_util.tree_map(lambda v: np.zeros(np.shape(v), np.dtype(v.dtype)), like)
        self.mask = model_mask(like)
        self.n = int(self.mask.size)
        self.backend = "numpy" if _field.applicable(config) else "jax"
        if self.backend == "numpy":
            self._G = _field.field(config, problem, self._like)
        else:
            self._unravel = _Unravel(self._like)

    def flatten(self, state: State) -> np.ndarray:
        """The state as a float64 vector (n,)."""
        return _field.flatten(state)

    def unflatten(self, x) -> State:
        """A State (numpy leaves, ``like``'s dtypes) holding the vector ``x`` (n,)."""
        return _field.unflatten(self._like, np.asarray(x, np.float64))

    def values(self, X) -> np.ndarray:
        """G at the columns of X (n, C): (n, C) float64 (or complex128 for complex X on the numpy backend)."""
        X = np.asarray(X)
        if self.backend == "numpy":
            return self._G(X)
        return np.asarray(_values_jit(self.config, self.problem, X, self._unravel), np.float64)

    def value(self, x) -> np.ndarray:
        """G at one flat state x (n,)."""
        return self.values(np.asarray(x)[:, None])[:, 0]

    def jacobians(self, X) -> np.ndarray:
        """DG at the columns of X (n, C): (C, n, n) float64 (numpy: complex step; jax: forward mode)."""
        X = np.asarray(X, np.float64)
        if self.backend == "numpy":
            return np.stack([_field._jacobian(self._G, X[:, c]) for c in range(X.shape[1])]
                            or [np.zeros((0, self.n, self.n))])[: X.shape[1]].reshape(X.shape[1], self.n, self.n)
        return np.asarray(_jacobians_jit(self.config, self.problem, X, self._unravel), np.float64)

    def jacobian(self, x) -> np.ndarray:
        """DG at one flat state x (n,): (n, n)."""
        return self.jacobians(np.asarray(x)[:, None])[0]

    def bilinear_gradient(self, x, u, v, directions=None):
        """The gradient of x ↦ uᵀ DG(x) v (u, v fixed (n,) vectors; with the top singular pair of DG it is the
        gradient of the largest singular value): the full gradient (n,) on the JAX backend (reverse mode
        over one forward derivative), the derivatives along the columns of ``directions`` (n, m) on the
        numpy one (central differences of the complex-step derivative DG(x)v = Im G(x + i·h·v)/h, exact to
        the h² term of a polynomial, h = 1e-6·max(1, ‖x‖))."""
        x, u, v = (np.asarray(a, np.float64) for a in (x, u, v))
        if self.backend == "jax":
            grad = np.asarray(_bilinear_grad_jit(self.config, self.problem, x, u, v, self._unravel), np.float64)
            return grad if directions is None else np.asarray(directions).T @ grad
        if directions is None:
            directions = np.eye(self.n)
        h = 1e-6 * max(1.0, float(np.linalg.norm(x)))
        pts = np.concatenate([x[:, None] + h * directions, x[:, None] - h * directions], axis=1)
        jv = self._G(pts + 1j * _field.COMPLEX_STEP * v[:, None]).imag / _field.COMPLEX_STEP  # DG v at each
        m = directions.shape[1]
        return u @ (jv[:, :m] - jv[:, m:]) / (2 * h)

    def flow(self, X, etas, scale, steps: int):
        """``steps`` explicit Euler steps x ← x − η D G(x) of each column of X (n, C), the column's step
        ``etas`` (C,) and scaling ``scale`` (n, C) (1 on the model's entries, r on the SG's). A column that
        would become non-finite stops where it was. Returns (X (n, C), finite (C,) bool)."""
        X = np.asarray(X, np.float64)
        etas, scale = np.asarray(etas, np.float64), np.asarray(scale, np.float64)
        if self.backend == "jax":
            V, ok = _flow_jit(self.config, self.problem, X, scale, self._unravel, etas, int(steps))
            return np.asarray(V, np.float64), np.asarray(ok)
        V, ok = X.copy(), np.ones(X.shape[1], bool)
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(int(steps)):
                new = V - etas[None, :] * scale * self._G(V)
                ok &= np.isfinite(new).all(axis=0)
                V = np.where(ok[None, :], new, V)
        return V, ok


def joint_field(config: Config, problem, like: State) -> JointField:
    """The :class:`JointField` of ``config`` on ``problem`` for states shaped like ``like``.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        like: a :class:`~sgtheory.linear.rules.State` (only its tree, shapes and dtypes are read).

    Returns:
        The :class:`JointField`.
    """
    return JointField(config, problem, like)


__all__ = ["JointField", "joint_field", "model_mask"]
