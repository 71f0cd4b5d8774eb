"""Fully connected nets (MLPs) as pure functions over pytrees.

A net with ``depth`` hidden layers of ``width`` units maps ``h_0 = x`` through

    a_i = h_{i-1} W_i + b_i,   h_i = f(BN_i(a_i)),   i = 1..depth,
    logits = h_depth W_out + b_out,

with ``f`` ReLU, sigmoid or tanh and ``BN_i`` optional batch normalisation (Ioffe & Szegedy 2015:
batch statistics in training, running averages at evaluation, learned scale ``gamma`` and shift
``beta``). Parameters are a tuple of dicts, one per layer input→output (``params[i-1]`` is layer
``i``; ``params[-1]`` the output layer); batch-norm running statistics are a separate state pytree
(a tuple of ``{"mean", "var"}`` dicts, one per hidden layer, or ``()`` without batch-norm).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp

from sgtheory.errors import InputError
from sgtheory.validate import choice, int_in_range

ACTIVATIONS = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}
MAX_DEPTH = 50
BN_EPS = 1e-5
BN_MOMENTUM = 0.9  # running = momentum * running + (1 - momentum) * batch


@dataclass(frozen=True)
class MLPConfig:
    """Shape of an MLP: ``n_in`` inputs, ``depth`` hidden layers (1..50) of ``width`` units, ``n_out`` logits."""

    n_in: int
    n_out: int
    depth: int
    width: int
    activation: str = "relu"
    batchnorm: bool = False

    def __post_init__(self):
        int_in_range(self.n_in, "n_in", 1)
        int_in_range(self.n_out, "n_out", 1)
        int_in_range(self.depth, "depth", 1, MAX_DEPTH)
        int_in_range(self.width, "width", 1)
        choice(self.activation, "activation", ACTIVATIONS)
        if not isinstance(self.batchnorm, bool):
            raise InputError(f"batchnorm: expected True or False, got {self.batchnorm!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MLPConfig:
        try:
            return cls(**{k: d[k] for k in ("n_in", "n_out", "depth", "width", "activation", "batchnorm")})
        except (KeyError, TypeError) as exc:
            raise InputError(f"MLP config: missing or bad field ({exc})") from None


def init_mlp(config: MLPConfig, *, key, dtype=jnp.float32) -> tuple:
    """Initial parameters: ``W ~ N(0, g²/fan_in)`` (g = √2 for ReLU, 1 otherwise; output layer g = 1), b = 0.

    With batch-norm each hidden layer also has ``gamma = 1`` and ``beta = 0``.

    Args:
        config: the net.
        key: the JAX PRNG key of the weights.
        dtype: the parameters' dtype.

    Returns:
        A tuple of ``depth + 1`` dicts with ``W`` ``(fan_in, fan_out)`` and ``b`` ``(fan_out,)``.
    """
    sizes = [config.n_in] + [config.width] * config.depth + [config.n_out]
    keys = jax.random.split(key, len(sizes) - 1)
    gain = 2.0 if config.activation == "relu" else 1.0
    params = []
    for i, (k, fan_in, fan_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
        g2 = gain if i < config.depth else 1.0
        layer = {"W": jax.random.normal(k, (fan_in, fan_out), dtype) * jnp.sqrt(g2 / fan_in).astype(dtype),
                 "b": jnp.zeros((fan_out,), dtype)}
        if config.batchnorm and i < config.depth:
            layer["gamma"] = jnp.ones((fan_out,), dtype)
            layer["beta"] = jnp.zeros((fan_out,), dtype)
        params.append(layer)
    return tuple(params)


def init_bn_state(config: MLPConfig, dtype=jnp.float32) -> tuple:
    """Running batch-norm statistics (mean 0, var 1), or ``()`` without batch-norm.

    Args:
        config: the net.
        dtype: the statistics' dtype.

    Returns:
        A tuple of ``depth`` dicts ``{"mean", "var"}`` of shape ``(width,)``, or ``()``.
    """
    if not config.batchnorm:
        return ()
    return tuple({"mean": jnp.zeros((config.width,), dtype), "var": jnp.ones((config.width,), dtype)}
                 for _ in range(config.depth))


def norm_act(layer: dict, a, config: MLPConfig, stats: dict | None, train: bool):
    """``h = f(BN(a))`` for one hidden layer; returns ``(h, batch_stats)`` (``batch_stats`` None without BN).

    In training mode (or when ``stats`` is None) BN uses the batch mean/variance of ``a`` (n, width).
    """
    act = ACTIVATIONS[config.activation]
    if not config.batchnorm:
        return act(a), None
    if train or stats is None:
        mean, var = jnp.mean(a, axis=0), jnp.var(a, axis=0)
    else:
        mean, var = stats["mean"], stats["var"]
    a_hat = (a - mean[None, :]) * jax.lax.rsqrt(var + BN_EPS)[None, :]
    return act(a_hat * layer["gamma"][None, :] + layer["beta"][None, :]), {"mean": mean, "var": var}


def update_bn_state(state: tuple, batch_stats: list) -> tuple:
    """Exponential moving average of batch statistics (momentum :data:`BN_MOMENTUM`)."""
    m = BN_MOMENTUM
    return tuple({k: m * s[k] + (1 - m) * jax.lax.stop_gradient(b[k]) for k in ("mean", "var")}
                 for s, b in zip(state, batch_stats))


def forward_with_state(params, x, config: MLPConfig, *, state=None, train: bool = False):
    """Like :func:`forward`, also returning the updated batch-norm state (unchanged unless ``train``).

    Args:
        params: from :func:`init_mlp`.
        x: inputs ``(n, n_in)``.
        config: the net.
        state: running batch-norm statistics (:func:`init_bn_state`), or None.
        train: normalise with batch statistics and update ``state``.

    Returns:
        ``(logits, hiddens, new_state)``, the first two as in :func:`forward`.
    """
    h, hiddens, batch_stats = x, [], []
    for i in range(config.depth):
        layer = params[i]
        stats = state[i] if (state and not train) else None
        h, bs = norm_act(layer, h @ layer["W"] + layer["b"][None, :], config, stats, train)
        hiddens.append(h)
        batch_stats.append(bs)
    logits = h @ params[-1]["W"] + params[-1]["b"][None, :]
    new_state = update_bn_state(state, batch_stats) if (train and state) else state
    return logits, hiddens, new_state


def forward(params, x, config: MLPConfig, *, state=None, train: bool = False):
    """Run the net on ``x`` ``(n, n_in)``.

    With batch-norm, ``train=True`` (or ``state=None``) normalises with batch statistics, otherwise with
    the running statistics in ``state``.

    Args:
        params: from :func:`init_mlp`.
        x: inputs ``(n, n_in)``.
        config: the net.
        state: running batch-norm statistics (:func:`init_bn_state`), or None.
        train: training mode (batch statistics).

    Returns:
        ``(logits, hiddens)``: logits ``(n, n_out)`` and the list of the ``depth`` post-activation
        hidden layers input→output, each ``(n, width)``.
    """
    logits, hiddens, _ = forward_with_state(params, x, config, state=state, train=train)
    return logits, hiddens
