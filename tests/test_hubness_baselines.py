"""Hubness-reduction baselines: IS, QB-Norm, DSL, CSLS and DBNorm.

Expected values are written from the papers' formulas with explicit numpy
(plus a few cases worked out by hand), independently of the kernels in
``skxmr/hubness.py``.
"""

import tracemalloc

import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from sklearn.base import clone

from skxmr import (
    CSLS,
    CosineSimilarity,
    DBNorm,
    DualSoftmax,
    InvertedSoftmax,
    QBNorm,
    registered_methods,
    split_pairs,
)
from skxmr.hubness import (
    csls_scores,
    dbnorm_scores,
    dual_softmax_scores,
    inverted_softmax_scores,
    qb_norm_scores,
)

from skxmr.utils.estimator_checks import two_view_scores

from .conftest import make_pairs
from .test_common import TWO_VIEW

E1, E2 = np.array([1.0, 0.0]), np.array([0.0, 1.0])


def unit(A):
    A = np.asarray(A, dtype=float)
    return A / np.linalg.norm(A, axis=-1, keepdims=True)


def random_problem(seed=0, n_q=6, n_g=5, n_bq=7, n_bg=4, d=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, d)).astype(dtype) for n in (n_q, n_g, n_bq, n_bg)]


# ------------------------------------------------------- reference formulas
def ref_is(Q, G, Bq, tau):
    Q, G, Bq = unit(Q), unit(G), unit(Bq)
    h = tau * np.log(np.exp(Bq @ G.T / tau).sum(axis=0))
    return Q @ G.T - h


def ref_csls(Q, G, Bq, Bg, k):
    Q, G, Bq, Bg = unit(Q), unit(G), unit(Bq), unit(Bg)
    r_g = np.sort(G @ Bq.T, axis=1)[:, -k:].mean(axis=1)
    r_q = np.sort(Q @ Bg.T, axis=1)[:, -k:].mean(axis=1)
    return 2 * (Q @ G.T) - r_g[None, :] - r_q[:, None]


def ref_log_dualis(Q, G, Bq, Bg, tq, tg):
    """log of the DualIS product exp(S/τq)/Zq(g) · exp(S/τg)/Zg(g)."""
    Q, G, Bq, Bg = unit(Q), unit(G), unit(Bq), unit(Bg)
    S = Q @ G.T
    log_zq = np.log(np.exp(Bq @ G.T / tq).sum(axis=0))
    log_zg = np.log(np.exp(Bg @ G.T / tg).sum(axis=0))
    return S / tq - log_zq + S / tg - log_zg


def ref_dsl(Q, G, tau):
    S = unit(Q) @ unit(G).T
    return S * softmax(S / tau, axis=0)


def assert_same_row_ranking(A, B):
    np.testing.assert_array_equal(np.argsort(-A, axis=1, kind="stable"), np.argsort(-B, axis=1, kind="stable"))


# ------------------------------------------------------ inverted softmax
def test_inverted_softmax_by_hand():
    # bank [e1, e1, e2], gallery [e1, e2], τ = 1, query (1, 1)/√2:
    # h(e1) = log(e + e + 1) = log 6.43656 = 1.86199
    # h(e2) = log(1 + 1 + e) = log 4.71828 = 1.55144
    # scores = 0.70711 - h
    S = inverted_softmax_scores([[1.0, 1.0]], [E1, E2], [E1, E1, E2], temperature=1.0)
    np.testing.assert_allclose(S, [[-1.15489, -0.84434]], atol=1e-5)


def test_inverted_softmax_matches_formula():
    # 3 bank queries x 2 gallery items
    Q = np.array([[1.0, 0.2], [0.3, 1.0]])
    G = np.array([[1.0, 0.1], [0.2, 1.0]])
    Bq = np.array([[1.0, 0.0], [0.9, 0.3], [0.1, 1.0]])
    for tau in (0.05, 0.3, 2.0):
        S = inverted_softmax_scores(Q, G, Bq, temperature=tau)
        np.testing.assert_allclose(S, ref_is(Q, G, Bq, tau), rtol=1e-12)
    Q, G, Bq, _ = random_problem(1)
    np.testing.assert_allclose(
        inverted_softmax_scores(Q, G, Bq, temperature=0.1), ref_is(Q, G, Bq, 0.1), rtol=1e-12
    )


