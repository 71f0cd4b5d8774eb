"""Synthetic-gradient modules for recurrent states, and the DNI + Aux prediction head.

An SG module ``M`` maps a boundary state ``s_b`` (``[h; c]`` for an LSTM), optionally concatenated
with a conditioning vector ``u_b`` (cDNI: the targets of the next window), to a prediction of
``∂(future losses)/∂s_b``, shaped like ``s_b``:

- ``linear``: ``M = [s, u] A + c``;
- ``mlp``: ``[s, u]`` → two ReLU layers of ``hidden`` units → ``state_size`` outputs.

Its input ``s`` is read raw (``sg_input="raw"``) or divided by its root mean square over units
(``"rms"``: ``s / √(mean_i s_i² + ε)``, per sequence). A raw linear SG's output scales with the state,
and Adam moves it by up to ``sg_lr·‖s‖₁`` per step; an LSTM's cell state is an unbounded integrator,
so on a text stream, where the state is never reset, a raw SG can overshoot its target and, injected,
drive the cell state further out (``sgtheory.rnn.diagnostics``; ``paper_repro.md``, recurrent DNI).
The ``rms`` input bounds the SG's output and its step whatever the state's scale.

The last layer starts at zero, so a fresh module outputs exactly 0 (Jaderberg et al. 2017) and a
fresh DNI run starts as truncated BPTT. The auxiliary head of DNI + Aux is linear, ``P(s) = s A + c``,
also zero at the start.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sgtheory.rnn.cores import affine
from sgtheory.sg import init_mlp_zero_last
from sgtheory.validate import choice, int_in_range

SG_MODULES = ("linear", "mlp")
SG_INPUTS = ("raw", "rms")
RMS_EPS = 1e-12  # keeps a zero state (a stream's start) at exactly zero input


def init_sg(kind: str, state_size: int, cond_size: int = 0, *, key, hidden: int = 256, dtype=jnp.float32) -> dict:
    """Parameters of an SG module whose last layer is zero.

    Args:
        kind: ``"linear"`` or ``"mlp"``.
        state_size: length of the state it reads and predicts.
        cond_size: length of the conditioning vector (0: unconditioned).
        key: JAX PRNG key (the MLP's hidden layers).
        hidden: hidden units per layer of an ``mlp`` module.
        dtype: parameter dtype.

    Returns:
        ``{"layers": [{"W", "b"}, ...]}``: one layer (linear) or three (mlp).
    """
    choice(kind, "sg module", SG_MODULES)
    int_in_range(state_size, "state size", 1)
    int_in_range(cond_size, "conditioning size", 0)
    n_in = state_size + cond_size
    sizes = [n_in, state_size] if kind == "linear" else [n_in, int_in_range(hidden, "sg hidden units", 1),
                                                          hidden, state_size]
    return init_mlp_zero_last(key, sizes, dtype)


def sg_features(s, sg_input: str = "raw"):
    """The SG's view of states ``s``: ``s`` itself (``raw``) or ``s / √(mean_i s_i² + ε)`` (``rms``).

    Args:
        s: states ``(..., S)``.
        sg_input: ``"raw"`` or ``"rms"``.

    Returns:
        ``(..., S)``.
    """
    if sg_input == "raw":
        return s
    return s * jax.lax.rsqrt(jnp.mean(s ** 2, axis=-1, keepdims=True) + RMS_EPS)


def apply_sg(params: dict, s, cond=None, sg_input: str = "raw"):
    """The synthetic gradient ``M(s[, cond])``.

    Args:
        params: from :func:`init_sg`.
        s: states ``(..., state_size)``.
        cond: conditioning ``(..., cond_size)``, or None for an unconditioned module.
        sg_input: ``"raw"`` or ``"rms"`` (see :func:`sg_features`; the conditioning is read as it is).

    Returns:
        ``(..., state_size)``.
    """
    s = sg_features(s, sg_input)
    z = s if cond is None else jnp.concatenate([s, cond], axis=-1)
    layers = params["layers"]
    for layer in layers[:-1]:
        z = jax.nn.relu(affine(z, layer["W"], layer["b"]))
    return affine(z, layers[-1]["W"], layers[-1]["b"])


def init_aux(state_size: int, dtype=jnp.float32) -> dict:
    """The DNI + Aux head ``P(s) = s A + c``, zero at the start.

    Args:
        state_size: S.
        dtype: the parameters' dtype.

    Returns:
        ``{"A": (S, S), "c": (S,)}``.
    """
    int_in_range(state_size, "state size", 1)
    return {"A": jnp.zeros((state_size, state_size), dtype), "c": jnp.zeros((state_size,), dtype)}


def apply_aux(params: dict, s):
    """The head's prediction ``s A + c`` of the SG a window will emit.

    Args:
        params: the head (:func:`init_aux`).
        s: states ``(..., S)``.

    Returns:
        ``(..., S)``.
    """
    return affine(s, params["A"], params["c"])


__all__ = ["SG_INPUTS", "SG_MODULES", "apply_aux", "apply_sg", "init_aux", "init_sg", "sg_features"]
