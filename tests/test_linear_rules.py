"""Learning rules of sgtheory.linear: oracles, moments vs samples, line search, flow, data sets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgtheory import InputError
from sgtheory import linear as L
from sgtheory.linear import sg as linear_sg
from sgtheory.linear.rules import full_batch, signals
from sgtheory.testing import assert_trees_close, assert_trees_equal

# jitted once per config (Config is hashable): eager JAX would compile every primitive separately
step = jax.jit(L.step, static_argnums=0, static_argnames=("with_gradients",))
gradients = jax.jit(L.gradients, static_argnums=0)
fit_sg = jax.jit(L.fit_sg, static_argnums=0)
sg_loss = jax.jit(L.sg_loss, static_argnums=0)
loss = jax.jit(L.loss, static_argnums=0)
init = jax.jit(L.init, static_argnums=0)
trajectory = jax.jit(L.trajectory, static_argnums=(0, 5), static_argnames=("every",))
flow = jax.jit(L.flow, static_argnums=(0, 3), static_argnames=("dt", "every"))


def _problem(name="correlated", dim=4, n=200, seed=0, **kw):
    X, Y = L.datasets.make(name, dim, n, seed, **kw)
    return L.from_samples(X, Y)


def _randomise_sg(state, key):
    leaves, tree = jax.tree_util.tree_flatten(state.sg)
    keys = jax.random.split(key, len(leaves))
    new = [v + 0.3 * jax.random.normal(k, v.shape, v.dtype) for v, k in zip(leaves, keys)]
    return state._replace(sg=jax.tree_util.tree_unflatten(tree, new))


@pytest.mark.parametrize("model,depth,layer", [("linear", 0, "output"), ("deep-linear", 3, 2),
                                               ("deep-linear", 3, 1), ("deep-linear", 2, "all")])
def test_exact_sg_reproduces_backprop(model, depth, layer, key):
    # With MSE, ∂L/∂h_k is linear in (h_k, y, 1): a least-squares-fitted cond-linear SG is the true
    # gradient, so the SG rule's model gradients equal backprop's (to round-off, float64).
    pb = _problem()
    sg_cfg = L.make_config(model, depth=depth, width=5, sg="cond-linear", sg_layer=layer)
    bp_cfg = L.make_config(model, depth=depth, width=5, sg="none")
    state = init(sg_cfg, pb, key=key)
    exact = fit_sg(sg_cfg, pb, state)
    g_sg = gradients(sg_cfg, pb, exact).net
    g_bp = gradients(bp_cfg, pb, L.State(exact.net, ())).net
    assert_trees_close(g_sg, g_bp, rtol=1e-9, atol=1e-12)
    assert float(sg_loss(sg_cfg, pb, exact)) < 1e-20


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_zero_sg_leaves_layers_below_unchanged(layer, key):
    # Zero-initialised SG outputs zero: layers at or below the SG get no update; layers above do.
    pb = _problem()
    cfg = L.make_config("deep-linear", depth=2, width=5, sg="cond-linear", sg_layer=layer)
    state = init(cfg, pb, key=key)
    new = step(cfg, pb, state, 0.1, 0.1)
    for i, (old_l, new_l) in enumerate(zip(state.net, new.net), start=1):
        same = all(np.array_equal(old_l[k], new_l[k]) for k in old_l)
        assert same == (i <= layer)


@pytest.mark.parametrize("sg,layer", [("cond-linear", "output"), ("linear", 2), ("cond-linear", "all")])
def test_moments_equal_samples(sg, layer, key):
    # Full-batch MSE dynamics depend on the data only through E[zᵀz]: the moment rows (12 of them)
    # and the 300 samples give the same trajectory up to round-off.
    pb = _problem(n=300)
    kw = dict(depth=2, width=4, sg=sg, sg_layer=layer)
    cm = L.make_config("deep-linear", data="moments", **kw)
    cs = L.make_config("deep-linear", data="samples", **kw)
    s0 = init(cm, pb, key=key)
    tm = trajectory(cm, pb, s0, 0.05, 0.2, 60, every=20)
    ts = trajectory(cs, pb, s0, 0.05, 0.2, 60, every=20)
    np.testing.assert_allclose(tm.loss, ts.loss, rtol=1e-10)
    np.testing.assert_allclose(tm.sg_loss, ts.sg_loss, rtol=1e-9, atol=1e-14)
    assert pb.rows_x.shape[0] <= pb.d + pb.k + 1


def test_line_search_is_brute_force_minimiser(key):
    # The SG loss is quadratic along its gradient for a linear SG: β* must minimise it.
    pb = _problem()
    cfg = L.Config(sg="cond-linear", sg_step="line-search")
    state = _randomise_sg(init(cfg, pb, key=key), jax.random.PRNGKey(3))
    batch = full_batch(cfg, pb)
    sig = signals(cfg, state, batch)
    h, t = sig.h[1], sig.targets[0]
    params = state.sg[0]
    g = jax.grad(linear_sg.sg_loss)(params, h, batch.y, batch.u, t, batch.weight)
    beta_star = float(linear_sg.line_search_rate(g, h, batch.y, batch.u, batch.weight))
    betas = np.linspace(0.0, 3 * beta_star, 3001)
    along = jax.jit(jax.vmap(lambda b: linear_sg.sg_loss(jax.tree_util.tree_map(lambda p, q: p - b * q, params, g),
                                                     h, batch.y, batch.u, t, batch.weight)))
    vals = np.asarray(along(betas))
    assert abs(betas[np.argmin(vals)] - beta_star) <= 3 * beta_star / 3000  # grid resolution
    assert float(along(np.array([beta_star]))[0]) <= vals.min() + 1e-12


def test_line_search_reaches_least_squares(key):
    # C4 in miniature: line-search SG steps and a small main rate reach the OLS solution (float64).
    pb = _problem("teacher", dim=3, n=200)
    cfg = L.Config(sg="cond-linear", sg_step="line-search")
    tr = trajectory(cfg, pb, init(cfg, pb, key=key), 0.05, 0.0, 3000, every=3000)
    W, b = L.effective(tr.final)
    opt = L.optimum(cfg, pb)
    assert np.abs(np.asarray(W) - opt.W).max() < 1e-8
    assert abs(float(tr.loss[-1]) - opt.loss) < 1e-10


def test_flow_matches_small_steps(key):
    # Gradient flow to time t = 2 vs 2000 discrete steps of α = 1e-3 (β/α = 2): O(α) apart.
    pb = _problem(dim=3)
    cfg = L.Config(sg="cond-linear")
    s0 = init(cfg, pb, key=key)
    fl = flow(cfg, pb, s0, 2.0, ratio=2.0, dt=0.01, every=50)
    tr = trajectory(cfg, pb, s0, 1e-3, 2e-3, 2000, every=500)
    np.testing.assert_allclose(fl.loss[-1], tr.loss[-1], rtol=5e-3)
    assert fl.t[-1] == pytest.approx(2.0)


def test_minibatch_sgd_needs_key_and_samples(key):
    pb = _problem()
    cfg = L.Config(sg="cond-linear", batch_size=16)
    s0 = init(cfg, pb, key=key)
    with pytest.raises(InputError, match="key"):
        step(cfg, pb, s0, 0.1, 0.1)
    a = step(cfg, pb, s0, 0.1, 0.1, key=jax.random.PRNGKey(1))
    b = step(cfg, pb, s0, 0.1, 0.1, key=jax.random.PRNGKey(1))
    assert_trees_equal(a, b)
    with pytest.raises(InputError, match="samples"):
        step(cfg, pb.without_samples(), s0, 0.1, 0.1, key=jax.random.PRNGKey(1))


def test_log_loss_and_mlp_need_samples(key):
    X, Y = L.datasets.make("blobs", 2, 100, 0, target="classes")
    pb = L.from_samples(X, Y)
    for cfg in (L.Config(loss="log", sg="linear"), L.Config(sg="mlp")):
        s0 = init(cfg, pb, key=key)
        assert np.isfinite(float(loss(cfg, pb, step(cfg, pb, s0, 0.1, 0.1))))
        with pytest.raises(InputError, match="needs samples"):
            loss(cfg, pb.without_samples(), s0)


def test_mlp_sg_output_starts_at_zero(key):
    pb = _problem()
    cfg = L.Config(sg="mlp", sg_layer="output")
    s0 = init(cfg, pb, key=key)
    sig = signals(cfg, s0, full_batch(cfg, pb))
    assert float(jnp.abs(sig.sg_out[0]).max()) == 0.0


def test_datasets_and_bad_config():
    for name in L.datasets.DATASETS:
        for dim in (2, 100):
            X, Y = L.datasets.make(name, dim, 50, 1, target="classes")
            assert X.shape == (50, dim) and Y.shape == (50, 1)
            assert set(np.unique(Y)) <= {0.0, 1.0}
    with pytest.raises(InputError, match="dataset"):
        L.datasets.make("spiral", 2, 10)
    with pytest.raises(InputError, match="dim"):
        L.datasets.make("teacher", 0, 10)
    with pytest.raises(InputError, match="sg"):
        L.Config(sg="cubic")
    with pytest.raises(InputError, match="depth"):
        L.make_config("deep-linear", depth=-1)
    with pytest.raises(InputError, match="line-search"):
        L.Config(sg="mlp", sg_step="line-search")


def test_moments_problem_validates():
    with pytest.raises(InputError, match="positive semi-definite"):
        L.from_moments([[1.0]], [[2.0]], [[1.0]])
    with pytest.raises(InputError, match="NaN"):
        L.from_moments([[np.nan]], [[0.0]], [[1.0]])
    pb = L.from_moments(np.eye(2), np.ones((2, 1)) * 0.5, [[1.0]])
    assert pb.n is None and pb.d == 2 and pb.k == 1
