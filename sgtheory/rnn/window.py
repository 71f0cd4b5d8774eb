"""The window algorithm: truncated BPTT with a synthetic gradient at every truncation boundary.

A sequence of ``L`` steps is cut into ``K = L / T`` half-open windows ``[b, b + T)``, ``b = kT``.
Window ``k`` starts from the carried state ``s_b`` (a constant: nothing flows back across a
boundary except the synthetic gradient) and computes

    s_{b+j+1} = f_θ(s_{b+j}, x_{b+j}),   L_k = Σ_j m_{b+j} ℓ(readout(s_{b+j+1}), y_{b+j}),

so a step's own loss belongs to exactly one window. Its exit gets ``ĝ = M(s_{b+T}[, u_{k+1}])``, a
constant, zero when the sequence has ended by ``b + T`` (Jaderberg et al. 2017, §3.1; see
``../shared/rnn_dni_notes.md`` §1). One VJP of ``(L_k, s_{b+T})`` with cotangents ``(1, s·ĝ)``
gives the core's gradient and, when ``γ = s``, the SG's target at the entry

    δ_b = ∂L_k/∂s_b + γ (∂s_{b+T}/∂s_b)ᵀ ĝ;

otherwise (``γ ≠ s``, or an auxiliary loss) a second pull of the same VJP with ``(1, γĝ)`` gives it.
``M`` regresses onto ``δ_b``: ``mean_n ‖M(s_b[, u_k]) − δ_b‖²`` (its own gradient only: the SG loss
never reaches the core, and the task loss never reaches ``M``). DNI + Aux adds
``λ Σ_j ‖P(s_{b+j}) − ĝ‖²`` over the window's states ``s_{b+1..b+T}``; its gradient reaches the core.

Losses are summed over the batch inside a window, so ``δ_b`` is each sequence's own gradient; the
core's gradient is divided by the batch size before its update. Core (with the aux head) and SG
have separate Adam optimisers and separate global-norm clips; updates happen after every window
(``update="window"``, truncated BPTT as run online) or once per sequence (``"sequence"``: the sum
over windows, params fixed during the sequence — the setting of the exact identities in the tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sgtheory.rnn.cores import core_step, readout
from sgtheory.rnn.sg import apply_aux, apply_sg

UPDATES = ("window", "sequence")
LOSSES = ("bce", "softmax")


class Batch(NamedTuple):
    """A batch of sequences, time-major.

    ``xs`` ``(L, B, n_in)``; ``ys`` ``(L, B, n_out)`` floats in [0, 1] (``bce``) or ``(L, B)`` ints
    (``softmax``); ``mask`` ``(L, B)``: weight of each step's loss; ``end`` (int scalar): steps
    ``≥ end`` are padding; ``cont`` (bool scalar): the sequence goes on after step ``L`` (a text
    stream), so the last window's exit gets ``M(s_L)`` instead of 0; ``ys_next``/``mask_next``
    ``(T, B[, n_out])``: the first window after ``L`` (read by cDNI's conditioning only).
    """

    xs: Any
    ys: Any
    mask: Any
    end: Any
    cont: Any
    ys_next: Any
    mask_next: Any


class Rule(NamedTuple):
    """Static settings of the window algorithm (hashable; part of the compiled program).

    ``core``: ``"lstm"`` | ``"tanh"``; ``loss``: ``"bce"`` | ``"softmax"``; ``n_out``: logits;
    ``truncation``: ``T``; ``uses_sg``, ``conditioned``, ``has_aux``, ``two_pass``: from the method;
    ``update``: ``"window"`` | ``"sequence"``; ``sg_input``: how the SG reads the state (``"raw"`` |
    ``"rms"``, :func:`sgtheory.rnn.sg.sg_features`).
    """

    core: str
    loss: str
    n_out: int
    truncation: int
    uses_sg: bool = False
    conditioned: bool = False
    has_aux: bool = False
    two_pass: bool = False
    update: str = "window"
    sg_input: str = "raw"


class Numbers(NamedTuple):
    """Numeric settings as data (vmappable): learning rates, clip norms, SG scale and discount, aux weight."""

    lr: Any
    sg_lr: Any
    clip: Any
    sg_clip: Any
    inject_scale: Any
    target_discount: Any
    aux_weight: Any


class Params(NamedTuple):
    """``core`` (with its readout), ``aux`` (DNI + Aux head, ``{}`` otherwise), ``sg`` (``{}`` without SG)."""

    core: dict
    aux: dict
    sg: dict


class WindowCredit(NamedTuple):
    """One window's result: gradients summed over the batch, SG target ``(B, S)``, losses, exit state and exit SG."""

    core_grad: Any
    aux_grad: Any
    target: Any
    loss: Any
    aux_loss: Any
    s_end: Any
    exit_sg: Any


def step_loss(kind: str, logits, y):
    """Per-sequence loss of one step in nats.

    Args:
        kind: ``"bce"`` (sigmoid cross-entropy summed over channels) or ``"softmax"`` (softmax
            cross-entropy with an integer target).
        logits: ``(B, n_out)``.
        y: targets ``(B, n_out)`` (``bce``) or ``(B,)`` (``softmax``).

    Returns:
        ``(B,)``.
    """
    if kind == "bce":
        return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, y), axis=-1)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def window_condition(rule: Rule, ys, mask):
    """cDNI's conditioning vector for a window: the masked targets (one-hot for ``softmax``) and the mask,
    flattened per sequence.

    Args:
        rule: the window algorithm's static settings.
        ys: the window's targets ``(T, B[, n_out])``.
        mask: its loss weights ``(T, B)``.

    Returns:
        ``(B, T·(n_out + 1))``.
    """
    y = jax.nn.one_hot(ys, rule.n_out, dtype=mask.dtype) if rule.loss == "softmax" else ys.astype(mask.dtype)
    parts = jnp.concatenate([y * mask[..., None], mask[..., None]], axis=-1)  # (T, B, n_out + 1)
    return jnp.moveaxis(parts, 0, 1).reshape(parts.shape[1], -1)


