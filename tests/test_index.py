"""Serving: the gallery index, persistence and incremental add (worker processes
and dask: tests/test_distributed.py)."""

import joblib
import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

import skxmr
from skxmr import CosineSimilarity

from .conftest import make_pairs
from .test_common import SCORERS


def _ids(est):
    return type(est).__name__


def _fitted(estimator):
    X_bank, X_test = make_pairs(60, seed=1), make_pairs(30, seed=2)
    return clone(estimator).fit(X_bank), X_test[:, :8], X_test[:, 8:]


@pytest.mark.parametrize("estimator", [e for e in SCORERS if not e._transductive], ids=_ids)
def test_index_persists_with_joblib(estimator, tmp_path):
    est, Q, G = _fitted(estimator)
    index = est.index(G)
    joblib.dump(index, tmp_path / "index.joblib")
    loaded = joblib.load(tmp_path / "index.joblib")
    np.testing.assert_array_equal(loaded.score(Q), index.score(Q))
    np.testing.assert_array_equal(loaded.kneighbors(Q, 3)[1], index.kneighbors(Q, 3)[1])


@pytest.mark.parametrize("estimator", [e for e in SCORERS if not e._transductive], ids=_ids)
def test_add_extends_or_refuses(estimator):
    est, Q, G = _fitted(estimator)
    index = est.index(G[:20])
    if est._separable_gallery:
        index.add(G[20:])
        np.testing.assert_allclose(index.score(Q), est.score_matrix(Q, G), rtol=1e-10)
    else:
        with pytest.raises(ValueError, match="cannot be extended incrementally"):
            index.add(G[20:])


def test_single_query_and_kneighbors_ties():
    G = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    est = CosineSimilarity().fit(make_pairs(10, d=2, seed=0))
    index = est.index(G)
    scores, ids = index.kneighbors(np.array([[1.0, 0.0]]), n_neighbors=2)
    np.testing.assert_array_equal(ids, [[0, 1]])  # equal scores: lower index first
    np.testing.assert_allclose(scores, [[1.0, 1.0]])
    assert index.kneighbors([[0.0, 1.0]], n_neighbors=3, return_distance=False).tolist() == [[2, 0, 1]]


def test_index_bad_input():
    est = CosineSimilarity().fit(make_pairs(10, d=2, seed=0))
    with pytest.raises(ValueError, match="gallery has 3 features"):
        est.index(np.ones((4, 3)))
    index = est.index(np.eye(2))
    with pytest.raises(ValueError, match="queries has 3 features"):
        index.score(np.ones((1, 3)))
    with pytest.raises(ValueError, match="n_neighbors=3"):
        index.kneighbors(np.ones((1, 2)), n_neighbors=3)
    with pytest.raises(ValueError, match="zero-norm"):
        index.score(np.zeros((1, 2)))


@pytest.mark.parametrize("estimator", [e for e in SCORERS if not e._transductive], ids=_ids)
def test_chunked_scoring_equals_one_chunk(estimator):
    est, Q, G = _fitted(estimator)
    whole = est.score_matrix(Q, G)
    with config_context(working_memory=0.001):  # a few rows per chunk
        chunked = est.score_matrix(Q, G)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "estimator",
    [e for e in SCORERS if not e._transductive],
    ids=_ids,
)
def test_approximate_kneighbors_recall(estimator):
    """faiss candidates (under the linear form, or cosine for the methods
    that re-score candidates) re-scored exactly: near-exact top-10 where
    supported."""
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    X_bank = make_pairs(200, d=16, seed=1)
    G = rng.standard_normal((3000, 16))
    Q = rng.standard_normal((100, 16))
    est = clone(estimator).fit(X_bank)
    G_n = G / np.linalg.norm(G, axis=1, keepdims=True)
    if est._candidate_search != "cosine" and est._linear_form(
            G_n, est._prepare_gallery(G_n)) is None:
        with pytest.raises(ValueError, match="approximate=True needs scores linear"):
            est.index(G, approximate=True)
        return
    exact = est.index(G)
    approx = est.index(G, approximate=True, n_candidates=100)
    s_exact, i_exact = exact.kneighbors(Q, 10)
    s_approx, i_approx = approx.kneighbors(Q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i_approx, i_exact)])
    assert recall >= 0.95, recall
    # Re-scoring is exact: every returned score is the true score of that item.
    S = exact.score(Q)
    np.testing.assert_allclose(s_approx, np.take_along_axis(S, i_approx, 1), rtol=1e-6, atol=1e-6)
    assert np.all(np.diff(s_approx, axis=1) <= 0)


