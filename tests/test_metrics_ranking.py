"""Ranking metrics: hand-computed cases, brute-force tie expectations, properties."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import config_context
from sklearn.metrics import top_k_accuracy_score

from skxmr.metrics import (
    map_at_r,
    mean_rank,
    median_rank,
    r_precision,
    rank_of_relevant,
    recall_at_k,
    retrieval_report,
)

# ---------------------------------------------------------------- references


def _orders(S_row, rel_row, ties):
    """All tie-breaking orders of one row: (relevance sequence, weight)."""
    n = S_row.size
    if ties == "pessimistic":
        order = np.lexsort((rel_row, -S_row))
        return [rel_row[order]]
    return [rel_row[np.lexsort((np.array(p), -S_row))] for p in itertools.permutations(range(n))]


def brute(S, Rel, ties):
    """Ranks, R-Precision, MAP@R and R@K (for every K) by enumerating
    tie-breaking orders."""
    ranks, rps, aps, hits = [], [], [], []
    for s, rel in zip(S, Rel):
        R = int(rel.sum())
        seqs = _orders(s, rel.astype(int), ties)
        rk = rp = ap = 0.0
        hit = np.zeros(s.size)
        for seq in seqs:
            first = np.flatnonzero(seq)[0] + 1
            rk += first
            hit[first - 1 :] += 1
            top = seq[:R]
            rp += top.sum() / R
            prec = np.cumsum(top) / np.arange(1, R + 1)
            ap += np.sum(prec * top) / R
        ranks.append(rk / len(seqs))
        rps.append(rp / len(seqs))
        aps.append(ap / len(seqs))
        hits.append(hit / len(seqs))
    return np.array(ranks), 100 * np.mean(rps), 100 * np.mean(aps), 100 * np.mean(hits, axis=0)


# ---------------------------------------------------------- hand-computed


def test_ranks_hand_computed_ties():
    S = np.array([[0.9, 0.5, 0.5], [0.1, 0.2, 0.3]])
    # row 0: relevant col 1 (0.5) ties with col 2 and trails col 0:
    #   pessimistic 1 + 1 + 1 = 3; average 1 + (t + 1) / (r + 1) = 1 + 3/2 = 2.5
    # row 1: relevant col 0 is the lowest of 3 -> rank 3 either way
    np.testing.assert_array_equal(rank_of_relevant(S, np.array([1, 0])), [3, 3])
    np.testing.assert_array_equal(rank_of_relevant(S, np.array([1, 0]), ties="average"), [2.5, 3])


def test_ranks_multiple_relevant():
    S = np.array([[0.5, 0.9, 0.7, 0.7, 0.1]])
    rel = np.array([[0, 0, 1, 0, 1]], dtype=bool)
    # best relevant is col 2 (0.7), col 1 (0.9) is higher, irrelevant col 3 ties:
    #   pessimistic: 1 (col 1) + 1 (col 3) + 1 = 3; average: 1 + (2 + 1)/(1 + 1) = 2.5
    assert rank_of_relevant(S, rel)[0] == 3
    assert rank_of_relevant(S, rel, ties="average")[0] == 2.5
    # both tied items relevant: no irrelevant tie, rank 2 under both rules
    # (average: 1 + (2 + 1)/(2 + 1) = 2)
    rel2 = np.array([[0, 0, 1, 1, 0]], dtype=bool)
    assert rank_of_relevant(S, rel2)[0] == 2
    assert rank_of_relevant(S, rel2, ties="average")[0] == 2


def test_median_and_mean_rank_hand_computed():
    # relevant columns are ranked 1, 3, 2 and 6 (identity scores shifted)
    S = np.array([
        [6, 5, 4, 3, 2, 1],  # rel 0 -> rank 1
        [6, 5, 4, 3, 2, 1],  # rel 2 -> rank 3
        [6, 5, 4, 3, 2, 1],  # rel 1 -> rank 2
        [6, 5, 4, 3, 2, 1],  # rel 5 -> rank 6
    ], dtype=float)
    rel = np.array([0, 2, 1, 5])
    # MdR = (2 + 3) / 2 = 2.5; MnR = (1 + 3 + 2 + 6) / 4 = 3
    assert median_rank(S, rel) == 2.5
    assert mean_rank(S, rel) == 3.0
    # R@1 = 1/4, R@2 = 2/4, R@3 = 3/4, R@6 = 4/4
    assert [recall_at_k(S, rel, k) for k in (1, 2, 3, 6)] == [25.0, 50.0, 75.0, 100.0]


def test_median_mean_rank_average_ties():
    S = np.array([[1.0, 1.0, 1.0, 1.0], [4.0, 3.0, 2.0, 1.0]])
    rel = np.array([2, 1])
    # row 0 all tied: pessimistic 4, average 0 + (4 + 1)/2 = 2.5; row 1: rank 2
    assert mean_rank(S, rel) == (4 + 2) / 2
    assert mean_rank(S, rel, ties="average") == (2.5 + 2) / 2
    assert median_rank(S, rel, ties="average") == (2.5 + 2) / 2
    # expected R@K: row 0 hits the top k with probability k/4 (one relevant
    # among 4 tied), row 1 from k = 2 on:
    #   R@1 = (1/4 + 0)/2, R@2 = (2/4 + 1)/2, R@3 = (3/4 + 1)/2
    for k, expected in [(1, 1 / 8), (2, 3 / 4), (3, 7 / 8)]:
        assert recall_at_k(S, rel, k, ties="average") == pytest.approx(100 * expected)
    # pessimistic: row 0 only at k = 4
    assert recall_at_k(S, rel, 3) == 50.0 and recall_at_k(S, rel, 4) == 100.0


def test_r_precision_map_at_r_hand_computed():
    S = np.array([
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    ])
    rel = np.array([
        [1, 0, 1, 0, 0, 1],  # R = 3: top 3 = cols 0,1,2 -> rel 1,0,1
        [1, 0, 0, 0, 0, 1],  # R = 2: top 2 = cols 5,4   -> rel 1,0
    ], dtype=bool)
    # R-Precision: row 0 = 2/3, row 1 = 1/2 -> mean 7/12
    # MAP@R: row 0 = (1/1 + 0 + 2/3) / 3 = 5/9, row 1 = (1/1 + 0) / 2 = 1/2
    #        mean = (5/9 + 1/2) / 2 = 19/36
    assert r_precision(S, rel) == pytest.approx(100 * 7 / 12)
    assert map_at_r(S, rel) == pytest.approx(100 * 19 / 36)
    # MAP@R <= R-Precision always
    assert map_at_r(S, rel) <= r_precision(S, rel)


def test_r_precision_map_at_r_ties():
    # R = 2; col 0 is first, then a tie group {1, 2, 3} holding relevant col 2
    S = np.array([[0.9, 0.5, 0.5, 0.5, 0.1]])
    rel = np.array([[1, 0, 1, 0, 0]], dtype=bool)
    # pessimistic: order 0, (1, 3), 2 -> top 2 = rel, irrel
    #   R-Precision = 1/2, MAP@R = (1/1 + 0) / 2 = 1/2
    assert r_precision(S, rel) == pytest.approx(50.0)
    assert map_at_r(S, rel) == pytest.approx(50.0)
    # average: position 2 is relevant with probability 1/3, and then P(2) = 1
    #   R-Precision = (1 + 1/3) / 2 = 2/3; MAP@R = (1 + 1/3 * 1) / 2 = 2/3
    assert r_precision(S, rel, ties="average") == pytest.approx(100 * 2 / 3)
    assert map_at_r(S, rel, ties="average") == pytest.approx(100 * 2 / 3)


def test_ties_group_spilling_past_top_r():
    # all 4 items tied, R = 2 relevant: the tie group is larger than the
    # selected top R. Average over the 6 placements of the 2 relevant items:
    #   {1,2}: MAP 1      R-P 1
    #   {1,3},{1,4}: 1/2  R-P 1/2
    #   {2,3},{2,4}: 1/4  R-P 1/2
    #   {3,4}: 0          R-P 0
    # MAP@R = (1 + 1 + 1/2) / 6 = 5/12; R-Precision = (1 + 4/2) / 6 = 1/2
    S = np.full((1, 4), 0.5)
    rel = np.array([[1, 1, 0, 0]], dtype=bool)
    assert map_at_r(S, rel, ties="average") == pytest.approx(100 * 5 / 12)
    assert r_precision(S, rel, ties="average") == pytest.approx(50.0)
    # expected R@K: the top k miss both relevant items with probability
    #   C(2, k) / C(4, k): k=1 -> 2/4, k=2 -> 1/6, k=3 -> 0
    assert recall_at_k(S, rel, 1, ties="average") == pytest.approx(100 * (1 - 2 / 4))
    assert recall_at_k(S, rel, 2, ties="average") == pytest.approx(100 * (1 - 1 / 6))
    assert recall_at_k(S, rel, 3, ties="average") == 100.0
    # pessimistic: both irrelevant items first -> 0
    assert map_at_r(S, rel) == 0.0
    assert r_precision(S, rel) == 0.0


def test_retrieval_report_hand_computed():
    S = np.array([[0.9, 0.2, 0.1], [0.3, 0.1, 0.8], [0.2, 0.7, 0.4]])
    rel = np.arange(3)
    # q2g ranks of the diagonal: row 0 -> 1, row 1 (0.1 lowest) -> 3,
    #   row 2 (0.4 after 0.7) -> 2
    # g2q (columns): col 0 (0.9 best) -> 1, col 1 (0.1 lowest of .2,.1,.7) -> 3,
    #   col 2 (0.4 after 0.8) -> 2
    rep = retrieval_report(S, rel, ks=(1, 2, 5))
    for d in ("q2g", "g2q"):
        r = rep[d]
        assert r["R@1"] == pytest.approx(100 / 3)
        assert r["R@2"] == pytest.approx(200 / 3)
        assert "R@5" not in r  # larger than the 3 ranked items: skipped
        assert r["MdR"] == 2.0 and r["MnR"] == 2.0
        # one relevant item: R-Precision = MAP@R = R@1
        assert r["R-P"] == pytest.approx(100 / 3)
        assert r["mAP@R"] == pytest.approx(100 / 3)
    assert list(rep["q2g"]) == ["R@1", "R@2", "MdR", "MnR", "R-P", "mAP@R"]


def test_retrieval_report_matches_functions_and_transpose(rng):
    S = rng.standard_normal((12, 9))
    rel = rng.random((12, 9)) < 0.3
    rel[np.arange(12), np.arange(12) % 9] = True
    for ties in ("pessimistic", "average"):
        rep = retrieval_report(S, rel, ks=(1, 3), ties=ties)
        for d, (M, Rl) in {"q2g": (S, rel), "g2q": (S.T, rel.T)}.items():
            assert rep[d]["R@3"] == recall_at_k(M, Rl, 3, ties=ties)
            assert rep[d]["MdR"] == median_rank(M, Rl, ties=ties)
            assert rep[d]["MnR"] == mean_rank(M, Rl, ties=ties)
            assert rep[d]["R-P"] == r_precision(M, Rl, ties=ties)
            assert rep[d]["mAP@R"] == map_at_r(M, Rl, ties=ties)
    only = retrieval_report(S, rel, directions=("g2q",))
    assert list(only) == ["g2q"] and "R@10" in only["g2q"]  # ranks 12 queries
    assert "R@10" not in retrieval_report(S, rel, directions="q2g")["q2g"]  # 9 items


def flat(report):
    """A nested report as a flat dict, for pytest.approx."""
    return {(d, key): v for d, metrics in report.items() for key, v in metrics.items()}


# ----------------------------------------------------- relevance formats


@pytest.mark.parametrize(
    "convert",
    [
        lambda r: r,
        lambda r: np.eye(5, dtype=bool)[r],
        lambda r: np.eye(5, dtype=int)[r],
        lambda r: sp.csr_matrix(np.eye(5, dtype=bool)[r]),
        lambda r: sp.csr_array(np.eye(5)[r]),
        lambda r: sp.coo_array(np.eye(5, dtype=bool)[r]),
    ],
    ids=["1d-int", "dense-bool", "dense-int", "csr_matrix", "csr_array-float", "coo"],
)
def test_relevance_formats_agree(convert, rng):
    S = rng.standard_normal((7, 5))
    r = rng.integers(0, 5, size=7)
    rel = convert(r)
    expected = np.argsort(np.argsort(-S, axis=1), axis=1)[np.arange(7), r] + 1.0
    np.testing.assert_array_equal(rank_of_relevant(S, rel), expected)
    base = retrieval_report(S, r, directions=("q2g",))
    assert retrieval_report(S, rel, directions=("q2g",)) == base


def test_float32_scores(rng):
    S = rng.standard_normal((10, 6))
    rel = rng.random((10, 6)) < 0.4
    rel[:, 0] = True
    assert flat(retrieval_report(S.astype(np.float32), rel, ties="average")) == pytest.approx(
        flat(retrieval_report(S, rel, ties="average"))
    )


def test_agrees_with_sklearn_top_k_accuracy(rng):
    S = rng.standard_normal((40, 8))  # continuous: no ties
    r = rng.integers(0, 8, size=40)
    for k in (1, 2, 3, 5):
        expected = top_k_accuracy_score(r, S, k=k, labels=np.arange(8))
        assert recall_at_k(S, r, k) / 100 == pytest.approx(expected)


def test_chunked_equals_unchunked(rng):
    # one row per chunk (working_memory far below a row): chunks differ in
    # their max(R), ties are frequent (integer scores)
    S = rng.integers(0, 4, size=(15, 50)).astype(float)
    rel = rng.random((15, 50)) < 0.15
    rel[np.arange(15), np.arange(15)] = True
    for ties in ("pessimistic", "average"):
        full = retrieval_report(S, rel, ties=ties, ks=(1, 5))
        with config_context(working_memory=1e-4):
            chunked = retrieval_report(S, rel, ties=ties, ks=(1, 5))
        assert flat(chunked) == pytest.approx(flat(full))


def test_inputs_not_modified(rng):
    S = rng.standard_normal((6, 6))
    rel = np.eye(6, dtype=bool)
    S0, rel0 = S.copy(), rel.copy()
    retrieval_report(S, rel, ties="average")
    np.testing.assert_array_equal(S, S0)
    np.testing.assert_array_equal(rel, rel0)


# ------------------------------------------------------------ properties

small_int_matrix = st.tuples(st.integers(1, 5), st.integers(2, 6)).flatmap(
    lambda shape: st.tuples(
        arrays(np.int64, shape, elements=st.integers(0, 3)),
        arrays(np.bool_, shape, elements=st.booleans()),
    )
)


def _ensure_relevant(rel):
    rel = rel.copy()
    rel[np.arange(rel.shape[0]), np.arange(rel.shape[0]) % rel.shape[1]] = True
    return rel


@settings(max_examples=60)
@given(small_int_matrix)
def test_matches_brute_force_tie_enumeration(data):
    S, rel = data
    S = S.astype(float)
    rel = _ensure_relevant(rel)
    for ties in ("pessimistic", "average"):
        ranks, rp, ap, recalls = brute(S, rel, ties)
        np.testing.assert_allclose(rank_of_relevant(S, rel, ties=ties), ranks)
        for k in range(1, S.shape[1] + 1):
            assert recall_at_k(S, rel, k, ties=ties) == pytest.approx(recalls[k - 1])
        assert r_precision(S, rel, ties=ties) == pytest.approx(rp)
        assert map_at_r(S, rel, ties=ties) == pytest.approx(ap)


@settings(max_examples=60)
@given(small_int_matrix, st.data())
def test_permutation_invariance(data, draw):
    S, rel = data
    S = S.astype(float)
    rel = _ensure_relevant(rel)
    n_q, n_g = S.shape
    cols = np.array(draw.draw(st.permutations(range(n_g))))
    rows = np.array(draw.draw(st.permutations(range(n_q))))
    for ties in ("pessimistic", "average"):
        kw = dict(ties=ties, ks=(1, 2), directions=("q2g",))
        base = flat(retrieval_report(S, rel, **kw))
        assert flat(retrieval_report(S[:, cols], rel[:, cols], **kw)) == pytest.approx(base)
        assert flat(retrieval_report(S[rows], rel[rows], **kw)) == pytest.approx(base)
        r = rank_of_relevant(S, rel, ties=ties)
        np.testing.assert_allclose(rank_of_relevant(S[rows], rel[rows], ties=ties), r[rows])


@settings(max_examples=60)
@given(small_int_matrix)
def test_bounds_and_monotonicity(data):
    S, rel = data
    S = S.astype(float)
    rel = _ensure_relevant(rel)
    n_g = S.shape[1]
    for ties in ("pessimistic", "average"):
        ranks = rank_of_relevant(S, rel, ties=ties)
        assert np.all((ranks >= 1) & (ranks <= n_g))
        recalls = [recall_at_k(S, rel, k, ties=ties) for k in range(1, n_g + 1)]
        assert all(0 <= r <= 100 for r in recalls)
        assert all(a <= b for a, b in zip(recalls, recalls[1:]))
        assert recalls[-1] == 100.0
        rp, ap = r_precision(S, rel, ties=ties), map_at_r(S, rel, ties=ties)
        assert 0 <= ap <= rp + 1e-9 <= 100 + 1e-9
    # pessimistic is never better than average
    assert map_at_r(S, rel) <= map_at_r(S, rel, ties="average") + 1e-9
    assert np.all(rank_of_relevant(S, rel) >= rank_of_relevant(S, rel, ties="average"))
    for k in range(1, n_g + 1):
        assert recall_at_k(S, rel, k) <= recall_at_k(S, rel, k, ties="average") + 1e-9


@given(st.integers(1, 8), st.integers(2, 12), st.integers(0, 2**32 - 1))
def test_perfect_ranking_scores_100(n_q, n_g, seed):
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((n_q, n_g))
    n_rel = rng.integers(1, n_g + 1, size=n_q)
    order = np.argsort(-S, axis=1)
    rel = np.zeros_like(S, dtype=bool)
    for_rows = np.arange(n_g)[None, :] < n_rel[:, None]  # top R of each row
    np.put_along_axis(rel, order, for_rows, axis=1)
    for ties in ("pessimistic", "average"):
        assert r_precision(S, rel, ties=ties) == pytest.approx(100.0)
        assert map_at_r(S, rel, ties=ties) == pytest.approx(100.0)
        assert median_rank(S, rel, ties=ties) == 1.0


# ------------------------------------------------------------- bad input


def test_bad_inputs():
    S = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1]])
    rel = np.array([0, 1])
    with pytest.raises(ValueError, match="k"):
        recall_at_k(S, rel, k=0)
    with pytest.raises(ValueError, match="k=4"):
        recall_at_k(S, rel, k=4)
    with pytest.raises(ValueError, match="relevance"):
        r_precision(S, np.ones((3, 3), dtype=bool))
    with pytest.raises(ValueError, match="relevance"):
        map_at_r(S, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="relevance"):
        median_rank(S, np.array([0, 3]))
    with pytest.raises(ValueError, match="no relevant item"):
        map_at_r(S, np.array([[1, 0, 0], [0, 0, 0]], dtype=bool))
    with pytest.raises(TypeError, match="relevance"):
        mean_rank(S, np.array([0.0, 1.0]))
    bad = S.copy()
    bad[0, 1] = np.nan
    for func in (rank_of_relevant, median_rank, mean_rank, r_precision, map_at_r, retrieval_report):
        with pytest.raises(ValueError, match="scores"):
            func(bad, rel)
    with pytest.raises(ValueError, match="ties"):
        map_at_r(S, rel, ties="optimistic")
    with pytest.raises(ValueError, match="ks"):
        retrieval_report(S, rel, ks=(0, 1))
    with pytest.raises(ValueError, match="ks"):
        retrieval_report(S, rel, ks=())
    with pytest.raises(ValueError, match="directions"):
        retrieval_report(S, rel, directions=("t2v",))
    # g2q needs a relevant query for every gallery item (col 2 has none)
    with pytest.raises(ValueError, match="relevance.*g2q"):
        retrieval_report(S, rel)


@pytest.mark.parametrize("fill", [np.nan, -1.0, 0.5, 2])
@pytest.mark.parametrize("sparse", [False, True])
def test_relevance_must_be_binary(fill, sparse):
    """NaN or negative entries are not "relevant" (they counted as such before)."""
    import scipy.sparse as sp

    from skxmr.metrics import map_at_r, recall_at_k

    S = np.random.default_rng(0).standard_normal((4, 4))
    R = np.where(np.eye(4, dtype=bool), 1.0, fill)
    R = sp.csr_array(R) if sparse else R
    for metric in (recall_at_k, map_at_r):
        with pytest.raises(ValueError, match="booleans or 0/1"):
            metric(S, R)
    assert recall_at_k(S, np.eye(4)) == recall_at_k(S, np.eye(4, dtype=bool))
