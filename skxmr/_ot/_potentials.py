"""Sinkhorn potentials: the one place the package solves entropic optimal transport.
 The hubness
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
The tests check the equality to 1e-10 in float64.

**Engine (POT's backend).** The iterations are written on POT's backend
primitives (:mod:`._generic`: ``nx.dot``, ``nx.exp``, ``nx.logsumexp``),
one code path for numpy and torch tensors on the CPU or a GPU. numpy
arrays take a specialisation of the same iterations (:mod:`._dense`,
:mod:`._streamed`, :mod:`._log`): POT's ``ot.sinkhorn`` allocates
``1 - M.T``, the kernel, a rescaled copy and the plan (five ``n × m``
arrays) and reads the kernel twice per iteration, and the backend API has
no in-place operations; the numpy loop holds one ``n × m`` array (reused
across an estimator's calls), two matrix-vector products over it per
iteration with POT's ``nx.dot`` (measured 2.5-7× faster than the reference call; see
``benchmarks/bench_sinkhorn.py`` and ``benchmarks/bench_backends.py``).
``method=`` names one of POT's solvers to run it instead (:mod:`._pot`).

**Numerics.** Scalings are float64; kernels float64, except the float32
kernel of float32 embeddings (``precision="auto"``, spread at most 60 τ,
see :func:`sinkhorn_potentials_from_embeddings`). Two domains, chosen
automatically:

* *scaling domain* (fast path): the kernel is built once, in one buffer,
  each row shifted by its largest similarity (``exp((M - max_j M) / τ)``,
  the factor absorbed exactly into the row scaling). Every iteration is
  then the plain loop, two BLAS matrix-vector products over the whole
  kernel on all BLAS threads. Used when every row has ``(max M - min M) / τ <= 300`` (e.g. τ=0.01 on
  cosines in [-1, 1]), so that neither the kernel nor the scalings can
  underflow.
* *log domain*: log-sum-exp updates of ``log r`` and ``log c`` over
  memory-bounded row chunks, recomputing the exponentials each pass. Used
  for smaller τ or larger similarity spreads (e.g. τ=1e-3), where the
  kernel would underflow and plain Sinkhorn-Knopp (POT included) silently
  returns wrong scalings.

**Streaming.** When the bank × columns kernel does not fit in
``working_memory``, :func:`sinkhorn_potentials_from_embeddings` (and the
estimators) store nothing of that size: every iteration is one pass over
row chunks, each chunk's block ``bank[rows] @ columns.T`` recomputed in a
work buffer allocated once per worker and turned into its kernel (scaling
domain) or log-sum-exps (log domain) for both the row update and its share
of the column update (one module-level task per run of chunks, folded per
worker, so that joblib's process backends such as loky and dask run them). The products are computed in the inputs'
precision: float32 embeddings use float32 matrix products, twice as fast
as float64 and the dominant cost (~8 ns per entry and iteration on 2
cores), which moves the potentials by a few 1e-7 (float32 rounding of the
cosines, amplified by 1/τ in the kernel and multiplied by τ again in
``h``). Stored matrices are computed in float64 from either dtype, so
float32 and float64 inputs then give identical potentials.
"""


import numpy as np
from ..utils._compat import validate_params

from ..utils._backend import get_backend
from ..utils._validation import check_matrix, check_same_width
from ._common import (PRECISION_CONSTRAINT, SINKHORN_CONSTRAINTS, _check_marginals, _fits,
                      _result)
from ._dense import _solve_dense
from ._generic import nx_sinkhorn, stored_source
from ._pot import check_pot_memory, pot_sinkhorn
from ._streamed import _embedding_potentials


