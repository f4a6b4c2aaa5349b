"""Kernels shared by the hubness estimators: log-partitions, activation sets,
the mean of the top k, and the docstring pieces every estimator shares."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval

from .._chunking import map_row_chunks, reduce_row_chunks
from .._docstrings import fill_doc
from .._ot._math import scaled_product_dtype
from .._ot._topk import row_largest

# _BANK_ATTRS, _COMMON_DOC, _LOG_TINY, _N_JOBS, _STRENGTH, _TEMPERATURE, _activation_set, _doc, _gate, _log_partition, _mean_top_k

# sklearn's Interval rejects nan and inf, so these also refuse non-finite values.
_TEMPERATURE = [Interval(numbers.Real, 0, None, closed="neither")]
_STRENGTH = [Interval(numbers.Real, 0, 1, closed="both")]  # α ∈ [0, 1], as SN/DBSN
_N_JOBS = [None, numbers.Integral]

# log of the smallest positive float64: no non-zero |cosine| has a smaller log.
_LOG_TINY = float(np.log(np.finfo(np.float64).smallest_subnormal))



# ---------------------------------------------------------------- kernels
def _log_partition(gallery, bank, temperature, n_jobs=None):
    """``τ·log Σ_b exp(<b, g>/τ)`` for every gallery row ``g``, in float64.

    This is the inverted-softmax potential ``h(g)`` (the log of the column
    sum of ``exp(Sbq/τ)``), computed on the transposed problem ``G Bᵀ`` in
    memory-bounded chunks of gallery rows. ``1/τ`` is folded into each
    chunk of gallery rows and the products are taken in the inputs' precision (float32
    products are twice as fast); each row is shifted by its maximum into a
    float64 work buffer reused by every chunk, so the exponentials cannot
    underflow whatever τ.
    """
    dtype = scaled_product_dtype(1.0 / temperature, gallery, bank)
    bank = bank.astype(dtype, copy=False)
    n_b = bank.shape[0]
    sep = dtype != np.float64  # float32 products need a float64 work buffer

    def make_func(chunk):
        P = np.empty((chunk, n_b), dtype=dtype)
        W = np.empty((chunk, n_b)) if sep else P

        def func(rows):
            n = rows.stop - rows.start
            g_s = np.multiply(gallery[rows], 1.0 / temperature, dtype=dtype)
            p = np.matmul(g_s, bank.T, out=P[:n])
            m = p.max(axis=1).astype(np.float64)
            w = np.subtract(p, m[:, None], out=W[:n])
            np.exp(w, out=w)
            return [temperature * (np.log(w.sum(axis=1)) + m)]

        return func

    parts = reduce_row_chunks(make_func, gallery.shape[0], (dtype.itemsize + 8 * sep) * n_b,
                              lambda a, b: a + b, n_jobs=n_jobs)
    return np.concatenate([h for p in parts for h in p])


def _activation_set(gallery, bank, k, n_jobs=None):
    """QB-Norm's activation set: gallery items in some bank row's top ``k``.

    Returns a boolean mask over the gallery. Each bank row needs the whole
    gallery, so this pass is chunked over bank rows. Ties at the ``k``-th
    score are broken arbitrarily (by ``np.argpartition``).
    """
    n_g = gallery.shape[0]

    def part(rows):
        if k >= n_g:
            return np.arange(n_g)
        M = bank[rows] @ gallery.T
        if k == 1:
            return np.argmax(M, axis=1)
        return np.argpartition(M, n_g - k, axis=1)[:, n_g - k :].ravel()

    parts = map_row_chunks(part, bank.shape[0], 16 * n_g, n_jobs=n_jobs)
    active = np.zeros(n_g, dtype=bool)
    active[np.concatenate(parts)] = True
    return active


def _mean_top_k(items, bank, k, n_jobs=None):
    """Mean of the ``k`` largest similarities of each item to ``bank`` (float64)."""
    n_b = bank.shape[0]

    def part(rows):
        M = items[rows] @ bank.T
        if k < n_b:
            M = row_largest(M, k)
        return M.mean(axis=1, dtype=np.float64)

    parts = map_row_chunks(part, items.shape[0], 16 * n_b, n_jobs=n_jobs)
    return np.concatenate(parts)


def _gate(S, active):
    """Rows whose top-1 gallery item (under raw ``S``) is in ``active``: (n, 1)."""
    return active[np.argmax(S, axis=1)][:, None]



_COMMON_DOC = """n_query_features : int, default=None
        Width of the query half of ``X``; ``None`` means half the columns.
    direction : {"q2g", "g2q"}, default="q2g"
        ``"q2g"`` ranks the right half for each left half; ``"g2q"`` the
        reverse (the banks swap roles accordingly).
    n_jobs : int, default=None
        joblib workers for the chunked bank passes and scoring."""

_BANK_ATTRS = """query_bank_ : ndarray of shape (n_bank_queries, d)
        Unique, L2-normalised query halves of the training pairs.
    gallery_bank_ : ndarray of shape (n_bank_gallery, d)
        Unique, L2-normalised gallery halves of the training pairs.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``."""


#: Fills the parameter and attribute entries every estimator shares.
_doc = fill_doc(common=_COMMON_DOC, attrs=_BANK_ATTRS)
