"""Sinkhorn normalisation (SN) and Dual Bank Sinkhorn normalisation (DBSN).

The one place the package solves entropic optimal transport. The hubness
potentials of a set of columns (the test gallery, then for DBSN the gallery
bank) are the log column scalings of the Sinkhorn-Knopp solution of

.. math::

    \\min_{P \\ge 0,\\; P\\mathbf 1 = a,\\; P^\\top \\mathbf 1 = b}
    \\langle P, 1 - M \\rangle - \\tau H(P),

with ``M`` the (bank queries × columns) cosine matrix and uniform
marginals ``a``, ``b``. Writing ``P = diag(r) K diag(c)`` with
``K = exp(-(1 - M) / τ)``, every iteration updates the query side first,
``r = a / (K c)``, and the column side last, ``c = b / (Kᵀ r)``, starting
from ``c = 1 / n_cols``; the potentials are ``h = -τ log c``.

**Convention (POT).** This is exactly what
``ot.sinkhorn(b, a, 1 - M.T, reg=τ, numItermax=T, log=True)`` computes
(POT's rows are our columns; it updates its column side ``v`` first and its
row side ``u`` last, from ``u = 1 / n_cols``), so ``h = -τ log(log["u"])``.
The tests check the equality to 1e-10 in float64. POT is the reference,
not the engine: its solver allocates ``1 - M.T``, the kernel, a rescaled
copy and the plan (five ``n × m`` arrays) and reads the kernel twice per
iteration, and its backend API has no in-place operations; the loop below
holds one ``n × m`` array and reads it once per iteration (measured
2.5-7× faster than the reference call on 5000 × 6000 and 20000 × 20000,
depending on how costly fresh memory is on the machine; see
``benchmarks/bench_sinkhorn.py``).

**Numerics.** Kernels, scalings and sums are float64. Two domains,
chosen automatically:

* *scaling domain* (fast path): the kernel is built once, in one float64
  buffer, each row shifted by its largest similarity
  (``exp((M - max_j M) / τ)``, the factor absorbed exactly into the row
  scaling). Every iteration is then one pass over it in cache-sized row
  blocks, each block serving both its row update and its share of the
  column update (two BLAS matrix-vector products while it is in cache).
  Used when every row has ``(max M - min M) / τ <= 300`` (e.g. τ=0.01 on
  cosines in [-1, 1]), so that neither the kernel nor the scalings can
  underflow.
* *log domain*: log-sum-exp updates of ``log r`` and ``log c`` over
  memory-bounded row chunks, recomputing the exponentials each pass. Used
  for smaller τ or larger similarity spreads (e.g. τ=1e-3), where the
  kernel would underflow and plain Sinkhorn-Knopp (POT included) silently
  returns wrong scalings.

**Streaming.** When the float64 bank × columns matrix does not fit in
``working_memory``, :func:`sinkhorn_potentials_from_embeddings` (and the
estimators) store nothing of that size: every iteration is one pass over
row chunks, each chunk's block ``bank[rows] @ columns.T`` recomputed in a
work buffer allocated once per worker and turned into its kernel (scaling
domain) or log-sum-exps (log domain) for both the row update and its share
of the column update (folded per worker by
:func:`skxmr._chunking.reduce_row_chunks`, so that joblib backends such as
dask spread the chunks). The products are computed in the inputs'
precision: float32 embeddings use float32 matrix products, twice as fast
as float64 and the dominant cost (~8 ns per entry and iteration on 2
cores), which moves the potentials by a few 1e-7 (float32 rounding of the
cosines, amplified by 1/τ in the kernel and multiplied by τ again in
``h``). Stored matrices are computed in float64 from either dtype, so
float32 and float64 inputs then give identical potentials.
"""

import math
import numbers
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn import get_config
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, validate_params
from threadpoolctl import ThreadpoolController

from ._base import RetrievalEstimator
from ._chunking import reduce_row_chunks, row_slices
from ._math import logsumexp, scaled_product_dtype
from ._registry import register_method
from ._validation import (
    check_matrix,
    check_same_width,
)

