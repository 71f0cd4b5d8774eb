"""Forward unlocking (synthetic inputs): reductions, a per-layer autodiff reference, the train/apply shift.

Tiny float64 nets (conftest). Tolerances: "exact" agreements at 1e-10 relative (summation order only);
where linear input models are fitted by least squares to interpolate the real inputs of a 5-example
batch, their residual is ~1e-14 and is amplified by at most a few layers: 1e-8 relative.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgtheory import InputError
from sgtheory.nets import MLPConfig, forward, init_bn_state, init_mlp, methods, record
from sgtheory.nets.input_model import apply_input_model, init_input_model
from sgtheory.nets.methods import MethodState
from sgtheory.nets.methods.unlock import record_synthetic
from sgtheory.nets.mlp import norm_act
from sgtheory.nets.sg_shift import train_apply_shift
from sgtheory.sg import apply_sg

F64 = jnp.float64
N, C = 5, 3  # batch 5 ≤ n_in + 1: a linear input model can interpolate any real input on it


def tiny(batchnorm=False, activation="tanh", depth=3, width=4, seed=0):
    cfg = MLPConfig(5, C, depth, width, activation, batchnorm)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    x = jax.random.uniform(k2, (N, 5), F64)
    y = jax.nn.one_hot(jax.random.randint(k3, (N,), 0, C), C, dtype=F64)
    return cfg, init_mlp(cfg, key=k1, dtype=F64), x, y


def assert_tree_close(a, b, rtol=1e-10, atol=1e-12):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)

# (unlocked method, its options, the forward-locked method it must reduce to with exact input models)
UNLOCKED = [("csg-unlock", {}, "csg-every"), ("sg-unlock", {}, "sg-every"),
            ("csg", {"input_model": "linear", "layer": 2}, "csg"), ("sg", {"input_model": "linear", "layer": 1}, "sg")]
# each method on one net; csg-unlock on both (batch-norm changes how the cut net's batch statistics enter)
REDUCTIONS = [(*UNLOCKED[0], False, "tanh"), (*UNLOCKED[0], True, "relu"), (*UNLOCKED[1], True, "sigmoid"),
              (*UNLOCKED[2], True, "relu"), (*UNLOCKED[3], False, "relu"),
              ("csg-unlock", {"fit_at": "output"}, "csg-every", True, "relu")]


def _random_state(m, cfg, seed=9, scale=0.3):
    """The method's state with every leaf random (non-zero SG modules and input models)."""
    st = m.init(cfg, key=jax.random.PRNGKey(5), dtype=F64)
    leaves, tree = jax.tree_util.tree_flatten(st.learned)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return MethodState(jax.tree_util.tree_unflatten(tree, [scale * jax.random.normal(k, v.shape, F64)
                                                           for k, v in zip(keys, leaves)]), st.fixed)


def _exact_inputs(m, cfg, params, x, learned):
    """``learned`` with each linear input model ``I_j`` interpolating the real ``h_{j-1}`` on ``x`` (lstsq)."""
    _, hiddens = forward(params, x, cfg, train=True)
    h = [x] + hiddens
    feats = jnp.concatenate([x, jnp.ones((x.shape[0], 1), F64)], axis=1)  # 5 examples, 6 features: exact
    out = dict(learned)
    for j in m.input_layers(cfg.depth):
        theta = jnp.linalg.lstsq(feats, h[j - 1])[0]
        out[f"I{j}"] = {"layers": [{"W": theta[:-1], "b": theta[-1]}]}
    return out


