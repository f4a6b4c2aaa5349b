"""Shared pieces of the Sinkhorn solvers.

Constants of the two domains, marginals, memory budgets, BLAS threads, the
iteration loop of the streamed solvers and the result of a solve.
"""

import math
import numbers
import threading
import warnings
from contextlib import contextmanager

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.exceptions import ConvergenceWarning
from ..utils._compat import Interval, StrOptions
from threadpoolctl import ThreadpoolController

from ..utils._backend import astype, get_backend, host_available_bytes, to_numpy
from ..utils._chunking import chunk_budget_mib
from ..utils._params import N_JOBS, TEMPERATURE, WORKING_MEMORY

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

# POT's numpy backend: the numpy specialisations call its primitives where
# they need no output buffer (its dot is np.dot).
NUMPY_NX = get_backend(M=np.empty(0))

# Fraction of the available memory (host RAM, or free GPU memory for CUDA
# tensors) the kernel may take when ``working_memory`` is left at None:
# the rest stays for the inputs, the chunk temporaries and other processes.
STORE_FRACTION = 0.5
# Largest row spread (max - min of M / τ) for which a float32 kernel is
# stored when the float64 one does not fit: its entries are then
# >= exp(-60) ≈ 1e-26, far above float32's smallest normal (1.2e-38), and
# the scalings (whose logs vary by about the spread) stay within float32.
FLOAT32_KERNEL_MAX_SPREAD = 60.0

# Kernel precisions a caller may ask for: "auto" stores a float32 kernel for
# float32 embeddings (where the spread allows), "float64" always float64.
PRECISIONS = ("auto", "float64")

# POT's solvers a caller may ask for by name (``ot.sinkhorn(method=...)``);
# "auto" is the package's own engine.
POT_METHODS = ("sinkhorn", "sinkhorn_log", "sinkhorn_stabilized")
METHODS = ("auto",) + POT_METHODS

SINKHORN_CONSTRAINTS = {
    "temperature": TEMPERATURE,
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "working_memory": WORKING_MEMORY,
    "n_jobs": N_JOBS,
    "method": [StrOptions(set(METHODS))],
}

PRECISION_CONSTRAINT = {"precision": [StrOptions(set(PRECISIONS))]}


# Alignment (bytes) of a KernelBuffer's arrays.
_ALIGN = 64


class KernelBuffer:
    """Memory for a stored kernel, reused across the solves of one owner.

    A fresh multi-GiB array costs its first-touch page faults on every
    solve (measured +55 % on the similarity product's GEMM at 20,000²);
    one buffer, grown when a larger kernel comes, is written in place
    instead. One solve at a time uses it: a concurrent solve gets a fresh
    array. Never pickled with its contents (an unpickled copy is empty).
    """

    def __init__(self):
        self._data = None
        self._lock = threading.Lock()

    def __reduce__(self):
        return (KernelBuffer, ())

    @property
    def nbytes(self):
        return 0 if self._data is None else self._data.nbytes - _ALIGN

    def release(self):
        """Let the memory go (before a solver that does not use it), unless
        a concurrent solve is using it."""
        if self._lock.acquire(blocking=False):
            self._data = None
            self._lock.release()

    @contextmanager
    def array(self, shape, dtype):
        """Context giving an uninitialised array of ``shape`` and ``dtype``."""
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if not self._lock.acquire(blocking=False):
            yield np.empty(shape, dtype=dtype)
            return
        try:
            if self._data is None or self._data.nbytes < nbytes + _ALIGN:
                self._data = None  # let the smaller one go first
                self._data = np.empty(nbytes + _ALIGN, dtype=np.uint8)
            # aligned for vector loads and stores (a large np.empty is not:
            # malloc's header puts it 16 bytes past a page)
            start = -self._data.ctypes.data % _ALIGN
            yield self._data[start:start + nbytes].view(dtype).reshape(shape)
        finally:
            self._lock.release()


# --------------------------------------------------------------- helpers
def _float64(x, like):
    """``x`` (numpy) as a float64 array of ``like``'s backend and device."""
    if isinstance(like, np.ndarray):
        return np.asarray(x, dtype=np.float64)
    return get_backend(like=like).from_numpy(np.asarray(x, dtype=np.float64),
                                             type_as=astype(like, "float64"))


