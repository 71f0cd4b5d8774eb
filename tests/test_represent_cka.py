"""Linear, RBF, debiased and minibatch CKA against explicit HSIC references, invariances and limits."""

import itertools
import warnings

import numpy as np
import pytest

from sgtheory import InputError
from sgtheory.represent import ConstantFeatureWarning, MinibatchCKA, linear_cka, minibatch_cka, rbf_cka

TOL = 1e-9  # float64 round-off between two exact formulas; the cross-check threshold is 1e-6


def hsic_biased(K, L):
    """tr(K H L H) / (n-1)² with the centring matrix H written out."""
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return np.trace(K @ H @ L @ H) / (n - 1) ** 2


def hsic_unbiased_loops(K, L):
    """Song et al. (2012), eq. 5, term by term with explicit loops (tiny n only)."""
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0)
    np.fill_diagonal(Lt, 0)
    trace = sum(Kt[i, j] * Lt[j, i] for i in range(n) for j in range(n))
    sum_k = sum(Kt[i, j] for i in range(n) for j in range(n))
    sum_l = sum(Lt[i, j] for i in range(n) for j in range(n))
    cross = sum(Kt[i, j] * Lt[j, k] for i in range(n) for j in range(n) for k in range(n))
    return (trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2 * cross / (n - 2)) / (n * (n - 3))


def cka_ref(K, L, hsic):
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def rbf_gram_ref(X, frac):
    d2 = np.array([[np.sum((a - b) ** 2) for b in X] for a in X])
    sigma = frac * np.sqrt(np.median(d2))  # median over all n² pairs, diagonal included
    return np.exp(-d2 / (2 * sigma**2))


def views(rng, n=40, dx=6, dy=4):
    X = rng.normal(size=(n, dx)) + 1.0
    Y = np.tanh(X[:, :dy] @ rng.normal(size=(dy, dy))) + 0.5 * rng.normal(size=(n, dy))
    return X, Y


def test_linear_cka_matches_explicit_hsic(rng):
    for n, dx, dy in [(40, 6, 4), (12, 30, 25)]:  # features < samples and features > samples
        X, Y = views(rng, n, dx, min(dy, dx))
        assert linear_cka(X, Y) == pytest.approx(cka_ref(X @ X.T, Y @ Y.T, hsic_biased), abs=TOL)


def test_debiased_linear_cka_matches_song_loops(rng):
    X, Y = views(rng, n=9)  # raw (uncentred) features: the unbiased HSIC is shift-invariant
    assert linear_cka(X, Y, debiased=True) == pytest.approx(
        cka_ref(X @ X.T, Y @ Y.T, hsic_unbiased_loops), abs=TOL)


def test_rbf_cka_matches_explicit_gram(rng):
    X, Y = views(rng, n=25)
    for frac in (0.5, 1.0, 2.0):
        K, L = rbf_gram_ref(X, frac), rbf_gram_ref(Y, frac)
        assert rbf_cka(X, Y, sigma_frac=frac) == pytest.approx(cka_ref(K, L, hsic_biased), abs=TOL)
    Xs, Ys = X[:9], Y[:9]
    assert rbf_cka(Xs, Ys, debiased=True) == pytest.approx(
        cka_ref(rbf_gram_ref(Xs, 1.0), rbf_gram_ref(Ys, 1.0), hsic_unbiased_loops), abs=TOL)


def test_minibatch_cka_matches_summed_song_loops(rng):
    X, Y = views(rng, n=23)
    batches = [(X[s:s + 8], Y[s:s + 8]) for s in (0, 8, 16)]  # the last batch has 7 rows (>= 4: kept)
    kk = sum(hsic_unbiased_loops(xb @ xb.T, xb @ xb.T) for xb, _ in batches)
    kl = sum(hsic_unbiased_loops(xb @ xb.T, yb @ yb.T) for xb, yb in batches)
    ll = sum(hsic_unbiased_loops(yb @ yb.T, yb @ yb.T) for _, yb in batches)
    expected = kl / np.sqrt(kk * ll)
    assert minibatch_cka(X, Y, batch_size=8) == pytest.approx(expected, abs=TOL)
    acc = MinibatchCKA()
    for xb, yb in batches:
        acc.update(xb, yb)
    assert acc.value == pytest.approx(expected, abs=TOL)


