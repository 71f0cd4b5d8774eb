"""Sequence tasks: Copy and Repeat Copy with a curriculum (Graves et al. 2014), and text streams.

Copy and Repeat Copy follow the Neural Turing Machine conventions (pytorch-ntm): ``bits``-bit random
binary patterns (8 by default), fed one per step, then recalled while the input is silent.

- **Copy**, level ``N``: input channels ``bits + 1``; steps ``0..N−1`` carry the pattern, step ``N`` the
  delimiter (last channel); steps ``N+1..2N`` are the recall phase, whose targets are the pattern
  (``bits`` channels). Length ``2N + 1``.
- **Repeat Copy**, level ``(N, R)``: input channels ``bits + 2``; steps ``0..N−1`` the pattern, step
  ``N`` the delimiter (channel ``bits``), step ``N+1`` the repeat count ``R / repeat_norm`` (channel
  ``bits + 1``); then ``N·R + 1`` output steps: the pattern ``R`` times, then the end marker (output
  channel ``bits``; output channels ``bits + 1``). Length ``N(R + 1) + 3``.

Curriculum (neuralml/bp_lambda's protocol): start at ``N = 1`` (``R = 1``); after every batch whose
loss — the mean binary cross-entropy per target bit of the recall phase, in bits — is below
``threshold`` (0.15), raise ``R`` if ``R < N`` (Repeat Copy) else ``N``. The level *solved* is the one
before the current level.

Text streams (character-level language modelling): the training text is cut into ``batch`` equal
streams read in parallel, ``seq_len`` characters per training sequence; the state is carried from
one sequence to the next (``Batch.cont``) until the streams run out, when they start again from
their beginnings with a zero state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sgtheory.rnn.window import Batch
from sgtheory.validate import int_in_range

TASKS = ("copy", "repeat-copy", "charlm")


class Level(NamedTuple):
    """Curriculum level (int32 scalars): pattern length ``n`` and repeat count ``r``."""

    n: jnp.ndarray
    r: jnp.ndarray


@dataclass(frozen=True)
class CopyTask:
    """Copy (``repeat=False``) or Repeat Copy (``repeat=True``); see the module docstring."""

    repeat: bool = False
    bits: int = 8
    threshold: float = 0.15
    repeat_norm: float = 10.0

    name = property(lambda self: "repeat-copy" if self.repeat else "copy")
    loss = "bce"

    @property
    def n_in(self) -> int:
        """Input channels."""
        return self.bits + (2 if self.repeat else 1)

    @property
    def n_out(self) -> int:
        """Output channels."""
        return self.bits + (1 if self.repeat else 0)

    def length(self, n: int, r: int = 1) -> int:
        """Total steps of a sequence at level ``(n, r)`` (host integers)."""
        return n * (r + 1) + 3 if self.repeat else 2 * n + 1

    def next_level(self, n: int, r: int) -> tuple[int, int]:
        """The level after ``(n, r)`` (host integers)."""
        if self.repeat and r < n:
            return n, r + 1
        return n + 1, r

    def raise_level(self, level: Level, loss_bits) -> Level:
        """The curriculum update after a batch with loss ``loss_bits`` (traced)."""
        up = loss_bits < self.threshold
        if self.repeat:
            raise_r = up & (level.r < level.n)
            return Level(level.n + (up & ~raise_r).astype(level.n.dtype), level.r + raise_r.astype(level.r.dtype))
        return Level(level.n + up.astype(level.n.dtype), level.r)

    def sequences(self, pattern, level: Level, length: int, dtype=jnp.float32, lookahead: int = 1) -> Batch:
        """The batch for ``pattern`` ``(length, B, bits)`` (0/1; only the first ``n`` steps are read).

        Args:
            pattern: random bits; row ``t`` is the pattern's step ``t``.
            level: the curriculum level (traced ints allowed).
            length: padded length (static), at least :meth:`length` of the level.
            dtype: floating dtype of inputs, targets and mask.
            lookahead: steps of (empty) ``ys_next``: nothing follows a Copy sequence.

        Returns:
            A :class:`sgtheory.rnn.window.Batch` (time-major); steps past the end are zero with mask 0.
        """
        n, r = level.n, level.r
        t = jnp.arange(length)[:, None]  # (L, 1)
        pattern = pattern.astype(dtype)
        bsz = pattern.shape[1]
        x_bits = jnp.where((t < n)[..., None], pattern, 0.0)
        delim = (t == n).astype(dtype)
        if not self.repeat:
            recall = (t > n) & (t <= 2 * n)
            src = jnp.clip(jnp.arange(length) - n - 1, 0, length - 1)
            ys = jnp.where(recall[..., None], pattern[src], 0.0)
            xs = jnp.concatenate([x_bits, jnp.broadcast_to(delim[..., None], (length, bsz, 1))], axis=-1)
            end = 2 * n + 1
        else:
            t0 = n + 2
            copies = (t >= t0) & (t < t0 + n * r)
            recall = (t >= t0) & (t <= t0 + n * r)
            src = jnp.mod(jnp.arange(length) - t0, jnp.maximum(n, 1))
            y_bits = jnp.where(copies[..., None], pattern[src], 0.0)
            marker = (t == t0 + n * r).astype(dtype)
            count = jnp.where(t == n + 1, r.astype(dtype) / self.repeat_norm, 0.0).astype(dtype)
            ys = jnp.concatenate([y_bits, jnp.broadcast_to(marker[..., None], (length, bsz, 1))], axis=-1)
            chans = [x_bits, jnp.broadcast_to(delim[..., None], (length, bsz, 1)),
                     jnp.broadcast_to(count[..., None], (length, bsz, 1))]
            xs = jnp.concatenate(chans, axis=-1)
            end = n * (r + 1) + 3
        mask = jnp.broadcast_to(recall, (length, bsz)).astype(dtype)
        return Batch(xs.astype(dtype), ys.astype(dtype), mask, end, jnp.asarray(False),
                     jnp.zeros((lookahead, bsz, self.n_out), dtype), jnp.zeros((lookahead, bsz), dtype))

    def sample(self, key, level: Level, length: int, batch: int, dtype=jnp.float32, lookahead: int = 1) -> Batch:
        """A random batch at ``level`` padded to ``length`` steps. Step ``t``'s bits come from
        ``fold_in(key, t)``, so a run's data do not depend on the padding."""
        pattern = jax.vmap(lambda t: jax.random.bernoulli(jax.random.fold_in(key, t), 0.5, (batch, self.bits)))(
            jnp.arange(length))
        return self.sequences(pattern, level, length, dtype, lookahead)

    def bits_per_target(self, loss_nats, batch: Batch):
        """Mean cross-entropy per target bit of the recall phase, in bits, from a summed loss in nats."""
        count = jnp.maximum(jnp.sum(batch.mask), 1.0) * self.n_out
        return loss_nats / count / math.log(2.0)


