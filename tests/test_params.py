"""The parameter vocabulary: one constraint per shared parameter, one meaning
of ``working_memory``, and the renames' deprecation cycle."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

import skxmr
from skxmr import (
    CSLS,
    DBNorm,
    DistributionNormalization,
    DualBankSinkhornNormalizer,
    DualSoftmax,
    GaussianEmbedding,
    InvertedSoftmax,
    InvGC,
    LocalScaling,
    MutualProximity,
    NearestNeighborNormalization,
    QBNorm,
    SinkhornNormalizer,
    pair,
)
from skxmr._ot import sinkhorn_potentials, sinkhorn_potentials_from_embeddings
from skxmr.alignment import CauchySchwarzAlignment
from skxmr.calibration import js_divergence
from skxmr.hubness import (
    dual_bank_sinkhorn_normalize,
    dual_bank_sinkhorn_scores,
    dual_softmax_scores,
    inverted_softmax_scores,
    qb_norm_scores,
    sinkhorn_normalize,
    sinkhorn_scores,
)
from skxmr.hubness._base import HubnessEstimator
from skxmr.utils import _params

HUBNESS = [InvertedSoftmax, QBNorm, DualSoftmax, CSLS, DBNorm, NearestNeighborNormalization,
           DistributionNormalization, MutualProximity, LocalScaling, SinkhornNormalizer,
           DualBankSinkhornNormalizer]


def _pairs(n=30, d=8, seed=0):
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((n, d))
    return pair(Q, Q + 0.3 * rng.standard_normal((n, d)))


# ------------------------------------------------------------ temperature
BAD_TEMPERATURES = [0.0, -1.0, 1e-309, 1.1e6, 1e308, np.inf, np.nan, True]
M = np.random.default_rng(0).random((4, 5))
B, C = np.random.default_rng(1).random((4, 3)), np.random.default_rng(2).random((5, 3))
TEMPERATURE_USERS = {
    "IS": lambda t: InvertedSoftmax(temperature=t).fit(_pairs()),
    "QB-Norm": lambda t: QBNorm(temperature=t).fit(_pairs()),
    "DSL": lambda t: DualSoftmax(temperature=t).fit(_pairs()),
    "DBNorm q": lambda t: DBNorm(query_temperature=t).fit(_pairs()),
    "DBNorm g": lambda t: DBNorm(gallery_temperature=t).fit(_pairs()),
    "SN": lambda t: SinkhornNormalizer(temperature=t).fit(_pairs()),
    "DBSN": lambda t: DualBankSinkhornNormalizer(temperature=t).fit(_pairs()),
    "CS": lambda t: CauchySchwarzAlignment(n_components=2, temperature=t).fit(_pairs()),
    "is_scores": lambda t: inverted_softmax_scores(B, C, B, temperature=t),
    "dsl_scores": lambda t: dual_softmax_scores(B, C, temperature=t),
    "sn_scores": lambda t: sinkhorn_scores(B, C, B, temperature=t),
    "potentials": lambda t: sinkhorn_potentials(M, temperature=t),
    "potentials_emb": lambda t: sinkhorn_potentials_from_embeddings(B, C, temperature=t),
}


@pytest.mark.parametrize("user", TEMPERATURE_USERS, ids=str)
@pytest.mark.parametrize("tau", BAD_TEMPERATURES, ids=repr)
def test_one_temperature_constraint(user, tau):
    """Every softmax/Sinkhorn method refuses the same temperatures, by name:
    SN took 1e-309 and sinkhorn_potentials True; all took 1e308 (NaN/inf)."""
    with pytest.raises(InvalidParameterError, match="temperature"):
        TEMPERATURE_USERS[user](tau)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make", [
    lambda t: InvertedSoftmax(temperature=t), lambda t: QBNorm(temperature=t),
    lambda t: DualSoftmax(temperature=t),
    lambda t: DBNorm(query_temperature=t, gallery_temperature=t, dynamic=True),
    lambda t: SinkhornNormalizer(temperature=t), lambda t: DualBankSinkhornNormalizer(temperature=t),
])
def test_largest_temperature_gives_finite_scores(make, dtype):
    X = _pairs().astype(dtype)
    S = make(_params.MAX_TEMPERATURE).fit(X[:20]).decision_function(X[20:])
    assert S.dtype == dtype and np.all(np.isfinite(S))


def test_bools_refused_for_shared_numbers():
    for params in ({"n_jobs": True}, {"strength": True}, {"n_neighbors": True}):
        with pytest.raises(InvalidParameterError, match=next(iter(params))):
            CSLS(**params).fit(_pairs())
    with pytest.raises(InvalidParameterError, match="'n_jobs' parameter .* must be an int or None"):
        sinkhorn_potentials(M, n_jobs=1.5)


def test_shared_constraints_are_the_vocabulary():
    for cls in HUBNESS:
        assert issubclass(cls, HubnessEstimator)
        constraints = cls._parameter_constraints
        assert constraints["strength"] is _params.STRENGTH
        assert constraints["n_jobs"] is _params.N_JOBS
        assert constraints["direction"] is _params.DIRECTION
        for name in ("temperature", "query_temperature", "gallery_temperature"):
            if name in constraints:
                # "auto" exactly where the estimator has a rule for it
                auto = name in cls._auto_rules
                assert constraints[name] is (
                    _params.TEMPERATURE_OR_AUTO if auto else _params.TEMPERATURE), (cls, name)
        if "n_neighbors" in cls._auto_rules:
            assert constraints["n_neighbors"] is _params.N_NEIGHBORS_OR_AUTO
    assert skxmr.CosineSimilarity._parameter_constraints["n_jobs"] is _params.N_JOBS
    assert InvGC._parameter_constraints["working_memory"] is _params.WORKING_MEMORY
    assert CauchySchwarzAlignment._parameter_constraints["temperature"] is _params.TEMPERATURE
    from skxmr._pairs import DIRECTIONS
    from skxmr.benchmark import _table
    from skxmr.metrics import ranking

    assert _table.DIRECTIONS is DIRECTIONS and ranking.DIRECTIONS is DIRECTIONS


def test_param_doc_is_spliced_once():
    """The shared entries reach every docstring from the one definition."""
    import inspect

    def spliced(name, cls):
        # As the entry reads in the cleaned docstring (Python 3.13 compiles
        # docstrings without their indentation; fill_doc follows it).
        entry = inspect.cleandoc("Parameters\n    " + _params.param_doc(name))
        return entry.split("\n", 1)[1] in inspect.cleandoc(cls.__doc__)

    for cls in HUBNESS + [skxmr.CosineSimilarity, InvGC, skxmr.ProbabilisticCalibration]:
        assert spliced("n_jobs", cls), cls
    assert spliced("working_memory", SinkhornNormalizer)
    assert spliced("working_memory", InvGC)


# --------------------------------------------------------- working_memory
def test_scoring_chunks_obey_working_memory(monkeypatch):
    """The estimator's budget reaches the scoring chunks (it was dropped)."""
    import skxmr._base as base

    seen = []
    real = base.map_row_chunks

    def spy(*args, **kwargs):
        seen.append(kwargs.get("working_memory"))
        return real(*args, **kwargs)

    monkeypatch.setattr(base, "map_row_chunks", spy)
    X = _pairs()
    SinkhornNormalizer(working_memory=3.0).fit(X[:20]).decision_function(X[20:])
    assert seen == [3.0]
    seen.clear()
    InvertedSoftmax().fit(X[:20]).decision_function(X[20:])
    assert seen == [None]  # no parameter: scikit-learn's global budget