def test_inverted_softmax_demotes_a_hub():
    # gallery item 0 is the nearest neighbour of every bank query: a hub
    G = np.array([[1.0, 0.0], [0.0, 1.0]])
    Bq = np.array([[1.0, 0.1], [1.0, 0.2], [1.0, -0.1]])
    Q = np.array([[1.0, 0.9]])  # slightly closer to the hub
    assert np.argmax(unit(Q) @ G.T) == 0
    assert np.argmax(inverted_softmax_scores(Q, G, Bq, temperature=0.1)) == 1


# ---------------------------------------------------------------- QB-Norm
def test_qb_norm_gates_rows():
    G = np.array([E1, E2])
    Bq = np.array([[1.0, 0.0], [1.0, 0.1]])  # both bank queries retrieve e1: A = {0}
    Q = np.array([[1.0, 0.5], [0.1, 1.0], [1.0, 0.8]])  # top-1: 0, 1, 0
    tau = 0.5
    S = qb_norm_scores(Q, G, Bq, temperature=tau)
    cos = unit(Q) @ G.T
    normalised = ref_is(Q, G, Bq, tau)
    np.testing.assert_allclose(S[[0, 2]], normalised[[0, 2]], rtol=1e-12)
    np.testing.assert_array_equal(S[1], cos[1])  # not gated: raw cosine, bit for bit
    # with k = 2 every gallery item is active: plain inverted softmax
    np.testing.assert_allclose(qb_norm_scores(Q, G, Bq, temperature=tau, n_neighbors=2), normalised, rtol=1e-12)


def test_qb_norm_matches_formula_on_random_data():
    Q, G, Bq, _ = random_problem(2, n_q=30, n_g=20, n_bq=5, d=8)
    for k in (1, 2):
        S = qb_norm_scores(Q, G, Bq, temperature=0.1, n_neighbors=k)
        Sbq = unit(Bq) @ unit(G).T
        active = np.zeros(G.shape[0], bool)
        active[np.argsort(-Sbq, axis=1)[:, :k].ravel()] = True
        cos = unit(Q) @ unit(G).T
        gated = active[np.argmax(cos, axis=1)]
        assert 0 < gated.sum() < len(gated)  # both kinds of rows occur
        expected = np.where(gated[:, None], ref_is(Q, G, Bq, 0.1), cos)
        np.testing.assert_allclose(S, expected, rtol=1e-12)


# ----------------------------------------------------------- dual softmax
def test_dual_softmax_ranks_like_the_paper():
    # includes negative cosines: their DSL products are <= 0
    Q, G, _, _ = random_problem(3, n_q=8, n_g=6)
    tau = 0.1
    P = ref_dsl(Q, G, tau)
    assert (P < 0).any() and (P > 0).any()
    D = dual_softmax_scores(Q, G, temperature=tau)
    assert_same_row_ranking(D, P)
    # where S > 0 the score is τ·log(S ⊙ softmax)
    pos = P > 0
    np.testing.assert_allclose(D[pos], tau * np.log(P[pos]), rtol=1e-10)


def test_dual_softmax_by_hand():
    # two queries, two gallery items, τ = 1; S = [[1, 0.6], [0.6, 1]]
    # column softmax: e^1 / (e^1 + e^0.6) = 0.59869, 0.40131
    # P = [[1·0.59869, 0.6·0.40131], [0.6·0.40131, 1·0.59869]]
    Q = np.array([E1, [0.6, 0.8]])
    G = np.array([E1, [0.6, 0.8]])
    D = dual_softmax_scores(Q, G, temperature=1.0)
    P = np.array([[0.59869, 0.24079], [0.24079, 0.59869]])
    np.testing.assert_allclose(D, np.log(P), atol=1e-4)


