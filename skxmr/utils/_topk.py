"""Exact top-k selection per row with deterministic ties (lower column first).

One implementation serves LocalAdj neighbourhoods (:mod:`skxmr.graph`),
k-occurrence (:mod:`skxmr.metrics.hubness`) and the serving index's
``kneighbors`` (:mod:`skxmr._base`), so all of them break ties the same way.

numpy arrays take a candidate-based path in cache-sized row blocks (below);
other arrays (torch, on their device, or any array API namespace) take the
threshold from their backend's partial selection (``nx.row_top``, see
:mod:`skxmr.utils._backend`) and keep the tied entries in column order.
"""

import math

import numpy as np

from ._backend import get_backend, is_numpy, stable_argsort

#: Bytes of ``W`` one numpy block covers: its comparison and gather passes
#: stay in cache instead of streaming whole-matrix masks through memory.
BLOCK_BYTES = 1 << 21


def row_candidates(W, m):
    """Per row, a superset of the entries >= the row's ``m``-th largest.

    Returns ``(V, C)`` of shape (n_rows, width): the candidate values and
    their columns in increasing column order, padded on the right with
    ``-inf`` / ``n_cols``; or ``None`` when the candidates would not be
    fewer than half the row (then the caller selects on the whole row).

    ``np.partition`` of whole rows selects ``n_cols`` values per row. When
    ``m`` is a small fraction of the row, a strided subsample of
    ``n_cols / s >= m`` columns is partitioned first: its ``m``-th largest
    value ``L`` is a lower bound of the row's (the row holds at least the
    subsample's ``m`` values >= L), so the entries ``>= L`` -- about ``s·m``
    per row -- hold the row's ``m`` largest and every entry tied with the
    ``m``-th. With ``s ≈ sqrt(n_cols / m)`` both selections are ~10× smaller
    than the row for k = 1 %.
    """
    n_rows, n_cols = W.shape
    stride = min(math.isqrt(n_cols // m), n_cols // m)
    if stride < 3:
        return None
    sub = W[:, ::stride]
    n_sub = sub.shape[1]  # >= m because stride <= n_cols // m
    bound = np.partition(sub, n_sub - m, axis=1)[:, n_sub - m, None]
    # flatnonzero is row-major like nonzero (increasing columns per row) but
    # much faster on 2-D masks; per-row counts from where each row starts
    flat = np.flatnonzero(W >= bound)
    starts = np.searchsorted(flat, np.arange(n_rows + 1) * n_cols)
    counts = np.diff(starts)  # each >= m
    width = int(counts.max())
    if 2 * width > n_cols:  # heavy ties: the plain selection is cheaper
        return None
    rows = flat // n_cols
    # 1-D scatter into the padded (n_rows, width) arrays
    cols = flat - rows * n_cols
    C = np.full(n_rows * width, n_cols, dtype=np.intp)
    V = np.full(n_rows * width, -np.inf, dtype=W.dtype)
    target = rows * width + (np.arange(flat.size) - starts[rows])
    C[target] = cols
    V[target] = W.reshape(-1)[flat] if W.flags.c_contiguous else W[rows, cols]
    V, C = V.reshape(n_rows, width), C.reshape(n_rows, width)
    return V, C


def _blocks(W):
    step = max(1, BLOCK_BYTES // max(1, W.shape[1] * W.itemsize))
    return [slice(i, min(i + step, W.shape[0])) for i in range(0, W.shape[0], step)]


def row_largest(W, m):
    """The ``m`` largest values of each row of ``W``, unordered: (n_rows, m)."""
    if not isinstance(W, np.ndarray):
        return get_backend(W=W).row_top(W, m)[0]
    out = np.empty((W.shape[0], m), dtype=W.dtype)
    for rows in _blocks(W):
        found = row_candidates(W[rows], m)
        V = W[rows] if found is None else found[0]
        out[rows] = np.partition(V, V.shape[1] - m, axis=1)[:, V.shape[1] - m :]
    return out


def row_kth_largest(W, m):
    """The ``m``-th largest value of each row of ``W`` (exact)."""
    nx = get_backend(W=W)
    return nx.min(row_largest(W, m), axis=1)


def _kept(V, t, m, nx):
    """Mask of the ``m`` entries of each row of ``V`` that are > ``t`` or,
    tied with ``t``, first in row order (``t`` is the row's m-th largest)."""
    keep = V > t
    tied = V == t
    need = m - nx.count_true(keep, axis=1)  # >= 1: t is not in V > t
    # cumsum of the ties ranks them in row (column) order
    return keep | (tied & (nx.cumsum(tied, axis=1) <= need[:, None]))


def top_k_mask(W, m):
    """Boolean mask of the entries :func:`top_k_indices` keeps, on any
    backend (POT's ``nx`` after the threshold from ``nx.row_top``)."""
    nx = get_backend(W=W)
    t = nx.min(nx.row_top(W, m)[0], axis=1)[:, None]  # an element of W: == is exact
    return _kept(W, t, m, nx)


def _top_k_block(W, m):
    n_rows, n_cols = W.shape
    found = row_candidates(W, m)
    V, C = (W, None) if found is None else found
    width = V.shape[1]
    t = np.partition(V, width - m, axis=1)[:, width - m, None]  # an element of V: == is exact
    keep = V > t
    need = m - np.count_nonzero(keep, axis=1)
    tied = V == t
    extra = np.flatnonzero(np.count_nonzero(tied, axis=1) > need)
    if extra.size:
        # Only rows with more ties than free slots need the cumulative count.
        rank = np.cumsum(tied[extra], axis=1)
        tied[extra] &= rank <= need[extra, None]
    keep |= tied
    if C is None:  # flatnonzero is row-major like nonzero but faster on 2-D masks
        return (np.flatnonzero(keep) % n_cols).reshape(n_rows, m)
    return C[keep].reshape(n_rows, m)


def top_k_indices(W, m):
    """Column indices of the ``m`` largest entries of each row, ties resolved.

    Exactly ``m`` entries are kept per row. Entries tied with the ``m``-th
    largest value are kept in increasing column order (lower bank index
    first) until the row holds ``m``, so the result does not depend on the
    selection algorithm or the backend.

    Parameters
    ----------
    W : array of shape (n_rows, n_cols)
        numpy, or (under array API dispatch) a torch tensor on any device.
    m : int, 1 <= m <= n_cols

    Returns
    -------
    indices : array of shape (n_rows, m)
        Kept columns of each row, in increasing column order (int64 on the
        device of ``W`` for tensors).
    """
    n_rows, n_cols = W.shape
    if not isinstance(W, np.ndarray):
        nx = get_backend(W=W)
        return nx.reshape(nx.where(top_k_mask(W, m))[1], (n_rows, m))
    if m == n_cols:
        return np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    out = np.empty((n_rows, m), dtype=np.intp)
    for rows in _blocks(W):
        out[rows] = _top_k_block(W[rows], m)
    return out


def sorted_top_k(S, k):
    """Values and columns of each row's ``k`` largest entries, best first.

    Ties are broken towards the lower column, on every backend (numpy's
    exact selection of :func:`skxmr.utils._topk.top_k_indices`; elsewhere
    the backend's partial selection of ``k + 1``, with rows tied at the
    ``k``-th value re-selected by a threshold that keeps the tied entries in
    column order).
    """
    nx = get_backend(scores=S)
    if is_numpy(nx):
        idx = top_k_indices(S, k)  # exact, ties to the lower gallery index
    else:
        idx = _sorted_top_k_columns(S, k, nx)
    part = nx.take_along_axis(S, idx, 1)
    order = stable_argsort(part, axis=1, descending=True)
    return nx.take_along_axis(part, order, 1), nx.take_along_axis(idx, order, 1)


def _sorted_top_k_columns(S, k, nx):
    """Columns of each row's ``k`` largest entries in increasing column
    order, ties to the lower column, on a non-numpy backend."""
    n_rows, n_cols = S.shape
    if k == n_cols:
        return nx.reshape(nx.where(nx.zeros(S.shape, type_as=S) == 0)[1], (n_rows, n_cols))
    vals, idx = nx.row_top(S, k + 1)
    order = stable_argsort(vals, axis=1, descending=True)
    vals, idx = nx.take_along_axis(vals, order, 1), nx.take_along_axis(idx, order, 1)[:, :k]
    if bool(nx.any(vals[:, k - 1] == vals[:, k])):  # which tied entry is kept matters
        idx = nx.reshape(nx.where(_kept(S, vals[:, k - 1 : k], k, nx))[1], (n_rows, k))
    return nx.sort(idx, axis=1)
