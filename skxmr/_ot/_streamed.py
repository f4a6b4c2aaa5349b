"""Streamed Sinkhorn: kernel blocks rebuilt from embedding products on every pass."""

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
from joblib import effective_n_jobs
from scipy.linalg.blas import dgemv as _dgemv

from ..utils._backend import dtype_name, get_backend
from . import _common
from ._common import NUMPY_NX as _NX
from ._common import (BlockProduct, KernelBuffer, _blas_threads, _budget_bytes, _check_marginals,
                      _finite, _fits, _one_blas_thread, _passes, _SpreadTooLarge,
                      map_runs, split_runs)
from ._dense import _scaling_iterations, _solve_dense
from ._generic import nx_sinkhorn, product_source
from ._log import _streamed_log
from ..utils._compat import local_joblib_backend
from ..utils._math import scaled_product_dtype
from ._pot import check_pot_memory, pot_sinkhorn


def _scaling_pass(product, lo, hi, chunks, chunk, sub, c, prev, a, row_max, row_spread,
                  E_buf=None):
    """One scaling-domain pass over the rows [lo, hi) (a module-level task:
    every array travels as an argument, so joblib's process backends can
    run it).

    Each chunk's product is computed into ``E_buf`` (the caller's, reused
    across passes, for threads; otherwise allocated once per task);
    its sub-blocks of ``sub`` rows, in the CPU cache, are shifted by their
    row maxima, exponentiated and serve both ``K c`` (the row update) and
    their share of ``Kᵀ r``. ``row_max=None`` (the first pass) takes the row
    maxima and spreads on the way (in the cache, before the shift).
    A sub-block of float32 products whose rows all span at most
    ``FLOAT32_KERNEL_MAX_SPREAD`` is worked in float32 on the product
    buffer itself (in every pass, the first included: the decision is the
    rows' own, so every pass computes a row's kernel the same way); others
    in float64 in a cache-sized buffer. Returns the rows' scaling, their
    maxima and spreads (first pass), their share of ``Kᵀ r`` and of the
    squared row-marginal error of ``(prev, c)``.
    """
    n_cols = c.shape[0]
    if E_buf is None:
        E_buf = np.empty((min(chunk, hi - lo), n_cols), dtype=product.dtype)
    first = row_max is None
    max_spread = _common.SCALING_DOMAIN_MAX_SPREAD
    bound32 = _common.FLOAT32_KERNEL_MAX_SPREAD if product.dtype == np.float32 else -1.0
    K_buf = c_w = part = None
    r = np.empty(hi - lo)
    mx_run = np.empty(hi - lo) if first else row_max[lo:hi]
    spread_run = np.empty(hi - lo) if first else row_spread[lo:hi]
    a_run = a[lo:hi]
    prev_run = None if prev is None else prev[lo:hi]
    acc = np.zeros(n_cols)
    sq = 0.0
    for rows in chunks:
        E = product(rows, E_buf[: rows.stop - rows.start])
        for s0 in range(0, E.shape[0], sub):
            Es = E[s0: s0 + sub]
            g = slice(rows.start - lo + s0, rows.start - lo + s0 + Es.shape[0])
            if first:
                mx = Es.max(axis=1)
                spread = mx - Es.min(axis=1)
                if np.max(spread) > max_spread:
                    raise _SpreadTooLarge
                mx_run[g], spread_run[g] = mx, spread
            if np.max(spread_run[g]) <= bound32:
                if c_w is None:
                    c_w, part = c.astype(np.float32), np.empty(n_cols, dtype=np.float32)
                K = Es
                np.subtract(Es, mx_run[g].astype(np.float32)[:, None], out=K)
                np.exp(K, out=K)
                Kc = np.dot(K, c_w).astype(np.float64)
            else:
                if K_buf is None:
                    K_buf = np.empty((sub, n_cols))
                K = K_buf[: Es.shape[0]]
                np.subtract(Es, mx_run[g][:, None], out=K)
                np.exp(K, out=K)
                Kc = _NX.dot(K, c)  # POT's backend primitive (np.dot on numpy)
            ga = a_run[g]
            if prev_run is not None:
                d = prev_run[g] * Kc - ga
                sq += float(d @ d)
            rb = ga / Kc
            r[g] = rb
            if K.dtype == np.float32:  # float32 share of a few rows, summed in float64
                np.dot(rb.astype(np.float32), K, out=part)
                acc += part
            else:
                _dgemv(1.0, K.T, rb, beta=1.0, y=acc, overwrite_y=1)  # acc += Kᵀ rb
    return r, (mx_run, spread_run) if first else None, acc, sq