def test_dual_softmax_tiny_temperature_keeps_exact_order():
    """At τ = 1e-4 the products underflow; the log form still orders them."""
    Q, G, _, _ = random_problem(4, n_q=10, n_g=8, d=4)
    tau = 1e-4
    S = unit(Q) @ unit(G).T
    # log|P| in float64, written directly from the definition
    log_abs_p = np.log(np.abs(S)) + S / tau - logsumexp(S / tau, axis=0)
    # P's order: the sign first, then ±log|P|
    key = np.where(S > 0, 1e6 + log_abs_p, -1e6 - log_abs_p)
    for dtype in (np.float64, np.float32):
        D = dual_softmax_scores(Q.astype(dtype), G.astype(dtype), temperature=tau)
        assert D.dtype == dtype and np.all(np.isfinite(D))
        if dtype == np.float64:
            assert_same_row_ranking(D, key)
    assert np.count_nonzero(ref_dsl(Q, G, tau) == 0) > 0  # the direct product does tie


def test_dual_softmax_is_transductive():
    X = make_pairs()
    est = DualSoftmax().fit(X)
    with pytest.raises(ValueError, match="transductive"):
        est.index(X[:, 8:])
    Q, G = X[:, :8], X[:, 8:]
    np.testing.assert_allclose(est.score_matrix(Q, G), dual_softmax_scores(Q, G), rtol=1e-12)
    # each batch of queries is normalised on its own
    assert not np.allclose(est.score_matrix(Q[:5], G), est.score_matrix(Q, G)[:5])


# ------------------------------------------------------------------- CSLS
def test_csls_by_hand():
    # gallery [e1, e2]; query bank [e1, e1, e2]; gallery bank [e1, (e1+e2)/√2]; k = 2
    # r_B(e1) = mean(1, 1) = 1;  r_B(e2) = mean(1, 0) = 0.5
    # r(q = e1) = mean(1, 0.70711) = 0.85355
    # CSLS = 2S - r_B - r(q) = [2 - 1 - 0.85355, 0 - 0.5 - 0.85355]
    S = csls_scores([E1], [E1, E2], [E1, E1, E2], [E1, [1.0, 1.0]], n_neighbors=2)
    np.testing.assert_allclose(S, [[0.14645, -1.35355]], atol=1e-5)


def test_csls_matches_formula():
    Q, G, Bq, Bg = random_problem(5)
    for k in (1, 3, 4):
        np.testing.assert_allclose(
            csls_scores(Q, G, Bq, Bg, n_neighbors=k), ref_csls(Q, G, Bq, Bg, k), rtol=1e-12
        )


# ----------------------------------------------------------------- DBNorm
def test_dbnorm_static_is_scaled_log_dualis():
    # 3 query-bank rows and 2 gallery-bank rows against 2 gallery items
    Q = np.array([[1.0, 0.2], [0.3, 1.0], [0.7, 0.7]])
    G = np.array([[1.0, 0.1], [0.2, 1.0]])
    Bq = np.array([[1.0, 0.0], [0.9, 0.3], [0.1, 1.0]])
    Bg = np.array([[1.0, 0.5], [0.0, 1.0]])
    for tq, tg in [(0.05, 0.05), (0.05, 0.33), (0.5, 0.1)]:
        S = dbnorm_scores(Q, G, Bq, Bg, query_temperature=tq, gallery_temperature=tg)
        tau = tq * tg / (tq + tg)
        np.testing.assert_allclose(S, tau * ref_log_dualis(Q, G, Bq, Bg, tq, tg), rtol=1e-12)


def test_dbnorm_equal_temperatures_average_the_potentials():
    Q, G, Bq, Bg = random_problem(6)
    S = dbnorm_scores(Q, G, Bq, Bg, query_temperature=0.2, gallery_temperature=0.2)
    h_q = ref_is(Q, G, Bq, 0.2) - unit(Q) @ unit(G).T  # -h_q(g) on every row
    h_g = ref_is(Q, G, Bg, 0.2) - unit(Q) @ unit(G).T
    np.testing.assert_allclose(S, unit(Q) @ unit(G).T + (h_q + h_g) / 2, rtol=1e-12)


