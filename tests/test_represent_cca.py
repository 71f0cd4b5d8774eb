"""CCA, SVCCA and PWCCA against slow textbook references, invariances, limits and bad input."""

import warnings

import numpy as np
import pytest
import scipy.linalg

from sgtheory import InputError
from sgtheory.represent import ConstantFeatureWarning, SmallSampleWarning, cca, pwcca, svcca

# Independent implementations agree to 1e-6 (the cross-check threshold); ours and the float64
# references differ only by round-off, so most checks use 1e-9.
TOL = 1e-9


def reference_cca(X, Y):
    """ρ² = eigenvalues of Σxx⁻¹ Σxy Σyy⁻¹ Σyx (Hotelling), via scipy's generalised symmetric eigensolver."""
    dx = X.shape[1]
    C = np.cov(X, Y, rowvar=False)
    sxx, sxy, syy = C[:dx, :dx], C[:dx, dx:], C[dx:, dx:]
    lam = scipy.linalg.eigh(sxy @ np.linalg.solve(syy, sxy.T), sxx, eigvals_only=True)
    k = min(X.shape[1], Y.shape[1])
    return np.sqrt(np.clip(np.sort(lam)[::-1][:k], 0, 1))


def reference_pwcca(acts1, acts2):
    """The projection weighting of google/svcca's compute_pwcca, re-derived from its description.

    Inputs (neurons, samples) as in that code; np.cov, pinv, eigh square roots, full SVD, directions
    u^T (A - μ) + μ, QR, weights Σ_j |⟨p_i, a_j⟩| over raw neurons of acts1 (its first branch).
    """
    nx = acts1.shape[0]
    C = np.cov(acts1, acts2)
    sxx, sxy, syy = C[:nx, :nx], C[:nx, nx:], C[nx:, nx:]

    def inv_sqrt(S):
        w, v = np.linalg.eigh(np.linalg.pinv(S))
        return v @ np.diag(np.sqrt(w)) @ v.T

    u, s, _ = np.linalg.svd(inv_sqrt(sxx) @ sxy @ inv_sqrt(syy))
    mu = acts1.mean(axis=1, keepdims=True)
    dirns = u.T @ (acts1 - mu) + mu
    P, _ = np.linalg.qr(dirns.T)
    w = np.abs(P.T @ acts1.T).sum(axis=1)
    w = w / w.sum()
    return float(np.sum(w * s[: w.size]))


def relu_pair(rng, n=600, dx=12, dy=12, noise=1.0):
    """Correlated ReLU 'activations' with non-zero means, like real layers."""
    Z = rng.normal(size=(n, 8))
    X = np.maximum(Z @ rng.normal(size=(8, dx)) + 0.3 * rng.normal(size=(n, dx)) + 0.5, 0)
    Y = np.maximum(Z @ rng.normal(size=(8, dy)) + noise * rng.normal(size=(n, dy)) + 0.2, 0)
    return X, Y


def test_cca_matches_eigen_reference(rng):
    for dx, dy in [(6, 6), (4, 9), (9, 4)]:
        X, Y = relu_pair(rng, dx=dx, dy=dy)
        rho = cca(X, Y)
        assert rho.shape == (min(dx, dy),)
        assert np.all(np.diff(rho) <= 1e-15)  # descending
        np.testing.assert_allclose(rho, reference_cca(X, Y), atol=TOL)


def test_ridge_cca_matches_regularised_eigen_reference(rng):
    X, Y = relu_pair(rng, dx=6, dy=8)
    lam = 0.3
    dx = X.shape[1]
    C = np.cov(X, Y, rowvar=False)
    sxx, sxy, syy = C[:dx, :dx], C[:dx, dx:], C[dx:, dx:]
    sxx = sxx + lam * np.trace(sxx) / dx * np.eye(dx)  # λ relative to the mean feature variance
    syy = syy + lam * np.trace(syy) / syy.shape[0] * np.eye(syy.shape[0])
    rho2 = scipy.linalg.eigh(sxy @ np.linalg.solve(syy, sxy.T), sxx, eigvals_only=True)
    np.testing.assert_allclose(cca(X, Y, regularization=lam), np.sqrt(np.sort(rho2)[::-1]), atol=TOL)
    assert np.all(cca(X, Y, regularization=lam) < cca(X, Y))  # ridge shrinks every correlation


