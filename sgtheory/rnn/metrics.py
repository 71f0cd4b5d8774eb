"""Held-out metrics: bits per character, and how well the injected SG matches the true future gradient.

- :func:`bits_per_character` (Graves 2013): ``BPC = (1/n) Σ_t −log₂ p(c_{t+1} | c_≤t)`` over the ``n``
  predicted characters of a text read as ``streams`` parallel streams, each from a zero state.
- :func:`sg_cosine`: at every window exit where an SG is injected inside the batch's horizon, the cosine
  between the SG and the true gradient of the later losses
  (:func:`sgtheory.rnn.reference.future_gradients`), averaged over exits and sequences.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from sgtheory.rnn.cores import core_step, readout
from sgtheory.rnn.reference import future_gradients
from sgtheory.rnn.window import Batch, Numbers, Params, Rule, run_sequence, step_loss


def bits_per_character(core_kind: str, core: dict, text, vocab: int, streams: int = 64, dtype=jnp.float32):
    """Bits per character of ``core`` on ``text``.

    Args:
        core_kind: ``"lstm"`` or ``"tanh"``.
        core: core parameters (with readout) whose inputs and outputs are ``vocab`` one-hot symbols.
        text: int array ``(n_chars,)`` of symbol indices.
        vocab: number of symbols.
        streams: the text is cut into this many equal streams, read in parallel from zero states
            (the last ``n_chars mod streams`` characters, and each stream's first, are never predicted).
        dtype: floating dtype of the computation.

    Returns:
        Scalar BPC over the ``streams · (n_chars // streams − 1)`` predicted characters.
    """
    per = text.shape[0] // streams
    chars = text[: per * streams].reshape(streams, per).T  # (per, streams)
    hidden = core["V"].shape[0]
    state = jnp.zeros((streams, 2 * hidden if core_kind == "lstm" else hidden), dtype)

    def step(s, pair):
        c, nxt = pair
        s = core_step(core_kind, core, s, jax.nn.one_hot(c, vocab, dtype=dtype))
        return s, jnp.sum(step_loss("softmax", readout(core_kind, core, s), nxt))

    _, nats = jax.lax.scan(step, state, (chars[:-1], chars[1:]))
    return jnp.sum(nats) / ((per - 1) * streams) / math.log(2.0)


def sg_cosine(rule: Rule, params: Params, s0, batch: Batch, nums: Numbers):
    """Mean cosine between the SG injected at window exits and the true future gradient.

    Args:
        rule: the window algorithm's settings (an SG method).
        params: current parameters.
        s0: entry state ``(B, S)``.
        batch: sequences; exits after ``batch.end``, and the last exit (beyond the batch's horizon), are left out.
        nums: numeric settings.

    Returns:
        ``(mean cosine, number of exits × sequences it averages)``; the mean is NaN when there is none.
    """
    out = run_sequence(rule, params, None, s0, batch, nums, train=False)
    true = future_gradients(rule, params.core, s0, batch)[1:-1]  # exits of windows 0..K-2
    sg = out.exits[:-1]
    K1 = sg.shape[0]
    valid = ((jnp.arange(K1) + 1) * rule.truncation < batch.end)[:, None] & (jnp.sum(true ** 2, -1) > 0)
    dot = jnp.sum(sg * true, -1)
    norm = jnp.linalg.norm(sg, axis=-1) * jnp.linalg.norm(true, axis=-1)
    cos = jnp.where(valid, dot / jnp.maximum(norm, 1e-30), 0.0)
    count = jnp.sum(valid)
    return jnp.sum(cos) / count, count


__all__ = ["bits_per_character", "sg_cosine"]
