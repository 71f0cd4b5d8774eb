"""Validation of a checkpoint's arrays against the shapes its config and method imply.

The expected arrays come from ``jax.eval_shape`` of the real initialisers (:func:`sgtheory.nets.init_mlp`,
the method's ``init``), so every method, including ones added later, is checked the same way without
allocating anything. Every problem is one :class:`sgtheory.InputError` line naming the array.
"""

from __future__ import annotations

import jax
import numpy as np

from sgtheory.errors import InputError


def _shapes(tree, prefix: str, out: dict) -> dict:
    """``{"prefix/key/...": shape}`` in the key convention of :mod:`sgtheory.nets.checkpoint`."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            _shapes(v, f"{prefix}/{k}", out)
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            _shapes(v, f"{prefix}/{i}", out)
    else:
        out[prefix] = tuple(tree.shape)
    return out


def expected_shapes(config, method) -> dict:
    """Every array a checkpoint of ``config`` trained with ``method`` holds (metrics aside), with its shape.

    Args:
        config: the net.
        method: the credit-assignment method.

    Returns:
        Flat key → shape.
    """
    from sgtheory.nets.mlp import init_bn_state, init_mlp

    def build():
        key = jax.random.PRNGKey(0)
        return init_mlp(config, key=key), init_bn_state(config), method.init(config, key=key)

    params, bn, state = jax.eval_shape(build)
    out: dict = {}
    _shapes(tuple(params), "params", out)
    _shapes(tuple(bn), "bn", out)
    _shapes(state.learned, "sg", out)
    _shapes(state.fixed, "fixed", out)
    return out


def check_arrays(arrays: dict, config, method, where):
    """Check a checkpoint's arrays against its config and method.

    Args:
        arrays: flat keys → numpy arrays, as read from the file.
        config: the net.
        method: the credit-assignment method.
        where: the checkpoint's path, for the messages.

    Returns:
        ``(params, bn_state, method_state, metrics)``.

    Raises:
        InputError: a missing, extra, wrongly shaped or non-float array.
    """
    from sgtheory.io import unflatten_arrays
    from sgtheory.nets.methods import MethodState

    expected = expected_shapes(config, method)
    state_keys = [k for k in arrays if k.split("/", 1)[0] in ("params", "bn", "sg", "fixed")]
    extra = sorted(set(state_keys) - set(expected))
    if extra:
        raise InputError(f"checkpoint {where}: array {extra[0]} does not belong to a {config.depth}x{config.width} "
                         f"{method.name} net")
    for key, shape in expected.items():
        if key not in arrays:
            raise InputError(f"checkpoint {where}: missing array {key}")
        a = arrays[key]
        if a.shape != shape:
            raise InputError(f"checkpoint {where}: array {key} has shape {a.shape}, the config needs {shape}")
        if not np.issubdtype(a.dtype, np.floating):
            raise InputError(f"checkpoint {where}: array {key} has dtype {a.dtype}, expected floating point")
        if not np.all(np.isfinite(a)):
            raise InputError(f"checkpoint {where}: array {key} is not finite (the run diverged)")
    metrics = unflatten_arrays(arrays, "metrics") or {}
    _check_metrics(metrics, config, where)
    params = tuple(unflatten_arrays(arrays, "params"))
    bn = tuple(unflatten_arrays(arrays, "bn") or [])
    state = MethodState(unflatten_arrays(arrays, "sg"), unflatten_arrays(arrays, "fixed"))
    return params, bn, state, metrics


def _check_metrics(metrics, config, where) -> None:
    if not isinstance(metrics, dict):
        raise InputError(f"checkpoint {where}: metrics are not a table of named arrays")
    if "step" not in metrics:
        return
    n = metrics["step"].shape
    if len(n) != 1:
        raise InputError(f"checkpoint {where}: array metrics/step should be 1-D, got shape {n}")
    need = {"train_loss": n, "test_error": n, "sg_loss": n, "cosine": (n[0], config.depth)}
    for key, shape in need.items():
        if key in metrics and np.shape(metrics[key]) != shape:
            raise InputError(f"checkpoint {where}: array metrics/{key} has shape {np.shape(metrics[key])}, "
                             f"expected {shape}")


__all__ = ["check_arrays", "expected_shapes"]
