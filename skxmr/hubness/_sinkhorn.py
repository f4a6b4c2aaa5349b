"""The Sinkhorn estimators: Sinkhorn normalisation (SN) and Dual Bank SN (DBSN).

The potentials come from :mod:`skxmr._ot`."""

import warnings
import weakref

from ..utils._backend import get_backend
from .._ot import PRECISION_CONSTRAINT, SINKHORN_CONSTRAINTS, KernelBuffer, block_potentials
from .._registry import register_method
from ..utils._params import (
    ALLOW_TF32,
    DEPRECATED,
    STRENGTH_GRID,
    TEMPERATURE_OR_AUTO,
    deprecated,
    keyword_only,
    param_doc,
    renamed_doc,
    value_of,
)
from ._base import OFFSETS_DOC, HubnessEstimator, hubness_doc
from ._defaults import SINKHORN_SCALE, auto_doc, sinkhorn_temperature

_SOLVER_DOC = """solver : {"auto", "sinkhorn", "sinkhorn_log", "sinkhorn_stabilized"}, \
            default="auto"
        ``"auto"``: the package's engine (scaling domain where the kernel
        cannot underflow, log domain otherwise, streamed when large).
        Otherwise POT's solver of that name
        (``ot.sinkhorn(b, a, 1 - Mᵀ, reg=τ, method=...)``) on the stored
        matrix, read in the same convention; it needs the whole matrix
        (about four float64 copies) in memory. Where POT's scaling-domain
        solvers underflow (small τ) they warn and POT's
        ``"sinkhorn_log"`` runs instead."""

_PRECISION_DOC = """precision : {"auto", "float64"}, default="auto"
        Stored kernel for float32 embeddings (numpy or torch): ``"auto"`` computes the
        similarities in float32 (half the memory and time of float64) and
        stores a row-shifted float32 kernel where every row's spread is at
        most 60 τ (float64 otherwise); the potentials then move by the
        float32 rounding of the similarities, below 1e-6 of ``max |h|``
        (see :doc:`/scaling`). ``"float64"``: float64 similarities and
        kernel, identical to float64 inputs. float64 embeddings always use
        float64. The kernel's memory is reused by every gallery the
        estimator solves."""



def _sinkhorn_doc(temperature_note, **parts):
    """``hubness_doc`` with SN's and DBSN's own parameters."""
    return hubness_doc(temperature=param_doc("temperature", "auto", temperature_note + " "
                                             + auto_doc(SINKHORN_SCALE, 0.01) + ".",
                                             auto=True),
                       solver=_SOLVER_DOC, working_memory=param_doc("working_memory"),
                       precision=_PRECISION_DOC, allow_tf32=param_doc("allow_tf32", False),
                       method=renamed_doc("method", "solver"), **parts)


# The stored kernel's memory, one buffer per estimator, reused by every
# gallery it solves (decision_function, index): kept beside the estimator,
# not in it, so that it is never pickled, cloned or seen as fitted state.
_BUFFERS = weakref.WeakKeyDictionary()


def _kernel_buffer(estimator):
    try:
        return _BUFFERS.setdefault(estimator, KernelBuffer())
    except TypeError:  # not weak-referenceable: a buffer for this call only
        return KernelBuffer()


# -------------------------------------------------------------- estimators
def _gallery_potentials(query_bank, gallery, gallery_bank, *, temperature, max_iter,
                        tol, working_memory, n_jobs, method, precision="auto",
                        buffer=None, allow_tf32=False):
    """h of the gallery: SN (``gallery_bank=None``) or DBSN (columns G, Bg).

    No pass beyond ``max_iter`` is spent on the marginal error unless a
    ``tol`` asks for it (``exact_error=None``): the estimators do not report it.
    """
    blocks = [gallery] if gallery_bank is None else [gallery, gallery_bank]
    h, _ = block_potentials(
        query_bank, blocks, temperature, max_iter, tol, working_memory=working_memory,
        n_jobs=n_jobs, method=method, exact_error=None, precision=precision, buffer=buffer,
        allow_tf32=allow_tf32)
    return h[: gallery.shape[0]]