def test_scoring_budget_smaller_than_a_row_raises():
    X = _pairs()
    est = SinkhornNormalizer(strength=0.0, working_memory=1e-6).fit(X[:20])
    with pytest.raises(ValueError, match="working_memory"):
        est.decision_function(X[20:])


# ---------------------------------------------------------------- renames
def _future(func, match):
    with pytest.warns(FutureWarning, match=match):
        return func()


def test_qbnorm_k_renamed_n_neighbors():
    X = _pairs()
    new = QBNorm(n_neighbors=3).fit(X[:20]).decision_function(X[20:])
    old = QBNorm(k=3)
    assert clone(old).get_params()["k"] == 3  # clone and get_params round-trip
    got = _future(lambda: old.fit(X[:20]), "'k'.*'n_neighbors'").decision_function(X[20:])
    np.testing.assert_array_equal(got, new)
    assert old.k == 3 and old.n_neighbors == 1  # parameters left as given
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        QBNorm(n_neighbors=3).fit(X[:20])  # the new name is silent
    Q, G, Bq = X[20:, :8], X[20:, 8:], X[:20, :8]
    np.testing.assert_array_equal(
        _future(lambda: qb_norm_scores(Q, G, Bq, k=2), "'k'"),
        qb_norm_scores(Q, G, Bq, n_neighbors=2))


