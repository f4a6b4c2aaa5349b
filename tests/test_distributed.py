"""Work that leaves the process: loky workers and a multi-process dask cluster.

Every chunked path must give the serial result in worker processes (its
tasks module-level functions with their arrays as arguments), and a failure
in a worker must surface as an exception, never a hang.
"""

import contextlib
import os
import signal

import joblib
import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import clone

import skxmr
from skxmr.metrics import k_occurrence, retrieval_report
from skxmr.utils._chunking import map_row_chunks

from .conftest import make_pairs
from .test_common import SCORERS

ESTIMATORS = [e for e in SCORERS if not e._transductive]


def _ids(est):
    return type(est).__name__


@contextlib.contextmanager
def deadline(seconds):
    """Fail (instead of hanging the suite) when the block runs past ``seconds``."""
    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def dask_client():
    """One 2-process LocalCluster for the module (a start costs seconds)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=":0", memory_limit=0,  # no spilling (an unspilled replica is a new object)
    ) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(params=["loky", "dask"])
def workers(request):
    """A context in which chunked steps run in two worker processes."""
    if request.param == "loky":
        return lambda: joblib.parallel_backend("loky", n_jobs=2)
    request.getfixturevalue("dask_client")
    return lambda: joblib.parallel_backend("dask")


def _fitted(estimator):
    X_bank, X_test = make_pairs(60, seed=1), make_pairs(30, seed=2)
    # 4 queries: a few chunks of one row each under the budget below
    return clone(estimator).fit(X_bank), X_test[:4, :8], X_test[:, 8:]


def test_scores_and_neighbours_equal_serial(workers):
    """Every non-transductive scorer: score_matrix and the index's kneighbors."""
    fitted = [_fitted(e) for e in ESTIMATORS]
    with config_context(working_memory=0.001):  # a few rows per chunk
        expected = [(est.score_matrix(Q, G), est.index(G).kneighbors(Q, 5)) for est, Q, G in fitted]
        with deadline(120), workers():
            for (est, Q, G), (S, (s, i)) in zip(fitted, expected):
                np.testing.assert_allclose(est.score_matrix(Q, G), S, rtol=1e-12, atol=1e-12)
                s_w, i_w = est.index(G).kneighbors(Q, 5)
                np.testing.assert_array_equal(i_w, i)
                np.testing.assert_allclose(s_w, s, rtol=1e-12, atol=1e-12)


def test_metrics_and_transformers_equal_serial(workers):
    rng = np.random.default_rng(0)
    S = rng.standard_normal((120, 90))
    R = rng.random((120, 90)) < 0.05
    X = make_pairs(80, seed=3)
    Q, G = X[:, :8], X[:, 8:]
    invgc = skxmr.InvGC().fit(make_pairs(60, seed=1))
    with config_context(working_memory=0.01):
        expected = (retrieval_report(S, R), k_occurrence(S, 5), invgc.transform(X))
        with deadline(120), workers():
            got = (retrieval_report(S, R), k_occurrence(S, 5), invgc.transform(X))
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_allclose(got[2], expected[2], rtol=1e-12)
    assert Q.shape == G.shape


def _fail(rows, A):
    if rows.start > 0:
        raise ArithmeticError(f"chunk {rows.start} failed")
    return A[rows]


def test_a_failing_task_raises_never_hangs(workers):
    A = np.ones((100, 4))
    with deadline(60), workers(), pytest.raises(ArithmeticError, match="failed"):
        map_row_chunks(_fail, 100, 2**20, args=(A,), working_memory=10)


def test_a_closure_is_refused_under_dask_instead_of_hanging(dask_client):
    A = np.ones((100, 4))
    with deadline(60), joblib.parallel_backend("dask"), \
            pytest.raises(TypeError, match="module-level function"):
        map_row_chunks(lambda rows, A: A[rows], 100, 2**20, args=(A,), working_memory=10)


@pytest.mark.parametrize("cls, tau", [(skxmr.SinkhornNormalizer, 0.05),
                                      (skxmr.DualBankSinkhornNormalizer, 1e-4)])
def test_streamed_sinkhorn_runs_in_workers_and_equals_serial(cls, tau, workers, monkeypatch):
    """Streamed SN (scaling domain) and DBSN (log domain at τ = 1e-4): with a
    budget the kernel does not fit, every pass goes to the worker processes
    (loky, the dask cluster) and the scores equal the serial ones."""
    from skxmr._ot import _log, _streamed

    X_bank, X_test = make_pairs(60, seed=1), make_pairs(40, seed=2)
    est = cls(temperature=tau, working_memory=0.005)  # < the 60 x 40+ kernel
    S = clone(est).fit(X_bank).decision_function(X_test)
    dispatched = []
    for module in (_streamed, _log):
        def spy(task, args, *, pool=None, n_jobs=None, _run=module.map_runs):
            dispatched.append((task.__name__, pool is None and len(args) > 1))
            return _run(task, args, pool=pool, n_jobs=n_jobs)

        monkeypatch.setattr(module, "map_runs", spy)
    with deadline(120), workers():
        S_w = clone(est).set_params(n_jobs=2).fit(X_bank).decision_function(X_test)
    np.testing.assert_allclose(S_w, S, rtol=0, atol=1e-12)
    passes = [to_workers for _, to_workers in dispatched]
    assert passes and all(passes), dispatched  # streamed, each pass in worker runs


