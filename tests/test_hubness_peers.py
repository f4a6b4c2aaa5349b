"""The peers' hubness methods (NNN, DN, mutual proximity, local scaling) and
scikit-hubness's hubness measures (Gini index, hub occurrence).

Expected values are small cases worked out by hand and reference formulas
written directly from the papers with explicit numpy/scipy, independently of
``skxmr/hubness/_peers.py``.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.base import clone

from skxmr import (
    CosineSimilarity,
    DistributionNormalization,
    LocalScaling,
    MutualProximity,
    NearestNeighborNormalization,
    registered_methods,
    split_pairs,
)
from skxmr.hubness import (
    distribution_normalization_scores,
    local_scaling_scores,
    mutual_proximity_scores,
    nnn_scores,
)
from skxmr.metrics import (
    antihub_rate,
    gini_index,
    hub_occurrence,
    hubness_report,
    k_occurrence,
)

from skxmr.utils.estimator_checks import two_view_scores

from .conftest import make_pairs
from .test_common import TWO_VIEW
from .test_hubness_baselines import E1, E2, random_problem, unit


# ------------------------------------------------------- reference formulas
def ref_nnn(Q, G, Bq, k, alpha):
    Q, G, Bq = unit(Q), unit(G), unit(Bq)
    k = min(k, len(Bq))
    b = np.sort(G @ Bq.T, axis=1)[:, -k:].mean(axis=1)
    return Q @ G.T - alpha * b


def ref_dn(Q, G, Bq, Bg):
    Q, G, Bq, Bg = unit(Q), unit(G), unit(Bq), unit(Bg)
    return (Q - Bq.mean(axis=0) / 2) @ (G - Bg.mean(axis=0) / 2).T


def ref_mp(Q, G, Bq, Bg, method):
    Q, G, Bq, Bg = unit(Q), unit(G), unit(Bq), unit(Bg)
    S = Q @ G.T
    Sq, Sg = Q @ Bg.T, G @ Bq.T  # each query's / gallery item's bank similarities
    if method == "gaussian":
        lq = norm.logcdf(S, loc=Sq.mean(1)[:, None], scale=Sq.std(1)[:, None])
        lg = norm.logcdf(S, loc=Sg.mean(1)[None, :], scale=Sg.std(1)[None, :])
        return lq + lg
    # the interpolated empirical CDF, entry by entry: knots (b_(k), k/(n+1)) and
    # (-1, 0.5/(n+1)), (1, (n+0.5)/(n+1)); c = bank similarities <= s
    def cdf(bank_row, s):
        b, n = np.sort(bank_row), len(bank_row)
        s = min(max(s, -1.0), 1.0)
        c = int((b <= s).sum())
        x_lo, y_lo = (b[c - 1], c) if c else (-1.0, 0.5)
        x_hi, y_hi = (b[c], c + 1) if c < n else (1.0, n + 0.5)
        t = (s - x_lo) / (x_hi - x_lo) if x_hi > x_lo else 0.0
        return (y_lo + t * (y_hi - y_lo)) / (n + 1)

    return np.array([[np.log(cdf(Sq[i], S[i, j])) + np.log(cdf(Sg[j], S[i, j]))
                      for j in range(S.shape[1])] for i in range(S.shape[0])])


def ref_ls(Q, G, Bq, Bg, method, k):
    Q, G, Bq, Bg = unit(Q), unit(G), unit(Bq), unit(Bg)
    Dq = np.sort(1 - Q @ Bg.T, axis=1)  # ascending distances to the bank
    Dg = np.sort(1 - G @ Bq.T, axis=1)
    kq, kg = min(k, len(Bg)), min(k, len(Bq))
    d = 1 - Q @ G.T
    if method == "nicdm":
        mq, mg = Dq[:, :kq].mean(axis=1), Dg[:, :kg].mean(axis=1)
        return 1 - d / np.sqrt(mq[:, None] * mg[None, :])
    sq, sg = Dq[:, kq - 1], Dg[:, kg - 1]
    return np.exp(-(d**2) / (sq[:, None] * sg[None, :]))


# ------------------------------------------------------------------- NNN
def test_nnn_by_hand():
    # gallery [e1, e2], query bank [e1, e1, e2], k = 2, alpha = 0.5:
    # b(e1) = mean(1, 1) = 1, b(e2) = mean(1, 0) = 0.5
    # query (1, 1)/√2: S = 0.70711 for both; scores 0.70711 - 0.5 b
    S = nnn_scores([[1.0, 1.0]], [E1, E2], [E1, E1, E2], n_neighbors=2)
    np.testing.assert_allclose(S, [[0.20711, 0.45711]], atol=1e-5)


def test_nnn_matches_formula_and_clips_k():
    Q, G, Bq, _ = random_problem(1)
    for k, alpha in [(1, 0.5), (3, 1.0), (7, 0.25)]:
        np.testing.assert_allclose(
            nnn_scores(Q, G, Bq, n_neighbors=k, alpha=alpha), ref_nnn(Q, G, Bq, k, alpha),
            rtol=1e-12,
        )
    # larger than the bank (7 rows): clipped, i.e. the mean over the whole bank
    np.testing.assert_allclose(nnn_scores(Q, G, Bq), nnn_scores(Q, G, Bq, n_neighbors=7), rtol=1e-12)
    np.testing.assert_allclose(nnn_scores(Q, G, Bq), ref_nnn(Q, G, Bq, 7, 0.5), rtol=1e-12)


def test_nnn_over_the_whole_bank_ranks_like_dn():
    """b(g) over the whole bank is μ_qᵀg: with alpha = ½ that is DN's gallery
    offset, and DN's other terms are constant along a row."""
    Q, G, Bq, Bg = random_problem(2, n_q=9, n_g=8)
    nnn = nnn_scores(Q, G, Bq, n_neighbors=len(Bq), alpha=0.5)
    dn = distribution_normalization_scores(Q, G, Bq, Bg)
    np.testing.assert_allclose(nnn - dn, (nnn - dn)[:, :1] + np.zeros_like(nnn), atol=1e-12)


