"""Calibrated probabilistic embeddings: estimation, distances, estimators."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.covariance import empirical_covariance, ledoit_wolf, shrunk_covariance
from sklearn.exceptions import ConvergenceWarning

from skxmr import registered_methods
from skxmr.calibration._projection import TRAIN_DISTANCES, loss_and_gradient
from skxmr.datasets import make_multiplicity_problem
from skxmr.calibration import (
    CalibratedProjection,
    GaussianEmbedding,
    NeighborhoodGaussian,
    ProbabilisticCalibration,
    bhattacharyya_distance,
    calibrated_similarity,
    js_divergence,
    kl_divergence,
    pair_gaussians,
    symmetric_kl_divergence,
    unpair_gaussians,
    wasserstein2_squared,
)

from .conftest import make_pairs

LOG2 = np.log(2.0)


def random_gaussians(rng, n, d, kind):
    means = rng.standard_normal((n, d))
    if kind == "spherical":
        return means, rng.uniform(0.2, 2.0, n)
    if kind == "diag":
        return means, rng.uniform(0.1, 2.0, (n, d))
    A = rng.standard_normal((n, d, d))
    return means, A @ np.swapaxes(A, 1, 2) / d + 0.1 * np.eye(d)


def as_full(cov, d):
    cov = np.asarray(cov)
    if cov.ndim == 1:
        cov = np.repeat(cov[:, None], d, axis=1)
    return cov[:, :, None] * np.eye(d) if cov.ndim == 2 else cov


# ------------------------------------------------------------ estimation
@pytest.mark.parametrize("n_samples,d", [(5, 8), (20, 4), (3, 30), (6, 1)])
def test_batched_ledoit_wolf_equals_sklearn(n_samples, d, rng):
    X = rng.standard_normal((7, n_samples, d)) * rng.uniform(0.1, 2.0, d)
    full = GaussianEmbedding(covariance="full").fit(X)
    diag = GaussianEmbedding(covariance="diag").fit(X)
    sph = GaussianEmbedding(covariance="spherical").fit(X)
    for i in range(7):
        cov, shrinkage = ledoit_wolf(X[i])
        np.testing.assert_allclose(full.covariances_[i], cov, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(full.shrinkage_[i], shrinkage, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(diag.covariances_[i], np.diag(cov), rtol=1e-10)
        np.testing.assert_allclose(sph.covariances_[i], np.trace(cov) / d, rtol=1e-10)
        np.testing.assert_allclose(full.means_[i], X[i].mean(axis=0))


def test_ragged_items_with_ids_equal_sklearn_per_item(rng):
    ids = rng.choice(["cat", "dog", "car", "sea"], size=50)
    X = rng.standard_normal((50, 3))
    ge = GaussianEmbedding(covariance="full").fit(X, item_ids=ids)
    first_seen = list(dict.fromkeys(ids))
    assert ge.item_ids_.tolist() == first_seen
    for k, item in enumerate(first_seen):
        cov, shrinkage = ledoit_wolf(X[ids == item])
        np.testing.assert_allclose(ge.covariances_[k], cov, rtol=1e-10)
        np.testing.assert_allclose(ge.shrinkage_[k], shrinkage, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shrinkage", [None, 0.3, 1.0])
def test_fixed_shrinkage_equals_sklearn(shrinkage, rng):
    X = rng.standard_normal((4, 10, 5))
    covs = GaussianEmbedding(covariance="full", shrinkage=shrinkage).fit(X).covariances_
    for i in range(4):
        emp = empirical_covariance(X[i])
        expected = emp if shrinkage is None else shrunk_covariance(emp, shrinkage)
        np.testing.assert_allclose(covs[i], expected, rtol=1e-10)


def test_few_samples_still_give_spd_with_shrinkage(rng):
    X = rng.standard_normal((6, 3, 30))  # 3 samples in 30 dimensions
    covs = GaussianEmbedding(covariance="full").fit(X).covariances_
    assert np.linalg.eigvalsh(covs).min() > 0
    with pytest.raises(ValueError, match="singular"):
        GaussianEmbedding(covariance="full", shrinkage=None).fit(X)
    covs = GaussianEmbedding(covariance="full", shrinkage=None, reg_covar=1e-3).fit(X).covariances_
    assert np.linalg.eigvalsh(covs).min() >= 1e-3 - 1e-12


def test_estimation_bad_input(rng):
    with pytest.raises(ValueError, match="at least 2 samples"):
        GaussianEmbedding(covariance="full", shrinkage=None).fit(rng.standard_normal((4, 1, 3)))
    with pytest.raises(ValueError, match="item 'b' has 1 sample"):
        GaussianEmbedding().fit(rng.standard_normal((3, 2)), item_ids=["a", "a", "b"])
    with pytest.raises(ValueError, match="item_ids is required"):
        GaussianEmbedding().fit(rng.standard_normal((6, 3)))
    with pytest.raises(ValueError, match="item_ids must be 1-D"):
        GaussianEmbedding().fit(rng.standard_normal((6, 3)), item_ids=[0, 1])
    with pytest.raises(ValueError, match="item_ids must be None"):
        GaussianEmbedding().fit(rng.standard_normal((2, 3, 3)), item_ids=[0, 1])
    X = rng.standard_normal((2, 4, 3))
    X[0, :, 1] = 5.0  # a feature that never varies
    with pytest.raises(ValueError, match="item 0 has zero variance"):
        GaussianEmbedding(shrinkage=None).fit(X)
    assert np.all(GaussianEmbedding().fit(X).covariances_ > 0)  # Ledoit-Wolf fixes it
    X[0, 1, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        GaussianEmbedding().fit(X)
    with pytest.raises(ValueError, match="shrinkage"):
        GaussianEmbedding(shrinkage=1.5).fit(rng.standard_normal((2, 4, 3)))
    with pytest.raises(ValueError, match="features"):
        GaussianEmbedding().fit(rng.standard_normal((2, 4, 3))).transform(
            rng.standard_normal((2, 4, 5))
        )


@pytest.mark.parametrize("kind", ["spherical", "diag", "full"])
def test_pack_unpack_roundtrip(kind, rng):
    means, covs = random_gaussians(rng, 5, 4, kind)
    X = pair_gaussians(means, covs, means + 1, covs)
    mq, cq, mg, cg = unpair_gaussians(X, covariance=kind)
    np.testing.assert_allclose(mq, means)
    np.testing.assert_allclose(cq, covs, rtol=1e-12)
    np.testing.assert_allclose(mg, means + 1)
    expected_width = {"spherical": 5, "diag": 8, "full": 14}[kind]
    assert X.shape == (5, 2 * expected_width)


@settings(max_examples=30)
@given(st.lists(st.floats(-5, 5), min_size=9, max_size=9))
def test_every_finite_full_row_is_spd(values):
    _, cov, _, _ = unpair_gaussians(np.array([values + values]), covariance="full")
    assert np.linalg.eigvalsh(cov).min() > 0


def test_pair_gaussians_bad_input(rng):
    with pytest.raises(ValueError, match="same covariance kind"):
        pair_gaussians(np.zeros((2, 3)), np.ones((2, 3)), np.zeros((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="covariances_g: variances must be positive"):
        pair_gaussians(np.zeros((2, 3)), np.ones((2, 3)), np.zeros((2, 3)), -np.ones((2, 3)))
    with pytest.raises(ValueError, match="rows"):
        pair_gaussians(np.zeros((2, 3)), np.ones((2, 3)), np.zeros((3, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="magnitude"):
        unpair_gaussians(np.hstack([np.zeros((1, 2)), [[800.0]], np.zeros((1, 2)), [[0.0]]]),
                         covariance="spherical")


# ------------------------------------------------------------- distances
def test_w2_full_equals_pot(rng):
    import ot.gaussian as ot_gaussian
    m1, c1 = random_gaussians(rng, 4, 5, "full")
    m2, c2 = random_gaussians(rng, 6, 5, "full")
    # W, not W^2; one pair per call (POT batches pairs only from 0.9.6 on)
    W = np.array([[ot_gaussian.bures_wasserstein_distance(m1[i], m2[j], c1[i], c2[j])
                   for j in range(len(m2))] for i in range(len(m1))])
    np.testing.assert_allclose(wasserstein2_squared(m1, c1, m2, c2), W**2, rtol=1e-10)


def test_w2_diag_closed_form_and_kinds_agree(rng):
    m1, v1 = random_gaussians(rng, 3, 4, "diag")
    m2, v2 = random_gaussians(rng, 5, 4, "diag")
    hand = ((m1[:, None] - m2[None]) ** 2).sum(-1) + (
        (np.sqrt(v1)[:, None] - np.sqrt(v2)[None]) ** 2
    ).sum(-1)
    np.testing.assert_allclose(wasserstein2_squared(m1, v1, m2, v2), hand, rtol=1e-12)
    np.testing.assert_allclose(
        wasserstein2_squared(m1, as_full(v1, 4), m2, as_full(v2, 4)), hand, rtol=1e-10
    )
    # Mixed kinds promote to full matrices.
    np.testing.assert_allclose(wasserstein2_squared(m1, v1, m2, as_full(v2, 4)), hand, rtol=1e-10)
    s1, s2 = rng.uniform(0.5, 2, 3), rng.uniform(0.5, 2, 5)
    np.testing.assert_allclose(
        wasserstein2_squared(m1, s1, m2, s2),
        wasserstein2_squared(m1, np.repeat(s1[:, None], 4, 1), m2, np.repeat(s2[:, None], 4, 1)),
    )


def test_w2_against_sorted_sample_monte_carlo(rng):
    """W2 of diagonal Gaussians is the sum of 1-D W2s; 1-D W2 of samples is sorting."""
    m1, v1 = random_gaussians(rng, 1, 3, "diag")
    m2, v2 = random_gaussians(rng, 1, 3, "diag")
    n = 200_000
    x = np.sort(m1 + np.sqrt(v1) * rng.standard_normal((n, 3)), axis=0)
    y = np.sort(m2 + np.sqrt(v2) * rng.standard_normal((n, 3)), axis=0)
    mc = ((x - y) ** 2).mean(axis=0).sum()
    np.testing.assert_allclose(wasserstein2_squared(m1, v1, m2, v2)[0, 0], mc, rtol=0.02)


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_w2_symmetric_and_zero_iff_equal(kind, rng):
    m, c = random_gaussians(rng, 6, 4, kind)
    W = wasserstein2_squared(m, c, m, c)
    np.testing.assert_allclose(W, W.T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.diag(W), 0.0, atol=1e-10)
    assert W[~np.eye(6, dtype=bool)].min() > 1e-3
    # Same means, different covariances: still positive.
    c2 = c * 1.5
    assert np.all(np.diag(wasserstein2_squared(m, c, m, c2)) > 1e-3)


def test_w2_allows_singular_and_clips_rounding(rng):
    v = rng.standard_normal((1, 4, 2))
    singular = v @ np.swapaxes(v, 1, 2)  # rank 2 in 4 dimensions
    m = np.zeros((1, 4))
    W = wasserstein2_squared(m, singular, m, singular)
    assert np.isfinite(W).all() and abs(W[0, 0]) < 1e-10
    with pytest.raises(ValueError, match="covariances1 is singular"):
        kl_divergence(m, singular, m, np.eye(4)[None])


def test_non_spd_and_bad_shapes_raise(rng):
    m = np.zeros((1, 2))
    bad = np.array([[[1.0, 2.0], [2.0, 1.0]]])  # eigenvalue -1
    with pytest.raises(ValueError, match="covariances2 is not positive semi-definite"):
        wasserstein2_squared(m, np.eye(2)[None], m, bad)
    with pytest.raises(ValueError, match="covariances1 is not symmetric"):
        wasserstein2_squared(m, np.array([[[1.0, 0.5], [0.0, 1.0]]]), m, np.eye(2)[None])
    with pytest.raises(ValueError, match="means2 has 3 features"):
        kl_divergence(m, np.ones((1, 2)), np.zeros((1, 3)), np.ones((1, 3)))
    with pytest.raises(ValueError, match="covariances1 has shape"):
        kl_divergence(m, np.ones((2, 2)), m, np.ones((1, 2)))
    with pytest.raises(ValueError, match="covariances1: variances must be positive"):
        js_divergence(m, np.array([[1.0, 0.0]]), m, np.ones((1, 2)))
    with pytest.raises(ValueError, match="covariances2 contains NaN"):
        bhattacharyya_distance(m, np.ones((1, 2)), m, np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="means1"):
        wasserstein2_squared(np.array([[np.inf, 0.0]]), np.ones((1, 2)), m, np.ones((1, 2)))


class _Normal:
    """A multivariate normal for Monte-Carlo references (direct density code)."""

    def __init__(self, mean, cov):
        self.mean, self.L = mean, np.linalg.cholesky(cov)
        self.logdet = 2.0 * np.log(np.diag(self.L)).sum()

    def rvs(self, n, random_state):
        z = np.random.default_rng(random_state).standard_normal((n, self.mean.size))
        return self.mean + z @ self.L.T

    def logpdf(self, x):
        w = np.linalg.solve(self.L, (x - self.mean).T)
        return -0.5 * ((w**2).sum(0) + self.logdet + self.mean.size * np.log(2 * np.pi))


def _mc_kl(p, q, n=200_000, seed=0):
    x = p.rvs(n, random_state=seed)
    return np.mean(p.logpdf(x) - q.logpdf(x))


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_kl_and_bhattacharyya_against_monte_carlo(kind, rng):
    m1, c1 = random_gaussians(rng, 2, 3, kind)
    m2, c2 = random_gaussians(rng, 2, 3, kind)
    F1, F2 = as_full(c1, 3), as_full(c2, 3)
    K = kl_divergence(m1, c1, m2, c2)
    B = bhattacharyya_distance(m1, c1, m2, c2)
    for i in range(2):
        for j in range(2):
            p = _Normal(m1[i], F1[i])
            q = _Normal(m2[j], F2[j])
            np.testing.assert_allclose(K[i, j], _mc_kl(p, q), rtol=0.03, atol=0.01)
            x = p.rvs(200_000, random_state=1)
            mc_b = -np.log(np.mean(np.exp(0.5 * (q.logpdf(x) - p.logpdf(x)))))
            np.testing.assert_allclose(B[i, j], mc_b, rtol=0.03, atol=0.01)


def test_kl_hand_computed_and_properties(rng):
    # 1-D: KL(N(0,1) || N(1,4)) = 0.5 (1/4 + 1/4 - 1 + log 4)
    K = kl_divergence(np.zeros((1, 1)), np.ones(1), np.ones((1, 1)), np.array([4.0]))
    np.testing.assert_allclose(K, [[0.5 * (0.25 + 0.25 - 1 + np.log(4))]])
    m1, c1 = random_gaussians(rng, 5, 3, "full")
    m2, c2 = random_gaussians(rng, 4, 3, "full")
    K12, K21 = kl_divergence(m1, c1, m2, c2), kl_divergence(m2, c2, m1, c1)
    assert K12.min() >= 0 and not np.allclose(K12, K21.T)
    np.testing.assert_allclose(symmetric_kl_divergence(m1, c1, m2, c2), 0.5 * (K12 + K21.T))
    np.testing.assert_allclose(np.diag(kl_divergence(m1, c1, m1, c1)), 0.0, atol=1e-10)
    # The hand case of Bhattacharyya: equal unit variances, means 2 apart.
    B = bhattacharyya_distance(np.zeros((1, 1)), np.ones(1), np.full((1, 1), 2.0), np.ones(1))
    np.testing.assert_allclose(B, [[0.5]])


@settings(max_examples=25)
@given(st.integers(0, 10_000), st.integers(1, 6), st.sampled_from(["diag", "full"]))
def test_divergences_are_non_negative(seed, d, kind):
    rng = np.random.default_rng(seed)
    m1, c1 = random_gaussians(rng, 3, d, kind)
    m2, c2 = random_gaussians(rng, 4, d, kind)
    for func in (kl_divergence, symmetric_kl_divergence, bhattacharyya_distance,
                 wasserstein2_squared):
        assert func(m1, c1, m2, c2).min() >= 0
    J = js_divergence(m1, c1, m2, c2, n_mc_samples=16, random_state=0)
    assert J.min() >= 0 and J.max() <= LOG2


def _reference_js(m1, c1, m2, c2, n=100_000):
    p, q = _Normal(m1, c1), _Normal(m2, c2)

    def term(a, b, seed):
        x = a.rvs(n, random_state=seed)
        la, lb = a.logpdf(x), b.logpdf(x)
        return np.mean(la - np.logaddexp(la, lb) + LOG2)

    return 0.5 * (term(p, q, 1) + term(q, p, 2))


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_js_monte_carlo_error_against_reference(kind, rng):
    m1, c1 = random_gaussians(rng, 3, 3, kind)
    m2, c2 = random_gaussians(rng, 3, 3, kind)
    m2 = 0.5 * m2  # overlapping pairs, where the estimator has most to do
    F1, F2 = as_full(c1, 3), as_full(c2, 3)
    ref = np.array([[_reference_js(m1[i], F1[i], m2[j], F2[j]) for j in range(3)]
                    for i in range(3)])
    errors = {n: np.abs(js_divergence(m1, c1, m2, c2, n_mc_samples=n, random_state=0) - ref)
              for n in (32, 2048)}
    assert errors[2048].max() < 0.02, errors[2048]
    assert errors[2048].mean() < errors[32].mean()


def test_js_properties(rng):
    m, v = random_gaussians(rng, 4, 3, "diag")
    J = js_divergence(m, v, m, v, random_state=0)
    np.testing.assert_array_equal(np.diag(J), 0.0)
    np.testing.assert_allclose(J, J.T, atol=1e-12)  # exact symmetry (common draws)
    far = js_divergence(m[:1], v[:1], m[:1] + 100.0, v[:1], random_state=0)
    np.testing.assert_allclose(far, LOG2, atol=1e-9)
    # The diagonal and full code paths give the same estimate with the same draws.
    np.testing.assert_allclose(
        js_divergence(m, v, m[::-1], v[::-1], random_state=3),
        js_divergence(m, as_full(v, 3), m[::-1], as_full(v[::-1], 3), random_state=3),
        rtol=1e-10, atol=1e-12,
    )


# ------------------------------------------------------ calibrated score
def test_calibrated_similarity_formula(rng):
    mq, vq = random_gaussians(rng, 3, 4, "diag")
    mg, vg = random_gaussians(rng, 5, 4, "diag")
    np.testing.assert_allclose(calibrated_similarity(mq, vq, mg, vg, distance=None), mq @ mg.T)
    np.testing.assert_allclose(
        calibrated_similarity(mq, vq, mg, vg, distance="w2", weight=0.7),
        mq @ mg.T - 0.7 * wasserstein2_squared(mq, vq, mg, vg),
    )
    np.testing.assert_allclose(
        calibrated_similarity(mq, vq, mg, vg, distance="kl", weight=0.1),
        mq @ mg.T - 0.1 * kl_divergence(mq, vq, mg, vg),
    )
    for weight in (np.nan, np.inf, -1.0):
        with pytest.raises(ValueError, match="weight"):
            calibrated_similarity(mq, vq, mg, vg, weight=weight)
    with pytest.raises(TypeError, match="weight"):
        calibrated_similarity(mq, vq, mg, vg, weight=True)
    with pytest.raises(ValueError, match="distance"):
        calibrated_similarity(mq, vq, mg, vg, distance="euclid")


def _gaussian_pairs(rng, n=12, d=4, kind="diag"):
    mq, cq = random_gaussians(rng, n, d, kind)
    mg, cg = random_gaussians(rng, n, d, kind)
    return pair_gaussians(mq, cq, mq + 0.3 * mg, cg), (mq, cq, mq + 0.3 * mg, cg)


@pytest.mark.parametrize("kind", ["spherical", "diag", "full"])
@pytest.mark.parametrize(
    "distance", [None, "w2", "kl", "kl_reverse", "symmetric_kl", "js", "bhattacharyya"]
)
def test_estimator_equals_functional_layer(kind, distance, rng):
    X, (mq, cq, mg, cg) = _gaussian_pairs(rng, kind=kind)
    est = ProbabilisticCalibration(
        distance=distance, weight=0.3, covariance=kind, random_state=0, n_mc_samples=16
    ).fit(X)
    # The estimator's weight is in units of the training pairs' median distance.
    raw = calibrated_similarity(mq, cq, mg, cg, distance=distance, weight=1.0,
                                n_mc_samples=16, random_state=0) - mq @ mg.T
    if distance is None:
        assert est.distance_scale_ == 1.0
    else:
        np.testing.assert_allclose(est.distance_scale_, np.median(-np.diag(raw)), rtol=1e-12)
    expected = calibrated_similarity(mq, cq, mg, cg, distance=distance,
                                     weight=0.3 / est.distance_scale_,
                                     n_mc_samples=16, random_state=0)
    np.testing.assert_allclose(est.decision_function(X), expected, rtol=1e-9, atol=1e-12)
    # g2q ranks the left half for each right half: the same matrix transposed,
    # with KL still anchored to the halves (left || right).
    g2q = ProbabilisticCalibration(
        distance=distance, weight=0.3, covariance=kind, direction="g2q", random_state=0,
        n_mc_samples=16,
    ).fit(X)
    assert g2q.distance_scale_ == pytest.approx(est.distance_scale_, rel=1e-12)
    np.testing.assert_allclose(g2q.decision_function(X), expected.T, rtol=1e-9, atol=1e-12)


def test_estimator_index_and_float32(rng):
    X, _ = _gaussian_pairs(rng, n=20)
    est = ProbabilisticCalibration().fit(X)
    Q, G = X[:, :8], X[:, 8:]
    index = est.index(G[:10]).add(G[10:])
    np.testing.assert_allclose(index.score(Q), est.score_matrix(Q, G), rtol=1e-12)
    scores, ids = index.kneighbors(Q, n_neighbors=3)
    np.testing.assert_allclose(scores[:, 0], est.score_matrix(Q, G).max(axis=1))
    with pytest.raises(ValueError, match="approximate=True needs scores linear"):
        est.index(G, approximate=True)
    S32 = ProbabilisticCalibration().fit(X.astype(np.float32)).decision_function(
        X.astype(np.float32)
    )
    assert S32.dtype == np.float32
    np.testing.assert_allclose(S32, est.decision_function(X), rtol=1e-4, atol=1e-4)


def test_estimator_bad_input(rng):
    X, _ = _gaussian_pairs(rng)
    with pytest.raises(ValueError, match="not a packed 'diag' Gaussian"):
        ProbabilisticCalibration(n_query_features=7).fit(X)
    with pytest.raises(ValueError, match="4- and 3-dimensional"):
        ProbabilisticCalibration(n_query_features=8).fit(np.hstack([X, np.zeros((12, 2))])[:, :14])
    for weight in (np.nan, np.inf, -0.5):
        with pytest.raises(ValueError, match="weight"):
            ProbabilisticCalibration(weight=weight).fit(X)
    with pytest.raises(ValueError, match="distance"):
        ProbabilisticCalibration(distance="cosine").fit(X)
    est = ProbabilisticCalibration().fit(X)
    with pytest.raises(ValueError, match="gallery has 6 features"):
        est.score_matrix(X[:, :8], X[:, :6])
    huge = X.copy()
    huge[0, 5] = 1e4  # a log-variance that overflows
    with pytest.raises(ValueError, match="log-variances of magnitude"):
        est.decision_function(huge)


def test_grid_search_over_weight_and_distance(rng):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from skxmr.metrics import make_retrieval_scorer

    data = make_multiplicity_problem(n_categories=4, n_items_per_category=9, random_state=0)
    ge = GaussianEmbedding()
    X = pair_gaussians(*_gauss(ge, data.query_samples), *_gauss(ge, data.gallery_samples))
    search = GridSearchCV(
        ProbabilisticCalibration(),
        {"weight": [0.1, 1.0], "distance": [None, "w2", "kl"]},
        scoring=make_retrieval_scorer("r_precision"),
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X, data.y)
    # With dimensionless weights one grid serves W2 and KL (KL at 0.1 wins here,
    # 97.2 against W2's 96.3 and 95.4 without calibration).
    scores = dict(zip(map(str, search.cv_results_["params"]), search.cv_results_["mean_test_score"]))
    assert search.best_params_["distance"] is not None
    assert search.best_score_ > scores[str({"distance": None, "weight": 0.1})] + 1.0
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def _gauss(ge, samples):
    ge.fit(samples)
    return ge.means_, ge.covariances_


def _multiplicity_split(n_augmentations, seed):
    data = make_multiplicity_problem(
        n_items_per_category=24, n_augmentations=n_augmentations, random_state=seed
    )
    ge = GaussianEmbedding()
    X = pair_gaussians(*_gauss(ge, data.query_samples), *_gauss(ge, data.gallery_samples))
    bank = (np.arange(data.y.size) % 24) < 12
    return X[bank], data.y[bank], X[~bank], data.y[~bank]


def test_multiplicity_w2_beats_kl_beats_none():
    """Table 4's ordering: W2 > KL > w/o calibration, each weight tuned on the bank."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from skxmr.metrics import make_retrieval_scorer

    X_bank, y_bank, X_test, y_test = _multiplicity_split(8, seed=0)
    scorer = make_retrieval_scorer("r_precision")
    result = {}
    for distance in (None, "w2", "kl"):
        grid = [0.0] if distance is None else list(np.logspace(-4, 1, 11))
        search = GridSearchCV(
            ProbabilisticCalibration(distance=distance), {"weight": grid}, scoring=scorer,
            cv=StratifiedKFold(3, shuffle=True, random_state=0),
        ).fit(X_bank, y_bank)
        result[distance] = scorer(search.best_estimator_, X_test, y_test)
    # Measured (seed 0): 87.8 / 94.0 / 90.9.
    assert result["w2"] > result["kl"] + 1.0 > result[None] + 2.0, result
    default = ProbabilisticCalibration().fit(X_bank)  # untuned default weight
    assert scorer(default, X_test, y_test) > result[None] + 3.0


