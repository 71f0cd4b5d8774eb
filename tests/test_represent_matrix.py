"""similarity_matrix equals per-pair calls; permutation test and bootstrap behave as advertised."""

import warnings

import numpy as np
import pytest
import scipy.stats

from sgtheory import InputError
from sgtheory.represent import (
    ConstantFeatureWarning,
    bootstrap_ci,
    cca,
    linear_cka,
    minibatch_cka,
    permutation_test,
    pwcca,
    rbf_cka,
    rsa,
    similarity_matrix,
    svcca,
)

PER_PAIR = {
    "linear_cka": linear_cka,
    "rbf_cka": rbf_cka,
    "cca": lambda X, Y, **kw: cca(X, Y, **kw).mean(),
    "svcca": svcca,
    "pwcca": pwcca,
    "rsa": rsa,
    "minibatch_cka": minibatch_cka,
}
OPTIONS = {"linear_cka": {"debiased": True}, "svcca": {"variance": 0.9}, "minibatch_cka": {"batch_size": 32}}


def net_layers(rng, n=120, widths=(6, 9, 5), depth_gain=1.0):
    """Activations of a small random ReLU net (correlated across layers, non-zero means)."""
    h, layers = rng.normal(size=(n, 4)), []
    for w in widths:
        h = np.maximum(h @ (depth_gain * rng.normal(size=(h.shape[1], w)) / np.sqrt(h.shape[1])) + 0.8, 0)
        layers.append(h)
    return layers


@pytest.mark.parametrize("name", list(PER_PAIR))
def test_matrix_equals_per_pair_calls(rng, name):
    A, B = net_layers(rng), net_layers(rng, widths=(7, 4))
    opts = OPTIONS.get(name, {})
    S = similarity_matrix(A, B, name, **opts)
    assert S.shape == (3, 2)
    expected = [[PER_PAIR[name](a, b, **opts) for b in B] for a in A]
    np.testing.assert_allclose(S, expected, rtol=0, atol=1e-12)  # same code path: equal up to round-off


def test_self_comparison_symmetric_and_callable(rng):
    A = net_layers(rng)
    S = similarity_matrix(A, measure="linear_cka")
    np.testing.assert_allclose(S, S.T, atol=0)
    np.testing.assert_allclose(np.diag(S), 1.0, atol=1e-12)
    named = similarity_matrix({"l1": A[0], "l2": A[1]}, [A[2]], lambda X, Y: linear_cka(X, Y))
    np.testing.assert_allclose(named[:, 0], [linear_cka(A[0], A[2]), linear_cka(A[1], A[2])], atol=1e-14)
    P = similarity_matrix(A, measure="pwcca")  # asymmetric measure: the full matrix is computed
    assert P[0, 1] == pytest.approx(pwcca(A[0], A[1]), abs=1e-12)
    assert P[1, 0] == pytest.approx(pwcca(A[1], A[0]), abs=1e-12)