# -------------------------------------------------------------------- DN
def test_dn_by_hand():
    # μ_q = mean(e1, e1) = (1, 0), μ_g = mean(e1, e2) = (0.5, 0.5)
    # q - μ_q/2: e1 -> (0.5, 0), e2 -> (-0.5, 1)
    # g - μ_g/2: e1 -> (0.75, -0.25), e2 -> (-0.25, 0.75)
    S = distribution_normalization_scores([E1, E2], [E1, E2], [E1, E1], [E1, E2])
    np.testing.assert_allclose(S, [[0.375, -0.125], [-0.625, 0.875]], atol=1e-15)


def test_dn_matches_formula():
    Q, G, Bq, Bg = random_problem(3)
    np.testing.assert_allclose(
        distribution_normalization_scores(Q, G, Bq, Bg), ref_dn(Q, G, Bq, Bg), rtol=1e-12
    )
    est = DistributionNormalization().fit(np.hstack([Bq[:4], Bg]))
    np.testing.assert_allclose(est.query_mean_, unit(Bq[:4]).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(est.gallery_mean_, unit(Bg).mean(axis=0), rtol=1e-12)


# ------------------------------------------------------- mutual proximity
def test_mp_gaussian_by_hand():
    # both banks [e1, e2]: every item's bank cosines are {1, 0}: μ = σ = 0.5
    # S = 1: z = 1 on both sides, log Φ(1) = log 0.8413447 = -0.1727538
    # S = 0: z = -1 on both sides, log Φ(-1) = log 0.1586553 = -1.8410216
    S = mutual_proximity_scores([E1], [E1, E2], [E1, E2], [E1, E2])
    np.testing.assert_allclose(S, [[2 * -0.1727538, 2 * -1.8410216]], atol=1e-6)


def test_mp_empirical_by_hand():
    # query q = e1 against gallery bank [e1, (e1+e2)/√2, e2]: cosines 0, 0.70711, 1
    # gallery item g = (0.6, 0.8) against query bank [e1, e2]: cosines 0.6, 0.8
    # S(q, g) = 0.6: q side between knots (0, 1/4) and (0.70711, 2/4):
    #                1/4 + (0.6 / 0.70711) * 1/4
    #                g side at the knot (0.6, 1/3) of its first bank cosine
    S = mutual_proximity_scores(
        [E1], [[0.6, 0.8]], [E1, E2], [E1, [1.0, 1.0], E2], method="empirical"
    )
    q_side = 0.25 + 0.6 / np.sqrt(0.5) * 0.25
    np.testing.assert_allclose(S, [[np.log(q_side) + np.log(1 / 3)]], rtol=1e-12)


def test_mp_empirical_top_candidates_do_not_tie():
    """Candidates above every bank cosine keep their cosine order (the step CDF
    gave all of them probability 1, and a pessimistic rank put the true item last)."""
    bank = [E1, E2]
    G = [[1.0, 0.02], [1.0, 0.05], [1.0, 0.1]]  # cosines to q = e1 above both bank's
    S = mutual_proximity_scores([[1.0, 0.0]], G, bank, [E2, [0.0, 1.0]], method="empirical")
    assert S[0, 0] > S[0, 1] > S[0, 2]


def test_mp_empirical_independent_of_batch_order_and_chunks():
    """An item in both the bank and the test set: scores do not depend on how
    the queries are chunked or ordered (the step CDF jumped by log 2)."""
    from skxmr.datasets import load_coco_clip

    X = load_coco_clip().X[:120].astype(np.float32)
    est = MutualProximity(method="empirical").fit(X[:80])
    X_test = X[60:120]  # 20 of these rows are bank rows too
    ref = est.decision_function(X_test)
    perm = np.random.default_rng(0).permutation(len(X_test))
    import sklearn

    for wm in (1e-3, 0.01, 1024):  # MiB: from a few query rows per chunk to one chunk
        with sklearn.config_context(working_memory=wm):
            got = est.decision_function(X_test[perm])
        np.testing.assert_allclose(got, ref[np.ix_(perm, perm)], atol=1e-4)


@pytest.mark.parametrize("method", ["gaussian", "empirical"])
def test_mp_matches_formula(method):
    Q, G, Bq, Bg = random_problem(4, n_q=9, n_g=11, n_bq=13, n_bg=6)
    np.testing.assert_allclose(
        mutual_proximity_scores(Q, G, Bq, Bg, method=method), ref_mp(Q, G, Bq, Bg, method),
        rtol=1e-10,
    )


@pytest.mark.parametrize("n_bank", [1, 2, 3, 5, 8, 31, 64, 65])
def test_mp_empirical_counts_ties_exactly(n_bank):
    """The vectorised binary search against a brute-force count, with many
    exact ties (embeddings on a coarse grid) and every bank size parity."""
    rng = np.random.default_rng(n_bank)

    def grid(n):
        A = rng.integers(-2, 3, (n, 3)).astype(float)
        A[np.abs(A).sum(axis=1) == 0] = 1.0  # no zero rows
        return A

    Q, G, Bq, Bg = grid(7), grid(9), grid(max(n_bank, 2)), grid(n_bank + 1)
    got = mutual_proximity_scores(Q, G, Bq, Bg, method="empirical")
    np.testing.assert_allclose(got, ref_mp(Q, G, Bq, Bg, "empirical"), rtol=1e-12)


def test_mp_zero_variance_raises_naming_method():
    # gallery item e2 is orthogonal to every query-bank row: constant cosines
    with pytest.raises(ValueError, match="method='gaussian'.*gallery item"):
        mutual_proximity_scores([E1], [E1, E2], [E1, E1, [1.0, 0.0]], [E1, E2])
    # query e1 has cosine 1 with the whole gallery bank
    with pytest.raises(ValueError, match="method='gaussian'.*query"):
        mutual_proximity_scores([E1], [E1, E2], [E1, E2], [E1, E1])
    # the empirical form is defined there
    S = mutual_proximity_scores([E1], [E1, E2], [E1, E1], [E1, E1], method="empirical")
    assert np.all(np.isfinite(S))


# ---------------------------------------------------------- local scaling
def test_nicdm_by_hand():
    # both banks [e1, (e1+e2)/√2], k = 2: distances of e1 to the bank 0, 0.29289
    # μ(e1) = 0.14645; e2 to the bank: 1, 0.29289, μ(e2) = 0.64645
    # d(e1, e2) = 1: NICDM 1 / sqrt(0.14645 · 0.64645) = 3.25008; f = 1 - D
    bank = [E1, [1.0, 1.0]]
    S = local_scaling_scores([E1], [E1, E2], bank, bank, n_neighbors=2)
    np.testing.assert_allclose(S, [[1.0, 1 - 3.25008]], atol=1e-5)


def test_standard_local_scaling_by_hand():
    # banks [e1, e2], k = 2: σ(x) = distance to the 2nd nearest bank item = 1
    # f = exp(-d²): d(e1, e1) = 0 -> 1, d(e1, e2) = 1 -> e^-1
    S = local_scaling_scores([E1], [E1, E2], [E1, E2], [E1, E2], method="standard", n_neighbors=2)
    np.testing.assert_allclose(S, [[1.0, np.exp(-1.0)]], rtol=1e-12)


@pytest.mark.parametrize("method", ["nicdm", "standard"])
@pytest.mark.parametrize("k", [1, 3, 5, 50])
def test_local_scaling_matches_formula(method, k):
    Q, G, Bq, Bg = random_problem(5)  # k = 5 and 50 exceed the 4-row gallery bank: clipped
    np.testing.assert_allclose(
        local_scaling_scores(Q, G, Bq, Bg, method=method, n_neighbors=k),
        ref_ls(Q, G, Bq, Bg, method, k),
        rtol=1e-10, atol=1e-14,  # exp(-d²/σσ) tails are ~1e-15
    )


def test_local_scaling_zero_radius_is_finite():
    # the query equals its nearest gallery-bank item: σ_1 = μ_1 = 0 (floored)
    for method in ("nicdm", "standard"):
        S = local_scaling_scores([E1], [E1, E2], [E1, E2], [E1, E2], method=method, n_neighbors=1)
        assert np.all(np.isfinite(S))
        assert S[0, 0] > S[0, 1]


# --------------------------------------------------------- all estimators
ESTIMATORS = [
    NearestNeighborNormalization(n_neighbors=5),
    NearestNeighborNormalization(),
    DistributionNormalization(),
    MutualProximity(),
    MutualProximity(method="empirical"),
    LocalScaling(n_neighbors=5),
    LocalScaling(method="standard", n_neighbors=5),
]


def _ids(est):
    return repr(est)


def two_view(est, Q, G, Bq, Bg):
    """The two-view function matching ``est``'s parameters."""
    return two_view_scores(TWO_VIEW[type(est)], est, Q, G, Bq, Bg)


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), which=st.integers(0, len(ESTIMATORS) - 1))
def test_permutation_equivariance(seed, which):
    """Permuting queries / gallery permutes rows / columns; bank order is irrelevant."""
    rng = np.random.default_rng(seed)
    Q, G, Bq, Bg = random_problem(seed, n_q=7, n_g=6, n_bq=8, n_bg=5)
    est = ESTIMATORS[which]
    S = two_view(est, Q, G, Bq, Bg)
    pq, pg, pbq, pbg = (rng.permutation(len(a)) for a in (Q, G, Bq, Bg))
    P = two_view(est, Q[pq], G[pg], Bq[pbq], Bg[pbg])
    np.testing.assert_allclose(P, S[np.ix_(pq, pg)], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_unchanged_and_dtype(dtype):
    arrays = random_problem(8, dtype=dtype)
    copies = [a.copy() for a in arrays]
    Q, G, Bq, Bg = arrays
    outs = [two_view(est, Q, G, Bq, Bg) for est in ESTIMATORS]
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)
    assert all(out.dtype == dtype and out.shape == (6, 5) for out in outs)
    assert all(np.all(np.isfinite(out)) for out in outs)
    X_bank, X_test = make_pairs(40, seed=1, dtype=dtype), make_pairs(25, seed=2, dtype=dtype)
    X_copy = X_test.copy()
    for est in ESTIMATORS:
        S = clone(est).fit(X_bank).decision_function(X_test)
        assert S.dtype == dtype
        np.testing.assert_array_equal(X_test, X_copy)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_ids)
