"""RDMs, RDM comparison and linear probes against explicit references."""

import numpy as np
import pytest
import scipy.stats

from sgtheory import InputError
from sgtheory.represent import compare_rdms, linear_probe, rdm, rsa

TOL = 1e-12  # the same sums evaluated in a different order


def tau_a_loops(a, b):
    """Kendall's τ_a: (concordant − discordant) / (m(m−1)/2), ties counting as neither."""
    m = len(a)
    s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i in range(m) for j in range(i + 1, m))
    return s / (m * (m - 1) / 2)


def test_rdm_is_one_minus_pearson_between_samples(rng):
    X = rng.normal(size=(12, 7))
    R = rdm(X)
    expected = np.array([[1 - np.corrcoef(a, b)[0, 1] for b in X] for a in X])
    np.testing.assert_allclose(R, expected, atol=TOL)
    assert np.allclose(np.diag(R), 0) and np.allclose(R, R.T)
    Re = rdm(X, metric="euclidean")
    np.testing.assert_allclose(Re, [[np.linalg.norm(a - b) for b in X] for a in X], atol=TOL)


def test_compare_rdms_methods(rng):
    X = rng.normal(size=(15, 5))
    Y = X + 0.7 * rng.normal(size=(15, 5))
    R1, R2 = rdm(X), rdm(Y)
    iu = np.triu_indices(15, k=1)
    a, b = R1[iu], R2[iu]
    assert compare_rdms(R1, R2) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=TOL)
    assert compare_rdms(R1, R2, "pearson") == pytest.approx(np.corrcoef(a, b)[0, 1], abs=TOL)
    assert compare_rdms(R1, R2, "kendall") == pytest.approx(tau_a_loops(a, b), abs=TOL)
    assert rsa(X, Y) == pytest.approx(compare_rdms(R1, R2), abs=TOL)
    assert compare_rdms(R1, R1) == pytest.approx(1.0, abs=TOL)


def test_kendall_tau_a_with_ties():
    # Euclidean RDM of points on a grid: many tied distances, where τ_a and τ_b differ.
    g = np.array([[i, j] for i in range(3) for j in range(3)], float)
    R1 = rdm(g, metric="cityblock")
    R2 = rdm(g * [1, 2], metric="euclidean")
    iu = np.triu_indices(9, k=1)
    tau_a = compare_rdms(R1, R2, "kendall")
    assert tau_a == pytest.approx(tau_a_loops(R1[iu], R2[iu]), abs=TOL)
    assert tau_a < scipy.stats.kendalltau(R1[iu], R2[iu]).statistic  # τ_b corrects for ties, τ_a does not


def test_only_the_upper_triangle_is_read(rng):
    R1, R2 = rdm(rng.normal(size=(8, 3))), rdm(rng.normal(size=(8, 3)))
    noisy = R2 + np.tril(rng.normal(size=(8, 8)))
    assert compare_rdms(R1, noisy) == pytest.approx(compare_rdms(R1, R2), abs=TOL)


def test_rdm_bad_inputs(rng):
    X = rng.normal(size=(6, 4))
    with pytest.raises(InputError, match="constant feature vectors"):
        rdm(np.vstack([X, np.full(4, 2.0)]))
    with pytest.raises(InputError, match="2-D"):
        rdm(X[0])
    with pytest.raises(InputError, match="NaN"):
        rdm(np.where(X > 1, np.inf, X))
    with pytest.raises(InputError, match="metric"):
        rdm(X, metric="no-such-metric")
    with pytest.raises(InputError, match="square"):
        compare_rdms(rdm(X)[:, :5], rdm(X))
    with pytest.raises(InputError, match="different sizes"):
        compare_rdms(rdm(X), rdm(X[:5]))
    with pytest.raises(InputError, match="method"):
        compare_rdms(rdm(X), rdm(X), "cosine")
    with pytest.raises(InputError, match="all dissimilarities are equal"):
        compare_rdms(np.ones((5, 5)) - np.eye(5), rdm(X[:5]))


def test_linear_probe_reads_out_separable_classes(rng):
    y = rng.integers(0, 3, size=600)
    means = 3 * rng.normal(size=(3, 10))
    X = means[y] + rng.normal(size=(600, 10))
    acc = linear_probe(X[:400], y[:400], X[400:], y[400:], seed=1)
    assert acc > 0.95
    assert acc == linear_probe(X[:400], y[:400], X[400:], y[400:], seed=1)  # deterministic
    noise = rng.normal(size=(600, 10))  # no information: near chance (1/3); 200 test points, sd ≈ 0.033
    assert linear_probe(noise[:400], y[:400], noise[400:], y[400:]) < 0.48


def test_linear_probe_bad_inputs(rng):
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(InputError, match="labels for"):
        linear_probe(X, y[:-1], X, y)
    with pytest.raises(InputError, match="feature counts differ"):
        linear_probe(X, y, X[:, :2], y)
    with pytest.raises(InputError, match="2 classes"):
        linear_probe(X, np.zeros(20), X, y)
    with pytest.raises(InputError, match="C"):
        linear_probe(X, y, X, y, C=0)