def cond_size(rule: Rule) -> int:
    """Length of cDNI's conditioning vector (0 for the other methods).

    Args:
        rule: the window algorithm's static settings.

    Returns:
        The length.
    """
    return rule.truncation * (rule.n_out + 1) if rule.conditioned else 0


def window_credit(rule: Rule, core: dict, aux: dict, s0, xs, ys, mask, exit_sg: Callable,
                  nums: Numbers) -> WindowCredit:
    """Gradients of one window (see the module docstring); ``exit_sg(s_end) -> ĝ`` gives the exit SG.

    Args:
        rule: static settings.
        core, aux: parameters of the core and of the aux head.
        s0: the carried entry state ``(B, S)``.
        xs, ys, mask: the window's inputs, targets and loss weights, time-major, ``T`` steps.
        exit_sg: maps the exit state ``(B, S)`` to the (constant) exit SG ``(B, S)``.
        nums: numeric settings (``inject_scale``, ``target_discount``, ``aux_weight`` are used).

    Returns:
        :class:`WindowCredit` with the core's gradient and the SG's target summed over the batch.
    """

    def forward(core, s):
        def step(s, inp):
            x, y, m = inp
            s = core_step(rule.core, core, s, x)
            return s, (step_loss(rule.loss, readout(rule.core, core, s), y) * m, s)

        s_end, (losses, states) = jax.lax.scan(step, s, (xs, ys, mask))
        return (jnp.sum(losses), s_end, states) if rule.has_aux else (jnp.sum(losses), s_end)

    out, pull = jax.vjp(forward, core, s0)
    loss, s_end = out[0], out[1]
    g = jax.lax.stop_gradient(exit_sg(s_end))
    one = jnp.ones_like(loss)
    aux_grad, aux_loss = {}, jnp.zeros_like(loss)
    if rule.has_aux:
        def aux_objective(aux, states):
            return nums.aux_weight * jnp.sum((apply_aux(aux, states) - g[None]) ** 2)

        aux_loss, (aux_grad, states_cot) = jax.value_and_grad(aux_objective, argnums=(0, 1))(aux, out[2])
        core_grad, entry = pull((one, nums.inject_scale * g, states_cot))
        target = pull((one, nums.target_discount * g, jnp.zeros_like(states_cot)))[1]
    else:
        core_grad, entry = pull((one, nums.inject_scale * g))
        target = pull((one, nums.target_discount * g))[1] if rule.two_pass else entry
    return WindowCredit(core_grad, aux_grad, target, loss, aux_loss, s_end, g)


