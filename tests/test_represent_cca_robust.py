"""CCA, SVCCA and PWCCA on hard input: feature scales spanning 1e-8..1e8, and repeated samples."""

import warnings

import numpy as np
import pytest
import scipy.linalg
from scipy.linalg import lapack

from sgtheory import InputError
from sgtheory.represent import SmallSampleWarning, bootstrap_ci, cca, permutation_test, pwcca, similarity_matrix, svcca
from sgtheory.represent._validate import distinct_samples, sample_groups

# The cross-check threshold for an independent implementation.
TOL_INDEPENDENT = 1e-6


def qr_cca(X, Y):
    """Textbook CCA (Björck & Golub 1973): Householder QR with column pivoting of each centred view, then
    the singular values of Q_x^T Q_y. Householder QR's backward error is small column by column, so the
    Q factor does not care how the columns are scaled; every column is kept (the test data have full rank)."""
    qx = scipy.linalg.qr(X - X.mean(0), mode="economic", pivoting=True)[0]
    qy = scipy.linalg.qr(Y - Y.mean(0), mode="economic", pivoting=True)[0]
    return np.linalg.svd(qx.T @ qy, compute_uv=False)[: min(X.shape[1], Y.shape[1])]


def jacobi_pwcca(X, Y):
    """PWCCA (google/svcca's formula) through scale-proof steps: pivoted QR ``X_c = Q R``, and the polar
    factor ``W = (R^T R)^{-1/2} R^T`` from a one-sided Jacobi SVD (LAPACK dgejsv, accurate to high relative
    precision whatever the column scales), so the whitened cross-covariance is ``W_x Q_x^T Q_y W_y^T``."""

    def parts(V):
        mu = V.mean(0)
        q, r, perm = scipy.linalg.qr(V - mu, mode="economic", pivoting=True)
        r = r[:, np.argsort(perm)]  # undo the pivoting: V - mu = q @ r
        sva, u, v, work, _, info = lapack.dgejsv(r.T, joba=3, jobu=0, jobv=0)
        assert info == 0
        return mu, q, r, u @ v.T  # polar factor of r^T

    mx, qx, rx, wx = parts(X)
    _, qy, _, wy = parts(Y)
    u, rho, _ = np.linalg.svd(wx @ (qx.T @ qy) @ wy.T)
    c = min(X.shape[1], Y.shape[1])
    directions = qx @ (rx @ u[:, :c]) + mx[:c]
    p, _ = np.linalg.qr(directions)
    alpha = np.abs(p.T @ X).sum(axis=1)
    return float(np.sum(alpha * rho[:c]) / np.sum(alpha))


def related_views(rng, n=400, dx=10, dy=8, shift=0.0):
    Z = rng.normal(size=(n, 5))
    X = Z @ rng.normal(size=(5, dx)) + rng.normal(size=(n, dx)) + shift
    Y = Z @ rng.normal(size=(5, dy)) + rng.normal(size=(n, dy)) + shift
    return X, Y