def test_float32_close_to_float64(est):
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    S64 = clone(est).fit(X_bank).decision_function(X_test)
    S32 = clone(est).fit(X_bank.astype(np.float32)).decision_function(X_test.astype(np.float32))
    np.testing.assert_allclose(S32, S64, atol=2e-4)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_ids)
def test_index_and_add_equal_score_matrix(est):
    """Every statistic is per gallery item, so an index can grow."""
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    Q, G = X_test[:, :8], X_test[:, 8:]
    est = clone(est).fit(X_bank)
    expected = est.score_matrix(Q, G)
    index = est.index(G[:15]).add(G[15:])
    np.testing.assert_allclose(index.score(Q), expected, rtol=1e-12, atol=1e-14)
    scores, ids = index.kneighbors(Q, n_neighbors=3)
    np.testing.assert_array_equal(ids[:, 0], np.argmax(expected, axis=1))


def test_linear_form_only_for_nnn():
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    Q, G = unit(X_test[:, :8]), unit(X_test[:, 8:])
    est = NearestNeighborNormalization(n_neighbors=5, strength=0.7).fit(X_bank)
    scale, offsets = est._linear_form(G, est._prepare_gallery(G))
    np.testing.assert_allclose(scale * Q @ G.T - offsets, est.score_matrix(Q, G), rtol=1e-12)
    # DN keeps its per-query term; MP and LS are not linear in the gallery
    for est in ESTIMATORS[2:]:
        est = clone(est).fit(X_bank)
        assert est._linear_form(G, est._prepare_gallery(G)) is None


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [0, -1, 1.5, None])
def test_bad_n_neighbors(bad):
    Q, G, Bq, Bg = random_problem(9)
    X = make_pairs()
    for call in (
        lambda: NearestNeighborNormalization(n_neighbors=bad).fit(X),
        lambda: LocalScaling(n_neighbors=bad).fit(X),
        lambda: nnn_scores(Q, G, Bq, n_neighbors=bad),
        lambda: local_scaling_scores(Q, G, Bq, Bg, n_neighbors=bad),
    ):
        with pytest.raises(ValueError, match="n_neighbors"):
            call()


