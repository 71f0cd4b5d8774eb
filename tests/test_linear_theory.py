"""Linear stability theory: Jacobian vs finite differences, closed form vs Jacobian, theory vs simulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgtheory import InputError
from sgtheory import linear as L
from sgtheory.linear import theory as T
from sgtheory.linear.agreement import in_band

SXX, SXY, SYY = 2.0, 1.0, 1.5  # scalar moments with sxx·syy > sxy² (noisy targets)
jacobian = jax.jit(T.jacobian, static_argnums=0)


def _scalar():
    pb = L.from_moments([[SXX]], [[SXY]], [[SYY]])
    cfg = L.Config(sg="cond-linear", bias=False)
    return pb, cfg, L.init(cfg, pb, key=jax.random.PRNGKey(0))


def test_jacobian_matches_finite_differences():
    # Forward-mode Jacobian of the update map vs central differences (h = 1e-6, float64: error ~1e-9).
    X, Y = L.datasets.make("correlated", 3, 100, 0)
    pb = L.from_samples(X, Y)
    cfg = L.make_config("deep-linear", depth=1, width=3, sg="cond-linear", sg_layer=1)
    state = L.init(cfg, pb, key=jax.random.PRNGKey(1))
    state = L.trajectory(cfg, pb, state, 0.05, 0.1, 50, every=50).final  # a generic (non-zero SG) point
    J = np.asarray(jacobian(cfg, pb, state, 0.07, 0.3))
    x, unravel = jax.flatten_util.ravel_pytree(state)
    F = jax.jit(jax.vmap(lambda v: jax.flatten_util.ravel_pytree(L.step(cfg, pb, unravel(v), 0.07, 0.3))[0]))
    h = 1e-6
    E = np.eye(x.size)
    x = np.asarray(x)
    fd = (np.asarray(F(x[None, :] + h * E)) - np.asarray(F(x[None, :] - h * E))).T / (2 * h)
    np.testing.assert_allclose(J, fd, atol=1e-7)


def test_scalar_closed_form_boundary_matches_jacobian():
    pb, cfg, s0 = _scalar()
    fixed, res = T.fixed_point(cfg, pb, s0)
    assert res < 1e-12
    np.testing.assert_allclose(np.asarray(fixed.net[0]["W"]), [[SXY / SXX]], rtol=1e-12)
    a_max, b_max = T.scalar_boundary(SXX, SXY, SYY)
    q = SXY ** 2 / SXX
    for a, b in [(0.3, 0.2), (0.99 * a_max, 0.5), (0.5, 0.99 * b_max), (1.01 * a_max, 0.2), (0.2, 1.01 * b_max)]:
        # the closed-form Jacobian of the module docstring vs autodiff, and both vs the boundary
        closed = np.array([[1 - a * SXX, -a * SXY, -a * SXY, 0], [0, 1 - b * q, -b * q, 0],
                           [0, -b * q, 1 - b * SYY, 0], [0, 0, 0, 1 - b]])
        J = np.asarray(jacobian(cfg, pb, fixed, a, b))
        np.testing.assert_allclose(J, closed, atol=1e-12)
        rho = np.abs(np.linalg.eigvals(J)).max()
        assert (rho < 1) == (a < a_max and b < b_max)
    lin = T.linearise(cfg, pb, fixed, residual=res)
    np.testing.assert_allclose(T.spectral_radius(lin, 0.3, 0.2), np.abs(np.linalg.eigvals(
        np.asarray(jacobian(cfg, pb, fixed, 0.3, 0.2)))).max(), rtol=1e-12)


def test_scalar_boundary_against_simulation():
    # Local stability, as the theory states it: started 1e-3 away from the fixed point, runs 2% inside
    # the boundary return to it and runs 2% outside leave (ρ ≈ 0.98 vs 1.02 over 2000 steps: 1e-17 vs 1e17).
    pb, cfg, s0 = _scalar()
    fixed, _ = T.fixed_point(cfg, pb, s0)
    start = jax.tree_util.tree_map(lambda v: v + 1e-3, fixed)
    a_max, b_max = T.scalar_boundary(SXX, SXY, SYY)
    run = jax.jit(lambda a, b: L.trajectory(cfg, pb, start, a, b, 2000, every=2000).sg_loss[-1]
                  + L.trajectory(cfg, pb, start, a, b, 2000, every=2000).loss[-1])
    opt = L.optimum(cfg, pb).loss
    for a, b, stable in [(0.98 * a_max, 0.5 * b_max, True), (0.5 * a_max, 0.98 * b_max, True),
                         (1.02 * a_max, 0.5 * b_max, False), (0.5 * a_max, 1.02 * b_max, False)]:
        excess = float(run(a, b)) - opt
        assert (abs(excess) < 1e-12) == stable, (a, b, excess)
    with pytest.raises(InputError):
        T.scalar_boundary(1.0, 1.0, 1.0)  # noiseless: the SG fixed point is not isolated


def test_deep_linear_theory_predicts_local_simulation():
    # Deep linear, SG at the middle layer: neutral directions (the W_i ↔ W_{i+1} symmetry) are factored
    # out. Started 1e-4 from the fixed point, a run stays within 1e-2 of it where ρ < 1 (slow modes decay
    # slowly, neutral ones drift) and leaves it (distance > 5e-2) where ρ > 1 (8×8 grid, float64, cells in
    # the ±5% band not counted). Deep nets that leave may still settle at a flatter fixed point: the theory
    # is about this one.
    X, Y = L.datasets.make("teacher", 3, 200, 0, noise=0.5)
    pb = L.from_samples(X, Y).without_samples()
    cfg = L.make_config("deep-linear", depth=2, width=3, sg="cond-linear", sg_layer=2)
    s0 = L.init(cfg, pb, key=jax.random.PRNGKey(0), init_scale=0.3)
    fixed, res = T.fixed_point(cfg, pb, s0)
    assert res < 1e-10
    lin = T.linearise(cfg, pb, fixed, residual=res)
    assert lin.n_neutral > 0
    alphas, betas = np.geomspace(0.03, 3, 8), np.geomspace(0.03, 3, 8)
    rho = T.spectral_radius(lin, alphas[:, None], betas[None, :])
    assert 0.1 < np.mean(rho < 1) < 0.9  # the grid straddles the boundary
    x_star, unravel = jax.flatten_util.ravel_pytree(fixed)
    start = unravel(x_star + 1e-4 * jax.random.normal(jax.random.PRNGKey(1), x_star.shape))

    def distance(a, b):
        final = L.trajectory(cfg, pb, start, a, b, 3000, every=3000).final
        d = jnp.linalg.norm(jax.flatten_util.ravel_pytree(final)[0] - x_star)
        return jnp.where(jnp.isfinite(d), d, jnp.inf)

    A, B = np.meshgrid(alphas, betas, indexing="ij")
    dist = np.asarray(jax.jit(jax.vmap(distance))(A.ravel(), B.ravel())).reshape(8, 8)
    counted = ~in_band(rho, alphas, betas)
    assert counted.mean() > 0.8
    assert (dist[counted & (rho < 1)] < 1e-2).all() and (dist[counted & (rho > 1)] > 5e-2).all()


def test_band_excludes_cells_next_to_the_boundary():
    a = np.geomspace(0.1, 10, 41)
    rho = np.broadcast_to(np.abs(1 - a * 1.0)[:, None], (41, 3))  # boundary at α = 2
    band = in_band(rho, a, np.array([1.0, 2.0, 3.0]))
    near = np.abs(np.log(a / 2.0)) < np.log(1.05)
    assert band[near].all() and not band[np.abs(np.log(a / 2.0)) > 0.2].any()


@pytest.mark.parametrize("bias", [True, False])
def test_block_triangular_shortcut_equals_full_eigenproblems(bias):
    """Linear model, MSE, fitted cond-linear SG: J is block triangular, and the per-rate shortcut of
    spectral_radius gives the per-pair eigenvalue answer (float64 eigenvalues of the same matrices: 1e-12)."""
    X, Y = L.datasets.make("teacher", 6, 300, 0, noise=0.5)
    pb = L.from_samples(X, Y).without_samples()
    cfg = L.Config(sg="cond-linear", bias=bias)
    fixed, res = T.fixed_point(cfg, pb, L.init(cfg, pb, key=jax.random.PRNGKey(0)))
    lin = T.linearise(cfg, pb, fixed, residual=res)
    assert lin.n_neutral == 0 and T._triangular_blocks(lin) is not None
    rng = np.random.default_rng(0)
    a, b = np.exp(rng.uniform(-5, 2.5, (40, 1))), np.exp(rng.uniform(-5, 2.5, (1, 30)))
    full = T.spectral_radius(lin._replace(model_rows=None), a, b)
    fast = T.spectral_radius(lin, a, b)
    np.testing.assert_allclose(fast, full, rtol=1e-12, atol=1e-12)
    assert (full < 1).any() and (full > 1).any()
    # and the direct Jacobian of the update map agrees at a few pairs
    for i, j in [(0, 0), (7, 11), (39, 29)]:
        J = np.asarray(jacobian(cfg, pb, fixed, float(a[i, 0]), float(b[0, j])))
        np.testing.assert_allclose(fast[i, j], np.abs(np.linalg.eigvals(J)).max(), rtol=1e-10)


def test_block_shortcut_not_taken_when_coupled():
    """A deep linear net's SG block is coupled to the model (and has neutral directions): full path."""
    X, Y = L.datasets.make("teacher", 3, 200, 0, noise=0.5)
    pb = L.from_samples(X, Y).without_samples()
    cfg = L.make_config("deep-linear", depth=1, width=3, sg="cond-linear", sg_layer=1)
    fixed, res = T.fixed_point(cfg, pb, L.init(cfg, pb, key=jax.random.PRNGKey(0)))
    assert T._triangular_blocks(T.linearise(cfg, pb, fixed, residual=res)) is None


@pytest.mark.parametrize("sg, bias", [("cond-linear", True), ("linear", True), ("cond-linear", False)])
def test_exact_fixed_point_sg_fit_matches_fit_sg(sg, bias):
    # The closed-form fixed point fits the SG in numpy (theory._fit_output_sg); the reference is the
    # JAX fit_sg at the same OLS point. Both are float64 least squares on the same rows: 1e-10.
    X, Y = L.datasets.make("teacher", 4, 200, 3, noise=0.5)
    pb = L.from_samples(X, Y)
    cfg = L.Config(sg=sg, bias=bias)
    start = L.init(cfg, pb, key=jax.random.PRNGKey(0))
    fixed, res = T.fixed_point(cfg, pb, jax.eval_shape(lambda: start))  # an abstract start will do
    assert T.exact_fixed_point(cfg) and res < 1e-10
    ref = L.fit_sg(cfg, pb, L.State(fixed.net, start.sg))
    for name, v in ref.sg[0].items():
        np.testing.assert_allclose(np.asarray(fixed.sg[0][name]), np.asarray(v), atol=1e-10)