def _marginal(w, n, name, like):
    """Validated marginal of length ``n`` (uniform when ``w`` is None), as a
    float64 vector beside ``like``."""
    if w is None:
        return _float64(np.full(n, 1.0 / n), like)
    if hasattr(w, "device") and not isinstance(w, np.ndarray):
        w = to_numpy(w)  # n weights: validated like any argument
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {w.shape}.")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"{name} must hold finite, strictly positive weights.")
    return _float64(w, like)


def _check_marginals(a, b, n_rows, n_cols, like=None):
    like = np.empty(0) if like is None else like
    a = _marginal(a, n_rows, "a", like)
    b = _marginal(b, n_cols, "b", like)
    nx = get_backend(a=a, b=b)
    sa, sb = float(nx.sum(a)), float(nx.sum(b))
    if not math.isclose(sa, sb, rel_tol=1e-9):
        raise ValueError(
            f"a and b must have the same total mass, got {sa:.6g} and {sb:.6g}."
        )
    return a, b


def _budget_bytes(working_memory):
    return chunk_budget_mib(working_memory) * 2**20


def _available_bytes(like=None):
    """Memory a new array may take: free device memory beside ``like``
    (e.g. a CUDA tensor's GPU), otherwise the host's available memory."""
    if like is None or isinstance(like, np.ndarray):
        return host_available_bytes()
    return get_backend(like=like).free_bytes(like)


def _fits(nbytes, working_memory, like=None):
    """Whether an array of ``nbytes`` may be stored.

    ``working_memory`` as everywhere (:mod:`skxmr.utils._chunking`): an
    explicit budget (MiB) is obeyed; ``None`` lets the solver keep what fits
    in ``STORE_FRACTION`` of the available memory (and stream in chunks of
    ``sklearn.get_config()["working_memory"]`` otherwise).
    """
    if working_memory is not None:
        return nbytes <= working_memory * 2**20
    return nbytes <= STORE_FRACTION * _available_bytes(like)


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


# threadpoolctl's limits are process-global: two threads each saving the
# "original" limit and restoring it on exit would leave BLAS at one thread
# when their calls overlap (the second saves the first's limit). One limit
# is held for all the overlapping calls instead: the first to enter sets
# it, the last to leave restores the user's setting.
_LIMIT_LOCK = threading.Lock()
_LIMIT = {"depth": 0, "limiter": None, "threads": None}


@contextmanager
def _one_blas_thread():
    """Context limiting BLAS to one thread; safe when calls overlap in threads."""
    with _LIMIT_LOCK:
        if _LIMIT["depth"] == 0:
            _LIMIT["threads"] = _user_blas_threads()
            _LIMIT["limiter"] = _blas().limit(limits=1, user_api="blas")
        _LIMIT["depth"] += 1
    try:
        yield
    finally:
        with _LIMIT_LOCK:
            _LIMIT["depth"] -= 1
            if _LIMIT["depth"] == 0:
                _LIMIT["limiter"].restore_original_limits()
                _LIMIT["limiter"] = None


def _user_blas_threads():
    info = _blas().select(user_api="blas").info()
    return max((lib["num_threads"] for lib in info), default=1)


def _blas_threads(n_jobs=None):
    """Threads for a loop that limits BLAS to one: ``n_jobs`` when given
    (joblib's meaning: -1 all cores), otherwise the threads BLAS would use
    (the user's setting, e.g. ``OPENBLAS_NUM_THREADS``), also while another
    call holds the one-thread limit."""
    if n_jobs is not None:
        return max(1, effective_n_jobs(n_jobs))
    with _LIMIT_LOCK:
        if _LIMIT["depth"]:
            return _LIMIT["threads"]
    return _user_blas_threads()


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
    iterate costs one more pass, taken when ``exact_error`` is True (stored
    matrices, a cheap pass). Otherwise the error of the iterate before the
    last is reported (streamed products, where a pass is expensive); for a
    single iteration there is none, and one more pass measures it unless
    ``exact_error`` is None (the estimators: no pass beyond ``max_iter``
    when no ``tol`` asks for the error; ``err`` is then None).
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
    if exact_error or (err is None and (exact_error is not None or tol is not None)):
        err = math.sqrt(sweep(col, rows)[2])
    return rows, col, n_iter, err


