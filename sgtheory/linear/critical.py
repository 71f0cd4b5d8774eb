"""Critical points of the original problem and of the joint (model, SG) system (claims C1, C2).

Czarnecki et al. (2017, arXiv 1703.00522, section 3.1):

- C1: adding an SG does not remove critical points. If θ* is a critical point of the loss L and the
  SG module can output the true gradient there (SG* with SG*(h, y) = ∂ℓ/∂h on every row), then
  (θ*, SG*) is a critical point of the joint system: the model's synthetic update is the true gradient
  (zero) and the SG's regression loss is at its minimum (zero gradient). Started there, the joint
  dynamics do not move (up to round-off).
- C2: an SG that cannot represent ∂ℓ/∂h (log loss with a linear SG) adds critical points: the joint
  system stops where E[SG·∂h/∂θ] = 0 although the true gradient E[∂ℓ/∂h·∂h/∂θ] is not zero.

Two gradient norms tell these apart: :func:`bp_gradient_norm` (‖∂L/∂θ‖ of the original problem, by
backprop) and :func:`joint_gradient_norm` (the norm of the joint vector field the learning rule follows:
the model's synthetic update and the SG modules' regression gradients). :func:`critical_state` builds
(θ*, SG*) for MSE and :func:`drift` measures how far the joint dynamics move from it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from sgtheory.errors import InputError
from sgtheory.linear.config import Config
from sgtheory.linear.dynamics import trajectory
from sgtheory.linear.rules import State, fit_sg, forward, full_batch, gradients, init, loss

__all__ = ["bp_gradient_norm", "joint_gradient_norm", "solve_top_layer", "critical_state", "Drift", "drift"]


def _norm(tree) -> jnp.ndarray:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(a * a) for a in leaves)) if leaves else jnp.zeros(())


def bp_gradient_norm(config: Config, problem, state: State) -> jnp.ndarray:
    """‖∂L/∂θ‖ of the original problem (true loss, all model layers, by autodiff); SG modules ignored.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the parameters.

    Returns:
        The norm, a scalar array.
    """
    return _norm(jax.grad(lambda net: loss(config, problem, State(net, state.sg)))(state.net))


def joint_gradient_norm(config: Config, problem, state: State) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Norms of the joint vector field at ``state``: (model part ‖SG·∂h/∂θ‖, SG part ‖∂L_SG/∂ψ‖).

    Both are zero exactly at a fixed point of the learning rule's update map, for any rates α, β > 0.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: where to evaluate the field.

    Returns:
        ``(model_norm, sg_norm)``, scalar arrays.
    """
    g = gradients(config, problem, state)
    return _norm(g.net), _norm(g.sg)


def solve_top_layer(config: Config, problem, state: State) -> State:
    """Set the last layer to the least-squares fit of y on the activations below it (MSE).

    With the layers below of full rank (an invertible square stack, as at a random init) this is a
    global minimum of the MSE loss, hence a critical point of the original problem, reached in closed
    form (no training).

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the parameters; all but the last layer are kept.

    Returns:
        The new :class:`~sgtheory.linear.rules.State`.
    """
    if config.loss != "mse":
        raise InputError("solve_top_layer: closed form only for the MSE loss")
    batch = full_batch(config, problem)
    h = forward(state.net[:-1], batch.x, batch.u)[-1]
    top = dict(state.net[-1])
    if "b" in top:
        coef = jnp.linalg.lstsq(jnp.concatenate([h, batch.u[:, None]], axis=1), batch.y)[0]
        top["W"], top["b"] = coef[:-1], coef[-1]
    else:
        top["W"] = jnp.linalg.lstsq(h, batch.y)[0]
    return State(state.net[:-1] + (top,), state.sg)


def critical_state(config: Config, problem, *, key, init_scale=1.0, where: str = "optimum") -> State:
    """(θ*, SG*): a critical point of the original MSE problem with every SG module refitted there.

    SG* comes from :func:`sgtheory.linear.rules.fit_sg` (exact for MSE with a cond-linear SG).

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        key: the JAX PRNG key of the random layers.
        init_scale: their scale (as :func:`sgtheory.linear.rules.init`).
        where: ``"optimum"`` (random layers below, least-squares top layer: a global minimum) or ``"zero"``
            (every weight and hidden bias zero, the output bias at the mean target: a saddle of a deep
            linear net; needs hidden layers).

    Returns:
        The :class:`~sgtheory.linear.rules.State`.
    """
    state = init(config, problem, key=key, init_scale=init_scale)
    if where == "optimum":
        state = solve_top_layer(config, problem, state)
    elif where == "zero":
        if config.depth == 0:
            raise InputError("critical_state where=zero: a linear model has no saddle at zero (needs hidden layers)")
        state = State(jax.tree_util.tree_map(jnp.zeros_like, state.net), state.sg)
        if config.loss == "mse":  # the top bias must fit the mean target, or the point is not critical
            state = solve_top_layer(config, problem, state)
    else:
        raise InputError(f"where: unknown value {where!r}; choose from optimum, zero")
    return fit_sg(config, problem, state) if config.sg != "none" else state


class Drift(NamedTuple):
    """Distance from the start along a run: ``t`` (r,), ``net`` ‖θ_t − θ_0‖ (r,), ``sg`` ‖ψ_t − ψ_0‖ (r,),
    ``loss`` (r,) the true loss."""

    t: jnp.ndarray
    net: jnp.ndarray
    sg: jnp.ndarray
    loss: jnp.ndarray


def drift(config: Config, problem, state: State, alpha, beta, steps: int, *, every: int = 1, key=None) -> Drift:
    """Run the joint dynamics from ``state`` and record how far model and SG parameters move.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the start.
        alpha, beta: the model's and the SG modules' learning rates.
        steps: updates to run (a multiple of ``every``).
        every: record every this many steps.
        key: required for minibatch SGD.

    Returns:
        The :class:`Drift`.
    """
    tr = trajectory(config, problem, state, alpha, beta, steps, every=every, key=key, record_states=True)
    flat0_net, flat0_sg = ravel_pytree(state.net)[0], ravel_pytree(state.sg)[0]
    dist = lambda tree, ref: jnp.linalg.norm(ravel_pytree(tree)[0] - ref)
    d_net = jax.vmap(lambda s: dist(s.net, flat0_net))(tr.states)
    d_sg = jax.vmap(lambda s: dist(s.sg, flat0_sg))(tr.states)
    return Drift(tr.t, d_net, d_sg, tr.loss)
