"""Sinkhorn normalisation (SN) and Dual Bank SN: core, estimators, real data."""

import warnings

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, GroupKFold

from skxmr import (
    CosineSimilarity,
    DualBankSinkhornNormalizer,
    InvertedSoftmax,
    SinkhornNormalizer,
)
from skxmr._registry import registered_methods
from skxmr._ot import sinkhorn_potentials, sinkhorn_potentials_from_embeddings
from skxmr.hubness import dual_bank_sinkhorn_scores, sinkhorn_scores

from .conftest import make_pairs


def unit_rows(rng, n, d=16):
    A = rng.standard_normal((n, d))
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def pot_h(M, tau, n_iter, a=None, b=None):
    """h = -τ log u of the reference usage ot.sinkhorn(b, a, 1 - Mᵀ, reg=τ)."""
    n, m = M.shape
    a = np.full(n, 1 / n) if a is None else a
    b = np.full(m, 1 / m) if b is None else b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # POT warns "did not converge" for small T
        _, log = ot.sinkhorn(b, a, 1 - M.T, reg=tau, numItermax=n_iter, stopThr=0, log=True)
    return -tau * np.log(log["u"])


def pot_log_domain_h(M, tau, n_iter):
    """POT's log-domain solver; it starts from u = 1 instead of 1 / n_cols,
    which shifts log u by the constant log(n_cols)."""
    n, m = M.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, log = ot.sinkhorn(np.full(m, 1 / m), np.full(n, 1 / n), 1 - M.T, reg=tau,
                             numItermax=n_iter, stopThr=0, log=True, method="sinkhorn_log")
    return -tau * log["log_u"] + tau * np.log(m)


@pytest.fixture
def M():
    rng = np.random.default_rng(0)
    return unit_rows(rng, 60) @ unit_rows(rng, 45).T


# ----------------------------------------------------------------- core
def test_hand_computed_one_iteration():
    # Two bank queries, two columns; column 0 is the hub (close to both).
    M = np.array([[0.9, 0.2], [0.8, 0.3]])
    tau = 0.1
    K = np.exp(-(1 - M) / tau)
    c0 = np.array([0.5, 0.5])
    r = np.array([0.5, 0.5]) / (K @ c0)
    c = np.array([0.5, 0.5]) / (K.T @ r)
    h, log = sinkhorn_potentials(M, temperature=tau, max_iter=1)
    np.testing.assert_allclose(h, -tau * np.log(c), rtol=0, atol=1e-14)
    assert h[0] > h[1]  # the hub is pushed down
    assert log["n_iter"] == 1 and not log["log_domain"]


@pytest.mark.parametrize("tau", [0.01, 0.05])
@pytest.mark.parametrize("n_iter", [1, 3, 10, 10000])
def test_equals_pot(M, tau, n_iter):
    h, log = sinkhorn_potentials(M, temperature=tau, max_iter=n_iter)
    np.testing.assert_allclose(h, pot_h(M, tau, n_iter), rtol=0, atol=1e-10)
    assert log["n_iter"] == n_iter
    if n_iter == 10000:  # converged
        assert log["marginal_error"] < 1e-12


def test_equals_pot_with_marginals(M):
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 1.5, M.shape[0])
    b = rng.uniform(0.5, 1.5, M.shape[1])
    a, b = a / a.sum(), b / b.sum()
    h, _ = sinkhorn_potentials(M, temperature=0.02, max_iter=7, a=a, b=b)
    np.testing.assert_allclose(h, pot_h(M, 0.02, 7, a, b), rtol=0, atol=1e-10)


@pytest.mark.parametrize("n_iter", [1, 3, 10])
def test_plan_marginals(M, n_iter):
    tau = 0.02
    h, log = sinkhorn_potentials(M, temperature=tau, max_iter=n_iter)
    P = np.exp(log["log_r"][:, None] + (M - 1) / tau - h[None, :] / tau)
    n, m = M.shape
    # The column side is updated last: its marginal is exact ...
    np.testing.assert_allclose(P.sum(axis=0), np.full(m, 1 / m), rtol=1e-12)
    # ... and the row-marginal error is the one reported.
    err = np.linalg.norm(P.sum(axis=1) - 1 / n)
    np.testing.assert_allclose(log["marginal_error"], err, rtol=1e-8)
    assert err > 0