@pytest.mark.parametrize("estimator", [skxmr.CSLS(n_neighbors=3), skxmr.InvertedSoftmax()],
                         ids=_ids)
def test_approximate_kneighbors_in_workers_equals_serial(estimator, workers):
    """The candidate path's chunk tasks (the faiss graph and the estimator as
    arguments) run in worker processes and give the serial top-k."""
    pytest.importorskip("faiss")
    est, Q, G = _fitted(estimator)
    index = est.index(G, approximate=True, n_candidates=10)
    with config_context(working_memory=0.001):  # a few rows per chunk
        s, i = index.kneighbors(Q, 5)
        with deadline(120), workers():
            s_w, i_w = index.kneighbors(Q, 5)
    np.testing.assert_array_equal(i_w, i)
    np.testing.assert_allclose(s_w, s, rtol=1e-12, atol=1e-12)


def _where(rows, A, state):
    return [(os.getpid(), id(A), id(state))]


def _scatter_counting(client, monkeypatch):
    calls = []
    scatter = client.scatter

    def counted(data, **kwargs):
        calls.append(len(data))
        return scatter(data, **kwargs)

    monkeypatch.setattr(client, "scatter", counted)
    return calls


def test_arguments_are_scattered_once_per_call(dask_client, monkeypatch):
    """Under the dask backend a task carries futures, not the data: the client
    ships each argument once per call, whatever the chunk count, also for
    containers (a dict of per-gallery statistics), which joblib alone
    re-ships with every task."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((400, 64))
    state = {"h": rng.standard_normal(400)}
    calls = _scatter_counting(dask_client, monkeypatch)
    with joblib.parallel_backend("dask"):
        parts = map_row_chunks(_where, 400, 8 * 400, args=(A, state), working_memory=0.05)
    assert len(parts) > 8
    assert calls == [2]  # A and state, in one scatter


def test_each_worker_deserialises_an_argument_once(dask_client):
    """The scatter is broadcast: each worker holds one replica for the whole
    call, so every task there sees the same object. dask's active memory
    manager may drop a replica no queued task needs (a slow worker then
    fetches it again from a peer, never from the client): that is dask's
    choice, paused here so that the test sees ours alone."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((400, 64))
    state = {"h": rng.standard_normal(400)}
    dask_client.amm.stop()
    try:
        with joblib.parallel_backend("dask"):
            parts = map_row_chunks(_where, 400, 8 * 400, args=(A, state), working_memory=0.05)
    finally:
        dask_client.amm.start()
    seen = {}
    for (pid, a, s), in parts:
        seen.setdefault(pid, set()).add((a, s))
    assert all(len(ids) == 1 for ids in seen.values()), seen


def test_user_scatter_is_reused(dask_client):
    A = np.random.default_rng(1).standard_normal((200, 16))
    with joblib.parallel_config(backend="dask", scatter=[A]):
        parts = map_row_chunks(_gram_rows, 200, 8 * 200, args=(A,), working_memory=0.05)
    np.testing.assert_allclose(np.vstack(parts), A @ A.T)


def _gram_rows(rows, A):
    return A[rows] @ A.T


# ------------------------------------------------------- sharded engine
def _sharded_problem(estimator, n_gallery=240, seed=0):
    rng = np.random.default_rng(seed)
    d = 16
    Q = rng.normal(size=(n_gallery, d)).astype(np.float32)
    G = (Q + 0.5 * rng.normal(size=(n_gallery, d))).astype(np.float32)
    B = rng.normal(size=(150, d)).astype(np.float32)
    bank = skxmr.pair(B, B + 0.5 * rng.normal(size=(150, d)).astype(np.float32))
    return clone(estimator).fit(bank), Q, G


SHARDED = [skxmr.SinkhornNormalizer(temperature=0.05),
           skxmr.DualBankSinkhornNormalizer(temperature=0.05), skxmr.InvertedSoftmax(),
           skxmr.CSLS(), skxmr.DBNorm(), skxmr.NearestNeighborNormalization()]


