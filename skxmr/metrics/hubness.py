"""Hubness diagnostics from a query × gallery score matrix.

The k-occurrence ``N_k(g)`` of gallery item ``g`` is the number of queries
(rows) that have ``g`` among their ``k`` best-scored columns. A uniform
``N_k`` (every item retrieved equally often) means no hubness; hubs are items
with large ``N_k``, antihubs items that no query retrieves (``N_k = 0``).
Every statistic runs over all gallery items, zeros included.

Ties at the k-th score are broken deterministically by the lower column
index, so every row contributes exactly ``k`` occurrences and
``N_k.sum() == n_queries * k``. On heavily tied scores this rule itself
creates hubs: a constant score matrix sends every query to the first ``k``
columns (an all-equal 20 × 20 matrix has skewness 4.13 at ``k=1``), so
read the statistics on scores without systematic ties (for a quantised or
clipped score, add noise far below its resolution first).

Under ``sklearn.config_context(array_api_dispatch=True)`` torch scores stay
on their device: ``N_k`` comes back as an int64 tensor there (column sums
of the top-k mask through POT's backend), the statistics as Python floats.
"""

import numpy as np

from ..utils._backend import get_backend
from ..utils._chunking import map_row_chunks
from ..utils._topk import top_k_indices, top_k_mask
from ..utils._validation import check_matrix, check_n_neighbors
from ._lists import TopK, check_list_cutoff
from .ranking import _f64, chunk_budget


def _k_occurrence(S, k):
    """N_k on a validated matrix, in row chunks (column counts are summed),
    or on ranked lists (:class:`TopK`)."""
    if isinstance(S, TopK):
        return np.bincount(S.indices[:, :k].ravel(), minlength=S.n_items)
    numpy = isinstance(S, np.ndarray)
    nx = get_backend(scores=S)
    # per row: the partitioned copy and the boolean top-k mask (+ slack)
    per_row = 17 * S.shape[1]
    parts = map_row_chunks(_k_occurrence_chunk, S.shape[0], per_row, args=(S, k),
                           working_memory=chunk_budget(per_row))
    if numpy:
        return np.sum(parts, axis=0, dtype=np.int64)
    return nx.sum(nx.stack(parts), axis=0)


def _k_occurrence_chunk(rows, S, k):
    """Top-``k`` counts of each column over the rows ``rows`` (ties at the
    k-th score: lower column first, as everywhere in skxmr)."""
    if isinstance(S, np.ndarray):
        return np.bincount(top_k_indices(S[rows], k).ravel(), minlength=S.shape[1])
    return get_backend(scores=S).sum(top_k_mask(S[rows, ...], k), axis=0)


def _check(scores, k):
    if isinstance(scores, TopK):
        return scores, check_list_cutoff(scores, k)
    S = check_matrix(scores, "scores")
    k = check_n_neighbors(k, S.shape[1], "k")
    return S, k


def k_occurrence(scores, k=10):
    """How often each gallery item is among the ``k`` best of a query.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery) or TopK
        Higher is better. Ranked lists (:class:`TopK`, e.g. from
        ``GalleryIndex.kneighbors``) give the same result for ``k`` up to
        their length.
    k : int, default=10
        Neighbourhood size, ``1 <= k <= n_gallery``.

    Returns
    -------
    n_k : array of shape (n_gallery,), int64
        ``n_k[j]`` = number of rows with column ``j`` in their top ``k``. Ties
        at the k-th score go to the lower column index, so
        ``n_k.sum() == n_queries * k``. A tensor on the device of ``scores``
        under array API dispatch.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import k_occurrence
    >>> S = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.1], [0.6, 0.2, 0.3]])
    >>> k_occurrence(S, k=1)
    array([3, 0, 0])
    >>> k_occurrence(S, k=2)
    array([3, 1, 2])
    """
    S, k = _check(scores, k)
    return _k_occurrence(S, k)


def _skewness(n_k):
    x = _f64(n_k)
    nx = get_backend(n_k=x)
    d = x - nx.mean(x)
    m2 = float(nx.mean(d**2))
    if float(nx.max(x) - nx.min(x)) == 0 or m2 == 0:
        return 0.0
    return float(nx.mean(d**3)) / m2**1.5


def _robinhood(n_k):
    x = _f64(n_k)
    nx = get_backend(n_k=x)
    return float(0.5 * nx.sum(nx.abs(x - nx.mean(x))) / nx.sum(x))


def _antihub_rate(n_k):
    return float(get_backend(n_k=n_k).mean(_f64(n_k == 0)))


