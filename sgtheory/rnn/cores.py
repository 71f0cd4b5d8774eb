"""Recurrent cores (LSTM, vanilla tanh) and their linear readout, as pure functions over pytrees.

The carried state is one vector per sequence, ``s`` ``(batch, state_size)``, so that a synthetic
gradient module can read and predict it whole:

- ``lstm`` (Hochreiter & Schmidhuber 1997, with a forget gate, Gers et al. 2000):
  ``s = [h; c]`` (``state_size = 2·hidden``);
  ``[i, f, g, o] = [x, h] W + b``, ``c' = σ(f)·c + σ(i)·tanh(g)``, ``h' = σ(o)·tanh(c')``.
  The forget gate's bias starts at 1 (Jozefowicz et al. 2015), the others at 0.
- ``tanh``: ``s = h``, ``h' = tanh([x, h] W + b)``.

The readout maps the hidden part ``h`` to the task's logits: ``logits = h V + v``.
Weights are drawn ``N(0, 1/fan_in)``; the readout's too.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sgtheory.validate import choice, int_in_range

CORES = ("lstm", "tanh")


class CoreSpec(NamedTuple):
    """Shape of a recurrent core: ``kind`` in :data:`CORES`, ``n_in`` inputs, ``hidden`` units, ``n_out`` logits."""

    kind: str
    n_in: int
    hidden: int
    n_out: int

    @property
    def state_size(self) -> int:
        """Length of the carried state vector: ``2·hidden`` for an LSTM (``[h; c]``), ``hidden`` for tanh."""
        return 2 * self.hidden if self.kind == "lstm" else self.hidden

    def check(self) -> CoreSpec:
        """The spec itself after validating every field (:class:`sgtheory.InputError` on a bad one)."""
        choice(self.kind, "core", CORES)
        int_in_range(self.n_in, "core inputs", 1)
        int_in_range(self.hidden, "hidden units", 1)
        int_in_range(self.n_out, "core outputs", 1)
        return self


def init_core(spec: CoreSpec, *, key, dtype=jnp.float32) -> dict:
    """Parameters of a core and its readout.

    Args:
        spec: the core's shape (:class:`CoreSpec`).
        key: JAX PRNG key.
        dtype: floating dtype of every parameter.

    Returns:
        ``{"W": (n_in + hidden, gates·hidden), "b": (gates·hidden,), "V": (hidden, n_out), "v": (n_out,)}``
        with 4 gates for an LSTM and 1 for tanh.
    """
    spec.check()
    gates = 4 if spec.kind == "lstm" else 1
    k_w, k_v = jax.random.split(key)
    fan_in = spec.n_in + spec.hidden
    w = jax.random.normal(k_w, (fan_in, gates * spec.hidden), dtype) / jnp.sqrt(jnp.asarray(fan_in, dtype))
    b = jnp.zeros((gates * spec.hidden,), dtype)
    if spec.kind == "lstm":
        b = b.at[spec.hidden:2 * spec.hidden].set(1.0)  # forget-gate bias 1: remember by default
    v = jax.random.normal(k_v, (spec.hidden, spec.n_out), dtype) / jnp.sqrt(jnp.asarray(spec.hidden, dtype))
    return {"W": w, "b": b, "V": v, "v": jnp.zeros((spec.n_out,), dtype)}


def affine(x, w, b):
    """``x w + b`` for ``x`` of any leading shape (the bias broadcast explicitly).

    Args:
        x: inputs ``(..., n_in)``.
        w: weights ``(n_in, n_out)``.
        b: bias ``(n_out,)``.

    Returns:
        ``(..., n_out)``.
    """
    return x @ w + jnp.reshape(b, (1,) * (x.ndim - 1) + b.shape)


def zero_state(spec: CoreSpec, batch: int, dtype=jnp.float32):
    """The initial state of zeros.

    Args:
        spec: the core.
        batch: sequences.
        dtype: the state's dtype.

    Returns:
        ``(batch, state_size)`` zeros.
    """
    return jnp.zeros((batch, spec.state_size), dtype)


def hidden_part(kind: str, s):
    """The hidden units ``h`` of a state ``s`` (the first half of ``[h; c]`` for an LSTM).

    Args:
        kind: ``"lstm"`` or ``"tanh"``.
        s: states ``(..., state_size)``.

    Returns:
        ``h`` ``(..., hidden)``.
    """
    return s[..., : s.shape[-1] // 2] if kind == "lstm" else s


def core_step(kind: str, params: dict, s, x):
    """One step ``s' = f(s, x)`` of the core.

    Args:
        kind: ``"lstm"`` or ``"tanh"``.
        params: from :func:`init_core`.
        s: state ``(batch, state_size)``.
        x: input ``(batch, n_in)``.

    Returns:
        The next state, shaped like ``s``.
    """
    h = hidden_part(kind, s)
    z = affine(jnp.concatenate([x, h], axis=-1), params["W"], params["b"])
    if kind == "tanh":
        return jnp.tanh(z)
    c = s[..., h.shape[-1]:]
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jnp.concatenate([jax.nn.sigmoid(o) * jnp.tanh(c), c], axis=-1)


def readout(kind: str, params: dict, s):
    """Logits ``h V + v`` read from the hidden part of state ``s``.

    Args:
        kind: ``"lstm"`` or ``"tanh"``.
        params: the core's parameters (``V``, ``v``).
        s: states ``(batch, state_size)``.

    Returns:
        Logits ``(batch, n_out)``.
    """
    return affine(hidden_part(kind, s), params["V"], params["v"])


__all__ = ["CORES", "CoreSpec", "affine", "core_step", "hidden_part", "init_core", "readout", "zero_state"]