@pytest.mark.parametrize("name,opts,plain,batchnorm,activation", REDUCTIONS)
def test_exact_input_models_reduce_to_sg_exactly(name, opts, plain, batchnorm, activation):
    cfg, params, x, y = tiny(batchnorm, activation)
    m = methods.get(name, **opts)
    ref = methods.get(plain, **{k: v for k, v in opts.items() if k not in ("input_model", "fit_at")})
    st = _random_state(m, cfg)
    learned = _exact_inputs(m, cfg, params, x, st.learned)
    tape, _ = record(params, init_bn_state(cfg, F64), x, y, cfg)
    cr = m.credit(MethodState(learned, {}), tape)
    sg_only = {k: v for k, v in learned.items() if not k.startswith("I")}
    expect = ref.credit(MethodState(sg_only, {}), tape)
    assert_tree_close(cr.grads, expect.grads, rtol=1e-8, atol=1e-10)
    assert_tree_close(cr.signals, expect.signals, rtol=1e-8, atol=1e-10)
    assert_tree_close({k: cr.state_grads[k] for k in sg_only}, expect.state_grads, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cr.sg_loss, expect.sg_loss, rtol=1e-8)
    assert float(cr.input_loss) < 1e-20 and float(expect.sg_loss) > 0
    # and with the input models perturbed, the same rule no longer matches: the check can fail
    bent = {k: jax.tree_util.tree_map(lambda a: a + 0.05, v) if k.startswith("I") else v for k, v in learned.items()}
    off = m.credit(MethodState(bent, {}), tape)
    assert not np.allclose(off.grads[-1]["W"], expect.grads[-1]["W"], rtol=1e-6)


def _reference_credit(m, cfg, params, x, y, learned, fit_at="input"):
    """Per-layer autodiff reference for the -unlock methods, from the definitions (no tape, no chain()).

    Layer ``j`` runs from ``in_j`` (``x`` for ``j = 1``, else ``I_j(x)``); hidden layer ``j`` learns by
    ``∂/∂θ_j mean_n ⟨δ_j, f_j(in_j; θ_j)⟩`` with ``δ_j = SG_j(o_j, y)``; the output layer by ``∂/∂θ`` of
    the cross-entropy of ``in_{D+1} W + b``; ``SG_j`` regresses (½ mean squared error) at ``in_{j+1}``
    (``fit_at = "input"``) or at ``o_j`` (``"output"``) onto ``n ∂/∂in_{j+1}`` of the layer above's
    objective; ``I_j`` onto the real ``h_{j-1}``.
    """
    d, n = cfg.depth, x.shape[0]
    _, real = forward(params, x, cfg, train=True)
    ins = {1: x, **{j: apply_input_model(learned[f"I{j}"], x) for j in range(2, d + 2)}}

    def hidden(theta, inp):
        return norm_act(theta, inp @ theta["W"] + theta["b"][None, :], cfg, None, True)[0]

    def ce(theta, inp):
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(inp @ theta["W"] + theta["b"][None, :]), axis=1))

    grads, sg_grads, signals = [None] * (d + 1), {}, [None] * d
    grads[d], t = jax.grad(ce, argnums=(0, 1))(params[d], ins[d + 1])
    target = n * t
    for j in range(d, 0, -1):
        sg = learned[str(j)]
        inp = ins[j + 1] if fit_at == "input" else hidden(params[j - 1], ins[j])

        def sg_loss(p, inp=inp, target=target):
            return 0.5 * jnp.mean(jnp.sum((apply_sg(p, inp, y) - target) ** 2, axis=1))
        sg_grads[str(j)] = jax.grad(sg_loss)(sg)
        delta = apply_sg(sg, hidden(params[j - 1], ins[j]), y)
        signals[j - 1] = delta
        obj = lambda theta, inp, delta=delta: jnp.mean(jnp.sum(delta * hidden(theta, inp), axis=1))
        grads[j - 1], t = jax.grad(obj, argnums=(0, 1))(params[j - 1], ins[j])
        target = n * t
    for j in range(2, d + 2):
        h = real[j - 2]
        def in_loss(p, h=h):
            return 0.5 * jnp.mean(jnp.sum((apply_input_model(p, x) - h) ** 2, axis=1))
        sg_grads[f"I{j}"] = jax.grad(in_loss)(learned[f"I{j}"])
    return tuple(grads), sg_grads, tuple(signals)


