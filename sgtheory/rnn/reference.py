"""Slow, obvious references for the window algorithm: full BPTT, truncated BPTT, true future gradients.

- :func:`sequence_loss` — the task loss of a whole sequence, one plain ``lax.scan`` (no windows);
  ``jax.grad`` of it is full BPTT.
- :func:`truncated_grads` — truncated BPTT as a Python loop over windows, each window's loss
  differentiated on its own from a ``stop_gradient`` entry state.
- :func:`future_gradients` — the true gradient of the strictly later losses with respect to the state
  carried across each boundary ``b_k = kT`` (``k = 0..K``), from one VJP of the whole sequence in which
  a zero perturbation is added to the carried state at every boundary. Row ``K`` (the end) is exactly
  0: nothing comes after it. Injected at window exits with scale 1 these are the oracle synthetic
  gradients that turn the window algorithm into full BPTT.

Losses are summed over steps and over the batch (as in :mod:`sgtheory.rnn.window`); gradients with
respect to parameters are divided by the batch size, those with respect to states are per sequence.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory.rnn.cores import core_step, readout
from sgtheory.rnn.window import Batch, Rule, step_loss


def sequence_loss(rule: Rule, core: dict, s0, xs, ys, mask):
    """Task loss ``Σ_t Σ_n m_t ℓ_t`` of whole sequences from state ``s0`` (nats, summed over the batch).

    Args:
        rule: the window algorithm's static settings.
        core: the core's parameters.
        s0: the start state ``(B, S)``.
        xs, ys, mask: inputs, targets and loss weights, time first.

    Returns:
        The loss, a scalar array.
    """

    def step(s, inp):
        x, y, m = inp
        s = core_step(rule.core, core, s, x)
        return s, step_loss(rule.loss, readout(rule.core, core, s), y) * m

    _, losses = jax.lax.scan(step, s0, (xs, ys, mask))
    return jnp.sum(losses)


def full_bptt_grad(rule: Rule, core: dict, s0, batch: Batch):
    """Full BPTT: ``∂/∂θ`` of :func:`sequence_loss` divided by the batch size.

    Args:
        rule: the window algorithm's static settings.
        core: the core's parameters θ.
        s0: the start state ``(B, S)``.
        batch: the sequences.

    Returns:
        The gradient, shaped like ``core``.
    """
    grad = jax.grad(sequence_loss, argnums=1)(rule, core, s0, batch.xs, batch.ys, batch.mask)
    return jax.tree_util.tree_map(lambda g: g / batch.xs.shape[1], grad)


def truncated_grads(rule: Rule, core: dict, s0, batch: Batch):
    """Truncated BPTT with windows of ``rule.truncation`` steps, one window at a time (a Python loop).

    Args:
        rule: the window algorithm's static settings.
        core: the core's parameters θ.
        s0: the start state ``(B, S)``.
        batch: the sequences.

    Returns:
        The sum over windows of ``∂L_k/∂θ`` with ``s_b`` held constant, divided by the batch size.
    """
    T, L = rule.truncation, batch.xs.shape[0]
    total = jax.tree_util.tree_map(jnp.zeros_like, core)
    s = s0
    for b in range(0, L, T):
        w = slice(b, b + T)
        g = jax.grad(sequence_loss, argnums=1)(rule, core, jax.lax.stop_gradient(s), batch.xs[w], batch.ys[w],
                                              batch.mask[w])
        total = jax.tree_util.tree_map(jnp.add, total, g)
        for t in range(b, b + T):
            s = core_step(rule.core, core, s, batch.xs[t])
    return jax.tree_util.tree_map(lambda g: g / batch.xs.shape[1], total)


def future_gradients(rule: Rule, core: dict, s0, batch: Batch):
    """True future gradients ``∂(Σ_{t ≥ b_k} losses)/∂s_{b_k}`` at every boundary ``b_k = kT``, ``k = 0..K``.

    Args:
        rule: ``rule.truncation`` is ``T`` (must divide ``L``).
        core: core parameters.
        s0: entry state ``(B, S)``.
        batch: the sequences (``cont`` and ``end`` are not used: the horizon is the batch's ``L`` steps).

    Returns:
        ``(K + 1, B, S)``, per sequence; row ``k`` is the oracle SG for the exit of window ``k − 1``,
        row ``K`` is 0.
    """
    T, L = rule.truncation, batch.xs.shape[0]
    K = L // T
    split = lambda a: a.reshape((K, T) + a.shape[1:])

    def total(eps):
        def window(s, inp):
            x, y, m, e = inp
            s = s + e
            loss = sequence_loss(rule, core, s, x, y, m)
            for t in range(T):
                s = core_step(rule.core, core, s, x[t])
            return s, loss

        _, losses = jax.lax.scan(window, s0, (split(batch.xs), split(batch.ys), split(batch.mask), eps[:K]))
        return jnp.sum(losses)  # eps[K] is unused: its gradient is exactly 0

    eps = jnp.zeros((K + 1,) + s0.shape, s0.dtype)
    return jax.grad(total)(eps)


__all__ = ["full_bptt_grad", "future_gradients", "sequence_loss", "truncated_grads"]