__all__ = [
    "DualBankSinkhornNormalizer",
    "SinkhornNormalizer",
    "dual_bank_sinkhorn_normalize",
    "sinkhorn_normalize",
    "sinkhorn_potentials",
    "sinkhorn_potentials_from_embeddings",
]

# Largest spread (max_j M_ij - min_j M_ij) / τ of a row for which the
# scaling domain is used: with each row shifted by its maximum, kernel
# entries are then >= exp(-300) and the scalings, whose logs vary by at most
# about that spread, stay far from float64's limits (exp(±709)). Beyond it
# the log domain is exact where the kernel is not; an a-posteriori
# finiteness check backs the bound up.
_SCALING_DOMAIN_MAX_SPREAD = 300.0
# Largest chunk (MiB) of the log-domain passes over a stored matrix: its
# five elementwise passes then run mostly in cache (measured 2-4x faster
# than 1 GiB chunks on 5000x6000). Streamed GEMM blocks use the whole
# working_memory instead: larger blocks make faster matrix products.
_LOG_DOMAIN_CHUNK_MIB = 16.0
# Bytes per row block of the scaling-domain loop: a block stays in the CPU
# cache between its two matrix-vector products (and while it is built).
_BLOCK_BYTES = 1 << 21

SINKHORN_CONSTRAINTS = {
    "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "working_memory": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "n_jobs": [numbers.Integral, None],
}
NORMALIZER_CONSTRAINTS = {
    **SINKHORN_CONSTRAINTS,
    "strength": [Interval(numbers.Real, 0, 1, closed="both")],
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


def _scaling_iterations(M, K, temperature, a, b, max_iter, tol):
    """Sinkhorn-Knopp in the scaling domain, one memory pass per iteration.

    ``K`` (which may be ``M`` itself) receives the row-shifted kernel
    ``exp((M - m) / τ)``, ``m_i = max_j M_ij``, during the first iteration.
    The true kernel is ``diag(e) K`` with ``e_i = exp((m_i - 1) / τ)`` (never
    formed: it may underflow). A row factor only rescales the row scaling:
    from the same start ``c = 1 / n_cols`` the iterates on ``K`` are
    ``(e r, c)``, so ``c`` is exactly POT's and ``log r`` is off by
    ``log e``. Every row of ``K`` has a maximum of 1 (no row can vanish) and
    entries at least ``exp(-_SCALING_DOMAIN_MAX_SPREAD)``; a row spanning
    more raises ``_SpreadTooLarge`` (before the first iteration completes)
    and the caller switches to the log domain.

    Row blocks of about ``_BLOCK_BYTES`` are processed while they sit in the
    CPU cache: ``r_B = a_B / (K_B c)`` needs only the block, and the block's
    share ``K_Bᵀ r_B`` of the column update is accumulated at once. An
    iteration thus reads the kernel once instead of twice (a plain loop
    ``r = a / (K c); c = b / (Kᵀ r)`` reads it twice), with the same
    iterates up to summation order. The small per-block products run on one
    BLAS thread each; instead, contiguous runs of blocks go to as many
    Python threads as BLAS would use (numpy releases the GIL), each
    accumulating its own share of ``Kᵀ r``: one core cannot saturate the
    memory bandwidth this loop is bound by.

    Returns ``log c``, ``log r``, iterations done and the row-marginal error.
    """
    n_rows, n_cols = K.shape
    inv_tau = 1.0 / temperature
    max_spread = _SCALING_DOMAIN_MAX_SPREAD * temperature
    blocks = row_slices(n_rows, max(1, _BLOCK_BYTES // (8 * n_cols)))
    n_threads = max(1, min(_blas_threads(), len(blocks)))
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
                np.subtract(Mb, mx[:, None], out=Kb, dtype=np.float64)
                Kb *= inv_tau
                np.exp(Kb, out=Kb)
            Kc = Kb @ c
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
        if err is None:
            err = float(np.linalg.norm(r * (K @ c) - a))
        log_c = np.log(c)
        log_r = np.log(r) - (row_max - 1.0) / temperature
    return log_c, log_r, n_iter, err


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


def _streamed_scaling(product, dtype, n_rows, n_cols, temperature, a, b, max_iter, tol, *,
                      working_memory, n_jobs):
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
                    if np.any(mx - E.min(axis=1) > _SCALING_DOMAIN_MAX_SPREAD):
                        raise _SpreadTooLarge
                else:
                    mx = row_max[rows]
                np.subtract(E, mx[:, None], out=K)
                np.exp(K, out=K)
                Kc = K @ c
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
            np.full(n_cols, 1.0 / n_cols), max_iter, tol, exact_error=False,
        )
        log_c = np.log(c)
        log_r = np.log(rows[0]) - (row_max - 1.0 / temperature)
    return log_c, log_r, n_iter, err


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


# ------------------------------------------------------------ public core
def _solve_dense(M, temperature, max_iter, tol, a, b, *, working_memory, n_jobs,
                 product=None):
    """Potentials of a stored similarity matrix.

    The kernel gets its own float64 buffer (one pass per iteration over it,
    :func:`_scaling_iterations`) unless an explicit ``working_memory``
    cannot hold it; then, and for spreads beyond the scaling domain, the
    log domain runs over cache-sized chunks of ``M``. With ``product``
    (``product(rows, out) = M[rows] / τ`` from embeddings), ``M`` is a
    float64 buffer the caller gives away: it becomes the kernel in place
    (peak memory: one matrix) and ``product`` recomputes its blocks for
    the log domain.
    """
    n_rows, n_cols = M.shape
    inv_tau = 1.0 / temperature
    if product is not None or working_memory is None or 8 * M.size <= _budget_bytes(working_memory):
        K = M if product is not None else np.empty((n_rows, n_cols))
        try:
            out = _scaling_iterations(M, K, temperature, a, b, max_iter, tol)
        except _SpreadTooLarge:
            pass  # the expected way to the log domain (small τ)
        else:
            if _finite(*out[:2], out[3]):
                return out + (False,)
        finally:
            del K
    if product is None:
        def product(rows, out):
            return np.multiply(M[rows], inv_tau, out=out)
    else:
        del M  # the kernel now: let it go before the log-domain buffers
    # Cache-sized chunks, but never above the caller's budget (which
    # reduce_row_chunks rejects if it cannot hold one row).
    row_mib = 16 * n_cols / 2**20
    chunk_mib = min(_budget_bytes(working_memory) / 2**20, max(_LOG_DOMAIN_CHUNK_MIB, row_mib))
    out = _streamed_log(
        product, np.float64, n_rows, n_cols, temperature, a, b, max_iter, tol, exact_error=True,
        working_memory=chunk_mib, n_jobs=n_jobs,
    )
    return out + (True,)


def _result(log_c, log_r, n_iter, err, log_domain, *streamed, temperature, max_iter,
            tol):
    _convergence(err, tol, max_iter)
    h = -temperature * log_c
    log = {"n_iter": n_iter, "marginal_error": err, "log_domain": log_domain,
           "log_r": log_r}
    if streamed:
        log["streamed"] = streamed[0]
    return h, log


@validate_params(
    {"M": ["array-like"], "a": ["array-like", None], "b": ["array-like", None],
     **SINKHORN_CONSTRAINTS},
    prefer_skip_nested_validation=True,
)
def sinkhorn_potentials(M, temperature=0.01, max_iter=10, tol=None, *, a=None, b=None,
                        working_memory=None, n_jobs=None):
    """Sinkhorn hubness potentials of the columns of a similarity matrix.

    Solves entropic OT with cost ``1 - M`` by Sinkhorn-Knopp (row scaling
    ``r`` updated first, column scaling ``c`` last, ``c = 1 / n_cols`` at
    the start) and returns ``h = -τ log c``; ``S - h`` re-scores the
    columns. Computed in float64, in the scaling domain when the kernel
    cannot underflow and in the log domain otherwise (see
    :mod:`skxmr._sinkhorn`).

    Parameters
    ----------
    M : array-like of shape (n_bank, n_cols)
        Similarities; rows: bank queries, columns: the items to normalise.
        Not modified.
    temperature : float, default=0.01
        Entropic regularisation τ (POT's ``reg``).
    max_iter : int, default=10
        Number of iterations (each: one row and one column update). With
        ``tol=None`` exactly this many are run.
    tol : float, default=None
        Stop as soon as the row-marginal error ``||P 1 - a||₂`` (after a
        column update) is below ``tol``; a ``ConvergenceWarning`` reports
        the achieved error if ``max_iter`` iterations do not reach it.
    a : array-like of shape (n_bank,), default=None
        Row marginal; uniform by default.
    b : array-like of shape (n_cols,), default=None
        Column marginal; uniform by default. Same total mass as ``a``.
    working_memory : float, default=None
        MiB. ``None``: the float64 kernel (one ``n_bank × n_cols`` array)
        is allocated. Otherwise a kernel that would not fit is replaced by
        the log-domain iteration over chunks of ``M`` of this size.
    n_jobs : int, default=None
        joblib workers for the log-domain chunks.

    Returns
    -------
    h : ndarray of shape (n_cols,)
        Column potentials ``-τ log c`` (float64); equal to
        ``-τ log(u)`` of ``ot.sinkhorn(b, a, 1 - M.T, reg=τ, log=True)``.
    log : dict
        ``n_iter`` (iterations done), ``marginal_error`` (row-marginal L2
        error of the returned plan; its column marginal is ``b``),
        ``log_domain`` (which path ran) and ``log_r`` (log row scaling), so
        that the plan is ``exp(log_r[:, None] + (M - 1) / τ - h / τ)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr._sinkhorn import sinkhorn_potentials
    >>> M = np.array([[0.9, 0.8, 0.1], [0.7, 0.8, 0.2]])
    >>> h, log = sinkhorn_potentials(M, temperature=0.1, max_iter=50)
    >>> h.shape, log["n_iter"]
    ((3,), 50)
    >>> bool(log["marginal_error"] < 1e-6)
    True
    """
    M = check_matrix(M, "M")
    a, b = _check_marginals(a, b, *M.shape)
    out = _solve_dense(M, temperature, max_iter, tol, a, b,
                       working_memory=working_memory, n_jobs=n_jobs)
    return _result(*out, temperature=temperature, max_iter=max_iter, tol=tol)


@validate_params(
    {"bank": ["array-like"], "columns": ["array-like"], "a": ["array-like", None],
     "b": ["array-like", None], **SINKHORN_CONSTRAINTS},
    prefer_skip_nested_validation=True,
)
def sinkhorn_potentials_from_embeddings(bank, columns, temperature=0.01, max_iter=10,
                                        tol=None, *, a=None, b=None,
                                        working_memory=None, n_jobs=None):
    """Sinkhorn potentials of ``M = bank @ columns.T``, streamed when large.

    Same result as ``sinkhorn_potentials(bank @ columns.T, ...)``. When the
    float64 similarity matrix fits in ``working_memory`` it is built once
    and turned into the kernel in place (peak memory: that one matrix);
    otherwise nothing ``n_bank × n_cols`` is stored: each iteration
    recomputes the blocks ``bank[rows] @ columns.T`` chunk by chunk (one
    matrix product per entry and iteration, in the inputs' precision), in
    the scaling domain when the spread allows it and in the log domain
    otherwise (see the module docstring). A streamed run reports the
    row-marginal error measured in its last pass, that of the iterate
    before the last (a pass more would be needed for the last).

    Parameters
    ----------
    bank : array-like of shape (n_bank, d)
        Rows of ``M`` (e.g. the query bank), used as given (normalise first
        for cosines).
    columns : array-like of shape (n_cols, d)
        Columns of ``M`` (the gallery; for DBSN the gallery then the
        gallery bank).
    temperature, max_iter, tol, a, b, n_jobs
        As in :func:`sinkhorn_potentials`.
    working_memory : float, default=None
        Budget in MiB for the similarity matrix; ``None`` uses
        ``sklearn.get_config()["working_memory"]`` (1024 MiB by default).
        Raise it to keep large banks on the fast dense path.

    Returns
    -------
    h : ndarray of shape (n_cols,)
    log : dict
        As in :func:`sinkhorn_potentials`, plus ``streamed`` (bool).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr._sinkhorn import sinkhorn_potentials_from_embeddings
    >>> rng = np.random.default_rng(0)
    >>> bank, cols = rng.normal(size=(50, 8)), rng.normal(size=(40, 8))
    >>> h, _ = sinkhorn_potentials_from_embeddings(bank, cols, temperature=1.0)
    >>> h_streamed, log = sinkhorn_potentials_from_embeddings(
    ...     bank, cols, temperature=1.0, working_memory=0.01)
    >>> log["streamed"], bool(np.allclose(h, h_streamed))
    (True, True)
    """
    B = check_matrix(bank, "bank")
    C = check_matrix(columns, "columns")
    check_same_width(B, C, "bank", "columns")
    return _result(*_embedding_potentials(
        B, [C], temperature, max_iter, tol, a, b, working_memory=working_memory,
        n_jobs=n_jobs), temperature=temperature, max_iter=max_iter, tol=tol)


def _embedding_potentials(B, blocks, temperature, max_iter, tol, a=None, b=None, *,
                          working_memory, n_jobs):
    """Sinkhorn of ``M = B [C_1 | C_2 | ...]ᵀ`` from validated embeddings.

    The column blocks are never stacked (DBSN's gallery and gallery bank
    stay where they are). Returns ``(log_c, log_r, n_iter, err, log_domain,
    streamed)``.
    """
    n_rows, n_cols = B.shape[0], sum(C.shape[0] for C in blocks)
    a, b = _check_marginals(a, b, n_rows, n_cols)
    bounds = np.cumsum([0] + [C.shape[0] for C in blocks])
    fits = 8 * n_rows * n_cols <= _budget_bytes(working_memory)
    if fits:
        # Fits: one float64 matrix, its products in float64 whatever the
        # input dtype, so float32 and float64 inputs give the same potentials.
        M = np.empty((n_rows, n_cols))
        B64 = B.astype(np.float64, copy=False)
        for C, lo, hi in zip(blocks, bounds, bounds[1:]):
            np.matmul(B64, C.astype(np.float64, copy=False).T, out=M[:, lo:hi])
    # Streamed: products in the inputs' precision (float32 GEMM is twice as
    # fast and the dominant cost).
    dtype = scaled_product_dtype(1.0 / temperature, B, *blocks)
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
        out = _streamed_scaling(*args, working_memory=working_memory, n_jobs=n_jobs)
    except _SpreadTooLarge:
        pass  # small τ: the log domain
    else:
        if _finite(*out[:2], out[3]):
            return out + (False, True)
    out = _streamed_log(*args, exact_error=False, working_memory=working_memory,
                        n_jobs=n_jobs)
    return out + (True, True)


# -------------------------------------------------------------- estimators
def _gallery_potentials(query_bank, gallery, gallery_bank, *, temperature, max_iter,
                        tol, working_memory, n_jobs):
    """h of the gallery: SN (``gallery_bank=None``) or DBSN (columns G, Bg)."""
    blocks = [gallery] if gallery_bank is None else [gallery, gallery_bank]
    h, _ = _result(*_embedding_potentials(
        query_bank, blocks, temperature, max_iter, tol, working_memory=working_memory,
        n_jobs=n_jobs), temperature=temperature, max_iter=max_iter, tol=tol)
    return h[: gallery.shape[0]]


class SinkhornNormalizer(RetrievalEstimator):
    """Sinkhorn normalisation (SN): hubness reduction with entropic OT.

    Fitted on training pairs, it keeps their unique queries as the query
    bank ``Bq``. For a test gallery ``G`` it solves entropic optimal
    transport between the bank queries and the gallery items (cost
    ``1 - Bq Gᵀ``, uniform marginals, Sinkhorn-Knopp, query side updated
    first and gallery side last, see :func:`sinkhorn_potentials`) and
    subtracts the gallery potentials ``h(g) = -τ log c(g)``:

    .. math:: S'(q, g) = q^\\top g - \\alpha\\, h(g).

    Hub items, close to many bank queries, get large ``h`` and are pushed
    down every query's ranking. The potentials are computed once per
    gallery (``index(G)``) and depend on the whole gallery.

    Parameters
    ----------
    temperature : float, default=0.01
        Entropic regularisation τ (POT's ``reg``). The paper's 0.01 was
        tuned on banks of ~10^5 queries; small banks want a larger τ (on
        COCO with a 250-pair bank, τ around 0.02-0.03 beats 0.01
        text→image), so tune it with ``GridSearchCV``.
    max_iter : int, default=10
        Sinkhorn iterations (the paper's T=10).
    tol : float, default=None
        If given, stop once the row-marginal error is below ``tol`` and
        warn (``ConvergenceWarning``) when ``max_iter`` does not reach it;
        ``None`` runs exactly ``max_iter`` iterations, like the paper.
    strength : float in [0, 1], default=1.0
        α: 1 is the paper's method, 0 plain cosine similarity.
    n_query_features : int, default=None
        Width of the query half of ``X``; ``None`` means half the columns.
    direction : {"q2g", "g2q"}, default="q2g"
        ``"q2g"`` ranks the right half for each left half; ``"g2q"`` the
        reverse (the bank is then the right halves).
    n_jobs : int, default=None
        joblib workers for chunked scoring (and streamed Sinkhorn chunks).
    working_memory : float, default=None
        MiB budget for the float64 bank × gallery similarity matrix; above
        it nothing that size is stored and every Sinkhorn iteration streams
        the matrix products in chunks of at most this size (per worker).
        ``None`` uses ``sklearn.get_config()["working_memory"]``.

    Attributes
    ----------
    query_bank_ : ndarray of shape (n_bank_queries, d)
        Unique, L2-normalised query halves of the training pairs.
    gallery_bank_ : ndarray of shape (n_bank_gallery, d)
        Unique, L2-normalised gallery halves of the training pairs.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.

    See Also
    --------
    DualBankSinkhornNormalizer : adds the gallery bank as extra columns.
    sinkhorn_normalize : the two-view function.

    Notes
    -----
    Kernels and scalings are float64 whatever the input dtype (a float32 kernel
    underflows at τ=0.01 and POT then silently returns uniform scalings),
    and in the log domain when the float64 kernel would underflow (small
    τ), see :mod:`skxmr._sinkhorn`. ``h`` follows POT's convention (start
    ``c = 1 / n_gallery``); a constant shift of ``h`` would not change any
    ranking.

    References
    ----------
    Hubness Reduction with Dual Bank Sinkhorn Normalization for Cross-Modal
    Retrieval, arXiv:2508.02538.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import SinkhornNormalizer, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.normal(size=(30, 8))
    >>> X = pair(Q, Q + 0.3 * rng.normal(size=(30, 8)))
    >>> est = SinkhornNormalizer(temperature=0.05).fit(X[:20])
    >>> est.decision_function(X[20:]).shape
    (10, 10)
    >>> index = est.index(X[20:, 8:])    # potentials computed once
    >>> index.kneighbors(X[20:, :8], n_neighbors=3, return_scores=False).shape
    (10, 3)
    """

    _parameter_constraints = {
        **RetrievalEstimator._parameter_constraints,
        **NORMALIZER_CONSTRAINTS,
    }
    # The potentials of one gallery item depend on all the others.
    _separable_gallery = False

    def __init__(self, temperature=0.01, max_iter=10, tol=None, strength=1.0, *,
                 n_query_features=None, direction="q2g", n_jobs=None,
                 working_memory=None):
        self.temperature = temperature
        self.max_iter = max_iter
        self.tol = tol
        self.strength = strength
        self.n_query_features = n_query_features
        self.direction = direction
        self.n_jobs = n_jobs
        self.working_memory = working_memory

    def _extra_columns(self):
        return None

    def _prepare_gallery(self, gallery):
        if self.strength == 0:  # plain cosine: the potentials are not used
            return {"h": np.zeros(gallery.shape[0])}
        h = _gallery_potentials(
            self.query_bank_, gallery, self._extra_columns(),
            temperature=self.temperature, max_iter=self.max_iter, tol=self.tol,
            working_memory=self.working_memory, n_jobs=self.n_jobs,
        )
        return {"h": h}

    def _score_queries(self, queries, gallery, state):
        return queries @ gallery.T - self.strength * state["h"]

    def _linear_form(self, gallery, state):
        return 1.0, self.strength * state["h"]


class DualBankSinkhornNormalizer(SinkhornNormalizer):
    """Dual Bank Sinkhorn normalisation (DBSN).

    As :class:`SinkhornNormalizer`, but the transport problem gets the
    gallery bank ``Bg`` (the unique gallery halves of the training pairs)
    as extra columns: ``M = [Bq Gᵀ | Bq Bgᵀ]`` (columns: test gallery, then
    gallery bank), uniform marginals over all of them, and the potentials
    of the first ``n_gallery`` columns are subtracted,
    ``S'(q, g) = qᵀg - α h(g)``. The gallery bank makes the target side of
    the transport less dependent on the few test items (the paper's
    query-agnostic setting).

    Parameters
    ----------
    temperature : float, default=0.01
        Entropic regularisation τ. Tuned in the paper on banks of ~10^5
        queries; small banks want a larger τ (see
        :class:`SinkhornNormalizer`).
    max_iter : int, default=10
        Sinkhorn iterations.
    tol : float, default=None
        Marginal-error tolerance (``ConvergenceWarning`` if not reached).
    strength : float in [0, 1], default=1.0
        α: 1 is the paper's method, 0 plain cosine similarity.
    n_query_features : int, default=None
        Width of the query half of ``X``; ``None`` means half the columns.
    direction : {"q2g", "g2q"}, default="q2g"
        ``"q2g"`` ranks the right half for each left half; ``"g2q"`` the
        reverse (the banks swap roles).
    n_jobs : int, default=None
        joblib workers for chunked scoring.
    working_memory : float, default=None
        MiB budget for the float64 bank × (gallery + gallery bank)
        similarity matrix (streamed in chunks above it).

    Attributes
    ----------
    query_bank_ : ndarray of shape (n_bank_queries, d)
        Unique, L2-normalised query halves of the training pairs.
    gallery_bank_ : ndarray of shape (n_bank_gallery, d)
        Unique, L2-normalised gallery halves of the training pairs.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.

    See Also
    --------
    SinkhornNormalizer : without the gallery bank.
    dual_bank_sinkhorn_normalize : the two-view function.

    References
    ----------
    Hubness Reduction with Dual Bank Sinkhorn Normalization for Cross-Modal
    Retrieval, arXiv:2508.02538.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import DualBankSinkhornNormalizer, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.normal(size=(30, 8))
    >>> X = pair(Q, Q + 0.3 * rng.normal(size=(30, 8)))
    >>> est = DualBankSinkhornNormalizer(temperature=0.05).fit(X[:20])
    >>> est.decision_function(X[20:]).shape
    (10, 10)
    """

    def _extra_columns(self):
        return self.gallery_bank_


# --------------------------------------------------------- two-view forms
@validate_params(
    {"queries": ["array-like"], "gallery": ["array-like"], "query_bank": ["array-like"],
     **NORMALIZER_CONSTRAINTS},
    prefer_skip_nested_validation=True,
)
def sinkhorn_normalize(queries, gallery, query_bank, *, temperature=0.01, max_iter=10,
                       tol=None, strength=1.0, working_memory=None, n_jobs=None):
    """Sinkhorn-normalised scores on explicit matrices (SN, two-view form).

    ``S'(q, g) = qᵀg - α h(g)`` with ``h`` the Sinkhorn potentials of the
    gallery against ``query_bank`` (see :class:`SinkhornNormalizer`). All
    embeddings are L2-normalised first.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    gallery : array-like of shape (n_gallery, d)
    query_bank : array-like of shape (n_bank, d)
        At least two rows.
    temperature : float, default=0.01
    max_iter : int, default=10
    tol : float, default=None
    strength : float in [0, 1], default=1.0
    working_memory : float, default=None
    n_jobs : int, default=None
        As in :class:`SinkhornNormalizer`.

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)
        float32 if ``queries`` and ``gallery`` are float32.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr._sinkhorn import sinkhorn_normalize
    >>> rng = np.random.default_rng(0)
    >>> Q, G, Bq = rng.normal(size=(4, 8)), rng.normal(size=(5, 8)), rng.normal(size=(9, 8))
    >>> sinkhorn_normalize(Q, G, Bq, temperature=0.05).shape
    (4, 5)
    """
    est = SinkhornNormalizer(temperature=temperature, max_iter=max_iter, tol=tol,
                             strength=strength, working_memory=working_memory, n_jobs=n_jobs)
    return est._fit_explicit_banks(query_bank).score_matrix(queries, gallery)


@validate_params(
    {"queries": ["array-like"], "gallery": ["array-like"], "query_bank": ["array-like"],
     "gallery_bank": ["array-like"], **NORMALIZER_CONSTRAINTS},
    prefer_skip_nested_validation=True,
)
def dual_bank_sinkhorn_normalize(queries, gallery, query_bank, gallery_bank, *,
                                 temperature=0.01, max_iter=10, tol=None, strength=1.0,
                                 working_memory=None, n_jobs=None):
    """Dual-bank Sinkhorn-normalised scores (DBSN, two-view form).

    As :func:`sinkhorn_normalize` with ``M = [Bq Gᵀ | Bq Bgᵀ]``: the gallery
    bank joins the test gallery as transport columns; the potentials of the
    test gallery are subtracted (see :class:`DualBankSinkhornNormalizer`).

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    gallery : array-like of shape (n_gallery, d)
    query_bank : array-like of shape (n_bank_queries, d)
        At least two rows.
    gallery_bank : array-like of shape (n_bank_gallery, d)
        At least two rows.
    temperature : float, default=0.01
    max_iter : int, default=10
    tol : float, default=None
    strength : float in [0, 1], default=1.0
    working_memory : float, default=None
    n_jobs : int, default=None
        As in :class:`DualBankSinkhornNormalizer`.

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr._sinkhorn import dual_bank_sinkhorn_normalize
    >>> rng = np.random.default_rng(0)
    >>> Q, G = rng.normal(size=(4, 8)), rng.normal(size=(5, 8))
    >>> Bq, Bg = rng.normal(size=(9, 8)), rng.normal(size=(7, 8))
    >>> dual_bank_sinkhorn_normalize(Q, G, Bq, Bg, temperature=0.05).shape
    (4, 5)
    """
    est = DualBankSinkhornNormalizer(
        temperature=temperature, max_iter=max_iter, tol=tol, strength=strength,
        working_memory=working_memory, n_jobs=n_jobs,
    )
    return est._fit_explicit_banks(query_bank, gallery_bank).score_matrix(queries, gallery)


register_method(
    "SN",
    lambda direction="q2g": SinkhornNormalizer(direction=direction),
    family="hubness",
    description="Sinkhorn normalisation on the query bank (tau=0.01, 10 iterations)",
)
register_method(
    "DBSN",
    lambda direction="q2g": DualBankSinkhornNormalizer(direction=direction),
    family="hubness",
    description="dual bank Sinkhorn normalisation: query bank x (gallery + gallery bank)",
)
