"""Stability diagnostics of the bootstrapped SG (float64) against explicit Jacobians and a linear recurrence.

References are independent of :mod:`sgtheory.rnn.diagnostics`: dense window Jacobians from ``jax.jacfwd``
of a Python loop of core steps, their singular values from numpy, and a tanh core held at its fixed
point 0, where every step's Jacobian is the recurrent weight matrix and the backward gain per window
is its spectral radius to the power ``T``.
"""

import jax
import jax.numpy as jnp
import numpy as np

from sgtheory.rnn import diagnostics as dg
from sgtheory.rnn.cores import core_step
from sgtheory.rnn.reference import sequence_loss
from sgtheory.rnn.sg import apply_sg
from sgtheory.rnn.window import Batch, Numbers, Params, Rule

T, L, B, N_IN, HIDDEN, N_OUT = 3, 12, 2, 3, 4, 4


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    core = {"W": rng.normal(size=(N_IN + HIDDEN, 4 * HIDDEN)) / np.sqrt(N_IN + HIDDEN),
            "b": 0.3 * rng.normal(size=4 * HIDDEN), "V": rng.normal(size=(HIDDEN, N_OUT)) / np.sqrt(HIDDEN),
            "v": np.zeros(N_OUT)}
    xs = rng.normal(size=(L, B, N_IN))
    ys = (rng.random((L, B, N_OUT)) < 0.5).astype(float)
    batch = Batch(xs, ys, np.ones((L, B)), np.asarray(L), np.asarray(False), np.zeros((1, B, N_OUT)),
                  np.zeros((1, B)))
    s0 = 0.5 * rng.normal(size=(B, 2 * HIDDEN))
    sg = {"layers": [{"W": 0.3 * rng.normal(size=(2 * HIDDEN, 2 * HIDDEN)), "b": np.full(2 * HIDDEN, 0.1)}]}
    return core, batch, s0, sg


def _explicit(core, batch, s0):
    """Entry states and dense window Jacobians ``(K, B, S, S)`` from a Python loop of core steps."""

    def window(s, b, i):  # sequence i's state through steps b .. b + T - 1
        for t in range(b, b + T):
            s = core_step("lstm", core, s[None], batch.xs[t][i][None])[0]
        return s

    entries, jacs = [], []
    s = s0
    for b in range(0, L, T):
        entries.append(s)
        jacs.append(np.stack([jax.jacfwd(window)(s[i], b, i) for i in range(B)]))
        for t in range(b, b + T):
            s = core_step("lstm", core, s, batch.xs[t])
    return np.stack(entries), np.stack(jacs)


