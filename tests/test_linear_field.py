"""The numpy field of the whole-grid case (sgtheory.linear.field) against JAX autodiff of the rules."""

import functools

import jax
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from sgtheory import linear as L
from sgtheory.linear import field as F
from sgtheory.linear import theory as T
from sgtheory.linear.rules import gradients
from sgtheory.testing import assert_trees_close, assert_trees_equal


def _case(sg, bias, k, seed=0):
    X, Y = L.datasets.make("correlated", 3, 120, seed)
    if k == 2:
        Y = np.hstack([Y, 0.5 * Y + X[:, :1]])
    pb = L.from_samples(X, Y).without_samples()
    cfg = L.Config(sg=sg, bias=bias)
    state = L.init(cfg, pb, key=jax.random.PRNGKey(seed))
    # a generic point: every entry moved (the SG no longer zero)
    rng = np.random.default_rng(seed)
    state = jax.tree_util.tree_map(lambda v: np.asarray(v) + 0.3 * rng.standard_normal(np.shape(v)), state)
    return cfg, pb, state


@functools.partial(jax.jit, static_argnums=0)
def _autodiff_jit(cfg, pb, state):
    x, unravel = ravel_pytree(state)
    G = lambda v: ravel_pytree(gradients(cfg, pb, unravel(v)))[0]
    return x, G(x), jax.jacfwd(G)(x)


def _autodiff(cfg, pb, state):
    """(x, G(x), DG(x)) of the rules' own field, by JAX (one compiled program)."""
    return tuple(np.asarray(v) for v in _autodiff_jit(cfg, pb, state))


@pytest.mark.parametrize("sg", ["none", "linear", "cond-linear"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("k", [1, 2])
def test_field_and_complex_step_jacobian_equal_autodiff(sg, bias, k):
    cfg, pb, state = _case(sg, bias, k)
    assert F.applicable(cfg)
    x, G_ref, D_ref = _autodiff(cfg, pb, state)
    np.testing.assert_array_equal(F.flatten(state), x)  # same coordinates as ravel_pytree
    # float64 on both sides, the same products in another order: agreement to round-off of O(1) entries
    np.testing.assert_allclose(F.field(cfg, pb, state)(x[:, None])[:, 0], G_ref, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(F.residual(cfg, pb, state), np.linalg.norm(G_ref), rtol=1e-11)
    # complex step: no subtraction, and its h² remainder (h = 1e-20) is far below round-off
    np.testing.assert_allclose(F.jacobian(cfg, pb, state), D_ref, rtol=1e-11, atol=1e-12)
    back = F.unflatten(state, x)
    assert_trees_equal(back, state)


def test_newton_step_equals_autodiff_newton_and_theory_unchanged():
    cfg, pb, state = _case("cond-linear", True, 2)
    new, res = F.newton(cfg, pb, state)
    ref, ref_res = T._newton_jit(cfg, pb, state)
    assert_trees_close(new, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res, float(ref_res), atol=1e-12)
    # the linearisation at the closed-form fixed point: numpy field vs the autodiff one
    fixed, r = T.fixed_point(cfg, pb, state)
    assert r < 1e-12
    D = np.asarray(T._flat_jacobian_jit(cfg, pb, fixed))
    np.testing.assert_allclose(T._flat_jacobian(cfg, pb, fixed), D, rtol=1e-11, atol=1e-12)


def test_not_applicable_outside_the_grid_case():
    assert not F.applicable(L.make_config("deep-linear", depth=1, width=3, sg="cond-linear", sg_layer=1))
    assert not F.applicable(L.Config(sg="mlp"))
    assert not F.applicable(L.Config(loss="log"))
