"""Credit-assignment methods: oracles, references and declared properties, on tiny float64 nets.

Tolerances: float64 throughout (conftest), so "exact" agreements are checked at 1e-10 relative —
room for summation-order differences only.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgtheory import InputError
from sgtheory.nets import MLPConfig, forward, init_bn_state, init_mlp, methods, record
from sgtheory.nets.methods import MethodState
from sgtheory.sg import apply_sg, init_sg
from sgtheory.testing import assert_trees_close

F64 = jnp.float64
N, C = 5, 3  # batch 5 ≤ width + 1: a linear SG (even unconditioned) can interpolate any target on it
SG_NAMES = ("sg", "csg", "sg-every", "csg-every")


def tiny(batchnorm=False, activation="tanh", depth=3, width=4, seed=0):
    cfg = MLPConfig(5, C, depth, width, activation, batchnorm)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = init_mlp(cfg, key=k1, dtype=F64)
    x = jax.random.uniform(k2, (N, 5), F64)
    y = jax.nn.one_hot(jax.random.randint(k3, (N,), 0, C), C, dtype=F64)
    return cfg, params, x, y


def credit(name, cfg, params, x, y, state=None, **opts):
    m = methods.get(name, **opts)
    state = m.init(cfg, key=jax.random.PRNGKey(7), dtype=F64) if state is None else state
    tape, _ = record(params, init_bn_state(cfg, F64), x, y, cfg)
    return m.credit(state, tape), tape, m


def assert_tree_close(a, b, rtol=1e-10, atol=1e-12):
    # float64 throughout: the two sides differ only by the order of their sums
    assert_trees_close(a, b, rtol=rtol, atol=atol)


def loss_fn(params, cfg, x, y):
    logits, _ = forward(params, x, cfg, train=True)
    return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), axis=1))


@pytest.mark.parametrize("batchnorm,activation", [(False, "tanh"), (False, "relu"), (True, "sigmoid")])
def test_bp_equals_autodiff(batchnorm, activation):
    cfg, params, x, y = tiny(batchnorm, activation)
    cr, tape, _ = credit("bp", cfg, params, x, y)
    assert_tree_close(cr.grads, jax.grad(loss_fn)(params, cfg, x, y))
    np.testing.assert_allclose(tape.loss, loss_fn(params, cfg, x, y), rtol=1e-12)
    # signals are per-example gradients: n · ∂L/∂h_i
    _, hiddens = forward(params, x, cfg, train=True)
    assert len(cr.signals) == cfg.depth and cr.signals[0].shape == (N, cfg.width)


def fit_sg_to(tape, layers, targets, conditioned):
    """Linear SG parameters interpolating ``targets[k]`` exactly on the batch (least squares, n ≤ features)."""
    learned = {}
    for k in layers:
        h = tape.hiddens[k]
        feats = [h] + ([tape.onehot] if conditioned else []) + [jnp.ones((N, 1), F64)]
        theta = jnp.linalg.lstsq(jnp.concatenate(feats, axis=1), targets[k])[0]
        w = h.shape[1]
        p = {"A": theta[:w], "C": theta[-1]}
        if conditioned:
            p["B"] = theta[w:w + C]
        learned[str(k)] = p
    return learned


@pytest.mark.parametrize("name", SG_NAMES)
def test_sg_outputting_true_gradient_reproduces_bp(name):
    cfg, params, x, y = tiny()
    bp, tape, _ = credit("bp", cfg, params, x, y)
    m = methods.get(name)
    layers = m.sg_layers(cfg.depth)
    learned = fit_sg_to(tape, layers, {k: bp.signals[k - 1] for k in layers}, name.startswith("c"))
    for k in layers:  # the oracle really outputs the true gradient
        out = apply_sg(learned[str(k)], tape.hiddens[k], tape.onehot)
        np.testing.assert_allclose(out, bp.signals[k - 1], atol=1e-9)
    cr = m.credit(MethodState(learned, {}), tape)
    assert_tree_close(cr.grads, bp.grads, rtol=1e-8, atol=1e-10)  # lstsq interpolation error ~1e-12
    assert float(cr.sg_loss) < 1e-15


@pytest.mark.parametrize("name", ["sg-every", "csg-every"])
@pytest.mark.parametrize("batchnorm,activation,depth", [(False, "relu", 4), (True, "tanh", 3), (False, "tanh", 2)])
def test_every_layer_batched_credit_equals_layer_loop(name, batchnorm, activation, depth):
    """The batched -every path (used off-CPU for linear modules, mix 1) against the per-layer loop, with
    random non-zero modules so every term (modules, targets, weight and SG gradients) is exercised; and
    ``credit`` (whichever path this backend compiles) gives the same."""
    cfg, params, x, y = tiny(batchnorm, activation, depth=depth)
    m = methods.get(name)
    state = m.init(cfg, key=jax.random.PRNGKey(7), dtype=F64)
    keys = iter(jax.random.split(jax.random.PRNGKey(3), 64))
    learned = jax.tree_util.tree_map(lambda v: 0.5 * jax.random.normal(next(keys), v.shape, F64), state.learned)
    state = MethodState(learned, state.fixed)
    tape, _ = record(params, init_bn_state(cfg, F64), x, y, cfg)
    fast, ref = m._credit_every_batched(state, tape), m._credit_loop(state, tape)
    assert_tree_close(fast.grads, ref.grads)
    assert_tree_close(fast.state_grads, ref.state_grads)
    assert_tree_close(fast.signals, ref.signals)
    np.testing.assert_allclose(fast.sg_loss, ref.sg_loss, rtol=1e-12)
    assert_tree_close(m.credit(state, tape).grads, ref.grads)
    assert float(fast.sg_loss) > 0 and all(float(jnp.max(jnp.abs(g["W"]))) > 0 for g in fast.grads)


@pytest.mark.parametrize("name", SG_NAMES)
def test_zero_sg_leaves_layers_below_unchanged(name):
    cfg, params, x, y = tiny()
    cr, _, m = credit(name, cfg, params, x, y)  # fresh modules: final layer zero
    top = max(m.sg_layers(cfg.depth))
    for i in range(top):  # layers 1..k (grads index i = layer i+1)
        assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in cr.grads[i].values())
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in cr.grads[-1].values())  # output layer still learns


def test_zero_mlp_sg_starts_at_zero():
    p = init_sg("mlp", 4, C, conditioned=True, key=jax.random.PRNGKey(0), hidden=8, dtype=F64)
    out = apply_sg(p, jnp.ones((N, 4), F64), jnp.ones((N, C), F64))
    assert out.shape == (N, 4) and float(jnp.max(jnp.abs(out))) == 0.0


@pytest.mark.parametrize("name", SG_NAMES)
def test_mix_zero_is_backprop(name):
    cfg, params, x, y = tiny()
    bp, _, _ = credit("bp", cfg, params, x, y)
    m = methods.get(name, mix=0.0)
    st = m.init(cfg, key=jax.random.PRNGKey(3), dtype=F64)
    st = MethodState(jax.tree_util.tree_map(lambda a: a + 0.3, st.learned), {})  # a non-trivial SG
    cr, _, _ = credit(name, cfg, params, x, y, state=st, mix=0.0)
    assert_tree_close(cr.grads, bp.grads)


def test_fa_with_forward_weights_is_backprop():
    cfg, params, x, y = tiny(batchnorm=True)
    bp, _, _ = credit("bp", cfg, params, x, y)
    fixed = {"R": {str(i): params[i - 1]["W"] for i in range(2, cfg.depth + 2)}}
    fa, _, _ = credit("fa", cfg, params, x, y, state=MethodState({}, fixed))
    assert_tree_close(fa.grads, bp.grads)
    fa_rand, _, _ = credit("fa", cfg, params, x, y)
    assert not np.allclose(fa_rand.grads[0]["W"], bp.grads[0]["W"])


def _numpy_reference(params, x, y, signal_rule):
    """Slow reference: tanh MLP, softmax error, per-layer signal from ``signal_rule(i, e, Ws, hs)``, loops."""
    Ws = [np.asarray(p["W"]) for p in params]
    bs = [np.asarray(p["b"]) for p in params]
    x, y = np.asarray(x), np.asarray(y)
    hs = [x]
    for W, b in zip(Ws[:-1], bs[:-1]):
        hs.append(np.tanh(hs[-1] @ W + b))
    z = hs[-1] @ Ws[-1] + bs[-1]
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    e = p - y
    n, depth = x.shape[0], len(Ws) - 1
    grads = []
    for i in range(1, depth + 1):
        delta = signal_rule(i, e, Ws, hs)
        gW = np.zeros_like(Ws[i - 1])
        for a in range(n):  # explicit outer products, example by example
            da = delta[a] * (1 - hs[i][a] ** 2)
            gW += np.outer(hs[i - 1][a], da) / n
        grads.append(gW)
    return grads


def test_dfa_against_numpy_reference():
    cfg, params, x, y = tiny()
    cr, _, m = credit("dfa", cfg, params, x, y)
    R = m.init(cfg, key=jax.random.PRNGKey(7), dtype=F64).fixed["R"]
    ref = _numpy_reference(params, x, y, lambda i, e, Ws, hs: e @ np.asarray(R[str(i)]))
    for i, g in enumerate(ref):
        np.testing.assert_allclose(cr.grads[i]["W"], g, rtol=1e-10, atol=1e-14)


def test_kickback_against_numpy_reference():
    cfg, params, x, y = tiny()
    cr, _, _ = credit("kickback", cfg, params, x, y)

    def rule(i, e, Ws, hs):
        d = len(Ws) - 1
        top = np.array([[sum(e[a, c] * Ws[-1][j, c] for c in range(C)) for j in range(Ws[-1].shape[0])]
                        for a in range(e.shape[0])])
        if i == d:
            return top
        eps = top.mean(axis=1)  # global scalar error per example
        kick = np.array([sum(Ws[i][j, k] for k in range(Ws[i].shape[1])) for j in range(Ws[i].shape[0])])
        return eps[:, None] * kick[None, :]

    for i, g in enumerate(_numpy_reference(params, x, y, rule)):
        np.testing.assert_allclose(cr.grads[i]["W"], g, rtol=1e-10, atol=1e-14)


# ---- declared properties checked against the code -------------------------------------------------

def _perturb_above(params, layer):
    """Params with every layer above ``layer`` (hidden layers > layer and the output) changed."""
    return tuple(p if i < layer else {k: v * 1.7 + 0.1 for k, v in p.items()} for i, p in enumerate(params))


def _random_state(m, cfg):
    st = m.init(cfg, key=jax.random.PRNGKey(5), dtype=F64)
    leaves, tree = jax.tree_util.tree_flatten(st.learned)
    keys = jax.random.split(jax.random.PRNGKey(9), max(len(leaves), 1))
    leaves = [jax.random.normal(k, v.shape, F64) * 0.3 for k, v in zip(keys, leaves)]
    return MethodState(jax.tree_util.tree_unflatten(tree, leaves), st.fixed)


def _opts(name):
    return {"layer": 1} if name in ("sg", "csg") else {}


@pytest.mark.parametrize("name", methods.METHODS)
def test_update_locking_matches_declaration(name):
    """Update-unlocked: layer 1's update is the same whatever happens above it (weights, output, loss)."""
    cfg, params, x, y = tiny()
    m = methods.get(name, **_opts(name))
    st = _random_state(m, cfg)
    a, _, _ = credit(name, cfg, params, x, y, state=st, **_opts(name))
    b, _, _ = credit(name, cfg, _perturb_above(params, 1), x, y, state=st, **_opts(name))
    same = all(np.array_equal(a.grads[0][k], b.grads[0][k]) for k in a.grads[0])
    assert same == (not m.properties.update_locked)


