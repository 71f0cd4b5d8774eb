"""Backpropagation and Feedback Alignment: the chain rule, with true or fixed random backward weights.

- ``bp``: ``δ_D = e W_outᵀ``, ``δ_{i-1} = δa_i W_iᵀ`` (Rumelhart et al. 1986).
- ``fa``: the same with every ``W_iᵀ`` replaced by a fixed random ``R_iᵀ`` drawn like ``W_i``
  (Lillicrap et al. 2016, "Random synaptic feedback weights support error backpropagation").
  With ``R_i = W_i`` FA is exactly BP.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory.nets.methods.base import Credit, Method, MethodState, Properties, assemble, chain
from sgtheory.nets.mlp import MLPConfig
from sgtheory.nets.tape import Tape


class Backprop(Method):
    """Exact gradients by the chain rule."""

    name = "bp"
    summary = "backpropagation: the exact gradient"

    @property
    def properties(self) -> Properties:
        return Properties("∂L/∂h_i = δa_{i+1} W_{i+1}ᵀ (chain rule)", "L", learned=False,
                          update_locked=True, backward_locked=True)

    def credit(self, state: MethodState, tape: Tape) -> Credit:
        top = tape.back(tape.error, tape.params[-1]["W"])
        grads, signals, _ = chain(tape, top, tape.depth, 1)
        return assemble(tape, grads, signals)


class FeedbackAlignment(Method):
    """The chain rule through fixed random feedback matrices ``R_i`` (state ``fixed["R"]``, keys "2".."D+1")."""

    name = "fa"
    summary = "feedback alignment: chain rule with fixed random backward weights"

    @property
    def properties(self) -> Properties:
        return Properties("δa_{i+1} R_{i+1}ᵀ (chain rule, fixed random R)", "e", learned=False,
                          update_locked=True, backward_locked=True)

    def init(self, config: MLPConfig, *, key, dtype=jnp.float32) -> MethodState:
        sizes = [config.width] * config.depth + [config.n_out]
        keys = jax.random.split(key, config.depth)
        gain = 2.0 if config.activation == "relu" else 1.0
        feedback = {}
        for j, k in enumerate(keys):  # R_i for layer i = j + 2, shape of W_i: (sizes[j], sizes[j+1])
            fan_in = sizes[j]
            scale = jnp.sqrt(gain / fan_in).astype(dtype)
            feedback[str(j + 2)] = jax.random.normal(k, (fan_in, sizes[j + 1]), dtype) * scale
        return MethodState({}, {"R": feedback})

    def credit(self, state: MethodState, tape: Tape) -> Credit:
        feedback = state.fixed["R"]
        top = tape.back(tape.error, feedback[str(tape.depth + 1)])
        grads, signals, _ = chain(tape, top, tape.depth, 1, feedback=feedback)
        return assemble(tape, grads, signals)