@pytest.mark.parametrize("name,input_model,fit_at,batchnorm,activation", [
    ("csg-unlock", "linear", "input", True, "relu"), ("csg-unlock", "mlp", "input", False, "tanh"),
    ("sg-unlock", "linear", "input", False, "tanh"), ("csg-unlock", "linear", "output", True, "relu")])
def test_unlock_credit_against_per_layer_autodiff_reference(name, input_model, fit_at, batchnorm, activation):
    cfg, params, x, y = tiny(batchnorm, activation, depth=3)
    m = methods.get(name, input_model=input_model, input_hidden=6, fit_at=fit_at)
    st = _random_state(m, cfg)
    tape, _ = record(params, init_bn_state(cfg, F64), x, y, cfg)
    cr = m.credit(st, tape)
    grads, sg_grads, signals = _reference_credit(m, cfg, params, x, y, st.learned, fit_at)
    assert_tree_close(cr.grads, grads)
    assert_tree_close(cr.state_grads, sg_grads)
    assert_tree_close(cr.signals, signals)
    assert set(cr.state_grads) == set(sg_grads) == {"1", "2", "3", "I2", "I3", "I4"}


def test_record_synthetic_without_cuts_is_the_real_tape():
    cfg, params, x, y = tiny(True, "relu")
    real, _ = record(params, init_bn_state(cfg, F64), x, y, cfg)
    cut = record_synthetic(params, x, y, cfg, {})
    assert_tree_close(cut.hiddens, real.hiddens, rtol=0, atol=0)
    assert_tree_close(cut.logits, real.logits, rtol=0, atol=0)
    delta = jnp.ones((N, cfg.width), F64)
    assert_tree_close(cut.local(2, delta), real.local(2, delta), rtol=1e-14, atol=0)


@pytest.mark.parametrize("name,opts", [(n, {}) for n in methods.METHODS]
                         + [("csg", {"input_model": "linear", "layer": 1})])
def test_forward_locking_matches_declaration(name, opts):
    """Forward-unlocked: the output layer's update is the same whatever the layers below its cut compute."""
    cfg, params, x, y = tiny()
    m = methods.get(name, **opts)
    st = _random_state(m, cfg)
    bottom = tuple({k: v * 1.7 + 0.1 for k, v in p.items()} if i == 0 else p for i, p in enumerate(params))
    a = m.credit(st, record(params, (), x, y, cfg)[0])
    b = m.credit(st, record(bottom, (), x, y, cfg)[0])
    same = all(np.array_equal(a.grads[-1][k], b.grads[-1][k]) for k in a.grads[-1])
    assert same == (not m.properties.forward_locked)
    if not m.properties.forward_locked:  # the input models still learn from the real inputs, which changed
        top = f"I{m.input_layers(cfg.depth)[-1]}"
        assert not np.array_equal(a.state_grads[top]["layers"][0]["W"], b.state_grads[top]["layers"][0]["W"])


