"""Sinkhorn on a stored similarity matrix: the scaling domain, the plain loop on the kernel."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..utils._chunking import row_slices
from . import _common
from ._common import NUMPY_NX as _NX
from ._common import ScaledRows, _blas_threads, _budget_bytes, _finite, _fits, _SpreadTooLarge
from ._log import _streamed_log


def _build_block(M, K, rows, inv_tau, max_spread):
    """Row-shifted kernel rows ``K[rows] = exp((M[rows] - m) / τ)`` (in the
    cache, one block) and their maxima ``m``; raises ``_SpreadTooLarge``
    beyond the domain's bound."""
    Mb, Kb = M[rows], K[rows]
    mx = Mb.max(axis=1)
    if np.any(mx - Mb.min(axis=1) > max_spread):
        raise _SpreadTooLarge
    np.subtract(Mb, mx[:, None], out=Kb, dtype=K.dtype)
    Kb *= K.dtype.type(inv_tau)
    np.exp(Kb, out=Kb)
    return mx


def _scaling_iterations(M, K, temperature, a, b, max_iter, tol, n_jobs=None):
    """Sinkhorn-Knopp in the scaling domain on a stored kernel.

    ``K`` (which may be ``M`` itself) receives the row-shifted kernel
    ``exp((M - m) / τ)``, ``m_i = max_j M_ij``, built once in cache-sized
    row blocks by ``n_jobs`` threads (default: as many as BLAS would use).
    The true kernel is ``diag(e) K`` with ``e_i = exp((m_i - 1) / τ)``
    (never formed: it may underflow). A row factor only rescales the row
    scaling: from the same start ``c = 1 / n_cols`` the iterates on ``K``
    are ``(e r, c)``, so ``c`` is exactly POT's and ``log r`` is off by
    ``log e``. Every row of ``K`` has a maximum of 1 (no row can vanish) and
    entries at least ``exp(-SCALING_DOMAIN_MAX_SPREAD)``; a row spanning
    more raises ``_SpreadTooLarge`` (before any iteration) and the caller
    switches to the log domain.

    Every iteration is the plain loop ``r = a / (K c)``, ``c = b / (Kᵀ r)``:
    two matrix-vector products over the whole kernel, each one BLAS call
    on all of BLAS's threads (memory-bound: the kernel is read twice, with
    no per-block reduction and no thread synchronisation beyond BLAS's).

    A float32 ``K`` (float32 embeddings, or the memory-aware default when
    the float64 kernel does not fit) halves the memory read per iteration;
    its entries are kept at least ``exp(-FLOAT32_KERNEL_MAX_SPREAD)``
    (normal float32 numbers), its products run in float32 BLAS (float32
    sums of positive terms) and the scalings stay float64.

    Returns ``log c``, ``log r``, iterations done and the row-marginal error.
    """
    n_rows, n_cols = K.shape
    work = K.dtype.type
    bound = (_common.FLOAT32_KERNEL_MAX_SPREAD if K.dtype == np.float32
             else _common.SCALING_DOMAIN_MAX_SPREAD)
    blocks = row_slices(n_rows, max(1, _common.BLOCK_BYTES // (K.itemsize * n_cols)))
    n_threads = max(1, min(_blas_threads(n_jobs), len(blocks)))
    # Any over/underflow shows up as non-finite logs, checked by the caller.
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        with ThreadPoolExecutor(n_threads) as pool:
            row_max = np.concatenate(list(pool.map(
                _build_block, [M] * len(blocks), [K] * len(blocks), blocks,
                [1.0 / temperature] * len(blocks), [bound * temperature] * len(blocks))))
        c = np.full(n_cols, 1.0 / n_cols)
        r, err, n_iter = None, None, 0
        for _ in range(max_iter):
            Kc = _NX.dot(K, c.astype(work, copy=False))  # POT's primitive (np.dot)
            if tol is not None and r is not None:
                e = float(np.linalg.norm(r * Kc - a))
                if e < tol:
                    err = e  # keep the converged iterate
                    break
            r = a / Kc
            c = b / _NX.dot(r.astype(work, copy=False), K)
            n_iter += 1
        if err is None:
            err = float(np.linalg.norm(r * _NX.dot(K, c.astype(work, copy=False)) - a))
        log_c = np.log(c)
        log_r = np.log(r) - (row_max - 1.0) / temperature
    return log_c, log_r, n_iter, err


# ------------------------------------------------------------ public core
def _solve_dense(M, temperature, max_iter, tol, a, b, *, working_memory, n_jobs,
                 product=None):
    """Potentials of a stored similarity matrix.

    The kernel gets its own float64 buffer (two BLAS matrix-vector products
    per iteration over it, :func:`_scaling_iterations`) when it fits (``_common._fits``: an
    explicit ``working_memory``, or by default half the available memory);
    otherwise, and for spreads beyond the scaling domain, the
    log domain runs over cache-sized chunks of ``M``. With ``product``
    (``product(rows, out) = M[rows] / τ`` from embeddings), ``M`` is a
    float64 buffer the caller gives away: it becomes the kernel in place
    (peak memory: one matrix) and ``product`` recomputes its blocks for
    the log domain.
    """
    n_rows, n_cols = M.shape
    inv_tau = 1.0 / temperature
    if product is not None or _fits(8 * M.size, working_memory):
        K = M if product is not None else np.empty((n_rows, n_cols))
        try:
            out = _scaling_iterations(M, K, temperature, a, b, max_iter, tol, n_jobs)
        except _SpreadTooLarge:
            pass  # the expected way to the log domain (small τ)
        else:
            if _finite(*out[:2], out[3]):
                return out + (False,)
        finally:
            del K
    if product is None:
        product = ScaledRows(M, inv_tau)
    else:
        del M  # the kernel now: let it go before the log-domain buffers
    # Cache-sized chunks, but never above the caller's budget (which
    # chunk_n_rows rejects if it cannot hold one row).
    row_mib = 16 * n_cols / 2**20
    chunk_mib = min(_budget_bytes(working_memory) / 2**20, max(_common.LOG_DOMAIN_CHUNK_MIB, row_mib))
    out = _streamed_log(
        product, n_rows, n_cols, temperature, a, b, max_iter, tol, exact_error=True,
        working_memory=chunk_mib, n_jobs=n_jobs,
    )
    return out + (True,)