@pytest.mark.parametrize("bad", [-0.1, 1.5, np.inf, np.nan])
def test_bad_alpha_and_strength(bad):
    Q, G, Bq, _ = random_problem(10)
    with pytest.raises(ValueError, match="alpha"):
        NearestNeighborNormalization(alpha=bad).fit(make_pairs())
    with pytest.raises(ValueError, match="alpha"):
        nnn_scores(Q, G, Bq, alpha=bad)
    for cls in (NearestNeighborNormalization, DistributionNormalization, MutualProximity, LocalScaling):
        with pytest.raises(ValueError, match="strength"):
            cls(strength=bad).fit(make_pairs())


def test_bad_method_and_banks():
    Q, G, Bq, Bg = random_problem(11)
    with pytest.raises(ValueError, match="method"):
        MutualProximity(method="normal").fit(make_pairs())
    with pytest.raises(ValueError, match="method"):
        local_scaling_scores(Q, G, Bq, Bg, method="cdm")
    with pytest.raises(ValueError, match="gallery_bank"):
        distribution_normalization_scores(Q, G, Bq, Bg[:, :2])
    with pytest.raises(ValueError, match="query_bank"):
        nnn_scores(Q, G, Bq[:1])
    with pytest.raises(ValueError, match="queries"):
        mutual_proximity_scores(np.zeros((2, 3)), G, Bq, Bg)


