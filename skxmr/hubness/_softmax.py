"""Softmax-style hubness reduction: inverted softmax, QB-Norm, dual softmax."""

import math

import numpy as np

from .._base import candidate_similarities
from ..utils._backend import astype, get_backend, is_numpy
from ..utils._math import relative_offsets
from ..utils._chunking import concat_rows, map_row_chunks
from .._registry import register_method
from ..utils._validation import (
    check_matrix,
    check_n_neighbors,
    check_same_width,
    l2_normalize,
    result_dtype,
)
from ..utils._params import (
    DEPRECATED,
    N_NEIGHBORS,
    STRENGTH_GRID,
    TEMPERATURE,
    TEMPERATURE_OR_AUTO,
    deprecated,
    keyword_only,
    param_doc,
    renamed_argument,
    renamed_doc,
    value_of,
)
from ._base import OFFSETS_DOC, HubnessEstimator, hubness_doc
from ._defaults import SOFTMAX_SCALE, auto_doc, softmax_temperature
from ._kernels import _LOG_TINY, _activation_set, _gated_offsets, _log_partition


def _dual_softmax(queries, gallery, temperature, strength, dtype, n_jobs=None):
    """DSL scores on normalised matrices (see :class:`DualSoftmax`)."""
    nx = get_backend(queries=queries, gallery=gallery)
    tau = temperature
    # h and S from the same float64 products: at tiny τ, (S - h)/τ magnifies
    # any difference between two roundings of S (float32 products scaled by
    # 1/τ gave positive scores and wrong rankings at τ <= 1e-6).
    Q, G = astype(queries, "float64"), astype(gallery, "float64")
    # τ·log Z(g) with Z(g) = Σ_q exp(S(q, g)/τ) over the *test* queries.
    h = _log_partition(G, Q, tau, n_jobs)
    # Lower bound of v = log|S| + log softmax for |S| <= 1 (1e-3 of slack
    # covers float32 cosines that round above 1): positives land above
    # τ·v_lo, and the mirrored non-positive branch below τ·(v_lo - 1).
    v_lo = _LOG_TINY - 2.0 * (1.0 + 1e-3) / tau - math.log(queries.shape[0])
    # S, L, v, f and the result: five float64 rows
    parts = map_row_chunks(_dual_softmax_chunk, queries.shape[0], 40 * gallery.shape[0],
                           args=(Q, G, h, tau, v_lo, strength, dtype), n_jobs=n_jobs,
                           prefer=None if is_numpy(nx) else "threads")
    return concat_rows(parts)


def _dual_softmax_chunk(rows, Q, G, h, tau, v_lo, strength, dtype):
    nx = get_backend(queries=Q)
    tiny = float(np.finfo(np.float64).smallest_subnormal)
    S = nx.dot(Q[rows, ...], G.T)
    L = (S - h) / tau  # log softmax over the queries: <= 0 up to rounding
    L = nx.minimum(L, 0.0)
    v = nx.log(nx.maximum(nx.abs(S), tiny)) + L
    f = nx.where(S > 0, tau * v, tau * (2.0 * v_lo - v - 1.0))
    return astype(S + strength * (f - S), dtype)


# ------------------------------------------------------- inverted softmax
_IS_TEMPERATURE = param_doc("temperature", "auto",
                            "The softmax temperature. " + auto_doc(SOFTMAX_SCALE, 0.05)
                            + " (``β = 1/τ = 20``).", auto=True)


