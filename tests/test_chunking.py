"""Memory-bounded chunking and the joblib map."""

import functools

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn import config_context

from skxmr.utils._chunking import chunk_n_rows, map_row_chunks, reduce_row_chunks, row_slices


def test_chunk_n_rows_budget():
    assert chunk_n_rows(2**20, working_memory=10) == 10
    assert chunk_n_rows(2**20, working_memory=10, max_rows=3) == 3
    with config_context(working_memory=4):
        assert chunk_n_rows(2**20) == 4
    with config_context(working_memory=1):
        assert chunk_n_rows(2**30) == 1  # the global default degrades to one row


@pytest.mark.parametrize("bad", [0, -1, np.inf, np.nan])
def test_bad_working_memory(bad):
    with pytest.raises(ValueError, match="working_memory"):
        chunk_n_rows(8, working_memory=bad)


def test_working_memory_too_small_for_one_row():
    with pytest.raises(ValueError, match="too small for one row"):
        chunk_n_rows(2**21, working_memory=1)


def test_row_slices_cover_exactly():
    slices = row_slices(10, 3)
    assert [(s.start, s.stop) for s in slices] == [(0, 3), (3, 6), (6, 9), (9, 10)]


def _gram_rows(rows, A):
    return A[rows] @ A.T


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_map_row_chunks_matches_whole(n_jobs):
    A = np.random.default_rng(0).standard_normal((1000, 50))
    parts = map_row_chunks(_gram_rows, 1000, 8 * 1000, args=(A,), n_jobs=n_jobs,
                           working_memory=1)
    assert len(parts) == 8
    np.testing.assert_allclose(np.vstack(parts), A @ A.T)


MADE = []


def _make_gram_sums(chunk, A):
    buf = np.empty((chunk, A.shape[0]))  # one work buffer per run
    MADE.append(chunk)

    def func(rows):
        P = np.matmul(A[rows], A.T, out=buf[: rows.stop - rows.start])
        return [rows.start], P.sum(axis=0)

    return func


def _combine_gram_sums(acc, part):
    return acc[0] + part[0], acc[1] + part[1]


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_reduce_row_chunks_folds_runs_in_row_order(n_jobs):
    A = np.random.default_rng(0).standard_normal((1000, 50))
    MADE.clear()
    # threads, so that MADE is seen here; n_jobs=None: one run
    with parallel_backend("threading", n_jobs=1):
        parts = reduce_row_chunks(_make_gram_sums, 1000, 8 * 1000, _combine_gram_sums,
                                  args=(A,), n_jobs=n_jobs, working_memory=1)
    assert len(parts) == len(MADE) == (1 if n_jobs is None else 2)
    assert MADE == [131] * len(MADE)  # 1 MiB of 8000-byte rows
    starts = [s for p in parts for s in p[0]]
    assert starts == list(range(0, 1000, 131))
    np.testing.assert_allclose(sum(p[1] for p in parts), (A @ A.T).sum(axis=0))
    with pytest.raises(ValueError, match="too small for one row"):
        reduce_row_chunks(_make_gram_sums, 10, 2**21, _combine_gram_sums, args=(A,),
                          working_memory=1)


def test_reduce_row_chunks_in_worker_processes():
    A = np.random.default_rng(1).standard_normal((300, 20))
    parts = reduce_row_chunks(_make_gram_sums, 300, 8 * 300, _combine_gram_sums, args=(A,),
                              n_jobs=2, working_memory=0.5)
    np.testing.assert_allclose(sum(p[1] for p in parts), (A @ A.T).sum(axis=0))


@pytest.mark.parametrize("task", [lambda rows, A: A[rows], functools.partial(lambda r: r)])
def test_closures_cannot_leave_the_process(task):
    """A closure would ship its data with every task (or, under joblib's dask
    backend, hang Parallel on a pickling error): refused up front."""
    A = np.ones((100, 4))
    with pytest.raises(TypeError, match="module-level function"):
        map_row_chunks(task, 100, 2**20, args=(A,), n_jobs=2, working_memory=10)
    # in-process, any callable runs
    with parallel_backend("threading", n_jobs=2):
        assert len(map_row_chunks(lambda rows, A: A[rows], 100, 2**20, args=(A,),
                                  working_memory=10)) == 10