def test_cca_invariant_to_invertible_linear_maps_and_shifts(rng):
    X, Y = relu_pair(rng, dx=7, dy=5)
    A = rng.normal(size=(7, 7)) + 3 * np.eye(7)
    B = rng.normal(size=(5, 5)) + 3 * np.eye(5)
    np.testing.assert_allclose(cca(X @ A + 4.0, Y @ B - 2.0), cca(X, Y), atol=TOL)


def test_ill_conditioned_views_stay_accurate(rng):
    # Column scales spanning 1e6 (condition number > 1e3: the SVD route). CCA is invariant to this
    # rescaling, so the exact answer is the CCA of the unscaled views.
    X, Y = relu_pair(rng, dx=8, dy=6)
    D = np.logspace(0, -6, 8)
    np.testing.assert_allclose(cca(X * D, Y), cca(X, Y), atol=1e-9)
    assert svcca(X * D, Y, n_components=8) == pytest.approx(svcca(X, Y, n_components=8), abs=1e-9)


def test_identical_views_score_one(rng):
    X, _ = relu_pair(rng)
    np.testing.assert_allclose(cca(X, X), 1.0, atol=TOL)
    assert svcca(X, X) == pytest.approx(1.0, abs=TOL)
    assert pwcca(X, X) == pytest.approx(1.0, abs=TOL)


def test_independent_data_near_zero(rng):
    # n = 20000, d = 3: the largest canonical correlation of independent data is about
    # (sqrt(3) + sqrt(3)) / sqrt(n) ≈ 0.025, so 0.06 bounds it with room to spare.
    X, Y = rng.normal(size=(20000, 3)), rng.normal(size=(20000, 3))
    assert cca(X, Y).max() < 0.06
    assert svcca(X, Y) < 0.06
    assert pwcca(X, Y) < 0.06


def test_svcca_matches_explicit_svd_then_cca(rng):
    X, Y = relu_pair(rng, dx=15, dy=10, noise=0.5)
    for variance in (0.5, 0.9, 0.99, 1.0):
        parts = []
        for V in (X, Y):
            Vc = V - V.mean(axis=0)
            U, s, _ = np.linalg.svd(Vc, full_matrices=False)
            share = np.cumsum(s**2) / np.sum(s**2)
            k = next(i + 1 for i, c in enumerate(share) if c >= variance - 1e-12)
            parts.append(U[:, :k] * s[:k])  # the reduced view (projections on the top directions)
        assert svcca(X, Y, variance=variance) == pytest.approx(reference_cca(*parts).mean(), abs=TOL)
    assert svcca(X, Y, n_components=3) == pytest.approx(
        reference_cca(*[np.linalg.svd(V - V.mean(0), full_matrices=False)[0][:, :3] for V in (X, Y)]).mean(), abs=TOL)


def test_pwcca_matches_reference_on_equal_widths(rng):
    for _ in range(3):
        X, Y = relu_pair(rng, dx=14, dy=14)
        assert pwcca(X, Y) == pytest.approx(reference_pwcca(X.T, Y.T), abs=1e-8)


def test_pwcca_unequal_widths(rng):
    # X narrower: the reference's own branch applies and must agree.
    X, Y = relu_pair(rng, dx=6, dy=13)
    assert pwcca(X, Y) == pytest.approx(reference_pwcca(X.T, Y.T), abs=1e-8)
    # X wider (where the reference fails): weights come from X's neurons over the min(d_x, d_y) pairs,
    # so the value is a weighted mean of cca(X, Y).
    Xw, Yn = relu_pair(rng, dx=13, dy=6)
    v = pwcca(Xw, Yn)
    rho = cca(Xw, Yn)
    assert rho.min() - 1e-12 <= v <= rho.max() + 1e-12
    # Adding neuron i's mean to direction i (the reference's choice) ties directions to neuron order;
    # for centred neurons that term vanishes and reordering X's neurons changes nothing.
    Xc = Xw - Xw.mean(axis=0)
    assert pwcca(Xc[:, ::-1], Yn) == pytest.approx(pwcca(Xc, Yn), abs=1e-8)


