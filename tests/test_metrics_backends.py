"""Metrics on every array backend: the same numbers as numpy, arrays back on
the input's backend and device (issue 13), and the generic (POT backend)
kernels equal to the numpy specialisations they stand beside."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.pipeline import make_pipeline

from skxmr import CosineSimilarity, InvGC
from skxmr.utils._topk import row_kth_largest, top_k_indices, top_k_mask
from skxmr.metrics import (
    antihub_rate,
    degeneration_score,
    hubness_report,
    hubness_skewness,
    k_occurrence,
    make_retrieval_scorer,
    map_at_r,
    mean_rank,
    mean_similarity,
    mean_similarity_at_k,
    median_rank,
    r_precision,
    rank_of_relevant,
    recall_at_k,
    retrieval_report,
    robinhood_index,
)
from skxmr.metrics.ranking import _terms_generic, _terms_numpy, check_relevance

from .conftest import make_pairs


def _tol(backend):
    return 1e-10 if backend.dtype == "float64" else 1e-5


def _problem(seed=0, n_q=30, n_g=24, ties=False):
    """Scores (with many ties if asked), and relevance with 1 to 4 items per
    query and at least one per gallery item (so g2q is defined)."""
    rng = np.random.default_rng(seed)
    S = rng.integers(0, 4, (n_q, n_g)).astype(float) if ties else rng.standard_normal((n_q, n_g))
    rel = rng.random((n_q, n_g)) < 0.08
    rel[np.arange(n_q), rng.integers(0, n_g, n_q)] = True
    rel[rng.integers(0, n_q, n_g), np.arange(n_g)] = True
    return S, rel


def _scalar_metrics(S, rel, ties):
    return {
        "R@3": recall_at_k(S, rel, 3, ties=ties),
        "MdR": median_rank(S, rel, ties=ties),
        "MnR": mean_rank(S, rel, ties=ties),
        "RP": r_precision(S, rel, ties=ties),
        "mAP": map_at_r(S, rel, ties=ties),
    }


@pytest.mark.parametrize("ties", ["pessimistic", "average"])
@pytest.mark.parametrize("tied_scores", [False, True])
def test_ranking_metrics_match_numpy(backend, ties, tied_scores):
    S, rel = _problem(ties=tied_scores)
    S = S.astype(backend.dtype)  # the numpy reference sees the same values
    X = backend.asarray(S)
    with backend.dispatch():
        ranks = rank_of_relevant(X, rel, ties=ties)
        got = _scalar_metrics(X, rel, ties)
        report = retrieval_report(X, sp.csr_array(rel), ks=(1, 5), ties=ties)
    ranks = backend.to_numpy(ranks)
    assert ranks.dtype == np.float64
    np.testing.assert_array_equal(ranks, rank_of_relevant(S, rel, ties=ties))
    want = _scalar_metrics(S, rel, ties)
    for key, value in got.items():
        assert isinstance(value, float)
        assert value == pytest.approx(want[key], abs=1e-10), key
    want_report = retrieval_report(S, rel, ks=(1, 5), ties=ties)
    assert list(report) == ["q2g", "g2q"]
    for direction, values in want_report.items():
        assert report[direction].keys() == values.keys()
        for key, value in values.items():
            assert report[direction][key] == pytest.approx(value, abs=1e-10), (direction, key)


def test_relevance_tensor_and_index_vector(backend):
    S, _ = _problem(seed=3)
    rel = np.random.default_rng(3).integers(0, S.shape[1], S.shape[0])
    X = backend.asarray(S)
    with backend.dispatch():
        ranks = rank_of_relevant(X, backend.asarray(rel).long() if backend.name == "torch"
                                 else rel)
    np.testing.assert_array_equal(backend.to_numpy(ranks), rank_of_relevant(S.astype(backend.dtype), rel))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ties", ["pessimistic", "average"])
def test_generic_terms_equal_numpy_specialisation(seed, ties):
    """The POT-backend kernel (here run on numpy arrays) and the numpy one
    agree on counts, R-Precision and MAP@R, ties included, in both
    directions (g2q through a transposed view)."""
    S, rel = _problem(seed=seed, n_q=17, n_g=13, ties=seed % 2 == 0)
    R = check_relevance(rel, S.shape)
    RT = check_relevance(rel.T, S.T.shape)
    fast = _terms_numpy(S, {"q2g": R, "g2q": RT}, ties, precision=True)
    for direction, (view, rel_d) in {"q2g": (S, R), "g2q": (S.T, RT)}.items():
        generic = _terms_generic(view, rel_d, ties, precision=True)
        for name in ("n_ge", "n_gt", "r"):
            a, b = getattr(generic, name), getattr(fast[direction], name)
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(generic.rp, fast[direction].rp, rtol=0, atol=1e-12)
        np.testing.assert_allclose(generic.ap, fast[direction].ap, rtol=0, atol=1e-12)


def test_report_without_transposed_copy_equals_transposed_problem():
    """retrieval_report's g2q (column counts on S) equals q2g on S.T."""
    S, rel = _problem(seed=5, n_q=40, n_g=25, ties=True)
    for ties in ("pessimistic", "average"):
        g2q = retrieval_report(S, rel, ties=ties, directions="g2q")["g2q"]
        q2g_t = retrieval_report(np.ascontiguousarray(S.T), rel.T, ties=ties, directions="q2g")["q2g"]
        assert g2q == pytest.approx(q2g_t, abs=1e-12)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_hubness_metrics_match_numpy(backend, k):
    rng = np.random.default_rng(k)
    S = rng.integers(0, 3, (25, 18)).astype(backend.dtype)  # ties at the k-th score
    X = backend.asarray(S)
    with backend.dispatch():
        n_k = k_occurrence(X, k)
        stats = (hubness_skewness(X, k), robinhood_index(X, k), antihub_rate(X, k))
        report = hubness_report(X, k)
    n_k = backend.to_numpy(n_k)
    assert n_k.dtype == np.int64
    np.testing.assert_array_equal(n_k, k_occurrence(S, k))
    want = (hubness_skewness(S, k), robinhood_index(S, k), antihub_rate(S, k))
    for a, b in zip(stats, want):
        assert isinstance(a, float) and a == pytest.approx(b, abs=1e-12)
    assert report == pytest.approx(hubness_report(S, k), abs=1e-12)


