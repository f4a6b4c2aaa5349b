"""Shared pieces of the Sinkhorn solvers.

Constants of the two domains, marginals, memory budgets, BLAS threads, the
iteration loop of the streamed solvers and the result of a solve.
"""

import math
import numbers
import warnings

import numpy as np
from sklearn import get_config
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval
from threadpoolctl import ThreadpoolController

from .._chunking import reduce_row_chunks

# Largest spread (max_j M_ij - min_j M_ij) / τ of a row for which the
# scaling domain is used: with each row shifted by its maximum, kernel
# entries are then >= exp(-300) and the scalings, whose logs vary by at most
# about that spread, stay far from float64's limits (exp(±709)). Beyond it
# the log domain is exact where the kernel is not; an a-posteriori
# finiteness check backs the bound up.
SCALING_DOMAIN_MAX_SPREAD = 300.0
# Largest chunk (MiB) of the log-domain passes over a stored matrix: its
# five elementwise passes then run mostly in cache (measured 2-4x faster
# than 1 GiB chunks on 5000x6000). Streamed GEMM blocks use the whole
# working_memory instead: larger blocks make faster matrix products.
LOG_DOMAIN_CHUNK_MIB = 16.0
# Bytes per row block of the scaling-domain loop: a block stays in the CPU
# cache between its two matrix-vector products (and while it is built).
BLOCK_BYTES = 1 << 21

SINKHORN_CONSTRAINTS = {
    "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "working_memory": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "n_jobs": [numbers.Integral, None],
}

# --------------------------------------------------------------- helpers
def _marginal(w, n, name):
    """Validated marginal of length ``n`` (uniform when ``w`` is None)."""
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {w.shape}.")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"{name} must hold finite, strictly positive weights.")
    return w


def _check_marginals(a, b, n_rows, n_cols):
    a = _marginal(a, n_rows, "a")
    b = _marginal(b, n_cols, "b")
    if not math.isclose(a.sum(), b.sum(), rel_tol=1e-9):
        raise ValueError(
            f"a and b must have the same total mass, got {a.sum():.6g} and "
            f"{b.sum():.6g}."
        )
    return a, b


def _budget_bytes(working_memory):
    mib = get_config()["working_memory"] if working_memory is None else working_memory
    return mib * 2**20


def _convergence(err, tol, max_iter):
    if tol is not None and not err < tol:
        warnings.warn(
            f"Sinkhorn did not reach tol={tol:g} within max_iter={max_iter} "
            f"iterations (marginal error {err:.3g}); increase max_iter or the "
            "temperature.",
            ConvergenceWarning,
            stacklevel=3,
        )


# ------------------------------------------------------ scaling domain
_BLAS = None


def _blas():
    global _BLAS
    if _BLAS is None:  # built once: inspecting the loaded libraries is slow
        _BLAS = ThreadpoolController()
    return _BLAS


def _one_blas_thread():
    """Context limiting BLAS to one thread."""
    return _blas().limit(limits=1, user_api="blas")


def _blas_threads():
    """Threads BLAS would use (the user's setting, e.g. OPENBLAS_NUM_THREADS)."""
    info = _blas().select(user_api="blas").info()
    return max((lib["num_threads"] for lib in info), default=1)


class _SpreadTooLarge(Exception):
    """A row of M spans more than the scaling domain allows at this τ."""

# ------------------------------------------------------------- streaming
def _passes(sweep, update, col, max_iter, tol, *, exact_error):
    """The iteration loop of the streamed solvers: one ``sweep`` per iteration.

    ``sweep(col, rows_prev) -> (rows, col_acc, sq_err)`` runs the row update
    from the column state ``col`` and the column reduction from the new
    rows; ``sq_err`` is the squared row-marginal error of the iterate
    ``(rows_prev, col)`` entering it (0 when ``rows_prev`` is None), free in
    the pass that computes the row update. ``update(col_acc)`` gives the
    next column state. Without a ``tol`` stop, the error of the returned
    iterate costs one more pass: taken when ``exact_error`` (stored
    matrices, a cheap pass), otherwise the error of the iterate before the
    last is reported (streamed products, where a pass is expensive).
    """
    rows, err, n_iter = None, None, 0
    for _ in range(max_iter):
        new_rows, acc, sq = sweep(col, rows)
        if rows is not None:
            err = math.sqrt(sq)
            if tol is not None and err < tol:
                return rows, col, n_iter, err  # the converged iterate
        rows, col = new_rows, update(acc)
        n_iter += 1
    if exact_error or err is None:
        err = math.sqrt(sweep(col, rows)[2])
    return rows, col, n_iter, err


def _run_pass(make_step, n_rows, bytes_per_row, col_reduce, *, working_memory, n_jobs):
    """One pass of ``step(rows) -> (row_values, col_part, sq_err)`` over chunks.

    Row values are reassembled in row order, column parts folded with the
    ufunc ``col_reduce`` (``np.add`` or ``np.logaddexp``) as chunks come.
    """
    def combine(acc, part):
        col_reduce(acc[1], part[1], out=acc[1])
        return acc[0] + part[0], acc[1], acc[2] + part[2]

    parts = reduce_row_chunks(make_step, n_rows, bytes_per_row, combine,
                              n_jobs=n_jobs, working_memory=working_memory)
    col = parts[0][1]
    for p in parts[1:]:
        col_reduce(col, p[1], out=col)
    rows = [np.concatenate(v) for v in zip(*(v for p in parts for v in p[0]))]
    return rows, col, sum(p[2] for p in parts)


def _finite(log_c, log_r, err):
    if np.all(np.isfinite(log_c)) and np.all(np.isfinite(log_r)) and np.isfinite(err):
        return True
    # Not expected below the spread bound; never return a silent wrong
    # answer if it happens anyway.
    warnings.warn(
        "Sinkhorn scalings left the float64 range; recomputing in the log domain.",
        ConvergenceWarning,
        stacklevel=4,
    )
    return False


def _result(log_c, log_r, n_iter, err, log_domain, *streamed, temperature, max_iter,
            tol):
    _convergence(err, tol, max_iter)
    h = -temperature * log_c
    log = {"n_iter": n_iter, "marginal_error": err, "log_domain": log_domain,
           "log_r": log_r}
    if streamed:
        log["streamed"] = streamed[0]
    return h, log
