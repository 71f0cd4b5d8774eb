"""Why a bootstrapped recurrent SG settles or diverges: window Jacobians, backward gains, target magnitudes.

At the boundary ``b`` of window ``k`` the SG regresses onto ``δ_b = r_b + γ J_bᵀ ĝ_{b+T}``, with
``r_b = ∂L_k/∂s_b`` (the in-window gradient), ``J_b = ∂s_{b+T}/∂s_b`` (the window's state Jacobian) and
``ĝ_{b+T}`` the SG at the exit. Unrolled, the quantity it estimates is the discounted future gradient

    g^γ_b = r_b + γ J_bᵀ r_{b+T} + γ² J_bᵀ J_{b+T}ᵀ r_{b+2T} + …,

which is finite only when ``γ`` times the growth per window of a cotangent pulled backwards through the
windows stays below 1. That growth is the backward Lyapunov gain ``G_T = exp(mean_k log‖J_kᵀ v_k‖)``
(``v_k`` the unit cotangent carried back from later windows); ``γ·G_T`` is the SG's effective TD
contraction. For a linear core ``G_T → ρ(A)^T`` and ``γ·ρ(A)^T < 1`` is the existence condition of
the bootstrapped fixed point (``../shared/rnn_dni_notes.md`` §8.3, §8.5). The worst case over
directions is the spectral norm ``‖J_b‖₂``, and the gain on the SG's own output is ``γ‖J_bᵀ ĝ‖ / ‖ĝ‖``.

The SG's regression has a second, independent way to fail: Adam moves every weight by about its
learning rate per step whatever the gradient's size, so a linear SG's output moves by up to
``sg_lr·‖s_b‖₁`` per step; when the states are large (an LSTM's cell state is an unbounded integrator)
that step can dwarf the target, and the overshooting SG, injected into the core, can drive the states
further out (``sg_step_ratio``, ``state_rms``, ``state_max``).

:func:`diagnose` returns these numbers for one batch under the current parameters (nothing is
updated); :func:`sgtheory.rnn.train` records them along training when given ``diagnostics=True``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory.rnn.cores import core_step
from sgtheory.rnn.window import Batch, Numbers, Params, Rule, run_sequence

DIAGNOSTICS = ("jac_norm", "jac_norm_max", "backward_gain", "contraction", "sg_gain", "grad_rms", "sg_rms",
               "boot_rms", "target_rms", "sg_error_rms", "state_rms", "state_max",
               "sg_step_ratio")


def _windows(rule: Rule, xs):
    T = rule.truncation
    K = xs.shape[0] // T
    return xs[: K * T].reshape((K, T) + xs.shape[1:])


def boundary_states(rule: Rule, core: dict, s0, xs):
    """The states ``s_{kT}`` entering every window ``k = 0..K−1``.

    Args:
        rule: the window algorithm's static settings (its truncation T).
        core: the core's parameters.
        s0: the start state ``(B, S)``.
        xs: inputs ``(K·T, B, ...)``.

    Returns:
        ``(K, B, S)``.
    """

    def window(s, x_w):
        s_end = jax.lax.fori_loop(0, rule.truncation, lambda t, s: core_step(rule.core, core, s, x_w[t]), s)
        return s_end, s

    _, states = jax.lax.scan(window, s0, _windows(rule, xs))
    return states


def _window_map(rule: Rule, core: dict, x_w):
    return lambda s: jax.lax.fori_loop(0, rule.truncation, lambda t, s: core_step(rule.core, core, s, x_w[t]), s)


def window_jacobian_norms(rule: Rule, core: dict, s0, xs, *, key, iters: int = 20):
    """Spectral norm ``‖∂s_{b+T}/∂s_b‖₂`` of every window's state Jacobian, per sequence, by power iteration.

    Args:
        rule: window settings (``core``, ``truncation``).
        core: core parameters.
        s0: entry state ``(B, S)``.
        xs: inputs ``(L, B, n_in)``, time-major.
        key: JAX PRNG key for the start vectors.
        iters: power iterations on ``JᵀJ`` (each a JVP and a VJP of the window).

    Returns:
        ``(K, B)`` estimates (from below; exact in the limit of many iterations).
    """
    states = boundary_states(rule, core, s0, xs)

    def one(s_b, x_w, v):
        f = _window_map(rule, core, x_w)
        _, pull = jax.vjp(f, s_b)

        def step(v, _):
            u = jax.jvp(f, (s_b,), (v,))[1]
            w = pull(u)[0]
            return w / jnp.maximum(jnp.linalg.norm(w, axis=-1, keepdims=True), 1e-30), None

        v, _ = jax.lax.scan(step, v, None, length=iters)
        return jnp.linalg.norm(jax.jvp(f, (s_b,), (v,))[1], axis=-1)

    v0 = jax.random.normal(key, states.shape, states.dtype)
    v0 = v0 / jnp.linalg.norm(v0, axis=-1, keepdims=True)
    return jax.vmap(one)(states, _windows(rule, xs), v0)


def backward_log_gains(rule: Rule, core: dict, s0, xs, *, key):
    """Log growth ``log‖J_kᵀ v_k‖`` of a unit cotangent pulled back through each window, last window first.

    ``v`` starts random at the last exit and is renormalised after every window, so the mean over
    windows estimates the backward Lyapunov exponent per window (its exponential is ``G_T``).

    Args:
        rule, core, s0, xs: as :func:`window_jacobian_norms`.
        key: JAX PRNG key for the starting cotangent.

    Returns:
        ``(K, B)`` log gains (window order).
    """
    states = boundary_states(rule, core, s0, xs)
    v0 = jax.random.normal(key, s0.shape, s0.dtype)
    v0 = v0 / jnp.linalg.norm(v0, axis=-1, keepdims=True)

    def back(v, w):
        s_b, x_w = w
        u = jax.vjp(_window_map(rule, core, x_w), s_b)[1](v)[0]
        n = jnp.maximum(jnp.linalg.norm(u, axis=-1), 1e-30)
        return u / n[:, None], jnp.log(n)

    _, logs = jax.lax.scan(back, v0, (states, _windows(rule, xs)), reverse=True)
    return logs


def bootstrap_terms(rule: Rule, params: Params, s0, batch: Batch, nums: Numbers):
    """Per-window norms of the SG target's parts under the current parameters (no update).

    Args:
        rule: an SG method's settings.
        params, s0, batch, nums: as :func:`sgtheory.rnn.window.run_sequence`.

    Returns:
        ``{"grad", "sg", "boot", "target", "error"}``, each ``(K, B)``: ``‖r_b‖``, ``‖ĝ‖`` at the exit,
        ``‖γ J_bᵀ ĝ‖``, ``‖δ_b‖`` and ``‖M(s_b) − δ_b‖`` (the last for windows ``k ≥ 1``, whose entry SG
        is the previous window's exit SG; row 0 is the error of a zero prediction).
    """
    out = run_sequence(rule, params, None, s0, batch, nums, train=False)
    r = run_sequence(rule, params, None, s0, batch, nums, exits=jnp.zeros_like(out.exits), train=False).targets
    entry = jnp.concatenate([jnp.zeros_like(out.exits[:1]), out.exits[:-1]], axis=0)
    norm = lambda a: jnp.linalg.norm(a, axis=-1)
    return {"grad": norm(r), "sg": norm(out.exits), "boot": norm(out.targets - r), "target": norm(out.targets),
            "error": norm(entry - out.targets)}


def diagnose(rule: Rule, params: Params, s0, batch: Batch, nums: Numbers, *, key, iters: int = 20) -> dict:
    """The stability numbers of one batch (see the module docstring); every value a scalar.

    Args:
        rule, params, s0, batch, nums: as :func:`sgtheory.rnn.window.run_sequence` (an SG method).
        key: JAX PRNG key (start vectors).
        iters: power iterations for the spectral norms.

    Returns:
        ``jac_norm`` (median over windows and sequences of ``‖J_b‖₂``) and ``jac_norm_max``;
        ``backward_gain`` ``G_T`` (geometric mean) and ``contraction`` ``γ·G_T``; ``sg_gain`` (median of
        ``γ‖J_bᵀĝ‖/‖ĝ‖`` where ``ĝ ≠ 0``); root mean squares of ``r_b``, ``ĝ``, ``γJ_bᵀĝ``, ``δ_b`` and of
        the SG's error ``M(s_b) − δ_b`` (``grad_rms``, ``sg_rms``, ``boot_rms``, ``target_rms``,
        ``sg_error_rms``; norms per sequence); ``state_rms`` (of ``‖s_b‖``, the SG's input) and
        ``state_max`` (largest ``|s_b|`` entry: an LSTM's cell state is unbounded); ``sg_step_ratio``:
        how far one Adam step of a linear SG moves an output, ``sg_lr·(E‖s_b‖₁ + 1)`` (every weight and
        the bias move by up to ``sg_lr``), over the target's RMS per output, ``target_rms/√S`` — above 1
        the SG's first steps overshoot what they regress onto.
    """
    k1, k2 = jax.random.split(key)
    jn = window_jacobian_norms(rule, params.core, s0, batch.xs, key=k1, iters=iters)
    logs = backward_log_gains(rule, params.core, s0, batch.xs, key=k2)
    terms = bootstrap_terms(rule, params, s0, batch, nums)
    states = boundary_states(rule, params.core, s0, batch.xs)
    on = terms["sg"] > 0
    ratio = jnp.where(on, terms["boot"] / jnp.where(on, terms["sg"], 1.0), jnp.nan)
    gain = jnp.exp(jnp.mean(logs))
    rms = lambda a: jnp.sqrt(jnp.mean(a ** 2))
    return {"jac_norm": jnp.median(jn), "jac_norm_max": jnp.max(jn), "backward_gain": gain,
            "contraction": nums.target_discount * gain, "sg_gain": jnp.nanmedian(ratio),
            "grad_rms": rms(terms["grad"]), "sg_rms": rms(terms["sg"]), "boot_rms": rms(terms["boot"]),
            "target_rms": rms(terms["target"]), "sg_error_rms": rms(terms["error"][1:]),
            "state_rms": rms(jnp.linalg.norm(states, axis=-1)), "state_max": jnp.max(jnp.abs(states)),
            "sg_step_ratio": nums.sg_lr * (jnp.mean(jnp.sum(jnp.abs(states), -1)) + 1.0)
            / jnp.maximum(rms(terms["target"]) / jnp.sqrt(jnp.asarray(states.shape[-1], states.dtype)), 1e-30)}


__all__ = ["DIAGNOSTICS", "backward_log_gains", "bootstrap_terms", "boundary_states", "diagnose",
           "window_jacobian_norms"]
