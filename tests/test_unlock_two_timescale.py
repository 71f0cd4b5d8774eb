"""The two-timescale system: an oracle SG is full BPTT through both nets; a zero SG is no B→A gradient.

Tiny float64 systems (conftest). "Exact" agreements at 1e-10 relative: the window algorithm and the
whole-system backprop sum the same terms in different orders.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgtheory import InputError
from sgtheory.rnn import reference
from sgtheory.rnn import two_timescale as tt
from sgtheory.rnn.cores import zero_state
from sgtheory.rnn.two_timescale import System, init_params, make_data, noise_floor
from sgtheory.rnn.two_timescale_train import sweep
from sgtheory.rnn.window import Batch
from sgtheory.testing import assert_trees_equal

F64 = jnp.float64
SYSTEM = System(period=3, ticks=4, vocab=3, a_hidden=5, b_hidden=4, sg_hidden=6)
# compiled once per (system, mode): eager scans would recompile at every call
credit = jax.jit(tt.credit, static_argnums=(0, 1))
oracle_gradients = jax.jit(tt.oracle_gradients, static_argnums=0)
boundary_states = jax.jit(tt.boundary_states, static_argnums=0)
b_loss, system_loss = tt.b_loss, tt.system_loss


def _setup(conditioned=False, seed=0):
    system = SYSTEM
    data = make_data(system, jax.random.PRNGKey(seed), 6, 0.1, F64)
    params = init_params(system, jax.random.PRNGKey(seed + 1), conditioned=conditioned, dtype=F64)
    return system, data, params


def _close(a, b, rtol=1e-10, atol=1e-14):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


@pytest.mark.parametrize("b_weight", [1.0, 0.3])
def test_oracle_sg_equals_full_bptt_through_both_nets(b_weight):
    system, data, params = _setup()
    bptt, oracle = (credit(system, m, params, data, b_weight) for m in ("bptt", "oracle"))
    _close(oracle.a, bptt.a)
    _close(oracle.b, bptt.b)
    np.testing.assert_allclose([oracle.loss_a, oracle.loss_b], [bptt.loss_a, bptt.loss_b], rtol=1e-12)
    none = credit(system, "none", params, data, b_weight)
    assert not np.allclose(none.a["W"], bptt.a["W"], rtol=1e-6)  # B's gradient matters: the check can fail


def test_bootstrapped_targets_of_the_oracle_are_the_oracle():
    """With the true future gradients at the exits, δ_b (window entry + B's real gradient) is the true
    future gradient at every boundary — a perfect SG is a fixed point of its own regression — and the
    last boundary's is B's gradient alone (not 0: B reads A's final state)."""
    system, data, params = _setup()
    cr = credit(system, "oracle", params, data, 1.0)
    g = oracle_gradients(system, params.a, params.b, data, 1.0)
    _close(cr.targets, g)
    states = boundary_states(system, params.a, data)
    beta = jax.jit(jax.grad(lambda us: b_loss(system, params.b, us, data)))(states[1:])
    _close(g[-1], beta[-1])
    assert float(jnp.max(jnp.abs(g[-1]))) > 1e-3


def test_a_fresh_sg_is_no_b_to_a_gradient():
    system, data, params = _setup()
    fresh, none = credit(system, "dni", params, data, 1.0), credit(system, "none", params, data, 1.0)
    assert_trees_equal((fresh.a, fresh.b), (none.a, none.b))  # bit for bit: the zero SG adds exact zeros
    assert float(fresh.sg_loss) > 0 and any(float(jnp.max(jnp.abs(x))) > 0 for x in jax.tree_util.tree_leaves(fresh.sg))


def test_no_b_gradient_is_truncated_bptt_of_a_own_loss():
    """Mode none, A's side: the window algorithm with zero exits — against sgtheory.rnn's slow reference."""
    system, data, params = _setup()
    cr = credit(system, "none", params, data, 1.0)
    batch = Batch(data.xs, data.ya, data.ma, system.length, False, None, None)
    s0 = zero_state(system.a, data.xs.shape[1], F64)
    truncated = jax.jit(reference.truncated_grads, static_argnums=0)
    _close(cr.a, truncated(system.rule, params.a, s0, batch))


def test_cdni_conditions_on_the_target_of_the_tick_that_reads_the_boundary():
    system, data, _ = _setup()
    c = np.asarray(tt.conditions(system, data))
    assert c.shape == (system.ticks + 1, data.xs.shape[1], system.vocab + 1) and np.all(c[0] == 0)
    np.testing.assert_array_equal(np.argmax(c[1:, :, :-1], axis=-1), np.asarray(data.yb))  # tick k−1 reads kT
    assert np.all(c[1:, :, -1] == 1) and np.all(c[1:, :, :-1].sum(-1) == 1)


def test_data_targets():
    system = System(period=4, ticks=3, vocab=5)
    d = make_data(system, jax.random.PRNGKey(2), 7, 0.0)
    sym = np.argmax(np.asarray(d.xs), axis=-1)
    np.testing.assert_array_equal(np.asarray(d.yb), sym[::4])  # B names each window's first symbol
    np.testing.assert_array_equal(np.asarray(d.ya)[1:], sym[:-1])  # A names the previous symbol
    assert float(d.ma[0].sum()) == 0 and float(d.ma[1:].min()) == 1
    noisy = make_data(system, jax.random.PRNGKey(2), 4000, 0.5)
    hit = np.mean(np.asarray(noisy.yb) == np.argmax(np.asarray(noisy.xs), -1)[::4])
    assert abs(hit - (0.5 + 0.5 / 5)) < 0.02  # 12,000 draws: sd 0.0045
    np.testing.assert_allclose(noise_floor(5, 0.0), 0.0, atol=1e-15)
    np.testing.assert_allclose(noise_floor(4, 1.0), np.log(4), rtol=1e-12)


def test_sweep_rejects_bad_input():
    """(The sweep itself runs in tests/test_unlock_analysis.py, through the analysis.)"""
    system = System(period=2, ticks=2, vocab=3, a_hidden=4, b_hidden=3)
    for bad, word in [(dict(modes=["bp"]), "mode"), (dict(noise=1.0), "noise"), (dict(steps=5), "multiple"),
                      (dict(lr=0.0), "lr"), (dict(seeds=[]), "seed")]:
        kw = dict(modes=["none"], seeds=[0], steps=4, eval_every=2, batch=4, eval_batch=8)
        kw.update(bad)
        with pytest.raises(InputError, match=word):
            sweep(system, kw.pop("modes"), kw.pop("seeds"), **kw)
    with pytest.raises(InputError, match="period"):
        sweep(System(period=1), ["none"], [0], steps=2, eval_every=1)
