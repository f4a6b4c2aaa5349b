"""Hubness reduction that peer libraries ship: NNN, distribution normalisation,
mutual proximity and local scaling (NICDM).

All four follow the package's convention (see :mod:`skxmr.hubness`): the
method's score ``f(q, g)`` is interpolated with the cosines as
``S + α (f - S)``, so ``strength=0`` gives exactly the cosines and
``strength=1`` the published score. Bank statistics are taken from the
banks of :meth:`fit` exactly as for CSLS: a gallery item's statistics from
its similarities to the *query* bank, a query's from its similarities to the
*gallery* bank.

Every method runs on POT's backend: under
``sklearn.config_context(array_api_dispatch=True)`` torch banks, galleries
and queries stay torch tensors on their device (the empirical form's
row-wise search and ``log Φ`` (:func:`scipy.special.log_ndtr`) are the
backend's, see :mod:`skxmr.utils._backend`).
"""

import functools
import numbers

import numpy as np
from ..utils._compat import Interval, StrOptions

from .._base import candidate_similarities
from ..utils._backend import astype, dtype_name, get_backend
from ..utils._chunking import concat_rows, map_row_chunks
from .._registry import register_method
from ..utils._params import (
    N_NEIGHBORS,
    N_NEIGHBORS_OR_AUTO,
    STRENGTH_GRID,
    keyword_only,
    param_doc,
)
from ..utils._topk import row_kth_largest
from ._base import HubnessEstimator, ItemwiseScores, hubness_doc
from ._defaults import nnn_neighbors
from ._kernels import _mean_top_k, _prefer

# A bank radius (local scaling) of exactly zero -- an item equal to its k
# nearest bank items -- would divide by zero; it is floored here instead,
# which keeps every distance finite and the item's order unchanged.
_RADIUS_FLOOR = 1e-12


# ---------------------------------------------------------------- kernels
def _bank_pass(items, bank, reduce, n_jobs=None):
    """``reduce(items[rows] @ bank.T)`` over memory-bounded row chunks.

    ``reduce`` maps a (chunk, n_bank) similarity block to per-row
    statistics (first axis: rows); the chunks' results are concatenated.
    """
    nx = get_backend(items=items, bank=bank)
    parts = map_row_chunks(
        _bank_chunk, items.shape[0], 24 * bank.shape[0], args=(items, bank, reduce),
        n_jobs=n_jobs, prefer=_prefer(nx),
    )
    return concat_rows(parts)


def _bank_chunk(rows, items, bank, reduce):
    return reduce(get_backend(items=items).dot(items[rows, ...], bank.T))


def _kth_largest_of(M, k):
    """The ``k``-th largest entry of each row, float64."""
    return astype(row_kth_largest(M, k), "float64")


def _kth_largest(items, bank, k, n_jobs=None):
    """The ``k``-th largest similarity of each item to ``bank`` (float64)."""
    return _bank_pass(items, bank, functools.partial(_kth_largest_of, k=k), n_jobs)


def _moments(M):
    """Mean and (population) standard deviation of each row, float64: (n, 2)."""
    nx = get_backend(M=M)
    M = astype(M, "float64")
    mean = nx.mean(M, axis=1)
    std = nx.sqrt(nx.mean((M - mean[:, None]) ** 2, axis=1))  # two-pass: no cancellation
    return nx.stack([mean, std], axis=1)


def _sort_rows(M):
    return get_backend(M=M).sort(M, axis=1)


def _count_at_most(sorted_rows, values):
    """``counts[i, j] = #{t : sorted_rows[i, t] <= values[i, j]}``: a
    row-wise ``searchsorted(..., side="right")`` on the rows' backend."""
    return get_backend(sorted_rows=sorted_rows, values=values).count_at_most(sorted_rows, values)