def _streamed_scaling(product, n_rows, n_cols, temperature, a, b, max_iter, tol, *,
                      working_memory, n_jobs, exact_error=False, buffer=None):
    """Sinkhorn-Knopp on blocks ``product(rows, out) = M[rows] / τ``, never stored.

    The scaling domain of :func:`._dense._scaling_iterations` (rows shifted
    by their maximum, the same spread bound) with the kernel rebuilt from
    its matrix product on every pass (:func:`_scaling_pass`). Per entry and
    iteration: one product, written once in the inputs' precision into a
    chunk buffer reused for every chunk (the dominant cost: a large row
    chunk keeps the GEMM efficient), read once more by the elementwise work
    on sub-blocks of a few complete rows that stay in the CPU cache. Row
    maxima and spreads are taken in the first pass, in the cache, before
    the sub-block's shift. Sub-blocks of float32 products whose rows span
    at most ``FLOAT32_KERNEL_MAX_SPREAD`` run their elementwise work in
    float32, the first pass included (half the bytes, a faster ``exp``;
    entries >= exp(-60), far from float32's limits; scalings
    and column sums float64), which moves the potentials by about the
    float32 products' own rounding; wider rows in float64. The runs of
    rows are balanced, so that no thread waits for another's extra chunk.

    ``n_jobs=None`` runs one contiguous run of chunks per BLAS thread in
    Python threads (each with a one-thread BLAS: GEMM and elementwise work
    on all cores), sharing the ``working_memory`` budget; otherwise (or
    under a distributed joblib backend such as dask) the runs go to joblib
    workers, each within the budget.
    """
    item = product.dtype.itemsize
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
    runs = split_runs(n_rows, chunk, n_workers)
    state = {"row_max": None, "row_spread": None}
    # Threads take their chunk buffers from ``buffer``, written in place on
    # every pass and reused across calls (fresh pages cost their first-touch
    # faults on every write); joblib workers allocate their own.
    longest = max(s.stop - s.start for _, _, chunks in runs for s in chunks)
    buffer = KernelBuffer() if buffer is None else buffer
    bufs = buffer.array((len(runs), longest, n_cols), product.dtype) if threads \
        else nullcontext([None] * len(runs))

    def sweep(c, prev):
        args = [(product, lo, hi, chunks, chunk, sub, c, prev, a, state["row_max"],
                 state["row_spread"], E_buf) for (lo, hi, chunks), E_buf in zip(runs, E_bufs)]
        parts = map_runs(_scaling_pass, args, pool=pool if threads else None,
                         n_jobs=n_jobs)
        if state["row_max"] is None:
            state["row_max"] = np.concatenate([p[1][0] for p in parts])
            state["row_spread"] = np.concatenate([p[1][1] for p in parts])
        r = np.concatenate([p[0] for p in parts])
        acc = parts[0][2]
        for p in parts[1:]:
            acc += p[2]
        return r, acc, sum(p[3] for p in parts)

    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"), \
            (_one_blas_thread() if threads else nullcontext()), \
            ThreadPoolExecutor(len(runs)) as pool, bufs as E_bufs:
        r, c, n_iter, err = _passes(sweep, lambda acc: b / acc,
                                    np.full(n_cols, 1.0 / n_cols), max_iter, tol,
                                    exact_error=exact_error)
        log_c = np.log(c)
        log_r = np.log(r) - (state["row_max"] - 1.0 / temperature)
    return log_c, log_r, n_iter, err