@pytest.mark.parametrize("name,opts,plain", UNLOCKED[:3])
def test_train_apply_shift_is_measured(name, opts, plain):
    cfg, params, x, y = tiny(True, "relu")
    m = methods.get(name, **opts)
    st = _random_state(m, cfg)
    layers = m.sg_layers(cfg.depth)
    # exact input models: trained where applied, no shift
    exact = MethodState(_exact_inputs(m, cfg, params, x, st.learned), {})
    s = train_apply_shift(m, exact, params, x, y, cfg)
    np.testing.assert_allclose(s["train_loss"], s["apply_loss"], rtol=1e-8)
    assert s["train_loss"].shape == (len(layers),) and float(jnp.max(s["input_error"])) < 1e-20
    # random input models: the SG is trained on (I(x), gradient there), applied at the real h
    s = train_apply_shift(m, st, params, x, y, cfg)
    real, _ = record(params, (), x, y, cfg)
    ref = methods.get(plain, **{k: v for k, v in opts.items() if k != "input_model"})
    _, t_real, _ = ref.credit_with_targets(MethodState({k: v for k, v in st.learned.items() if k[0] != "I"}, {}), real)
    cut = record_synthetic(params, x, y, cfg, m.synthetic_inputs(st, x, cfg.depth))
    _, t_cut, _ = m.credit_with_targets(st, cut)
    for i, k in enumerate(layers):  # both sides recomputed from their definitions
        sg = st.learned[str(k)]
        train = 0.5 * jnp.mean(jnp.sum((apply_sg(sg, cut.inputs[k], y) - t_cut[k]) ** 2, axis=1))
        apply = 0.5 * jnp.mean(jnp.sum((apply_sg(sg, real.hiddens[k], y) - t_real[k]) ** 2, axis=1))
        np.testing.assert_allclose([s["train_loss"][i], s["apply_loss"][i]], [train, apply], rtol=1e-10)
        h_syn = apply_input_model(st.learned[f"I{k + 1}"], x)
        np.testing.assert_allclose(s["input_error"][i], jnp.sum((h_syn - real.hiddens[k]) ** 2)
                                   / jnp.sum(real.hiddens[k] ** 2), rtol=1e-10)
    assert float(jnp.max(jnp.abs(s["train_loss"] - s["apply_loss"]))) > 1e-3  # a real shift, reported
    assert np.all(np.abs(s["cosine"]) <= 1 + 1e-12)


def test_no_shift_without_input_models():
    cfg, params, x, y = tiny(True, "relu")
    m = methods.get("csg-every")
    s = train_apply_shift(m, _random_state(m, cfg), params, x, y, cfg)
    np.testing.assert_array_equal(s["train_loss"], s["apply_loss"])
    assert np.all(s["input_error"] == 0) and np.all(s["train_loss"] > 0)
    with pytest.raises(InputError, match="no synthetic-gradient"):
        train_apply_shift(methods.get("bp"), MethodState({}, {}), params, x, y, cfg)


def test_input_model_starts_at_zero_and_has_the_right_shapes():
    for kind in ("linear", "mlp"):
        p = init_input_model(kind, 5, 4, key=jax.random.PRNGKey(0), hidden=7, dtype=F64)
        out = apply_input_model(p, jnp.ones((N, 5), F64))
        assert out.shape == (N, 4) and float(jnp.max(jnp.abs(out))) == 0.0
        assert len(p["layers"]) == (1 if kind == "linear" else 2)


@pytest.mark.parametrize("name", ["bp", "fa", "dfa", "kickback"])
def test_synthetic_inputs_need_a_decoupled_layer(name):
    with pytest.raises(InputError, match="no decoupled layer"):
        methods.get(name, input_model="linear")


@pytest.mark.parametrize("bad", [dict(name="csg", input_model="linear", mix=0.5),
                                 dict(name="csg-unlock", input_model="conv"),
                                 dict(name="sg-unlock", input_hidden=0, input_model="mlp"),
                                 dict(name="csg-unlock", mix=0.9), dict(name="csg-every", fit_at="output"),
                                 dict(name="csg-unlock", fit_at="middle")])
def test_bad_synthetic_input_options(bad):
    with pytest.raises(InputError):
        methods.get(**bad)


def test_unlock_rows_and_state_layout():
    table = methods.unified_table("markdown")
    assert "| `csg-unlock` |" in table and "| `sg-unlock` |" in table
    m = methods.get("csg-unlock")
    assert not m.properties.forward_locked and not m.properties.update_locked and m.name == "csg-unlock"
    assert methods.get("csg-every", input_model="linear").name == "csg-unlock"
    cfg, *_ = tiny(depth=3)
    st = m.init(cfg, key=jax.random.PRNGKey(0), dtype=F64)
    assert set(st.learned) == {"1", "2", "3", "I2", "I3", "I4"}
    assert st.learned["I4"]["layers"][0]["W"].shape == (cfg.n_in, cfg.width)
    assert methods.get("csg", input_model="mlp", layer=2).input_layers(3) == [3]
    assert C == cfg.n_out