def test_more_augmentations_help_like_fig3():
    from skxmr.metrics import make_retrieval_scorer

    scorer = make_retrieval_scorer("r_precision")
    rp = []
    for n_aug in (2, 16):
        X_bank, _, X_test, y_test = _multiplicity_split(n_aug, seed=1)
        rp.append(scorer(ProbabilisticCalibration().fit(X_bank), X_test, y_test))
    assert rp[1] > rp[0] + 10.0, rp


def _augment(X, n_augmentations, tau, rng):
    """The documented noise model: normalise(x + tau * N(0, I / d)), tau per item."""
    d = X.shape[1]
    noise = rng.standard_normal((X.shape[0], n_augmentations, d)) / np.sqrt(d)
    A = X[:, None, :] + np.asarray(tau).reshape(-1, 1, 1) * noise
    return A / np.linalg.norm(A, axis=-1, keepdims=True)


@pytest.mark.parametrize("heteroscedastic", [False, True])
def test_coco_augmented_calibration_does_not_hurt_r1(heteroscedastic):
    datasets = pytest.importorskip("skxmr.datasets")
    data = datasets.load_coco_clip()
    rng = np.random.default_rng(0)
    n = data.queries.shape[0]
    tau_q, tau_g = (rng.uniform(0.25, 0.75, n), rng.uniform(0.25, 0.75, n)) if heteroscedastic \
        else (np.full(n, 0.5), np.full(n, 0.5))
    ge = GaussianEmbedding()
    X = pair_gaussians(*_gauss(ge, _augment(data.queries, 8, tau_q, rng)),
                       *_gauss(ge, _augment(data.gallery, 8, tau_g, rng)))
    plain = ProbabilisticCalibration(distance=None).fit(X).score(X)
    calibrated = ProbabilisticCalibration().fit(X).score(X)
    assert calibrated >= plain - 1.0, (plain, calibrated)