def spread_scales(rng, d):
    """Per-feature scales log-uniform in [1e-8, 1e8], both ends included."""
    s = 10.0 ** rng.uniform(-8, 8, size=d)
    s[:2] = 1e-8, 1e8
    return rng.permutation(s)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cca_invariant_to_feature_scales_spanning_1e16(seed):
    rng = np.random.default_rng(seed)
    X, Y = related_views(rng, shift=3.0)
    Xs, Ys = X * spread_scales(rng, X.shape[1]), Y * spread_scales(rng, Y.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature may be called "linearly dependent"
        rho = cca(Xs, Ys)
        full = svcca(Xs, Ys, variance=1.0)
        all_components = svcca(Xs, Ys, n_components=10)
    assert rho.shape == (8,)
    np.testing.assert_allclose(rho, qr_cca(Xs, Ys), atol=TOL_INDEPENDENT)
    # the scaled views span the same column spaces: the exact answer is the unscaled one (round-off level)
    np.testing.assert_allclose(rho, cca(X, Y), atol=1e-12)
    # keeping all the variance (or every direction) is plain CCA, however small some directions are
    assert full == pytest.approx(rho.mean(), abs=1e-12)
    assert all_components == pytest.approx(rho.mean(), abs=1e-12)
    # the same through similarity_matrix (per-layer preparation), numpy and JAX pair steps
    for backend in ("numpy", "jax"):
        S = similarity_matrix([Xs, X], [Ys, Y], "cca", backend=backend)
        np.testing.assert_allclose(S, rho.mean(), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_pwcca_with_spread_feature_scales_matches_a_scale_proof_reference(seed):
    # PWCCA's weights use the raw neurons, so unlike CCA its value changes with the scales (by definition);
    # what must not change is the rank, and the value must match an independent, scale-proof computation.
    rng = np.random.default_rng(seed)
    X, Y = related_views(rng)
    Xs, Ys = X * spread_scales(rng, X.shape[1]), Y * spread_scales(rng, Y.shape[1])
    assert pwcca(X, Y) == pytest.approx(jacobi_pwcca(X, Y), abs=1e-10)  # the reference itself, unscaled
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = pwcca(Xs, Ys)
    assert value == pytest.approx(jacobi_pwcca(Xs, Ys), abs=TOL_INDEPENDENT)
    rho = cca(X, Y)
    assert rho.min() - 1e-12 <= value <= rho.max() + 1e-12  # a weighted mean of the canonical correlations


def test_real_linear_dependence_still_detected_under_spread_scales(rng):
    X, Y = related_views(rng)
    s = spread_scales(rng, 11)
    Xd = np.column_stack([X, X[:, 0] - 2 * X[:, 3]]) * s
    with pytest.warns(UserWarning, match="rank 10 of 11"):
        rho = cca(Xd, Y)
    np.testing.assert_allclose(rho, cca(X, Y), atol=1e-8)


def repeated(rng, n_distinct, times, dx, dy):
    X, Y = rng.normal(size=(n_distinct, dx)), rng.normal(size=(n_distinct, dy))
    return np.repeat(X, times, axis=0), np.repeat(Y, times, axis=0), X, Y


def test_repeated_samples_refused_not_one(rng):
    # The case: 20 samples each repeated 10 times (n = 200), 15 + 15 independent features. The two
    # 15-dimensional column spaces lie in a 19-dimensional space, so 11 correlations would be exactly 1.
    Xr, Yr, _, _ = repeated(rng, 20, 10, 15, 15)
    for f in (cca, pwcca, lambda x, y: svcca(x, y, variance=1.0)):
        with pytest.raises(InputError, match="20 distinct"):
            f(Xr, Yr)
    for backend in ("numpy", "jax"):
        with pytest.raises(InputError, match="distinct samples > 30"):
            similarity_matrix([Xr], [Yr], "cca", backend=backend)
    # shuffled rows (repeats not adjacent) are found as well
    rows = rng.permutation(200)
    with pytest.raises(InputError, match="20 distinct"):
        cca(Xr[rows], Yr[rows])
    # ridge CCA is well posed and stays below 1
    assert cca(Xr, Yr, regularization=1.0).max() < 0.999


def test_uniform_repeats_give_the_distinct_samples_answer(rng):
    Xr, Yr, X, Y = repeated(rng, 80, 3, 15, 15)  # 30 directions < 79: supported, and 80 >= 60: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(cca(Xr, Yr), cca(X, Y), atol=1e-12)


def test_small_sample_warning_counts_distinct_samples(rng):
    Xr, Yr, _, _ = repeated(rng, 40, 5, 12, 12)  # 200 rows, 40 distinct: 24 < 39, but 40 < 48
    with pytest.warns(SmallSampleWarning, match="40 distinct"):
        cca(Xr, Yr)


def test_repeats_in_one_view_only_are_distinct_samples(rng):
    # X repeats its rows but every (x_i, y_i) pair differs: nothing forces a correlation of 1
    Xr, _, _, _ = repeated(rng, 20, 10, 15, 15)
    Y = rng.normal(size=(200, 15))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rho = cca(Xr, Y)
    assert rho.max() < 0.9


def test_bootstrap_replicates_go_through_the_guard(rng):
    # 40 samples carry 14 + 14 directions (28 < 39), but a bootstrap replicate holds about 25 distinct ones
    X, Y = rng.normal(size=(40, 14)), rng.normal(size=(40, 14))
    with pytest.warns(SmallSampleWarning):
        cca(X, Y)
    with pytest.raises(InputError, match=r"bootstrap replicate 1 of 20: cca: 40 samples \(\d+ distinct"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)
            bootstrap_ci(X, Y, "cca", n_boot=20, seed=0)
    # with room to spare, replicates pass; their smaller distinct counts are warned about, once
    X, Y = rng.normal(size=(60, 10)), rng.normal(size=(60, 10))  # 60 >= 2 * 20, a replicate ~38 distinct
    with pytest.warns(SmallSampleWarning, match="distinct.*similar warning"):
        res = bootstrap_ci(X, Y, "cca", n_boot=30, seed=0)
    assert 0 < res.low <= res.high < 1


def test_permutation_test_sees_repeats(rng):
    # X repeated in blocks, Y not: the data pass, and permuting Y keeps every pair distinct
    Xr, _, _, _ = repeated(rng, 50, 2, 6, 6)
    Y = rng.normal(size=(100, 6))
    res = permutation_test(Xr, Y, "cca", n_permutations=30, seed=1)
    assert 0 < res.p_value <= 1 and np.all(res.null < 1)


def test_sample_groups_agree_with_exact_row_comparison(rng):
    for n, d, k in [(50, 3, 10), (300, 40, 120), (7, 1, 7), (64, 5, 1)]:
        base = rng.normal(size=(k, d))
        x = base[rng.integers(0, k, size=n)]
        groups = sample_groups(x)
        _, exact = np.unique(x, axis=0, return_inverse=True)
        exact = exact.ravel()
        if np.unique(exact).size == n:
            assert groups is None
        else:  # the same partition of the rows (ids may be numbered differently)
            assert np.unique(np.column_stack([groups, exact]), axis=0).shape[0] == np.unique(exact).size
            assert np.unique(groups).size == np.unique(exact).size
    assert sample_groups(rng.normal(size=(100, 4))) is None
    signed = np.array([[0.0, 1.0], [-0.0, 1.0], [1.0, 2.0]])
    assert sample_groups(signed).tolist() == [0, 0, 1]  # -0.0 equals 0.0
    gx, gy = np.array([0, 0, 1, 1]), np.array([0, 1, 2, 2])
    assert distinct_samples(gx, gy, 4) == 3 and distinct_samples(gx, None, 4) == 4
