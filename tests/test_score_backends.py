"""The score estimators, their two-view forms and GalleryIndex on every backend.

Each case runs on numpy float64/float32 and torch (CPU, and CUDA where
present) float64/float32 under ``array_api_dispatch``; the result must come
back in the input's namespace, dtype and device, equal to the numpy float64
path to 1e-10 in float64 and with the same top-10 rankings in float32.
"""

import numpy as np
import pytest
from sklearn.base import clone

from skxmr import CSLS, CosineSimilarity, DBNorm, DualSoftmax, InvertedSoftmax, QBNorm
from skxmr.hubness import (
    csls_scores,
    dbnorm_scores,
    dual_softmax_scores,
    inverted_softmax_scores,
    qb_norm_scores,
)
from skxmr.similarity import cosine_scores

from .conftest import make_pairs

ESTIMATORS = [
    CosineSimilarity(),
    InvertedSoftmax(),
    QBNorm(n_neighbors=2),
    DualSoftmax(),
    CSLS(n_neighbors=5),
    DBNorm(),
    DBNorm(dynamic=True),
]


def _ids(est):
    return type(est).__name__ + ("-dynamic" if getattr(est, "dynamic", False) else "")


def _check_same(backend, got, ref, k=10):
    """float64: equal to 1e-10; float32: the same top-k of every row."""
    got = backend.to_numpy(got)
    assert got.dtype == np.dtype(backend.dtype)
    if backend.dtype == "float64":
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    else:
        top = np.argsort(-ref, axis=1, kind="stable")[:, :k]
        top_got = np.argsort(-got.astype(np.float64), axis=1, kind="stable")[:, :k]
        assert np.mean(top == top_got) > 0.99  # near-ties may swap in float32
        np.testing.assert_allclose(got, ref, atol=1e-4)


def _problem(n_bank=60, n_test=40, seed=0):
    return make_pairs(n_bank, seed=seed + 1), make_pairs(n_test, seed=seed + 2)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_estimator_on_backend(backend, estimator):
    X_bank, X_test = _problem()
    ref = clone(estimator).fit(X_bank).decision_function(X_test)
    with backend.dispatch():
        est = clone(estimator).fit(backend.asarray(X_bank))
        backend.to_numpy(est.query_bank_)  # the fitted banks stay on the device
        S = est.decision_function(backend.asarray(X_test))
        S2 = est.score_matrix(backend.asarray(X_test[:, :8]), backend.asarray(X_test[:, 8:]))
    _check_same(backend, S, ref)
    _check_same(backend, S2, ref)


@pytest.mark.parametrize("estimator", [e for e in ESTIMATORS if not e._transductive], ids=_ids)
def test_index_on_backend(backend, estimator):
    X_bank, X_test = _problem()
    Q, G = X_test[:, :8], X_test[:, 8:]
    ref_index = clone(estimator).fit(X_bank).index(G)
    ref = ref_index.score(Q)
    ref_scores, ref_idx = ref_index.kneighbors(Q, n_neighbors=10)
    with backend.dispatch():
        est = clone(estimator).fit(backend.asarray(X_bank))
        index = est.index(backend.asarray(G))
        for value in index.state_.values():
            backend.to_numpy(value)  # per-gallery statistics stay on the device
        S = index.score(backend.asarray(Q))
        scores, idx = index.kneighbors(backend.asarray(Q), n_neighbors=10)
    _check_same(backend, S, ref)
    idx = backend.to_numpy(idx)
    scores = backend.to_numpy(scores)
    if backend.dtype == "float64":
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-10, atol=1e-10)
    else:
        assert np.mean(idx == ref_idx) > 0.99
    assert np.all(np.diff(scores, axis=1) <= 0)


def _two_view_cases():
    return [
        ("cosine", lambda Q, G, Bq, Bg: cosine_scores(Q, G)),
        ("IS", lambda Q, G, Bq, Bg: inverted_softmax_scores(Q, G, Bq)),
        ("QB-Norm", lambda Q, G, Bq, Bg: qb_norm_scores(Q, G, Bq, n_neighbors=2)),
        ("DSL", lambda Q, G, Bq, Bg: dual_softmax_scores(Q, G)),
        ("CSLS", lambda Q, G, Bq, Bg: csls_scores(Q, G, Bq, Bg, n_neighbors=5)),
        ("DBNorm", lambda Q, G, Bq, Bg: dbnorm_scores(Q, G, Bq, Bg, dynamic=True)),
    ]


@pytest.mark.parametrize("name,func", _two_view_cases(), ids=[c[0] for c in _two_view_cases()])
def test_two_view_on_backend(backend, name, func):
    X_bank, X_test = _problem()
    arrays = [X_test[:, :8], X_test[:, 8:], X_bank[:, :8], X_bank[:, 8:]]
    ref = func(*arrays)
    with backend.dispatch():
        S = func(*[backend.asarray(a) for a in arrays])
    _check_same(backend, S, ref)


def test_ties_break_to_the_lower_column_on_every_backend(backend):
    G = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    X_bank = make_pairs(20, d=2, seed=3)
    with backend.dispatch():
        est = CosineSimilarity().fit(backend.asarray(X_bank))
        idx = est.index(backend.asarray(G)).kneighbors(
            backend.asarray([[1.0, 0.0]]), n_neighbors=3, return_distance=False)
    np.testing.assert_array_equal(backend.to_numpy(idx), [[0, 1, 3]])


def test_mixed_backends_name_both():
    torch = pytest.importorskip("torch")
    import sklearn

    X_bank, X_test = _problem()
    est = InvertedSoftmax().fit(X_bank)
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match="queries and the fitted banks .*numpy"):
            est.score_matrix(torch.as_tensor(X_test[:, :8]), X_test[:, 8:])
        t_est = InvertedSoftmax().fit(torch.as_tensor(X_bank))
        index = t_est.index(torch.as_tensor(X_test[:, 8:]))
        with pytest.raises(ValueError, match="gallery and the fitted banks"):
            t_est.index(X_test[:, 8:])
        with pytest.raises(ValueError, match="queries and the fitted banks"):
            index.kneighbors(X_test[:, :8])
        with pytest.raises(ValueError, match="query_bank and gallery_bank"):
            csls_scores(X_test[:, :8], X_test[:, 8:], X_bank[:, :8],
                        torch.as_tensor(X_bank[:, 8:]))
        with pytest.raises(ValueError, match="faiss"):
            t_est.index(torch.as_tensor(X_test[:, 8:]), approximate=True)


def test_top_k_with_many_ties_matches_numpy(backend):
    """Rows tied across the k-th value keep the lowest columns, as on numpy."""
    rng = np.random.default_rng(5)
    S = rng.integers(0, 4, size=(30, 50)).astype(float)  # many exact ties
    from skxmr.utils._topk import sorted_top_k

    ref_vals, ref_idx = sorted_top_k(S, 7)
    vals, idx = sorted_top_k(backend.asarray(S), 7)
    np.testing.assert_array_equal(backend.to_numpy(idx), ref_idx)
    np.testing.assert_array_equal(backend.to_numpy(vals), ref_vals)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=_ids)
def test_score_on_backend(backend, estimator):
    X_bank, X_test = _problem()
    ref = clone(estimator).fit(X_bank).score(X_test)
    with backend.dispatch():
        got = clone(estimator).fit(backend.asarray(X_bank)).score(backend.asarray(X_test))
    assert got == pytest.approx(ref)
