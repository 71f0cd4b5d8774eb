"""Asynchronous (stochastic) layer updates, and DNI's step-decay schedule.

DNI (Jaderberg et al. 2017, arXiv 1608.05343, §3.1) observes that a net whose layers are decoupled by
conditional synthetic gradients still trains when each layer updates only at random times, e.g. with
probability ``p = 0.05`` per step. :func:`async_layers` wraps an optax transformation so that at every
step each layer updates with probability ``p`` and is otherwise left exactly unchanged — its
parameters **and** its optimiser state (Adam's moments and step count), as if it had not been
called. It applies to the two trees :func:`sgtheory.nets.train` optimises:

- the net's parameters, a tuple of ``D + 1`` layer dicts: entry ``j`` is hidden layer ``j + 1``
  (the output layer for ``j = D``) and follows ``mask[j]``;
- the method's learned state, a dict of SG modules keyed by their hidden layer ``"i"``, following
  ``mask[i - 1]``, and of synthetic-input models keyed ``"I{j}"`` (the input of layer ``j``,
  :mod:`sgtheory.nets.input_model`), following ``mask[j - 1]`` — the same draw as layer ``i`` (``j``)
  when both wrappers share ``key``, so a layer, the SG module it learns from and its input model
  update together (DNI's complete-unlock experiment: "its weights, its SG and its input model").

At step ``t`` the mask is :func:`layer_mask` ``(key, t, p)`` = ``bernoulli(fold_in(key, t), p, (MAX_DEPTH + 1,))``:
a seed fixes the skips. ``p`` may be a traced array (e.g. under ``vmap`` over update probabilities);
it is checked to lie in (0, 1] whenever it is a concrete number.

Both plug into :func:`sgtheory.nets.train` through its ``optimizer`` argument, which takes a factory
``rate -> optax.GradientTransformation`` (called with ``lr`` for the net and ``sg_lr`` for the SG modules),
e.g. ``optimizer=lambda r: async_layers(optax.adam(r), p, key=key)`` or
``optimizer=lambda r: optax.adam(step_decay(r, steps))``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sgtheory.errors import InputError
from sgtheory.nets.mlp import MAX_DEPTH


class AsyncState(NamedTuple):
    """``inner``: the wrapped transformation's state per layer (a list, or a dict for SG modules);
    ``key``; ``count``: steps taken."""

    inner: Any
    key: Any
    count: Any


def _slots(tree) -> list[tuple[Any, int]]:
    """``(slot, mask index)`` pairs: positions of a layer tuple, or method-state keys ``"i"`` / ``"Ii"`` → ``i - 1``."""
    if isinstance(tree, (tuple, list)):
        return [(j, j) for j in range(len(tree))]
    if isinstance(tree, dict):
        try:
            return [(k, int(k[1:] if k.startswith("I") else k) - 1) for k in tree]
        except ValueError:
            raise InputError(f"async_layers: method-state keys must be layer numbers or I<layer>, got {list(tree)}"
                             ) from None
    raise InputError(f"async_layers: expects a tuple of layers or a dict of SG modules, got {type(tree).__name__}")


def check_probability(p, name: str = "update probability p"):
    """Check that an update probability lies in (0, 1].

    Args:
        p: the probability (a number, or a traced array, which passes unchecked).
        name: the name used in the message.

    Returns:
        ``p`` as a float, or unchanged if it is a traced array.

    Raises:
        InputError: a number outside (0, 1].
    """
    try:
        v = float(p)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return p
    if not 0.0 < v <= 1.0:
        raise InputError(f"{name}: must be in (0, 1], got {p!r}")
    return v


def layer_mask(key, t, p):
    """Which layers update at step ``t``: ``bernoulli(fold_in(key, t), p)`` for each of ``MAX_DEPTH + 1`` slots.

    Args:
        key: the skips' JAX key; t: step (int or traced); p: update probability in (0, 1].

    Returns:
        Boolean ``(MAX_DEPTH + 1,)``; entry ``j`` is layer ``j + 1`` (see the module docstring).
    """
    return jax.random.bernoulli(jax.random.fold_in(key, t), p, (MAX_DEPTH + 1,))


def _rebuild(tree, values: dict):
    return tuple(values[j] for j in range(len(tree))) if isinstance(tree, (tuple, list)) else dict(values)


def async_layers(inner: optax.GradientTransformation, p: float, *, key) -> optax.GradientTransformation:
    """``inner`` applied per layer, each layer updating only with probability ``p`` per step.

    ``p = 1`` is ``inner`` itself (per layer; the same as ``inner`` on the whole tree for
    elementwise optimisers such as Adam and SGD). A skipped layer gets a zero update and keeps
    its ``inner`` state. Layers and mask indices: see the module docstring.

    Args:
        inner: the per-layer optimiser; p: update probability in (0, 1] (a number, or a traced array);
        key: the skips' JAX key (share it between the net's and the method state's wrappers).

    Returns:
        An ``optax.GradientTransformation`` whose ``update`` needs ``params``.
    """
    p = check_probability(p)

    def init(tree):
        return AsyncState(_rebuild(tree, {s: inner.init(tree[s]) for s, _ in _slots(tree)}), key,
                          jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        if params is None:
            raise InputError("async_layers: needs params")
        mask = layer_mask(state.key, state.count, p)
        new_upd, new_inner = {}, {}
        for s, j in _slots(updates):
            u, st = inner.update(updates[s], state.inner[s], params[s])
            new_upd[s] = jax.tree_util.tree_map(lambda a, m=mask[j]: jnp.where(m, a, jnp.zeros_like(a)), u)
            new_inner[s] = jax.tree_util.tree_map(lambda a, b, m=mask[j]: jnp.where(m, a, b), st, state.inner[s])
        return _rebuild(updates, new_upd), AsyncState(_rebuild(updates, new_inner), state.key, state.count + 1)

    return optax.GradientTransformation(init, update)


def step_decay(lr: float, steps: int, *, at=(0.6, 0.8), factor: float = 0.1):
    """DNI's feed-forward schedule scaled to ``steps``: ``lr``, times ``factor`` at each fraction in ``at``.

    Jaderberg et al. (2017) divide 3e-5 by 10 at 300k and 400k of 500k steps: ``at = (0.6, 0.8)``.

    Args:
        lr: the initial rate.
        steps: the run's steps.
        at: fractions of ``steps`` where the rate drops.
        factor: the drop.

    Returns:
        An optax schedule (step -> rate).
    """
    return optax.piecewise_constant_schedule(lr, {int(a * steps): factor for a in at})


__all__ = ["AsyncState", "async_layers", "check_probability", "layer_mask", "step_decay"]