def test_float32_and_float64_identical(M):
    M32 = M.astype(np.float32)
    h32, _ = sinkhorn_potentials(M32)
    h64, _ = sinkhorn_potentials(M32.astype(np.float64))
    np.testing.assert_array_equal(h32, h64)
    assert h32.dtype == np.float64
    # A float32 kernel underflows at τ=0.01 (exp(-(1 - M)/τ) < 1e-38 for
    # cosines below 0.12): why everything is computed in float64.
    assert np.any(np.exp(-(1 - M32) / np.float32(0.01)) == 0)


@pytest.mark.parametrize("tau", [1e-3, 1e-4])
def test_tiny_temperature_log_domain(M, tau):
    # The float64 kernel underflows here (at τ=1e-4 whole rows are zero and
    # plain Sinkhorn-Knopp divides by zero).
    K = np.exp(-(1 - M) / tau)
    assert np.any(K == 0)
    if tau == 1e-4:
        assert np.any(np.all(K == 0, axis=1))
    h, log = sinkhorn_potentials(M, temperature=tau, max_iter=20)
    assert log["log_domain"]
    assert np.all(np.isfinite(h)) and np.isfinite(log["marginal_error"])
    np.testing.assert_allclose(h, pot_log_domain_h(M, tau, 20), rtol=0, atol=1e-9)


def test_fallback_when_scalings_leave_float64(M, monkeypatch):
    """Backstop behind the a-priori spread bound: with the bound disabled,
    τ=1e-4 overflows the scalings; the solver warns and recomputes in the
    log domain (from M, or from the embeddings once M became the kernel)."""
    import skxmr._ot._common as sk

    monkeypatch.setattr(sk, "SCALING_DOMAIN_MAX_SPREAD", np.inf)
    ref = pot_log_domain_h(M, 1e-4, 5)
    with pytest.warns(ConvergenceWarning, match="log domain"):
        h, log = sinkhorn_potentials(M, temperature=1e-4, max_iter=5)
    assert log["log_domain"]
    np.testing.assert_allclose(h, ref, rtol=0, atol=1e-9)
    rng = np.random.default_rng(0)
    bank, cols = unit_rows(rng, 60), unit_rows(rng, 45)
    with pytest.warns(ConvergenceWarning, match="log domain"):
        h_emb, _ = sinkhorn_potentials_from_embeddings(bank, cols, 1e-4, 5)
    np.testing.assert_allclose(h_emb, ref, rtol=0, atol=1e-9)


def test_log_domain_equals_scaling_domain(M):
    h, log = sinkhorn_potentials(M, temperature=0.01, max_iter=10)
    # A budget too small for the kernel forces the chunked log domain.
    h_log, log_log = sinkhorn_potentials(M, temperature=0.01, max_iter=10,
                                         working_memory=0.005)
    assert not log["log_domain"] and log_log["log_domain"]
    np.testing.assert_allclose(h_log, h, rtol=0, atol=1e-10)
    np.testing.assert_allclose(log_log["marginal_error"], log["marginal_error"], rtol=1e-8)


@pytest.mark.parametrize("tau", [0.01, 1e-3])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_streamed_equals_dense(tau, n_jobs):
    rng = np.random.default_rng(2)
    bank, cols = unit_rows(rng, 70), unit_rows(rng, 50)
    h, log = sinkhorn_potentials_from_embeddings(bank, cols, tau, 10)
    assert not log["streamed"]
    from joblib import parallel_backend

    with parallel_backend("threading"):
        h_s, log_s = sinkhorn_potentials_from_embeddings(
            bank, cols, tau, 10, working_memory=0.005, n_jobs=n_jobs
        )
    # τ=0.01 streams kernel blocks, τ=1e-3 (spread/τ > 300) log-domain blocks
    assert log_s["streamed"] and log_s["log_domain"] == (tau < 0.01)
    np.testing.assert_allclose(h_s, h, rtol=0, atol=1e-10)
    h_dense, _ = sinkhorn_potentials(bank @ cols.T, tau, 10)
    np.testing.assert_allclose(h, h_dense, rtol=0, atol=1e-12)


def test_tol_stops_early_and_warns_when_unreachable(M):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h, log = sinkhorn_potentials(M, temperature=0.05, max_iter=500, tol=1e-8)
    assert log["n_iter"] < 500 and log["marginal_error"] < 1e-8
    np.testing.assert_allclose(h, pot_h(M, 0.05, log["n_iter"]), atol=1e-10)
    for working_memory in (None, 0.005):  # scaling and log domain
        with pytest.warns(ConvergenceWarning, match="marginal error"):
            _, log = sinkhorn_potentials(M, temperature=0.01, max_iter=2, tol=1e-12,
                                         working_memory=working_memory)
        assert log["n_iter"] == 2 and log["marginal_error"] > 1e-12


