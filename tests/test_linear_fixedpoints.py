"""Fixed points the flow reaches (fixedpoints.py), the joint field's backends (joint.py), and the per-ratio
spectral radius (theory.py): against closed forms, autodiff and simulation, in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from sgtheory import linear as L
from sgtheory.linear import theory as T
from sgtheory.linear.fixedpoints import flattest, flow_limit
from sgtheory.linear.joint import joint_field
from sgtheory.linear.rules import gradients


def _deep(seed=0, scale=1.0):
    X, Y = L.datasets.make("correlated", 3, 200, seed, noise=0.3)
    pb = L.from_samples(X, Y).without_samples()
    cfg = L.make_config("deep-linear", depth=1, width=3, sg="cond-linear", sg_layer=1)
    return cfg, pb, L.init(cfg, pb, key=jax.random.PRNGKey(seed), init_scale=scale)


def test_flow_limit_is_a_fixed_point_the_dynamics_reach_and_is_independent_of_round_off():
    cfg, pb, s0 = _deep()
    field = joint_field(cfg, pb, s0)
    x0 = field.flatten(s0)
    lim = flow_limit(field, np.stack([x0, x0 * (1 + 2.0 ** -52)]), ratios=2.0)
    assert lim.converged.all() and (lim.residual < 1e-12).all()
    # a start one ulp away ends at the same point: the same ρ to 1e-6 (the round-off criterion)
    a, b = np.geomspace(0.01, 3, 9), np.geomspace(0.02, 6, 9)
    rho = [T.spectral_radius(T.linearise_matrix(field.jacobian(x), field.mask), a[:, None], b[None, :])
           for x in lim.x]
    np.testing.assert_allclose(rho[0], rho[1], atol=1e-6)
    # simulation: the dynamics themselves at β/α = 2 (α = 0.02 and 0.1, 12k-60k steps, each then polished to
    # its own fixed point) land within 1% (relative) of it. Their residual is still 4e-5 (slow modes), and
    # the polished points of runs at different rates differ by 0.1%: the tolerance is the slow modes' drift
    # along the manifold, not round-off.
    for alpha, steps in [(0.02, 60000), (0.1, 12000)]:
        end = np.asarray(ravel_pytree(L.trajectory(cfg, pb, s0, alpha, 2 * alpha, steps, every=steps).final)[0])
        own = flow_limit(field, end[None], ratios=2.0, flow_steps=0)
        assert own.converged[0]
        assert np.linalg.norm(own.x[0] - lim.x[0]) < 1e-2 * np.linalg.norm(lim.x[0])


def test_flow_limit_of_the_unique_case_is_the_closed_form():
    X, Y = L.datasets.make("teacher", 4, 300, 1, noise=0.5)
    pb = L.from_samples(X, Y).without_samples()
    cfg = L.Config(sg="cond-linear")
    s0 = L.init(cfg, pb, key=jax.random.PRNGKey(0))
    assert T.unique_fixed_point(cfg)
    field = joint_field(cfg, pb, s0)
    assert field.backend == "numpy"
    lim = flow_limit(field, field.flatten(s0)[None], ratios=0.5)
    closed = field.flatten(T.least_squares_point(cfg, pb, s0))
    assert lim.converged[0]
    np.testing.assert_allclose(lim.x[0], closed, atol=1e-9)  # both at round-off of an O(1) point


def test_unconditioned_linear_sg_reaches_the_constant_predictor():
    """Issue 12's example: the unconditioned linear SG at the output ends at W = 0 (a constant predictor,
    loss 0.70 against 0.19 at least squares), with the SG weight A set by the ratio β/α; the flow limit
    for a ratio lands where a long run at those rates does."""
    X, Y = L.datasets.make("teacher", 4, 300, 8, noise=0.6)
    pb = L.from_samples(X, Y).without_samples()
    cfg = L.Config(sg="linear")
    s0 = L.init(cfg, pb, key=jax.random.PRNGKey(0))
    field = joint_field(cfg, pb, s0)
    for alpha, beta in [(0.05, 0.05), (0.05, 0.4)]:
        lim = flow_limit(field, field.flatten(s0)[None], ratios=beta / alpha)
        point = field.unflatten(lim.x[0])
        assert lim.converged[0] and np.abs(point.net[0]["W"]).max() < 1e-8
        np.testing.assert_allclose(point.net[0]["b"], np.asarray(pb.my), atol=1e-8)
        run = ravel_pytree(L.trajectory(cfg, pb, s0, alpha, beta, 20000, every=20000).final)[0]
        # the run's own limit (at finite rates it drifts a little along the line of constant predictors)
        assert abs(run[-2] - lim.x[0][-2]) < 0.05 * abs(lim.x[0][-2])


def test_joint_field_backends_agree_with_autodiff():
    """The numpy backend's complex-step derivatives against JAX autodiff of the rules (float64 round-off)."""
    X, Y = L.datasets.make("correlated", 3, 100, 2)
    pb = L.from_samples(X, Y).without_samples()
    cfg = L.Config(sg="linear")
    rng = np.random.default_rng(0)
    state = jax.tree_util.tree_map(lambda v: np.asarray(v) + 0.3 * rng.standard_normal(np.shape(v)),
                                   L.init(cfg, pb, key=jax.random.PRNGKey(0)))
    field = joint_field(cfg, pb, state)
    x, unravel = ravel_pytree(state)
    G = lambda v: ravel_pytree(gradients(cfg, pb, unravel(v)))[0]
    np.testing.assert_allclose(field.value(np.asarray(x)), np.asarray(G(x)), atol=1e-12)
    u, v = rng.standard_normal(x.size), rng.standard_normal(x.size)
    ref = np.asarray(jax.grad(lambda w: jnp.dot(u, jax.jvp(G, (w,), (v,))[1]))(x))
    dirs = rng.standard_normal((x.size, 3))
    # central differences of a complex-step derivative of a cubic: h² term ~1e-12 of O(1) entries
    np.testing.assert_allclose(field.bilinear_gradient(x, u, v, dirs), dirs.T @ ref, rtol=1e-7, atol=1e-8)
    # explicit flow steps of the numpy backend = the rules' own step
    end, ok = field.flow(np.asarray(x)[:, None], np.array([0.01]), np.ones((x.size, 1)), 5)
    ref_state = state
    for _ in range(5):
        ref_state = L.step(cfg, pb, ref_state, 0.01, 0.01)
    assert ok[0]
    np.testing.assert_allclose(end[:, 0], np.asarray(ravel_pytree(ref_state)[0]), atol=1e-12)


