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
        dashboard_address=None, memory_limit="1GiB",
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


def _where(rows, A, state):
    return [(os.getpid(), id(A), id(state))]


def test_arguments_are_scattered_once_per_call(dask_client):
    """Under the dask backend a task carries futures, not the data: each
    worker deserialises an argument once (every task there sees the same
    object), whatever the chunk count, also for containers (a dict of
    per-gallery statistics), which joblib alone re-ships with every task."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((400, 64))
    state = {"h": rng.standard_normal(400)}
    with joblib.parallel_backend("dask"):
        parts = map_row_chunks(_where, 400, 8 * 400, args=(A, state), working_memory=0.05)
    assert len(parts) > 8
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