class _PoisonedTape:
    """Wraps a tape so every backward quantity of layers above ``layer`` is scrambled."""

    def __init__(self, tape, layer):
        self._t, self._layer = tape, layer

    def __getattr__(self, k):
        return getattr(self._t, k)

    def local(self, i, delta):
        loc = self._t.local(i, delta)
        return loc._replace(delta_pre=loc.delta_pre * 3.1 + 0.5) if i > self._layer else loc


@pytest.mark.parametrize("name", methods.METHODS)
def test_backward_locking_matches_declaration(name):
    """Backward-unlocked: layer 1's signal does not read the backward pass of the layers above."""
    cfg, params, x, y = tiny()
    m = methods.get(name, **_opts(name))
    st = _random_state(m, cfg)
    tape, _ = record(params, (), x, y, cfg)
    clean = m.credit(st, tape).signals[0]
    poisoned = m.credit(st, _PoisonedTape(tape, 1)).signals[0]
    assert np.array_equal(clean, poisoned) == (not m.properties.backward_locked)


@pytest.mark.parametrize("name", methods.METHODS)
def test_label_and_learned_declarations(name):
    cfg, params, x, y = tiny()
    m = methods.get(name, **_opts(name))
    st = _random_state(m, cfg)
    tape, _ = record(params, (), x, y, cfg)
    # a label change with the output error held fixed: only methods reading y directly notice
    tape_y, _ = record(params, (), x, y[::-1], cfg)
    tape_y.error = tape.error
    changed = not np.array_equal(m.credit(st, tape).signals[0], m.credit(st, tape_y).signals[0])
    assert changed == ("y" in m.properties.conditioned_on.split(","))
    cr = m.credit(st, tape)
    has_learned = len(jax.tree_util.tree_leaves(cr.state_grads)) > 0
    assert has_learned == m.properties.learned