def test_dbnorm_dynamic_gates_each_factor():
    G = np.array([E1, E2])
    Bq = np.array([[1.0, 0.0], [1.0, 0.2]])  # query bank retrieves e1: A_q = {0}
    Bg = np.array([[0.1, 1.0], [0.0, 1.0]])  # gallery bank retrieves e2: A_g = {1}
    Q = np.array([[1.0, 0.3], [0.2, 1.0]])  # top-1: 0, 1
    tq, tg = 0.1, 0.4
    wq, wg = tg / (tq + tg), tq / (tq + tg)
    cos = unit(Q) @ G.T
    pen_q = cos - ref_is(Q, G, Bq, tq)  # h_q(g) on every row
    pen_g = cos - ref_is(Q, G, Bg, tg)
    dyn = dbnorm_scores(Q, G, Bq, Bg, query_temperature=tq, gallery_temperature=tg, dynamic=True)
    static = dbnorm_scores(Q, G, Bq, Bg, query_temperature=tq, gallery_temperature=tg)
    np.testing.assert_allclose(dyn[0], cos[0] - wq * pen_q[0], rtol=1e-12)  # query factor only
    np.testing.assert_allclose(dyn[1], cos[1] - wg * pen_g[1], rtol=1e-12)  # gallery factor only
    np.testing.assert_allclose(static, cos - wq * pen_q - wg * pen_g, rtol=1e-12)
    # a row retrieving neither activation set keeps the cosines
    Bg2 = np.array([[1.0, 0.1], [1.0, 0.0]])  # A_g = {0} too: row 1 is in neither set
    dyn2 = dbnorm_scores(Q, G, Bq, Bg2, query_temperature=tq, gallery_temperature=tg, dynamic=True)
    np.testing.assert_array_equal(dyn2[1], cos[1])


def test_dualdis_ungated_factor_is_exp_not_raw_cosine():
    """The decision documented in DBNorm: an ungated factor is exp(S/τ), not the
    authors' raw cosine S. On a row with one factor gated, an item better on
    both counts (higher cosine, lower penalty) then always ranks first; with
    the authors' S · exp(S/τ)/Z it can rank last when the cosines are negative."""
    tq, tg = 0.1, 0.4
    wq = tg / (tq + tg)
    authors_inversions = 0
    for seed in range(30):
        Q, G, Bq, Bg = random_problem(seed, n_q=8, n_g=6)
        Qn, Gn = unit(Q), unit(G)
        S = Qn @ Gn.T
        dyn = dbnorm_scores(Q, G, Bq, Bg, query_temperature=tq, gallery_temperature=tg,
                            dynamic=True)
        top_q = np.argmax(unit(Bq) @ Gn.T, axis=1)
        top_g = np.argmax(unit(Bg) @ Gn.T, axis=1)
        h_q = tq * np.log(np.exp(unit(Bq) @ Gn.T / tq).sum(axis=0))
        for i in range(S.shape[0]):
            gated_q, gated_g = np.argmax(S[i]) in top_q, np.argmax(S[i]) in top_g
            if not (gated_q and not gated_g):
                continue
            # skxmr: the log of exp(S/τg) · exp(S/τq)/Z_q, scaled by τ.
            np.testing.assert_allclose(dyn[i], S[i] - wq * h_q, rtol=1e-12)
            authors = S[i] * np.exp(S[i] / tq - h_q / tq)
            for a in range(S.shape[1]):
                for b in range(S.shape[1]):
                    if S[i, a] > S[i, b] and h_q[a] < h_q[b]:
                        assert dyn[i, a] > dyn[i, b]
                        authors_inversions += authors[a] < authors[b]
    assert authors_inversions > 0


def test_dbnorm_index_add_only_when_static():
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    G = X_test[:, 8:]
    for est in (DBNorm(), InvertedSoftmax(), CSLS(n_neighbors=3)):
        est.fit(X_bank)
        index = est.index(G[:15]).add(G[15:])
        np.testing.assert_allclose(index.score(X_test[:, :8]), est.score_matrix(X_test[:, :8], G))
    for est in (DBNorm(dynamic=True), QBNorm()):
        index = est.fit(X_bank).index(G[:15])
        with pytest.raises(ValueError, match="incrementally"):
            index.add(G[15:])