def _generic_potentials(nx, B, blocks, temperature, max_iter, tol, a, b, *, fits, store32,
                        working_memory, exact_error, buffer, allow_tf32):
    """:func:`_embedding_potentials` on another backend (torch, CPU or CUDA):
    the generic path of :mod:`._generic`, with the same choice of kernel
    (a stored float32 kernel from float32 products where the spread allows;
    otherwise a float64 one from float64 products when it fits, streamed
    blocks in the inputs' precision when not)."""
    n_rows, n_cols = B.shape[0], sum(C.shape[0] for C in blocks)
    inv_tau = 1.0 / temperature
    args = (n_rows, n_cols, temperature, a, b, max_iter, tol)
    kw = {"working_memory": working_memory, "exact_error": exact_error, "like64": a,
          "buffer": buffer}
    if store32:
        B32, *C32 = (nx.astype(X, "float32") for X in (B, *blocks))
        try:
            out = nx_sinkhorn(nx, product_source(nx, B32, C32, inv_tau, a, allow_tf32), *args,
                              store=True, item_bytes=4, **kw)
        except _SpreadTooLarge:
            pass
        else:
            if _finite(*out[:2], out[3]):
                return out + (False,)
    if fits:  # float64 products, as the numpy path: same potentials for both dtypes
        zero = nx.zeros((1, 1), type_as=a)
        source = product_source(nx, B + zero, [C + zero for C in blocks], inv_tau, a)
    else:
        source = product_source(nx, B, blocks, inv_tau, a, allow_tf32)
    item = 8 if fits else max(np.dtype(dtype_name(B)).itemsize, 4)
    out = nx_sinkhorn(nx, source, *args, store=fits, item_bytes=item, **kw)
    return out + (not fits,)


def _embedding_potentials(B, blocks, temperature, max_iter, tol, a=None, b=None, *,
                          working_memory, n_jobs, method="auto", exact_error=False,
                          precision="auto", buffer=None, allow_tf32=False):
    """Sinkhorn of ``M = B [C_1 | C_2 | ...]ᵀ`` from validated embeddings.

    Stored kernels (numpy) live in ``buffer`` (a :class:`KernelBuffer`,
    reused across calls; a fresh one by default); float32 embeddings get a
    float32 kernel unless ``precision="float64"``.

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
    buffer = KernelBuffer() if buffer is None else buffer
    float32_in = all(dtype_name(X) == "float32" for X in (B, *blocks))
    # A float32 kernel (float32 products: sgemm, row-shifted, spread within
    # FLOAT32_KERNEL_MAX_SPREAD): the default for float32 embeddings, and
    # the memory-aware default where the float64 one does not fit; float64
    # (or streamed) when the spread is larger.
    store32 = _fits(4 * n_rows * n_cols, working_memory, B) and (
        (float32_in and precision == "auto") or (not fits and working_memory is None))
    if not isinstance(B, np.ndarray):
        return _generic_potentials(nx, B, blocks, temperature, max_iter, tol, a, b,
                                   fits=fits, store32=store32, working_memory=working_memory,
                                   exact_error=exact_error, buffer=buffer,
                                   allow_tf32=allow_tf32)
    if store32:
        with buffer.array((n_rows, n_cols), np.float32) as K:
            BlockProduct(B, blocks, 1.0, np.float32)(slice(None), K)
            try:
                out = _scaling_iterations(K, K, temperature, a, b, max_iter, tol, n_jobs)
            except _SpreadTooLarge:
                pass
            else:
                if _finite(*out[:2], out[3]):
                    return out + (False, False)
    # Streamed: products in the inputs' precision (float32 GEMM is twice as
    # fast and the dominant cost). Stored: one float64 matrix, its products
    # in float64 whatever the input dtype; it becomes the kernel in place,
    # and the log-domain fallback recomputes its blocks.
    dtype = np.float64 if fits else scaled_product_dtype(1.0 / temperature, B, *blocks)
    product = BlockProduct(B, blocks, 1.0 / temperature, dtype)
    if fits:
        with buffer.array((n_rows, n_cols), np.float64) as M:
            BlockProduct(B, blocks, 1.0, np.float64)(slice(None), M)
            return _solve_dense(M, temperature, max_iter, tol, a, b, working_memory=None,
                                n_jobs=n_jobs, product=product) + (False,)
    args = (product, n_rows, n_cols, temperature, a, b, max_iter, tol)
    try:
        out = _streamed_scaling(*args, working_memory=working_memory, n_jobs=n_jobs,
                                exact_error=exact_error, buffer=buffer)
    except _SpreadTooLarge:
        pass  # small τ: the log domain
    else:
        if _finite(*out[:2], out[3]):
            return out + (False, True)
    buffer.release()  # the log domain's chunks are its own
    out = _streamed_log(*args, exact_error=exact_error, working_memory=working_memory,
                        n_jobs=n_jobs)
    return out + (True, True)