def test_window_jacobian_norms_are_the_largest_singular_values():
    core, batch, s0, _ = _problem()
    _, jacs = _explicit(core, batch, s0)
    rule = Rule("lstm", "bce", N_OUT, T)
    got = jax.jit(dg.window_jacobian_norms, static_argnums=(0,), static_argnames="iters")(
        rule, core, s0, batch.xs, key=jax.random.PRNGKey(1), iters=300)
    want = np.linalg.norm(jacs, ord=2, axis=(-2, -1))
    # power iteration converges as (σ₂/σ₁)^(2·iters); 300 iterations leave round-off for these gaps
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_bootstrap_terms_against_explicit_jacobians_and_window_gradients():
    core, batch, s0, sg = _problem(seed=2)
    entries, jacs = _explicit(core, batch, s0)
    gamma, scale = 0.3, 0.1
    rule = Rule("lstm", "bce", N_OUT, T, uses_sg=True, two_pass=True, update="sequence")
    nums = Numbers(*(np.asarray(v, np.float64) for v in (1e-3, 1e-3, np.inf, np.inf, scale, gamma, 0.0)))
    terms = jax.jit(dg.bootstrap_terms, static_argnums=(0,))(rule, Params(core, {}, sg), s0, batch, nums)
    K = L // T
    for k in range(K):
        w = slice(k * T, (k + 1) * T)
        r = jax.grad(lambda s, w=w: sequence_loss(rule, core, s, batch.xs[w], batch.ys[w], batch.mask[w]))(entries[k])
        exit_state = entries[k + 1] if k + 1 < K else None
        g = np.asarray(apply_sg(sg, exit_state)) if exit_state is not None else np.zeros_like(entries[0])
        boot = gamma * np.einsum("bij,bi->bj", jacs[k], g)  # γ J_kᵀ ĝ per sequence
        # float64 round-off of a dozen small matrix products
        np.testing.assert_allclose(terms["grad"][k], np.linalg.norm(r, axis=-1), rtol=1e-10)
        np.testing.assert_allclose(terms["sg"][k], np.linalg.norm(g, axis=-1), rtol=1e-10)
        np.testing.assert_allclose(terms["boot"][k], np.linalg.norm(boot, axis=-1), rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(terms["target"][k], np.linalg.norm(r + boot, axis=-1), rtol=1e-10)
        pred = np.asarray(apply_sg(sg, entries[k])) if k else np.zeros_like(r)
        np.testing.assert_allclose(terms["error"][k], np.linalg.norm(pred - (r + boot), axis=-1), rtol=1e-10)
    assert float(np.max(terms["sg"][-1])) == 0.0  # the sequence ends at the last exit


def test_backward_gain_of_a_linear_recurrence_is_its_spectral_radius_to_the_T():
    # A tanh core with zero inputs, bias and state stays at 0, where tanh' = 1: every step's Jacobian
    # is the recurrent block A of W, and a cotangent pulled back through a window grows by ρ(A)^T.
    rng = np.random.default_rng(3)
    q = rng.normal(size=(HIDDEN, HIDDEN))
    A = q @ np.diag([0.9, -0.5, 0.3, 0.1]) @ np.linalg.inv(q)  # non-normal, ρ(A) = 0.9
    core = {"W": np.concatenate([np.zeros((1, HIDDEN)), A]), "b": np.zeros(HIDDEN), "V": np.ones((HIDDEN, 1)),
            "v": np.zeros(1)}
    Tw, K = 2, 40
    rule = Rule("tanh", "bce", 1, Tw)
    xs = np.zeros((Tw * K, 3, 1))
    logs = jax.jit(dg.backward_log_gains, static_argnums=(0,))(rule, core, np.zeros((3, HIDDEN)), xs,
                                                               key=jax.random.PRNGKey(0))
    # the cotangent starts random at the last exit; after 20 windows its direction has converged to
    # the dominant eigenvector up to (0.5/0.9)^40 ≈ 1e-10, so the first 20 windows' gains are ρ^T
    np.testing.assert_allclose(np.exp(np.asarray(logs)[:20]), 0.9 ** Tw, rtol=1e-8)
    assert float(np.max(np.abs(np.asarray(logs)[20:] - Tw * np.log(0.9)))) > 1e-6  # the transient is real


def test_diagnose_returns_every_number_finite_and_the_contraction_is_gamma_times_the_gain():
    core, batch, s0, sg = _problem(seed=4)
    rule = Rule("lstm", "bce", N_OUT, T, uses_sg=True, two_pass=True)
    nums = Numbers(*(np.asarray(v, np.float64) for v in (1e-3, 1e-3, np.inf, np.inf, 0.1, 0.4, 0.0)))
    d = jax.jit(dg.diagnose, static_argnums=(0,))(rule, Params(core, {}, sg), s0, batch, nums,
                                                  key=jax.random.PRNGKey(0))
    assert set(d) == set(dg.DIAGNOSTICS) and all(np.isfinite(float(v)) for v in d.values())
    assert float(d["contraction"]) == float(jnp.asarray(0.4) * d["backward_gain"])
    assert float(d["jac_norm"]) <= float(d["jac_norm_max"])