def hubness_skewness(scores, k=10):
    """Skewness of the k-occurrence distribution (Radovanović et al., 2010).

    The third standardised moment ``E[(N_k - μ)^3] / σ^3`` with population
    (biased) moments over all gallery items. Positive values mean a long
    right tail: a few hubs retrieved by many queries. A constant ``N_k`` (no
    hubness at all) gives 0. Ties go to the lower column index (see
    :mod:`skxmr.metrics`): tied scores show hubness that the ties made.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery) or TopK
        Higher is better; finite. Ranked lists (:class:`TopK`, e.g. from
        ``GalleryIndex.kneighbors``) give the same result for ``k`` up to
        their length.
    k : int, default=10
        Neighbourhood size, ``1 <= k <= n_gallery``.

    Returns
    -------
    skewness : float
        Lower is better.

    References
    ----------
    M. Radovanović, A. Nanopoulos, M. Ivanović. Hubs in Space: Popular
    Nearest Neighbors in High-Dimensional Data. JMLR 11, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import hubness_skewness
    >>> S = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.1], [0.6, 0.2, 0.3]])
    >>> round(hubness_skewness(S, k=1), 4)   # N_1 = [3, 0, 0]
    0.7071
    >>> round(hubness_skewness(np.ones((20, 20)), k=1), 2)  # ties: all to column 0
    4.13
    >>> hubness_skewness(np.eye(3), k=1)     # N_1 = [1, 1, 1]
    0.0
    """
    S, k = _check(scores, k)
    return _skewness(_k_occurrence(S, k))


def robinhood_index(scores, k=10):
    """Robin Hood index of the k-occurrence (Feldbauer et al., 2018).

    ``H = sum_g |N_k(g) - mean(N_k)| / (2 sum_g N_k(g))``: the share of all
    occurrences that would have to move from hubs to other items to make
    ``N_k`` uniform, i.e. half the L1 distance between ``N_k / sum(N_k)`` and
    the uniform distribution. In ``[0, 1)``; 0 means no hubness.

    Feldbauer et al. write ``|N_k - k|`` for a kNN graph of a data set with
    itself, where ``mean(N_k) = k``; with ``n_queries != n_gallery`` the mean
    is ``k n_queries / n_gallery``, and using it keeps the index a distance to
    uniform in ``[0, 1)`` (as scikit-hubness does).

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery) or TopK
        Higher is better. Ranked lists (:class:`TopK`, e.g. from
        ``GalleryIndex.kneighbors``) give the same result for ``k`` up to
        their length.
    k : int, default=10
        Neighbourhood size, ``1 <= k <= n_gallery``.

    Returns
    -------
    robinhood : float
        Lower is better.

    References
    ----------
    R. Feldbauer, M. Leodolter, C. Plant, A. Flexer. Fast Approximate Hubness
    Reduction for Large High-Dimensional Data. IEEE ICBK 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import robinhood_index
    >>> S = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.1], [0.6, 0.2, 0.3]])
    >>> robinhood_index(S, k=1)   # N_1 = [3, 0, 0]: (2 + 1 + 1) / (2 * 3)
    0.666...
    """
    S, k = _check(scores, k)
    return _robinhood(_k_occurrence(S, k))


def antihub_rate(scores, k=10):
    """Fraction of gallery items that are in no query's top ``k`` (``N_k = 0``).

    This is scikit-hubness's *antihub occurrence*.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery) or TopK
        Higher is better. Ranked lists (:class:`TopK`, e.g. from
        ``GalleryIndex.kneighbors``) give the same result for ``k`` up to
        their length.
    k : int, default=10
        Neighbourhood size, ``1 <= k <= n_gallery``.

    Returns
    -------
    rate : float
        In ``[0, 1]``; lower is better.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import antihub_rate
    >>> S = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.1], [0.6, 0.2, 0.3]])
    >>> antihub_rate(S, k=1)   # N_1 = [3, 0, 0]
    0.666...
    """
    S, k = _check(scores, k)
    return _antihub_rate(_k_occurrence(S, k))


def hubness_report(scores, k=10):
    """All hubness statistics from one k-occurrence computation.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery) or TopK
        Higher is better. Ranked lists (:class:`TopK`, e.g. from
        ``GalleryIndex.kneighbors``) give the same result for ``k`` up to
        their length.
    k : int, default=10
        Neighbourhood size, ``1 <= k <= n_gallery``.

    Returns
    -------
    report : dict
        ``{"k": k, "hubness_skewness": ..., "robinhood_index": ...,
        "antihub_rate": ..., "max_occurrence": ..., "gini_index": ...,
        "hub_occurrence": ...}``, keyed by the names of the functions that
        compute each alone (:func:`hub_occurrence` with ``hub_size=2``);
        ``max_occurrence`` is the largest ``N_k`` (the biggest hub). The
        former keys ``"skewness"``, ``"robinhood"`` and ``"gini"`` still read,
        with a ``FutureWarning``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import hubness_report
    >>> S = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.1], [0.6, 0.2, 0.3]])
    >>> hubness_report(S, k=1)["max_occurrence"]
    3
    """
    from ._table import OLD_NAMES, Report

    S, k = _check(scores, k)
    n_k = _k_occurrence(S, k)
    return Report({
        "k": k,
        "hubness_skewness": _skewness(n_k),
        "robinhood_index": _robinhood(n_k),
        "antihub_rate": _antihub_rate(n_k),
        "max_occurrence": int(get_backend(n_k=n_k).max(n_k)),
        "gini_index": _gini(n_k),
        "hub_occurrence": _hub_occurrence(n_k, k, S.shape[0], 2.0),
    }, aliases=OLD_NAMES)


