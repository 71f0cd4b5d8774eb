"""Learning rules for linear and deep linear models: backprop and synthetic gradients.

Notation (row vectors, see :mod:`sgtheory.linear.config`): h_0 = x, h_i = h_{i-1} W_i + u b_i, p = h_L.
The rule assigns each layer i a signal δ_i (m, width_i) standing in for ∂L/∂h_i, and the layer's
gradient is ∂W_i = ω h_{i-1}ᵀ δ_i, ∂b_i = ω uᵀ δ_i (ω the row weight: 1/n for samples, 1 for moment rows).
Top-down, with a = ∂L/∂p at the output and a ← δ_i W_iᵀ after each layer:

- a layer without an SG passes on what arrives from above: δ_i = a (pure backprop when there is no SG);
- a layer with an SG module uses its prediction: δ_i = SG_i(h_i, y), and the module regresses onto
  what arrived, t_i = a. With one SG at layer k this is the true gradient ∂L/∂h_k (Czarnecki et al. 2017,
  Sec. 2); with SGs at every layer it is the bootstrapped target SG_{i+1}·∂h_{i+1}/∂h_i, and only the
  top module sees the true gradient.

All of a step's updates are computed from the same state (simultaneous update):
θ ← θ − α ∂θ, ψ_i ← ψ_i − β ∂ψ_i (or β*_i from the exact line search).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sgtheory.errors import InputError
from sgtheory.linear import sg as _sg
from sgtheory.linear.config import Config
from sgtheory.linear.precision import mm


class State(NamedTuple):
    """Parameters: ``net`` is a tuple of {"W": (in, out), "b": (out,)} per layer (no "b" without bias);
    ``sg`` a tuple of SG module parameter dicts, one per entry of ``config.sg_layers``."""

    net: tuple
    sg: tuple


class Batch(NamedTuple):
    """Rows of data: ``x`` (m, d), ``y`` (m, k), constant column ``u`` (m,), scalar row weight ``weight``."""

    x: jnp.ndarray
    y: jnp.ndarray
    u: jnp.ndarray
    weight: jnp.ndarray


def full_batch(config: Config, problem) -> Batch:
    """The full-batch rows: moment square-root rows, or the samples when the config needs them.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.

    Returns:
        The :class:`Batch`.

    Raises:
        InputError: the config needs samples and the problem has none.
    """
    if config.uses_samples:
        if not problem.has_samples:
            why = "log loss" if config.loss == "log" else ("an MLP SG" if config.sg == "mlp" else "data=samples")
            raise InputError(f"{why} needs samples: build the problem with from_samples(X, Y), not from moments")
        n = problem.X.shape[0]
        return Batch(problem.X, problem.Y, jnp.ones((n,), problem.X.dtype), jnp.asarray(1.0 / n, problem.X.dtype))
    return Batch(problem.rows_x, problem.rows_y, problem.rows_u, jnp.ones((), problem.rows_x.dtype))


def minibatch(config: Config, problem, key) -> Batch:
    """``config.batch_size`` samples drawn uniformly with replacement (for minibatch SGD).

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        key: the JAX PRNG key of the draw.

    Returns:
        The :class:`Batch`.

    Raises:
        InputError: the problem has no samples.
    """
    if not problem.has_samples:
        raise InputError("minibatch SGD needs samples: build the problem with from_samples(X, Y)")
    size = config.batch_size
    idx = jax.random.randint(key, (size,), 0, problem.X.shape[0])
    dt = problem.X.dtype
    return Batch(problem.X[idx], problem.Y[idx], jnp.ones((size,), dt), jnp.asarray(1.0 / size, dt))


def init(config: Config, problem, *, key, init_scale=1.0) -> State:
    """Random model weights W_i ~ init_scale·N(0, 1/fan_in), zero biases, zero-output SG modules.

    Exactly linear in ``init_scale``: the W_i are ``init_scale`` times those of ``init_scale=1``
    (sweeps draw each seed once and rescale).

    Args:
        config: the model and its SG modules.
        problem: the :class:`~sgtheory.linear.problems.Problem` (its dimensions and dtype).
        key: the JAX PRNG key of the weights.
        init_scale: the weights' scale.

    Returns:
        The initial :class:`State`.
    """
    dims = (problem.d, *config.widths, problem.k)
    dtype = problem.dtype
    keys = jax.random.split(key, config.n_layers + len(config.sg_layers))
    net = []
    for i in range(config.n_layers):
        W = init_scale * (jax.random.normal(keys[i], dims[i:i + 2], dtype) / jnp.sqrt(dims[i]).astype(dtype))
        net.append({"W": W, "b": jnp.zeros((dims[i + 1],), dtype)} if config.bias else {"W": W})
    sg = tuple(_sg.init_sg(config.sg, dims[layer], problem.k, key=keys[config.n_layers + j],
                       hidden=config.sg_hidden, dtype=dtype)
               for j, layer in enumerate(config.sg_layers))
    return State(tuple(net), sg)


def forward(net, x, u) -> list:
    """Activations of a (deep) linear net.

    Args:
        net: the layers (``State.net``).
        x: inputs (m, d).
        u: the constant column (m,) each bias is scaled by.

    Returns:
        ``[h_0 = x, h_1, ..., h_L = p]``, each (m, width).
    """
    hs = [x]
    for layer in net:
        h = mm(hs[-1], layer["W"])
        if "b" in layer:
            h = h + u[:, None] * layer["b"][None, :]
        hs.append(h)
    return hs


def output_gradient(loss: str, p, y):
    """∂ℓ/∂p per row: p − y (MSE), σ(p) − y (log loss, one output), softmax(p) − y (several).

    Args:
        loss: ``"mse"`` or ``"log"``.
        p: outputs (m, k).
        y: targets (m, k).

    Returns:
        The gradients (m, k).
    """
    if loss == "mse":
        return p - y
    if p.shape[-1] == 1:
        return jax.nn.sigmoid(p) - y
    return jax.nn.softmax(p, axis=-1) - y


def loss_value(loss: str, p, y, weight):
    """ω Σ_rows ℓ(p, y): ½‖p − y‖², or the (sigmoid / softmax) cross-entropy.

    Args:
        loss: ``"mse"`` or ``"log"``.
        p: outputs (m, k).
        y: targets (m, k).
        weight: the row weight ω.

    Returns:
        The loss, a scalar array.
    """
    if loss == "mse":
        return 0.5 * weight * jnp.sum((p - y) ** 2)
    if p.shape[-1] == 1:
        return weight * jnp.sum(jax.nn.softplus(p) - y * p)
    return weight * jnp.sum(jax.nn.logsumexp(p, axis=-1) - jnp.sum(y * p, axis=-1))


class Signals(NamedTuple):
    """What a rule computes at one state: activations ``h`` [h_0..h_L], the signals ``delta`` [None, δ_1..δ_L]
    used by each layer, the SG outputs ``sg_out`` and their regression targets ``targets`` (tuples in
    ``config.sg_layers`` order), and the true backprop gradients ``true`` [∂L/∂h_0 .. ∂L/∂h_L] (per row)."""

    h: list
    delta: list
    sg_out: tuple
    targets: tuple
    true: list


def signals(config: Config, state: State, batch: Batch, *, with_true: bool = False) -> Signals:
    """Run the rule's forward and top-down passes on ``batch`` (see the module docstring).

    Args:
        config: the model and its rule.
        state: the parameters.
        batch: the rows (samples or moment rows) with their weights.
        with_true: also compute the true backprop gradients ``true``.

    Returns:
        The :class:`Signals`.
    """
    L = config.n_layers
    hs = forward(state.net, batch.x, batch.u)
    out = dict(zip(config.sg_layers, (_sg.apply_sg(p, hs[i], batch.y, batch.u)
                                       for i, p in zip(config.sg_layers, state.sg))))
    arriving = output_gradient(config.loss, hs[-1], batch.y)
    delta, targets = [None] * (L + 1), {}
    for i in range(L, 0, -1):
        if i in out:
            targets[i], delta[i] = arriving, out[i]
        else:
            delta[i] = arriving
        arriving = mm(delta[i], state.net[i - 1]["W"].T)
    true = None
    if with_true:
        true = [None] * (L + 1)
        true[L] = output_gradient(config.loss, hs[-1], batch.y)
        for i in range(L, 0, -1):
            true[i - 1] = mm(true[i], state.net[i - 1]["W"].T)
    order = config.sg_layers
    return Signals(hs, delta, tuple(out[i] for i in order), tuple(targets[i] for i in order), true)


def _gradients(config: Config, state: State, batch: Batch):
    sig = signals(config, state, batch)
    w = batch.weight
    net = []
    for i, layer in enumerate(state.net, start=1):
        g = {"W": w * mm(sig.h[i - 1].T, sig.delta[i])}
        if "b" in layer:
            g["b"] = w * mm(batch.u, sig.delta[i])
        net.append(g)
    sg, rates = [], []
    for j, i in enumerate(config.sg_layers):
        g = jax.grad(_sg.sg_loss)(state.sg[j], sig.h[i], batch.y, batch.u, sig.targets[j], w)
        sg.append(g)
        if config.sg_step == "line-search":
            rates.append(_sg.line_search_rate(g, sig.h[i], batch.y, batch.u, w))
    return State(tuple(net), tuple(sg)), tuple(rates)


def _batch(config: Config, problem, key):
    if config.batch_size is None:
        return full_batch(config, problem)
    if key is None:
        raise InputError("minibatch SGD: step() needs a key")
    return minibatch(config, problem, key)


def gradients(config: Config, problem, state: State, *, key=None) -> State:
    """The rule's update directions: model parameters get their (synthetic) gradient, each SG module the
    gradient of its regression loss.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: where to evaluate them.
        key: draws the minibatch (minibatch SGD only).

    Returns:
        A :class:`State` of directions, the same structure as ``state``.
    """
    return _gradients(config, state, _batch(config, problem, key))[0]


def step(config: Config, problem, state: State, alpha, beta, *, key=None, with_gradients: bool = False):
    """One update θ ← θ − α∂θ, ψ ← ψ − β∂ψ (β ← exact line-search β* when ``config.sg_step`` says so).

    Pure and jit/vmap-able; ``alpha`` and ``beta`` may be traced.

    Args:
        config: the model and its rule.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the current :class:`State`.
        alpha: the model's learning rate α.
        beta: the SG modules' learning rate β (unused with the line search).
        key: draws the minibatch (minibatch SGD only; required then).
        with_gradients: also return the update directions.

    Returns:
        The new :class:`State`, or ``(new_state, gradients)`` with ``with_gradients=True`` (the directions
        at the old state, as :func:`gradients` would return them).
    """
    grads, rates = _gradients(config, state, _batch(config, problem, key))
    net = jax.tree_util.tree_map(lambda p, g: p - alpha * g, state.net, grads.net)
    if config.sg_step == "line-search":
        sg = tuple(jax.tree_util.tree_map(lambda p, g, r=r: p - r * g, ps, gs)
                   for ps, gs, r in zip(state.sg, grads.sg, rates))
    else:
        sg = jax.tree_util.tree_map(lambda p, g: p - beta * g, state.sg, grads.sg)
    return (State(net, sg), grads) if with_gradients else State(net, sg)


def loss(config: Config, problem, state: State):
    """The model's true full-batch loss E[ℓ(p, y)] (moment rows for MSE, samples for log loss).

    Args:
        config: the model and its loss.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the parameters.

    Returns:
        The loss, a scalar array.
    """
    batch = full_batch(config, problem)
    p = forward(state.net, batch.x, batch.u)[-1]
    return loss_value(config.loss, p, batch.y, batch.weight)


def sg_loss(config: Config, problem, state: State):
    """Sum over SG modules of their full-batch regression loss ½ E‖SG_i − t_i‖² (0 without SG).

    Args:
        config: the model and its SG modules.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the parameters.

    Returns:
        The summed loss, a scalar array.
    """
    batch = full_batch(config, problem)
    sig = signals(config, state, batch)
    total = jnp.zeros((), batch.x.dtype)
    for j, i in enumerate(config.sg_layers):
        total = total + _sg.sg_loss(state.sg[j], sig.h[i], batch.y, batch.u, sig.targets[j], batch.weight)
    return total


def effective(state: State):
    """The end-to-end linear map p = x W_eff + b_eff of a (deep) linear model.

    Args:
        state: the parameters (``state.net`` is used).

    Returns:
        ``(W_eff (d, k), b_eff (k,))`` (``b_eff`` zero without bias).
    """
    W = state.net[0]["W"]
    b = state.net[0].get("b", jnp.zeros((W.shape[1],), W.dtype))
    for layer in state.net[1:]:
        b = mm(b, layer["W"]) + layer.get("b", 0.0)
        W = mm(W, layer["W"])
    return W, b


@functools.partial(jax.jit, static_argnums=0)
def fit_sg(config: Config, problem, state: State) -> State:
    """Refit every linear SG module by least squares onto its current target, top module first.

    For bootstrapped SGs each module's target uses the already refitted module above. With MSE and a
    cond-linear SG the fit is exact (Czarnecki et al. 2017: ∂L/∂h is linear in (h, y, 1)). Compiled
    (one program, not a least-squares solver dispatched op by op).
    """
    if config.sg not in ("linear", "cond-linear"):
        raise InputError(f"fit_sg: needs a linear SG (linear or cond-linear), not {config.sg!r}")
    batch = full_batch(config, problem)
    sg = list(state.sg)
    for j in reversed(range(len(config.sg_layers))):
        i = config.sg_layers[j]
        sig = signals(config, State(state.net, tuple(sg)), batch)
        h = sig.h[i]
        feats = [h, batch.y, batch.u[:, None]] if config.sg == "cond-linear" else [h, batch.u[:, None]]
        coef = jnp.linalg.lstsq(jnp.concatenate(feats, axis=1), sig.targets[j])[0]
        w = h.shape[1]
        new = {"A": coef[:w], "C": coef[-1]}
        if config.sg == "cond-linear":
            new["B"] = coef[w:-1]
        sg[j] = new
    return State(state.net, tuple(sg))


__all__ = ["State", "Batch", "Signals", "init", "step", "gradients", "loss", "sg_loss", "signals", "forward",
           "full_batch", "minibatch", "effective", "fit_sg", "output_gradient", "loss_value"]
