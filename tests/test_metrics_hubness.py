"""Hubness diagnostics: hand-computed cases, tie rule, properties, bad input."""

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import config_context

from skxmr.metrics import (
    antihub_rate,
    hubness_report,
    hubness_skewness,
    k_occurrence,
    robinhood_index,
)

S3 = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.1], [0.6, 0.2, 0.3]])


def brute_k_occurrence(S, k):
    # a stable sort puts the lower column index first among equal scores
    top = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return np.bincount(top.ravel(), minlength=S.shape[1])


def test_k_occurrence_hand_computed():
    # top-1: every row prefers col 0 -> N_1 = [3, 0, 0]
    np.testing.assert_array_equal(k_occurrence(S3, k=1), [3, 0, 0])
    # top-2: row 0 {0, 2}, row 1 {0, 1}, row 2 {0, 2} -> N_2 = [3, 1, 2]
    np.testing.assert_array_equal(k_occurrence(S3, k=2), [3, 1, 2])
    # k = n_gallery: everything is in every top list
    np.testing.assert_array_equal(k_occurrence(S3, k=3), [3, 3, 3])
    assert k_occurrence(S3, k=1).dtype == np.int64


def test_k_occurrence_ties_go_to_lower_index():
    S = np.array([[0.5, 0.9, 0.5, 0.5], [0.2, 0.2, 0.2, 0.2]])
    # row 0: col 1 first, then one of the tied {0, 2, 3} -> col 0
    # row 1: all tied -> cols 0, 1
    np.testing.assert_array_equal(k_occurrence(S, k=2), [2, 2, 0, 0])
    # k=3: row 0 {1, 0, 2}; row 1 {0, 1, 2}
    np.testing.assert_array_equal(k_occurrence(S, k=3), [2, 2, 2, 0])


def test_skewness_hand_computed():
    # N_1 = [3, 0, 0]: mean 1, deviations (2, -1, -1)
    #   m2 = (4 + 1 + 1)/3 = 2, m3 = (8 - 1 - 1)/3 = 2 -> 2 / 2**1.5 = 1/sqrt(2)
    assert hubness_skewness(S3, k=1) == pytest.approx(1 / np.sqrt(2))
    # N_2 = [3, 1, 2]: symmetric around 2 -> skewness 0
    assert hubness_skewness(S3, k=2) == pytest.approx(0.0, abs=1e-12)
    # constant N_k: 0 by definition (no division by a zero variance)
    assert hubness_skewness(S3, k=3) == 0.0
    assert hubness_skewness(np.eye(4), k=1) == 0.0


def test_robinhood_hand_computed():
    # N_1 = [3, 0, 0], mean 1: (|3-1| + |0-1| + |0-1|) / (2 * 3) = 4/6
    assert robinhood_index(S3, k=1) == pytest.approx(2 / 3)
    # N_2 = [3, 1, 2], mean 2: (1 + 1 + 0) / (2 * 6) = 1/6
    assert robinhood_index(S3, k=2) == pytest.approx(1 / 6)
    assert robinhood_index(np.eye(4), k=1) == 0.0
    # non-square: 1 query, 4 items, k=1 -> N = [1, 0, 0, 0], mean 1/4:
    #   (3/4 + 3 * 1/4) / (2 * 1) = 3/4 = 1 - 1/n_gallery (the maximum)
    assert robinhood_index(np.array([[0.9, 0.1, 0.2, 0.3]]), k=1) == pytest.approx(0.75)


def test_antihub_rate_hand_computed():
    # N_1 = [3, 0, 0] -> 2 of 3 items never retrieved
    assert antihub_rate(S3, k=1) == pytest.approx(2 / 3)
    assert antihub_rate(S3, k=2) == 0.0


def test_report_agrees_with_functions(rng):
    S = rng.standard_normal((30, 20))
    rep = hubness_report(S, k=5)
    assert rep["k"] == 5
    assert rep["hubness_skewness"] == hubness_skewness(S, k=5)
    assert rep["robinhood_index"] == robinhood_index(S, k=5)
    assert rep["antihub_rate"] == antihub_rate(S, k=5)
    assert rep["max_occurrence"] == k_occurrence(S, k=5).max()


def test_skewness_matches_scipy(rng):
    S = rng.standard_normal((50, 30)) + 2 * rng.random(30)  # column offsets -> hubs
    n_k = k_occurrence(S, k=5)
    assert hubness_skewness(S, k=5) == pytest.approx(scipy.stats.skew(n_k, bias=True))
    assert hubness_skewness(S, k=5) > 0


def test_chunked_equals_unchunked(rng):
    S = rng.integers(0, 3, size=(25, 40)).astype(np.float32)  # many ties
    full = k_occurrence(S, k=7)
    with config_context(working_memory=1e-4):  # one row per chunk
        np.testing.assert_array_equal(k_occurrence(S, k=7), full)
    np.testing.assert_array_equal(full, brute_k_occurrence(S, 7))


matrices = st.tuples(st.integers(1, 8), st.integers(1, 10)).flatmap(
    lambda shape: arrays(np.int64, shape, elements=st.integers(0, 3))
)


@settings(max_examples=80)
@given(matrices, st.data())
def test_properties(S, data):
    S = S.astype(float)
    n_q, n_g = S.shape
    k = data.draw(st.integers(1, n_g))
    n_k = k_occurrence(S, k)
    np.testing.assert_array_equal(n_k, brute_k_occurrence(S, k))
    assert n_k.sum() == n_q * k
    assert np.all((n_k >= 0) & (n_k <= n_q))
    # query rows are unordered
    rows = np.array(data.draw(st.permutations(range(n_q))))
    np.testing.assert_array_equal(k_occurrence(S[rows], k), n_k)
    assert 0 <= robinhood_index(S, k) < 1
    assert 0 <= antihub_rate(S, k) <= 1
    assert np.isfinite(hubness_skewness(S, k))


@given(st.integers(1, 8), st.integers(2, 10), st.integers(0, 2**32 - 1), st.data())
def test_column_permutation_equivariance(n_q, n_g, seed, data):
    S = np.random.default_rng(seed).standard_normal((n_q, n_g))  # no ties
    k = data.draw(st.integers(1, n_g))
    cols = np.array(data.draw(st.permutations(range(n_g))))
    np.testing.assert_array_equal(k_occurrence(S[:, cols], k), k_occurrence(S, k)[cols])
    assert hubness_skewness(S[:, cols], k) == pytest.approx(hubness_skewness(S, k))


@pytest.mark.parametrize(
    "func", [k_occurrence, hubness_skewness, robinhood_index, antihub_rate, hubness_report]
)
def test_bad_inputs(func):
    with pytest.raises(ValueError, match="k=0"):
        func(S3, k=0)
    with pytest.raises(ValueError, match="k=4"):
        func(S3, k=4)
    with pytest.raises(TypeError, match="k"):
        func(S3, k=1.5)
    bad = S3.copy()
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="scores"):
        func(bad, k=1)
    with pytest.raises(ValueError, match="scores"):
        func(np.ones(3), k=1)
    S = S3.copy()
    func(S, k=2)
    np.testing.assert_array_equal(S, S3)  # not written to