def test_linear_form_only_where_exact():
    """Approximate search needs score = scale * q.g - offset(g), exactly."""
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    Q, G = X_test[:, :8], X_test[:, 8:]
    for est in (InvertedSoftmax(strength=0.7), DBNorm(strength=0.9)):
        est.fit(X_bank)
        Gn = unit(G)
        scale, offsets = est._linear_form(Gn, est._prepare_gallery(Gn))
        np.testing.assert_allclose(scale * unit(Q) @ Gn.T - offsets, est.score_matrix(Q, G), rtol=1e-12)
    # gated rows (QB-Norm, DualDIS) and CSLS's per-query radius r(q) are not of that form
    for est in (QBNorm(), DBNorm(dynamic=True), CSLS(n_neighbors=3)):
        est.fit(X_bank)
        assert est._linear_form(unit(G), est._prepare_gallery(unit(G))) is None


# --------------------------------------------------------- all estimators
ESTIMATORS = [
    InvertedSoftmax(),
    QBNorm(),
    QBNorm(n_neighbors=3),
    DualSoftmax(),
    CSLS(n_neighbors=5),
    DBNorm(),
    DBNorm(dynamic=True),
]


def _ids(est):
    return repr(est)


def two_view(est, Q, G, Bq, Bg):
    """The two-view function matching ``est``'s parameters."""
    return two_view_scores(TWO_VIEW[type(est)], est, Q, G, Bq, Bg)


@pytest.mark.parametrize(
    "est",
    [
        InvertedSoftmax(temperature=1e-4),
        QBNorm(temperature=1e-4),
        DualSoftmax(temperature=1e-4),
        DBNorm(query_temperature=1e-4, gallery_temperature=1e-4),
        DBNorm(query_temperature=1e-4, gallery_temperature=1e-4, dynamic=True),
    ],
    ids=_ids,
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiny_temperature_is_finite(est, dtype):
    # RuntimeWarnings are errors in this suite (setup.cfg)
    X_bank, X_test = make_pairs(40, seed=1, dtype=dtype), make_pairs(25, seed=2, dtype=dtype)
    S = clone(est).fit(X_bank).decision_function(X_test)
    assert S.dtype == dtype and np.all(np.isfinite(S))


def test_tiny_temperature_inverted_softmax_is_max_margin():
    """τ -> 0: h(g) -> the largest bank similarity of g (log-sum-exp -> max)."""
    Q, G, Bq, _ = random_problem(7)
    S = inverted_softmax_scores(Q, G, Bq, temperature=1e-4)
    h = (unit(Bq) @ unit(G).T).max(axis=0)
    np.testing.assert_allclose(S, unit(Q) @ unit(G).T - h, atol=1e-4 * np.log(len(Bq)) + 1e-12)


def test_logsumexp_kernel_matches_scipy():
    from skxmr.utils._math import logsumexp as lse

    rng = np.random.default_rng(12)
    A = rng.standard_normal((5, 9)) * np.array([[1.0], [1e2], [1e4], [-1e4], [1e-3]])
    np.testing.assert_allclose(lse(A.copy(), axis=1, overwrite=True), logsumexp(A, axis=1), rtol=1e-13)
    np.testing.assert_allclose(lse(A, axis=0), logsumexp(A, axis=0), rtol=1e-13)
    A[1] = -np.inf  # an all -inf row gives -inf, with no warning
    np.testing.assert_array_equal(lse(A, axis=1, keepdims=True)[1], [-np.inf])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_unchanged_and_dtype(dtype):
    arrays = random_problem(8, dtype=dtype)
    copies = [a.copy() for a in arrays]
    Q, G, Bq, Bg = arrays
    outs = [
        inverted_softmax_scores(Q, G, Bq),
        qb_norm_scores(Q, G, Bq),
        dual_softmax_scores(Q, G),
        csls_scores(Q, G, Bq, Bg, n_neighbors=2),
        dbnorm_scores(Q, G, Bq, Bg, dynamic=True),
    ]
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)
    assert all(out.dtype == dtype and out.shape == (6, 5) for out in outs)
    X_bank, X_test = make_pairs(40, seed=1, dtype=dtype), make_pairs(25, seed=2, dtype=dtype)
    X_copy = X_test.copy()
    for est in ESTIMATORS:
        clone(est).fit(X_bank).decision_function(X_test)
        np.testing.assert_array_equal(X_test, X_copy)


# -------------------------------------------------------------- bad input
BAD_REAL = [0.0, -1.0, np.inf, np.nan]