def test_permutation_equivariance(M):
    perm = np.random.default_rng(3).permutation(M.shape[1])
    h, _ = sinkhorn_potentials(M)
    h_perm, _ = sinkhorn_potentials(M[:, perm])
    np.testing.assert_allclose(h_perm, h[perm], rtol=0, atol=1e-12)


@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**16),
    col=st.integers(0, 7),
    delta=st.floats(-0.3, 0.3),
    tau=st.sampled_from([0.02, 0.05, 0.1]),
)
def test_column_shift_moves_its_potential(seed, col, delta, tau):
    """At convergence, raising column j's similarities by δ raises h_j by δ
    (relative to the others): entropic OT is invariant to column shifts of
    the cost, the potentials absorb them."""
    rng = np.random.default_rng(seed)
    M = unit_rows(rng, 9, 4) @ unit_rows(rng, 8, 4).T
    M2 = M.copy()
    M2[:, col] += delta
    h, _ = sinkhorn_potentials(M, tau, max_iter=5000, tol=1e-13)
    h2, _ = sinkhorn_potentials(M2, tau, max_iter=5000, tol=1e-13)
    shift = h2 - h
    shift[col] -= delta
    np.testing.assert_allclose(shift, shift.mean(), atol=1e-9)


def test_inputs_not_modified(M):
    M_copy = M.copy()
    sinkhorn_potentials(M)
    sinkhorn_potentials(M, temperature=1e-3)
    np.testing.assert_array_equal(M, M_copy)
    rng = np.random.default_rng(4)
    Q, G, Bq, Bg = (unit_rows(rng, n) for n in (5, 6, 7, 8))
    copies = [A.copy() for A in (Q, G, Bq, Bg)]
    dual_bank_sinkhorn_scores(Q, G, Bq, Bg)
    assert sinkhorn_potentials_from_embeddings(Bq, G, working_memory=2.5e-4)[1]["streamed"]
    for A, A_copy in zip((Q, G, Bq, Bg), copies):
        np.testing.assert_array_equal(A, A_copy)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"temperature": 0}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": np.inf}, "temperature"),
        ({"temperature": np.nan}, "temperature"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": 0.0}, "tol"),
        ({"working_memory": -1}, "working_memory"),
    ],
)
def test_core_bad_parameters(M, kwargs, name):
    with pytest.raises(ValueError, match=name):
        sinkhorn_potentials(M, **kwargs)


def test_core_bad_inputs(M):
    bad = M.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="M"):
        sinkhorn_potentials(bad)
    with pytest.raises(ValueError, match="a must have shape"):
        sinkhorn_potentials(M, a=np.ones(3))
    with pytest.raises(ValueError, match="b must hold"):
        sinkhorn_potentials(M, b=np.r_[0.0, np.full(M.shape[1] - 1, 1.0 / (M.shape[1] - 1))])
    with pytest.raises(ValueError, match="total mass"):
        sinkhorn_potentials(M, a=np.full(M.shape[0], 2.0 / M.shape[0]))
    with pytest.raises(ValueError, match="columns"):
        sinkhorn_potentials_from_embeddings(np.ones((3, 4)), np.ones((3, 5)))


# ----------------------------------------------------------- estimators
@pytest.mark.parametrize("dual", [False, True], ids=["SN", "DBSN"])
@pytest.mark.parametrize("n_iter", [1, 3, 10, 3000])
def test_estimators_equal_pot(dual, n_iter):
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    cls = DualBankSinkhornNormalizer if dual else SinkhornNormalizer
    tau = 0.05
    est = cls(temperature=tau, max_iter=n_iter).fit(X_bank)
    Q, G = X_test[:, :8], X_test[:, 8:]
    h = est.index(G).state_["h"]
    Bq = est.query_bank_
    columns = np.vstack([G, est.gallery_bank_]) if dual else G
    np.testing.assert_allclose(h, pot_h(Bq @ columns.T, tau, n_iter)[:25], rtol=0, atol=1e-10)
    np.testing.assert_allclose(est.decision_function(X_test), Q @ G.T - h, atol=1e-12)


