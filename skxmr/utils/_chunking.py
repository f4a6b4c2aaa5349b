"""Memory-bounded, joblib-parallel row chunking.

:func:`map_row_chunks` is the one place that splits a per-query-row
computation into memory-bounded chunks and hands them to joblib, so that
``n_jobs``, a ``working_memory`` budget and a distributed joblib backend
(``joblib.parallel_backend("dask")``) apply to every method alike.

``working_memory`` has one meaning in the package (the parameter's entry in
:mod:`skxmr.utils._params`), defined here: an explicit value is a budget in
MiB for one chunk's temporary arrays, per worker, obeyed by every chunked
pass (an estimator's scoring chunks included), and smaller than one row it
raises ``ValueError``; ``None`` sizes the chunks by scikit-learn's global
``sklearn.get_config()["working_memory"]`` (:func:`chunk_budget_mib`; one
row at a time if a row is larger), and a method that can keep a whole
intermediate matrix (the Sinkhorn kernel, ``skxmr._ot._common._fits``)
keeps it when it fits in half the available memory.
"""

import functools
import sys
import types

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs

from ._backend import get_backend
from ._compat import is_threading_backend
from sklearn import get_config


def chunk_budget_mib(working_memory):
    """The chunk budget in MiB: ``working_memory``, or scikit-learn's global one when None."""
    return get_config()["working_memory"] if working_memory is None else working_memory