@pytest.mark.parametrize("bad", BAD_REAL)
def test_bad_temperatures(bad):
    Q, G, Bq, Bg = random_problem(9)
    X = make_pairs()
    for call in (
        lambda: inverted_softmax_scores(Q, G, Bq, temperature=bad),
        lambda: qb_norm_scores(Q, G, Bq, temperature=bad),
        lambda: dual_softmax_scores(Q, G, temperature=bad),
        lambda: InvertedSoftmax(temperature=bad).fit(X),
        lambda: QBNorm(temperature=bad).fit(X),
        lambda: DualSoftmax(temperature=bad).fit(X),
    ):
        with pytest.raises(ValueError, match="temperature"):
            call()
    for name in ("query_temperature", "gallery_temperature"):
        with pytest.raises(ValueError, match=name):
            dbnorm_scores(Q, G, Bq, Bg, **{name: bad})
        with pytest.raises(ValueError, match=name):
            DBNorm(**{name: bad}).fit(X)


@pytest.mark.parametrize("bad", [-0.5, 1.5, np.inf, np.nan])
@pytest.mark.parametrize("cls", [InvertedSoftmax, QBNorm, DualSoftmax, CSLS, DBNorm])
def test_bad_strength(cls, bad):
    with pytest.raises(ValueError, match="strength"):
        cls(strength=bad).fit(make_pairs())


def test_bad_neighbourhood_sizes():
    Q, G, Bq, Bg = random_problem(10, n_g=5, n_bq=7, n_bg=4)
    X = make_pairs(40)
    for k in (0, -1, 1.5):
        with pytest.raises(ValueError, match="n_neighbors"):
            qb_norm_scores(Q, G, Bq, n_neighbors=k)
        with pytest.raises(ValueError, match="n_neighbors"):
            QBNorm(n_neighbors=k).fit(X)
        with pytest.raises(ValueError, match="n_neighbors"):
            CSLS(n_neighbors=k).fit(X)
    # k is checked against the gallery when one is scored
    with pytest.raises(ValueError, match="n_neighbors=6"):
        qb_norm_scores(Q, G, Bq, n_neighbors=6)
    est = QBNorm(n_neighbors=30).fit(X)
    with pytest.raises(ValueError, match="n_neighbors=30"):
        est.decision_function(make_pairs(25))
    with pytest.raises(ValueError, match="n_neighbors=30"):
        est.index(X[:20, 8:])
    # n_neighbors against each bank, in fit
    with pytest.raises(ValueError, match="n_neighbors=41"):
        CSLS(n_neighbors=41).fit(X)
    with pytest.raises(ValueError, match="n_neighbors=5"):
        csls_scores(Q, G, Bq, Bg, n_neighbors=5)  # gallery bank has 4 rows
    with pytest.raises(ValueError, match="n_neighbors=8"):
        csls_scores(Q, G, Bq, Bg[:4], n_neighbors=8)  # query bank has 7 rows


def test_bad_banks_and_shapes():
    Q, G, Bq, Bg = random_problem(11)
    with pytest.raises(ValueError, match="query_bank"):
        inverted_softmax_scores(Q, G, Bq[:1])
    with pytest.raises(ValueError, match="gallery_bank"):
        csls_scores(Q, G, Bq, Bg[:, :2], n_neighbors=2)
    with pytest.raises(ValueError, match="gallery"):
        dual_softmax_scores(Q, G[:, :2])
    with pytest.raises(ValueError, match="queries"):
        inverted_softmax_scores(np.zeros((2, 3)), G, Bq)  # zero-norm query
    bad = Bq.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="query_bank"):
        qb_norm_scores(Q, G, bad)


def test_registered_rows():
    methods = registered_methods()
    expected = {
        "IS": InvertedSoftmax,
        "QB-Norm": QBNorm,
        "DSL": DualSoftmax,
        "CSLS": CSLS,
        "DBNorm": DBNorm,
    }
    for name, cls in expected.items():
        entry = methods[name]
        assert entry["family"] == "hubness"
        est = entry["factory"](direction="g2q")
        assert type(est) is cls and est.direction == "g2q"