@hubness_doc(temperature=_IS_TEMPERATURE, offsets=OFFSETS_DOC)
class InvertedSoftmax(HubnessEstimator):
    """Inverted softmax (IS) over a query bank.

    The gallery potential is the temperature-scaled log partition of each
    gallery item over the bank queries,

    .. math::  h(g) = \\tau \\log \\sum_{b \\in B_q} \\exp(S_{bq}[b, g] / \\tau),

    and the score is ``S(q, g) - α·h(g)``. For ``α = 1`` this is ``τ`` times
    the log of the inverted softmax ``exp(S/τ) / Z(g)`` of Smith et al. (2017),
    with the normaliser taken over the query bank as in QB-Norm (Bogolin
    et al., 2022, "Cross Modal Retrieval with Querybank Normalisation",
    arXiv:2112.12777): the same ranking, without overflow.

    {offsets}

    Parameters
    ----------
    {temperature}
    {strength}
    {common}

    Attributes
    ----------
    {attrs}
    temperature_ : float
        The ``temperature`` in use: the one given, or the value ``"auto"``
        chose from the fitted banks.

    See Also
    --------
    inverted_softmax_scores : The same on explicit matrices.
    QBNorm : Applies the inverted softmax only to rows that retrieve a hub.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import InvertedSoftmax, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((20, 4))
    >>> X = pair(Q, Q + 0.3 * rng.standard_normal((20, 4)))
    >>> est = InvertedSoftmax().fit(X[:10])
    >>> est.decision_function(X[10:]).shape
    (10, 10)
    """

    _parameter_constraints = {**HubnessEstimator._parameter_constraints,
                              "temperature": TEMPERATURE_OR_AUTO}
    _auto_rules = {"temperature": softmax_temperature}

    @keyword_only("strength")
    def __init__(self, temperature="auto", *, strength=1.0, n_query_features=None, direction="q2g",
                 n_jobs=None):
        self.temperature = temperature
        super().__init__(strength=strength, n_query_features=n_query_features,
                         direction=direction, n_jobs=n_jobs)

    def _prepare_gallery(self, gallery):
        return {"h": _log_partition(gallery, self.query_bank_, self.temperature_, self.n_jobs)}

    def _score_queries(self, queries, gallery, state):
        return self._linear_scores(queries, gallery, state)

    def _linear_form(self, gallery, state):
        # score = q.g - α h(g): approximate candidate search applies
        return 1.0, self.strength * state["h"]


def inverted_softmax_scores(queries, gallery, query_bank, *, temperature=0.05, strength=1.0):
    """Inverted-softmax scores ``S - α·h(g)`` on explicit matrices.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    gallery : array-like of shape (n_gallery, d)
    query_bank : array-like of shape (n_bank_queries, d)
        Bank queries (e.g. training captions); at least two rows.
    temperature : float, default=0.05
    strength : float in [0, 1], default=1.0

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)
        float32 if every input is float32.

    See Also
    --------
    InvertedSoftmax : Equations and parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness import inverted_softmax_scores
    >>> G = np.array([[1., 0.], [0., 1.]])
    >>> bank = np.array([[1., 0.1], [1., 0.2], [0.1, 1.]])
    >>> # gallery item 0 is close to two bank queries: a hub, demoted
    >>> S = inverted_softmax_scores(np.array([[1., 1.]]), G, bank, temperature=0.1)
    >>> bool(S[0, 1] > S[0, 0])
    True
    """
    est = InvertedSoftmax(temperature=temperature, strength=strength)
    return est._two_view_scores(queries, gallery, query_bank)