def _clip(grads, max_norm):
    norm = jnp.sqrt(sum(jnp.sum(g ** 2) for g in jax.tree_util.tree_leaves(grads)))
    factor = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-30))
    return jax.tree_util.tree_map(lambda g: g * factor.astype(g.dtype), grads)


def adam_update(params, grads, opt_state, lr, max_norm, active):
    """Clip ``grads`` to global norm ``max_norm`` and take one Adam step at rate ``lr``.

    Args:
        params: the parameters.
        grads: their gradients.
        opt_state: the Adam state.
        lr: the rate.
        max_norm: the clip norm.
        active: false for a window made of padding: everything is kept unchanged.

    Returns:
        ``(params, opt_state)``.
    """
    updates, new_state = optax.scale_by_adam().update(_clip(grads, max_norm), opt_state, params)
    new = jax.tree_util.tree_map(lambda p, u: p - (lr * u).astype(p.dtype), params, updates)
    keep = lambda a, b: jax.tree_util.tree_map(lambda x, y: jnp.where(active, x, y), a, b)
    return keep(new, params), keep(new_state, opt_state)


def init_opt_states(params: Params):
    """Adam states of the core (with the aux head) and of the SG module.

    Args:
        params: the :class:`Params`.

    Returns:
        ``(core with aux head, sg)`` Adam states.
    """
    adam = optax.scale_by_adam()
    return adam.init((params.core, params.aux)), adam.init(params.sg)


class SequenceOut(NamedTuple):
    """Result of :func:`run_sequence`.

    ``params``, ``opt_states``: after the updates; ``s_end``: the state after step ``L``;
    ``grads``: ``(core, aux, sg)`` gradients summed over windows (batch-averaged for core and aux);
    ``targets`` ``(K, B, S)``: the SG target at each window's entry; ``exits`` ``(K, B, S)``: the SG
    at each window's exit (before ``inject_scale``); ``loss``: task loss summed over steps and batch;
    ``aux_loss``; ``sg_loss``: mean over valid boundaries of ``mean_n ‖M − δ‖²``.
    """

    params: Params
    opt_states: Any
    s_end: Any
    grads: Any
    targets: Any
    exits: Any
    loss: Any
    aux_loss: Any
    sg_loss: Any