# -------------------------------------------------------------- real data
def test_coco_each_method_beats_cosine():
    """COCO CLIP text→image: every baseline raises R@1 and lowers hubness."""
    from skxmr.datasets import bank_test_split, load_coco_clip
    from skxmr.metrics import hubness_skewness, recall_at_k

    data = load_coco_clip()
    X_bank, X_test, _, _ = bank_test_split(data.X, bank_size=0.5, random_state=0)
    relevance = split_pairs(X_test).relevance

    def evaluate(est):
        S = clone(est).fit(X_bank).decision_function(X_test)
        return recall_at_k(S, relevance, k=1), S

    r1_cos, S_cos = evaluate(CosineSimilarity())
    for est in [InvertedSoftmax(), QBNorm(), CSLS(), DBNorm(), DBNorm(dynamic=True)]:
        r1, S = evaluate(est)
        assert r1 > r1_cos + 2, (est, r1, r1_cos)
        assert hubness_skewness(S, k=10) < hubness_skewness(S_cos, k=10) - 0.3, est
    # DSL (transductive, τ = 0.01) gains the most R@1; its softmax over the
    # test queries flattens the top-1 occurrence, but promotes items that few
    # queries are close to further down, so only k = 1 skewness drops here.
    r1, S = evaluate(DualSoftmax())
    assert r1 > r1_cos + 5
    assert hubness_skewness(S, k=1) < hubness_skewness(S_cos, k=1) - 0.5


# ------------------------------------- float32 and tiny temperatures (issue 14)
def _float32_problem(n=300, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, d)).astype(np.float32) for _ in range(4)]


@pytest.mark.parametrize("tau", [100.0, 1e3, 1e5])
@pytest.mark.parametrize("method", ["IS", "QB-Norm", "DualIS", "DualDIS"])
def test_float32_keeps_the_ranking_at_large_temperature(method, tau):
    """float32 offsets ~ τ·log n swamped the cosine differences (46 % of rows
    ranked as float64 at τ = 100, none at 1e3): they are applied relative to
    a reference, so every row ranks as the float64 scores of the same inputs."""
    funcs = {
        "IS": lambda Q, G, Bq, Bg: inverted_softmax_scores(Q, G, Bq, temperature=tau),
        "QB-Norm": lambda Q, G, Bq, Bg: qb_norm_scores(Q, G, Bq, temperature=tau, n_neighbors=30),
        "DualIS": lambda Q, G, Bq, Bg: dbnorm_scores(
            Q, G, Bq, Bg, query_temperature=tau, gallery_temperature=tau),
        "DualDIS": lambda Q, G, Bq, Bg: dbnorm_scores(
            Q, G, Bq, Bg, query_temperature=tau, gallery_temperature=tau, dynamic=True),
    }
    arrays = _float32_problem()
    S32 = funcs[method](*arrays)
    S64 = funcs[method](*[a.astype(np.float64) for a in arrays])
    assert S32.dtype == np.float32
    rank32 = np.argsort(-S32, axis=1, kind="stable")
    rank64 = np.argsort(-S64, axis=1, kind="stable")
    np.testing.assert_array_equal(rank32[:, :10], rank64[:, :10])
    assert np.mean(np.all(rank32 == rank64, axis=1)) >= 0.95
    # and the scores are the float64 ones, up to float32 rounding
    np.testing.assert_allclose(S32, S64, atol=1e-6)


def test_large_offsets_are_relative_to_their_midrange():
    """Above the threshold a common shift c; below it exactly S - h."""
    from skxmr.utils._math import OFFSET_REFERENCE_ABOVE, relative_offsets

    h = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(relative_offsets(h), h)
    big = h + 10 * OFFSET_REFERENCE_ABOVE
    np.testing.assert_allclose(relative_offsets(big), h - 0.5, rtol=1e-12)
    Q, G, Bq, _ = random_problem(2)
    S = inverted_softmax_scores(Q, G, Bq, temperature=100.0)
    ref = ref_is(Q, G, Bq, 100.0)
    c = (S - ref)[0, 0]  # S = S_cos - (h - c)
    np.testing.assert_allclose(S, ref + c, atol=1e-10)  # one constant per gallery
    assert c > OFFSET_REFERENCE_ABOVE