# ---------------------------------------------------------------- QB-Norm
@hubness_doc(
    temperature=_IS_TEMPERATURE,
    n_neighbors=param_doc("n_neighbors", 1, "Top-``k`` gallery items per bank query forming the "
                          "activation set; ``1 <= k <= n_gallery`` (checked when a gallery is "
                          "scored)."),
    k=renamed_doc("k", "n_neighbors"),
    offsets=OFFSETS_DOC,
)
class QBNorm(HubnessEstimator):
    """Querybank normalisation with the dynamic inverted softmax (DIS).

    Bogolin et al. (2022): the activation set ``A`` is the union of the top-``k``
    test gallery items of every bank query (on ``Sbq``). A test query whose
    top-1 gallery item under the raw scores is in ``A`` -- it probably
    retrieved a hub -- gets the inverted-softmax row ``S - α·h(g)`` (see
    :class:`InvertedSoftmax`); every other row keeps the raw cosines ``S``.
    ``k`` is the ``n_neighbors`` parameter.

    ``A`` depends on the whole gallery, so a :class:`~skxmr.GalleryIndex` of
    this estimator cannot ``add`` items. Approximate serving
    (``index(G, approximate=True)``) takes candidates by cosine, gates on
    the best of them and scores each one exactly: the scores are the exact
    ones whenever the candidates hold the query's top-1 cosine item (the
    first thing a cosine graph finds); the candidate set is approximate.

    {offsets}

    Parameters
    ----------
    {temperature}
    {n_neighbors}
    {strength}
    {common}
    {k}

    Attributes
    ----------
    {attrs}
    temperature_ : float
        The ``temperature`` in use: the one given, or the value ``"auto"``
        chose from the fitted banks.

    See Also
    --------
    qb_norm_scores : The same on explicit matrices.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import QBNorm, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((20, 4))
    >>> X = pair(Q, Q + 0.3 * rng.standard_normal((20, 4)))
    >>> est = QBNorm(n_neighbors=1).fit(X[:10])
    >>> est.decision_function(X[10:]).shape
    (10, 10)
    """

    _parameter_constraints = {
        **HubnessEstimator._parameter_constraints,
        "temperature": TEMPERATURE_OR_AUTO,
        "n_neighbors": N_NEIGHBORS,
        "k": deprecated(N_NEIGHBORS),
    }
    _auto_rules = {"temperature": softmax_temperature}
    _renamed_params = {"k": "n_neighbors"}
    _separable_gallery = False
    _candidate_search = "cosine"

    @keyword_only("k", "strength")
    def __init__(self, temperature="auto", *, n_neighbors=1, strength=1.0, n_query_features=None,
                 direction="q2g", n_jobs=None, k=DEPRECATED):
        self.temperature = temperature
        self.n_neighbors = n_neighbors
        self.k = k
        super().__init__(strength=strength, n_query_features=n_query_features,
                         direction=direction, n_jobs=n_jobs)

    def _prepare_gallery(self, gallery):
        k = check_n_neighbors(value_of(self, "n_neighbors"), gallery.shape[0], "n_neighbors",
                              "gallery items")
        return {
            "h": _log_partition(gallery, self.query_bank_, self.temperature_, self.n_jobs),
            "active": _activation_set(gallery, self.query_bank_, k, self.n_jobs),
        }

    def _score_queries(self, queries, gallery, state):
        S = get_backend(queries=queries).dot(queries, gallery.T)
        return _gated_offsets(S, [(state["active"], self.strength * state["h"])])

    def _score_candidates(self, queries, gallery, state, ids):
        # The gate reads the query's top-1 cosine item among its candidates
        # (ties: the lower gallery row, as argmax over a full row): the true
        # top-1 whenever the candidate set holds it.
        S = candidate_similarities(queries, gallery, ids)
        best = np.where(S == S.max(axis=1, keepdims=True), ids, np.iinfo(ids.dtype).max)
        gated = state["active"][best.min(axis=1)][:, None]
        off = astype(relative_offsets(self.strength * state["h"]), S.dtype)[ids]
        return np.subtract(S, off, out=S, where=gated)


def qb_norm_scores(queries, gallery, query_bank, *, temperature=0.05, n_neighbors=1, strength=1.0,
                   k=DEPRECATED):
    """QB-Norm (dynamic inverted softmax) scores on explicit matrices.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    gallery : array-like of shape (n_gallery, d)
    query_bank : array-like of shape (n_bank_queries, d)
    temperature : float, default=0.05
    n_neighbors : int, default=1
        ``1 <= n_neighbors <= n_gallery``.
    strength : float in [0, 1], default=1.0
    k : deprecated
        Renamed ``n_neighbors``.

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)
        Rows whose top-1 item is outside the activation set equal the cosines.

    See Also
    --------
    QBNorm : Equations and parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness import qb_norm_scores
    >>> G = np.array([[1., 0.], [0., 1.]])
    >>> bank = np.array([[1., 0.1], [1., 0.2]])     # both retrieve item 0
    >>> Q = np.array([[1., 0.5], [0.1, 1.]])       # top-1: item 0, item 1
    >>> S = qb_norm_scores(Q, G, bank, temperature=0.1)
    >>> np.allclose(S[1], Q[1] / np.linalg.norm(Q[1]))  # not gated: cosine
    True
    """
    n_neighbors = renamed_argument(k, n_neighbors, "k", "n_neighbors", "qb_norm_scores")
    est = QBNorm(temperature=temperature, n_neighbors=n_neighbors, strength=strength)
    return est._two_view_scores(queries, gallery, query_bank)


# ----------------------------------------------------------- dual softmax
@hubness_doc(temperature=param_doc("temperature", 0.01,
                                   "The softmax temperature (the paper's logit scale 100)."))