def test_registered_rows():
    methods = registered_methods()
    expected = {
        "NNN": NearestNeighborNormalization,
        "DN": DistributionNormalization,
        "MP": MutualProximity,
        "LS": LocalScaling,
    }
    for name, cls in expected.items():
        entry = methods[name]
        assert entry["family"] == "hubness"
        est = entry["factory"](direction="g2q")
        assert type(est) is cls and est.direction == "g2q"
        # the tuning grid: valid parameters, defaults included
        defaults = est.get_params()
        for grid in entry["grid"]:
            for key, values in grid.items():
                assert defaults[key] in values, (name, key)
                for value in values:
                    clone(est).set_params(**{key: value})._validate_params()


# -------------------------------------------------------------- real data
def test_coco_peers_against_cosine():
    """COCO CLIP text→image: every method lowers hubness and raises R@1 (empirical
    MP too: its interpolated CDF leaves the top candidates untied)."""
    from skxmr.datasets import bank_test_split, load_coco_clip
    from skxmr.metrics import hubness_skewness, recall_at_k

    data = load_coco_clip()
    X_bank, X_test, _, _ = bank_test_split(data.X, bank_size=0.5, random_state=0)
    relevance = split_pairs(X_test).relevance

    def evaluate(est):
        S = clone(est).fit(X_bank).decision_function(X_test)
        return recall_at_k(S, relevance, k=1), hubness_skewness(S, k=10)

    r1_cos, skew_cos = evaluate(CosineSimilarity())
    for est in [NearestNeighborNormalization(), DistributionNormalization(), MutualProximity(),
                MutualProximity(method="empirical"), LocalScaling(),
                LocalScaling(method="standard")]:
        r1, skew = evaluate(est)
        assert r1 > r1_cos + 2, (est, r1, r1_cos)
        assert skew < skew_cos - 0.3, (est, skew, skew_cos)