# ----------------------------------------------------- neighbourhoods
def test_neighborhood_gaussian_by_hand(rng):
    X = make_pairs(30, d=5, seed=4)
    ng = NeighborhoodGaussian(n_neighbors=4).fit(X)
    X_test = make_pairs(6, d=5, seed=5)
    out = ng.transform(X_test)
    assert out.shape == (6, 20) and ng.n_query_features_out_ == 10
    mq, vq, mg, vg = unpair_gaussians(out)
    Q = X_test[:, :5] / np.linalg.norm(X_test[:, :5], axis=1, keepdims=True)
    np.testing.assert_allclose(mq, Q)
    nearest = np.argsort(-(Q @ ng.query_bank_.T), axis=1)[:, :4]
    samples = np.concatenate([Q[:, None], ng.query_bank_[nearest]], axis=1)
    np.testing.assert_allclose(vq, GaussianEmbedding().fit(samples).covariances_, rtol=1e-10)
    # A bank item is not its own neighbour.
    own = unpair_gaussians(ng.transform(X[:1]))[1]
    Qb = ng.query_bank_[:1]
    order = np.argsort(-(Qb @ ng.query_bank_.T), axis=1)[:, 1:5]
    expected = GaussianEmbedding().fit(np.concatenate([Qb[:, None], ng.query_bank_[order]], 1))
    np.testing.assert_allclose(own, expected.covariances_, rtol=1e-10)
    with pytest.raises(ValueError, match="n_neighbors=30 needs at least 31"):
        NeighborhoodGaussian(n_neighbors=30).fit(X)