def test_two_view_strength_zero_is_cosine():
    """The estimators' side is a family check (skxmr.utils.estimator_checks)."""
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    Q, G = X_test[:, :8], X_test[:, 8:]
    np.testing.assert_allclose(sinkhorn_scores(Q, G, X_bank[:, :8], strength=0), Q @ G.T)


@pytest.mark.parametrize("cls", [SinkhornNormalizer, DualBankSinkhornNormalizer])
def test_float32_estimator(cls):
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    S64 = cls().fit(X_bank).decision_function(X_test)
    S32 = cls().fit(X_bank.astype(np.float32)).decision_function(X_test.astype(np.float32))
    assert S32.dtype == np.float32
    np.testing.assert_allclose(S32, S64, atol=1e-5)


@pytest.mark.parametrize("cls", [SinkhornNormalizer, DualBankSinkhornNormalizer])
def test_streamed_estimator_and_tiny_temperature(cls):
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    S = cls().fit(X_bank).decision_function(X_test)
    S_streamed = cls(working_memory=0.005).fit(X_bank).decision_function(X_test)
    np.testing.assert_allclose(S_streamed, S, atol=1e-10)
    S_tiny = cls(temperature=1e-4).fit(X_bank).decision_function(X_test)
    assert np.all(np.isfinite(S_tiny))


@pytest.mark.parametrize("cls", [SinkhornNormalizer, DualBankSinkhornNormalizer])
def test_index_is_not_extendable(cls):
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    index = cls().fit(X_bank).index(X_test[:, 8:])
    with pytest.raises(ValueError, match="jointly"):
        index.add(X_test[:3, 8:])


@pytest.mark.parametrize("cls", [SinkhornNormalizer, DualBankSinkhornNormalizer])
@pytest.mark.parametrize(
    "params, name",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": np.inf}, "temperature"),
        ({"temperature": np.nan}, "temperature"),
        ({"max_iter": 0}, "max_iter"),
        ({"strength": 1.5}, "strength"),
        ({"strength": -0.1}, "strength"),
        ({"tol": -1.0}, "tol"),
    ],
)
def test_estimator_bad_parameters(cls, params, name):
    with pytest.raises(ValueError, match=name):
        cls(**params).fit(make_pairs())


def test_single_row_banks_raise():
    X = make_pairs(5)
    with pytest.raises(ValueError, match="at least 2"):
        SinkhornNormalizer().fit(np.repeat(X[:1], 3, axis=0))
    Q, G = X[:, :8], X[:, 8:]
    with pytest.raises(ValueError, match="query_bank"):
        sinkhorn_scores(Q, G, Q[:1])
    with pytest.raises(ValueError, match="gallery_bank"):
        dual_bank_sinkhorn_scores(Q, G, Q, G[:1])
    with pytest.raises(ValueError, match="strength"):
        sinkhorn_scores(Q, G, Q, strength=2.0)


def test_registered_rows():
    methods = registered_methods()
    for name, cls in (("SN", SinkhornNormalizer), ("DBSN", DualBankSinkhornNormalizer)):
        assert methods[name]["family"] == "hubness"
        est = methods[name]["factory"](direction="g2q")
        assert type(est) is cls and est.direction == "g2q"


# ------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def coco():
    from skxmr.datasets import bank_test_split, load_coco_clip

    data = load_coco_clip()
    X_bank, X_test, groups_bank, _ = bank_test_split(data.X, data.groups, random_state=0)
    return X_bank, X_test, groups_bank


def test_coco_sn_dbsn_beat_cosine_and_reduce_hubness(coco):
    """SN and DBSN at their defaults, text→image on COCO (250-pair bank)."""
    from skxmr._pairs import split_pairs
    from skxmr.metrics import hubness_skewness, recall_at_k

    X_bank, X_test, _ = coco
    items = split_pairs(X_test)
    rows = {}
    for name, est in (("cosine", CosineSimilarity()), ("SN", SinkhornNormalizer()),
                      ("DBSN", DualBankSinkhornNormalizer())):
        S = est.fit(X_bank).decision_function(X_test)
        rows[name] = (recall_at_k(S, items.relevance, k=1), hubness_skewness(S, k=10))
    print("\nCOCO text->image, 250-pair bank / 250 test pairs")
    print(f"{'method':8s} {'R@1':>6s} {'skew(N10)':>10s}")
    for name, (r1, skew) in rows.items():
        print(f"{name:8s} {r1:6.1f} {skew:10.2f}")
    for name in ("SN", "DBSN"):
        assert rows[name][0] > rows["cosine"][0]
        assert rows[name][1] < rows["cosine"][1]


