"""InvGC: faithfulness to the equations, LocalAdj neighbourhoods, the paired-row
contract, validation, composability, and its effect on real CLIP COCO."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from skxmr import CosineSimilarity, InvGC, pair, registered_methods
from skxmr.utils._topk import row_kth_largest, top_k_indices
from skxmr.graph import DEFAULT_R, _local_update, n_neighbors_for

from .conftest import make_pairs


def _norm(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def reference_invgc(G, B_g, B_q, r_g, r_q, adjacency="full", m_g=None, m_q=None):
    """Direct numpy transcription of DESIGN §4 / the paper's Eq. 9.

    Dense W = G Bᵀ; full: (W - mean(W)) B / |B|; local/avgpool: the m largest
    entries of each row (stable sort: lower bank index first among ties),
    similarity or unit weights, divided by m.
    """
    G, B_g, B_q = _norm(G), _norm(B_g), _norm(B_q)

    def conv(B, r, m):
        W = G @ B.T
        if adjacency == "full":
            A, count = W - W.mean(), B.shape[0]
        else:
            order = np.argsort(-W, axis=1, kind="stable")[:, :m]
            A = np.zeros_like(W)
            rows = np.arange(W.shape[0])[:, None]
            A[rows, order] = 1.0 if adjacency == "avgpool" else W[rows, order]
            count = m
        return _norm(G - r * (A @ B) / count)

    return _norm(0.5 * conv(B_g, r_g, m_g) + 0.5 * conv(B_q, r_q, m_q))


def _banks(seed=0, n_bank=37, n_test=23, d=6, dtype=np.float64):
    rng = np.random.default_rng(seed)
    shift = 2.0 * rng.standard_normal(d)  # a cone, as real embeddings have
    Bq = rng.standard_normal((n_bank, d)) + shift
    Bg = Bq + 0.5 * rng.standard_normal((n_bank, d))
    Q = rng.standard_normal((n_test, d)) + shift
    G = Q + 0.5 * rng.standard_normal((n_test, d))
    return [A.astype(dtype) for A in (Bq, Bg, Q, G)]


# ----------------------------------------------------------- faithfulness
@pytest.mark.parametrize(
    "adjacency, k, r_g, r_q",
    [
        ("full", 0.01, 1.3, 2.7),
        ("full", 0.01, 0.0, 5.0),
        ("local", 0.01, 0.3, 0.6),
        ("local", 0.2, 0.7, 0.1),
        ("local", 1.0, 0.5, 0.5),
        ("avgpool", 0.1, 0.4, 0.8),
        ("avgpool", 1.0, 0.3, 0.2),
    ],
)
def test_matches_direct_transcription(adjacency, k, r_g, r_q):
    Bq, Bg, Q, G = _banks()
    est = InvGC(r_g, r_query=r_q, adjacency=adjacency, neighbor_fraction=k).fit(pair(Bq, Bg))
    m = None if adjacency == "full" else math.ceil(round(k * 37, 9))
    expected = reference_invgc(G, Bg, Bq, r_g, r_q, adjacency, m, m)
    np.testing.assert_allclose(est.transform_gallery(G), expected, rtol=0, atol=1e-12)
    Xt = est.transform(pair(Q, G))
    np.testing.assert_allclose(Xt[:, 6:], expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(Xt[:, :6], Q)


def test_banks_of_different_sizes_and_duplicates():
    """Unique items form the banks; each bank has its own |B| and m."""
    Bq, Bg, _, G = _banks(n_bank=40)
    # Five captions per image: 8 unique images, 40 unique captions.
    X_bank = pair(Bq, np.repeat(Bg[:8], 5, axis=0))
    for adjacency in ("full", "local"):
        est = InvGC(0.8, r_query=1.1, adjacency=adjacency, neighbor_fraction=0.3).fit(X_bank)
        assert est.gallery_bank_.shape == (8, 6) and est.query_bank_.shape == (40, 6)
        if adjacency == "local":
            assert (est.n_neighbors_gallery_, est.n_neighbors_query_) == (3, 12)
        expected = reference_invgc(G, Bg[:8], Bq, 0.8, 1.1, adjacency, 3, 12)
        np.testing.assert_allclose(est.transform_gallery(G), expected, atol=1e-12)


def test_full_centring_is_the_global_mean_of_w():
    """W̄ is one scalar per bank (the authors' code), not a per-row mean."""
    Bq, Bg, _, G = _banks(seed=3)
    est = InvGC(0.0, r_query=4.0).fit(pair(Bq, Bg))
    out = est.transform_gallery(G)
    Gn, Bn = _norm(G), _norm(Bq)
    W = Gn @ Bn.T
    # r_g = 0: the gallery-bank branch is Gn itself.
    per_row = _norm(Gn + _norm(Gn - 4.0 * (W - W.mean(axis=1, keepdims=True)) @ Bn / len(Bn)))
    global_ = _norm(Gn + _norm(Gn - 4.0 * (W - W.mean()) @ Bn / len(Bn)))
    np.testing.assert_allclose(out, global_, atol=1e-12)
    assert np.abs(out - per_row).max() > 1e-3
    # Consequence: the full transform of an item depends on the gallery's
    # mean, LocalAdj's does not.
    assert not np.allclose(est.transform_gallery(G[:5]), out[:5])
    local = InvGC(0.3, r_query=0.5, adjacency="local", neighbor_fraction=0.1).fit(pair(Bq, Bg))
    np.testing.assert_allclose(local.transform_gallery(G[:5]), local.transform_gallery(G)[:5])


def test_zero_steps_only_normalise():
    Bq, Bg, _, G = _banks()
    for adjacency in ("full", "local"):
        est = InvGC(0.0, r_query=0.0, adjacency=adjacency).fit(pair(Bq, Bg))
        np.testing.assert_allclose(est.transform_gallery(G), _norm(G), atol=1e-15)


# --------------------------------------------------------------- LocalAdj
def test_n_neighbors_is_the_decimal_ceiling():
    assert n_neighbors_for(0.01, 300) == 3  # 0.01 * 300 = 3.0000000000000004
    assert n_neighbors_for(0.01, 250) == 3
    assert n_neighbors_for(0.01, 100) == 1
    assert n_neighbors_for(0.01, 5) == 1
    assert n_neighbors_for(0.1, 30) == 3
    assert n_neighbors_for(1.0, 17) == 17
    assert n_neighbors_for(0.07, 100) == 7  # 0.07 * 100 = 7.000000000000001


def test_authors_floor_rounding():
    """The authors' code takes int(k * |B|); rounding="floor" reproduces it."""
    assert n_neighbors_for(0.01, 250, "floor") == 2
    assert n_neighbors_for(0.01, 300, "floor") == 3  # the decimal 3, not 3.0000000000000004
    assert n_neighbors_for(0.07, 100, "floor") == 7
    assert n_neighbors_for(0.01, 50, "floor") == 1  # at least one neighbour
    Bq, Bg, _, G = _banks(n_bank=40)
    k = 0.0625  # k * |B| = 2.5: ceil keeps 3 neighbours, floor 2
    ceil = InvGC(adjacency="local", neighbor_fraction=k).fit(pair(Bq, Bg))
    floor = InvGC(adjacency="local", neighbor_fraction=k, rounding="floor").fit(pair(Bq, Bg))
    assert (ceil.n_neighbors_gallery_, floor.n_neighbors_gallery_) == (3, 2)
    assert (ceil.n_neighbors_query_, floor.n_neighbors_query_) == (3, 2)
    # The floor transform is the ceil transform of the integer count.
    exact = InvGC(adjacency="local", neighbor_fraction=0.05).fit(pair(Bq, Bg))
    np.testing.assert_allclose(floor.transform_gallery(G), exact.transform_gallery(G), rtol=1e-12)
    assert not np.allclose(floor.transform_gallery(G), ceil.transform_gallery(G))


def test_top_m_ties_by_hand():
    W = np.array(
        [
            [0.5, 0.9, 0.5, 0.5, 0.1],
            [0.2, 0.2, 0.2, 0.2, 0.2],
            [0.1, 0.3, 0.3, 0.9, 0.3],
        ]
    )
    np.testing.assert_array_equal(top_k_indices(W, 1), [[1], [0], [3]])
    np.testing.assert_array_equal(top_k_indices(W, 2), [[0, 1], [0, 1], [1, 3]])
    np.testing.assert_array_equal(top_k_indices(W, 3), [[0, 1, 2], [0, 1, 2], [1, 2, 3]])
    np.testing.assert_array_equal(top_k_indices(W, 5), np.tile(np.arange(5), (3, 1)))


@settings(max_examples=60)
@given(
    n_rows=st.integers(1, 8),
    n_cols=st.integers(1, 30),
    levels=st.integers(1, 5),
    data=st.data(),
)
def test_top_m_keeps_exactly_m_of_the_largest(n_rows, n_cols, levels, data):
    """Heavily tied rows: exactly m kept, none larger left out, ties by index."""
    m = data.draw(st.integers(1, n_cols))
    seed = data.draw(st.integers(0, 2**16))
    W = np.random.default_rng(seed).integers(0, levels, (n_rows, n_cols)) / levels
    idx = top_k_indices(W, m)
    assert idx.shape == (n_rows, m)
    expected = np.sort(np.argsort(-W, axis=1, kind="stable")[:, :m], axis=1)
    np.testing.assert_array_equal(idx, expected)


def test_local_keeps_lowest_bank_index_among_tied_neighbours():
    # Gallery item equidistant from three bank items: all of W's row ties.
    Bg = np.eye(3)
    Bq = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    G = np.ones((1, 3))
    est = InvGC(0.5, r_query=0.5, adjacency="local", neighbor_fraction=0.3).fit(pair(Bq, Bg))  # m = 1
    assert est.n_neighbors_gallery_ == 1
    Gn = _norm(G)
    s = Gn @ _norm(Bg).T
    G_g = _norm(Gn - 0.5 * s[0, 0] * _norm(Bg)[:1])
    G_q = _norm(Gn - 0.5 * (Gn @ _norm(Bq)[0]) * _norm(Bq)[:1])
    np.testing.assert_allclose(est.transform_gallery(G), _norm(G_g + G_q), atol=1e-15)


@pytest.mark.parametrize("m", [1, 3, 20, 40])
@pytest.mark.parametrize("binary", [False, True])
def test_sparse_and_dense_paths_agree(m, binary):
    rng = np.random.default_rng(5)
    G, B = _norm(rng.standard_normal((9, 4))), _norm(rng.standard_normal((40, 4)))
    W = G @ B.T
    order = np.argsort(-W, axis=1, kind="stable")[:, :m]
    A = np.zeros_like(W)
    A[np.arange(9)[:, None], order] = 1.0 if binary else W[np.arange(9)[:, None], order]
    np.testing.assert_allclose(_local_update(G, B, m, binary), A @ B / m, atol=1e-14)


def test_chunking_and_jobs_do_not_change_the_result():
    rng = np.random.default_rng(6)
    X_bank = pair(rng.standard_normal((400, 16)) + 1, rng.standard_normal((400, 16)) + 1)
    G = rng.standard_normal((300, 16)) + 1
    for adjacency, k in (("full", 0.01), ("local", 0.02), ("avgpool", 0.25)):
        ref = InvGC(0.5, r_query=0.5, adjacency=adjacency, neighbor_fraction=k).fit(X_bank).transform_gallery(G)
        for wm, n_jobs in ((0.05, None), (0.5, 2)):  # many chunks; a few in parallel
            est = InvGC(0.5, r_query=0.5, adjacency=adjacency, neighbor_fraction=k, working_memory=wm, n_jobs=n_jobs)
            np.testing.assert_allclose(est.fit(X_bank).transform_gallery(G), ref, atol=1e-14)


# --------------------------------------------------- paired-row contract
@pytest.mark.parametrize("adjacency", ["full", "local"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_contract(adjacency, dtype):
    X_bank, X_test = make_pairs(40, seed=1, dtype=dtype), make_pairs(25, seed=2, dtype=dtype)
    X_test = np.vstack([X_test, X_test[:3]])  # duplicate pairs
    X_copy = X_test.copy()
    est = InvGC(adjacency=adjacency, neighbor_fraction=0.1).fit(X_bank)
    Xt = est.transform(X_test)
    np.testing.assert_array_equal(X_test, X_copy)  # input untouched
    assert Xt is not X_test and Xt.dtype == dtype and Xt.shape == X_test.shape
    np.testing.assert_array_equal(Xt[:, :8], X_test[:, :8])  # query half untouched
    np.testing.assert_allclose(np.linalg.norm(Xt[:, 8:], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(Xt[25:], Xt[:3])  # duplicates: identical outputs
    np.testing.assert_array_equal(Xt[:, 8:], est.transform_gallery(X_test[:, 8:]))
    assert not np.allclose(Xt[:, 8:], X_test[:, 8:] / np.linalg.norm(X_test[:, 8:], axis=1)[:, None])


def test_float32_agrees_with_float64():
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    for adjacency in ("full", "local"):
        est64 = InvGC(adjacency=adjacency, neighbor_fraction=0.1).fit(X_bank)
        est32 = InvGC(adjacency=adjacency, neighbor_fraction=0.1).fit(X_bank.astype(np.float32))
        out32 = est32.transform(X_test.astype(np.float32))
        np.testing.assert_allclose(out32, est64.transform(X_test), atol=1e-5)


def test_g2q_transforms_the_left_half_with_swapped_banks():
    Bq, Bg, Q, G = _banks()
    q2g = InvGC(0.7, r_query=1.5, adjacency="local", neighbor_fraction=0.1).fit(pair(Bq, Bg))
    g2q = InvGC(0.7, r_query=1.5, adjacency="local", neighbor_fraction=0.1, direction="g2q").fit(pair(Bg, Bq))
    np.testing.assert_allclose(g2q.gallery_bank_, q2g.gallery_bank_)
    out = g2q.transform(pair(G, Q))
    np.testing.assert_allclose(out[:, :6], q2g.transform(pair(Q, G))[:, 6:], atol=1e-15)
    np.testing.assert_array_equal(out[:, 6:], Q)


def test_unequal_halves_with_n_query_features():
    rng = np.random.default_rng(0)
    X = np.hstack([rng.standard_normal((20, 3)), rng.standard_normal((20, 5))])
    with pytest.raises(ValueError, match="features"):
        InvGC(n_query_features=3).fit(X)


def test_defaults_resolved_per_adjacency():
    X = make_pairs()
    for adjacency in ("full", "local"):
        est = InvGC(adjacency=adjacency).fit(X)
        assert (est.r_gallery_, est.r_query_) == DEFAULT_R[adjacency]
    est = InvGC(adjacency="avgpool", neighbor_fraction=0.5).fit(X)
    assert (est.r_gallery_, est.r_query_) == DEFAULT_R["avgpool"]
    assert InvGC(r_gallery=0.25).fit(X).r_gallery_ == 0.25
    assert InvGC().get_params()["r_gallery"] is None  # fit does not write params


# ------------------------------------------------------------- validation
@pytest.mark.parametrize("name", ["r_gallery", "r_query"])
@pytest.mark.parametrize("value", [np.inf, np.nan, -0.5, "1"])
def test_bad_steps_raise_naming_them(name, value):
    with pytest.raises((ValueError, TypeError), match=name):
        InvGC(**{name: value}).fit(make_pairs())


@pytest.mark.parametrize("k", [0, -0.1, 1.5, np.nan, np.inf])
def test_bad_neighbor_fraction_raises(k):
    with pytest.raises(ValueError, match="'neighbor_fraction'"):
        InvGC(adjacency="local", neighbor_fraction=k).fit(make_pairs())


def test_avgpool_needs_a_paper_ratio():
    with pytest.raises(ValueError, match="neighbor_fraction=0.01.*avgpool"):
        InvGC(adjacency="avgpool").fit(make_pairs())
    for k in (0.1, 0.25, 0.5, 1):
        InvGC(adjacency="avgpool", neighbor_fraction=k).fit(make_pairs())


def test_bad_adjacency_and_banks():
    X = make_pairs()
    with pytest.raises(ValueError, match="adjacency"):
        InvGC(adjacency="knn").fit(X)
    X0 = X.copy()
    X0[3, 8:] = 0.0
    with pytest.raises(ValueError, match="X \\(gallery half\\).*zero-norm"):
        InvGC().fit(X0)
    X1 = X.copy()
    X1[:, :8] = X1[0, :8]  # one unique query: a bank needs two
    with pytest.raises(ValueError, match="query bank"):
        InvGC().fit(X1)
    with pytest.raises(ValueError, match="0 sample"):  # empty banks
        InvGC().fit(X[:0])


def test_bad_gallery_raises_naming_it():
    est = InvGC().fit(make_pairs())
    G = make_pairs(10, seed=3)[:, 8:]
    with pytest.raises(ValueError, match="gallery has 5 features"):
        est.transform_gallery(G[:, :5])
    G[2] = 0.0
    with pytest.raises(ValueError, match="gallery.*zero-norm"):
        est.transform_gallery(G)
    G[2] = np.nan
    with pytest.raises(ValueError, match="gallery"):
        est.transform_gallery(G)
    X = make_pairs(10, seed=3)
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :12])


# --------------------------------------------------------- composability
def test_registered_rows_are_pipelines_that_score():
    rows = registered_methods()
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    for name, adjacency in (("InvGC", "full"), ("InvGC+LocalAdj", "local")):
        assert rows[name]["family"] == "graph"
        for direction in ("q2g", "g2q"):
            pipe = rows[name]["factory"](direction=direction)
            assert pipe.named_steps["invgc"].adjacency == adjacency
            assert pipe.named_steps["invgc"].direction == direction
            S = pipe.fit(X_bank).decision_function(X_test)
            assert S.shape == (25, 25) and np.all(np.isfinite(S))


def test_pipeline_equals_manual_transform_then_cosine():
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    pipe = make_pipeline(InvGC(adjacency="local", neighbor_fraction=0.1), CosineSimilarity()).fit(X_bank)
    manual = InvGC(adjacency="local", neighbor_fraction=0.1).fit(X_bank).transform(X_test)
    Q, G = manual[:, :8], manual[:, 8:]
    expected = _norm(Q) @ G.T
    np.testing.assert_allclose(pipe.decision_function(X_test), expected, atol=1e-12)
    clone(pipe).set_params(invgc__r_query=0.1).fit(X_bank)


def test_with_dual_bank_sinkhorn():
    from skxmr import DualBankSinkhornNormalizer

    X_bank, X_test = make_pairs(60, seed=1), make_pairs(30, seed=2)
    pipe = make_pipeline(InvGC(adjacency="local", neighbor_fraction=0.05), DualBankSinkhornNormalizer())
    pipe.fit(X_bank)
    S = pipe.decision_function(X_test)
    assert S.shape == (30, 30) and np.all(np.isfinite(S))
    assert 0.0 <= pipe.score(X_test) <= 100.0
    # The same as the two steps by hand: DBSN's banks are the convolved bank.
    invgc = InvGC(adjacency="local", neighbor_fraction=0.05).fit(X_bank)
    dbsn = DualBankSinkhornNormalizer().fit(invgc.transform(X_bank))
    np.testing.assert_allclose(S, dbsn.decision_function(invgc.transform(X_test)), atol=1e-12)


# -------------------------------------------------------- real CLIP COCO
@pytest.fixture(scope="module")
def coco():
    from skxmr.datasets import bank_test_split, load_coco_clip

    data = load_coco_clip()
    X_bank, X_test, g_bank, _ = bank_test_split(data.X, data.groups, random_state=0)
    return X_bank, X_test, g_bank


@pytest.mark.parametrize("adjacency", ["full", "local"])
def test_coco_lowers_degeneration_without_hurting_recall(coco, adjacency):
    from skxmr.metrics import degeneration_score, mean_similarity_at_k

    X_bank, X_test, _ = coco
    pipe = make_pipeline(InvGC(adjacency=adjacency), CosineSimilarity()).fit(X_bank)
    base = CosineSimilarity().fit(X_bank)
    G, G_new = X_test[:, 512:], pipe[0].transform(X_test)[:, 512:]
    deg, deg_new = degeneration_score(G), degeneration_score(G_new)
    ms10, ms10_new = mean_similarity_at_k(G, k=10), mean_similarity_at_k(G_new, k=10)
    r1, r1_new = base.score(X_test), pipe.score(X_test)
    print(
        f"\nCOCO text->image, InvGC({adjacency}) at defaults: Δ_deg=MeanSim@1 "
        f"{deg:.4f} -> {deg_new:.4f}, MeanSim@10 {ms10:.4f} -> {ms10_new:.4f}, "
        f"R@1 {r1:.1f} -> {r1_new:.1f}"
    )
    assert deg_new < deg
    assert ms10_new < ms10
    assert r1_new >= r1


def test_coco_grid_search_over_the_steps(coco):
    from sklearn.model_selection import GridSearchCV, GroupKFold

    from skxmr.metrics import make_retrieval_scorer

    X_bank, _, g_bank = coco
    search = GridSearchCV(
        make_pipeline(InvGC(adjacency="local"), CosineSimilarity()),
        {
            "invgc__r_gallery": [0.0, 0.1],
            "invgc__r_query": [0.0, 0.5],
            "invgc__neighbor_fraction": [0.01, 0.05],
        },
        scoring=make_retrieval_scorer("recall", k=1),
        cv=GroupKFold(n_splits=2),
    ).fit(X_bank, groups=g_bank)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (8,) and np.all((scores >= 0) & (scores <= 100))
    # r = 0 is the identity: both k give the plain cosine score.
    params = search.cv_results_["params"]
    zero = [s for p, s in zip(params, scores) if p["invgc__r_gallery"] == p["invgc__r_query"] == 0]
    assert len(zero) == 2 and zero[0] == zero[1]
    assert search.best_score_ >= zero[0]


@pytest.mark.parametrize("levels", [0, 3, 50])
@pytest.mark.parametrize("m", [1, 7, 40, 400])
def test_row_kth_largest_matches_a_plain_partition(levels, m):
    """The subsample-bound path (taken when m << n) is exact, ties included."""

    rng = np.random.default_rng(m + levels)
    W = rng.standard_normal((13, 2000)).astype(np.float32)
    if levels:
        W = np.round(W * levels) / levels  # many ties
    W[3] = 0.5  # a constant row: every candidate ties
    expected = np.sort(W, axis=1)[:, -m]
    np.testing.assert_array_equal(row_kth_largest(W, m), expected)


# ------------------------------------------------------------ backends
@pytest.mark.parametrize(
    "adjacency, k",
    [("full", 0.01), ("local", 0.05), ("local", 0.5), ("avgpool", 0.25)],  # sparse and dense
)
def test_backends_equal_numpy(backend, adjacency, k):
    """fit / transform / transform_gallery on every backend: the arrays stay
    there and equal the numpy path (1e-10 in float64; float32: the same
    top-10 gallery ranking of every test query)."""
    Bq, Bg, Q, G = _banks(seed=4, n_bank=60, n_test=25, d=8, dtype=backend.dtype)
    X_bank, X_test = pair(Bq, Bg), pair(Q, G)
    ref = InvGC(adjacency=adjacency, neighbor_fraction=k).fit(X_bank)
    want_X, want_G = ref.transform(X_test), ref.transform_gallery(G)
    with backend.dispatch():
        est = InvGC(adjacency=adjacency, neighbor_fraction=k).fit(backend.asarray(X_bank))
        got_X = est.transform(backend.asarray(X_test))
        got_G = est.transform_gallery(backend.asarray(G))
        backend.to_numpy(est.gallery_bank_)  # the fitted banks stay on the device
        backend.to_numpy(est.query_bank_)
    got_X, got_G = backend.to_numpy(got_X), backend.to_numpy(got_G)
    assert got_X.dtype == got_G.dtype == np.dtype(backend.dtype)
    assert est.n_neighbors_gallery_ == ref.n_neighbors_gallery_
    np.testing.assert_array_equal(got_X[:, :8], X_test[:, :8])  # the query half untouched
    if backend.dtype == "float64":
        np.testing.assert_allclose(got_X, want_X, rtol=0, atol=1e-10)
        np.testing.assert_allclose(got_G, want_G, rtol=0, atol=1e-10)
    else:
        np.testing.assert_allclose(got_G, want_G, rtol=0, atol=1e-5)

        def top10(Gt):
            return np.argsort(-(Q @ Gt.T), axis=1, kind="stable")[:, :10]

        np.testing.assert_array_equal(top10(got_G), top10(want_G))


def test_backends_local_update_gathers_like_the_sparse_product(backend):
    """The tensor LocalAdj update (gathered neighbour rows) equals numpy's
    CSR product, similarity and unit weights."""
    rng = np.random.default_rng(2)
    G = _norm(rng.standard_normal((30, 5)) + 1.0).astype(backend.dtype)
    B = _norm(rng.standard_normal((80, 5)) + 1.0).astype(backend.dtype)
    for binary in (False, True):
        want = _local_update(G, B, 4, binary)
        with backend.dispatch():
            got = backend.to_numpy(_local_update(backend.asarray(G), backend.asarray(B), 4, binary))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 if backend.dtype == "float64" else 1e-5)


@pytest.mark.parametrize("adjacency", ["full", "local"])
@pytest.mark.parametrize("dtype, factor", [(np.float32, 1e30), (np.float32, 1e-30),
                                           (np.float64, 1e200)])
def test_huge_and_tiny_gallery_rows_keep_their_direction(adjacency, dtype, factor):
    """Rows near the dtype's limits are directions like any other (they used to
    become zero vectors and raise a misleading "is r too large?")."""
    Bq, Bg, _, G = _banks(dtype=dtype)
    est = InvGC(adjacency=adjacency).fit(pair(Bq, Bg))
    np.testing.assert_allclose(
        est.transform_gallery(G * dtype(factor)), est.transform_gallery(G), rtol=1e-4, atol=1e-6
    )