class DualSoftmax(HubnessEstimator):
    """Dual softmax (DSL) inference prior, a transductive baseline.

    Cheng et al. (2021) re-score the test matrix with a softmax over the *test
    queries* of each gallery column, ``P = S ⊙ softmax(S/τ, axis=0)``. This
    needs the whole batch of test queries, so the estimator is transductive:
    :meth:`score_matrix` works per batch and :meth:`index` refuses. The bank
    from ``fit`` is not used.

    Scores are returned on the similarity scale in the log domain. With
    ``L = S/τ - log Σ_q' exp(S(q', g)/τ)`` (the log-softmax, never
    overflowing) and ``v = log|S| + L = log|P|``, the method's score is

    * ``f = τ·v = τ log P`` where ``S > 0``;
    * ``f = τ·(2 v_lo - v - 1)`` where ``S <= 0`` (``P <= 0``), with
      ``v_lo = log(ε) - 2.002/τ - log n_queries`` a lower bound of ``v``
      (``ε`` the smallest positive float64),

    so that ``f`` is a strictly increasing function of ``P``: every query's
    row is ranked exactly as by the paper's ``S ⊙ softmax`` (non-positive
    products below all positive ones, and ordered among themselves), at any
    temperature, without underflowing to ties. For ``S > 0``,
    ``f = S - (τ log Z(g) - τ log S)``: a transductive inverted softmax over
    the test queries plus ``τ log S``. The returned score is
    ``S + α (f - S)``; ``α = 0`` gives exactly the cosines.

    Parameters
    ----------
    {temperature}
    {strength}
    {common}

    Attributes
    ----------
    {attrs}

    See Also
    --------
    dual_softmax_scores : The same on explicit matrices.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import DualSoftmax, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((20, 4))
    >>> X = pair(Q, Q + 0.3 * rng.standard_normal((20, 4)))
    >>> est = DualSoftmax().fit(X[:10])
    >>> est.decision_function(X[10:]).shape
    (10, 10)
    """

    _parameter_constraints = {**HubnessEstimator._parameter_constraints, "temperature": TEMPERATURE}
    _transductive = True

    @keyword_only("strength")
    def __init__(self, temperature=0.01, *, strength=1.0, n_query_features=None, direction="q2g",
                 n_jobs=None):
        self.temperature = temperature
        super().__init__(strength=strength, n_query_features=n_query_features,
                         direction=direction, n_jobs=n_jobs)

    def _score_queries(self, queries, gallery, state):
        # Transductive: called once with the whole batch of test queries (the
        # softmax over axis 0 runs over them), never per chunk.
        return _dual_softmax(
            queries, gallery, self.temperature, self.strength,
            result_dtype(queries, gallery), self.n_jobs,
        )


def dual_softmax_scores(queries, gallery, *, temperature=0.01, strength=1.0):
    """Dual-softmax (DSL) scores of a batch of queries, in the log domain.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
        The whole batch of test queries.
    gallery : array-like of shape (n_gallery, d)
    temperature : float, default=0.01
    strength : float in [0, 1], default=1.0

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)
        Ranks each row as ``S ⊙ softmax(S/τ, axis=0)`` for ``strength=1``.

    See Also
    --------
    DualSoftmax : Equations and parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness import dual_softmax_scores
    >>> Q = np.array([[1., 0.2], [1., 0.3], [0.2, 1.]])
    >>> G = np.array([[1., 0.], [0.6, 0.8]])
    >>> S = Q / np.linalg.norm(Q, axis=1, keepdims=True) @ G.T
    >>> P = S * np.exp(S / 0.1) / np.exp(S / 0.1).sum(axis=0)
    >>> D = dual_softmax_scores(Q, G, temperature=0.1)
    >>> bool(np.all(np.argsort(D, axis=1) == np.argsort(P, axis=1)))
    True
    """
    DualSoftmax(temperature=temperature, strength=strength)._validate_params()
    Q = check_matrix(queries, "queries")
    G = check_matrix(gallery, "gallery")
    get_backend(queries=Q, gallery=G)
    check_same_width(Q, G, "queries", "gallery")
    dtype = result_dtype(Q, G)
    Q, G = l2_normalize(Q, "queries"), l2_normalize(G, "gallery")
    return _dual_softmax(Q, G, temperature, strength, dtype)



register_method(
    "IS",
    lambda direction="q2g": InvertedSoftmax(direction=direction),
    family="hubness",
    description="inverted softmax over the query bank (tau from the bank)",
    grid={"temperature": ["auto", 0.01, 0.02, 0.05, 0.1], "strength": STRENGTH_GRID},
)
register_method(
    "QB-Norm",
    lambda direction="q2g": QBNorm(direction=direction),
    family="hubness",
    description="querybank normalisation, dynamic inverted softmax (tau from the bank, "
                "n_neighbors=1)",
    grid={"temperature": ["auto", 0.01, 0.02, 0.05, 0.1], "strength": STRENGTH_GRID},
)
register_method(
    "DSL",
    lambda direction="q2g": DualSoftmax(direction=direction),
    family="hubness",
    description="dual softmax over the test queries (tau=0.01)",
    grid={"temperature": [0.005, 0.01, 0.02, 0.05], "strength": STRENGTH_GRID},
    transductive=True,
)
