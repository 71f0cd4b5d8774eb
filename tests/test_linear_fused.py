"""The fused one-kernel sweep (Pallas) against the XLA whole-grid path, through Pallas' interpreter on the
CPU; and full-precision matrix products throughout the linear laboratory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgtheory import linear as L
from sgtheory.errors import InputError
from sgtheory.linear import fused, grid
from sgtheory.linear.sweep import DIVERGED, engine, run_grid


def _problem(dim, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, dim))
    Y = X @ rng.standard_normal((dim, k)) + 0.3 * rng.standard_normal((300, k)) + 0.5
    return L.from_samples(X, Y).without_samples()


GPU = jax.default_backend() == "gpu"
MODES = ["interpret", pytest.param(True, marks=pytest.mark.skipif(not GPU, reason="the compiled kernel needs a GPU"))]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sg,bias,k", [("cond-linear", False, 1), ("linear", True, 1), ("none", True, 2),
                                       ("cond-linear", True, 2)])
def test_fused_kernel_equals_xla_grid_path(sg, bias, k, mode):
    pb = _problem(4, k)
    cfg = L.Config(sg=sg, bias=bias)
    opt = L.optimum(cfg, pb)
    n = 300  # not a multiple of the block: the padding is exercised
    alphas = jnp.asarray(np.geomspace(1e-3, 2.0, n))
    betas = jnp.asarray(np.geomspace(1e-3, 2.0, n)[::-1])
    s0 = L.init(cfg, pb, key=jax.random.PRNGKey(0))
    states = jax.tree_util.tree_map(lambda v: jnp.stack([v] * n), s0)
    args = (cfg, pb, jnp.asarray(opt.W), jnp.asarray(opt.b), alphas, betas, states)
    xla = run_grid(*args, steps=60)
    ker = run_grid(*args, steps=60, fused=mode)
    np.testing.assert_array_equal(ker["status"], xla["status"])
    for f in ("steps_to_tol", "diverged_at"):
        np.testing.assert_array_equal(ker[f], xla[f])
    # same arithmetic in another order: float64 round-off only. Not tail_ratio: at convergence it is a
    # ratio of two residuals near 1e-12, whose round-off is relative 1e-5.
    for f in ("final_loss", "distance", "residual"):
        np.testing.assert_allclose(ker[f], xla[f], rtol=1e-8, atol=1e-12)
    status = np.asarray(xla["status"])
    if sg != "none":
        assert (status == DIVERGED).any() and (status != DIVERGED).any()  # both kinds compared


def test_fused_kernel_layout_round_trip():
    """Moments and state rows go into and out of the kernel at the right offsets: with rates 0 every
    configuration's state comes back as it went in, and r_0 is the norm of the XLA path's gradients."""
    pb = _problem(3, 2)
    cfg = L.Config(sg="cond-linear", bias=True)
    mom = grid.moments(pb, True, jnp.float64)
    rng = np.random.default_rng(1)
    n = 7
    g0 = {"theta": jnp.asarray(rng.standard_normal((4, 2, n))), "A": jnp.asarray(rng.standard_normal((2, 2, n))),
          "B": jnp.asarray(rng.standard_normal((2, 2, n))), "C": jnp.asarray(rng.standard_normal((2, n)))}
    zero = jnp.zeros(n)
    g, (frozen, r0, *_rest) = fused.scan(cfg, mom, g0, zero, zero, steps=3, tol=1e-5, blowup=1e8, mode="interpret")
    for key in g0:
        np.testing.assert_array_equal(g[key], g0[key])
    ref = grid.gradients(cfg, mom, g0)
    r_ref = np.sqrt(sum(np.sum(np.asarray(v) ** 2, axis=tuple(range(v.ndim - 1))) for v in ref.values()))
    np.testing.assert_allclose(r0, r_ref, rtol=1e-12)
    assert not np.asarray(frozen).any()


def test_kernel_option_is_checked():
    pb = _problem(3, 1)
    cfg = L.Config()
    with pytest.raises(InputError, match="kernel"):
        L.sweep(cfg, pb, [0.1], [0.1], steps=5, kernel="triton")
    if not GPU:
        with pytest.raises(InputError, match="kernel fused: needs a GPU"):
            L.sweep(cfg, pb, [0.1], [0.1], steps=5, kernel="fused")
    assert fused.applicable(cfg, 11, 1) and not fused.applicable(cfg, 101, 1)
    deep = L.make_config("deep-linear", depth=1, width=3)
    assert engine(cfg, pb, kernel="xla") == "grid" and engine(deep, pb) == "vmap"
    assert engine(cfg, pb) == ("fused" if GPU else "grid") and engine(cfg, pb, fast=False) == "vmap"
    assert not fused.applicable(L.make_config("deep-linear", depth=1, width=3), 4, 1)


def _dot_precisions(jaxpr):
    """The precision of every dot_general in ``jaxpr``, nested jaxprs (jit, scan, custom rules) included."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            out.append(eqn.params["precision"])
        for v in eqn.params.values():
            for j in (v if isinstance(v, (tuple, list)) else [v]):
                inner = getattr(j, "jaxpr", None)
                if inner is not None and hasattr(inner, "eqns"):
                    out += _dot_precisions(inner)
                elif hasattr(j, "eqns"):
                    out += _dot_precisions(j)
    return out


def test_every_matrix_product_is_full_precision():
    """GPUs default to TF32 products, which would stop residuals near 1e-3 of their start: every product
    in a step (deep linear, MLP SG, so all code paths with products) asks for the highest precision."""
    pb = _problem(3, 1)
    for cfg in (L.make_config("deep-linear", depth=2, width=3, sg="mlp", sg_layer=2, data="samples"),
                L.Config(sg="cond-linear")):
        if cfg.uses_samples:
            X, Y = L.datasets.make("teacher", 3, 50, 0, noise=0.5)
            problem = L.from_samples(X, Y)
        else:
            problem = pb
        s0 = L.init(cfg, problem, key=jax.random.PRNGKey(0))
        jaxpr = jax.make_jaxpr(lambda s, cfg=cfg, problem=problem: L.step(cfg, problem, s, 0.1, 0.1))(s0).jaxpr
        precisions = _dot_precisions(jaxpr)
        assert precisions, "no matrix product found"
        highest = jax.lax.Precision.HIGHEST
        assert all(p is not None and all(q == highest for q in p) for p in precisions), precisions