def _interpolated_cdf(sorted_rows, values):
    """Each row's empirical CDF at ``values``, mid-ranked and linearly interpolated.

    Row ``i`` holds ``n`` sorted bank cosines ``b_(1) <= ... <= b_(n)``; the
    scored pair counts as one more observation. The CDF runs through the
    knots ``(b_(k), k / (n + 1))`` and ``(-1, 1/2 / (n + 1))``, ``(1, (n +
    1/2) / (n + 1))`` at the ends of the cosine range, and is linear between
    knots: over the gap between ``b_(k)`` and ``b_(k+1)`` its mean is the
    mid-rank value ``(k + 1/2) / (n + 1)`` (the scored pair counted as half
    above, half below). Bank values that repeat exactly make a step there.
    It is continuous and strictly increasing on ``[-1, 1]``: the top candidates of a query do not
    tie at the largest value, and a cosine that rounds a little differently
    in another chunk or batch (an item in both the bank and the test set)
    moves its probability a little instead of by a whole count. Values lie
    in ``[1/2, n + 1/2] / (n + 1)``, so their log is finite. Float64.
    """
    nx = get_backend(sorted_rows=sorted_rows)
    n = sorted_rows.shape[1]
    rows = astype(sorted_rows, "float64")
    s = nx.clip(astype(values, "float64"), -1.0, 1.0)
    c = _count_at_most(sorted_rows, values)  # knots at or below s
    lo_idx = nx.clip(c - 1, 0, n - 1)
    hi_idx = nx.clip(c, 0, n - 1)
    x_lo = nx.where(c > 0, _take_rows(rows, lo_idx), -1.0)
    x_hi = nx.where(c < n, _take_rows(rows, hi_idx), 1.0)
    cf = astype(c, "float64")
    y_lo = nx.where(c > 0, cf, 0.5) / (n + 1)
    y_hi = nx.where(c < n, cf + 1.0, n + 0.5) / (n + 1)
    gap = x_hi - x_lo
    t = nx.where(gap > 0, (s - x_lo) / nx.where(gap > 0, gap, 1.0), 0.0)
    return y_lo + nx.clip(t, 0.0, 1.0) * (y_hi - y_lo)


def _take_rows(M, idx):
    """``M[i, idx[i, j]]`` for every ``(i, j)``, on ``M``'s backend."""
    return get_backend(M=M).xp(M).take_along_axis(M, idx, axis=1)


def _check_spread(std, items, what):
    """Gaussian mutual proximity needs every item's bank similarities to vary."""
    tiny = 16 * float(np.finfo(dtype_name(items)).eps)  # what rounding leaves of a constant row
    nx = get_backend(std=std)
    n_bad = int(nx.count_true(std <= tiny))
    if n_bad:
        row = int(nx.argmin(std))
        raise ValueError(
            f"method='gaussian' needs the similarities of each {what} to vary; "
            f"{n_bad} have (near) zero standard deviation (e.g. row {row}), "
            "so no Gaussian can be fitted. Use method='empirical', or a bank "
            "that spreads."
        )


# -------------------------------------------------------------------- NNN
@hubness_doc(n_neighbors=param_doc("n_neighbors", "auto", "``\"auto\"`` sets "
                                    "``k = round(sqrt(n_bank))``, at most 256, from the fitted "
                                    "query bank (``n_neighbors_``; see :ref:`auto-defaults`); 256 "
                                    "is the authors' default. Larger than the "
                                    "query bank it is clipped to the bank size (then ``b(g)`` is "
                                    "the mean similarity of ``g`` to the whole bank).", auto=True),
             strength="``α_s`` in the equation above.")