@pytest.mark.parametrize("estimator", SHARDED, ids=_ids)
def test_sharded_index_equals_single_process(estimator, dask_client):
    """Statistics to float32 rounding, the same top-10 lists, from shards of
    a dask array each bigger than the per-task budget."""
    da = pytest.importorskip("dask.array")
    from skxmr.distributed import ShardedIndex

    est, Q, G = _sharded_problem(estimator)
    single = est.index(G)
    with deadline(120):
        index = ShardedIndex(est, da.from_array(G, chunks=(70, 16)).persist(),
                             client=dask_client, working_memory=0.02)  # 4 shards, blocks of 20
        state = index.gather_state()
        scores, ids = index.kneighbors(Q, 10)
    assert index.n_gallery == 240 and len(index.shards_) == 4
    for key, value in single.state_.items():
        value = np.asarray(value)
        np.testing.assert_allclose(state[key], value, rtol=0,
                                   atol=1e-6 * np.max(np.abs(value)) + 1e-12)
    s_ref, i_ref = single.kneighbors(Q, 10)
    np.testing.assert_array_equal(ids, i_ref)
    np.testing.assert_allclose(scores, s_ref, rtol=0, atol=1e-5)
    assert scores.dtype == np.float32


def test_sharded_add_separable_is_exact_and_sinkhorn_warm(dask_client):
    from skxmr.distributed import ShardedIndex

    est, Q, G = _sharded_problem(skxmr.InvertedSoftmax())
    with deadline(120):
        index = ShardedIndex(est, [G[:100], G[100:200]], client=dask_client)
        index.add([G[200:]])
        np.testing.assert_array_equal(index.kneighbors(Q, 10)[1], est.index(G).kneighbors(Q, 10)[1])

        est, Q, G = _sharded_problem(skxmr.SinkhornNormalizer(temperature=0.05))
        cold = ShardedIndex(est, [G[:100], G[100:200], G[200:]], client=dask_client)
        warm = ShardedIndex(est, [G[:100], G[100:200]], client=dask_client, warm_iter=5)
        warm.add([G[200:]])
        assert warm.n_iter_ == 5 and warm.n_gallery == 240
        h, h_cold = warm.gather_state()["h"], cold.gather_state()["h"]
    # a warm start is close to, not equal to, the cold solve (documented)
    spread = np.ptp(h_cold)
    assert 0 < np.max(np.abs((h - h.mean()) - (h_cold - h_cold.mean()))) < 0.05 * spread


def test_sharded_bytes_per_iteration_are_bank_sized(dask_client):
    """Per Sinkhorn iteration the driver sends the bank-length row scaling
    and receives one bank-length partial per shard, whatever the gallery size."""
    from skxmr.distributed import ShardedIndex

    sent = []
    scatter, gather = dask_client.scatter, dask_client.gather

    def spy_scatter(data, *args, **kwargs):
        sent.append(("out", getattr(data, "nbytes", 0)))
        return scatter(data, *args, **kwargs)

    def spy_gather(futures, *args, **kwargs):
        out = gather(futures, *args, **kwargs)
        sent.append(("in", sum(_nbytes(x) for x in out)))
        return out

    per_gallery = []
    try:
        dask_client.scatter, dask_client.gather = spy_scatter, spy_gather
        for n in (120, 480):
            est, Q, G = _sharded_problem(skxmr.SinkhornNormalizer(temperature=0.05, max_iter=4),
                                         n_gallery=n)
            shards = scatter([G[: n // 2], G[n // 2:]], hash=False)
            sent.clear()
            with deadline(120):
                ShardedIndex(est, shards, client=dask_client)
            per_gallery.append(sum(b for _, b in sent))
    finally:
        del dask_client.scatter, dask_client.gather
    n_bank = est.query_bank_.shape[0]
    assert per_gallery[0] == per_gallery[1]  # independent of the gallery size
    # the bank once (float32), then per iteration r out and 2 partials in, plus O(n_bank) setup
    assert per_gallery[0] <= n_bank * 16 * 4 + 4 * 8 * n_bank * 8


def _nbytes(x):
    if isinstance(x, np.ndarray):
        return x.nbytes
    if isinstance(x, (tuple, list)):
        return sum(_nbytes(y) for y in x)
    return 0


def test_sharded_index_refuses(dask_client):
    from skxmr.distributed import ShardedIndex

    est, Q, G = _sharded_problem(skxmr.QBNorm())
    with pytest.raises(ValueError, match="span the whole gallery"):
        ShardedIndex(est, [G], client=dask_client)
    est, Q, G = _sharded_problem(skxmr.SinkhornNormalizer(solver="sinkhorn"))
    with pytest.raises(ValueError, match="solver='sinkhorn'"):
        ShardedIndex(est, [G], client=dask_client)
    est, Q, G = _sharded_problem(skxmr.CSLS())
    with pytest.raises(TypeError, match="dask array or a non-empty list"):
        ShardedIndex(est, G, client=dask_client)
    with pytest.raises(ValueError, match="gallery has 3 features"), deadline(60):
        ShardedIndex(est, [np.ones((4, 3))], client=dask_client)
    with pytest.raises(ValueError, match="warm_iter"):
        ShardedIndex(est, [G], client=dask_client, warm_iter=0)
