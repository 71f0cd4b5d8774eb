"""The asynchronous (complete-unlock) trainer: reductions, skipped layers, vmapped sweeps, bad input.

Tiny float64 nets on a random 3-class problem. "Equal" means 1e-10 relative: the trainer and its
references do the same float64 operations, possibly batched differently (vmap), so only summation
order may differ.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sgtheory import InputError
from sgtheory.data import Dataset
from sgtheory.nets import MLPConfig, init_bn_state, init_mlp, methods, record
from sgtheory.nets.async_train import Hyper, async_run, async_step, async_sweep, init_run, rate_scale
from sgtheory.nets.async_updates import layer_mask
from sgtheory.nets.methods import MethodState

F64 = jnp.float64
N_TRAIN, N_IN, C, BATCH = 24, 5, 3, 8


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(N_TRAIN + 12, N_IN))
    y = (x[:, 0] + x[:, 1] > 1).astype(np.int64) + (x[:, 2] > 0.7)
    return Dataset(x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:], C, "random")


def _cfg(depth=2):
    return MLPConfig(N_IN, C, depth, 4, "relu", True)


def _tree_equal(a, b, rtol=1e-10, atol=1e-13):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


def _step_fn(cfg, m):
    return jax.jit(lambda run, t, hyper, keys, x, y: async_step(run, t, hyper, keys, x, y, config=cfg, method=m,
                                                                batch_size=BATCH))


def test_p1_without_input_models_is_plain_dni():
    """p_update = 1 and no input models: the existing DNI (csg-every through one Adam on whole trees)."""
    ds, cfg, m = _data(), _cfg(), methods.get("csg-every")
    x, y = jnp.asarray(ds.x_train), jax.nn.one_hot(ds.y_train, C, dtype=F64)
    run, keys = init_run(jax.random.PRNGKey(3), cfg, m, N_TRAIN, dtype=F64)
    step = _step_fn(cfg, m)
    hyper = Hyper(jnp.asarray(1.0), jnp.asarray(1e-2), jnp.asarray(3e-3))
    # reference: the plain training loop of sgtheory.nets.train, written out
    params, learned = init_mlp(cfg, key=keys.init, dtype=F64), m.init(cfg, key=keys.method, dtype=F64).learned
    bn = init_bn_state(cfg, F64)
    opt, opt_sg = optax.adam(1e-2), optax.adam(3e-3)
    o, o_sg = opt.init(params), opt_sg.init(learned)
    per_epoch = N_TRAIN // BATCH

    @jax.jit
    def ref_step(params, learned, bn, o, o_sg, idx):
        tape, bn = record(params, bn, x[idx], y[idx], cfg)
        cr = m.credit(MethodState(learned, {}), tape)
        u, o = opt.update(cr.grads, o, params)
        u_sg, o_sg = opt_sg.update(cr.state_grads, o_sg, learned)
        return optax.apply_updates(params, u), optax.apply_updates(learned, u_sg), bn, o, o_sg

    for t in range(7):  # crosses an epoch boundary (3 steps per epoch)
        run, _ = step(run, t, hyper, keys, x, y)
        perm = jax.random.permutation(jax.random.fold_in(keys.data, t // per_epoch), N_TRAIN)
        idx = perm[(t % per_epoch) * BATCH:(t % per_epoch + 1) * BATCH]
        params, learned, bn, o, o_sg = ref_step(params, learned, bn, o, o_sg, idx)
    # Batch-norm cancels the hidden biases' gradient: theirs is round-off (~1e-17), which Adam divides by
    # its eps (1e-8), so they hold noise of ~lr·1e-9 per step; hence atol 1e-10 on the parameters.
    _tree_equal(run.params, params, atol=1e-10)
    _tree_equal(run.learned, learned)
    _tree_equal(run.bn, bn)
    assert float(jnp.max(jnp.abs(learned["1"]["A"]))) > 0  # the SG modules did learn


def test_a_layer_that_did_not_draw_an_update_is_bit_identical():
    """csg-unlock has every kind of slot: weights, SG modules (layers 1..D), input models (layers 2..D+1)."""
    ds, cfg, m = _data(), _cfg(depth=2), methods.get("csg-unlock")
    x, y = jnp.asarray(ds.x_train), jax.nn.one_hot(ds.y_train, C, dtype=F64)
    run, keys = init_run(jax.random.PRNGKey(1), cfg, m, N_TRAIN, dtype=F64)
    step, p = _step_fn(cfg, m), 0.5
    hyper = Hyper(jnp.asarray(p), jnp.asarray(1e-2), jnp.asarray(1e-2))
    seen = set()
    for t in range(12):
        new, _ = step(run, t, hyper, keys, x, y)
        mask = np.asarray(layer_mask(keys.skip, t, p))
        for j in range(1, cfg.depth + 2):
            slots = [(new.params[j - 1], run.params[j - 1]), (new.opt_net.inner[j - 1], run.opt_net.inner[j - 1])]
            for key in (str(j), f"I{j}"):
                if key in run.learned:
                    slots += [(new.learned[key], run.learned[key]),
                              (new.opt_method.inner[key], run.opt_method.inner[key])]
            leaves = jax.tree_util.tree_leaves
            same = [all(np.array_equal(a, b) for a, b in zip(leaves(u), leaves(v))) for u, v in slots]
            if not mask[j - 1]:
                assert all(same), (t, j)
            else:  # it updated: at least its Adam step count moved
                assert int(new.opt_net.inner[j - 1][0].count) == int(run.opt_net.inner[j - 1][0].count) + 1
                assert not all(same)
            seen.add(bool(mask[j - 1]))
        run = new
    assert seen == {True, False}  # both cases were exercised


def test_vmapped_sweep_equals_single_runs():
    ds, cfg = _data(), _cfg(depth=1)  # one hidden layer keeps the two compilations short
    m = methods.get("csg-unlock")
    res = async_sweep(ds, cfg, m, p_update=[1.0, 0.3], seeds=[0, 4], steps=6, eval_every=3, batch_size=BATCH,
                      lr=1e-2, sg_lr=5e-3, dtype=F64)
    mt = res.metrics
    assert mt["test_error"].shape == (2, 2, 2) and mt["sg_cosine"].shape == (2, 2, 2, cfg.depth)
    assert list(mt["step"]) == [3, 6]
    x, y = jnp.asarray(ds.x_train), jax.nn.one_hot(ds.y_train, C, dtype=F64)
    _, single = jax.jit(lambda k, h: async_run(k, h, x, y, jnp.asarray(ds.x_test), jnp.asarray(ds.y_test), config=cfg,
                                               method=m, steps=6, eval_every=3, batch_size=BATCH, dtype=F64))(
        jax.random.PRNGKey(4), Hyper(jnp.asarray(0.3), jnp.asarray(1e-2), jnp.asarray(5e-3)))
    for k, v in single.items():
        if k != "step":
            np.testing.assert_allclose(mt[k][1, 1], v, rtol=1e-10, atol=1e-13, err_msg=k)
    assert not np.allclose(mt["train_loss"][0, 1], mt["train_loss"][1, 1])  # p changes the run
    assert np.all(mt["input_loss"] > 0) and np.all((mt["test_error"] >= 0) & (mt["test_error"] <= 1))


@pytest.mark.parametrize("bad,match", [(dict(p_update=[0.0]), "p_update"), (dict(p_update=[1.5]), "p_update"),
                                       (dict(p_update=[float("nan")]), "p_update"), (dict(steps=5), "multiple"),
                                       (dict(seeds=[]), "seed"), (dict(batch_size=100), "batch size"),
                                       (dict(method="nope"), "method"), (dict(lr=-1.0), "lr"),
                                       (dict(schedule="cosine"), "schedule")])
def test_sweep_bad_input(bad, match):
    kw = dict(method="csg-unlock", p_update=[0.5], seeds=[0], steps=4, eval_every=2, batch_size=BATCH)
    kw.update(bad)
    with pytest.raises(InputError, match=match):
        async_sweep(_data(), _cfg(), kw.pop("method"), **kw)
    with pytest.raises(InputError, match="inputs"):
        async_sweep(_data(), MLPConfig(N_IN + 1, C, 2, 4), "csg-every", p_update=[1], seeds=[0], steps=2, eval_every=1,
                    batch_size=BATCH)


def test_step_schedule_counts_steps():
    """÷10 at 60% and 80% of the steps, by the global step (a layer's own update count plays no part)."""
    factors = [float(rate_scale(jnp.asarray(t), 100, "step")) for t in (0, 59, 60, 79, 80, 99)]
    np.testing.assert_allclose(factors, [1, 1, 0.1, 0.1, 0.01, 0.01], rtol=1e-6)  # float32 powers of 0.1
    assert rate_scale(jnp.asarray(70), 100, "constant") == 1.0