def test_benchmark_row_on_point_embeddings():
    entry = registered_methods()["Calibration (W2)"]
    assert entry["family"] == "calibration"
    X_bank, X_test = make_pairs(60, seed=1), make_pairs(30, seed=2)
    for direction in ("q2g", "g2q"):
        est = entry["factory"](direction=direction).fit(X_bank)
        S = est.decision_function(X_test)
        assert S.shape == (30, 30) and np.isfinite(S).all()
    assert est[-1].direction == "g2q"


# ------------------------------------------------- trainable projection
@pytest.mark.parametrize("distance", [None, *TRAIN_DISTANCES])
def test_projection_gradient_matches_finite_differences(distance, rng):
    B, d_q, d_g, k = 7, 5, 4, 3
    Wq, Wg = rng.standard_normal((d_q, k)), rng.standard_normal((d_g, k))
    bq = (rng.standard_normal((B, d_q)), np.exp(rng.normal(-1, 0.5, (B, d_q))))
    bg = (rng.standard_normal((B, d_g)), np.exp(rng.normal(-1, 0.5, (B, d_g))))
    R = np.eye(B, dtype=bool)
    R[0, 1] = True  # a second positive is never a negative

    def loss(a, b):
        return loss_and_gradient(a, b, bq, bg, R, distance=distance, weight=0.3, margin=1.0)

    value, gq, gg = loss(Wq, Wg)
    assert value > 0
    h = 1e-6
    for W, grad, which in ((Wq, gq, 0), (Wg, gg, 1)):
        numeric = np.zeros_like(W)
        for idx in np.ndindex(*W.shape):
            E = np.zeros_like(W)
            E[idx] = h
            plus = loss(Wq + E, Wg) if which == 0 else loss(Wq, Wg + E)
            minus = loss(Wq - E, Wg) if which == 0 else loss(Wq, Wg - E)
            numeric[idx] = (plus[0] - minus[0]) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def _rotated_multiplicity(seed):
    """The multiplicity problem with the gallery in another 24-d feature space."""
    data = make_multiplicity_problem(n_items_per_category=16, random_state=seed)
    T = np.random.default_rng(seed).standard_normal((16, 24)) / 4
    ge = GaussianEmbedding()
    X = pair_gaussians(*_gauss(ge, data.query_samples), *_gauss(ge, data.gallery_samples @ T))
    bank = (np.arange(data.y.size) % 16) < 8
    return X[bank], data.y[bank], X[~bank], data.y[~bank]


