"""The Sinkhorn engine on every array backend (numpy, torch CPU, CUDA where present).

torch cases need ``SCIPY_ARRAY_API=1`` (the ``backend`` fixture skips them,
with the reason, otherwise)."""

import threading
import warnings

import numpy as np
import ot
import pytest
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import threadpool_limits

from skxmr import DualBankSinkhornNormalizer, SinkhornNormalizer
from skxmr.hubness import sinkhorn_scores
from skxmr._ot import _common, sinkhorn_potentials, sinkhorn_potentials_from_embeddings
from skxmr._ot._common import NUMPY_NX, _blas_threads, _check_marginals, _one_blas_thread
from skxmr._ot._generic import nx_sinkhorn, product_source, stored_source
from skxmr._ot._streamed import _embedding_potentials

from skxmr.utils._backend import BACKENDS, get_backend

from .conftest import make_pairs


def unit_rows(rng, n, d=16):
    A = rng.standard_normal((n, d))
    return A / np.linalg.norm(A, axis=1, keepdims=True)


@pytest.fixture
def emb():
    rng = np.random.default_rng(0)
    return unit_rows(rng, 70), unit_rows(rng, 50)


def top10(S):
    return np.argsort(-S, axis=1, kind="stable")[:, :10]


# tau=0.05 and 0.01: scaling domain; 1e-3: log domain (spread/τ > 300)
@pytest.mark.parametrize("tau", [0.05, 0.01, 1e-3])
@pytest.mark.parametrize("working_memory", [None, 0.005])  # stored kernel / chunks
def test_potentials_equal_numpy_on_every_backend(backend, emb, tau, working_memory):
    bank, cols = emb
    M = (bank @ cols.T).astype(backend.dtype)
    h_ref, log_ref = sinkhorn_potentials(M.astype(np.float64), tau, 10,
                                         working_memory=working_memory)
    with backend.dispatch():
        h, log = sinkhorn_potentials(backend.asarray(M), tau, 10, working_memory=working_memory)
    h = backend.to_numpy(h)
    assert h.dtype == np.float64
    backend.to_numpy(log["log_r"])
    # A stored matrix is solved in float64 whatever its dtype.
    np.testing.assert_allclose(h, h_ref, rtol=0, atol=1e-10)
    # Without room for the kernel, numpy's stored-matrix path runs the log
    # domain and the generic one streams the scaling domain: same iterates.
    if working_memory is None or backend.name == "numpy":
        assert log["log_domain"] == log_ref["log_domain"]
    np.testing.assert_allclose(log["marginal_error"], log_ref["marginal_error"], rtol=1e-8)


@pytest.mark.parametrize("tau", [0.05, 1e-3])
def test_streamed_equals_dense_on_every_backend(backend, emb, tau):
    bank, cols = (A.astype(backend.dtype).astype(np.float64) for A in emb)
    h_ref, _ = sinkhorn_potentials(bank @ cols.T, tau, 10)
    B, C = backend.asarray(bank), backend.asarray(cols)
    with backend.dispatch():
        h_d, log_d = sinkhorn_potentials_from_embeddings(B, C, tau, 10)
        h_s, log_s = sinkhorn_potentials_from_embeddings(B, C, tau, 10, working_memory=0.005)
    h_d, h_s = backend.to_numpy(h_d), backend.to_numpy(h_s)
    assert not log_d["streamed"] and log_s["streamed"]
    assert log_s["log_domain"] == (tau < 0.01)
    if backend.dtype == "float32":
        # float32 embeddings on every backend: a float32 kernel by default
        # (float32 products, within the products' rounding; the log domain
        # at tau=1e-3 recomputes float32 products too); precision="float64"
        # gives the float64 products of the stored matrix.
        np.testing.assert_allclose(h_d, h_ref, rtol=0, atol=5e-6)
        with backend.dispatch():
            h_d, _ = sinkhorn_potentials_from_embeddings(B, C, tau, 10, precision="float64")
        h_d = backend.to_numpy(h_d)
    # stored float64 kernel: float64 products whatever the dtype
    np.testing.assert_allclose(h_d, h_ref, rtol=0, atol=1e-10)
    if backend.dtype == "float64":
        np.testing.assert_allclose(h_s, h_ref, rtol=0, atol=1e-10)
    else:  # streamed float32 products: a few 1e-7 (see _potentials)
        np.testing.assert_allclose(h_s, h_ref, rtol=0, atol=5e-6)