def test_kneighbors_ties_straddling_the_cut_go_to_the_lower_index():
    """Equal scores across the k-th place: the lower gallery rows are kept."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((8, 4))
    G = base[rng.integers(0, 8, size=40)]  # many exact duplicates
    Q = rng.standard_normal((25, 4))
    index = CosineSimilarity().fit(make_pairs(10, d=4, seed=0)).index(G)
    S = index.score(Q)
    _, ids = index.kneighbors(Q, n_neighbors=5)
    expected = np.lexsort((np.tile(np.arange(40), (25, 1)), -S), axis=1)[:, :5]
    np.testing.assert_array_equal(ids, expected)


def test_linear_candidates_fold_the_offsets_exactly():
    """A beam as wide as the gallery: the candidates are the exact top under
    scale·qᵀg − offset(g), even when the offsets dominate the cosine spread."""
    pytest.importorskip("faiss")
    from skxmr._serving import LinearCandidates

    rng = np.random.default_rng(0)
    G = rng.standard_normal((400, 8))
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    Q = rng.standard_normal((30, 8))
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    offsets = 3.0 * rng.standard_normal(400) + 5.0  # spread 3 against cosines in [-1, 1]
    ids = LinearCandidates(G, 2.0, offsets).search(Q, 5)
    S = 2.0 * Q @ G.T - offsets
    expected = np.argsort(-S, axis=1)[:, :5]
    np.testing.assert_array_equal(np.sort(ids, axis=1), np.sort(expected, axis=1))


@pytest.mark.parametrize("adjacency", ["full", "local"])
def test_gallery_transform_pipeline_served_by_its_last_step(adjacency):
    """InvGC changes the gallery only: a fitted InvGC + score-estimator
    pipeline is served by indexing the transformed gallery once."""
    from sklearn.pipeline import make_pipeline

    from skxmr import InvGC, SinkhornNormalizer

    X_bank, X_test = make_pairs(60, seed=1), make_pairs(30, seed=2)
    pipe = make_pipeline(InvGC(adjacency=adjacency), SinkhornNormalizer(temperature=0.05))
    pipe.fit(X_bank)
    invgc, scorer = pipe[0], pipe[-1]
    index = scorer.index(invgc.transform_gallery(X_test[:, 8:]))
    np.testing.assert_allclose(index.score(X_test[:, :8]), pipe.decision_function(X_test),
                               rtol=1e-12)


def test_approximate_kneighbors_returns_the_requested_shape():
    """Fewer candidates than neighbours, and galleries of duplicates, still give
    n_neighbors real items per query (not fewer columns, not index-0 padding)."""
    pytest.importorskip("faiss")
    est, Q, G = _fitted(CosineSimilarity())
    exact = est.index(G)
    approx = est.index(G, approximate=True, n_candidates=3)
    scores, idx = approx.kneighbors(Q, n_neighbors=10)
    assert scores.shape == idx.shape == (30, 10)
    assert np.all(np.isfinite(scores)) and np.all(np.diff(scores, axis=1) <= 0)
    dup = np.repeat(G[:2], 20, axis=0)
    s_dup, i_dup = est.index(dup, approximate=True).kneighbors(Q, n_neighbors=15)
    s_ex, i_ex = est.index(dup).kneighbors(Q, n_neighbors=15)
    assert np.all(np.isfinite(s_dup))
    np.testing.assert_allclose(s_dup, s_ex, rtol=1e-6)
    assert exact.kneighbors(Q, n_neighbors=10)[1].shape == (30, 10)


@pytest.mark.parametrize("flag", ["yes", 1, None])
def test_approximate_must_be_a_bool(flag):
    est, _, G = _fitted(CosineSimilarity())
    with pytest.raises(TypeError, match="approximate must be True or False"):
        est.index(G, approximate=flag)


@pytest.mark.parametrize("estimator", [e for e in SCORERS if not e._transductive], ids=_ids)
def test_index_is_a_snapshot(estimator):
    """Refitting the estimator, or setting its parameters, leaves an index as it was."""
    est, Q, G = _fitted(estimator)
    index = est.index(G)
    before = index.score(Q)
    est.fit(make_pairs(60, seed=7))
    params = est.get_params()
    for name in ("strength", "temperature", "n_neighbors", "weight"):
        if name in params:
            est.set_params(**{name: params[name] * 2})
    np.testing.assert_array_equal(index.score(Q), before)


# ------------------------------------------------------- serving pipelines
def _coco_bank_test():
    from skxmr.datasets import bank_test_split, load_coco_clip

    data = load_coco_clip()
    X_bank, X_test, _, _ = bank_test_split(data.X, data.groups)
    return X_bank, X_test


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(skxmr.InvGC(), skxmr.SinkhornNormalizer()),
        lambda: make_pipeline(skxmr.InvGC(adjacency="local", direction="g2q"),
                              skxmr.CSLS(direction="g2q")),
        lambda: make_pipeline(skxmr.CauchySchwarzAlignment(max_iter=3, tol=None, random_state=0),
                              skxmr.InvertedSoftmax()),
        lambda: skxmr.InvertedSoftmax(),
    ],
)
def test_index_of_a_pipeline_applies_its_gallery_and_query_transforms(make):
    X_bank, X_test = _coco_bank_test()
    pipe = make().fit(X_bank)
    final = pipe[-1] if hasattr(pipe, "steps") else pipe
    Q, G = skxmr.unpair(X_test)
    queries, gallery = (Q, G) if final.direction == "q2g" else (G, Q)
    index = skxmr.index(pipe, gallery)
    expected = pipe.decision_function(X_test)
    np.testing.assert_allclose(index.score(queries), expected, rtol=1e-5, atol=1e-6)
    ids = index.kneighbors(queries, n_neighbors=1, return_distance=False)
    np.testing.assert_array_equal(ids[:, 0], expected.argmax(axis=1))


def test_last_step_alone_skips_invgc():
    """Why skxmr.index exists: the bare last step scores the raw gallery."""
    X_bank, X_test = _coco_bank_test()
    pipe = make_pipeline(skxmr.InvGC(), skxmr.SinkhornNormalizer()).fit(X_bank)
    Q, G = skxmr.unpair(X_test)
    assert not np.allclose(pipe[-1].index(G).score(Q), pipe.decision_function(X_test))


def test_pipeline_index_add():
    X_bank, X_test = _coco_bank_test()
    Q, G = skxmr.unpair(X_test)
    local = make_pipeline(skxmr.InvGC(adjacency="local"), skxmr.CosineSimilarity()).fit(X_bank)
    grown = skxmr.index(local, G[:100]).add(G[100:])
    # float32 scores near 0 (InvGC's local adjacency subtracts nearly equal
    # terms): a relative tolerance alone fails on a 1.5e-8 difference there.
    np.testing.assert_allclose(grown.score(Q), skxmr.index(local, G).score(Q), rtol=1e-5,
                               atol=1e-7)
    full = make_pipeline(skxmr.InvGC(), skxmr.CosineSimilarity()).fit(X_bank)
    with pytest.raises(ValueError, match="InvGC transforms the gallery jointly"):
        skxmr.index(full, G[:100]).add(G[100:])


def test_pipeline_that_cannot_be_served():
    X_bank, X_test = _coco_bank_test()
    pipe = make_pipeline(skxmr.NeighborhoodGaussian(n_neighbors=5),
                         skxmr.ProbabilisticCalibration()).fit(X_bank)
    with pytest.raises(TypeError, match="NeighborhoodGaussian cannot transform one half"):
        skxmr.index(pipe, skxmr.unpair(X_test)[1])


def test_kneighbors_graph_as_scikit_learn():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    G, Q = rng.standard_normal((40, 6)), rng.standard_normal((15, 6))
    index = CosineSimilarity().fit(make_pairs(20, d=6, seed=0)).index(G)
    nn = NearestNeighbors(n_neighbors=4, metric="cosine").fit(G)
    conn = index.kneighbors_graph(Q, 4)
    assert conn.shape == (15, 40) and conn.nnz == 60
    np.testing.assert_array_equal(conn.toarray(), nn.kneighbors_graph(Q).toarray())
    dist = index.kneighbors_graph(Q, 4, mode="distance").toarray()
    ref = nn.kneighbors_graph(Q, mode="distance")
    np.testing.assert_allclose(dist[conn.toarray() > 0], (ref.toarray() - ref.data.min())[conn.toarray() > 0],
                               atol=1e-12)
    with pytest.raises(ValueError, match="mode must be"):
        index.kneighbors_graph(Q, 4, mode="similarity")