def test_minibatch_drops_a_remainder_below_four(rng):
    X, Y = views(rng, n=19)
    assert minibatch_cka(X, Y, batch_size=8) == pytest.approx(minibatch_cka(X[:16], Y[:16], batch_size=8), abs=TOL)


def test_invariance_orthogonal_and_isotropic_scaling(rng):
    X, Y = views(rng, n=60)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    for debiased in (False, True):
        base = linear_cka(X, Y, debiased=debiased)
        assert linear_cka(3.7 * X @ Q + 2.0, Y, debiased=debiased) == pytest.approx(base, abs=TOL)
    base = rbf_cka(X, Y)
    assert rbf_cka(3.7 * X @ Q + 2.0, Y) == pytest.approx(base, abs=TOL)  # distances scale, σ follows


def test_not_invariant_to_general_linear_maps(rng):
    # CKA, unlike CCA, depends on the view's geometry: an anisotropic rescaling changes it
    X, Y = views(rng, n=60)
    assert abs(linear_cka(X * np.arange(1, 7) ** 2, Y) - linear_cka(X, Y)) > 1e-3


def test_identical_views_score_one(rng):
    X, _ = views(rng)
    for f in (linear_cka, rbf_cka):
        for debiased in (False, True):
            assert f(X, X, debiased=debiased) == pytest.approx(1.0, abs=TOL)
    assert minibatch_cka(X, X, batch_size=10) == pytest.approx(1.0, abs=TOL)


def test_independent_data_near_zero(rng):
    # Linear CKA of independent isotropic views ≈ sqrt(dx dy) / n = 2.5e-4 here; 0.01 is a wide bound.
    # Debiased and minibatch estimates centre on 0 with a spread of the same order.
    X, Y = rng.normal(size=(20000, 5)), rng.normal(size=(20000, 5))
    assert 0 <= linear_cka(X, Y) < 0.01
    assert abs(linear_cka(X, Y, debiased=True)) < 0.01
    assert abs(minibatch_cka(X, Y, batch_size=1000)) < 0.01
    Xs, Ys = X[:1500], Y[:1500]  # RBF costs n²: a smaller sample, looser bound (expected ≈ 1/n scale)
    assert 0 <= rbf_cka(Xs, Ys) < 0.03
    assert abs(rbf_cka(Xs, Ys, debiased=True)) < 0.03


def test_tiny_batches_never_nan(rng):
    for n in (4, 5):
        X, Y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
        for debiased in (False, True):
            try:
                v = linear_cka(X, Y, debiased=debiased)
            except InputError as exc:
                assert "too few samples" in str(exc)
            else:
                assert np.isfinite(v)
    with pytest.raises(InputError, match="at least 4"):
        linear_cka(np.eye(3), np.eye(3), debiased=True)


def test_constant_features(rng):
    X, Y = views(rng)
    Xz = np.column_stack([X, np.zeros(len(X))])
    for f in (linear_cka, rbf_cka):
        with pytest.warns(ConstantFeatureWarning):
            v = f(Xz, Y)
        assert np.isfinite(v)
    with pytest.raises(InputError, match="every feature is constant"):
        linear_cka(np.ones((10, 3)), Y[:10])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # minibatch CKA keeps constant features (they add nothing)
        assert np.isfinite(minibatch_cka(Xz, Y, batch_size=10))


def test_bad_inputs(rng):
    X, Y = views(rng)
    for f, kw in itertools.product((linear_cka, rbf_cka), ({}, {"debiased": True})):
        with pytest.raises(InputError, match="2-D"):
            f(X[:, 0], Y, **kw)
        with pytest.raises(InputError, match="sample counts differ"):
            f(X, Y[:-1], **kw)
        with pytest.raises(InputError, match="NaN"):
            f(np.where(X > 2, np.nan, X), Y, **kw)
    with pytest.raises(InputError, match="sigma_frac"):
        rbf_cka(X, Y, sigma_frac=0)
    with pytest.raises(InputError, match="median squared distance"):
        rbf_cka(X[[0] * 18 + [1, 2]], Y[:20])  # over half of the 400 squared distances are 0
    with pytest.raises(InputError, match="batch_size"):
        minibatch_cka(X, Y, batch_size=2)
    with pytest.raises(InputError, match="no batch"):
        _ = MinibatchCKA().value  # the property raises before any batch was added
