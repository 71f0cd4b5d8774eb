"""The ε-tracking sufficient condition for SG convergence (claim C3), and controlled SG errors.

Czarnecki et al. (2017, arXiv 1703.00522, section 3.2) give a sufficient condition for training
with a synthetic gradient at activations ``h`` to converge to a solution of the original problem:
at every step,

    ε_t K_t ≤ ‖∂L/∂θ‖ (1 − δ) / (1 + δ)      for some δ ∈ (0, 1),

where ε_t = ‖SG − ∂L/∂h‖ is the SG's tracking error, K_t = ‖∂h/∂θ‖ the operator norm of the
Jacobian of the activations w.r.t. the parameters below ``h``, and ∂L/∂θ the true gradient of
those parameters. The SG update is ``SG·∂h/∂θ`` = ``∂L/∂θ + e·∂h/∂θ`` with ‖e·∂h/∂θ‖ ≤ εK, so the
condition keeps the update within a cone around the true gradient: a descent direction.

Scaling convention. For rows ``H`` (m, d) and a loss L = ω Σ_rows ℓ(h_r, y_r) (ω = 1/n for n samples,
1 for the moment rows of :mod:`sgtheory.linear.problems`), an SG module outputs per-row estimates
``S`` (m, d) of the per-row gradients ``T`` = ∂ℓ_r/∂h_r, and the update it drives is ω S·∂H/∂θ. So

    ε = ω‖S − T‖_F,   K = σ_max(∂vec H / ∂θ),   ‖∂L/∂θ‖ = ω‖vec(T)ᵀ ∂vec H/∂θ‖_2.

``h_fn(θ) -> H`` may be any JAX function of a parameter pytree; K is found by power iteration on
JᵀJ through ``jax.jvp``/``jax.vjp`` (the Jacobian is never formed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from sgtheory.errors import InputError

__all__ = ["Tracking", "jacobian_norm", "tracking_terms", "condition_holds", "allowed_error",
           "injected_gradient", "terms_at", "injected_step"]


class Tracking(NamedTuple):
    """Terms of the C3 condition at one step (scalars).

    ``eps`` = ω‖S − T‖_F; ``K`` = ‖∂H/∂θ‖_2; ``grad_norm`` = ‖∂L/∂θ‖; ``ratio`` = εK/‖∂L/∂θ‖
    (the condition holds for δ iff ratio ≤ (1−δ)/(1+δ); inf where the true gradient is 0 and ε > 0).
    """

    eps: jnp.ndarray
    K: jnp.ndarray
    grad_norm: jnp.ndarray
    ratio: jnp.ndarray


def jacobian_norm(h_fn: Callable, theta, *, iters: int = 50, key=None) -> jnp.ndarray:
    """σ_max of ∂vec h_fn(θ)/∂θ by ``iters`` power iterations on JᵀJ (J never formed).

    Converges geometrically in the ratio of the top two singular values; 50 iterations give ~machine
    precision for the well-separated spectra of linear layers, and the estimate is always a lower bound
    on the true norm.

    Args:
        h_fn: θ -> activations.
        theta: the parameters (a pytree).
        iters: power iterations.
        key: seeds the start vector (default PRNGKey(0)).

    Returns:
        The estimate, a scalar array.
    """
    flat, unravel = ravel_pytree(theta)
    f = lambda v: jnp.ravel(h_fn(unravel(v)))
    _, vjp = jax.vjp(f, flat)
    v = jax.random.normal(jax.random.PRNGKey(0) if key is None else key, flat.shape, flat.dtype)
    v = v / jnp.linalg.norm(v)

    def body(_, v):
        jv = jax.jvp(f, (flat,), (v,))[1]
        w = vjp(jv)[0]
        nw = jnp.linalg.norm(w)
        return jnp.where(nw > 0, w / jnp.where(nw > 0, nw, 1.0), v)

    v = jax.lax.fori_loop(0, iters, body, v)
    return jnp.linalg.norm(jax.jvp(f, (flat,), (v,))[1])


def tracking_terms(h_fn: Callable, theta, sg_rows, true_rows, weight=1.0, *, iters: int = 50) -> Tracking:
    """ε, K, ‖∂L/∂θ‖ and εK/‖∂L/∂θ‖ at parameters ``theta``. See the module docstring for the scaling.

    Args:
        h_fn: ``theta -> H`` (m, d), the activations the SG is attached to.
        theta: the parameters below the SG.
        sg_rows: the SG's per-row outputs S (m, d).
        true_rows: the per-row true gradients T = ∂ℓ_r/∂h_r (m, d).
        weight: the row weight ω of the loss L = ω Σ_rows ℓ.
        iters: power iterations of :func:`jacobian_norm`.

    Returns:
        The :class:`Tracking` terms.
    """
    H = h_fn(theta)
    S = jnp.asarray(sg_rows)
    T = jnp.asarray(true_rows)
    if S.shape != H.shape or T.shape != H.shape:
        raise InputError(f"SG outputs {S.shape} and true gradients {T.shape} must match activations {H.shape}")
    G = weight * T
    eps = weight * jnp.linalg.norm(S - T)
    K = jacobian_norm(h_fn, theta, iters=iters)
    _, vjp = jax.vjp(h_fn, theta)
    grad_norm = jnp.linalg.norm(ravel_pytree(vjp(G)[0])[0])
    ratio = jnp.where(grad_norm > 0, eps * K / jnp.where(grad_norm > 0, grad_norm, 1.0),
                      jnp.where(eps * K > 0, jnp.inf, 0.0))
    return Tracking(eps, K, grad_norm, ratio)


def condition_holds(terms: Tracking, delta: float) -> jnp.ndarray:
    """Whether εK ≤ ‖∂L/∂θ‖(1−δ)/(1+δ) (elementwise over any leading time axis).

    Args:
        terms: the :class:`Tracking` terms.
        delta: δ in [0, 1).

    Returns:
        Boolean, shaped like ``terms.eps``.
    """
    if not 0.0 < float(delta) < 1.0:
        raise InputError(f"delta: must lie in (0, 1), got {delta!r}")
    return terms.ratio <= (1.0 - delta) / (1.0 + delta)


def allowed_error(terms: Tracking, delta: float) -> jnp.ndarray:
    """The largest ε the condition allows: ‖∂L/∂θ‖(1−δ)/((1+δ)K).

    Args:
        terms: the :class:`Tracking` terms (any leading axes).
        delta: δ in [0, 1).

    Returns:
        The allowed ε, shaped like ``terms.eps``.
    """
    if not 0.0 < float(delta) < 1.0:
        raise InputError(f"delta: must lie in (0, 1), got {delta!r}")
    return terms.grad_norm * (1.0 - delta) / ((1.0 + delta) * terms.K)


def injected_gradient(true_grad, size, *, direction: str = "adversarial", key=None) -> jnp.ndarray:
    """An SG output ``G + e`` with a controlled error of Frobenius norm ‖e‖ = ``size``.

    Where G = 0 the adversarial error is 0 (no direction to oppose).

    Args:
        true_grad: G (m, d), the true gradients (per row, or already weighted: the error is added on the
            same scale).
        size: ‖e‖.
        direction: ``"adversarial"``: e = −size · G/‖G‖, opposing the true gradient (the worst case for
            descent among errors parallel to G; with size > ‖G‖ the update ascends); ``"random"``:
            e = size · u with u uniform on the unit sphere (needs ``key``).
        key: the JAX PRNG key of a random direction.

    Returns:
        G + e (m, d).
    """
    G = jnp.asarray(true_grad)
    if direction == "adversarial":
        nG = jnp.linalg.norm(G)
        u = jnp.where(nG > 0, -G / jnp.where(nG > 0, nG, 1.0), 0.0)
    elif direction == "random":
        if key is None:
            raise InputError("injected_gradient: direction 'random' needs a PRNG key")
        u = jax.random.normal(key, G.shape, G.dtype)
        u = u / jnp.linalg.norm(u)
    else:
        raise InputError(f"direction: unknown value {direction!r}; choose from adversarial, random")
    return G + size * u


def _activations(batch):
    """h_fn(layers) -> the top activation of ``layers`` applied to the batch rows."""
    from sgtheory.linear.rules import forward

    return lambda layers: forward(layers, batch.x, batch.u)[-1]


def terms_at(config, problem, state, *, iters: int = 50) -> Tracking:
    """The C3 terms for a model trained with one SG module (``config.sg_layers`` = (k,)) at ``state``.

    θ are the layers 1..k below the SG (the ones its output drives); S its output and T the true
    gradient ∂ℓ/∂h_k on the full batch. ``jax.vmap`` it over a recorded trajectory's states.

    Args:
        config: the model and its one SG module.
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        state: the parameters.
        iters: power iterations of :func:`jacobian_norm`.

    Returns:
        The :class:`Tracking` terms.
    """
    from sgtheory.linear.rules import full_batch, signals

    if len(config.sg_layers) != 1:
        raise InputError("tracking: needs exactly one SG module (sg_layer a single layer, not 'all')")
    k = config.sg_layers[0]
    batch = full_batch(config, problem)
    sig = signals(config, state, batch, with_true=True)
    h_fn = _activations(batch)
    return tracking_terms(h_fn, state.net[:k], sig.sg_out[0], sig.true[k], batch.weight, iters=iters)


def injected_step(config, problem, net, alpha, scale, delta, *, layer: int, direction: str = "adversarial",
                  key=None, iters: int = 50):
    """One gradient step in which the signal at activation ``layer`` is the true gradient plus an error.

    The layers above ``layer`` get their true gradient; layers 1..``layer`` get (G + e)·∂h/∂θ with
    ‖e‖ = ``scale`` × :func:`allowed_error` (δ = ``delta``): ``scale`` ≤ 1 satisfies the C3 condition at
    this step, ``scale`` > 1 violates it by that factor. jit/vmap-able in ``alpha``, ``scale`` and ``delta``.

    Args:
        config: the model (its loss).
        problem: the :class:`~sgtheory.linear.problems.Problem`.
        net: the layers (``State.net``, a tuple of layer dicts).
        alpha: the learning rate.
        scale: the error's size in units of the allowed one.
        delta: δ of the condition.
        layer: the activation the error enters at.
        direction, key: as in :func:`injected_gradient`.
        iters: power iterations of :func:`jacobian_norm`.

    Returns:
        ``(new_net, Tracking)``, the terms of the *corrupted* signal (ε = ‖e‖).
    """
    from sgtheory.linear.rules import forward, full_batch, loss_value

    batch = full_batch(config, problem)
    h_fn = _activations(batch)
    below, above = net[:layer], net[layer:]
    H, vjp_below = jax.vjp(h_fn, below)

    def loss_above(H, above):
        p = forward(above, H, batch.u)[-1]
        return loss_value(config.loss, p, batch.y, batch.weight)

    G, g_above = jax.grad(loss_above, argnums=(0, 1))(H, above)
    K = jacobian_norm(h_fn, below, iters=iters)
    gn = jnp.linalg.norm(ravel_pytree(vjp_below(G)[0])[0])
    size = scale * gn * (1.0 - delta) / ((1.0 + delta) * K)
    signal = injected_gradient(G, size, direction=direction, key=key)
    g_below = vjp_below(signal)[0]
    eps = jnp.linalg.norm(signal - G)
    ratio = jnp.where(gn > 0, eps * K / jnp.where(gn > 0, gn, 1.0), 0.0)
    grads = tuple(g_below) + tuple(g_above)
    new = jax.tree_util.tree_map(lambda p, g: p - alpha * g, tuple(net), grads)
    return new, Tracking(eps, K, gn, ratio)
