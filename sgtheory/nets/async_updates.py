"""Asynchronous (stochastic) layer updates, and training with any optax transformation.

DNI (Jaderberg et al. 2017, arXiv 1608.05343, §3.1) observes that a net whose layers are decoupled by
conditional synthetic gradients still trains when each layer updates only at random times, e.g. with
probability ``p = 0.05`` per step. :func:`async_layers` wraps an optax transformation so that at every
step each *group* updates with probability ``p`` and is otherwise left exactly unchanged — its
parameters **and** its optimiser state (Adam's moments and step count), as if it had not been
called. The groups follow the trainer's ``(params, learned)`` tree (:func:`sgtheory.nets.train`):

- group ``i`` (``1..D``): hidden layer ``i`` (``params[i-1]``) together with the SG module at it
  (``learned[str(i)]``, if the method has one);
- group ``D + 1``: the output layer (``params[D]``).

The skips are drawn from the wrapper's own key, ``bernoulli(fold_in(key, t), p, (D + 1,))`` at
step ``t``, so a seed fixes them.

:func:`train_with_optimizer` runs :func:`sgtheory.nets.train` unchanged with a given optax
transformation in place of the ``adam``/``sgd`` it builds from a name (used for the async updates
and for learning-rate schedules such as DNI's step decay).
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sgtheory.errors import InputError


class AsyncState(NamedTuple):
    """``inner``: a list with the wrapped transformation's state for each group; ``key``; ``count`` (steps)."""

    inner: list
    key: Any
    count: Any


def _groups(tree) -> list:
    """Split the trainer's ``(params, learned)`` into ``[(params[i], learned[str(i+1)] or {}), ..., (output, {})]``."""
    params, learned = tree
    if not isinstance(params, (tuple, list)) or not isinstance(learned, dict):
        raise InputError("async_layers: expects the trainer's (params tuple, learned dict) tree")
    depth = len(params) - 1
    return [(params[i], learned.get(str(i + 1), {})) for i in range(depth)] + [(params[depth], {})]


def _merge(groups: list, like) -> tuple:
    """Inverse of :func:`_groups` for a tree shaped like ``like``."""
    params, learned = like
    return tuple(g[0] for g in groups), {k: groups[int(k) - 1][1] for k in learned}


def async_layers(inner: optax.GradientTransformation, p: float, *, key) -> optax.GradientTransformation:
    """``inner`` applied per layer group, each group updating only with probability ``p`` per step.

    ``p = 1`` is ``inner`` itself (per group; for Adam this is the same as one Adam over the
    whole tree, since Adam is elementwise). A skipped group gets a zero update and keeps its
    ``inner`` state. Groups: see the module docstring.
    """
    p = float(p)
    if not 0.0 < p <= 1.0:
        raise InputError(f"update probability p: must be in (0, 1], got {p!r}")

    def init(tree):
        return AsyncState([inner.init(g) for g in _groups(tree)], key, jnp.zeros((), jnp.int32))

    def update(updates, state, params=None):
        if params is None:
            raise InputError("async_layers: needs params")
        g_upd, g_par = _groups(updates), _groups(params)
        mask = jax.random.bernoulli(jax.random.fold_in(state.key, state.count), p, (len(g_upd),))
        new_upd, new_inner = [], []
        for m, u, s, w in zip(mask, g_upd, state.inner, g_par):
            u_new, s_new = inner.update(u, s, w)
            new_upd.append(jax.tree_util.tree_map(lambda a, m=m: jnp.where(m, a, jnp.zeros_like(a)), u_new))
            new_inner.append(jax.tree_util.tree_map(lambda a, b, m=m: jnp.where(m, a, b), s_new, s))
        return _merge(new_upd, updates), AsyncState(new_inner, state.key, state.count + 1)

    return optax.GradientTransformation(init, update)


@contextlib.contextmanager
def _optimizer_override(opt: optax.GradientTransformation):
    # nets.train builds its optimiser from a name with train.make_optimizer; substitute ours for
    # the duration of one call (nets.train does not take a transformation yet).
    train_module = importlib.import_module("sgtheory.nets.train")  # the module; nets.train is the function
    original = train_module.make_optimizer
    train_module.make_optimizer = lambda name, lr: opt
    try:
        yield
    finally:
        train_module.make_optimizer = original


def train_with_optimizer(data, config, method, opt: optax.GradientTransformation, *, lr: float, **kwargs):
    """:func:`sgtheory.nets.train` with the optax transformation ``opt`` as its optimiser.

    ``lr`` is recorded in the result's ``info`` only (``opt`` carries its own rate or schedule);
    ``kwargs`` go to :func:`sgtheory.nets.train` (``steps``, ``batch_size``, ``eval_every``, ``seed``...).
    """
    from sgtheory.nets import train

    if not isinstance(opt, optax.GradientTransformation):
        raise InputError(f"optimizer: expected an optax GradientTransformation, got {type(opt).__name__}")
    with _optimizer_override(opt):
        return train(data, config, method, lr=lr, **kwargs)


__all__ = ["AsyncState", "async_layers", "train_with_optimizer"]
