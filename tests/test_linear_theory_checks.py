"""Checks of the SG surrogate loss, the C3 tracking condition and the C1/C2 critical-point tools."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from sgtheory import InputError
from sgtheory.linear import critical, datasets, from_samples, init, make_config, surrogate, tracking, trajectory
from sgtheory.linear.rules import forward, full_batch, signals


@pytest.fixture
def sg_params(rng):
    d, k, n = 4, 2, 6
    return (rng.standard_normal((d, d)), rng.standard_normal((k, d)), rng.standard_normal(d),
            rng.standard_normal((n, d)), rng.standard_normal((n, k)))


def test_symmetric_sg_is_the_gradient_of_the_implied_loss(sg_params):
    A, B, C, h, y = sg_params
    A = A + A.T
    g = jax.grad(lambda hh: jnp.sum(surrogate.implied_loss(hh, y, A, B, C)))(jnp.asarray(h))
    # symmetric A: ∇L_SG == SG exactly, up to float64 round-off on O(10) numbers
    np.testing.assert_allclose(g, surrogate.sg_field(h, y, A, B, C), rtol=0, atol=1e-12)
    assert float(surrogate.non_gradient_share(A)) == 0.0


def test_implied_loss_gradient_matches_finite_differences(sg_params):
    A, B, C, h, y = sg_params
    f = lambda hh: float(jnp.sum(surrogate.implied_loss(hh, y, A, B, C)))
    fd = np.zeros_like(h)
    e = 1e-6
    for idx in np.ndindex(h.shape):
        hp, hm = h.copy(), h.copy()
        hp[idx] += e
        hm[idx] -= e
        fd[idx] = (f(hp) - f(hm)) / (2 * e)
    # central differences of a quadratic are exact up to round-off ~1e-16/1e-6 = 1e-10
    np.testing.assert_allclose(fd, surrogate.implied_grad(h, y, A, B, C), atol=1e-8)
    # a non-symmetric A: the SG differs from the implied gradient by exactly h A_a
    s = surrogate.split(A, B, C)
    np.testing.assert_allclose(surrogate.sg_field(h, y, A, B, C) - surrogate.implied_grad(h, y, A, B, C),
                               h @ np.asarray(s.A_a), atol=1e-12)
    assert 0.0 < float(s.share) < 1.0
    assert float(surrogate.non_gradient_share(A - A.T)) == pytest.approx(1.0)


def test_minimiser_is_stationary_regular_and_singular(sg_params):
    A, B, C, _, y = sg_params
    h_star, singular = surrogate.minimiser(y, A, B, C)
    assert not singular
    np.testing.assert_allclose(surrogate.implied_grad(h_star, y, A, B, C), 0.0, atol=1e-10)
    # rank-deficient A_s with a consistent right-hand side: the lstsq solution is still stationary
    P = np.diag([1.0, 2.0, 0.0, 0.0])
    C2 = np.array([1.0, -1.0, 0.0, 0.0])
    B2 = np.zeros_like(B)
    h2, singular = surrogate.minimiser(y, P, B2, C2)
    assert singular
    np.testing.assert_allclose(surrogate.implied_grad(h2, y, P, B2, C2), 0.0, atol=1e-12)
    np.testing.assert_allclose(h2[:, 2:], 0.0, atol=1e-12)  # minimum norm on the flat directions
    assert np.all(np.asarray(surrogate.curvature(P)) >= 0)


def test_surrogate_bad_input():
    with pytest.raises(InputError, match="square"):
        surrogate.split(np.ones((2, 3)))
    with pytest.raises(InputError, match="needs labels"):
        surrogate.sg_field(np.ones((1, 2)), None, np.eye(2), np.ones((1, 2)))


def _problem(name="teacher", dim=3, n=40, target="regression"):
    X, Y = datasets.make(name, dim, n, 0, target=target)
    return from_samples(X, Y)


def test_tracking_terms_match_slow_reference(key):
    """ε, K, ‖∂L/∂θ‖ against an explicit Jacobian and numpy (deep linear, SG at a hidden layer)."""
    pr = _problem()
    cfg = make_config("deep-linear", depth=2, width=3, sg="cond-linear", sg_layer=2)
    state = init(cfg, pr, key=key)
    state = trajectory(cfg, pr, state, 0.05, 0.1, 20).final  # a non-zero SG, not yet exact
    terms = tracking.terms_at(cfg, pr, state, iters=200)

    batch = full_batch(cfg, pr)
    sig = signals(cfg, state, batch, with_true=True)
    w = float(batch.weight)
    S, T = np.asarray(sig.sg_out[0]), np.asarray(sig.true[2])
    flat, unravel = ravel_pytree(state.net[:2])
    J = np.asarray(jax.jacfwd(lambda v: forward(unravel(v), batch.x, batch.u)[-1].ravel())(flat))
    eps = w * np.linalg.norm(S - T)
    K = np.linalg.norm(J, 2)
    gnorm = np.linalg.norm(w * T.ravel() @ J)
    # power iteration converges to σ_max geometrically; 200 iterations reach round-off here
    np.testing.assert_allclose([terms.eps, terms.K, terms.grad_norm], [eps, K, gnorm], rtol=1e-9)
    assert float(terms.ratio) == pytest.approx(eps * K / gnorm, rel=1e-9)
    # the theorem's premise: the SG update differs from the true gradient by at most εK
    update_err = np.linalg.norm(w * (S - T).ravel() @ J)
    assert update_err <= eps * K * (1 + 1e-12)
    holds = bool(tracking.condition_holds(terms, 0.1))
    assert holds == (eps * K <= gnorm * 0.9 / 1.1)
    with pytest.raises(InputError, match="delta"):
        tracking.condition_holds(terms, 1.5)


def test_injected_error_within_the_bound_keeps_descent_and_large_error_diverges(key):
    pr = _problem()
    cfg = make_config("linear", sg="none")
    net0 = init(cfg, pr, key=key).net
    step = jax.jit(lambda net, s: tracking.injected_step(cfg, pr, net, 0.1, s, 0.1, layer=1))
    loss = lambda net: float(_mse(cfg, pr, net))
    for scale, should_converge in [(0.9, True), (50.0, False)]:
        net, losses = net0, [loss(net0)]
        for t in range(300):
            net, terms = step(net, scale)
            losses.append(loss(net))
            if t == 0:  # the injected error has the requested size relative to the C3 bound
                assert float(terms.ratio) == pytest.approx(scale * 0.9 / 1.1, rel=1e-6)
        if should_converge:
            assert np.all(np.diff(losses) <= 1e-15)  # monotone descent while the condition holds
        else:
            assert losses[-1] > 1e3 * losses[0] or not np.isfinite(losses[-1])


def _mse(cfg, pr, net):
    from sgtheory.linear.rules import State, loss

    return loss(cfg, pr, State(net, ()))


@pytest.mark.parametrize("sg_layer,where", [("output", "optimum"), (2, "optimum"), ("all", "optimum"),
                                            ("all", "zero")])
def test_c1_no_drift_at_a_critical_point(key, sg_layer, where):
    pr = _problem()
    model, depth = ("linear", 0) if sg_layer == "output" else ("deep-linear", 3)
    cfg = make_config(model, depth=depth, width=4, sg="cond-linear", sg_layer=sg_layer)
    state = critical.critical_state(cfg, pr, key=key, where=where)
    # least-squares top layer: an exact optimum (or the saddle at zero): ∂L/∂θ is round-off
    assert float(critical.bp_gradient_norm(cfg, pr, state)) < 1e-12
    assert max(map(float, critical.joint_gradient_norm(cfg, pr, state))) < 1e-12
    d = critical.drift(cfg, pr, state, 0.01, 0.01, 300, every=100)
    # a stable fixed point: round-off (1e-16 per step) never accumulates beyond ~1e-13
    assert float(jnp.max(d.net)) < 1e-12 and float(jnp.max(d.sg)) < 1e-12


def test_c2_linear_sg_under_log_loss_stops_off_the_optimum(key):
    pr = _problem("blobs", dim=2, n=200, target="classes")
    # line-search SG steps: a fixed β diverges once |p| grows (the SG loss curvature E[p²] grows with it)
    cfg = make_config("linear", loss="log", sg="cond-linear", sg_step="line-search")
    tr = trajectory(cfg, pr, init(cfg, pr, key=key), 0.2, 0.0, 3000)
    net_g, sg_g = map(float, critical.joint_gradient_norm(cfg, pr, tr.final))
    true_g = float(critical.bp_gradient_norm(cfg, pr, tr.final))
    assert net_g < 1e-6 and sg_g < 1e-6  # the joint system has stopped ...
    assert true_g > 1e3 * max(net_g, 1e-9)  # ... where the true log-loss gradient is far from zero
