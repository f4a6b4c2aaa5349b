"""Memory-bounded chunking and the joblib map."""

import numpy as np
import pytest
from sklearn import config_context

from skxmr._chunking import chunk_n_rows, map_row_chunks, row_slices


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


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_map_row_chunks_matches_whole(n_jobs):
    A = np.random.default_rng(0).standard_normal((1000, 50))
    parts = map_row_chunks(
        lambda rows: A[rows] @ A.T, 1000, 8 * 1000, n_jobs=n_jobs, working_memory=1
    )
    assert len(parts) == 8
    np.testing.assert_allclose(np.vstack(parts), A @ A.T)