@_sinkhorn_doc(
    "The entropic regularisation (POT's ``reg``). The paper's 0.01 was "
    "tuned on banks of ~10^5 queries; small banks want a larger τ (on "
    "COCO with a 250-pair bank, τ around 0.02-0.03 beats 0.01 "
    "text→image), so tune it with ``GridSearchCV``.",
    offsets=OFFSETS_DOC,
)
class SinkhornNormalizer(HubnessEstimator):
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

    {offsets}

    Parameters
    ----------
    {temperature}
    max_iter : int, default=10
        Sinkhorn iterations (the paper's T=10).
    tol : float, default=None
        If given, stop once the row-marginal error is below ``tol`` and
        warn (``ConvergenceWarning``) when ``max_iter`` does not reach it;
        ``None`` runs exactly ``max_iter`` iterations, like the paper.
    {strength}
    {common}
        ``n_jobs`` also sets the threads of the stored-kernel loop
        (``None``: as many as BLAS would use).
    {working_memory}
        The stored kernel is the bank × gallery matrix (bank × (gallery +
        gallery bank) for DBSN), float32 or float64 (see ``precision``);
        when it is not stored, every Sinkhorn iteration streams the matrix
        products in chunks.
    {solver}
    {precision}
    {allow_tf32}
    {method}

    Attributes
    ----------
    {attrs}
    temperature_ : float
        The ``temperature`` in use: the one given, or the value ``"auto"``
        chose from the fitted banks.

    See Also
    --------
    DualBankSinkhornNormalizer : adds the gallery bank as extra columns.
    sinkhorn_scores : the two-view function.

    Notes
    -----
    Scalings are float64 whatever the input dtype. The kernel is shifted
    by each row's largest similarity (an unshifted float32 kernel
    underflows at τ=0.01 and POT then silently returns uniform scalings),
    float32 only within the spread above (``precision``), and in the log domain when the float64 kernel would underflow (small
    τ), see :mod:`skxmr.hubness`. ``h`` follows POT's convention (start
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
    >>> index.kneighbors(X[20:, :8], n_neighbors=3, return_distance=False).shape
    (10, 3)
    """

    _parameter_constraints = {
        **HubnessEstimator._parameter_constraints,
        **{k: v for k, v in SINKHORN_CONSTRAINTS.items() if k != "method"},
        "solver": SINKHORN_CONSTRAINTS["method"],
        **PRECISION_CONSTRAINT,
        "allow_tf32": ALLOW_TF32,
        "method": deprecated(SINKHORN_CONSTRAINTS["method"]),
        "temperature": TEMPERATURE_OR_AUTO,
    }
    _auto_rules = {"temperature": sinkhorn_temperature}
    _renamed_params = {"method": "solver"}
    # The potentials of one gallery item depend on all the others.
    _separable_gallery = False

    @keyword_only("max_iter", "tol", "strength")
    def __init__(self, temperature="auto", *, max_iter=10, tol=None, strength=1.0,
                 n_query_features=None, direction="q2g", n_jobs=None,
                 working_memory=None, solver="auto", precision="auto", allow_tf32=False,
                 method=DEPRECATED):
        self.temperature = temperature
        self.max_iter = max_iter
        self.tol = tol
        self.working_memory = working_memory
        self.solver = solver
        self.precision = precision
        self.allow_tf32 = allow_tf32
        self.method = method
        super().__init__(strength=strength, n_query_features=n_query_features,
                         direction=direction, n_jobs=n_jobs)

    def _extra_columns(self):
        return None

    def _prepare_gallery(self, gallery):
        if self.strength == 0:  # plain cosine: the potentials are not used
            nx = get_backend(gallery=gallery)
            return {"h": nx.zeros((gallery.shape[0],), type_as=gallery)}
        h = _gallery_potentials(
            self.query_bank_, gallery, self._extra_columns(),
            temperature=self.temperature_, max_iter=self.max_iter, tol=self.tol,
            working_memory=self.working_memory, n_jobs=self.n_jobs,
            method=value_of(self, "solver"), precision=self.precision,
            buffer=_kernel_buffer(self), allow_tf32=self.allow_tf32,
        )
        return {"h": h}

    def _score_queries(self, queries, gallery, state):
        return self._linear_scores(queries, gallery, state)

    def _linear_form(self, gallery, state):
        return 1.0, self.strength * state["h"]


@_sinkhorn_doc(
    "The entropic regularisation; tuned in the paper on banks of ~10^5 "
    "queries; small banks want a larger τ (see :class:`SinkhornNormalizer`).")
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
    {temperature}
    max_iter : int, default=10
        Sinkhorn iterations.
    tol : float, default=None
        Marginal-error tolerance (``ConvergenceWarning`` if not reached).
    {strength}
    {common}
    {working_memory}
    {solver}
    {precision}
    {allow_tf32}
    {method}

    Attributes
    ----------
    {attrs}
    temperature_ : float
        The ``temperature`` in use: the one given, or the value ``"auto"``
        chose from the fitted banks.

    See Also
    --------
    SinkhornNormalizer : without the gallery bank.
    dual_bank_sinkhorn_scores : the two-view function.

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
def sinkhorn_scores(queries, gallery, query_bank, *, temperature=0.01, max_iter=10, tol=None,
                    strength=1.0, working_memory=None, n_jobs=None, solver="auto",
                    precision="auto", allow_tf32=False):
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
    solver : str, default="auto"
        As in :class:`SinkhornNormalizer`.
    precision : str, default="auto"
        As in :class:`SinkhornNormalizer`.
    allow_tf32 : bool, default=False
        As in :class:`SinkhornNormalizer`.

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)
        float32 if every input (the bank included) is float32.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness import sinkhorn_scores
    >>> rng = np.random.default_rng(0)
    >>> Q, G, Bq = rng.normal(size=(4, 8)), rng.normal(size=(5, 8)), rng.normal(size=(9, 8))
    >>> sinkhorn_scores(Q, G, Bq, temperature=0.05).shape
    (4, 5)
    """
    est = SinkhornNormalizer(temperature=temperature, max_iter=max_iter, tol=tol,
                             strength=strength, working_memory=working_memory, n_jobs=n_jobs,
                             solver=solver, precision=precision, allow_tf32=allow_tf32)
    return est._two_view_scores(queries, gallery, query_bank)