def test_constant_features_dropped_with_warning(rng):
    X, Y = relu_pair(rng, dx=6, dy=6)
    Xz = np.column_stack([X, np.zeros(len(X)), np.full(len(X), 3.0)])
    with pytest.warns(ConstantFeatureWarning, match="dropped 2 constant"):
        rho = cca(Xz, Y)
    np.testing.assert_allclose(rho, cca(X, Y), atol=TOL)
    with pytest.warns(ConstantFeatureWarning):
        assert np.isfinite(pwcca(Xz, Y)) and np.isfinite(svcca(Xz, Y))


def test_samples_at_most_features_refused_not_one(rng):
    X, Y = rng.normal(size=(50, 60)), rng.normal(size=(50, 60))
    for f in (cca, svcca, pwcca):
        with pytest.raises(InputError, match="too few for CCA"):
            f(X, Y)
    # ridge CCA is well posed there and does not report unit correlations for random data
    rho = cca(X, Y, regularization=1.0)
    assert np.all(np.isfinite(rho)) and rho.max() < 0.9


def test_small_sample_warning_states_bias(rng):
    X, Y = rng.normal(size=(40, 12)), rng.normal(size=(40, 12))  # 12 + 12 < 39 but 40 < 2 * 24
    with pytest.warns(SmallSampleWarning, match="RMS canonical"):
        cca(X, Y)


def test_bad_inputs():
    good = np.random.default_rng(0).normal(size=(30, 3))
    cases = [
        (np.arange(30.0), good, "2-D"),
        (good, good[:20], "sample counts differ"),
        (np.where(np.eye(30, 3) > 0, np.nan, good), good, "NaN"),
        (np.where(np.eye(30, 3) > 0, np.inf, good), good, "NaN/inf"),
        (np.ones((30, 3)), good, "every feature is constant"),
        (good[:2], good[:2], "at least 3 samples"),
        (np.array([["a"] * 3] * 30), good, "numeric"),
    ]
    for X, Y, msg in cases:
        for f in (cca, svcca, pwcca):
            with pytest.raises(InputError, match=msg):
                f(X, Y)
    with pytest.raises(InputError, match="variance"):
        svcca(good, good, variance=1.5)
    with pytest.raises(InputError, match="regularization"):
        cca(good, good, regularization=-1)
    assert issubclass(InputError, ValueError)


def test_linearly_dependent_features_warn_and_use_rank(rng):
    X, Y = relu_pair(rng, dx=5, dy=5)
    Xd = np.column_stack([X, X[:, 0] + X[:, 1]])
    with pytest.warns(UserWarning, match="linearly dependent"):
        rho = cca(Xd, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(rho, cca(X, Y), atol=1e-8)


def test_real_activations_from_digits():
    # Real inputs (scikit-learn's 8×8 digits) through random ReLU layers: skewed, sparse activations
    # with non-zero means, the kind of data the cross-checks use.
    import importlib.util
    from pathlib import Path

    # read the bundled file directly (find_spec locates the package without importing it, which takes seconds)
    root = Path(importlib.util.find_spec("sklearn").origin).parent
    digits = np.loadtxt(root / "datasets" / "data" / "digits.csv.gz", delimiter=",")
    x = digits[:, :-1] / 16.0
    g = np.random.default_rng(3)
    h1 = np.maximum(x @ g.normal(size=(64, 24)) / 4 - 0.2, 0)
    h2 = np.maximum(h1 @ g.normal(size=(24, 24)) / 3 - 0.1, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no dead units at this size: nothing is dropped
        np.testing.assert_allclose(cca(h1, h2), reference_cca(h1, h2), atol=1e-8)
        assert pwcca(h1, h2) == pytest.approx(reference_pwcca(h1.T, h2.T), abs=1e-8)
        assert pwcca(h2, h1) == pytest.approx(reference_pwcca(h2.T, h1.T), abs=1e-8)