@pytest.mark.parametrize("direction", ["q2g", "g2q"])
def test_coco_grid_search_story(coco, direction):
    """Tune τ and α on the bank pairs only (grouped CV), refit, score unseen pairs."""
    from skxmr.metrics import make_retrieval_scorer

    X_bank, X_test, groups_bank = coco
    search = GridSearchCV(
        SinkhornNormalizer(direction=direction),
        {"temperature": [0.01, 0.03], "strength": [0.5, 1.0]},
        scoring=make_retrieval_scorer("recall", k=1),
        cv=GroupKFold(2),
    )
    search.fit(X_bank, groups=groups_bank)
    best = search.best_estimator_
    assert best.direction == direction
    # refit=True: the best estimator's banks are the whole bank.
    cos_bank = CosineSimilarity(direction=direction).fit(X_bank)
    np.testing.assert_array_equal(best.query_bank_, cos_bank.query_bank_)
    test_r1 = make_retrieval_scorer("recall", k=1)(best, X_test)
    cosine_r1 = cos_bank.score(X_test)
    print(f"\n{direction}: best {search.best_params_}, CV R@1 {search.best_score_:.1f}, "
          f"test R@1 {test_r1:.1f} (cosine {cosine_r1:.1f})")
    assert 0 <= test_r1 <= 100
    assert test_r1 == pytest.approx(best.score(X_test))
    # Tuned on the bank alone, it does not fall below plain cosine on test.
    assert test_r1 >= cosine_r1


def test_streamed_float32_and_blocks():
    """Streamed float32 products (half the cost) stay within float32 accuracy
    of the float64 potentials; DBSN's column blocks equal stacked columns."""
    from skxmr._ot._streamed import _embedding_potentials

    rng = np.random.default_rng(5)
    bank, G, Bg = unit_rows(rng, 90, 32), unit_rows(rng, 60, 32), unit_rows(rng, 40, 32)
    h, log = sinkhorn_potentials_from_embeddings(bank, np.vstack([G, Bg]), 0.02, 10)
    assert not log["streamed"]
    h32, log32 = sinkhorn_potentials_from_embeddings(
        bank.astype(np.float32), np.vstack([G, Bg]).astype(np.float32), 0.02, 10,
        working_memory=0.002,
    )
    assert log32["streamed"] and not log32["log_domain"]
    # |Δh| ≈ τ · (float32 product error / τ): a few 1e-7
    np.testing.assert_allclose(h32, h, rtol=0, atol=2e-6)
    out = _embedding_potentials(bank, [G, Bg], 0.02, 10, None, working_memory=0.002,
                                n_jobs=None)
    assert out[5]  # streamed
    np.testing.assert_allclose(-0.02 * out[0], h, rtol=0, atol=1e-12)


def test_streamed_error_is_that_of_the_iterate_before_the_last():
    """A streamed pass costs a matrix product per entry, so the streamed
    solver reports the row-marginal error it measured for free in its last
    pass: the error of iterate T-1 (a stored matrix reports iterate T's)."""
    rng = np.random.default_rng(6)
    bank, cols = unit_rows(rng, 70), unit_rows(rng, 50)
    for T in (2, 5):
        _, log_s = sinkhorn_potentials_from_embeddings(bank, cols, 0.05, T,
                                                       working_memory=0.005)
        _, log_d = sinkhorn_potentials(bank @ cols.T, 0.05, T - 1)
        assert log_s["streamed"]
        np.testing.assert_allclose(log_s["marginal_error"], log_d["marginal_error"],
                                   rtol=1e-9)
    _, log_1 = sinkhorn_potentials_from_embeddings(bank, cols, 0.05, 1, working_memory=0.005)
    _, log_d = sinkhorn_potentials(bank @ cols.T, 0.05, 1)  # T=1: one extra pass
    np.testing.assert_allclose(log_1["marginal_error"], log_d["marginal_error"], rtol=1e-9)


@pytest.mark.parametrize("tau", [0.02, 1e-3])
def test_streamed_peak_memory_within_budget(tau):
    """Nothing bank × gallery is stored: traced peak <= budget + O(n) vectors,
    while the dense matrix would be 30× the budget."""
    import tracemalloc

    rng = np.random.default_rng(7)
    bank = unit_rows(rng, 400, 32).astype(np.float32)
    cols = unit_rows(rng, 6000, 32).astype(np.float32)
    budget = 0.6  # MiB; the float64 matrix is 18.3 MiB
    tracemalloc.start()
    _, log = sinkhorn_potentials_from_embeddings(bank, cols, tau, 3, working_memory=budget)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert log["streamed"] and log["log_domain"] == (tau < 0.01)
    # scalings, accumulators and log-sum-exp temporaries (n-vectors)
    vectors = 16 * 8 * (400 + 6000) / 2**20
    assert peak <= budget + vectors, peak


