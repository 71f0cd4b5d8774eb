"""The train/apply shift of synthetic gradients under synthetic inputs, measured on one batch.

With forward unlocking (:mod:`sgtheory.nets.methods.unlock`) the SG module ``M_k`` is *trained* at
the synthetic input ``ĥ_k = I_{k+1}(x)`` of the part above it, on the gradient the cut net produces
there, but the net that is evaluated and deployed is the real composed one, whose activation at
layer ``k`` is the real ``h_k`` (public code does the same: koz4k/dni-pytorch's
``BidirectionalInterface`` trains the gradient synthesizer on the synthesised message and applies it
to the real one). :func:`train_apply_shift` measures, per SG layer ``k``:

- ``input_error``: ``mean_n ‖ĥ_k − h_k‖² / mean_n ‖h_k‖²`` (0 without input models);
- ``train_loss``: ``½ mean_n ‖M_k(ĥ_k) − t̂_k‖²`` on the cut net — the SG loss it is trained on;
- ``apply_loss``: ``½ mean_n ‖M_k(h_k) − t_k‖²`` on the real net, ``t_k`` the same rule's target there
  (the bootstrapped ``δa_{k+1} W_{k+1}ᵀ`` for the ``-every`` methods, the true gradient for one SG);
- ``cosine``: the cosine between ``M_k(h_k)`` and the true ``∂ℓ/∂h_k`` of the real net, over the batch.

Without input models (or with exact ones) the cut net is the real net and ``train_loss == apply_loss``.
"""

from __future__ import annotations

import jax.numpy as jnp

from sgtheory.errors import InputError
from sgtheory.nets.methods import MethodState
from sgtheory.nets.methods.chain_rule import Backprop
from sgtheory.nets.methods.synthetic import SyntheticGradient
from sgtheory.nets.methods.unlock import record_synthetic
from sgtheory.nets.mlp import MLPConfig, init_bn_state
from sgtheory.nets.tape import record

SHIFT_KEYS = ("input_error", "train_loss", "apply_loss", "cosine")


def _cosine(a, b):
    return jnp.sum(a * b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-30)


def train_apply_shift(method: SyntheticGradient, state: MethodState, params, x, y_onehot, config: MLPConfig) -> dict:
    """Where each SG module is trained versus where it is applied, on the batch ``x`` (training-mode BN).

    Args:
        method: a synthetic-gradient method (with or without ``input_model``).
        state: its state (SG modules, input models); params: the net's parameters.
        x, y_onehot: a batch ``(n, n_in)`` and its one-hot labels ``(n, C)``; config: the net's shape.

    Returns:
        Dict of ``(K,)`` arrays, one entry per SG layer in ``method.sg_layers(depth)`` order (top first):
        ``input_error``, ``train_loss``, ``apply_loss``, ``cosine`` (see the module docstring).
    """
    if not isinstance(method, SyntheticGradient):
        raise InputError(f"train/apply shift: {method.name} has no synthetic-gradient module")
    real, _ = record(params, init_bn_state(config, x.dtype), x, y_onehot, config)
    cr_real, t_real, loss_real = method.credit_with_targets(state, real)
    layers = method.sg_layers(config.depth)
    if method.input_model is None:
        loss_cut, err = loss_real, {k: jnp.zeros((), x.dtype) for k in layers}
    else:
        synthetic = method.synthetic_inputs(state, x, config.depth)
        cut = record_synthetic(params, x, y_onehot, config, synthetic)
        _, _, loss_cut = method.credit_with_targets(state, cut)
        err = {k: jnp.mean(jnp.sum((synthetic[k + 1] - real.hiddens[k]) ** 2, axis=1))
               / (jnp.mean(jnp.sum(real.hiddens[k] ** 2, axis=1)) + 1e-30) for k in layers}
    true = Backprop().credit(MethodState({}, {}), real).signals
    return {"input_error": jnp.stack([err[k] for k in layers]),
            "train_loss": jnp.stack([loss_cut[k] for k in layers]),
            "apply_loss": jnp.stack([loss_real[k] for k in layers]),
            "cosine": jnp.stack([_cosine(cr_real.signals[k - 1], true[k - 1]) for k in layers])}


__all__ = ["SHIFT_KEYS", "train_apply_shift"]