def _solve_stored(M, temperature, max_iter, tol, a, b, *, working_memory, n_jobs, method):
    """``(log_c, log_r, n_iter, err, log_domain)`` of a validated stored matrix."""
    nx = get_backend(M=M)
    a, b = _check_marginals(a, b, *M.shape, like=M)
    if method != "auto":
        check_pot_memory(method, *M.shape, working_memory, M)
        return pot_sinkhorn(nx, M + nx.zeros((1, 1), type_as=a), temperature, max_iter,
                            tol, a, b, method)
    if isinstance(M, np.ndarray):  # the numpy specialisation
        return _solve_dense(M, temperature, max_iter, tol, a, b,
                            working_memory=working_memory, n_jobs=n_jobs)
    source = stored_source(nx, M, 1.0 / temperature, a)
    return nx_sinkhorn(nx, source, *M.shape, temperature, a, b, max_iter, tol,
                       store=_fits(8 * M.shape[0] * M.shape[1], working_memory, M),
                       item_bytes=8, exact_error=True, working_memory=working_memory,
                       like64=a)


@validate_params(
    {"M": ["array-like"], "a": ["array-like", None], "b": ["array-like", None],
     **SINKHORN_CONSTRAINTS},
    prefer_skip_nested_validation=True,
)
def sinkhorn_potentials(M, temperature=0.01, max_iter=10, tol=None, *, a=None, b=None,
                        working_memory=None, n_jobs=None, method="auto"):
    """Sinkhorn hubness potentials of the columns of a similarity matrix.

    Solves entropic OT with cost ``1 - M`` by Sinkhorn-Knopp (row scaling
    ``r`` updated first, column scaling ``c`` last, ``c = 1 / n_cols`` at
    the start) and returns ``h = -τ log c``; ``S - h`` re-scores the
    columns. Computed in float64, in the scaling domain when the kernel
    cannot underflow and in the log domain otherwise (see
    :mod:`skxmr._ot`).

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
        MiB. The float64 kernel (one ``n_bank × n_cols`` array) is stored
        when it fits: in this budget when given, otherwise (``None``) in
        half of the available memory (free device memory for CUDA
        tensors). A kernel that does not fit is replaced by an iteration
        over chunks of ``M`` (log domain on numpy, scaling domain where
        the spread allows it on other backends) of at most this size
        (``None``: ``sklearn.get_config()["working_memory"]``).
    n_jobs : int, default=None
        Threads of the stored-kernel loop (``None``: as many as BLAS would
        use) and joblib workers for the chunked passes.
    method : {"auto", "sinkhorn", "sinkhorn_log", "sinkhorn_stabilized"}, \
            default="auto"
        ``"auto"``: the package's engine (above). Otherwise POT's solver of
        that name, ``ot.sinkhorn(b, a, 1 - M.T, reg=τ, method=method)``,
        read in the same convention (POT's log-domain start ``u = 1`` is
        shifted to ``u = 1 / n_cols``); it holds about four float64
        matrices of ``M``'s shape, and an explicit ``working_memory`` too
        small for them raises ``ValueError``.

    Returns
    -------
    h : ndarray of shape (n_cols,)
        Column potentials ``-τ log c`` (float64; a float64 tensor on
        ``M``'s device for torch input under array API dispatch); equal to
        ``-τ log(u)`` of ``ot.sinkhorn(b, a, 1 - M.T, reg=τ, log=True)``.
    log : dict
        ``n_iter`` (iterations done), ``marginal_error`` (row-marginal L2
        error of the returned plan; its column marginal is ``b``),
        ``log_domain`` (which path ran) and ``log_r`` (log row scaling), so
        that the plan is ``exp(log_r[:, None] + (M - 1) / τ - h / τ)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr._ot import sinkhorn_potentials
    >>> M = np.array([[0.9, 0.8, 0.1], [0.7, 0.8, 0.2]])
    >>> h, log = sinkhorn_potentials(M, temperature=0.1, max_iter=50)
    >>> h.shape, log["n_iter"]
    ((3,), 50)
    >>> bool(log["marginal_error"] < 1e-6)
    True
    """
    M = check_matrix(M, "M")
    out = _solve_stored(M, temperature, max_iter, tol, a, b, working_memory=working_memory,
                        n_jobs=n_jobs, method=method)
    return _result(*out, temperature=temperature, max_iter=max_iter, tol=tol)


