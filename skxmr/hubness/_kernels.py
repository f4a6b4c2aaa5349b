"""Kernels shared by the hubness estimators: log-partitions, activation sets,
the mean of the top k and gated offsets (numerics only; the family's
parameters and docstring pieces live in :mod:`skxmr.hubness._base`)."""

import operator
import threading

import numpy as np

from ..utils._backend import astype, get_backend, is_numpy
from ..utils._math import relative_offsets
from ..utils._chunking import map_row_chunks, reduce_row_chunks
from ..utils._math import scaled_product_dtype
from ..utils._topk import row_largest

# log of the smallest positive float64: no non-zero |cosine| has a smaller log.
_LOG_TINY = float(np.log(np.finfo(np.float64).smallest_subnormal))

# Tiles of the numpy log-partition pass: TILE_ROWS gallery rows times as many
# bank columns as keep the product tile and its float64 work tile within
# TILE_BYTES. The tiles stay in cache, are reused by every tile of a call and,
# per thread, by later calls (no fresh buffers to first-touch), so the cost
# per entry does not depend on the problem size; the per-row
# log-sum-exp is merged across column tiles.
TILE_ROWS = 1024
TILE_BYTES = 32 << 20
_tiles = threading.local()


def _reused(name, size, dtype):
    """A flat work array of ``size`` entries, reused per thread across calls."""
    cache = _tiles.__dict__.setdefault("cache", {})
    key = (name, np.dtype(dtype).str)
    buf = cache.get(key)
    if buf is None or buf.size < size:
        buf = cache[key] = np.empty(size, dtype=dtype)
    return buf[:size]


def _prefer(nx):
    """joblib hint: threads for device arrays (see map_row_chunks)."""
    return None if is_numpy(nx) else "threads"


