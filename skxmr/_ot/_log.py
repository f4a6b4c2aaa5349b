"""Log-domain Sinkhorn over row blocks (exact where the kernel underflows)."""

import math

import numpy as np

from ._common import _passes, _run_pass
from ..utils._math import logsumexp


def _streamed_log(product, dtype, n_rows, n_cols, temperature, a, b, max_iter, tol, *,
                  exact_error, working_memory, n_jobs):
    """Log-domain Sinkhorn on blocks ``product(rows, out) = M[rows] / τ``.

    One pass per iteration: a chunk's row update
    ``f = log a - LSE_j((M - 1)/τ + g)`` needs only the chunk, and so does
    its share of the column log-sum-exp ``LSE_i((M - 1)/τ + f)``; the shares
    are combined with ``logaddexp``. Exact where the kernel underflows
    (small τ), at about twice the elementwise work of the scaling domain.
    """
    inv_tau = 1.0 / temperature
    log_a, log_b = np.log(a), np.log(b)
    # the product (when computed into a buffer) and one exponent work array
    bytes_per_row = (np.dtype(dtype).itemsize + 8) * n_cols

    def sweep(g, prev):
        shift = g - inv_tau

        def make_step(chunk):
            E_buf = np.empty((chunk, n_cols), dtype=dtype)
            X_buf = np.empty((chunk, n_cols))

            def step(rows):
                n = rows.stop - rows.start
                E, X = product(rows, E_buf[:n]), X_buf[:n]
                np.add(E, shift, out=X)
                lse = logsumexp(X, axis=1, overwrite=True)
                sq = 0.0
                if prev is not None:
                    d = np.exp(prev[0][rows] + lse) - a[rows]
                    sq = float(d @ d)
                f = log_a[rows] - lse
                np.add(E, (f - inv_tau)[:, None], out=X)
                return [(f,)], logsumexp(X, axis=0, overwrite=True), sq

            return step

        return _run_pass(make_step, n_rows, bytes_per_row, np.logaddexp,
                         working_memory=working_memory, n_jobs=n_jobs)

    rows, g, n_iter, err = _passes(
        sweep, lambda col_lse: log_b - col_lse, np.full(n_cols, -math.log(n_cols)),
        max_iter, tol, exact_error=exact_error,
    )
    return g, rows[0], n_iter, err