class NearestNeighborNormalization(HubnessEstimator):
    """Nearest neighbor normalization (NNN, Chowdhury et al., 2024).

    Each gallery item gets a bias: the mean of its ``k`` largest
    similarities to the query bank (the *reference queries*),
    ``b(g) = mean(top_k_{b ∈ B_q} S_bq[b, g])``, and the score is

    .. math::  S(q, g) - \\alpha_s\\, a\\, b(g),

    with ``a = alpha`` the paper's weight and ``α_s = strength``
    (``strength=1`` is the paper's score, 0 the cosines). The bias depends
    only on the gallery item, so NNN is linear in the gallery (approximate
    candidates apply, as in the authors' faiss implementation) and an index
    can ``add`` items.

    Parameters
    ----------
    {n_neighbors}
    alpha : float in [0, 1], default=0.5
        The weight of the bias (the authors' default).
    {strength}
    {common}

    Attributes
    ----------
    {attrs}
    n_neighbors_ : int
        The ``n_neighbors`` in use: the one given, or the value ``"auto"``
        chose from the fitted banks.

    See Also
    --------
    nnn_scores : The same on explicit matrices.
    CSLS : Subtracts a similar radius on both sides.

    References
    ----------
    N. Chowdhury, F. Wang, S. Shenoy, D. Kiela, S. Schwettmann, T. Thrush.
    Nearest Neighbor Normalization Improves Multimodal Retrieval. EMNLP 2024
    (arXiv:2410.24114).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import NearestNeighborNormalization, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((20, 4))
    >>> X = pair(Q, Q + 0.3 * rng.standard_normal((20, 4)))
    >>> est = NearestNeighborNormalization(n_neighbors=3).fit(X[:10])
    >>> est.decision_function(X[10:]).shape
    (10, 10)
    """

    _parameter_constraints = {
        **HubnessEstimator._parameter_constraints,
        "n_neighbors": N_NEIGHBORS_OR_AUTO,
        "alpha": [Interval(numbers.Real, 0, 1, closed="both")],
    }
    _auto_rules = {"n_neighbors": nnn_neighbors}

    @keyword_only("alpha", "strength")
    def __init__(self, n_neighbors="auto", *, alpha=0.5, strength=1.0, n_query_features=None,
                 direction="q2g", n_jobs=None):
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        super().__init__(strength=strength, n_query_features=n_query_features,
                         direction=direction, n_jobs=n_jobs)

    def _prepare_gallery(self, gallery):
        k = min(self.n_neighbors_, self.query_bank_.shape[0])
        return {"bias": _mean_top_k(gallery, self.query_bank_, k, self.n_jobs)}

    def _score_queries(self, queries, gallery, state):
        return self._linear_scores(queries, gallery, state)

    def _linear_form(self, gallery, state):
        return 1.0, (self.strength * self.alpha) * state["bias"]


def nnn_scores(queries, gallery, query_bank, *, n_neighbors=256, alpha=0.5, strength=1.0):
    """Nearest-neighbor-normalised scores ``S - strength·alpha·b(g)``.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    gallery : array-like of shape (n_gallery, d)
    query_bank : array-like of shape (n_bank_queries, d)
        The reference queries (e.g. training captions); at least two rows.
    n_neighbors : int or "auto", default=256
        Clipped to the bank size; ``"auto"``: ``round(sqrt(n_bank))``, at
        most 256 (the estimator's default).
    alpha : float in [0, 1], default=0.5
    strength : float in [0, 1], default=1.0

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)

    See Also
    --------
    NearestNeighborNormalization : Equations and parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness import nnn_scores
    >>> E = np.eye(2)
    >>> # bank [e1, e1, e2], k=2: b(e1) = mean(1, 1) = 1, b(e2) = mean(1, 0) = 0.5
    >>> nnn_scores(E, E, [[1, 0], [1, 0], [0, 1]], n_neighbors=2, alpha=1.0)
    array([[ 0. , -0.5],
           [-1. ,  0.5]])
    """
    est = NearestNeighborNormalization(n_neighbors=n_neighbors, alpha=alpha, strength=strength)
    return est._two_view_scores(queries, gallery, query_bank)