def test_matrix_warns_once_per_category(rng):
    A = [np.column_stack([a, np.zeros(len(a))]) for a in net_layers(rng)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        similarity_matrix(A, A, "cca")
    constant = [w for w in caught if issubclass(w.category, ConstantFeatureWarning)]
    assert len(constant) == 1 and "similar warning" in str(constant[0].message)


def test_matrix_bad_inputs(rng):
    A = net_layers(rng)
    with pytest.raises(InputError, match="different sample counts"):
        similarity_matrix(A, [A[0][:50]])
    with pytest.raises(InputError, match="measure"):
        similarity_matrix(A, A, "cosine")
    with pytest.raises(InputError, match="unknown option"):
        similarity_matrix(A, A, "linear_cka", sigma_frac=2.0)
    with pytest.raises(InputError, match="no layers"):
        similarity_matrix([], A)
    with pytest.raises(InputError, match="one 2-D array"):
        similarity_matrix(A[0], A)
    with pytest.raises(InputError, match=r"layers_a\[1\]: contains"):
        similarity_matrix([A[0], np.where(A[1] > 0.5, np.nan, A[1])], A)


def test_permutation_p_values_uniform_under_null():
    # 80 independent data sets, 39 permutations each: p lies on the grid {1/40, …, 1}. Under the null it
    # is uniform there; a KS test against U(0,1) would reject a bias of ~0.2 in the mean at this size,
    # and the loose 0.001 threshold keeps the grid's discreteness from failing it by chance.
    rng = np.random.default_rng(7)
    ps = [permutation_test(rng.normal(size=(25, 2)), rng.normal(size=(25, 2)), "linear_cka",
                           n_permutations=39, seed=i).p_value for i in range(80)]
    assert scipy.stats.kstest(ps, "uniform").pvalue > 0.001
    assert 0.35 < np.mean(ps) < 0.65  # mean of the uniform grid is 0.5125; sd of the mean ≈ 0.03


def test_permutation_detects_dependence_and_fast_path_matches_generic(rng):
    X = rng.normal(size=(60, 3))
    Y = X @ rng.normal(size=(3, 4)) + rng.normal(size=(60, 4))
    for name in ("linear_cka", "cca", "svcca", "pwcca", "rsa"):
        fast = permutation_test(X, Y, name, n_permutations=30, seed=3)
        assert fast.p_value == pytest.approx(1 / 31)
        generic = permutation_test(X, Y, PER_PAIR[name], n_permutations=30, seed=3)
        np.testing.assert_allclose(fast.null, generic.null, atol=1e-12)
        assert fast.value == pytest.approx(generic.value, abs=1e-12)


def test_bootstrap_ci_covers_value_and_is_seeded(rng):
    X = rng.normal(size=(80, 3))
    Y = X + rng.normal(size=(80, 3))
    res = bootstrap_ci(X, Y, "linear_cka", n_boot=200, level=0.9, seed=1)
    assert res.low < res.value < res.high and res.samples.shape == (200,)
    assert 0 < res.high - res.low < 0.5
    again = bootstrap_ci(X, Y, linear_cka, n_boot=200, level=0.9, seed=1)
    assert (again.low, again.high) == (res.low, res.high)
    wide = bootstrap_ci(X, Y, "linear_cka", n_boot=200, level=0.99, seed=1)
    assert wide.low <= res.low and wide.high >= res.high


def test_uncertainty_bad_inputs(rng):
    X = rng.normal(size=(20, 2))
    with pytest.raises(InputError, match="n_permutations"):
        permutation_test(X, X, n_permutations=0)
    with pytest.raises(InputError, match="level"):
        bootstrap_ci(X, X, level=1.5)
    with pytest.raises(InputError, match="sample counts differ"):
        bootstrap_ci(X, X[:10])
    with pytest.raises(InputError, match="not a number"):
        permutation_test(X, X, lambda a, b: "high", n_permutations=2)


@pytest.mark.parametrize("name,opts", [("linear_cka", {}), ("linear_cka", {"debiased": True}), ("cca", {}),
                                       ("cca", {"regularization": 0.5}), ("svcca", {"variance": 0.9})])
def test_jax_backend_equals_numpy(rng, name, opts):
    # The device path (CPU JAX here, GPU when present) shares the numpy per-layer work; its cross
    # products and SVDs differ only by float64 round-off. Equal widths use the batched SVD, unequal a loop.
    A, B = net_layers(rng, widths=(6, 9, 5)), net_layers(rng, widths=(7, 7))
    for la, lb in ((A, B), (A, None)):
        S_np = similarity_matrix(la, lb, name, backend="numpy", **opts)
        S_jax = similarity_matrix(la, lb, name, backend="jax", **opts)
        np.testing.assert_allclose(S_jax, S_np, rtol=0, atol=1e-12)


def test_backend_choice_checked(rng):
    A = net_layers(rng)
    with pytest.raises(InputError, match="supports the measures"):
        similarity_matrix(A, A, "pwcca", backend="jax")
    with pytest.raises(InputError, match="backend"):
        similarity_matrix(A, A, "cca", backend="cuda")
