"""Assertions for pytrees, shared by the test suite and by users testing their own extensions.

Both compare the tree structure first (so a missing key or an extra layer fails with a clear message),
then every leaf as a numpy array.
"""

from __future__ import annotations

import jax
import numpy as np


def _pairs(a, b):
    sa, sb = jax.tree_util.tree_structure(a), jax.tree_util.tree_structure(b)
    if sa != sb:
        raise AssertionError(f"tree structures differ:\n  {sa}\n  {sb}")
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(a)[0]]
    return zip(paths, jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))


def assert_trees_equal(a, b) -> None:
    """Assert that two pytrees have the same structure and bit-identical leaves (shape, dtype, values).

    Args:
        a, b: pytrees of arrays.

    Raises:
        AssertionError: naming the first leaf (by its path) that differs.
    """
    for path, x, y in _pairs(a, b):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != y.dtype or x.shape != y.shape:
            raise AssertionError(f"leaf {path}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
        np.testing.assert_array_equal(x, y, err_msg=f"leaf {path}")


def assert_trees_close(a, b, *, rtol: float, atol: float = 0.0) -> None:
    """Assert that two pytrees have the same structure and leaves equal to tolerance.

    Args:
        a, b: pytrees of arrays (shapes must match; dtypes may differ, e.g. float32 vs float64).
        rtol, atol: as for :func:`numpy.testing.assert_allclose` (state the reason for them at the call).

    Raises:
        AssertionError: naming the first leaf (by its path) that differs.
    """
    for path, x, y in _pairs(a, b):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            raise AssertionError(f"leaf {path}: shape {x.shape} vs {y.shape}")
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"leaf {path}")


__all__ = ["assert_trees_equal", "assert_trees_close"]