@pytest.mark.parametrize("m", [1, 2, 5, 40, 119, 120])
def test_top_k_indices_same_on_every_backend(backend, m):
    rng = np.random.default_rng(m)
    W = np.round(rng.standard_normal((37, 120)), 1).astype(backend.dtype)  # many ties
    idx = top_k_indices(W, m)
    X = backend.asarray(W)
    with backend.dispatch():
        got = top_k_indices(X, m)
        mask = top_k_mask(X, m)
        kth = row_kth_largest(X, m)
    np.testing.assert_array_equal(backend.to_numpy(got), idx)
    want_mask = np.zeros(W.shape, bool)
    np.put_along_axis(want_mask, np.asarray(idx), True, axis=1)
    np.testing.assert_array_equal(backend.to_numpy(mask), want_mask)
    np.testing.assert_array_equal(backend.to_numpy(kth), np.sort(W, axis=1)[:, -m])


def test_numpy_top_k_candidate_blocks_equal_full_sort():
    """The candidate path (strided-subsample bound, gathered candidates,
    cache-sized blocks) keeps exactly the stable-sort top m with ties to the
    lower column."""
    rng = np.random.default_rng(0)
    for W in (rng.standard_normal((300, 5000)), np.round(rng.standard_normal((70, 3000)), 1)):
        for m in (1, 7, 50):
            order = np.argsort(-W, axis=1, kind="stable")[:, :m]
            np.testing.assert_array_equal(top_k_indices(W, m), np.sort(order, axis=1))


@pytest.mark.parametrize("within", [True, False])
def test_degeneration_metrics_match_numpy(backend, within):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 6)) + 1.0
    Y = None if within else rng.standard_normal((20, 6)) + 1.0
    exclude = rng.random((30, 30 if within else 20)) < 0.1
    Xb = backend.asarray(X)
    Yb = None if within else backend.asarray(Y)
    X32 = X.astype(backend.dtype)
    Y32 = None if within else Y.astype(backend.dtype)
    with backend.dispatch():
        got = (
            mean_similarity(Xb, Yb, exclude=exclude),
            mean_similarity_at_k(Xb, Yb, k=3, exclude=sp.csr_array(exclude)),
            degeneration_score(Xb, Yb),
        )
    want = (
        mean_similarity(X32, Y32, exclude=exclude),
        mean_similarity_at_k(X32, Y32, k=3, exclude=exclude),
        degeneration_score(X32, Y32),
    )
    for a, b in zip(got, want):
        assert isinstance(a, float)
        assert a == pytest.approx(b, abs=_tol(backend))


@pytest.mark.parametrize("metric", ["recall", "median_rank", "map_at_r", "hubness_skewness"])
def test_scorer_on_every_backend(backend, metric):
    """make_retrieval_scorer on a torch pipeline (InvGC then cosine): the
    same float as on numpy, both directions."""
    X = make_pairs(n=40, d=6, noise=0.6, dtype=backend.dtype)
    pipe = make_pipeline(InvGC(adjacency="local", neighbor_fraction=0.1), CosineSimilarity())
    for direction in ("q2g", "g2q"):
        scorer = make_retrieval_scorer(metric, k=3, direction=direction)
        want = scorer(pipe.fit(X[:25]), X[25:])
        with backend.dispatch():
            got = scorer(pipe.fit(backend.asarray(X[:25])), backend.asarray(X[25:]))
        assert isinstance(got, float)
        assert got == pytest.approx(want, abs=_tol(backend))
