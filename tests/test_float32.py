"""The default float32 paths (the sweep, the fused kernel's reference, the trainer) against float64.

The suite runs with x64 enabled (conftest); these tests ask for float32 explicitly, as the command line
does by default, and compare with the same computation in float64.
"""

import jax
import jax.numpy as jnp
import numpy as np

from sgtheory import linear as L
from sgtheory.linear.sweep import CONVERGED, DIVERGED, run_grid

F32 = jnp.float32


def _problem(dim, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, dim))
    Y = X @ rng.standard_normal((dim, k)) + 0.3 * rng.standard_normal((300, k)) + 0.5
    return L.from_samples(X, Y).without_samples()


def test_float32_sweep_matches_float64_outside_the_boundary():
    pb64 = _problem(3, 1)
    pb32 = pb64.astype(F32)
    cfg = L.Config(sg="cond-linear")
    rates = np.geomspace(0.01, 10.0, 9)
    r32 = L.sweep(cfg, pb32, rates, rates, steps=1500)
    r64 = L.sweep(cfg, pb64, rates, rates, steps=1500)
    assert r32.final_loss.dtype == np.float32 and r64.final_loss.dtype == np.float64
    d32, d64 = r32.status == DIVERGED, r64.status == DIVERGED
    assert d64.any() and (~d64).any()  # both kinds of run are compared
    # divergence is decided by growth of orders of magnitude, which float32 resolves as well as float64
    np.testing.assert_array_equal(d32, d64)
    # JAX draws a different initialisation in each dtype, so runs are compared where both converged: at
    # the same fixed point (the least-squares optimum), to float32 round-off of losses of order 0.05
    ok = (r32.status == CONVERGED) & (r64.status == CONVERGED)
    assert ok.sum() >= 10
    np.testing.assert_allclose(r32.final_loss[ok], r64.final_loss[ok], rtol=1e-5)


def test_fused_kernel_reference_in_float32():
    pb = _problem(4, 2).astype(F32)
    cfg = L.Config(sg="cond-linear", bias=True)
    opt = L.optimum(cfg, pb)
    n = 40
    alphas = jnp.asarray(np.geomspace(1e-3, 2.0, n), F32)
    betas = jnp.asarray(np.geomspace(1e-3, 2.0, n)[::-1], F32)
    s0 = L.init(cfg, pb, key=jax.random.PRNGKey(0))
    assert s0.net[0]["W"].dtype == F32
    states = jax.tree_util.tree_map(lambda v: jnp.stack([v] * n), s0)
    args = (cfg, pb, jnp.asarray(opt.W, F32), jnp.asarray(opt.b, F32), alphas, betas, states)
    xla = run_grid(*args, steps=60)
    ker = run_grid(*args, steps=60, fused="interpret")
    np.testing.assert_array_equal(ker["status"], xla["status"])
    # the same float32 arithmetic in another order: float32 round-off only
    np.testing.assert_allclose(ker["final_loss"], xla["final_loss"], rtol=1e-4, atol=1e-6)
    assert np.asarray(xla["final_loss"]).dtype == np.float32