@dataclass(frozen=True)
class TextTask:
    """Character-level language modelling on streams of a corpus with ``vocab`` symbols."""

    vocab: int
    seq_len: int = 120

    name = "charlm"
    loss = "softmax"

    @property
    def n_in(self) -> int:
        """Input channels (one-hot characters)."""
        return self.vocab

    @property
    def n_out(self) -> int:
        """Output logits (one per symbol)."""
        return self.vocab

    def stream_length(self, n_chars: int, batch: int) -> int:
        """Characters per stream when ``n_chars`` are cut into ``batch`` streams."""
        return n_chars // batch

    def check(self, n_chars: int, batch: int, lookahead: int) -> None:
        """Raise :class:`sgtheory.InputError` when the text is too short for one sequence per stream."""
        int_in_range(self.seq_len, "sequence length", 1)
        need = self.seq_len + lookahead + 1
        have = self.stream_length(n_chars, batch)
        if have < 2 * need:
            from sgtheory.errors import InputError

            raise InputError(f"corpus: {n_chars} training characters give {batch} streams of {have}, fewer than "
                             f"the {2 * need} two sequences of {self.seq_len} (+{lookahead + 1}) need")

    def sample(self, text, phase, batch: int, lookahead: int, dtype=jnp.float32) -> Batch:
        """The sequences at position ``phase`` of every stream (``text``: int array on the device).

        ``lookahead`` characters after the sequence fill ``ys_next`` (cDNI). ``cont`` says whether the next
        sequence continues these streams.
        """
        stream = self.stream_length(text.shape[0], batch)
        span = self.seq_len + lookahead + 1
        idx = (jnp.arange(batch) * stream)[:, None] + phase + jnp.arange(span)[None, :]
        chars = text[idx].T  # (span, B)
        xs = jax.nn.one_hot(chars[: self.seq_len], self.vocab, dtype=dtype)
        ys = chars[1: self.seq_len + 1]
        nxt = chars[self.seq_len + 1: self.seq_len + 1 + lookahead]
        cont = phase + self.seq_len + span <= stream
        mask = jnp.ones((self.seq_len, batch), dtype)
        return Batch(xs, ys, mask, jnp.asarray(self.seq_len), cont, nxt, jnp.ones((lookahead, batch), dtype))

    def advance(self, phase, cont):
        """The next phase: ``seq_len`` further, or 0 when the streams have run out."""
        return jnp.where(cont, phase + self.seq_len, 0)


__all__ = ["TASKS", "CopyTask", "Level", "TextTask"]