@validate_params(
    {"bank": ["array-like"], "columns": ["array-like"], "a": ["array-like", None],
     "b": ["array-like", None], **SINKHORN_CONSTRAINTS, **PRECISION_CONSTRAINT},
    prefer_skip_nested_validation=True,
)
def sinkhorn_potentials_from_embeddings(bank, columns, temperature=0.01, max_iter=10,
                                        tol=None, *, a=None, b=None,
                                        working_memory=None, n_jobs=None, method="auto",
                                        precision="auto"):
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
        As in :func:`sinkhorn_potentials` (``n_jobs=None`` also runs the
        streamed chunks in one thread per BLAS thread).
    working_memory : float, default=None
        Budget in MiB: the float64 similarity matrix is stored when it fits
        in it, and streamed chunks stay within it (device memory for GPU
        tensors). ``None``: stored when it fits in half of the available
        memory (a row-shifted float32 kernel when only that fits and every
        row's spread is at most 60 τ), otherwise streamed in
        chunks of ``sklearn.get_config()["working_memory"]``. A budget
        too small for one row raises ``ValueError``.
    method : str, default="auto"
        As in :func:`sinkhorn_potentials` (POT's solvers need the whole
        matrix).
    precision : {"auto", "float64"}, default="auto"
        Stored kernel of numpy or torch embeddings. ``"auto"``: float32 embeddings
        get a row-shifted float32 kernel from float32 products (sgemm, half
        the memory and twice the speed of float64), used when every row's
        spread is at most 60 τ (entries >= exp(-60), normal float32
        numbers; float64 otherwise); the potentials then differ from the
        float64 kernel's by the float32 rounding of the products, measured
        below 1e-6 of ``max |h|`` (see :doc:`/scaling`). ``"float64"``:
        float64 products and kernel for either dtype (then float32 and
        float64 inputs give identical potentials). float64 embeddings
        always get a float64 kernel when it fits.

    Returns
    -------
    h : ndarray of shape (n_cols,)
    log : dict
        As in :func:`sinkhorn_potentials`, plus ``streamed`` (bool).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr._ot import sinkhorn_potentials_from_embeddings
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
    return block_potentials(B, [C], temperature, max_iter, tol, a, b,
                            working_memory=working_memory, n_jobs=n_jobs, method=method,
                            precision=precision)


def block_potentials(bank, blocks, temperature, max_iter, tol, a=None, b=None, *,
                     working_memory, n_jobs, method="auto", exact_error=False,
                     precision="auto", buffer=None, allow_tf32=False):
    """Potentials of ``M = bank [C_1 | C_2 | ...]ᵀ`` for validated embeddings.

    The seam the estimators call: the column blocks (DBSN's gallery and
    gallery bank) are never stacked. ``exact_error=None`` spends no pass
    beyond ``max_iter`` on the reported marginal error; ``False`` reports
    the error of the iterate before the last when streamed; ``True`` the
    last's. ``precision`` as in :func:`sinkhorn_potentials_from_embeddings`;
    ``buffer``: a :class:`KernelBuffer` holding the stored kernel across
    calls (the estimators keep one each); ``allow_tf32``: TF32 float32
    products on CUDA (the estimators' parameter). Returns ``(h, log)`` as
    :func:`sinkhorn_potentials_from_embeddings`.
    """
    return _result(*_embedding_potentials(
        bank, blocks, temperature, max_iter, tol, a, b, working_memory=working_memory,
        n_jobs=n_jobs, method=method, exact_error=exact_error, precision=precision,
        buffer=buffer, allow_tf32=allow_tf32),
        temperature=temperature, max_iter=max_iter, tol=tol)