# ---------------------------------------------------- distribution normalisation
@hubness_doc()
class DistributionNormalization(ItemwiseScores, HubnessEstimator):
    """Test-time distribution normalization (DN, Zhou et al., 2023).

    With ``μ_q`` and ``μ_g`` the means of the (L2-normalised) query bank and
    gallery bank, DN scores the dot product of the centred embeddings,

    .. math::  f(q, g) = (q - \\tfrac12 \\mu_q)^\\top (g - \\tfrac12 \\mu_g),

    the paper's first-order approximation of the InfoNCE objective (the
    embeddings are not re-normalised after centring). Expanded,
    ``f = S - ½ qᵀμ_g - (½ μ_qᵀg - ¼ μ_qᵀμ_g)``: a per-query term, constant
    along a row, and a per-gallery offset, which alone changes rankings.
    The estimator returns ``S + α (f - S)``. The per-query term is kept so
    that ``strength=1`` gives the paper's values; as for :class:`CSLS`, the
    scores are then not of the ``q·g - offset(g)`` form, so approximate
    serving (``index(G, approximate=True)``) takes candidates by cosine and
    scores each one exactly (the per-query term needs only ``μ_g``); only
    the candidate set is approximate. The paper
    estimates the means from a batch of unlabelled test-time samples; here
    they come from the banks of :meth:`fit`.

    Parameters
    ----------
    {strength}
    {common}

    Attributes
    ----------
    {attrs}
    query_mean_ : ndarray of shape (d,)
        ``μ_q``, the mean of the query bank (float64).
    gallery_mean_ : ndarray of shape (d,)
        ``μ_g``, the mean of the gallery bank (float64).

    See Also
    --------
    distribution_normalization_scores : The same on explicit matrices.

    References
    ----------
    Y. Zhou, J. Ren, F. Li, R. Zabih, S.-N. Lim. Test-Time Distribution
    Normalization for Contrastively Learned Vision-language Models.
    NeurIPS 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import DistributionNormalization, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((20, 4))
    >>> X = pair(Q, Q + 0.3 * rng.standard_normal((20, 4)))
    >>> est = DistributionNormalization().fit(X[:10])
    >>> est.decision_function(X[10:]).shape
    (10, 10)
    """

    def __init__(self, strength=1.0, *, n_query_features=None, direction="q2g", n_jobs=None):
        super().__init__(strength=strength, n_query_features=n_query_features,
                         direction=direction, n_jobs=n_jobs)

    def _fit_banks(self, query_bank, gallery_bank):
        super()._fit_banks(query_bank, gallery_bank)
        nx = get_backend(query_bank=query_bank, gallery_bank=gallery_bank)
        self.query_mean_ = nx.mean(astype(query_bank, "float64"), axis=0)
        self.gallery_mean_ = nx.mean(astype(gallery_bank, "float64"), axis=0)

    def _prepare_gallery(self, gallery):
        nx = get_backend(gallery=gallery)
        mu_q, mu_g = self.query_mean_, self.gallery_mean_
        # products in the gallery's precision, the offset in float64
        g_mu = astype(nx.dot(gallery, astype(mu_q, gallery.dtype)), "float64")
        return {"offset": 0.5 * g_mu - 0.25 * nx.dot(mu_q, mu_g)}

    def _from_similarities(self, queries, S, items):
        """``S - α(½ qᵀμ_g + offset(g))`` in place in S's dtype; the query's
        term needs only ``μ_g`` (see :class:`ItemwiseScores`)."""
        a = self.strength
        row = get_backend(queries=queries).dot(queries, astype(self.gallery_mean_, queries.dtype))
        S -= astype(a * items["offset"], S.dtype)
        S -= astype((0.5 * a) * row, S.dtype)[:, None]
        return S


def distribution_normalization_scores(queries, gallery, query_bank, gallery_bank, *, strength=1.0):
    """Distribution-normalised scores ``(q - ½μ_q)ᵀ(g - ½μ_g)`` on explicit matrices.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    gallery : array-like of shape (n_gallery, d)
    query_bank : array-like of shape (n_bank_queries, d)
        Its mean is ``μ_q``.
    gallery_bank : array-like of shape (n_bank_gallery, d)
        Its mean is ``μ_g``.
    strength : float in [0, 1], default=1.0

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)

    See Also
    --------
    DistributionNormalization : Equations and parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness import distribution_normalization_scores
    >>> E = np.eye(2)
    >>> # μ_q = (1, 0), μ_g = (0.5, 0.5): (q - (0.5, 0))·(g - (0.25, 0.25))
    >>> distribution_normalization_scores(E, E, [[1, 0], [1, 0]], E)
    array([[ 0.375, -0.125],
           [-0.625,  0.875]])
    """
    est = DistributionNormalization(strength=strength)
    return est._two_view_scores(queries, gallery, query_bank, gallery_bank)