def test_spectral_radius_per_ratio_equals_per_pair_eigenvalues():
    cfg, pb, s0 = _deep(1)
    field = joint_field(cfg, pb, s0)
    lim = flow_limit(field, field.flatten(s0)[None])
    lin = T.linearise_matrix(field.jacobian(lim.x[0]), field.mask)
    assert lin.n_neutral > 0 and T._triangular_blocks(lin) is None
    a = np.geomspace(0.01, 5, 7)  # the same log grid for β: 13 ratios serve 49 pairs
    fast = T.spectral_radius(lin, a[:, None], a[None, :])
    eye = np.eye(lin.P_model.shape[0])
    slow = np.array([[np.abs(np.linalg.eigvals(eye - x * lin.P_model - y * lin.P_sg)).max() for y in a] for x in a])
    np.testing.assert_allclose(fast, slow, rtol=1e-10)  # same matrices up to a ratio rounded in the 16th digit
    # the overshoot radius counts only modes the flow contracts (Re λ > 0)
    over = T.overshoot_radius(lin, a[:, None], a[None, :])
    assert (over <= fast + 1e-12).all()


def test_flattest_lowers_the_sharpness_and_stays_on_the_manifold():
    cfg, pb, s0 = _deep(0, scale=1.5)
    field = joint_field(cfg, pb, s0)
    lim = flow_limit(field, field.flatten(s0)[None])
    flat = flattest(field, lim.x[0], max_iter=10)
    assert flat.on_manifold and flat.sharpness < flat.start_sharpness
    # the same end-to-end map: a point of the same manifold (all deep factorisations of the optimum)
    W0, b0 = L.effective(field.unflatten(lim.x[0]))
    W1, b1 = L.effective(field.unflatten(flat.x))
    np.testing.assert_allclose(np.asarray(W1), np.asarray(W0), atol=1e-9)
    np.testing.assert_allclose(np.asarray(b1), np.asarray(b0), atol=1e-9)


@pytest.mark.parametrize("ratios", [1.0, [0.1, 10.0]])
def test_flow_limit_shapes(ratios):
    cfg, pb, s0 = _deep()
    field = joint_field(cfg, pb, s0)
    X = np.repeat(field.flatten(s0)[None], np.size(ratios), axis=0)
    lim = flow_limit(field, X, ratios=ratios, flow_steps=400)
    assert lim.x.shape == X.shape and lim.residual.shape == (np.size(ratios),)
    assert (lim.flow_time > 0).all() and (lim.eta > 0).all()