# ------------------------------------------------------- hubness measures
S3 = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.1], [0.6, 0.2, 0.3]])


def ref_gini(n_k):
    """scikit-hubness's definition: sum of all pairwise |differences| / (2 n sum)."""
    n_k = np.asarray(n_k, dtype=float)
    return np.abs(n_k[:, None] - n_k[None, :]).sum() / (2 * n_k.size * n_k.sum())


def test_gini_by_hand():
    # N_1 = [3, 0, 0]: pairwise |diff| sum = 4·3 = 12, / (2·3·3) = 2/3
    assert gini_index(S3, k=1) == pytest.approx(2 / 3)
    # N_2 = [3, 1, 2]: |diffs| 2+1+1 twice = 8, / (2·3·6) = 2/9
    assert gini_index(S3, k=2) == pytest.approx(2 / 9)
    assert gini_index(np.eye(4), k=1) == 0.0
    # one hub takes every slot: 1 - 1/n
    S = np.zeros((5, 4))
    S[:, 2] = 1.0
    assert gini_index(S, k=1) == pytest.approx(1 - 1 / 4)


@settings(max_examples=30)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6))
def test_gini_matches_scikit_hubness_definition(seed, k):
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((15, 9)) + 2 * rng.standard_normal(9)  # some hubness
    assert gini_index(S, k=k) == pytest.approx(ref_gini(k_occurrence(S, k=k)), rel=1e-12)
    assert 0.0 <= gini_index(S, k=k) < 1.0
    # a statistic of the multiset N_k: permuting the gallery leaves it unchanged
    assert gini_index(S[:, rng.permutation(9)], k=k) == pytest.approx(gini_index(S, k=k))


def test_hub_occurrence_by_hand():
    # N_1 = [3, 0, 0]: item 0 (3 >= 2·1) is a hub and fills 3 of 3 slots
    assert hub_occurrence(S3, k=1) == 1.0
    # N_2 = [3, 1, 2]: no N_2 >= 4
    assert hub_occurrence(S3, k=2) == 0.0
    # hub_size 1.5: 3 >= 3, so item 0 fills 3 of the 6 top-2 slots
    assert hub_occurrence(S3, k=2, hub_size=1.5) == 0.5
    # the threshold is inclusive, as scikit-hubness's N_k >= hub_size·k
    assert hub_occurrence(S3, k=1, hub_size=3.0) == 1.0
    assert hub_occurrence(S3, k=1, hub_size=3.5) == 0.0


@pytest.mark.parametrize("bad", [0, -1.0, np.nan, np.inf, "2", True])
def test_bad_hub_size(bad):
    with pytest.raises(ValueError, match="hub_size"):
        hub_occurrence(S3, k=1, hub_size=bad)


def test_hubness_report_has_the_new_measures():
    report = hubness_report(S3, k=2)
    assert report["gini_index"] == gini_index(S3, k=2)
    assert report["hub_occurrence"] == hub_occurrence(S3, k=2)
    assert report["antihub_rate"] == antihub_rate(S3, k=2)


def test_measures_bad_k():
    for func in (gini_index, hub_occurrence):
        with pytest.raises(ValueError, match="k=4"):
            func(S3, k=4)
        with pytest.raises(ValueError, match="scores"):
            func(np.array([[np.nan, 1.0]]), k=1)


def test_measures_on_every_backend(backend):
    rng = np.random.default_rng(3)
    S = (rng.standard_normal((20, 12)) + 2 * rng.standard_normal(12)).astype(backend.dtype)
    X = backend.asarray(S)
    with backend.dispatch():
        got = (gini_index(X, k=3), hub_occurrence(X, k=3, hub_size=1.5), hubness_report(X, k=3))
    assert isinstance(got[0], float) and isinstance(got[1], float)
    assert got[0] == pytest.approx(gini_index(S, k=3), abs=1e-12)
    assert got[1] == pytest.approx(hub_occurrence(S, k=3, hub_size=1.5), abs=1e-12)
    want = hubness_report(S, k=3)
    assert got[2]["gini_index"] == pytest.approx(want["gini_index"], abs=1e-12)
    assert got[2]["hub_occurrence"] == pytest.approx(want["hub_occurrence"], abs=1e-12)