# ------------------------------------------------------- mutual proximity
@hubness_doc()
class MutualProximity(HubnessEstimator):
    """Mutual proximity (MP, Schnitzer et al., 2012), in its cross-modal form.

    MP turns a similarity into the probability that it is high *for both
    items*: ``P_q(S)``, the probability that ``g`` is at least as similar to
    ``q`` as ``q``'s gallery-bank items are, times ``P_g(S)``, the
    probability that ``q`` is at least as similar to ``g`` as ``g``'s
    query-bank items are (the two are independent here: the banks differ).
    The score is its log,

    .. math::  f(q, g) = \\log P_q(S(q, g)) + \\log P_g(S(q, g)),

    and the estimator returns ``S + α (f - S)``.

    * ``method="gaussian"``: ``P_x(s) = Φ((s - μ_x) / σ_x)`` with ``μ_x``,
      ``σ_x`` the mean and (population) standard deviation of ``x``'s bank
      similarities; ``log Φ`` is evaluated by :func:`scipy.special.log_ndtr`,
      finite far into the tail. An item whose bank similarities do not vary
      raises ``ValueError``.
    * ``method="empirical"``: ``P_x(s)``, the empirical distribution
      function of the ``n`` bank similarities of ``x`` with the scored pair
      itself counted as one more observation, mid-ranked and linearly
      interpolated: it passes through ``k / (n + 1)`` at the ``k``-th
      smallest bank similarity, through ``(1/2) / (n + 1)`` and ``(n + 1/2) / (n + 1)``
      at cosines -1 and 1, and is linear in between, so it is never 0 and
      its log is finite. Each gallery item keeps its sorted query-bank
      similarities (``n_gallery × n_bank_queries`` values).

      The interpolation departs from the step function ``(c_x(s) + 1) /
      (n + 1)`` (``c_x(s)``: bank similarities ``<= s``) on purpose: the
      step function makes the best candidates of a query tie (all above
      every bank similarity: probability 1 on both sides), and a rank
      metric that is pessimistic about ties then puts the true item last
      among them; and a cosine that rounds differently in another chunk
      or batch (an item in both bank and test set) jumped by a whole count
      (up to ``log 2``). The interpolated function is continuous and
      strictly increasing, so neither happens; its mean over each gap
      between bank similarities is the step function's mid-rank value.

    Schnitzer et al. define MP on the distances of one data set to itself,
    the empirical form from the joint count over shared neighbours; with two
    banks there is no shared set, so the product of the two marginals is
    used for both forms (the paper's Gaussian form assumes independence
    too). Every statistic depends on one gallery item only: an index can
    ``add`` items. The scores are not linear in the gallery, but ``P_q``
    needs only the gallery bank, so approximate serving
    (``index(G, approximate=True)``) takes candidates by cosine and scores
    each one exactly; only the candidate set is approximate.

    Parameters
    ----------
    method : {"gaussian", "empirical"}, default="gaussian"
        The form of ``P_x`` (see above).
    {strength}
    {common}

    Attributes
    ----------
    {attrs}

    See Also
    --------
    mutual_proximity_scores : The same on explicit matrices.

    References
    ----------
    D. Schnitzer, A. Flexer, M. Schedl, G. Widmer. Local and Global Scaling
    Reduce Hubs in Space. JMLR 13, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import MutualProximity, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((20, 4))
    >>> X = pair(Q, Q + 0.3 * rng.standard_normal((20, 4)))
    >>> est = MutualProximity(method="empirical").fit(X[:10])
    >>> est.decision_function(X[10:]).shape
    (10, 10)
    """

    _parameter_constraints = {
        **HubnessEstimator._parameter_constraints,
        "method": [StrOptions({"gaussian", "empirical"})],
    }
    _candidate_search = "cosine"

    @keyword_only("strength")
    def __init__(self, method="gaussian", *, strength=1.0, n_query_features=None, direction="q2g",
                 n_jobs=None):
        self.method = method
        super().__init__(strength=strength, n_query_features=n_query_features,
                         direction=direction, n_jobs=n_jobs)

    def _bytes_per_query_row(self, n_gallery):
        # S, f, the counts and the search's gathers (a few float64 rows),
        # the query's own bank row
        return 8 * (8 * n_gallery + 2 * self.gallery_bank_.shape[0])

    def _prepare_gallery(self, gallery):
        if self.method == "gaussian":
            m = _bank_pass(gallery, self.query_bank_, _moments, self.n_jobs)
            _check_spread(m[:, 1], gallery, "gallery item to the query bank")
            return {"mean": m[:, 0], "std": m[:, 1]}
        # float64 cosines: a float32 GEMM rounds differently in another
        # chunk shape, and the CDF's slope magnifies that at close bank values
        return {"sorted": _bank_pass(astype(gallery, "float64"),
                                     astype(self.query_bank_, "float64"), _sort_rows, self.n_jobs)}

    def _score_queries(self, queries, gallery, state):
        nx = get_backend(queries=queries)
        S = nx.dot(queries, gallery.T)
        if self.method == "gaussian":
            S_cdf = astype(S, "float64")
            log_pg = nx.special("log_ndtr", (S_cdf - state["mean"]) / state["std"])
        else:
            S_cdf = nx.dot(astype(queries, "float64"), astype(gallery, "float64").T)
            log_pg = nx.log(_interpolated_cdf(state["sorted"], S_cdf.T)).T
        return self._blend(queries, S, S_cdf, log_pg)

    def _score_candidates(self, queries, gallery, state, ids):
        # P_q needs only the gallery bank: exact on any candidate set
        S = candidate_similarities(queries, gallery, ids)
        if self.method == "gaussian":
            S_cdf = astype(S, "float64")
            log_pg = get_backend(queries=queries).special(
                "log_ndtr", (S_cdf - state["mean"][ids]) / state["std"][ids])
        else:
            S_cdf = candidate_similarities(astype(queries, "float64"), gallery, ids)
            # one CDF row per (query, candidate): the candidate's sorted bank row
            log_pg = np.log(_interpolated_cdf(state["sorted"][ids.ravel()],
                                              S_cdf.reshape(-1, 1))).reshape(ids.shape)
        return self._blend(queries, S, S_cdf, log_pg)

    def _blend(self, queries, S, S_cdf, log_pg):
        """``S + α(log P_q + log P_g - S)`` in S's dtype, from ``log P_g``
        (per entry) and the similarities ``S_cdf`` the CDFs read (float64)."""
        nx = get_backend(queries=queries)
        # queries is already one chunk of a parallel map: no nested workers
        if self.method == "gaussian":
            m = _bank_pass(queries, self.gallery_bank_, _moments, n_jobs=1)
            _check_spread(m[:, 1], queries, "query to the gallery bank")
            log_pq = nx.special("log_ndtr", (S_cdf - m[:, :1]) / m[:, 1:])
        else:
            q64 = astype(queries, "float64")
            own = _sort_rows(nx.dot(q64, astype(self.gallery_bank_, "float64").T))
            log_pq = nx.log(_interpolated_cdf(own, S_cdf))
        S64 = astype(S, "float64")
        return astype(S64 + self.strength * (log_pq + log_pg - S64), S.dtype)