def test_float32_rankings_equal_across_backends(backend):
    X_bank, X_test = make_pairs(80, d=16, seed=1), make_pairs(60, d=16, seed=2)
    Q, G, Bq = X_test[:, :16], X_test[:, 16:], X_bank[:, :16]
    h_ref, _ = sinkhorn_potentials_from_embeddings(Bq.astype(np.float32),
                                                   G.astype(np.float32), 0.02, 10,
                                                   working_memory=0.002)
    with backend.dispatch():
        h, log = sinkhorn_potentials_from_embeddings(
            backend.asarray(Bq), backend.asarray(G), 0.02, 10, working_memory=0.002)
    assert log["streamed"]
    h = backend.to_numpy(h)
    S = Q @ G.T
    np.testing.assert_array_equal(top10(S - h), top10(S - h_ref))


@pytest.mark.parametrize("method", ["sinkhorn", "sinkhorn_log", "sinkhorn_stabilized"])
@pytest.mark.parametrize("tau", [0.05, 0.01])
def test_pot_methods_follow_the_convention(backend, emb, method, tau):
    """h = -τ log u of ot.sinkhorn(b, a, 1 - Mᵀ, method=...), POT's log-domain
    start (u = 1 rather than 1/n) removed."""
    bank, cols = emb
    M = bank @ cols.T
    n, m = M.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, ref = ot.sinkhorn(np.full(m, 1 / m), np.full(n, 1 / n), 1 - M.T, reg=tau,
                             numItermax=7, stopThr=0, log=True, method=method)
    log_u = {"sinkhorn": lambda: np.log(ref["u"]),
             "sinkhorn_log": lambda: ref["log_u"] - np.log(m),
             "sinkhorn_stabilized": lambda: ref["logu"]}[method]()
    if backend.name not in BACKENDS:  # POT's solvers exist for numpy and torch only
        with backend.dispatch(), pytest.raises(ValueError, match="POT's solver.*method='auto'"):
            sinkhorn_potentials(backend.asarray(M), tau, 7, method=method)
        return
    with backend.dispatch():
        h, log = sinkhorn_potentials(backend.asarray(M), tau, 7, method=method)
        h_e, _ = sinkhorn_potentials_from_embeddings(
            backend.asarray(bank), backend.asarray(cols), tau, 7, method=method)
    atol = 1e-10 if backend.dtype == "float64" else 1e-5
    np.testing.assert_allclose(backend.to_numpy(h), -tau * log_u, rtol=0, atol=atol)
    np.testing.assert_allclose(backend.to_numpy(h_e), -tau * log_u, rtol=0, atol=atol)
    assert log["n_iter"] == 7
    if method == "sinkhorn":  # POT's plain solver is the package's iteration
        h_auto, _ = sinkhorn_potentials(M, tau, 7)
        np.testing.assert_allclose(backend.to_numpy(h), h_auto, rtol=0, atol=atol)


def test_pot_methods_obey_an_explicit_budget(emb):
    bank, cols = emb
    with pytest.raises(ValueError, match="method='sinkhorn_log'.*working_memory"):
        sinkhorn_potentials(bank @ cols.T, 0.05, method="sinkhorn_log", working_memory=0.01)
    with pytest.raises(InvalidParameterError, match="method"):
        sinkhorn_potentials(bank @ cols.T, 0.05, method="greenkhorn")
    with pytest.raises(InvalidParameterError, match="solver"):
        SinkhornNormalizer(solver="exact").fit(make_pairs(20))


@pytest.mark.parametrize("tau", [0.05, 1e-3])
@pytest.mark.parametrize("store", [True, False])
def test_generic_path_equals_numpy_specialisation(emb, tau, store):
    """The numpy loops (cache-blocked, in place) and the backend-generic
    path compute the same iterates on numpy arrays."""
    bank, cols = emb
    n, m = bank.shape[0], cols.shape[0]
    a, b = _check_marginals(None, None, n, m)
    nx = NUMPY_NX
    M = bank @ cols.T
    for source, exact in ((stored_source(nx, M, 1 / tau, a), True),
                          (product_source(nx, bank, [cols[:20], cols[20:]], 1 / tau, a), False)):
        out = nx_sinkhorn(nx, source, n, m, tau, a, b, 10, None, store=store, item_bytes=8,
                          exact_error=exact, working_memory=None if store else 0.005,
                          like64=a)
        ref = _embedding_potentials(bank, [cols[:20], cols[20:]], tau, 10, None,
                                    working_memory=None if store else 0.005, n_jobs=None,
                                    exact_error=exact)
        np.testing.assert_allclose(out[0], ref[0], rtol=0, atol=1e-10 / tau)
        np.testing.assert_allclose(out[1], ref[1], rtol=1e-10, atol=1e-8)
        assert out[2] == ref[2] and out[4] == ref[4]
        np.testing.assert_allclose(out[3], ref[3], rtol=1e-8)


