"""The one dtype policy and the backend seam, on every backend of the list."""

import numpy as np
import pytest
import sklearn

import skxmr
from skxmr.utils import _backend

from .conftest import make_pairs


def test_float16_in_float32_out():
    X = make_pairs(n=20, d=4)
    X16 = X.astype(np.float16)
    est = skxmr.CSLS(n_neighbors=3).fit(X16)
    S = est.decision_function(X16)
    assert S.dtype == np.float32
    np.testing.assert_allclose(
        S, skxmr.CSLS(n_neighbors=3).fit(X16.astype(np.float32))
        .decision_function(X16.astype(np.float32)))
    assert skxmr.pair(X16[:, :4], X16[:, 4:]).dtype == np.float32
    Q, G = skxmr.unpair(X16)
    assert Q.dtype == G.dtype == np.float32


def test_torch_float32_without_dispatch_is_float32_numpy():
    torch = pytest.importorskip("torch")
    X = torch.as_tensor(make_pairs(n=20, d=4), dtype=torch.float32)
    S = skxmr.InvertedSoftmax().fit(X).decision_function(X)
    assert isinstance(S, np.ndarray) and S.dtype == np.float32
    assert skxmr.pair(X[:, :4], X[:, 4:]).dtype == np.float32


def test_pair_keeps_the_backend(backend):
    Q, G = skxmr.unpair(make_pairs(n=6, d=3))
    with backend.dispatch():
        X = skxmr.pair(backend.asarray(Q), backend.asarray(G))
        np.testing.assert_allclose(backend.to_numpy(X), np.hstack([Q, G]).astype(backend.dtype))


def test_pair_mixed_precision_is_float64(backend):
    Q, G = skxmr.unpair(make_pairs(n=6, d=3))
    with backend.dispatch():
        G64 = _backend.astype(backend.asarray(G), "float64")
        X = skxmr.pair(backend.asarray(Q), G64)
        assert _backend.dtype_name(X) == "float64"


def test_unique_rows_on_the_backend(backend):
    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-0.0, 1.0], [2.0, 2.0]])
    with backend.dispatch():
        U, inv = skxmr._pairs.unique_rows(backend.asarray(A))
        U = backend.to_numpy(U)
    np.testing.assert_array_equal(U, [[1, 0], [0, 1], [2, 2]])
    np.testing.assert_array_equal(inv, [0, 1, 0, 1, 2])
    assert isinstance(inv, np.ndarray)


def test_row_primitives_on_the_backend(backend, rng):
    W = rng.integers(0, 4, size=(7, 9)).astype(backend.dtype)  # many ties
    with backend.dispatch():
        Wb = backend.asarray(W)
        nx = _backend.get_backend(W=Wb)
        vals, idx = nx.row_top(Wb, 3)
        vals, idx = backend.to_numpy(vals), backend.to_numpy(idx)
        srt = nx.sort(Wb, axis=1)
        counts = backend.to_numpy(nx.count_at_most(srt, Wb))
        order = backend.to_numpy(nx.stable_argsort(Wb, axis=1, descending=True))
    np.testing.assert_array_equal(np.sort(vals, axis=1), np.sort(W, axis=1)[:, -3:])
    np.testing.assert_array_equal(np.take_along_axis(W, idx, 1), vals)
    np.testing.assert_array_equal(counts, (W[:, None, :] <= W[:, :, None]).sum(-1))
    np.testing.assert_array_equal(order, np.argsort(-W, axis=1, kind="stable"))


def test_in_place_primitives_on_the_backend(backend, rng):
    """``dot_into``, ``shift_exp_``, ``row_min_max``, ``host_view``: the same
    values on every backend; numpy and torch (CPU) write into the given
    array and view host memory, the others return new arrays."""
    A, Bt = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    E = rng.standard_normal((5, 4))
    E32 = E.astype(backend.dtype)  # before E is written over (numpy float64: E itself)
    writes = backend.name in ("numpy", "torch")
    with backend.dispatch():
        Ab, Bb, Eb = (backend.asarray(X) for X in (A, Bt, E))
        nx = _backend.get_backend(E=Eb)
        out = backend.asarray(np.zeros((5, 4)))
        res = nx.dot_into(Ab, Bb, out)
        assert (res is out) == writes
        np.testing.assert_allclose(backend.to_numpy(res), (A.astype(backend.dtype) @ Bt.astype(
            backend.dtype)), rtol=1e-5)
        mn, mx = nx.row_min_max(Eb)
        K = nx.shift_exp_(Eb, mx)
        assert (K is Eb) == writes
        np.testing.assert_array_equal(backend.to_numpy(mn), E32.min(axis=1))
        np.testing.assert_allclose(backend.to_numpy(K),
                                   np.exp(E32 - E32.max(axis=1, keepdims=True)), rtol=1e-6)
        host = np.arange(6.0, dtype=backend.dtype)
        view = nx.host_view(host, Eb)
    if view is not None:
        host[0] = 42.0
        assert float(view[0]) == 42.0
    assert (view is not None) == (writes and str(backend.device or "cpu") == "cpu")


def test_sorted_top_k_ties_to_the_lower_column(backend):
    from skxmr.utils._topk import sorted_top_k

    S = np.array([[1.0, 3.0, 3.0, 3.0, 0.0], [2.0, 2.0, 1.0, 5.0, 2.0]])
    with backend.dispatch():
        vals, idx = sorted_top_k(backend.asarray(S), 2)
        vals, idx = backend.to_numpy(vals), backend.to_numpy(idx)
    np.testing.assert_array_equal(idx, [[1, 2], [3, 0]])
    np.testing.assert_array_equal(vals, [[3, 3], [5, 2]])


def test_get_backend_names_both_arrays_on_mismatch(backend):
    if backend.name == "numpy":
        pytest.skip("one library")
    with backend.dispatch(), pytest.raises(ValueError, match="queries and gallery"):
        _backend.get_backend(queries=np.ones((2, 2)), gallery=backend.asarray(np.ones((2, 2))))


def test_numpy_estimators_take_tensors_under_dispatch():
    """Estimators without array API support compute in numpy, also under
    dispatch: tensors are converted, the result is numpy in the input's dtype."""
    torch = pytest.importorskip("torch")
    from sklearn.utils import get_tags

    from .test_common import ESTIMATORS

    X = make_pairs(40, d=4)
    T = torch.as_tensor(X, dtype=torch.float32)
    numpy_only = [e for e in ESTIMATORS if not get_tags(e).array_api_support]
    assert numpy_only
    for est in numpy_only:
        with sklearn.config_context(array_api_dispatch=True):
            fitted = sklearn.base.clone(est).fit(T)
            out = (fitted.decision_function(T) if hasattr(fitted, "decision_function")
                   else fitted.transform(T))
        assert isinstance(out, np.ndarray) and out.dtype == np.float32, type(est).__name__