def mutual_proximity_scores(queries, gallery, query_bank, gallery_bank, *, method="gaussian",
                            strength=1.0):
    """Mutual-proximity scores ``log P_q(S) + log P_g(S)`` on explicit matrices.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    gallery : array-like of shape (n_gallery, d)
    query_bank : array-like of shape (n_bank_queries, d)
        Gives each gallery item's similarity distribution.
    gallery_bank : array-like of shape (n_bank_gallery, d)
        Gives each query's similarity distribution.
    method : {"gaussian", "empirical"}, default="gaussian"
    strength : float in [0, 1], default=1.0

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)

    See Also
    --------
    MutualProximity : Equations and parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness import mutual_proximity_scores
    >>> E = np.eye(2)
    >>> bank = [[1, 0], [0, 1], [1, 1]]
    >>> # S(e1, e1) = 1 is the largest of e1's 3 bank cosines (0, 0.71, 1) on
    >>> # both sides: the knot (1, 3/4) of the CDF, so log(3/4) + log(3/4)
    >>> S = mutual_proximity_scores(E, E, bank, bank, method="empirical")
    >>> round(float(S[0, 0]), 6), round(2 * float(np.log(3 / 4)), 6)
    (-0.575364, -0.575364)
    """
    est = MutualProximity(method=method, strength=strength)
    return est._two_view_scores(queries, gallery, query_bank, gallery_bank)