def test_tol_on_every_backend(backend, emb):
    bank, cols = emb
    M64 = (bank @ cols.T).astype(backend.dtype).astype(np.float64)
    M = backend.asarray(M64)
    h_ref, log_ref = sinkhorn_potentials(M64, 0.05, 500, tol=1e-8)
    with backend.dispatch():
        h, log = sinkhorn_potentials(M, 0.05, 500, tol=1e-8)
        with pytest.warns(Warning, match="marginal error"):
            sinkhorn_potentials(M, 0.01, 2, tol=1e-12)
    assert log["n_iter"] == log_ref["n_iter"] < 500
    np.testing.assert_allclose(backend.to_numpy(h), h_ref, rtol=0, atol=1e-9)


def test_mixed_backends_and_tiny_budget_raise(backend, emb):
    if backend.name == "numpy":
        pytest.skip("needs a second backend")
    bank, cols = emb
    with backend.dispatch():
        with pytest.raises(ValueError, match=f"bank and columns.*numpy.*{backend.name}"):
            sinkhorn_potentials_from_embeddings(bank, backend.asarray(cols), 0.05)
        with pytest.raises(ValueError, match="too small for one row"):
            sinkhorn_potentials_from_embeddings(backend.asarray(bank), backend.asarray(cols),
                                                0.05, working_memory=1e-5)


def test_estimators_run_no_pass_beyond_max_iter(monkeypatch):
    """SN/DBSN with tol=None stream exactly max_iter passes (no error pass)."""
    import skxmr._ot._streamed as streamed

    X_bank, X_test = make_pairs(60, seed=1), make_pairs(30, seed=2)
    calls = []
    original = streamed._passes

    def counting(sweep, *args, **kwargs):
        def counted(*a):
            calls.append(1)
            return sweep(*a)

        return original(counted, *args, **kwargs)

    monkeypatch.setattr(streamed, "_passes", counting)
    for cls in (SinkhornNormalizer, DualBankSinkhornNormalizer):
        for T in (1, 3):
            calls.clear()
            cls(temperature=0.05, max_iter=T, working_memory=0.002).fit(X_bank).decision_function(X_test)
            assert len(calls) == T, (cls.__name__, T, len(calls))