@pytest.mark.parametrize("make", [
    lambda: SinkhornNormalizer(temperature=1e-39, working_memory=1e-3),  # streamed
    lambda: InvertedSoftmax(temperature=1e-39),
])
def test_float32_products_never_overflow(make):
    """Products pre-scaled by 1/τ switch to float64 when float32 would overflow."""
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    S = make().fit(X_bank.astype(np.float32)).decision_function(X_test.astype(np.float32))
    assert S.dtype == np.float32 and np.all(np.isfinite(S))


# ------------------------------------------------------ process safety
class _FailingProduct:
    """A block source that fails inside the worker (module level: picklable)."""

    dtype = np.dtype(np.float64)

    def __call__(self, rows, out):
        raise RuntimeError("worker failure")


@pytest.mark.parametrize("cls, tau", [(SinkhornNormalizer, 0.05),
                                      (DualBankSinkhornNormalizer, 1e-3)])
def test_streamed_under_loky_equals_serial(cls, tau):
    """Every chunked task is a module-level function with its arrays passed as
    arguments: loky workers can run streamed SN/DBSN (scaling and log
    domain) and give the serial result."""
    from joblib import parallel_backend

    X_bank, X_test = make_pairs(60, seed=1), make_pairs(40, seed=2)
    serial = cls(temperature=tau, working_memory=0.005).fit(X_bank)
    S = serial.decision_function(X_test)
    with parallel_backend("loky"):
        S_loky = cls(temperature=tau, working_memory=0.005, n_jobs=2).fit(
            X_bank).decision_function(X_test)
    np.testing.assert_allclose(S_loky, S, rtol=0, atol=1e-12)


def test_worker_failure_raises_and_never_hangs():
    import threading

    from joblib import parallel_backend

    from skxmr._ot._streamed import _streamed_scaling

    a, b = np.full(20, 1 / 20), np.full(10, 1 / 10)
    outcome = []

    def call():
        try:
            with parallel_backend("loky"):
                _streamed_scaling(_FailingProduct(), 20, 10, 0.1, a, b, 3, None,
                                  working_memory=0.0002, n_jobs=2)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            outcome.append(e)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "the failing streamed solve hung"
    assert len(outcome) == 1 and "worker failure" in str(outcome[0])


# ------------------------------------------- POT's solvers at small τ
@pytest.mark.parametrize("cls", [SinkhornNormalizer, DualBankSinkhornNormalizer])
@pytest.mark.parametrize("method", ["sinkhorn", "sinkhorn_stabilized"])
@pytest.mark.parametrize("tau", [1e-3, 1e-8])
def test_pot_scaling_solvers_hand_over_where_they_underflow(cls, method, tau):
    """POT's scaling-domain solvers underflow at small τ ("sinkhorn": finite,
    wrong top-1; "sinkhorn_stabilized": NaN): they warn and run POT's
    log-domain solver, so scores, rankings and the index equal "auto"'s."""
    from skxmr import unpair
    from skxmr.datasets import make_retrieval_problem as m

    Xb = m(n_pairs=60, n_features=8, random_state=0, dtype=np.float64).X
    Xt = m(n_pairs=30, n_features=8, random_state=1, dtype=np.float64).X
    Q, G = unpair(Xt)
    ref = cls(temperature=tau).fit(Xb).decision_function(Xt)
    est = cls(temperature=tau, solver=method).fit(Xb)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        S = est.decision_function(Xt)
        top = est.index(G).kneighbors(Q, n_neighbors=1, return_distance=False)
    assert np.all(np.isfinite(S))
    np.testing.assert_array_equal(S.argmax(axis=1), ref.argmax(axis=1))
    np.testing.assert_array_equal(top[:, 0], ref.argmax(axis=1))
    handed_over = [w for w in caught if issubclass(w.category, ConvergenceWarning)
                   and "sinkhorn_log" in str(w.message)]
    if method == "sinkhorn":  # detected before the solve; POT's log-domain solution
        assert handed_over and "'sinkhorn'" in str(handed_over[0].message)
        np.testing.assert_allclose(S, cls(temperature=tau, solver="sinkhorn_log").fit(
            Xb).decision_function(Xt), rtol=0, atol=1e-12)