# ---------------------------------------------------------- local scaling
@hubness_doc(n_neighbors=param_doc("n_neighbors", 10, "Larger than a bank it is clipped to that "
                                    "bank's size (for ``\"standard\"`` the radius is then the "
                                    "distance to the farthest bank item)."))
class LocalScaling(ItemwiseScores, HubnessEstimator):
    """Local scaling and its non-iterative contextual dissimilarity (NICDM).

    On cosine distances ``d = 1 - S``, each item gets a radius from its
    ``k`` nearest bank items (a gallery item from the query bank, a query
    from the gallery bank):

    * ``method="nicdm"`` (Jégou et al., 2010, in Schnitzer et al.'s
      non-iterative form): ``μ_k(x)``, the mean distance to the ``k``
      nearest bank items, and ``D = d / sqrt(μ_k(q) μ_k(g))``;
    * ``method="standard"`` (Zelnik-Manor & Perona, 2004): ``σ_k(x)``, the
      distance to the ``k``-th nearest bank item, and
      ``D = 1 - exp(-d² / (σ_k(q) σ_k(g)))``.

    Hubs have small radii: they are close to many bank items, so their
    distances are scaled up. The method's similarity is ``f = 1 - D`` (on
    the cosine scale: ``f = S`` for radii of 1), and the estimator returns
    ``S + α (f - S)``. A radius of zero (an item equal to its ``k`` nearest
    bank items) is floored at ``1e-12`` so that every score is finite.
    A query's radius needs only the gallery bank, so approximate serving
    (``index(G, approximate=True)``) takes candidates by cosine and scores
    each one exactly; only the candidate set is approximate.

    Parameters
    ----------
    method : {"nicdm", "standard"}, default="nicdm"
        The variant (see above).
    {n_neighbors}
    {strength}
    {common}

    Attributes
    ----------
    {attrs}

    See Also
    --------
    local_scaling_scores : The same on explicit matrices.

    References
    ----------
    L. Zelnik-Manor, P. Perona. Self-Tuning Spectral Clustering. NIPS 2004.
    H. Jégou, C. Schmid, H. Harzallah, J. Verbeek. Accurate Image Search
    Using the Contextual Dissimilarity Measure. IEEE TPAMI 32(1), 2010.
    D. Schnitzer, A. Flexer, M. Schedl, G. Widmer. Local and Global Scaling
    Reduce Hubs in Space. JMLR 13, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import LocalScaling, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((20, 4))
    >>> X = pair(Q, Q + 0.3 * rng.standard_normal((20, 4)))
    >>> est = LocalScaling(n_neighbors=3).fit(X[:10])
    >>> est.decision_function(X[10:]).shape
    (10, 10)
    """

    _parameter_constraints = {
        **HubnessEstimator._parameter_constraints,
        "method": [StrOptions({"nicdm", "standard"})],
        "n_neighbors": N_NEIGHBORS,
    }

    @keyword_only("n_neighbors", "strength")
    def __init__(self, method="nicdm", *, n_neighbors=10, strength=1.0, n_query_features=None,
                 direction="q2g", n_jobs=None):
        self.method = method
        self.n_neighbors = n_neighbors
        super().__init__(strength=strength, n_query_features=n_query_features,
                         direction=direction, n_jobs=n_jobs)

    def _radius(self, items, bank, n_jobs):
        """``μ_k`` (NICDM) or ``σ_k`` (standard) of each item, floored, float64."""
        k = min(self.n_neighbors, bank.shape[0])
        near = _mean_top_k if self.method == "nicdm" else _kth_largest
        return get_backend(items=items).clip(1.0 - near(items, bank, k, n_jobs), _RADIUS_FLOOR, None)

    def _prepare_gallery(self, gallery):
        return {"radius": self._radius(gallery, self.query_bank_, self.n_jobs)}

    def _from_similarities(self, queries, S, items):
        """``S + α(1 - D - S)`` in S's dtype; the query's radius needs only
        the gallery bank (see :class:`ItemwiseScores`)."""
        nx = get_backend(queries=queries)
        S64 = astype(S, "float64")
        # queries is already one chunk of a parallel map: no nested workers
        r = self._radius(queries, self.gallery_bank_, n_jobs=1)[:, None] * items["radius"]
        d = 1.0 - S64
        f = 1.0 - d / nx.sqrt(r) if self.method == "nicdm" else nx.exp(-(d * d) / r)
        return astype(S64 + self.strength * (f - S64), S.dtype)