def chunk_n_rows(bytes_per_row, working_memory=None, max_rows=None):
    """Rows per chunk so that one chunk fits in ``working_memory`` MiB.

    Parameters
    ----------
    bytes_per_row : int
        Bytes one row of the chunk's working arrays needs.
    working_memory : float, default=None
        Budget in MiB; ``None`` uses ``sklearn.get_config()["working_memory"]``.
        An explicit budget smaller than one row raises ``ValueError``; the
        global default then falls back to one row at a time.
    max_rows : int, default=None
        Upper bound on the result (the number of rows there are).

    Returns
    -------
    n_rows : int
    """
    explicit = working_memory is not None
    if explicit and not (np.isfinite(working_memory) and working_memory > 0):
        raise ValueError(f"working_memory must be a positive number of MiB, got {working_memory!r}.")
    budget = chunk_budget_mib(working_memory) * 2**20
    n = int(budget // max(int(bytes_per_row), 1))
    if n < 1:
        if explicit:
            raise ValueError(
                f"working_memory={working_memory} MiB is too small for one row "
                f"({bytes_per_row / 2**20:.3g} MiB)."
            )
        n = 1
    return n if max_rows is None else max(1, min(n, int(max_rows)))


def row_slices(n_rows, chunk):
    """Consecutive slices of ``chunk`` rows covering ``range(n_rows)``."""
    return [slice(i, min(i + chunk, n_rows)) for i in range(0, n_rows, chunk)]


def map_row_chunks(func, n_rows, bytes_per_row, *, args=(), n_jobs=None,
                   working_memory=None, prefer=None, max_rows=None):
    """Apply ``func(rows: slice, *args)`` to memory-bounded row chunks via joblib.

    Tasks that leave the process (joblib's process and distributed
    backends: loky, dask, ray) pickle ``func`` by reference, so it must be
    a module-level function (or a ``functools.partial`` of one, or an
    instance of a module-level class) and every array it reads must come
    in ``args``, never through a closure: a lambda is refused up front with
    a ``TypeError`` instead of failing in the worker, or, under joblib's
    dask backend, hanging ``Parallel``. Under the dask backend each
    argument is broadcast to the workers once per call (or taken from the
    backend's ``scatter`` list), so a task ships slices and futures, not
    the arrays.

    Parameters
    ----------
    func : callable
        ``func(slice, *args) -> result`` for those rows.
    n_rows : int
        Total number of rows.
    bytes_per_row : int
        Working memory one row needs (sizes the chunks).
    args : tuple, default=()
        The arrays (and other values) ``func`` reads.
    n_jobs : int, default=None
        joblib workers; ``None`` follows the active joblib backend.
    working_memory : float, default=None
        Chunk budget in MiB (see :func:`chunk_n_rows`).
    prefer : {"threads", "processes"}, default=None
        joblib's hint; ``"threads"`` for device arrays (torch tensors, which
        worker processes would copy, or cannot reach on a GPU).
    max_rows : int, default=None
        Cap on the rows of one chunk (e.g. a cache-sized block).

    Returns
    -------
    results : list
        ``func``'s results in row order.
    """
    cap = n_rows if max_rows is None else min(n_rows, max_rows)
    chunk = chunk_n_rows(bytes_per_row, working_memory, max_rows=cap)
    # Chunks of equal size (within one row) rather than a short tail: the
    # products of a short chunk run slower per row.
    chunk = -(-n_rows // -(-n_rows // chunk))
    slices = row_slices(n_rows, chunk)
    if len(slices) == 1 or effective_n_jobs(n_jobs) == 1:
        return [func(s, *args) for s in slices]
    with Parallel(n_jobs=n_jobs, prefer=prefer) as parallel:
        shipped = _ship(parallel, (func,), args)
        return parallel(delayed(func)(s, *shipped) for s in slices)


def reduce_row_chunks(make_func, n_rows, bytes_per_row, combine, *, args=(), n_jobs=None,
                      working_memory=None, prefer=None, max_rows=None):
    """Fold ``func(rows)`` over memory-bounded row chunks, one run per worker.

    For passes whose result accumulates over all rows (e.g. a column sum of
    a matrix streamed by row blocks): the chunks are split into one
    contiguous run per joblib worker, and each worker folds its chunks'
    results with ``combine`` as they come, so the pass holds one
    accumulator per worker instead of one result per chunk, and each worker
    allocates its chunk buffers once.

    Parameters
    ----------
    make_func : callable
        ``make_func(chunk_rows, *args) -> func``, called once per worker
        (allocate the work buffers of ``chunk_rows`` rows there; the
        ``func`` it returns may be a closure: it is built in the worker);
        ``func(slice)`` computes one chunk's result.
    n_rows : int
        Total number of rows.
    bytes_per_row : int
        Working memory one row needs (sizes the chunks).
    combine : callable
        ``combine(acc, result) -> acc``, folding a chunk's result into the
        accumulator (the first chunk's result starts it).
    args : tuple, default=()
        The arrays (and other values) ``make_func`` reads.
    n_jobs : int, default=None
        joblib workers; ``None`` follows the active joblib backend. The
        ``working_memory`` budget holds for each worker.
    working_memory : float, default=None
        Chunk budget in MiB (see :func:`chunk_n_rows`).
    prefer, max_rows
        As in :func:`map_row_chunks`, whose rules for tasks that leave the
        process apply to ``make_func`` and ``combine``.

    Returns
    -------
    results : list
        One accumulator per worker, in row order.
    """
    cap = n_rows if max_rows is None else min(n_rows, max_rows)
    chunk = chunk_n_rows(bytes_per_row, working_memory, max_rows=cap)
    slices = row_slices(n_rows, chunk)
    n_runs = max(1, min(len(slices), effective_n_jobs(n_jobs)))
    runs = [slices[len(slices) * i // n_runs: len(slices) * (i + 1) // n_runs]
            for i in range(n_runs)]
    chunk = min(chunk, n_rows)
    if n_runs == 1:
        return [_fold_run(runs[0], make_func, combine, chunk, *args)]
    with Parallel(n_jobs=n_jobs, prefer=prefer) as parallel:
        shipped = _ship(parallel, (make_func, combine), args)
        return parallel(delayed(_fold_run)(run, make_func, combine, chunk, *shipped)
                        for run in runs)


def _fold_run(chunks, make_func, combine, chunk_rows, *args):
    """One worker's run of :func:`reduce_row_chunks`."""
    func = make_func(chunk_rows, *args)
    acc = func(chunks[0])
    for rows in chunks[1:]:
        acc = combine(acc, func(rows))
    return acc


def _by_reference(func):
    """Whether pickle sends ``func`` by reference (module and name)."""
    while isinstance(func, functools.partial):
        if not all(map(_by_reference, [f for f in (*func.args, *func.keywords.values())
                                       if callable(f) and not isinstance(f, type)])):
            return False
        func = func.func
    if not isinstance(func, (types.FunctionType, types.BuiltinFunctionType, type)):
        if isinstance(func, types.MethodType):
            return _by_reference(func.__func__)
        func = type(func)  # a callable instance: its class, and its state as data
    target = sys.modules.get(getattr(func, "__module__", None) or "")
    for name in getattr(func, "__qualname__", "<>").split("."):
        target = getattr(target, name, None)
    return target is func


def _ship(parallel, funcs, args):
    """Check that ``funcs`` can leave the process, and under joblib's dask
    backend scatter ``args`` once (a task then carries futures)."""
    backend = parallel._backend
    if is_threading_backend(backend):
        return args
    for func in funcs:
        if not _by_reference(func):
            raise TypeError(
                f"{getattr(func, '__qualname__', func)!r} cannot run in a worker process: "
                "a chunk task must be a module-level function with its arrays passed as "
                "arguments (a closure or lambda would carry its data with every task)."
            )
    if type(backend).__name__ != "DaskDistributedBackend":
        return args  # loky and multiprocessing memory-map large arrays themselves
    known = backend.data_futures  # parallel_config(backend="dask", scatter=[...])
    out = list(args)
    todo = [i for i, a in enumerate(args) if id(a) not in known and not _small(a)]
    for i, a in enumerate(args):
        if id(a) in known:
            out[i] = known[id(a)]
    if todo:
        # broadcast: every worker holds a replica for the whole call (a replica
        # fetched on demand is dropped between tasks and fetched again)
        scattered = backend.client.scatter([args[i] for i in todo], broadcast=True, hash=False)
        for i, fut in zip(todo, scattered):
            out[i] = fut
    return tuple(out)


def _small(value):
    return value is None or isinstance(value, (bool, int, float, str, slice, np.generic,
                                               np.dtype))


def concat_rows(parts):
    """Stack row chunks (no copy for a single chunk)."""
    if len(parts) == 1:
        return parts[0]
    return get_backend(chunk=parts[0]).concatenate(parts, axis=0)