# ------------------------------------------------- stored kernel precision
def test_float32_kernel_by_default_float64_one_parameter_away():
    rng = np.random.default_rng(3)
    bank, cols = unit_rows(rng, 90, 32), unit_rows(rng, 70, 32)
    h64, _ = sinkhorn_potentials_from_embeddings(bank, cols, 0.02, 10)
    b32, c32 = bank.astype(np.float32), cols.astype(np.float32)
    h32, log = sinkhorn_potentials_from_embeddings(b32, c32, 0.02, 10)
    assert not log["streamed"] and not log["log_domain"]
    # float32 products and kernel: within 1e-6 of max |h| ...
    assert 0 < np.max(np.abs(h32 - h64)) < 1e-6 * np.max(np.abs(h64))
    # ... float64 one parameter away: the float64 inputs' potentials exactly.
    h32_64, _ = sinkhorn_potentials_from_embeddings(b32, c32, 0.02, 10, precision="float64")
    h_ref, _ = sinkhorn_potentials_from_embeddings(b32.astype(np.float64),
                                                   c32.astype(np.float64), 0.02, 10)
    np.testing.assert_array_equal(h32_64, h_ref)
    S = SinkhornNormalizer(temperature=0.02, precision="float64").fit(
        make_pairs(40, seed=1).astype(np.float32))
    assert S.decision_function(make_pairs(20, seed=2).astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("cls", [SinkhornNormalizer, DualBankSinkhornNormalizer])
def test_kernel_buffer_reused_and_never_pickled(cls):
    import pickle

    from skxmr.hubness._sinkhorn import _BUFFERS

    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    est = cls(temperature=0.05).fit(X_bank)
    S = est.decision_function(X_test)
    data = _BUFFERS[est]._data
    assert data is not None
    index = est.index(X_test[:, 8:])  # the same buffer: no fresh pages
    assert _BUFFERS[est]._data is data
    np.testing.assert_array_equal(est.decision_function(X_test), S)
    clone = pickle.loads(pickle.dumps(est))
    assert clone not in _BUFFERS or _BUFFERS[clone]._data is None
    np.testing.assert_array_equal(clone.decision_function(X_test), S)
    assert index.kneighbors(X_test[:, :8], n_neighbors=2, return_distance=False).shape == (25, 2)


# ------------------------------------------------ streamed pass, float32
@pytest.mark.parametrize("tau", [0.05, 0.01])
def test_streamed_float32_work_within_1e6_of_float64(tau):
    """The streamed pass works float32 products in float32 (first pass
    included) where a row spans at most FLOAT32_KERNEL_MAX_SPREAD, float64
    elsewhere: half the bank is scaled so that its rows stay within it and
    the other half exceeds it at τ = 0.01 (both kinds of sub-block in one
    solve); the potentials stay within 1e-6 of max |h| of float64's."""
    rng = np.random.default_rng(11)
    bank, cols = unit_rows(rng, 300, 32), unit_rows(rng, 2000, 32)
    bank[::2] *= 0.25
    h64, log64 = sinkhorn_potentials_from_embeddings(bank, cols, tau, 10, working_memory=0.05)
    h32, log32 = sinkhorn_potentials_from_embeddings(
        bank.astype(np.float32), cols.astype(np.float32), tau, 10, working_memory=0.05)
    assert log32["streamed"] and log64["streamed"] and not log32["log_domain"]
    assert np.max(np.abs(h32 - h64)) < 1e-6 * np.max(np.abs(h64))


def test_split_runs_balanced():
    """Runs of equal length (to a row) and chunks within a run too: no thread
    waits for another's extra chunk (8,000 rows in chunks of 1,650 used to
    give runs of 3 and 2 chunks)."""
    from skxmr._ot._common import split_runs

    for n_rows, chunk, n_workers in [(8000, 1650, 2), (10, 3, 4), (7, 100, 2), (1, 1, 2)]:
        runs = split_runs(n_rows, chunk, n_workers)
        assert runs[0][0] == 0 and runs[-1][1] == n_rows
        lengths = [hi - lo for lo, hi, _ in runs]
        assert len(runs) <= n_workers and max(lengths) - min(lengths) <= 1
        for (lo, hi, chunks), nxt in zip(runs, runs[1:] + [(n_rows, None, None)]):
            assert hi == nxt[0] and chunks[0].start == lo and chunks[-1].stop == hi
            sizes = [s.stop - s.start for s in chunks]
            assert max(sizes) <= chunk and max(sizes) - min(sizes) <= 1
            assert all(s.stop == t.start for s, t in zip(chunks, chunks[1:]))


def test_streamed_chunk_buffers_reused_across_calls():
    """The streamed pass's chunk buffers come from the estimator's kernel
    buffer (written in place, no fresh pages on every call)."""
    from skxmr.hubness._sinkhorn import _BUFFERS

    X_bank, X_test = make_pairs(60, seed=1), make_pairs(30, seed=2)
    est = SinkhornNormalizer(temperature=0.05, working_memory=0.004).fit(X_bank)
    S = est.decision_function(X_test)
    data = _BUFFERS[est]._data
    assert data is not None and 0 < _BUFFERS[est].nbytes <= 0.004 * 2**20
    np.testing.assert_array_equal(est.decision_function(X_test), S)
    assert _BUFFERS[est]._data is data
    ref = SinkhornNormalizer(temperature=0.05).fit(X_bank).decision_function(X_test)
    np.testing.assert_allclose(S, ref, rtol=0, atol=1e-10)


# ------------------------------------------------------------ allow_tf32
@pytest.mark.parametrize("cls", [SinkhornNormalizer, DualBankSinkhornNormalizer])
def test_allow_tf32_validated_pickles_and_is_a_no_op_on_the_cpu(cls):
    """TF32 is a CUDA matter: on numpy (and CPU tensors) the scores are
    unchanged; the parameter is a validated bool that round-trips."""
    import pickle

    from sklearn.base import clone
    from sklearn.utils._param_validation import InvalidParameterError

    X_bank, X_test = make_pairs(40, seed=1), make_pairs(25, seed=2)
    for X in (X_bank, X_bank.astype(np.float32)):
        ref = cls(temperature=0.05).fit(X).decision_function(X_test.astype(X.dtype))
        est = cls(temperature=0.05, allow_tf32=True).fit(X)
        np.testing.assert_array_equal(est.decision_function(X_test.astype(X.dtype)), ref)
    assert clone(est).get_params()["allow_tf32"] is True
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(est)).decision_function(X_test.astype(np.float32)), ref)
    for bad in ("yes", 1, None):
        with pytest.raises(InvalidParameterError, match="allow_tf32"):
            cls(allow_tf32=bad).fit(X_bank)
    Q, G = X_test[:, :8], X_test[:, 8:]
    score = sinkhorn_scores if cls is SinkhornNormalizer else (
        lambda *a, **k: dual_bank_sinkhorn_scores(*a, X_bank[:, 8:], **k))
    np.testing.assert_array_equal(score(Q, G, X_bank[:, :8], temperature=0.05, allow_tf32=True),
                                  score(Q, G, X_bank[:, :8], temperature=0.05))