def test_memory_aware_default(monkeypatch, emb):
    """working_memory=None stores the kernel when it fits in STORE_FRACTION of
    the available memory and streams otherwise; an explicit budget is obeyed."""
    bank, cols = emb
    h_ref, _ = sinkhorn_potentials_from_embeddings(bank, cols, 0.05, 5, working_memory=1)
    monkeypatch.setattr(_common, "_available_bytes", lambda like=None: 10**12)
    h, log = sinkhorn_potentials_from_embeddings(bank, cols, 0.05, 5)
    assert not log["streamed"]
    _, log = sinkhorn_potentials_from_embeddings(bank, cols, 0.05, 5, working_memory=0.005)
    assert log["streamed"]  # explicit budget wins over plenty of memory
    monkeypatch.setattr(_common, "_available_bytes", lambda like=None: 1000)
    h_s, log = sinkhorn_potentials_from_embeddings(bank, cols, 0.05, 5)
    assert log["streamed"]
    np.testing.assert_allclose(h_s, h_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(h, h_ref, rtol=0, atol=1e-10)


def test_pot_backend_code_runs_inside_sn(backend, monkeypatch):
    """The backend object's primitives (POT's interface: skxmr's numpy
    class, POT's classes for torch, the array API form for other namespaces)
    do the arithmetic of SN on every backend."""
    with backend.dispatch():
        nx_type = type(get_backend(x=backend.asarray(np.ones(2))))
    calls = []
    original = nx_type.dot

    def dot(self, a, b):
        calls.append(1)
        return original(self, a, b)

    monkeypatch.setattr(nx_type, "dot", dot)
    X_bank, X_test = make_pairs(40, seed=1), make_pairs(20, seed=2)
    with backend.dispatch():
        bank, cols = backend.asarray(X_bank[:, :8]), backend.asarray(X_test[:, 8:])
        sinkhorn_potentials_from_embeddings(bank, cols, 0.05, 3)
    assert calls


def test_blas_limit_restored_after_overlapping_calls():
    """threadpoolctl limits are process-global: two overlapping one-thread
    sections must leave the user's setting in place (regression: the second
    one saved the first's limit of 1 and restored it)."""
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        assert before == 2
        entered, release = threading.Event(), threading.Event()
        inside = []

        def first():
            with _one_blas_thread():
                entered.set()
                release.wait(10)

        t = threading.Thread(target=first)
        t.start()
        entered.wait(10)
        with _one_blas_thread():
            release.set()
            t.join(10)
            inside.append(_blas_threads())  # the user's count, not the limit
        assert _blas_threads() == before
        assert inside == [before]
        # The same with real Sinkhorn calls in threads.
        X_bank, X_test = make_pairs(300, d=16, seed=1), make_pairs(200, d=16, seed=2)
        est = SinkhornNormalizer(temperature=0.05).fit(X_bank)
        ref = est.decision_function(X_test)
        results = [None] * 4

        def call(i):
            results[i] = est.decision_function(X_test)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert _blas_threads() == before
        for S in results:
            np.testing.assert_allclose(S, ref, rtol=0, atol=1e-12)


def test_n_jobs_sets_the_dense_threads(emb):
    assert _blas_threads(3) == 3
    bank, cols = emb
    M = bank @ cols.T
    h1, _ = sinkhorn_potentials(M, 0.05, 10, n_jobs=1)
    h3, _ = sinkhorn_potentials(M, 0.05, 10, n_jobs=3)
    np.testing.assert_allclose(h1, h3, rtol=0, atol=1e-12)


def test_float32_kernel_where_float64_does_not_fit(monkeypatch, emb):
    """The memory-aware default stores a row-shifted float32 kernel when only
    it fits and the spread allows it (float32 accuracy), and streams when
    the spread is too large for float32 (small τ)."""
    bank, cols = emb
    n_entries = bank.shape[0] * cols.shape[0]
    # STORE_FRACTION of this holds 6 bytes per entry: float32, not float64
    monkeypatch.setattr(_common, "_available_bytes",
                        lambda like=None: 6 * n_entries / _common.STORE_FRACTION)
    for tau, streamed in ((0.05, False), (0.005, True)):
        h_ref, _ = sinkhorn_potentials(bank @ cols.T, tau, 10)
        h, log = sinkhorn_potentials_from_embeddings(bank, cols, tau, 10)
        assert log["streamed"] == streamed and not log["log_domain"]
        np.testing.assert_allclose(h, h_ref, rtol=0, atol=1e-6 if not streamed else 1e-10)


@pytest.mark.parametrize("cls", [SinkhornNormalizer, DualBankSinkhornNormalizer])
@pytest.mark.parametrize("working_memory", [None, 0.004])  # stored / streamed
def test_estimators_on_every_backend(backend, cls, working_memory):
    """fit, decision_function, index and kneighbors keep the backend's arrays
    (banks and potentials on its device) and equal the numpy path."""
    X_bank, X_test = make_pairs(80, d=16, seed=1), make_pairs(40, d=16, seed=2)
    X_bank, X_test = (X.astype(backend.dtype) for X in (X_bank, X_test))
    ref_est = cls(temperature=0.05, working_memory=working_memory).fit(X_bank)
    ref = ref_est.decision_function(X_test)
    with backend.dispatch():
        est = cls(temperature=0.05, working_memory=working_memory).fit(backend.asarray(X_bank))
        S = backend.to_numpy(est.decision_function(backend.asarray(X_test)))
        backend.to_numpy(est.query_bank_)
        index = est.index(backend.asarray(X_test[:, 16:]))
        backend.to_numpy(index.state_["h"])
        _, idx = index.kneighbors(backend.asarray(X_test[:, :16]), n_neighbors=10)
        S_fn = backend.to_numpy((sinkhorn_scores if cls is SinkhornNormalizer else
                                 _dbsn_fn)(backend.asarray(X_test[:, :16]),
                                           backend.asarray(X_test[:, 16:]),
                                           backend.asarray(X_bank[:, :16]),
                                           *(() if cls is SinkhornNormalizer
                                             else (backend.asarray(X_bank[:, 16:]),)),
                                           temperature=0.05, working_memory=working_memory))
    assert S.dtype == np.dtype(backend.dtype)
    if backend.dtype == "float64":
        np.testing.assert_allclose(S, ref, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(top10(S), top10(ref))
    np.testing.assert_array_equal(backend.to_numpy(idx), top10(ref))
    np.testing.assert_allclose(S_fn, S, rtol=0, atol=1e-6 if backend.dtype == "float32" else 1e-12)


def _dbsn_fn(*args, **kwargs):
    from skxmr.hubness import dual_bank_sinkhorn_scores

    return dual_bank_sinkhorn_scores(*args, **kwargs)


@pytest.mark.parametrize("method", ["sinkhorn_log", "sinkhorn_stabilized"])
def test_estimator_methods_on_every_backend(backend, method):
    X_bank, X_test = make_pairs(60, d=16, seed=1), make_pairs(30, d=16, seed=2)
    ref = SinkhornNormalizer(temperature=0.05, solver=method).fit(X_bank).decision_function(X_test)
    if backend.name not in BACKENDS:  # POT's solvers exist for numpy and torch only
        with backend.dispatch(), pytest.raises(ValueError, match="POT's solver"):
            SinkhornNormalizer(temperature=0.05, solver=method).fit(
                backend.asarray(X_bank)).decision_function(backend.asarray(X_test))
        return
    with backend.dispatch():
        est = SinkhornNormalizer(temperature=0.05, solver=method).fit(backend.asarray(X_bank))
        S = backend.to_numpy(est.decision_function(backend.asarray(X_test)))
    atol = 1e-10 if backend.dtype == "float64" else 1e-5
    np.testing.assert_allclose(S, ref, rtol=0, atol=atol)


@pytest.mark.parametrize("precision, item", [("auto", 4), ("float64", 8)])
def test_stored_kernel_precision_and_buffer_on_every_backend(backend, emb, precision, item):
    """float32 embeddings get the stored float32 kernel on every backend, as
    on numpy (float64 one parameter away); on the CPU (numpy, torch) it
    lives in the caller's KernelBuffer, reused across calls."""
    from skxmr._ot import KernelBuffer, block_potentials

    bank, cols = emb
    buffer = KernelBuffer()
    with backend.dispatch():
        B, C = backend.asarray(bank), backend.asarray(cols)
        h, log = block_potentials(B, [C[:20, ...], C[20:, ...]], 0.05, 10, None, working_memory=None,
                                  n_jobs=None, exact_error=None, buffer=buffer,
                                  precision=precision)
        data = buffer._data
        h2, _ = block_potentials(B, [C[:20, ...], C[20:, ...]], 0.05, 10, None, working_memory=None,
                                 n_jobs=None, exact_error=None, buffer=buffer,
                                 precision=precision)
    assert not log["streamed"] and not log["log_domain"]
    np.testing.assert_array_equal(backend.to_numpy(h), backend.to_numpy(h2))
    on_cpu = backend.name in ("numpy", "torch") and str(backend.device or "cpu") == "cpu"
    if not on_cpu:
        return
    assert buffer._data is data
    kernel_item = item if backend.dtype == "float32" else 8
    assert buffer.nbytes == kernel_item * bank.shape[0] * cols.shape[0]


def test_streamed_chunk_buffer_on_every_backend(backend, emb):
    """The generic streamed pass writes every chunk's product into one
    buffer (the caller's KernelBuffer on the CPU) and works it in place."""
    from skxmr._ot import KernelBuffer, block_potentials

    bank, cols = emb
    buffer = KernelBuffer()
    with backend.dispatch():
        h, log = block_potentials(backend.asarray(bank), [backend.asarray(cols)], 0.05, 10,
                                  None, working_memory=0.01, n_jobs=None, exact_error=None,
                                  buffer=buffer)
    assert log["streamed"]
    h_ref, _ = sinkhorn_potentials(bank.astype(backend.dtype).astype(np.float64) @ cols.astype(
        backend.dtype).astype(np.float64).T, 0.05, 10)
    np.testing.assert_allclose(backend.to_numpy(h), h_ref, rtol=0,
                               atol=5e-6 if backend.dtype == "float32" else 1e-10)
    if backend.name in ("numpy", "torch") and str(backend.device or "cpu") == "cpu":
        assert 0 < buffer.nbytes <= 0.01 * 2**20


def test_allow_tf32_leaves_cpu_results_unchanged(backend, emb):
    """TF32 is for CUDA matrix products: on every other device the
    potentials, stored and streamed, are bit for bit those without it."""
    from skxmr._ot import block_potentials

    bank, cols = emb
    with backend.dispatch():
        B, C = backend.asarray(bank), backend.asarray(cols)
        for wm in (None, 0.01):
            h = [backend.to_numpy(block_potentials(
                B, [C], 0.05, 5, None, working_memory=wm, n_jobs=None, exact_error=None,
                allow_tf32=flag)[0]) for flag in (False, True)]
            if str(backend.device or "cpu") == "cpu" or backend.name != "torch":
                np.testing.assert_array_equal(h[0], h[1])
            else:  # CUDA: TF32 products, within their rounding (see allow_tf32)
                np.testing.assert_allclose(h[0], h[1], rtol=0, atol=2e-3)