def test_projection_learns_alignment_across_dimensions():
    from skxmr.metrics import make_retrieval_scorer

    X_bank, y_bank, X_test, y_test = _rotated_multiplicity(0)
    scorer = make_retrieval_scorer("r_precision")
    untrained = CalibratedProjection(n_components=16, max_iter=1, learning_rate=1e-12,
                                     random_state=0, n_query_features=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        untrained.fit(X_bank, y_bank)
    proj = CalibratedProjection(n_components=16, random_state=0, max_iter=60,
                                n_query_features=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        proj.fit(X_bank, y_bank)
    assert proj.query_projection_.shape == (16, 16)
    assert proj.gallery_projection_.shape == (24, 16)
    assert proj.loss_curve_[-1] < 0.5 * proj.loss_curve_[0]
    rps = []
    for p in (untrained, proj):
        Xt = p.transform(X_test)
        assert Xt.shape == (X_test.shape[0], 64)
        est = ProbabilisticCalibration().fit(p.transform(X_bank))
        rps.append(scorer(est, Xt, y_test))
    assert rps[1] > rps[0] + 20.0, rps


def test_projection_convergence_reproducibility_and_bad_input(rng):
    X = pair_gaussians(rng.standard_normal((30, 6)), np.full((30, 6), 0.1),
                       rng.standard_normal((30, 4)), np.full((30, 4), 0.1))
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        proj = CalibratedProjection(n_components=3, max_iter=2, random_state=0,
                                    n_query_features=12).fit(X)
    assert proj.n_iter_ == 2 == len(proj.loss_curve_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = CalibratedProjection(n_components=3, max_iter=5, random_state=1,
                                 n_query_features=12).fit_transform(X)
        b = CalibratedProjection(n_components=3, max_iter=5, random_state=1,
                                 n_query_features=12).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="not a packed 'diag' Gaussian"):
        CalibratedProjection(n_query_features=11).fit(X)
    with pytest.raises(ValueError, match="weight"):
        CalibratedProjection(weight=np.inf).fit(X)
    with pytest.raises(ValueError, match="distance"):
        CalibratedProjection(distance="js").fit(X)
    fitted = CalibratedProjection(n_components=3, max_iter=1, n_query_features=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted.fit(X)
    with pytest.raises(ValueError, match="X has 18 features"):
        fitted.transform(X[:, :18])


# --------------------------------------------------------------------------
# Issue 14: clear errors instead of IndexError or silent NaN
# --------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [3.0, [1.0, 2.0], np.ones((2, 2, 2, 2))])
def test_gaussian_embedding_transform_rejects_non_sample_arrays(bad):
    from skxmr.calibration import GaussianEmbedding

    ge = GaussianEmbedding().fit(np.random.default_rng(0).standard_normal((4, 3, 2)))
    with pytest.raises(ValueError, match="X must be 3-D"):
        ge.transform(bad)


@pytest.mark.parametrize("covariance", ["spherical", "diag", "full"])
def test_gaussian_embedding_huge_samples(covariance):
    """Estimates are scale-equivariant up to float64's range, then a clear error."""
    from skxmr.calibration import GaussianEmbedding

    X = np.random.default_rng(0).standard_normal((5, 8, 3))
    ref = GaussianEmbedding(covariance=covariance).fit(X)
    big = GaussianEmbedding(covariance=covariance).fit(X * 1e150)
    np.testing.assert_allclose(big.covariances_, ref.covariances_ * 1e300, rtol=1e-10)
    np.testing.assert_allclose(big.shrinkage_, ref.shrinkage_, rtol=1e-10)
    with pytest.raises(ValueError, match="overflows float64"):
        GaussianEmbedding(covariance=covariance).fit(X * 1e200)


def test_gaussian_embedding_rejects_sparse():
    import scipy.sparse as sp

    from skxmr.calibration import GaussianEmbedding

    with pytest.raises(TypeError, match="[Ss]parse"):
        GaussianEmbedding().fit(sp.csr_array(np.eye(4)), item_ids=[0, 0, 1, 1])


def test_calibrated_projection_zero_mean_item_is_a_value_error():
    rng = np.random.default_rng(0)
    mu = rng.standard_normal((20, 3))
    mu[4] = 0.0
    X = pair_gaussians(mu, np.full((20, 3), .1), mu + 1.0, np.full((20, 3), .1))
    with pytest.raises(ValueError, match=r"query half\) has 1 item\(s\) with a zero mean .*row 4"):
        CalibratedProjection(n_components=2, max_iter=2, random_state=0).fit(X)


def test_variance_scale_sets_the_mean_augmentation_variance():
    data = make_multiplicity_problem(n_categories=4, n_items_per_category=30, n_augmentations=40,
                                     variance_scale=3.5e-4, random_state=0)
    var = data.query_samples.var(axis=1, ddof=1).mean()
    assert var == pytest.approx(3.5e-4, rel=0.1)
    plain = make_multiplicity_problem(n_categories=4, n_items_per_category=30, random_state=0)
    # Same concepts and shapes: only the spread is rescaled.
    np.testing.assert_array_equal(data.y, plain.y)
    with pytest.raises(ValueError, match="variance_scale"):
        make_multiplicity_problem(variance_scale=0.0)


def test_one_weight_serves_every_distance_at_real_variance_scale():
    """At the variance scale of real caption Gaussians (mean variance ~3.5e-4)
    raw KL-type values dwarf the point match: the old raw weight 0.5 cost KL
    13 points of R-Precision here (88 vs 100). In units of the training pairs'
    median distance the default weight does no harm for any distance."""
    data = make_multiplicity_problem(n_items_per_category=24, n_features=32,
                                     variance_scale=3.5e-4, random_state=0)
    ge = GaussianEmbedding()
    X = pair_gaussians(*_gauss(ge, data.query_samples), *_gauss(ge, data.gallery_samples))
    bank = (np.arange(data.y.size) % 24) < 12
    from skxmr.metrics import make_retrieval_scorer

    scorer = make_retrieval_scorer("r_precision")
    plain = scorer(ProbabilisticCalibration(distance=None).fit(X[bank]), X[~bank], data.y[~bank])
    for distance in ("w2", "kl", "kl_reverse", "symmetric_kl", "bhattacharyya"):
        est = ProbabilisticCalibration(distance=distance).fit(X[bank])
        assert scorer(est, X[~bank], data.y[~bank]) >= plain - 2.0, distance
    kl = ProbabilisticCalibration(distance="kl").fit(X[bank])
    raw = ProbabilisticCalibration(distance="kl", weight=0.5 * kl.distance_scale_).fit(X[bank])
    assert scorer(raw, X[~bank], data.y[~bank]) < plain - 5.0  # what the raw weight did


def test_distance_scale_is_the_median_over_training_pairs(rng):
    X, (mq, cq, mg, cg) = _gaussian_pairs(rng)
    est = ProbabilisticCalibration(distance="kl").fit(X)
    D = kl_divergence(mq, cq, mg, cg)
    assert est.distance_scale_ == pytest.approx(np.median(np.diag(D)), rel=1e-12)
    same = pair_gaussians(mq, cq, mq, cq)
    with pytest.raises(ValueError, match="matching Gaussians are identical"):
        ProbabilisticCalibration(distance="w2").fit(same)


def test_item_ids_with_none_and_bool_sizes_name_the_argument():
    from skxmr.calibration import GaussianEmbedding

    X = np.random.default_rng(0).standard_normal((6, 3))
    with pytest.raises(ValueError, match="item_ids has 1 missing"):
        GaussianEmbedding().fit(X, item_ids=np.array(["a", "a", None, "b", "b", "b"], dtype=object))
    with pytest.raises(ValueError, match="item_noise"):
        make_multiplicity_problem(item_noise=True)


def test_gaussian_embedding_pandas_output_is_indexed_by_item():
    pd = pytest.importorskip("pandas")
    from skxmr.calibration import GaussianEmbedding

    X = pd.DataFrame(np.random.default_rng(0).standard_normal((6, 3)), columns=list("abc"))
    ids = ["u", "u", "v", "v", "w", "w"]
    ge = GaussianEmbedding().set_output(transform="pandas")
    out = ge.fit_transform(X, item_ids=ids)
    assert list(out.index) == ["u", "v", "w"] and list(out.columns) == list(ge.get_feature_names_out())
    np.testing.assert_allclose(ge.transform(X, item_ids=ids).to_numpy(), out.to_numpy())
    assert isinstance(GaussianEmbedding().fit_transform(X, item_ids=ids), np.ndarray)