def test_tf32_switch_only_on_cuda_and_restored(monkeypatch):
    """The torch backend turns TF32 on for CUDA tensors only, and restores
    torch's switch after (checked on a stand-in CUDA tensor: no GPU here)."""
    torch = pytest.importorskip("torch")
    from skxmr.utils._backend import get_backend

    nx = get_backend(x=torch.ones(2))
    flags = torch.backends.cuda.matmul
    name = "fp32_precision" if hasattr(flags, "fp32_precision") else "allow_tf32"
    before = getattr(flags, name)
    with nx.tf32_matmul(torch.ones(2)):
        assert getattr(flags, name) == before  # CPU tensor: untouched

    class CudaLike:
        device = torch.device("cuda")

    with nx.tf32_matmul(CudaLike()):
        assert getattr(flags, name) in ("tf32", True)
    assert getattr(flags, name) == before


def test_kernel_buffer_arrays_aligned():
    """A KernelBuffer's arrays start on a 64-byte boundary (vector loads and
    stores; a large np.empty starts 16 bytes past a page), whatever their
    size, also after the buffer grows."""
    from skxmr._ot import KernelBuffer

    buffer = KernelBuffer()
    for shape in [(3, 5), (1000, 3000), (7, 11)]:
        with buffer.array(shape, np.float32) as K:
            assert K.shape == shape and K.ctypes.data % 64 == 0
            K[...] = 1.0  # within the buffer
    assert buffer.nbytes == 4 * 1000 * 3000