def local_scaling_scores(queries, gallery, query_bank, gallery_bank, *, method="nicdm",
                         n_neighbors=10, strength=1.0):
    """Local-scaling (NICDM or standard) similarities ``1 - D`` on explicit matrices.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    gallery : array-like of shape (n_gallery, d)
    query_bank : array-like of shape (n_bank_queries, d)
        Gives each gallery item's radius.
    gallery_bank : array-like of shape (n_bank_gallery, d)
        Gives each query's radius.
    method : {"nicdm", "standard"}, default="nicdm"
    n_neighbors : int, default=10
        Clipped to each bank's size.
    strength : float in [0, 1], default=1.0

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)

    See Also
    --------
    LocalScaling : Equations and parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness import local_scaling_scores
    >>> E = np.eye(2)
    >>> bank = [[1, 0], [0, 1]]
    >>> # k=2: every radius is μ = mean(0, 1) = 0.5, so D = d / 0.5
    >>> local_scaling_scores(E, E, bank, bank, n_neighbors=2)
    array([[ 1., -1.],
           [-1.,  1.]])
    """
    est = LocalScaling(method=method, n_neighbors=n_neighbors, strength=strength)
    return est._two_view_scores(queries, gallery, query_bank, gallery_bank)


register_method(
    "NNN",
    lambda direction="q2g": NearestNeighborNormalization(direction=direction),
    family="hubness",
    description="nearest neighbor normalization over the query bank (k=sqrt(bank), alpha=0.5)",
    grid={"n_neighbors": ["auto", 8, 64, 256], "alpha": [0.25, 0.5, 1.0],
          "strength": STRENGTH_GRID},
)
register_method(
    "DN",
    lambda direction="q2g": DistributionNormalization(direction=direction),
    family="hubness",
    description="distribution normalization with the bank means",
    grid={"strength": STRENGTH_GRID},
)
register_method(
    "MP",
    lambda direction="q2g": MutualProximity(direction=direction),
    family="hubness",
    description="mutual proximity, Gaussian, cross-modal",
    grid={"method": ["gaussian", "empirical"], "strength": STRENGTH_GRID},
)
register_method(
    "LS",
    lambda direction="q2g": LocalScaling(direction=direction),
    family="hubness",
    description="local scaling, NICDM form (k=10)",
    grid={"method": ["nicdm", "standard"], "n_neighbors": [5, 10, 20],
          "strength": STRENGTH_GRID},
)
