"""The window algorithm's identities (float64): zero SG = truncated BPTT, oracle SG = full BPTT, credit flow.

Every comparison is against an independent reference in :mod:`sgtheory.rnn.reference` (a plain scan
of the whole sequence, or a Python loop over windows), on random cores, sequences and masks.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgtheory.rnn.cores import CoreSpec, core_step, init_core, readout, zero_state
from sgtheory.rnn.reference import full_bptt_grad, future_gradients, sequence_loss, truncated_grads
from sgtheory.rnn.sg import apply_aux, apply_sg
from sgtheory.rnn.window import Batch, Numbers, Params, Rule
from sgtheory.rnn.window import init_opt_states as _init_opt_states
from sgtheory.rnn.window import run_sequence as _run_sequence
from sgtheory.testing import assert_trees_close

F64 = jnp.float64
# compiled once per rule and shape (eager calls would recompile every scan body on every call)
run_sequence = jax.jit(_run_sequence, static_argnums=0, static_argnames="train")
full_bptt_grad = jax.jit(full_bptt_grad, static_argnums=0)
future_gradients = jax.jit(future_gradients, static_argnums=0)
truncated_grads = jax.jit(truncated_grads, static_argnums=0)
init_opt_states = jax.jit(_init_opt_states)
REL = 1e-6  # the bound for oracle SG vs full BPTT; float64 round-off is ~1e-15 here


def _problem(kind="lstm", L=12, B=3, n_in=3, hidden=5, n_out=4, seed=0, ragged=False):
    """A random core and batch as numpy float64 arrays (eager JAX ops would each compile a program)."""
    rng = np.random.default_rng(seed)
    spec = CoreSpec(kind, n_in, hidden, n_out)
    gates = 4 if kind == "lstm" else 1
    core = {"W": rng.normal(size=(n_in + hidden, gates * hidden)) / np.sqrt(n_in + hidden),
            "b": 0.3 * rng.normal(size=gates * hidden), "V": rng.normal(size=(hidden, n_out)) / np.sqrt(hidden),
            "v": np.zeros(n_out)}
    xs = rng.normal(size=(L, B, n_in))
    ys = (rng.random((L, B, n_out)) < 0.5).astype(float)
    mask = rng.random((L, B)) if ragged else np.ones((L, B))
    batch = Batch(xs, ys, mask, np.asarray(L), np.asarray(False), np.zeros((1, B, n_out)), np.zeros((1, B)))
    return spec, core, batch


def _s0(spec, B=3):
    return np.zeros((B, spec.state_size))


def _nums(scale=1.0, discount=None, aux=0.0, lr=1e-2, clip=np.inf, sg_lr=1e-2, sg_clip=np.inf):
    discount = scale if discount is None else discount
    return Numbers(*(np.asarray(v, np.float64) for v in (lr, sg_lr, clip, sg_clip, scale, discount, aux)))


def _rule(T, uses_sg=True, update="sequence", **kw):
    return Rule("lstm", "bce", 4, T, uses_sg=uses_sg, update=update, **kw)


def _random_sg(spec, seed=7, scale=0.3):
    rng = np.random.default_rng(seed)
    return {"layers": [{"W": scale * rng.normal(size=(spec.state_size, spec.state_size)),
                        "b": np.full(spec.state_size, 0.1)}]}


def _zero_sg(spec):
    return {"layers": [{"W": np.zeros((spec.state_size, spec.state_size)), "b": np.zeros(spec.state_size)}]}


def _max_rel(a, b):
    num = max(float(np.max(np.abs(a[k] - b[k]))) for k in b)
    den = max(float(np.max(np.abs(b[k]))) for k in b)
    return num / den


@pytest.mark.parametrize("kind,T", [("lstm", 3), ("tanh", 1)])
def test_oracle_sg_gives_full_bptt_and_last_window_gets_zero(kind, T):
    spec, core, batch = _problem(kind, ragged=True, seed=T)
    s0 = _s0(spec)
    rule = Rule(kind, "bce", 4, T, uses_sg=True, update="sequence")
    oracle = future_gradients(rule, core, s0, batch)
    assert float(np.max(np.abs(oracle[-1]))) == 0.0  # nothing comes after the end
    params = Params(core, {}, _random_sg(spec))  # a nonzero SG, overridden by the oracle
    out = run_sequence(rule, params, None, s0, batch, _nums(1.0), exits=oracle[1:], train=False)
    assert _max_rel(out.grads[0], full_bptt_grad(rule, core, s0, batch)) <= REL
    # with γ = 1 the bootstrapped target at every entry is the true gradient of everything after it
    np.testing.assert_allclose(out.targets, oracle[:-1], rtol=0, atol=1e-12 * float(np.max(np.abs(oracle))))
    assert float(np.max(np.abs(out.exits[-1]))) == 0.0


def test_learned_sg_is_exactly_zero_at_the_sequence_end_and_after_it():
    spec, core, batch = _problem(L=12)
    mask = batch.mask.copy()
    mask[7:] = 0.0  # steps 7.. are padding
    batch = batch._replace(end=np.asarray(7), mask=mask)
    s0 = _s0(spec)
    out = run_sequence(_rule(3), Params(core, {}, _random_sg(spec)), None, s0, batch, _nums(0.1), train=False)
    exits = np.asarray(out.exits)
    assert np.all(np.abs(exits[:2]).sum(axis=(1, 2)) > 0)  # boundaries 3 and 6 lie before the end
    assert np.all(exits[2:] == 0.0)  # window [6, 9) holds the end; [9, 12) is padding


def test_padding_changes_nothing():
    spec, core, batch = _problem(L=12, ragged=True)
    s0 = _s0(spec)
    params = Params(core, {}, _random_sg(spec))
    short = batch._replace(xs=batch.xs[:9], ys=batch.ys[:9], mask=batch.mask[:9], end=np.asarray(9))
    padded_mask = batch.mask.copy()
    padded_mask[9:] = 0.0
    padded = batch._replace(mask=padded_mask, end=np.asarray(9))
    a = run_sequence(_rule(3), params, None, s0, short, _nums(0.1), train=False)
    b = run_sequence(_rule(3), params, None, s0, padded, _nums(0.1), train=False)
    assert_trees_close(a.grads, b.grads, rtol=1e-13, atol=1e-15)  # same sums, other program


@pytest.mark.parametrize("update", ["window", "sequence"])
def test_zero_sg_is_exactly_truncated_bptt(update):
    spec, core, batch = _problem(ragged=True)
    s0 = _s0(spec)
    sg = _zero_sg(spec)
    with_sg, no_sg = Params(core, {}, sg), Params(core, {}, {})
    # A fresh module outputs 0. With inject_scale 0 it stays out of the core's gradient while it learns
    # (two sequences); with inject_scale 0.1 it is 0 for a whole sequence when updates come per sequence.
    cases = [(_nums(0.0, discount=0.1), 2)] + ([(_nums(0.1), 1)] if update == "sequence" else [])
    for nums, n_seq in cases:
        p1, o1, p2, o2 = with_sg, init_opt_states(with_sg), no_sg, init_opt_states(no_sg)
        for _ in range(n_seq):
            a = run_sequence(_rule(3, update=update), p1, o1, s0, batch, nums)
            b = run_sequence(_rule(3, uses_sg=False, update=update), p2, o2, s0, batch, nums)
            p1, o1, p2, o2 = a.params, a.opt_states, b.params, b.opt_states
            for k in core:
                assert np.array_equal(np.asarray(a.params.core[k]), np.asarray(b.params.core[k])), k
        assert float(np.max(np.abs(p1.sg["layers"][0]["W"]))) > 0  # the SG did learn meanwhile
    g = run_sequence(_rule(3, uses_sg=False), no_sg, None, s0, batch, _nums(), train=False).grads[0]
    assert _max_rel(g, truncated_grads(_rule(3, uses_sg=False), core, s0, batch)) <= 1e-12


@jax.jit
def _explicit_reference(core, aux, sg, s0, batch, lam):
    """Core and aux-head gradients as jax.grad of the surrogate Σ_k [L_k + s⟨stop(ĝ_k), s_exit⟩ + λ aux_k]
    (s = 0.1, T = 3), windows in a Python loop."""
    T, s = 3, 0.1
    L, B = batch.xs.shape[:2]

    def surrogate(core, aux):
        total, s_b = 0.0, s0
        for b in range(0, L, T):
            s_b = jax.lax.stop_gradient(s_b)
            state, states = s_b, []
            for t in range(b, b + T):
                state = core_step("lstm", core, state, batch.xs[t])
                states.append(state)
            total = total + sequence_loss(_rule(T), core, s_b, batch.xs[b:b + T], batch.ys[b:b + T],
                                          batch.mask[b:b + T])
            last = b + T >= L
            ghat = jnp.zeros_like(state) if last else jax.lax.stop_gradient(apply_sg(sg, state))
            total = total + s * jnp.sum(ghat * state)
            total = total + lam * sum(jnp.sum((apply_aux(aux, st) - ghat) ** 2) for st in states)
            s_b = state
        return total / B

    return jax.grad(surrogate, argnums=(0, 1))(core, aux)


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_credit_flow_sg_loss_never_moves_the_core_task_loss_never_moves_the_sg(lam):
    spec, core, batch = _problem(ragged=True, seed=3)
    s0 = _s0(spec)
    sg, T = _random_sg(spec), 3
    aux = {"A": 0.2 * np.random.default_rng(5).normal(size=(spec.state_size,) * 2), "c": np.zeros(spec.state_size)}
    params = Params(core, aux, sg)
    rule = _rule(T, has_aux=True, two_pass=True)
    outs = [run_sequence(rule, params, None, s0, batch, _nums(0.1, discount=d, aux=lam), train=False)
            for d in (0.1, 0.9)]
    ref_core, ref_aux = _explicit_reference(core, aux, sg, s0, batch, np.asarray(lam, np.float64))
    assert _max_rel(outs[0].grads[0], ref_core) <= 1e-12
    if lam:
        assert _max_rel(outs[0].grads[1], ref_aux) <= 1e-12
    # the SG's target (its discount γ) changes the SG's gradient, never the core's
    for k in core:
        assert np.array_equal(np.asarray(outs[0].grads[0][k]), np.asarray(outs[1].grads[0][k]))
    assert not np.allclose(outs[0].grads[2]["layers"][0]["W"], outs[1].grads[2]["layers"][0]["W"])
    # the SG's gradient is its regression onto the (constant) targets, and nothing else
    starts = np.arange(0, 12, T)

    def regression(sg):
        states = [s0] + [_states_at(core, s0, batch, b) for b in starts[1:]]
        return sum(jnp.sum((apply_sg(sg, st) - outs[0].targets[i]) ** 2) for i, st in enumerate(states)) / 3

    ref_sg = jax.jit(jax.grad(regression))(sg)
    np.testing.assert_allclose(outs[0].grads[2]["layers"][0]["W"], ref_sg["layers"][0]["W"], rtol=1e-12, atol=1e-14)


def _states_at(core, s0, batch, t_end):
    s = s0
    for t in range(t_end):
        s = core_step("lstm", core, s, batch.xs[t])
    return s


def test_aux_weight_zero_is_dni_and_aux_reaches_the_core():
    spec, core, batch = _problem(ragged=True, seed=4)
    s0 = _s0(spec)
    sg = _random_sg(spec)
    plain = Params(core, {}, sg)
    with_aux = Params(core, {"A": np.zeros((spec.state_size,) * 2), "c": np.zeros(spec.state_size)}, sg)
    pa, oa, pb, ob = plain, init_opt_states(plain), with_aux, init_opt_states(with_aux)
    for _ in range(3):  # window updates: aux head, core and SG all move
        a = run_sequence(_rule(3, update="window"), pa, oa, s0, batch, _nums(0.1))
        b = run_sequence(_rule(3, update="window", has_aux=True, two_pass=True), pb, ob, s0, batch,
                         _nums(0.1, aux=0.0))
        pa, oa, pb, ob = a.params, a.opt_states, b.params, b.opt_states
    assert_trees_close((pa.core, pa.sg), (pb.core, pb.sg), rtol=1e-12, atol=1e-14)  # one VJP pull vs two: round-off
    assert all(float(np.max(np.abs(v))) == 0.0 for v in pb.aux.values())
    aux = {"A": 0.2 * np.eye(spec.state_size), "c": np.zeros(spec.state_size)}
    on = run_sequence(_rule(3, has_aux=True, two_pass=True), Params(core, aux, sg), None, s0, batch,
                      _nums(0.1, aux=1.0), train=False)
    off = run_sequence(_rule(3), plain, None, s0, batch, _nums(0.1), train=False)
    assert _max_rel(on.grads[0], off.grads[0]) > 1e-3


def test_separate_optimisers_sg_settings_never_touch_the_core_update():
    spec, core, batch = _problem(seed=5)
    s0 = _s0(spec)
    params = Params(core, {}, _random_sg(spec))
    opt = init_opt_states(params)
    runs = [run_sequence(_rule(3), params, opt, s0, batch, _nums(0.1, clip=0.5, sg_lr=r, sg_clip=c))
            for r, c in ((1e-3, np.inf), (1.0, 1e-6))]
    for k in core:
        assert np.array_equal(np.asarray(runs[0].params.core[k]), np.asarray(runs[1].params.core[k]))
    assert not np.allclose(runs[0].params.sg["layers"][0]["W"], runs[1].params.sg["layers"][0]["W"])


def test_readout_and_core_step_shapes():
    spec = CoreSpec("lstm", 3, 5, 4)
    core = init_core(spec, key=jax.random.PRNGKey(0), dtype=F64)
    s = core_step("lstm", core, zero_state(spec, 2, F64), np.ones((2, 3)))
    assert s.shape == (2, 10) and readout("lstm", core, s).shape == (2, 4)
    assert float(core["b"][5]) == 1.0 and float(core["b"][4]) == 0.0  # forget-gate bias block is [5, 10)


def test_rms_sg_input_is_scale_free_and_the_window_algorithm_reads_it():
    spec, core, batch = _problem(ragged=True, seed=6)
    sg = _random_sg(spec)
    s = np.random.default_rng(6).normal(size=(3, spec.state_size))
    # the rms view is invariant to the state's scale (up to its ε = 1e-12 against a mean square of ~1, and
    # round-off), and a zero state (a stream's start) reads as zero
    np.testing.assert_allclose(apply_sg(sg, 7.0 * s, None, "rms"), apply_sg(sg, s, None, "rms"), rtol=1e-10,
                               atol=1e-12)
    assert np.array_equal(np.asarray(apply_sg(sg, np.zeros_like(s), None, "rms")), np.broadcast_to(0.1, s.shape))
    s0 = 0.5 * s
    rule = _rule(3, sg_input="rms")
    out = run_sequence(rule, Params(core, {}, sg), None, s0, batch, _nums(0.1), train=False)
    starts = np.arange(0, 12, 3)
    exits = [_states_at(core, s0, batch, b + 3) for b in starts[:-1]]
    for k, st in enumerate(exits):  # the injected SG is M(s_exit / rms(s_exit)); the last exit is 0
        np.testing.assert_allclose(out.exits[k], apply_sg(sg, st, None, "rms"), rtol=1e-12)
    assert float(np.max(np.abs(out.exits[-1]))) == 0.0

    def regression(sg):
        states = [s0] + exits
        return sum(jnp.sum((apply_sg(sg, st, None, "rms") - out.targets[i]) ** 2) for i, st in enumerate(states)) / 3

    ref = jax.jit(jax.grad(regression))(sg)
    np.testing.assert_allclose(out.grads[2]["layers"][0]["W"], ref["layers"][0]["W"], rtol=1e-12, atol=1e-14)
