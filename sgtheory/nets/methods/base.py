"""The interface shared by every credit-assignment method, and the chain-rule helper.

A method is a rule that supplies each hidden layer's learning signal ``δ_i`` (a stand-in for
``∂ℓ/∂h_i``, per example, see :mod:`sgtheory.nets.tape`). Every method:

- declares :class:`Properties` (the unified view of Czarnecki et al. 2017, §5, claim C10);
- ``init(config, key=...) -> MethodState``: its own state, split into ``learned`` (e.g. SG modules;
  the trainer applies the optimiser to it with the gradients the method returns) and ``fixed``
  (e.g. random feedback matrices);
- ``credit(state, tape) -> Credit``: from the forward record (activations, labels, output error)
  and its state, the parameter gradients of every layer, the gradient for its learned state, the
  signals ``δ_1..δ_D`` and its SG regression loss. The output layer always learns from ``e``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import jax.numpy as jnp

from sgtheory.nets.mlp import MLPConfig
from sgtheory.nets.tape import Tape


@dataclass(frozen=True)
class Properties:
    """What a method's signal for hidden layer ``i`` is, and its locking (Jaderberg et al. 2017, §1).

    ``signal``: formula; ``conditioned_on``: what it reads (``L`` = the whole loss via the full
    backward pass, ``e`` = the output error, ``h_i`` = the layer's activation, ``y`` = the label);
    ``learned``: the signal's generator is trained; ``update_locked``: a layer must wait for the
    forward pass above it before it can update; ``backward_locked``: it must also wait for the
    backward pass through the layers above; ``forward_locked``: a layer must wait for the forward
    pass of the layers below it before it can run (every method is, unless synthetic-input models
    ``I_i(x)`` stand in for its input: DNI's "complete unlock").
    """

    signal: str
    conditioned_on: str
    learned: bool
    update_locked: bool
    backward_locked: bool
    forward_locked: bool = True


class MethodState(NamedTuple):
    """``learned``: pytree the optimiser updates; ``fixed``: pytree kept constant."""

    learned: Any
    fixed: Any


class Credit(NamedTuple):
    """Output of :meth:`Method.credit`.

    ``grads``: tuple of per-layer gradient dicts (like the params); ``state_grads``: like
    ``state.learned``; ``signals``: tuple ``(δ_1, ..., δ_D)`` each ``(n, width)``; ``sg_loss``: scalar;
    ``input_loss``: the synthetic-input models' regression loss (scalar; 0 without them).
    """

    grads: tuple
    state_grads: Any
    signals: tuple
    sg_loss: Any
    input_loss: Any = None


class Method:
    """Base class; subclasses set ``name``, ``summary`` and implement ``properties``, ``init``, ``credit``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __init__(self):
        self.options: dict = {}  # JSON-able constructor options (recorded in checkpoints)

    @property
    def properties(self) -> Properties:
        raise NotImplementedError

    def init(self, config: MLPConfig, *, key, dtype=jnp.float32) -> MethodState:
        return MethodState({}, {})

    def credit(self, state: MethodState, tape: Tape) -> Credit:
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts})"


def chain(tape: Tape, delta, top: int, bottom: int, feedback: dict | None = None):
    """Propagate the signal ``delta`` for ``h_top`` down to layer ``bottom`` (``top ≥ bottom``).

    Each layer takes its signal, computes its gradients locally, and passes ``δa_i Mᵀ`` down, with
    ``M = W_i`` (the chain rule) or ``M = feedback[i]`` (Feedback Alignment).

    Args:
        tape: the batch's forward record.
        delta: the signal for ``h_top`` ``(n, width)``.
        top, bottom: the first and the last layer it passes through (1-based).
        feedback: layer → fixed feedback matrix (Feedback Alignment), or None for the chain rule.

    Returns:
        ``(grads, signals, below)``: dicts layer → gradients / signal, and the signal for
        ``h_{bottom-1}`` (None when ``bottom == 1``).
    """
    grads, signals = {}, {}
    for i in range(top, bottom - 1, -1):
        signals[i] = delta
        loc = tape.local(i, delta)
        grads[i] = loc.grads
        delta = None
        if i > 1:
            weight = feedback[str(i)] if feedback is not None else tape.params[i - 1]["W"]
            delta = tape.back(loc.delta_pre, weight)
    return grads, signals, delta


def assemble(tape: Tape, grads: dict, signals: dict, state_grads=None, sg_loss=None, input_loss=None) -> Credit:
    """Pack per-layer dicts (keys 1..D) and the output layer's gradient into a :class:`Credit`.

    The output layer learns from the true error of ``tape`` (:meth:`Tape.output_grads`).
    """
    d = tape.depth
    zero = jnp.zeros((), tape.logits.dtype)
    return Credit(
        grads=tuple(grads[i] for i in range(1, d + 1)) + (tape.output_grads(),),
        state_grads={} if state_grads is None else state_grads,
        signals=tuple(signals[i] for i in range(1, d + 1)),
        sg_loss=zero if sg_loss is None else sg_loss,
        input_loss=zero if input_loss is None else input_loss,
    )
