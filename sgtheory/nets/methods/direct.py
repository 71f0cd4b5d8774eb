"""Direct error broadcast: Direct Feedback Alignment and Kickback.

- ``dfa`` (Nøkland 2016, "Direct Feedback Alignment Provides Learning in Deep Neural Networks"):
  every hidden layer gets the output error projected straight to it, ``δ_i = e R_i`` with a fixed
  random ``R_i`` ``(C, width)``, entries ``N(0, 1/C)``.
- ``kickback`` (Balduzzi, Vanchinathan & Buhmann 2015, "Kickback cuts Backprop's red-tape"):
  defined there for a net with one scalar output ``o``: a global scalar error ``ε = ∂ℓ/∂o`` is
  broadcast to every unit, and unit ``j`` of layer ``i`` receives ``ε · τ_j`` with ``τ_j = Σ_k W_{i+1}[j, k]``
  its summed outgoing weights ("kick"), gated by its own activation derivative.

  Generalisation to a ``C``-class softmax output (ours; the paper has no multi-class rule):
  the top hidden layer's outgoing weights lead to ``C`` outputs with ``C`` errors, so it receives
  ``δ_D = e W_outᵀ`` (for ``C = 1`` this is exactly Balduzzi's ``ε · w_j``). The global scalar error
  broadcast below it is the mean error arriving at the top hidden layer, ``ε_n = mean_j (e_n W_outᵀ)_j``
  (for ``C = 1``: ``ε · mean_j w_j``, Balduzzi's error times a positive constant when the top
  layer's outgoing weights sum to a positive number), and ``δ_i = ε (W_{i+1} 1)ᵀ`` for ``i < D``.
  (The error of the true class's logit, ``p_y − 1``, was tried as the scalar instead: it never
  changes sign, and without batch-norm the activations then grow without bound.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory.nets.methods.base import Credit, Method, MethodState, Properties, assemble
from sgtheory.nets.mlp import MLPConfig
from sgtheory.nets.tape import Tape


def _local_all(tape: Tape, signals: dict) -> dict:
    return {i: tape.local(i, signals[i]).grads for i in signals}


class DirectFeedbackAlignment(Method):
    """``δ_i = e R_i`` with fixed random ``R_i`` (state ``fixed["R"]``, keys "1".."D")."""

    name = "dfa"
    summary = "direct feedback alignment: output error through a fixed random matrix per layer"

    @property
    def properties(self) -> Properties:
        return Properties("e R_i (fixed random R_i)", "e", learned=False, update_locked=True,
                          backward_locked=False)

    def init(self, config: MLPConfig, *, key, dtype=jnp.float32) -> MethodState:
        keys = jax.random.split(key, config.depth)
        scale = jnp.sqrt(1.0 / config.n_out).astype(dtype)
        fixed = {str(i + 1): jax.random.normal(k, (config.n_out, config.width), dtype) * scale
                 for i, k in enumerate(keys)}
        return MethodState({}, {"R": fixed})

    def credit(self, state: MethodState, tape: Tape) -> Credit:
        signals = {i: tape.error @ state.fixed["R"][str(i)] for i in range(1, tape.depth + 1)}
        return assemble(tape, _local_all(tape, signals), signals)


class Kickback(Method):
    """``δ_D = e W_outᵀ``; ``δ_i = ε (W_{i+1} 1)ᵀ`` below, ``ε_n = mean_j δ_D[n, j]`` (see module docstring)."""

    name = "kickback"
    summary = "kickback: global scalar error times each unit's summed outgoing weights"

    @property
    def properties(self) -> Properties:
        return Properties("ε·(W_{i+1} 1), ε = mean_j (e W_outᵀ)_j; top layer e W_outᵀ", "e",
                          learned=False, update_locked=True, backward_locked=False)

    def credit(self, state: MethodState, tape: Tape) -> Credit:
        d = tape.depth
        top = tape.back(tape.error, tape.params[-1]["W"])
        eps = jnp.mean(top, axis=1, keepdims=True)  # (n, 1): the global scalar error
        signals = {d: top}
        for i in range(1, d):
            signals[i] = eps * jnp.sum(tape.params[i]["W"], axis=1)[None, :]
        return assemble(tape, _local_all(tape, signals), signals)
