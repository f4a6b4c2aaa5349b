"""Sinkhorn on a stored similarity matrix: the scaling domain, one pass per iteration."""

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..utils._chunking import row_slices
from . import _common
from ._common import NUMPY_NX as _NX
from ._common import ScaledRows, _blas_threads, _budget_bytes, _finite, _fits, _one_blas_thread, _SpreadTooLarge
from ._log import _streamed_log


def _scaling_iterations(M, K, temperature, a, b, max_iter, tol, n_jobs=None):
    """Sinkhorn-Knopp in the scaling domain, one memory pass per iteration.

    ``K`` (which may be ``M`` itself) receives the row-shifted kernel
    ``exp((M - m) / τ)``, ``m_i = max_j M_ij``, during the first iteration.
    The true kernel is ``diag(e) K`` with ``e_i = exp((m_i - 1) / τ)`` (never
    formed: it may underflow). A row factor only rescales the row scaling:
    from the same start ``c = 1 / n_cols`` the iterates on ``K`` are
    ``(e r, c)``, so ``c`` is exactly POT's and ``log r`` is off by
    ``log e``. Every row of ``K`` has a maximum of 1 (no row can vanish) and
    entries at least ``exp(-SCALING_DOMAIN_MAX_SPREAD)``; a row spanning
    more raises ``_SpreadTooLarge`` (before the first iteration completes)
    and the caller switches to the log domain.

    Row blocks of about ``BLOCK_BYTES`` are processed while they sit in the
    CPU cache: ``r_B = a_B / (K_B c)`` needs only the block, and the block's
    share ``K_Bᵀ r_B`` of the column update is accumulated at once. An
    iteration thus reads the kernel once instead of twice (a plain loop
    ``r = a / (K c); c = b / (Kᵀ r)`` reads it twice), with the same
    iterates up to summation order. The small per-block products run on one
    BLAS thread each; instead, contiguous runs of blocks go to ``n_jobs``
    Python threads (default: as many as BLAS would use; numpy releases the GIL), each
    accumulating its own share of ``Kᵀ r``: one core cannot saturate the
    memory bandwidth this loop is bound by.

    A float32 ``K`` (the memory-aware default's kernel when the float64 one
    does not fit) halves the memory read per iteration; its entries are
    kept at least ``exp(-FLOAT32_KERNEL_MAX_SPREAD)`` (normal float32
    numbers), and scalings and sums stay float64.

    Returns ``log c``, ``log r``, iterations done and the row-marginal error.
    """
    n_rows, n_cols = K.shape
    inv_tau = 1.0 / temperature
    bound = (_common.FLOAT32_KERNEL_MAX_SPREAD if K.dtype == np.float32
             else _common.SCALING_DOMAIN_MAX_SPREAD)
    max_spread = bound * temperature
    blocks = row_slices(n_rows, max(1, _common.BLOCK_BYTES // (8 * n_cols)))
    n_threads = max(1, min(_blas_threads(n_jobs), len(blocks)))
    # contiguous runs of blocks, one per thread (disjoint rows of K and r)
    groups = [blocks[len(blocks) * t // n_threads: len(blocks) * (t + 1) // n_threads]
              for t in range(n_threads)]
    row_max = np.empty(n_rows)
    c = np.full(n_cols, 1.0 / n_cols)
    r = np.empty(n_rows)
    r_prev = np.empty(n_rows)

    def sweep(group, it, check):
        """One pass over a run of row blocks: r there, and its K_Bᵀ r_B."""
        KTr = np.zeros(n_cols)
        part = np.empty(n_cols)
        sq_err = 0.0
        for rows in group:
            Kb = K[rows]
            if it == 0:  # build this block of the kernel, in cache
                Mb = M[rows]
                mx = Mb.max(axis=1)
                if np.any(mx - Mb.min(axis=1) > max_spread):
                    raise _SpreadTooLarge
                row_max[rows] = mx
                np.subtract(Mb, mx[:, None], out=Kb, dtype=K.dtype)
                Kb *= inv_tau
                np.exp(Kb, out=Kb)
            Kc = _NX.dot(Kb, c)  # POT's backend primitive (np.dot on numpy)
            if check:
                # r * (K c) is the row sum of the current plan: its error is
                # free in the pass that computes K c for the next row update.
                d = r[rows] * Kc - a[rows]
                sq_err += float(d @ d)
            rb = a[rows] / Kc
            r[rows] = rb
            np.dot(rb, Kb, out=part)
            KTr += part
        return KTr, sq_err

    err = None
    n_iter = 0
    # Any over/underflow shows up as non-finite logs, checked by the caller.
    with _one_blas_thread(), np.errstate(over="ignore", under="ignore",
                                         divide="ignore", invalid="ignore"), \
            ThreadPoolExecutor(n_threads) as pool:
        for it in range(max_iter):
            check = tol is not None and it > 0
            if check:
                r_prev[:] = r
            if n_threads == 1:
                parts = [sweep(groups[0], it, check)]
            else:
                parts = list(pool.map(sweep, groups, [it] * n_threads,
                                      [check] * n_threads))
            sq_err = sum(p[1] for p in parts)
            if check and math.sqrt(sq_err) < tol:
                r, err = r_prev, math.sqrt(sq_err)  # keep the converged iterate
                break
            c = b / sum(p[0] for p in parts)
            n_iter += 1
        if err is None:  # K @ c in K's precision: no float64 copy of K
            err = float(np.linalg.norm(r * (K @ c.astype(K.dtype)) - a))
        log_c = np.log(c)
        log_r = np.log(r) - (row_max - 1.0) / temperature
    return log_c, log_r, n_iter, err


# ------------------------------------------------------------ public core
def _solve_dense(M, temperature, max_iter, tol, a, b, *, working_memory, n_jobs,
                 product=None):
    """Potentials of a stored similarity matrix.

    The kernel gets its own float64 buffer (one pass per iteration over it,
    :func:`_scaling_iterations`) when it fits (``_common._fits``: an
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
