"""The forward record every credit-assignment method reads: activations, output error, local backward maps.

:func:`record` runs the net once in training mode and keeps, for each hidden layer ``i = 1..D``,
the input ``h_{i-1}``, the output ``h_i`` and the vector-Jacobian product of its nonlinearity
``h_i = f(BN(a_i))``. Methods then turn a learning signal ``δ_i`` for ``h_i`` into parameter updates
with :meth:`Tape.local` (no global backward pass), and move signals across a layer with
:meth:`Tape.back` (the chain rule, optionally with feedback matrices in place of ``W_iᵀ``).

Scale convention: signals are *per-example* gradients, ``δ_i = n · ∂L/∂h_i`` for the mean loss
``L = (1/n) Σ_n ℓ_n`` over a batch of ``n``; the output error is ``e = softmax(logits) − onehot(y)``
``(n, C)`` (``= ∂ℓ_n/∂logits_n``). Parameter gradients are batch means, i.e. exactly ``∂L/∂θ``
when the signals are the true gradients.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sgtheory.nets.mlp import MLPConfig, norm_act, update_bn_state


class Local(NamedTuple):
    """Result of :meth:`Tape.local`: the layer's parameter gradients and ``δa_i`` ``(n, width)``."""

    grads: dict
    delta_pre: jnp.ndarray


class Tape:
    """Forward record of one batch. Attributes:

    ``config``; ``params``; ``hiddens`` — ``[h_0 = x, h_1, ..., h_D]``; ``logits`` ``(n, C)``;
    ``onehot`` ``(n, C)``; ``error`` ``e`` ``(n, C)``; ``loss`` (mean cross-entropy, scalar);
    ``n`` (batch size).
    """

    def __init__(self, config, params, hiddens, vjps, logits, onehot):
        self.config, self.params, self.hiddens, self._vjps = config, params, hiddens, vjps
        self.logits, self.onehot, self.n = logits, onehot, logits.shape[0]
        logp = jax.nn.log_softmax(logits)
        self.loss = -jnp.mean(jnp.sum(onehot * logp, axis=1))
        self.error = jnp.exp(logp) - onehot

    @property
    def depth(self) -> int:
        return self.config.depth

    def local(self, i: int, delta_h) -> Local:
        """Gradients of hidden layer ``i`` (1..D) given the signal ``δ_i`` for ``h_i`` ``(n, width)``.

        ``δa_i = δ_i · ∂h_i/∂a_i`` (through BN and the activation), ``∂W_i = h_{i-1}ᵀ δa_i / n``,
        ``∂b_i = mean_n δa_i``; with BN also ``∂gamma_i``, ``∂beta_i``.
        """
        delta_a, bn_grads = self._vjps[i - 1](delta_h)
        grads = {"W": self.hiddens[i - 1].T @ delta_a / self.n, "b": jnp.mean(delta_a, axis=0)}
        if bn_grads is not None:
            grads.update({k: v / self.n for k, v in bn_grads.items()})
        return Local(grads, delta_a)

    def output_grads(self) -> dict:
        """Gradients of the output layer from the true error: ``∂W_out = h_Dᵀ e / n``, ``∂b_out = mean e``."""
        return {"W": self.hiddens[-1].T @ self.error / self.n, "b": jnp.mean(self.error, axis=0)}

    def back(self, delta_pre, weight):
        """Carry a pre-activation signal ``δa`` ``(n, fan_out)`` down one layer: ``δa · weightᵀ`` ``(n, fan_in)``.

        ``weight = W_i`` gives the chain rule; a fixed random matrix gives Feedback Alignment.
        """
        return delta_pre @ weight.T


def record(params, bn_state, x, y_onehot, config: MLPConfig):
    """Run the net in training mode on ``x`` ``(n, n_in)``, keeping what the credit-assignment rules need.

    Args:
        params: the net's parameters.
        bn_state: running batch-norm statistics (``()`` without batch-norm).
        x: inputs ``(n, n_in)``.
        y_onehot: one-hot labels ``(n, C)``.
        config: the net.

    Returns:
        ``(tape, new_bn_state)``: the :class:`Tape` and the updated statistics.
    """
    h, hiddens, vjps, batch_stats = x, [x], [], []
    for i in range(config.depth):
        layer = params[i]
        a = h @ layer["W"] + layer["b"][None, :]
        if config.batchnorm:
            bn = {"gamma": layer["gamma"], "beta": layer["beta"]}

            def f(a_, bn_, layer=layer):
                return norm_act({**layer, **bn_}, a_, config, None, True)

            h, vjp, bs = jax.vjp(f, a, bn, has_aux=True)
            batch_stats.append(bs)
            vjps.append(lambda d, vjp=vjp: vjp(d))
        else:
            h, vjp = jax.vjp(lambda a_, layer=layer: norm_act(layer, a_, config, None, True)[0], a)
            vjps.append(lambda d, vjp=vjp: (vjp(d)[0], None))
        hiddens.append(h)
    logits = h @ params[-1]["W"] + params[-1]["b"][None, :]
    new_state = update_bn_state(bn_state, batch_stats) if config.batchnorm else bn_state
    return Tape(config, params, hiddens, vjps, logits, y_onehot), new_state