@pytest.mark.parametrize("make", [
    lambda t: InvertedSoftmax(temperature=t),
    lambda t: QBNorm(temperature=t),
    lambda t: DualSoftmax(temperature=t),
    lambda t: DBNorm(query_temperature=t),
    lambda t: DBNorm(gallery_temperature=t),
], ids=["IS", "QB-Norm", "DSL", "DBNorm-q", "DBNorm-g"])
@pytest.mark.parametrize("tau", [5e-309, 1e-320])
def test_temperature_without_finite_inverse_is_refused(make, tau):
    """1/τ overflows below ~5.6e-309: NaN scores before, a ValueError now."""
    with pytest.raises(ValueError, match="temperature"):
        make(tau).fit(make_pairs(20, seed=1))
    make(1e-300).fit(make_pairs(20, seed=1))  # still representable: computed


def test_two_view_temperature_without_finite_inverse_is_refused():
    Q, G, Bq, Bg = random_problem(3)
    for func in (lambda t: inverted_softmax_scores(Q, G, Bq, temperature=t),
                 lambda t: qb_norm_scores(Q, G, Bq, temperature=t),
                 lambda t: dual_softmax_scores(Q, G, temperature=t),
                 lambda t: dbnorm_scores(Q, G, Bq, Bg, query_temperature=t)):
        with pytest.raises(ValueError, match="temperature"):
            func(1e-310)


@pytest.mark.parametrize("tau", [1e-6, 1e-7, 1e-9])
def test_dual_softmax_float32_tiny_temperature(tau):
    """float32 products scaled by 1/τ gave positive scores (P <= S <= 1 means
    log P <= 0) and wrong rankings at τ <= 1e-6."""
    Q, G, _, _ = _float32_problem()
    S32 = dual_softmax_scores(Q, G, temperature=tau)
    S64 = dual_softmax_scores(Q.astype(np.float64), G.astype(np.float64), temperature=tau)
    assert S32.dtype == np.float32
    assert np.all(S32 <= 0) and np.all(S64 <= 0)
    np.testing.assert_array_equal(np.argsort(-S32, axis=1, kind="stable")[:, :10],
                                  np.argsort(-S64, axis=1, kind="stable")[:, :10])


@pytest.mark.parametrize("method", ["IS", "DualIS", "QB-Norm", "DualDIS"])
def test_float32_scoring_has_no_float64_matrix(method):
    """2000 x 2000 float32 scores: the peak was 47.9 MiB (a float64 copy of the
    scores and work buffers) against a 15.3 MiB output; now the output plus
    cache-sized tiles."""
    rng = np.random.default_rng(0)
    Q, G, Bq, Bg = (rng.standard_normal((2000, 8)).astype(np.float32) for _ in range(4))
    funcs = {
        "IS": lambda: inverted_softmax_scores(Q, G, Bq),
        "DualIS": lambda: dbnorm_scores(Q, G, Bq, Bg),
        "QB-Norm": lambda: qb_norm_scores(Q, G, Bq),
        "DualDIS": lambda: dbnorm_scores(Q, G, Bq, Bg, dynamic=True),
    }
    funcs[method]()  # the per-thread tiles are reused from here on
    tracemalloc.start()
    S = funcs[method]()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert S.dtype == np.float32
    assert peak <= 1.2 * S.nbytes, peak / 2**20


@pytest.mark.parametrize("f64", ["queries", "gallery", "query_bank"])
def test_two_view_dtype_is_float32_only_if_every_input_is(f64):
    Q, G, Bq, Bg = random_problem(4, dtype=np.float32)
    arrays = {"queries": Q, "gallery": G, "query_bank": Bq}
    arrays[f64] = arrays[f64].astype(np.float64)
    assert inverted_softmax_scores(**arrays).dtype == np.float64
    assert qb_norm_scores(**arrays).dtype == np.float64
    assert csls_scores(**arrays, gallery_bank=Bg, n_neighbors=2).dtype == np.float64
    assert dbnorm_scores(**arrays, gallery_bank=Bg).dtype == np.float64
    assert dbnorm_scores(Q, G, Bq, Bg.astype(np.float64)).dtype == np.float64
    assert inverted_softmax_scores(Q, G, Bq).dtype == np.float32
