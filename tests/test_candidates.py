"""Approximate serving for the methods that re-score a candidate set exactly
(CSLS, QB-Norm, local scaling, mutual proximity, distribution normalisation):
the re-scored candidates are the dense scores of those items, and a candidate
set as large as the gallery gives the exact top-k."""

import numpy as np
import pytest
from sklearn.base import clone

import skxmr

from .conftest import make_pairs

RERANKED = [
    skxmr.CSLS(n_neighbors=5),
    skxmr.QBNorm(n_neighbors=2),
    skxmr.LocalScaling(n_neighbors=5),
    skxmr.LocalScaling("standard", n_neighbors=5),
    skxmr.MutualProximity(),
    skxmr.MutualProximity("empirical"),
    skxmr.DistributionNormalization(),
]


def _ids(est):
    method = getattr(est, "method", None)
    return type(est).__name__ + (f"-{method}" if method else "")


def _problem(dtype, n_gallery=120):
    rng = np.random.default_rng(0)
    X_bank = make_pairs(80, d=8, seed=1, dtype=dtype)
    G = rng.standard_normal((n_gallery, 8)).astype(dtype)
    Q = rng.standard_normal((25, 8)).astype(dtype)
    return X_bank, Q, G


def _tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("estimator", RERANKED, ids=_ids)
def test_candidate_scores_are_the_dense_scores(estimator, dtype):
    """Scored on arbitrary candidate sets (without faiss), each candidate gets
    its entry of score_matrix: the per-query terms come from the banks, and
    QB-Norm's gate from the candidates' top-1 cosine, here the row's own."""
    X_bank, Q, G = _problem(dtype)
    est = clone(estimator).fit(X_bank)
    S = est.score_matrix(Q, G)
    index = est.index(G)
    Qn = (Q / np.linalg.norm(Q, axis=1, keepdims=True)).astype(dtype)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, len(G), size=(len(Q), 30))
    ids[:, 7] = np.argmax(Qn @ index.gallery_.T, axis=1)  # each row's cosine top-1
    C = est._score_candidates(Qn, index.gallery_, index.state_, ids)
    assert C.dtype == dtype and C.shape == ids.shape
    np.testing.assert_allclose(C, np.take_along_axis(S, ids, 1), **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("estimator", RERANKED, ids=_ids)
def test_every_item_a_candidate_gives_the_exact_top_k(estimator, dtype):
    pytest.importorskip("faiss")
    X_bank, Q, G = _problem(dtype)
    est = clone(estimator).fit(X_bank)
    s_exact, i_exact = est.index(G).kneighbors(Q, 10)
    approx = est.index(G, approximate=True, n_candidates=len(G))
    s, i = approx.kneighbors(Q, 10)
    assert s.dtype == dtype
    np.testing.assert_array_equal(i, i_exact)
    np.testing.assert_allclose(s, s_exact, **_tol(dtype))
    # fewer candidates: still exact scores of the items returned, best first
    S = est.score_matrix(Q, G)
    s, i = est.index(G, approximate=True, n_candidates=20).kneighbors(Q, 5)
    assert np.all(np.diff(s, axis=1) <= 0)
    if not isinstance(est, skxmr.QBNorm):  # QB-Norm's gate needs the cosine top-1 found
        np.testing.assert_allclose(s, np.take_along_axis(S, i, 1), **_tol(dtype))


def test_linear_candidates_score_as_score_even_with_large_offsets():
    """Regression: approximate kneighbors returned scale·qᵀg − offset without
    the constant that score() subtracts from offsets larger than 8 (inverted
    softmax at τ = 5: every score was off by h's midrange, ≈ 26)."""
    pytest.importorskip("faiss")
    X_bank, Q, G = _problem(np.float64)
    est = skxmr.InvertedSoftmax(temperature=5.0).fit(X_bank)
    s, i = est.index(G, approximate=True, n_candidates=len(G)).kneighbors(Q, 5)
    np.testing.assert_allclose(s, np.take_along_axis(est.index(G).score(Q), i, 1), rtol=1e-12)


@pytest.mark.parametrize("bad, error, match", [
    (0, ValueError, "n_candidates=0 must be a positive"),
    (-5, ValueError, "n_candidates=-5 must be a positive"),
    (2.5, TypeError, "n_candidates must be an integer"),
    (True, TypeError, "n_candidates must be an integer"),
])
def test_bad_n_candidates(bad, error, match):
    X_bank, _, G = _problem(np.float64)
    est = skxmr.CSLS(n_neighbors=5).fit(X_bank)
    with pytest.raises(error, match=match):
        est.index(G, approximate=True, n_candidates=bad)


def test_n_candidates_without_approximate_is_refused():
    X_bank, _, G = _problem(np.float64)
    est = skxmr.CSLS(n_neighbors=5).fit(X_bank)
    with pytest.raises(ValueError, match="n_candidates applies to approximate search only"):
        est.index(G, n_candidates=50)
    with pytest.raises(ValueError, match="n_candidates applies to approximate search only"):
        skxmr.index(est, G, n_candidates=50)
