"""Streamed Sinkhorn: kernel blocks rebuilt from embedding products on every pass."""


import numpy as np

from .._backend import get_backend
from . import _common
from ._common import NUMPY_NX as _NX
from ._common import _check_marginals, _finite, _fits, _passes, _run_pass, _SpreadTooLarge
from ._dense import _solve_dense
from ._generic import nx_sinkhorn, product_source
from ._log import _streamed_log
from ._math import scaled_product_dtype
from ._pot import check_pot_memory, pot_sinkhorn


def _streamed_scaling(product, dtype, n_rows, n_cols, temperature, a, b, max_iter, tol, *,
                      working_memory, n_jobs, exact_error=False):
    """Sinkhorn-Knopp on blocks ``product(rows, out) = M[rows] / τ``, never stored.

    The scaling domain of :func:`_scaling_iterations` (rows shifted by their
    maximum, the same spread bound) with the kernel block rebuilt from its
    matrix product on every pass, in a work buffer reused for every chunk:
    per entry and iteration one product (in the inputs' precision, the
    dominant cost), one subtraction, one ``exp`` and two matrix-vector
    products. Row maxima are taken in the first pass.
    """
    row_max = None
    sep = np.dtype(dtype) != np.float64  # float32 products need a float64 kernel
    bytes_per_row = (np.dtype(dtype).itemsize + 8 * sep) * n_cols

    def sweep(c, prev):
        def make_step(chunk):
            E_buf = np.empty((chunk, n_cols), dtype=dtype)
            K_buf = np.empty((chunk, n_cols)) if sep else E_buf

            def step(rows):
                n = rows.stop - rows.start
                E, K = product(rows, E_buf[:n]), K_buf[:n]
                if row_max is None:
                    mx = E.max(axis=1).astype(np.float64)
                    if np.any(mx - E.min(axis=1) > _common.SCALING_DOMAIN_MAX_SPREAD):
                        raise _SpreadTooLarge
                else:
                    mx = row_max[rows]
                np.subtract(E, mx[:, None], out=K)
                np.exp(K, out=K)
                Kc = _NX.dot(K, c)  # POT's backend primitive (np.dot on numpy)
                sq = 0.0
                if prev is not None:
                    d = prev[0][rows] * Kc - a[rows]
                    sq = float(d @ d)
                rb = a[rows] / Kc
                return [(rb, mx)], rb @ K, sq

            return step

        return _run_pass(make_step, n_rows, bytes_per_row, np.add,
                         working_memory=working_memory, n_jobs=n_jobs)

    def first_sweep(c, prev):
        nonlocal row_max, sweep_
        out = sweep(c, prev)
        row_max, sweep_ = out[0][1], sweep
        return out

    sweep_ = first_sweep
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        rows, c, n_iter, err = _passes(
            lambda c, prev: sweep_(c, prev), lambda acc: b / acc,
            np.full(n_cols, 1.0 / n_cols), max_iter, tol, exact_error=exact_error,
        )
        log_c = np.log(c)
        log_r = np.log(rows[0]) - (row_max - 1.0 / temperature)
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
