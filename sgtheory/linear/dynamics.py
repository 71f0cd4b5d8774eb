"""Whole training runs: discrete steps (``lax.scan``) and the gradient-flow limit (RK4).

Both record the true loss and the SG loss every ``every`` steps (including the start), and optionally
the parameters. Everything is pure and jit-able; rates are data.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sgtheory.errors import InputError
from sgtheory.linear.config import Config
from sgtheory.linear.rules import State, gradients, loss, sg_loss, step
from sgtheory.validate import int_in_range


class Trajectory(NamedTuple):
    """A recorded run: ``t`` (r,) step numbers (or flow times), ``loss`` (r,), ``sg_loss`` (r,),
    ``states`` (a State with a leading (r,) axis, or None) and the ``final`` State."""

    t: jnp.ndarray
    loss: jnp.ndarray
    sg_loss: jnp.ndarray
    states: State | None
    final: State


def _record(config, problem, state, keep):
    return loss(config, problem, state), sg_loss(config, problem, state), (state if keep else None)


def trajectory(config: Config, problem, state: State, alpha, beta, steps: int, *, key=None,
               every: int = 1, record_states: bool = False) -> Trajectory:
    """Run ``steps`` discrete updates of :func:`sgtheory.linear.rules.step`, recording every ``every``.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the start.
        alpha, beta: the model's and the SG modules' learning rates.
        steps: updates to run (a multiple of ``every``).
        key: required for minibatch SGD; step t uses ``fold_in(key, t)``.
        every: record every this many steps.
        record_states: also keep the recorded states.

    Returns:
        A :class:`Trajectory` with ``steps // every + 1`` records (t = 0, every, ..., steps).
    """
    steps = int_in_range(steps, "steps", lo=0)
    every = int_in_range(every, "every", lo=1)
    if steps % every:
        raise InputError(f"steps {steps}: must be a multiple of every = {every}")
    if config.batch_size is not None and key is None:
        raise InputError("minibatch SGD: trajectory() needs a key")

    def one(carry, t):
        k = None if key is None else jax.random.fold_in(key, t)
        return step(config, problem, carry, alpha, beta, key=k), None

    def chunk(carry, c):
        carry, _ = jax.lax.scan(one, carry, c * every + jnp.arange(every))
        return carry, _record(config, problem, carry, record_states)

    first = _record(config, problem, state, record_states)
    final, recs = jax.lax.scan(chunk, state, jnp.arange(steps // every))
    cat = lambda a, b: jnp.concatenate([a[None], b])
    states = jax.tree_util.tree_map(cat, first[2], recs[2]) if record_states else None
    return Trajectory(jnp.arange(steps // every + 1) * every, cat(first[0], recs[0]), cat(first[1], recs[1]),
                      states, final)


def flow(config: Config, problem, state: State, t_end: float, *, ratio=1.0, dt: float = 0.01,
         every: int = 10, record_states: bool = False) -> Trajectory:
    """The gradient-flow limit dθ/dt = −∂θ, dψ/dt = −ratio·∂ψ (α, β → 0 with β/α = ``ratio``), by RK4.

    Time t corresponds to t/α discrete steps. Full batch, fixed-rate SG only.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the start.
        t_end: the flow time to integrate to.
        ratio: β/α.
        dt: the RK4 step.
        every: record every this many RK4 steps.
        record_states: also keep the recorded states.

    Returns:
        A :class:`Trajectory` whose ``t`` are flow times.
    """
    if config.batch_size is not None or config.sg_step != "fixed":
        raise InputError("flow: needs full-batch updates with a fixed-rate SG step")
    n = int(round(float(t_end) / dt))
    n -= n % every

    def vel(s):
        g = gradients(config, problem, s)
        return State(jax.tree_util.tree_map(lambda a: -a, g.net),
                     jax.tree_util.tree_map(lambda a: -ratio * a, g.sg))

    def axpy(a, v, s):
        return jax.tree_util.tree_map(lambda x, y: x + a * y, s, v)

    def rk4(s, _):
        k1 = vel(s)
        k2 = vel(axpy(dt / 2, k1, s))
        k3 = vel(axpy(dt / 2, k2, s))
        k4 = vel(axpy(dt, k3, s))
        incr = jax.tree_util.tree_map(lambda a, b, c, d: (a + 2 * b + 2 * c + d) / 6, k1, k2, k3, k4)
        return axpy(dt, incr, s), None

    def chunk(carry, _):
        carry, _ = jax.lax.scan(rk4, carry, None, length=every)
        return carry, _record(config, problem, carry, record_states)

    first = _record(config, problem, state, record_states)
    final, recs = jax.lax.scan(chunk, state, None, length=n // every)
    cat = lambda a, b: jnp.concatenate([a[None], b])
    states = jax.tree_util.tree_map(cat, first[2], recs[2]) if record_states else None
    return Trajectory(jnp.arange(n // every + 1) * every * dt, cat(first[0], recs[0]), cat(first[1], recs[1]),
                      states, final)


__all__ = ["Trajectory", "trajectory", "flow"]