def test_nnn_approximate_index_equals_exact():
    """NNN's bias folds into faiss candidates; with every item a candidate the
    approximate top-k is the exact one."""
    pytest.importorskip("faiss")
    X_bank, X_test = make_pairs(60, seed=1), make_pairs(40, seed=2)
    Q, G = X_test[:, :8], X_test[:, 8:]
    est = NearestNeighborNormalization(n_neighbors=5).fit(X_bank)
    exact = est.index(G).kneighbors(Q, n_neighbors=5)
    approx = est.index(G, approximate=True, n_candidates=40).kneighbors(Q, n_neighbors=5)
    np.testing.assert_array_equal(approx[1], exact[1])
    np.testing.assert_allclose(approx[0], exact[0], rtol=1e-12)


# ---------------------------------------------------------------- backends
def _same_as_numpy(backend, got, ref, est):
    """float64: equal to numpy's to 1e-10; float32: to 1e-4."""
    got = backend.to_numpy(got)
    assert got.dtype == np.dtype(backend.dtype)
    if backend.dtype == "float64":
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    else:
        np.testing.assert_allclose(got, ref, atol=1e-4)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_ids)
def test_on_every_backend(backend, est):
    """Estimator, index (statistics on the device) and two-view form keep the
    input's backend, dtype and device, with numpy's numbers."""
    X_bank, X_test = make_pairs(60, seed=1), make_pairs(40, seed=2)
    X_bank, X_test = X_bank.astype(backend.dtype), X_test.astype(backend.dtype)
    Q, G, Qb, Gb = X_test[:, :8], X_test[:, 8:], X_bank[:, :8], X_bank[:, 8:]
    ref = clone(est).fit(X_bank).decision_function(X_test)
    with backend.dispatch():
        fitted = clone(est).fit(backend.asarray(X_bank))
        S = fitted.decision_function(backend.asarray(X_test))
        index = fitted.index(backend.asarray(G[:25])).add(backend.asarray(G[25:]))
        for value in index.state_.values():
            backend.to_numpy(value)  # per-gallery statistics stay on the device
        S_index = index.score(backend.asarray(Q))
        S_two = two_view(est, *(backend.asarray(a) for a in (Q, G, Qb, Gb)))
    for got in (S, S_index, S_two):
        _same_as_numpy(backend, got, ref, est)


def test_mp_zero_variance_on_every_backend(backend):
    with backend.dispatch(), pytest.raises(ValueError, match="method='gaussian'"):
        mutual_proximity_scores(*(backend.asarray(a) for a in ([E1], [E1, E2], [E1, E2], [E1, E1])))


def test_benchmark_rows_carry_the_hubness_measures(tmp_path):
    """The benchmark's q2g hubness columns come from the same k-occurrence."""
    import json

    from skxmr.benchmark import format_table, run_benchmark, write_output
    from skxmr.datasets import bank_test_split, load_coco_clip
    from skxmr.metrics import hubness_skewness

    result = run_benchmark(methods=["Cosine", "NNN"], n_splits=1)
    X_bank, X_test, _, _ = bank_test_split(load_coco_clip().X, bank_size=0.5, random_state=0)
    S = NearestNeighborNormalization().fit(X_bank).decision_function(X_test)
    row = result["rows"]["NNN"]
    assert row["hubness_skewness"] == pytest.approx(hubness_skewness(S, k=10))
    assert row["gini_index"] == pytest.approx(gini_index(S, k=10))
    assert row["hub_occurrence"] == pytest.approx(hub_occurrence(S, k=10))
    assert row["antihub_rate"] == pytest.approx(antihub_rate(S, k=10))
    table = format_table(result, metrics=["recall@1", "hubness_skewness", "gini_index", "hub_occurrence",
                                          "antihub_rate"])
    assert "gini@10" in table and "hubs@10" in table and "anti@10" in table
    assert max(len(line) for line in table.splitlines()) <= 120
    write_output(result, tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())["rows"][1]
    assert saved["gini@10"] == pytest.approx(row["gini_index"])