def dual_bank_sinkhorn_scores(queries, gallery, query_bank, gallery_bank, *, temperature=0.01,
                              max_iter=10, tol=None, strength=1.0, working_memory=None,
                              n_jobs=None, solver="auto", precision="auto",
                              allow_tf32=False):
    """Dual-bank Sinkhorn-normalised scores (DBSN, two-view form).

    As :func:`sinkhorn_scores` with ``M = [Bq Gᵀ | Bq Bgᵀ]``: the gallery
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
    temperature : float or "auto", default=0.01
        The paper's value; ``"auto"`` reads it off the two banks as the
        estimator's default does.
    max_iter : int, default=10
    tol : float, default=None
    strength : float in [0, 1], default=1.0
    working_memory : float, default=None
    n_jobs : int, default=None
    solver : str, default="auto"
        As in :class:`DualBankSinkhornNormalizer`.
    precision : str, default="auto"
        As in :class:`DualBankSinkhornNormalizer`.
    allow_tf32 : bool, default=False
        As in :class:`DualBankSinkhornNormalizer`.

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)
        float32 if every input (the banks included) is float32.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness import dual_bank_sinkhorn_scores
    >>> rng = np.random.default_rng(0)
    >>> Q, G = rng.normal(size=(4, 8)), rng.normal(size=(5, 8))
    >>> Bq, Bg = rng.normal(size=(9, 8)), rng.normal(size=(7, 8))
    >>> dual_bank_sinkhorn_scores(Q, G, Bq, Bg, temperature=0.05).shape
    (4, 5)
    """
    est = DualBankSinkhornNormalizer(
        temperature=temperature, max_iter=max_iter, tol=tol, strength=strength,
        working_memory=working_memory, n_jobs=n_jobs, solver=solver, precision=precision,
        allow_tf32=allow_tf32,
    )
    return est._two_view_scores(queries, gallery, query_bank, gallery_bank)


def _renamed_function(new):
    """The old name of a two-view function: warns, takes ``method`` for ``solver``."""
    old = new.__name__.replace("_scores", "_normalize")

    def function(*args, method="auto", **kwargs):
        warnings.warn(
            f"{old} was renamed {new.__name__} (and its 'method' argument 'solver'); "
            "the old name will be removed in the next release.",
            FutureWarning,
            stacklevel=2,
        )
        return new(*args, solver=method, **kwargs)

    function.__name__ = function.__qualname__ = old
    function.__doc__ = f"Deprecated name of :func:`{new.__name__}`."
    return function


sinkhorn_normalize = _renamed_function(sinkhorn_scores)
dual_bank_sinkhorn_normalize = _renamed_function(dual_bank_sinkhorn_scores)


register_method(
    "SN",
    lambda direction="q2g": SinkhornNormalizer(direction=direction),
    family="hubness",
    description="Sinkhorn normalisation on the query bank (tau from the bank, 10 iterations)",
    grid={"temperature": ["auto", 0.005, 0.01, 0.02, 0.05], "strength": STRENGTH_GRID},
)
register_method(
    "DBSN",
    lambda direction="q2g": DualBankSinkhornNormalizer(direction=direction),
    family="hubness",
    description="dual bank Sinkhorn normalisation: query bank x (gallery + gallery bank)",
    grid={"temperature": ["auto", 0.005, 0.01, 0.02, 0.05], "strength": STRENGTH_GRID},
)
