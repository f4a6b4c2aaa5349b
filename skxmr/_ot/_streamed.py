"""Streamed Sinkhorn: kernel blocks rebuilt from embedding products on every pass."""

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from scipy.linalg.blas import dgemv as _dgemv

from ..utils._backend import get_backend
from . import _common
from ._common import NUMPY_NX as _NX
from ..utils._chunking import row_slices
from ._common import (_blas_threads, _budget_bytes, _check_marginals, _finite, _fits,
                      _one_blas_thread, _passes, _SpreadTooLarge)
from ._dense import _scaling_iterations, _solve_dense
from ._generic import nx_sinkhorn, product_source
from ._log import _streamed_log
from ..utils._compat import local_joblib_backend
from ..utils._math import scaled_product_dtype
from ._pot import check_pot_memory, pot_sinkhorn


def _streamed_scaling(product, dtype, n_rows, n_cols, temperature, a, b, max_iter, tol, *,
                      working_memory, n_jobs, exact_error=False):
    """Sinkhorn-Knopp on blocks ``product(rows, out) = M[rows] / τ``, never stored.

    The scaling domain of :func:`_scaling_iterations` (rows shifted by their
    maximum, the same spread bound) with the kernel rebuilt from its matrix
    product on every pass. Per entry and iteration: one product, written
    once in the inputs' precision into a chunk buffer reused for every
    chunk (the dominant cost: a large row chunk keeps the GEMM efficient),
    read once more by the elementwise work, which runs on sub-blocks of a
    few complete rows in a float64 buffer that stays in the CPU cache:
    shift, ``exp``, ``K c``, the row update and the block's share of
    ``Kᵀ r`` (accumulated in place by ``dgemv``). Row maxima are taken in
    the first pass.

    ``n_jobs=None`` runs one contiguous run of chunks per BLAS thread in
    Python threads (each with a one-thread BLAS: GEMM and elementwise work
    on all cores), sharing the ``working_memory`` budget; otherwise (or
    under a distributed joblib backend such as dask) the runs go to joblib
    workers, each within the budget.
    """
    item = np.dtype(dtype).itemsize
    budget = _budget_bytes(working_memory)
    min_bytes = (item + 8) * n_cols  # one product row and one kernel row
    if working_memory is not None and budget < min_bytes:
        raise ValueError(
            f"working_memory={working_memory} MiB is too small for one row "
            f"({min_bytes / 2**20:.3g} MiB)."
        )
    # Local threads unless joblib workers were asked for: n_jobs, or a
    # distributed joblib backend (dask, ray) the caller made active.
    threads = n_jobs is None and local_joblib_backend()
    n_workers = _blas_threads() if threads else effective_n_jobs(n_jobs)
    if threads:  # the budget is shared by the threads of this call
        n_workers = max(1, min(n_workers, int(budget // min_bytes), n_rows))
    per_worker = budget / n_workers if threads else budget
    sub = max(1, int(min(_common.BLOCK_BYTES, per_worker / 4) // (8 * n_cols)))
    chunk = max(1, min(int((per_worker - 8 * sub * n_cols) // (item * n_cols)), n_rows))
    slices = row_slices(n_rows, chunk)
    n_runs = max(1, min(n_workers, len(slices)))
    runs = [slices[len(slices) * i // n_runs: len(slices) * (i + 1) // n_runs]
            for i in range(n_runs)]
    runs = [(run[0].start, run[-1].stop, run) for run in runs]
    max_spread = _common.SCALING_DOMAIN_MAX_SPREAD
    state = {"row_max": None}

    def run(lo, hi, chunks, c, prev, row_max):
        """One pass over the rows [lo, hi): their row scaling (and maxima in
        the first pass), their share of Kᵀ r and of the squared error."""
        E_buf = np.empty((min(chunk, hi - lo), n_cols), dtype=dtype)
        K_buf = np.empty((sub, n_cols))
        r = np.empty(hi - lo)
        mx_run = np.empty(hi - lo) if row_max is None else row_max[lo:hi]
        acc = np.zeros(n_cols)
        sq = 0.0
        for rows in chunks:
            E = product(rows, E_buf[: rows.stop - rows.start])
            for s0 in range(0, E.shape[0], sub):
                Es = E[s0: s0 + sub]
                g = slice(rows.start - lo + s0, rows.start - lo + s0 + Es.shape[0])
                K = K_buf[: Es.shape[0]]
                if row_max is None:
                    mx = Es.max(axis=1).astype(np.float64)
                    if np.any(mx - Es.min(axis=1) > max_spread):
                        raise _SpreadTooLarge
                    mx_run[g] = mx
                else:
                    mx = mx_run[g]
                np.subtract(Es, mx[:, None], out=K)
                np.exp(K, out=K)
                Kc = _NX.dot(K, c)  # POT's backend primitive (np.dot on numpy)
                ga = a[lo:hi][g]
                if prev is not None:
                    d = prev[lo:hi][g] * Kc - ga
                    sq += float(d @ d)
                rb = ga / Kc
                r[g] = rb
                _dgemv(1.0, K.T, rb, beta=1.0, y=acc, overwrite_y=1)  # acc += Kᵀ rb
        return r, mx_run, acc, sq

    def sweep(c, prev):
        args = [(lo, hi, chunks, c, prev, state["row_max"]) for lo, hi, chunks in runs]
        if threads and n_runs > 1:
            parts = list(pool.map(lambda x: run(*x), args))
        elif threads:
            parts = [run(*args[0])]
        else:
            parts = Parallel(n_jobs=n_jobs)(delayed(run)(*x) for x in args)
        if state["row_max"] is None:
            state["row_max"] = np.concatenate([p[1] for p in parts])
        r = np.concatenate([p[0] for p in parts])
        acc = parts[0][2]
        for p in parts[1:]:
            acc += p[2]
        return r, acc, sum(p[3] for p in parts)

    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"), \
            (_one_blas_thread() if threads else nullcontext()), \
            ThreadPoolExecutor(n_runs) as pool:
        r, c, n_iter, err = _passes(sweep, lambda acc: b / acc,
                                    np.full(n_cols, 1.0 / n_cols), max_iter, tol,
                                    exact_error=exact_error)
        log_c = np.log(c)
        log_r = np.log(r) - (state["row_max"] - 1.0 / temperature)
    return log_c, log_r, n_iter, err


def _embedding_potentials(B, blocks, temperature, max_iter, tol, a=None, b=None, *,
                          working_memory, n_jobs, method="auto", exact_error=False):
    """Sinkhorn of ``M = B [C_1 | C_2 | ...]ᵀ`` from validated embeddings.

    The column blocks are never stacked (DBSN's gallery and gallery bank
    stay where they are). numpy arrays take the numpy specialisation below,
    other backends (torch, CPU or CUDA) the generic path of :mod:`._generic`;
    ``method`` other than ``"auto"`` runs POT's solver on the stored matrix.
    ``exact_error=None`` never spends a pass beyond ``max_iter`` on the
    reported error (see :func:`._common._passes`). Returns ``(log_c, log_r,
    n_iter, err, log_domain, streamed)``.
    """
    named = {"bank": B, **{f"columns[{i}]" if len(blocks) > 1 else "columns": C
                          for i, C in enumerate(blocks)}}
    nx = get_backend(**named)
    n_rows, n_cols = B.shape[0], sum(C.shape[0] for C in blocks)
    a, b = _check_marginals(a, b, n_rows, n_cols, like=B)
    if method != "auto":
        check_pot_memory(method, n_rows, n_cols, working_memory, B)
        like64 = a
        zero = nx.zeros((1, 1), type_as=like64)
        Bf = B + zero  # float64 products: the stored matrix's precision
        M = nx.concatenate([nx.dot(Bf, (C + zero).T) for C in blocks], axis=1)
        return pot_sinkhorn(nx, M, temperature, max_iter, tol, a, b, method) + (False,)
    fits = _fits(8 * n_rows * n_cols, working_memory, B)
    if not isinstance(B, np.ndarray):
        inv_tau = 1.0 / temperature
        if fits:  # float64 products, as the numpy path: same potentials for both dtypes
            zero = nx.zeros((1, 1), type_as=a)
            source = product_source(nx, B + zero, [C + zero for C in blocks], inv_tau, a)
        else:
            source = product_source(nx, B, blocks, inv_tau, a)
        item = 8 if fits else max(B.dtype.itemsize, 4)
        out = nx_sinkhorn(nx, source, n_rows, n_cols, temperature, a, b, max_iter, tol,
                          store=fits, item_bytes=item, exact_error=exact_error,
                          working_memory=working_memory, like64=a)
        return out + (not fits,)
    bounds = np.cumsum([0] + [C.shape[0] for C in blocks])
    if not fits and working_memory is None and _fits(4 * n_rows * n_cols, None, B):
        # The memory-aware default: a float32 kernel (float32 products,
        # row-shifted, spread within FLOAT32_KERNEL_MAX_SPREAD) where the
        # float64 one does not fit; streamed when the spread is larger.
        K = np.empty((n_rows, n_cols), dtype=np.float32)
        B32 = B.astype(np.float32, copy=False)
        for C, lo, hi in zip(blocks, bounds, bounds[1:]):
            np.matmul(B32, C.astype(np.float32, copy=False).T, out=K[:, lo:hi])
        try:
            out = _scaling_iterations(K, K, temperature, a, b, max_iter, tol, n_jobs)
        except _SpreadTooLarge:
            pass
        else:
            if _finite(*out[:2], out[3]):
                return out + (False, False)
        finally:
            del K
    if fits:
        # Fits: one float64 matrix, its products in float64 whatever the
        # input dtype, so float32 and float64 inputs give the same potentials.
        M = np.empty((n_rows, n_cols))
        B64 = B.astype(np.float64, copy=False)
        for C, lo, hi in zip(blocks, bounds, bounds[1:]):
            np.matmul(B64, C.astype(np.float64, copy=False).T, out=M[:, lo:hi])
    # Streamed: products in the inputs' precision (float32 GEMM is twice as
    # fast and the dominant cost). Stored: the log-domain fallback recomputes
    # the stored matrix's float64 products.
    dtype = np.float64 if fits else scaled_product_dtype(1.0 / temperature, B, *blocks)
    B = B.astype(dtype, copy=False)
    blocks = [C.astype(dtype, copy=False) for C in blocks]

    def product(rows, out):
        Bs = np.multiply(B[rows], 1.0 / temperature, dtype=dtype)  # 1/τ on the chunk
        for C, lo, hi in zip(blocks, bounds, bounds[1:]):
            np.matmul(Bs, C.T, out=out[:, lo:hi])
        return out

    if fits:
        return _solve_dense(M, temperature, max_iter, tol, a, b, working_memory=None,
                            n_jobs=n_jobs, product=product) + (False,)
    args = (product, dtype, n_rows, n_cols, temperature, a, b, max_iter, tol)
    try:
        out = _streamed_scaling(*args, working_memory=working_memory, n_jobs=n_jobs,
                                exact_error=exact_error)
    except _SpreadTooLarge:
        pass  # small τ: the log domain
    else:
        if _finite(*out[:2], out[3]):
            return out + (False, True)
    out = _streamed_log(*args, exact_error=exact_error, working_memory=working_memory,
                        n_jobs=n_jobs)
    return out + (True, True)