# ------------------------------------------ scikit-hubness's inequality measures
def _gini(n_k):
    # sum_ij |x_i - x_j| = 2 sum_i (2i - n - 1) x_(i) over the sorted x (1-based i):
    # O(n log n) instead of the n x n table of differences.
    x = _f64(n_k)
    nx = get_backend(n_k=x)
    x = nx.sort(x)
    n = x.shape[0]
    weights = 2.0 * _f64(nx.arange(n + 1, start=1, type_as=x)) - (n + 1)
    return float(nx.sum(weights * x) / (n * nx.sum(x)))


def _hub_occurrence(n_k, k, n_queries, hub_size):
    x = _f64(n_k)
    nx = get_backend(n_k=x)
    return float(nx.sum(nx.where(x >= hub_size * k, x, 0.0 * x)) / (k * n_queries))


def gini_index(scores, k=10):
    """Gini index of the k-occurrence (as scikit-hubness computes it).

    ``G = sum_i sum_j |N_k(i) - N_k(j)| / (2 n sum_i N_k(i))`` over the ``n``
    gallery items: half the mean absolute difference of ``N_k`` relative to
    its mean. 0 when every item is retrieved equally often; it approaches 1
    when a single hub takes every neighbour slot (``1 - 1/n`` exactly).
    Computed from the sorted ``N_k`` in ``O(n log n)``.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery) or TopK
        Higher is better. Ranked lists (:class:`TopK`, e.g. from
        ``GalleryIndex.kneighbors``) give the same result for ``k`` up to
        their length.
    k : int, default=10
        Neighbourhood size, ``1 <= k <= n_gallery``.

    Returns
    -------
    gini : float
        In ``[0, 1)``; lower is better.

    References
    ----------
    R. Feldbauer, M. Leodolter, C. Plant, A. Flexer. Fast Approximate Hubness
    Reduction for Large High-Dimensional Data. IEEE ICBK 2018; scikit-hubness
    (``skhubness.analysis.Hubness``, ``gini``).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import gini_index
    >>> S = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.1], [0.6, 0.2, 0.3]])
    >>> gini_index(S, k=1)   # N_1 = [3, 0, 0]: (4 * 3) / (2 * 3 * 3)
    0.666...
    >>> gini_index(np.eye(3), k=1)   # N_1 = [1, 1, 1]
    0.0
    """
    S, k = _check(scores, k)
    return _gini(_k_occurrence(S, k))


def hub_occurrence(scores, k=10, hub_size=2.0):
    """Share of all neighbour slots taken by hubs.

    Hubs are the gallery items with ``N_k >= hub_size · k``; the hub
    occurrence is ``sum_{hubs} N_k / (k · n_queries)``, the fraction of the
    ``k · n_queries`` top-``k`` slots that hubs fill. scikit-hubness and
    kiez divide by ``k · n_gallery`` instead (they assume the queries are
    the gallery items themselves): the two agree on square problems
    (``n_queries == n_gallery``) only; dividing by the number of slots keeps
    the value a share in ``[0, 1]`` when the sizes differ. Its counterpart, the
    share of items that are in no top-``k`` list (scikit-hubness's *antihub
    occurrence*), is :func:`antihub_rate`.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery) or TopK
        Higher is better. Ranked lists (:class:`TopK`, e.g. from
        ``GalleryIndex.kneighbors``) give the same result for ``k`` up to
        their length.
    k : int, default=10
        Neighbourhood size, ``1 <= k <= n_gallery``.
    hub_size : float, default=2.0
        Hub threshold as a multiple of ``k`` (scikit-hubness's default);
        positive and finite.

    Returns
    -------
    occurrence : float
        In ``[0, 1]``; lower is better.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import hub_occurrence
    >>> S = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.1], [0.6, 0.2, 0.3]])
    >>> hub_occurrence(S, k=1)   # N_1 = [3, 0, 0]: item 0 is a hub (3 >= 2)
    1.0
    >>> hub_occurrence(S, k=2)   # N_2 = [3, 1, 2]: no item reaches 4
    0.0
    """
    if (isinstance(hub_size, (bool, np.bool_)) or not isinstance(hub_size, (int, float, np.number))
            or not np.isfinite(hub_size) or hub_size <= 0):
        raise ValueError(f"hub_size must be a positive finite number, got {hub_size!r}.")
    S, k = _check(scores, k)
    return _hub_occurrence(_k_occurrence(S, k), k, S.shape[0], float(hub_size))
