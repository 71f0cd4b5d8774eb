"""Synthetic-input models: small nets that predict a layer's input ``h_{i-1}`` from the net's input ``x``.

DNI's forward unlocking (Jaderberg et al. 2017, arXiv 1608.05343, "complete unlock"): a model
``I_i(x)`` is trained by L2 toward the real input of layer ``i``, so that the layer can run as soon
as ``x`` is known instead of waiting for the layers below. Two kinds:

- ``linear``: ``I(x) = x W + b`` with ``W`` ``(n_in, width)``;
- ``mlp``: ``x`` → ReLU layers of ``hidden`` units → ``width`` outputs.

The final layer starts at zero (like the SG modules of :mod:`sgtheory.sg`), so every model first
outputs ``I(x) = 0``; hidden layers are drawn ``N(0, 2/fan_in)``. The regression loss is
``½ mean_n ‖I(x_n) − h_n‖²`` (the ½ convention of :func:`sgtheory.sg.sg_loss`). The paper's input
model is unknown; both kinds are ours.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory.sg import init_mlp_zero_last
from sgtheory.validate import choice, int_in_range

INPUT_MODELS = ("linear", "mlp")


def init_input_model(kind: str, n_in: int, width: int, *, key, hidden: int = 256, n_hidden: int = 1,
                     dtype=jnp.float32) -> dict:
    """Parameters of one input model ``x`` ``(n, n_in)`` → ``(n, width)`` (final layer zero).

    Args:
        kind: ``"linear"`` or ``"mlp"``.
        n_in: input features; width: units of the layer input it predicts.
        key: JAX key for the hidden layers of an ``mlp``; hidden, n_hidden: their width and number.
        dtype: parameter dtype.

    Returns:
        ``{"layers": [{"W", "b"}, ...]}`` — one layer for ``linear``, ``n_hidden + 1`` for ``mlp``.
    """
    choice(kind, "input model", INPUT_MODELS)
    sizes = [n_in, width]
    if kind == "mlp":
        sizes = [n_in] + [int_in_range(hidden, "input-model hidden units", 1)] * int_in_range(
            n_hidden, "input-model hidden layers", 1) + [width]
    return init_mlp_zero_last(key, sizes, dtype)


def apply_input_model(params: dict, x):
    """The synthetic input ``I(x)``.

    Args:
        params: the input model's parameters.
        x: inputs ``(n, n_in)``.

    Returns:
        ``I(x)`` ``(n, width)``.
    """
    z = x
    for layer in params["layers"][:-1]:
        z = jax.nn.relu(z @ layer["W"] + layer["b"][None, :])
    last = params["layers"][-1]
    return z @ last["W"] + last["b"][None, :]


def input_loss(params: dict, x, target):
    """Regression loss ``½ mean_n ‖I(x_n) − target_n‖²`` of the input model.

    Args:
        params: the input model's parameters.
        x: inputs ``(n, n_in)``.
        target: the activations it should predict ``(n, width)``.

    Returns:
        ``(loss, I(x))`` (the output as aux, for ``value_and_grad(has_aux=True)``).
    """
    out = apply_input_model(params, x)
    return 0.5 * jnp.mean(jnp.sum((out - target) ** 2, axis=1)), out


__all__ = ["INPUT_MODELS", "apply_input_model", "init_input_model", "input_loss"]
