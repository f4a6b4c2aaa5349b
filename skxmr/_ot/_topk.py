"""Exact top-k selection per row with deterministic ties (lower column first).

One implementation serves LocalAdj neighbourhoods (:mod:`skxmr.graph`),
k-occurrence (:mod:`skxmr.metrics.hubness`) and the serving index's
``kneighbors`` (:mod:`skxmr._base`), so all of them break ties the same way.
"""

import math

import numpy as np


def row_kth_largest(W, m):
    """The ``m``-th largest value of each row of ``W`` (exact)."""
    return row_largest(W, m).min(axis=1)


def row_largest(W, m):
    """The ``m`` largest values of each row of ``W``, unordered: (n_rows, m).

    ``np.partition`` of whole rows copies and selects ``n_cols`` values per
    row. When ``m`` is a small fraction of the row, a strided subsample of
    ``n_cols / s >= m`` columns is partitioned first: its ``m``-th largest
    value ``L`` is a lower bound of the row's (the row holds at least the
    subsample's ``m`` values >= L), so the row's ``m`` largest values are
    among the candidates ``W >= L`` -- about ``s·m`` per row -- which are
    gathered (padded with -inf) and partitioned exactly. With
    ``s ≈ sqrt(n_cols / m)`` both partitions are ~10× smaller for k = 1 %.
    """
    n_rows, n_cols = W.shape
    stride = min(math.isqrt(n_cols // m), n_cols // m)
    if stride >= 3:
        sub = W[:, ::stride]
        n_sub = sub.shape[1]  # >= m because stride <= n_cols // m
        bound = np.partition(sub, n_sub - m, axis=1)[:, n_sub - m, None]
        candidates = W >= bound
        counts = np.count_nonzero(candidates, axis=1)  # each >= m
        width = int(counts.max())
        if 2 * width <= n_cols:  # else (heavy ties) the plain partition is cheaper
            flat = np.flatnonzero(candidates)
            rows = flat // n_cols
            offsets = np.cumsum(counts) - counts
            V = np.full((n_rows, width), -np.inf, dtype=W.dtype)
            V[rows, np.arange(flat.size) - offsets[rows]] = W.reshape(-1)[flat]
            return np.partition(V, width - m, axis=1)[:, width - m :]
    return np.partition(W, n_cols - m, axis=1)[:, n_cols - m :]


def top_k_indices(W, m):
    """Column indices of the ``m`` largest entries of each row, ties resolved.

    Exactly ``m`` entries are kept per row. Entries tied with the ``m``-th
    largest value are kept in increasing column order (lower bank index
    first) until the row holds ``m``, so the result does not depend on the
    partition algorithm.

    Parameters
    ----------
    W : ndarray of shape (n_rows, n_cols)
    m : int, 1 <= m <= n_cols

    Returns
    -------
    indices : ndarray of shape (n_rows, m)
        Kept columns of each row, in increasing column order.
    """
    n_rows, n_cols = W.shape
    if m == n_cols:
        return np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    t = row_kth_largest(W, m)[:, None]  # an element of W, so == is exact
    keep = W > t
    need = m - np.count_nonzero(keep, axis=1)  # >= 1: t is not in W > t
    tied = W == t
    extra = np.flatnonzero(np.count_nonzero(tied, axis=1) > need)
    if extra.size:
        # Only rows with more ties than free slots need the cumulative count.
        rank = np.cumsum(tied[extra], axis=1)
        tied[extra] &= rank <= need[extra, None]
    keep |= tied
    # flatnonzero is row-major like nonzero but much faster on 2-D masks.
    return (np.flatnonzero(keep) % n_cols).reshape(n_rows, m)