# ---------------------------------------------------------------- kernels
def _log_partition(gallery, bank, temperature, n_jobs=None):
    """``τ·log Σ_b exp(<b, g>/τ)`` for every gallery row ``g``, in float64.

    This is the inverted-softmax potential ``h(g)`` (the log of the column
    sum of ``exp(Sbq/τ)``), computed on the transposed problem ``G Bᵀ``.
    ``1/τ`` is folded into the gallery rows and the products are taken in
    the inputs' precision (float32 products are twice as fast); each row is
    shifted by its maximum in float64, so the exponentials cannot underflow
    whatever τ. numpy runs in cache-sized tiles (see ``TILE_BYTES``); other
    backends (torch, on its device) in memory-bounded row chunks through
    POT's backend (``nx.dot``, ``nx.logsumexp``).
    """
    nx = get_backend(gallery=gallery, bank=bank)
    inv = 1.0 / temperature
    if not is_numpy(nx):
        if abs(inv) > 1e37:  # τ times a cosine would overflow float32
            gallery, bank = astype(gallery, "float64"), astype(bank, "float64")
        parts = map_row_chunks(_log_partition_chunk, gallery.shape[0], 16 * bank.shape[0],
                               args=(gallery, bank, temperature), n_jobs=n_jobs,
                               prefer="threads")
        return nx.concatenate(parts) if len(parts) > 1 else parts[0]

    dtype = scaled_product_dtype(inv, gallery, bank)
    bank = bank.astype(dtype, copy=False)
    n_b, d = bank.shape
    sep = dtype != np.float64  # float32 products need a float64 work tile
    per_entry = dtype.itemsize + 8 * sep
    width = int(min(n_b, max(TILE_ROWS, TILE_BYTES // (TILE_ROWS * per_entry))))
    parts = reduce_row_chunks(_log_partition_tiles, gallery.shape[0],
                              per_entry * width + dtype.itemsize * d, operator.add,
                              args=(gallery, bank, temperature, width, sep), n_jobs=n_jobs,
                              max_rows=TILE_ROWS)
    return np.concatenate([h for p in parts for h in p])


def _log_partition_chunk(rows, gallery, bank, temperature):
    """:func:`_log_partition` of a chunk of gallery rows (array API backends)."""
    nx = get_backend(gallery=gallery)
    P = astype(nx.dot(gallery[rows, ...] * (1.0 / temperature), bank.T), "float64")
    return temperature * nx.logsumexp(P, axis=1)


def _log_partition_tiles(chunk, gallery, bank, temperature, width, sep):
    """A worker's :func:`_log_partition` on numpy: cache-sized tiles in
    buffers reused by every chunk of its run."""
    inv = 1.0 / temperature
    dtype = bank.dtype
    n_b, d = bank.shape
    P = _reused("P", chunk * width, dtype)
    W = _reused("W", chunk * width, np.float64) if sep else P
    G_s = _reused("G", chunk * d, dtype)

    def func(rows):
        n = rows.stop - rows.start
        g_s = np.multiply(gallery[rows], inv, out=G_s[: n * d].reshape(n, d), dtype=dtype)
        m = s = None
        for c0 in range(0, n_b, width):
            c = min(width, n_b - c0)
            p = np.matmul(g_s, bank[c0:c0 + c].T, out=P[: n * c].reshape(n, c))
            m_t = p.max(axis=1).astype(np.float64)
            w = np.subtract(p, m_t[:, None], out=W[: n * c].reshape(n, c))
            np.exp(w, out=w)
            s_t = w.sum(axis=1)
            if m is None:
                m, s = m_t, s_t
            else:  # merge the running log-sum-exp with this tile's
                top = np.maximum(m, m_t)
                s = s * np.exp(m - top) + s_t * np.exp(m_t - top)
                m = top
        return [temperature * (np.log(s) + m)]

    return func


def _activation_set(gallery, bank, k, n_jobs=None):
    """QB-Norm's activation set: gallery items in some bank row's top ``k``.

    Returns a boolean mask over the gallery (on the inputs' backend). Each
    bank row needs the whole gallery, so this pass is chunked over bank
    rows. Ties at the ``k``-th score are broken arbitrarily.
    """
    nx = get_backend(gallery=gallery, bank=bank)
    n_g = gallery.shape[0]
    parts = map_row_chunks(_activation_chunk, bank.shape[0], 16 * n_g, args=(gallery, bank, k),
                           n_jobs=n_jobs, prefer=_prefer(nx))
    active = nx.zeros((n_g,), type_as=gallery) > 0  # all False, on the backend
    return nx.scatter(active, nx.concatenate(parts), True)


def _activation_chunk(rows, gallery, bank, k):
    """Top-``k`` gallery ids of the bank rows ``rows`` (flattened)."""
    nx = get_backend(gallery=gallery)
    n_g = gallery.shape[0]
    if k >= n_g:
        return nx.arange(n_g, type_as=gallery)
    M = nx.dot(bank[rows, ...], gallery.T)
    if k == 1:
        return nx.argmax(M, axis=1)
    return nx.reshape(nx.row_top(M, k)[1], (-1,))


def _mean_top_k(items, bank, k, n_jobs=None):
    """Mean of the ``k`` largest similarities of each item to ``bank`` (float64)."""
    nx = get_backend(items=items, bank=bank)
    parts = map_row_chunks(_mean_top_k_chunk, items.shape[0], 16 * bank.shape[0],
                           args=(items, bank, k), n_jobs=n_jobs, prefer=_prefer(nx))
    return nx.concatenate(parts) if len(parts) > 1 else parts[0]


def _mean_top_k_chunk(rows, items, bank, k):
    nx = get_backend(items=items)
    M = nx.dot(items[rows, ...], bank.T)
    if k < bank.shape[0]:
        M = row_largest(M, k)
    return nx.mean(astype(M, "float64"), axis=1)


def _gate(S, active):
    """Rows whose top-1 gallery item (under raw ``S``) is in ``active``: (n, 1)."""
    nx = get_backend(scores=S)
    return active[nx.argmax(S, axis=1)][:, None]


def _gated_offsets(S, gates_and_offsets):
    """``S - Σ_i gate_i(row) · offset_i(g)`` in ``S``'s dtype, in place.

    ``gates_and_offsets``: pairs of an activation mask over the gallery (or
    None: every row) and an offset vector; the gates are taken on the raw
    ``S``. Each offset is applied relative to its reference
    (:func:`skxmr._base.relative_offsets`): a constant per row and factor,
    so no ranking changes and float32 keeps the differences.
    """
    masks = [None if active is None else _gate(S, active) for active, _ in gates_and_offsets]
    for mask, (_, offsets) in zip(masks, gates_and_offsets):
        off = astype(relative_offsets(offsets), S.dtype)
        if mask is None:
            S -= off
        elif isinstance(S, np.ndarray):
            np.subtract(S, off, out=S, where=mask)  # in place, no masked copy
        else:
            S -= get_backend(S=S).where(mask, off, 0.0 * off)
    return S