def split_runs(n_rows, chunk, n_workers):
    """Row chunks of at most ``chunk`` rows in at most ``n_workers``
    contiguous runs of (nearly) equal length: a list of ``(lo, hi,
    chunks)``, one task per run (each worker allocates its chunk buffers
    once and folds its chunks' column shares itself). The runs are
    balanced row for row, and so are the chunks within a run, so that no
    worker waits for another's extra chunk."""
    n_runs = max(1, min(n_workers, -(-n_rows // chunk)))
    runs = []
    for i in range(n_runs):
        lo, hi = n_rows * i // n_runs, n_rows * (i + 1) // n_runs
        k = -(-(hi - lo) // chunk)
        runs.append((lo, hi, [slice(lo + (hi - lo) * j // k, lo + (hi - lo) * (j + 1) // k)
                              for j in range(k)]))
    return runs


def map_runs(task, args, *, pool=None, n_jobs=None):
    """``[task(*x) for x in args]`` in the thread ``pool`` when given,
    otherwise in joblib workers (``n_jobs``, or the active backend: loky,
    dask, ray). ``task`` is a module-level function whose arrays travel as
    arguments, so that every backend can pickle it; an exception in a
    worker is raised here."""
    if len(args) == 1:
        return [task(*args[0])]
    if pool is not None:
        return list(pool.map(task, *zip(*args)))
    return Parallel(n_jobs=n_jobs)(delayed(task)(*x) for x in args)


class BlockProduct:
    """Picklable block source ``rows, out -> B[rows] [C_1 | C_2 | ...]ᵀ / τ``.

    Computed in ``dtype`` (float32 products are twice as fast), 1/τ folded
    into the bank rows of the chunk; written into ``out``. A module-level
    class rather than a closure: joblib's process backends pickle it (and
    memory-map its arrays) with the tasks.
    """

    def __init__(self, B, blocks, inv_tau, dtype):
        self.dtype = np.dtype(dtype)
        self.B = B.astype(self.dtype, copy=False)
        self.blocks = [C.astype(self.dtype, copy=False) for C in blocks]
        self.bounds = np.cumsum([0] + [C.shape[0] for C in blocks]).tolist()
        self.inv_tau = inv_tau

    def __call__(self, rows, out):
        Bs = np.multiply(self.B[rows], self.inv_tau, dtype=self.dtype)
        for C, lo, hi in zip(self.blocks, self.bounds, self.bounds[1:]):
            np.matmul(Bs, C.T, out=out[:, lo:hi])
        return out


class ScaledRows:
    """Picklable block source ``rows, out -> M[rows] / τ`` (float64) of a
    stored matrix."""

    dtype = np.dtype(np.float64)

    def __init__(self, M, inv_tau):
        self.M = M
        self.inv_tau = inv_tau

    def __call__(self, rows, out):
        return np.multiply(self.M[rows], self.inv_tau, out=out, dtype=np.float64)


def _finite(log_c, log_r, err):
    if (_all_finite(log_c) and _all_finite(log_r)
            and (err is None or math.isfinite(err))):
        return True
    # Not expected below the spread bound; never return a silent wrong
    # answer if it happens anyway.
    warnings.warn(
        "Sinkhorn scalings left the float64 range; recomputing in the log domain.",
        ConvergenceWarning,
        stacklevel=4,
    )
    return False


def _all_finite(x):
    if isinstance(x, np.ndarray):
        return bool(np.all(np.isfinite(x)))
    nx = get_backend(x=x)
    return not bool(nx.any(~nx.isfinite(x)))


def _result(log_c, log_r, n_iter, err, log_domain, *streamed, temperature, max_iter,
            tol):
    _convergence(err, tol, max_iter)
    h = -temperature * log_c
    log = {"n_iter": n_iter, "marginal_error": err, "log_domain": log_domain,
           "log_r": log_r}
    if streamed:
        log["streamed"] = streamed[0]
    return h, log
