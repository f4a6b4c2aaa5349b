"""Log-domain Sinkhorn over row blocks (exact where the kernel underflows)."""

import math

import numpy as np
from joblib import effective_n_jobs

from ..utils._chunking import chunk_n_rows
from ..utils._math import logsumexp
from ._common import _passes, map_runs, split_runs


def _log_pass(product, lo, hi, chunks, chunk, g, prev_f, log_a, a, inv_tau):
    """One log-domain pass over the rows [lo, hi) (a module-level task: its
    arrays travel as arguments). Returns the rows' ``f``, their share of the
    column log-sum-exp and of the squared row-marginal error of
    ``(prev_f, g)``."""
    n_cols = g.shape[0]
    E_buf = np.empty((min(chunk, hi - lo), n_cols), dtype=product.dtype)
    X_buf = np.empty((E_buf.shape[0], n_cols))
    shift = g - inv_tau
    f_run = np.empty(hi - lo)
    acc, sq = None, 0.0
    for rows in chunks:
        n = rows.stop - rows.start
        E, X = product(rows, E_buf[:n]), X_buf[:n]
        np.add(E, shift, out=X)
        lse = logsumexp(X, axis=1, overwrite=True)
        if prev_f is not None:
            d = np.exp(prev_f[rows] + lse) - a[rows]
            sq += float(d @ d)
        f = log_a[rows] - lse
        f_run[rows.start - lo: rows.stop - lo] = f
        np.add(E, (f - inv_tau)[:, None], out=X)
        part = logsumexp(X, axis=0, overwrite=True)
        acc = part if acc is None else np.logaddexp(acc, part, out=acc)
    return f_run, acc, sq


def _streamed_log(product, n_rows, n_cols, temperature, a, b, max_iter, tol, *,
                  exact_error, working_memory, n_jobs):
    """Log-domain Sinkhorn on blocks ``product(rows, out) = M[rows] / τ``.

    One pass per iteration: a chunk's row update
    ``f = log a - LSE_j((M - 1)/τ + g)`` needs only the chunk, and so does
    its share of the column log-sum-exp ``LSE_i((M - 1)/τ + f)``; the shares
    are combined with ``logaddexp``. Exact where the kernel underflows
    (small τ), at about twice the elementwise work of the scaling domain.
    One run of chunks per joblib worker (``n_jobs``, or the active backend).
    """
    inv_tau = 1.0 / temperature
    log_a, log_b = np.log(a), np.log(b)
    # the product (when computed into a buffer) and one exponent work array
    bytes_per_row = (product.dtype.itemsize + 8) * n_cols
    chunk = chunk_n_rows(bytes_per_row, working_memory, max_rows=n_rows)
    runs = split_runs(n_rows, chunk, effective_n_jobs(n_jobs))

    def sweep(g, prev):
        parts = map_runs(_log_pass, [(product, lo, hi, chunks, chunk, g, prev,
                                      log_a, a, inv_tau)
                                     for lo, hi, chunks in runs], n_jobs=n_jobs)
        acc = parts[0][1]
        for p in parts[1:]:
            np.logaddexp(acc, p[1], out=acc)
        return np.concatenate([p[0] for p in parts]), acc, sum(p[2] for p in parts)

    f, g, n_iter, err = _passes(
        sweep, lambda col_lse: log_b - col_lse, np.full(n_cols, -math.log(n_cols)),
        max_iter, tol, exact_error=exact_error,
    )
    return g, f, n_iter, err