def test_invgc_k_renamed_neighbor_fraction():
    X = _pairs(60)
    new = InvGC(adjacency="local", neighbor_fraction=0.1).fit(X[:40]).transform(X[40:])
    old = _future(lambda: InvGC(adjacency="local", k=0.1).fit(X[:40]), "'neighbor_fraction'")
    np.testing.assert_array_equal(old.transform(X[40:]), new)
    assert clone(old).get_params()["k"] == 0.1


def test_sinkhorn_method_renamed_solver():
    X = _pairs()
    for cls in (SinkhornNormalizer, DualBankSinkhornNormalizer):
        new = cls(solver="sinkhorn_log").fit(X[:20]).decision_function(X[20:])
        old = _future(lambda: cls(method="sinkhorn_log").fit(X[:20]), "'method'.*'solver'")
        np.testing.assert_array_equal(old.decision_function(X[20:]), new)
    with pytest.raises(InvalidParameterError, match="method"):
        SinkhornNormalizer(method="exact").fit(X)


def test_two_view_sinkhorn_functions_renamed():
    rng = np.random.default_rng(0)
    Q, G, Bq, Bg = (rng.standard_normal((n, 8)) for n in (4, 5, 9, 7))
    got = _future(lambda: sinkhorn_normalize(Q, G, Bq, method="sinkhorn_log"), "sinkhorn_scores")
    np.testing.assert_array_equal(got, sinkhorn_scores(Q, G, Bq, solver="sinkhorn_log"))
    got = _future(lambda: dual_bank_sinkhorn_normalize(Q, G, Bq, Bg), "dual_bank_sinkhorn_scores")
    np.testing.assert_array_equal(got, dual_bank_sinkhorn_scores(Q, G, Bq, Bg))


def test_two_view_sinkhorn_dtype_policy_is_the_family_one():
    """SN/DBSN's functions go through _two_view_scores: float32 only if every
    input is (they returned float32 for a float64 bank)."""
    rng = np.random.default_rng(0)
    Q, G, Bq, Bg = (rng.standard_normal((n, 8)) for n in (4, 5, 9, 7))
    f32 = [A.astype(np.float32) for A in (Q, G, Bq, Bg)]
    assert sinkhorn_scores(*f32[:2], Bq).dtype == inverted_softmax_scores(*f32[:2], Bq).dtype
    assert sinkhorn_scores(*f32[:2], Bq).dtype == np.float64
    assert dual_bank_sinkhorn_scores(*f32[:2], Bq, Bg).dtype == np.float64
    assert sinkhorn_scores(*f32[:3]).dtype == np.float32
    assert dual_bank_sinkhorn_scores(*f32).dtype == np.float32


def test_js_n_samples_renamed_n_mc_samples():
    m, v = np.zeros((2, 3)), np.ones((2, 3))
    new = js_divergence(m, v, m + 1, v, n_mc_samples=16, random_state=0)
    old = _future(lambda: js_divergence(m, v, m + 1, v, n_samples=16, random_state=0),
                  "'n_mc_samples'")
    np.testing.assert_array_equal(old, new)
    with pytest.raises(ValueError, match="n_mc_samples=1"):
        js_divergence(m, v, m, v, n_mc_samples=1)


# ------------------------------------------------------- keyword-only
@pytest.mark.parametrize("make, expected", [
    (lambda: QBNorm(0.1, 3), {"temperature": 0.1, "k": 3}),
    (lambda: InvertedSoftmax(0.1, 0.5), {"temperature": 0.1, "strength": 0.5}),
    (lambda: DBNorm(0.1, 0.2, True), {"gallery_temperature": 0.2, "dynamic": True}),
    (lambda: InvGC(0.5, 1.5, "local"), {"r_query": 1.5, "adjacency": "local"}),
    (lambda: SinkhornNormalizer(0.1, 5), {"max_iter": 5}),
    (lambda: LocalScaling("standard", 4), {"n_neighbors": 4}),
    (lambda: GaussianEmbedding("full", None), {"shrinkage": None}),
])
def test_positional_parameters_after_the_first_warn(make, expected):
    est = _future(make, "keyword")
    params = est.get_params()
    assert all(params[k] == v for k, v in expected.items())


def test_keyword_only_signatures():
    import inspect

    for cls in HUBNESS + [InvGC, GaussianEmbedding]:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        assert all(p.kind is p.KEYWORD_ONLY for p in params[1:]), cls
    with pytest.raises(TypeError, match="at most"):
        InvertedSoftmax(0.1, 0.5, None)