def test_mixing_makes_sg_locked():
    p = methods.get("csg", mix=0.5).properties
    assert p.update_locked and p.backward_locked and not methods.get("csg").properties.update_locked


def test_unified_table_lists_every_method():
    table = methods.unified_table("markdown")
    lines = table.splitlines()
    assert len(lines) == 2 + len(methods.METHODS)
    for name, line in zip(methods.METHODS, lines[2:]):
        p = methods.get(name).properties
        assert line.startswith(f"| `{name}` |")
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2:] == [p.conditioned_on, *("yes" if v else "no" for v in
                                                 (p.learned, p.update_locked, p.backward_locked, p.forward_locked))]
    assert methods.unified_table("text").splitlines()[0].startswith("method")


@pytest.mark.parametrize("bad", [dict(name="nope"), dict(name="csg", layer=0), dict(name="csg", mix=1.5),
                                 dict(name="csg", module="conv"), dict(name="bp", layer=2),
                                 dict(name="csg-every", layer=2)])
def test_bad_method_options(bad):
    with pytest.raises(InputError):
        methods.get(**bad)


def test_sg_layer_outside_net():
    cfg, *_ = tiny()
    with pytest.raises(InputError, match="outside"):
        methods.get("csg", layer=4).init(cfg, key=jax.random.PRNGKey(0))
    assert methods.get("csg").sg_layers(20) == [10] and methods.get("csg").sg_layers(1) == [1]