def run_sequence(rule: Rule, params: Params, opt_states, s0, batch: Batch, nums: Numbers,
                 exits=None, train: bool = True) -> SequenceOut:
    """Run the window algorithm over one batch of sequences, updating per window or per sequence.

    Args:
        rule: static settings (``rule.truncation`` must divide ``L``).
        params, opt_states: current parameters and Adam states (:func:`init_opt_states`; None when
            ``train`` is False).
        s0: entry state ``(B, S)``.
        batch: the sequences.
        nums: numeric settings.
        exits: optional ``(K, B, S)`` exit cotangents used instead of the SG module (an oracle in
            tests); the last window's exit is still zeroed when the sequence ends there.
        train: apply the updates (False: gradients only, parameters unchanged).

    Returns:
        :class:`SequenceOut`.
    """
    if opt_states is None:
        if train:
            raise ValueError("run_sequence: train=True needs the optimiser states")
        opt_states = ((), ())
    T = rule.truncation
    L, B = batch.xs.shape[0], batch.xs.shape[1]
    K = L // T
    split = lambda a: a.reshape((K, T) + a.shape[1:])
    xs, ys, mask = split(batch.xs), split(batch.ys), split(batch.mask)
    starts = jnp.arange(K) * T
    exit_on = ((starts + T) < batch.end) | (batch.cont & (jnp.arange(K) == K - 1))
    entry_on = starts < batch.end
    if rule.conditioned:
        conds = jax.vmap(lambda y, m: window_condition(rule, y, m))(ys, mask)  # (K, B, C)
        nxt = window_condition(rule, batch.ys_next, batch.mask_next)[None]
        exit_conds = jnp.concatenate([conds[1:], nxt], axis=0)
    else:
        conds = exit_conds = jnp.zeros((K, B, 0), s0.dtype)
    given = exits if exits is not None else jnp.zeros((K,) + s0.shape, s0.dtype)
    inv_b = jnp.asarray(1.0 / B, s0.dtype)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, (params.core, params.aux, params.sg))

    def body(carry, w):
        p, (opt_core, opt_sg), s, acc = carry
        x_w, y_w, m_w, cond, exit_cond, on_exit, on_entry, ex = w
        cond_in = cond if rule.conditioned else None
        exit_in = exit_cond if rule.conditioned else None

        def exit_sg(s_end):
            if exits is not None:
                g = ex
            elif rule.uses_sg:
                g = apply_sg(p.sg, s_end, exit_in, rule.sg_input)
            else:
                g = jnp.zeros_like(s_end)
            return jnp.where(on_exit, g, jnp.zeros_like(g))

        cr = window_credit(rule, p.core, p.aux, s, x_w, y_w, m_w, exit_sg, nums)
        core_g = jax.tree_util.tree_map(lambda a: a * inv_b, cr.core_grad)
        aux_g = jax.tree_util.tree_map(lambda a: a * inv_b, cr.aux_grad)
        if rule.uses_sg:
            def sg_objective(sg):
                err = apply_sg(sg, s, cond_in, rule.sg_input) - jax.lax.stop_gradient(cr.target)
                return jnp.where(on_entry, jnp.sum(err ** 2) * inv_b, 0.0)

            sg_l, sg_g = jax.value_and_grad(sg_objective)(p.sg)
        else:
            sg_l, sg_g = jnp.zeros((), s0.dtype), jax.tree_util.tree_map(jnp.zeros_like, p.sg)
        grads = (core_g, aux_g, sg_g)
        if train and rule.update == "window":
            (core, aux), opt_core = adam_update((p.core, p.aux), (core_g, aux_g), opt_core, nums.lr, nums.clip,
                                                on_entry)
            sg, opt_sg = adam_update(p.sg, sg_g, opt_sg, nums.sg_lr, nums.sg_clip, on_entry) if rule.uses_sg \
                else (p.sg, opt_sg)
            p = Params(core, aux, sg)
        acc = jax.tree_util.tree_map(jnp.add, acc, grads)
        rec = (cr.target, cr.exit_sg, cr.loss, cr.aux_loss * inv_b, sg_l)
        return (p, (opt_core, opt_sg), cr.s_end, acc), rec

    windows = (xs, ys, mask, conds, exit_conds, exit_on, entry_on, given)
    (p, opt, s_end, acc), (targets, used, losses, aux_losses, sg_losses) = jax.lax.scan(
        body, (params, opt_states, s0, zeros), windows)
    if train and rule.update == "sequence":
        opt_core, opt_sg = opt
        on = jnp.asarray(True)
        (core, aux), opt_core = adam_update((p.core, p.aux), acc[:2], opt_core, nums.lr, nums.clip, on)
        sg, opt_sg = adam_update(p.sg, acc[2], opt_sg, nums.sg_lr, nums.sg_clip, on) if rule.uses_sg else (p.sg, opt_sg)
        p, opt = Params(core, aux, sg), (opt_core, opt_sg)
    n_valid = jnp.maximum(jnp.sum(entry_on), 1)
    return SequenceOut(p, opt, s_end, acc, targets, used, jnp.sum(losses), jnp.sum(aux_losses),
                       jnp.sum(sg_losses) / n_valid)


__all__ = ["LOSSES", "UPDATES", "Batch", "Numbers", "Params", "Rule", "SequenceOut", "WindowCredit",
           "adam_update", "cond_size", "init_opt_states", "run_sequence", "step_loss", "window_condition",
           "window_credit"]
