"""Forward unlocking: the forward record of a net whose decoupled layers run from synthetic inputs.

With synthetic-input models (:mod:`sgtheory.nets.input_model`) the net is cut at every SG interface
``k``: the part above it starts from ``ĥ_k = I_{k+1}(x)`` instead of the real ``h_k``, so it need not
wait for the layers below (Jaderberg et al. 2017, "complete unlock"). :func:`record_synthetic` runs
that cut net once and returns a :class:`SyntheticInputTape`: the same interface as
:class:`sgtheory.nets.tape.Tape`, but each layer ``i`` remembers its own input ``in_i`` — ``I_i(x)``
where the net is cut below ``i``, the output of layer ``i − 1`` (computed from *its* input) elsewhere —
so every credit-assignment rule written against a tape (the chain rule, SG signals and bootstrapped
targets) runs unchanged on the cut net. The output layer's error comes from the cut net's logits.

Where an SG module ``M_k`` is trained and where it is applied then differ (the train/apply shift):
its regression target is the gradient at the input of the part above, ``ĥ_k``, so it is trained on
``(ĥ_k, target)``; its signal is applied at the output of layer ``k``, ``o_k``. With exact input
models (``I_{k+1}(x) = h_k``) both are the real ``h_k`` and the cut net is the real net.
"""

from __future__ import annotations

import jax

from sgtheory.nets.mlp import norm_act
from sgtheory.nets.tape import Tape


class SyntheticInputTape(Tape):
    """A :class:`Tape` of the cut net. Extra attribute ``inputs``: ``[in_1, ..., in_{D+1}]``, the input
    each layer ran from (``in_{D+1}`` for the output layer); ``hiddens`` are ``[x, o_1, ..., o_D]``,
    each layer's output. ``synthetic``: the layers whose input is synthetic (sorted)."""

    def __init__(self, config, params, inputs, hiddens, vjps, logits, onehot, synthetic):
        super().__init__(config, params, hiddens, vjps, logits, onehot)
        self.inputs, self.synthetic = inputs, tuple(sorted(synthetic))

    def local(self, i: int, delta_h):
        """As :meth:`Tape.local`, with layer ``i``'s own input ``in_i`` in ``∂W_i = in_iᵀ δa_i / n``."""
        loc = super().local(i, delta_h)
        return loc._replace(grads={**loc.grads, "W": self.inputs[i - 1].T @ loc.delta_pre / self.n})

    def output_grads(self) -> dict:
        """Output-layer gradients from the cut net's error: ``∂W_out = in_{D+1}ᵀ e / n``, ``∂b_out = mean e``."""
        return {**super().output_grads(), "W": self.inputs[-1].T @ self.error / self.n}

    def sg_input(self, k: int):
        """Where the SG module at hidden layer ``k`` is trained: ``in_{k+1}`` (``= I_{k+1}(x)`` at a cut)."""
        return self.inputs[k]


def _hidden_layer(layer: dict, a, config):
    """``h = f(BN(a))`` in training mode and a vjp ``δh -> (δa, bn grads | None)``, as in :func:`record`."""
    if config.batchnorm:
        bn = {"gamma": layer["gamma"], "beta": layer["beta"]}
        h, vjp, _ = jax.vjp(lambda a_, bn_: norm_act({**layer, **bn_}, a_, config, None, True), a, bn, has_aux=True)
        return h, vjp
    h, vjp = jax.vjp(lambda a_: norm_act(layer, a_, config, None, True)[0], a)
    return h, lambda d: (vjp(d)[0], None)


def record_synthetic(params, x, y_onehot, config, synthetic: dict) -> SyntheticInputTape:
    """Run the net cut below the layers in ``synthetic`` on ``x`` ``(n, n_in)`` (training-mode batch-norm).

    Args:
        params: the net's parameters (tuple of ``D + 1`` layer dicts).
        x, y_onehot: the batch ``(n, n_in)`` and its one-hot labels ``(n, C)``.
        config: the :class:`sgtheory.nets.MLPConfig`.
        synthetic: layer ``j`` (2..D+1; ``D + 1`` is the output layer) → its synthetic input ``(n, width)``.

    Returns:
        The :class:`SyntheticInputTape`. Batch-norm running statistics are not touched: they belong to
        the real net (:func:`sgtheory.nets.tape.record`), which evaluation runs.
    """
    h, inputs, hiddens, vjps = x, [], [x], []
    for i in range(1, config.depth + 2):
        h = synthetic.get(i, h)
        inputs.append(h)
        layer = params[i - 1]
        a = h @ layer["W"] + layer["b"][None, :]
        if i == config.depth + 1:
            logits = a
            break
        h, vjp = _hidden_layer(layer, a, config)
        hiddens.append(h)
        vjps.append(vjp)
    return SyntheticInputTape(config, params, inputs, hiddens, vjps, logits, y_onehot, synthetic)


__all__ = ["SyntheticInputTape", "record_synthetic"]
