"""Ranking metrics: ranks of relevant items, R@K, MdR, MnR.

Ranks are 1-based ranks of the best relevant item of each query. Ties count
against the query (pessimistic) unless ``ties="average"``. No row is sorted:
each row is compared once with its best relevant score.
"""

import numpy as np
import scipy.sparse as sp

from .._validation import check_matrix

TIES = ("pessimistic", "average")


def check_relevance(relevance, shape):
    """Relevance as a boolean CSR array of ``shape``.

    ``relevance`` may be a 1-D integer array (the one relevant gallery column
    of each query), a 2-D boolean array, or a scipy sparse matrix/array.
    Every query needs at least one relevant item.
    """
    n_q, n_g = shape
    if sp.issparse(relevance):
        R = sp.csr_array(relevance, dtype=bool)
    else:
        rel = np.asarray(relevance)
        if rel.ndim == 1:
            if not np.issubdtype(rel.dtype, np.integer):
                raise TypeError("relevance given as a 1-D array must hold integer column indices.")
            if rel.shape[0] != n_q:
                raise ValueError(
                    f"relevance has {rel.shape[0]} entries but scores has {n_q} rows."
                )
            if rel.size and (rel.min() < 0 or rel.max() >= n_g):
                raise ValueError(f"relevance indices must be in [0, {n_g - 1}].")
            R = sp.csr_array(
                (np.ones(n_q, dtype=bool), (np.arange(n_q), rel)), shape=(n_q, n_g)
            )
        elif rel.ndim == 2:
            R = sp.csr_array(rel.astype(bool))
        else:
            raise ValueError(f"relevance must be 1-D or 2-D, got {rel.ndim}-D.")
    if R.shape != (n_q, n_g):
        raise ValueError(f"relevance has shape {R.shape} but scores has shape {(n_q, n_g)}.")
    R.eliminate_zeros()
    R.sort_indices()
    empty = np.flatnonzero(np.diff(R.indptr) == 0)
    if empty.size:
        raise ValueError(
            f"relevance gives {empty.size} query(ies) no relevant item "
            f"(first: row {empty[0]}); their rank is undefined."
        )
    return R


def rank_of_relevant(scores, relevance, *, ties="pessimistic"):
    """1-based rank of the best-scored relevant gallery item of each query.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery)
        Higher is better.
    relevance : array-like or sparse matrix
        1-D integer array of the relevant column of each query, or a
        (n_queries, n_gallery) boolean (sparse) matrix.
    ties : {"pessimistic", "average"}, default="pessimistic"
        ``"pessimistic"``: every irrelevant item scored equal to the best
        relevant one is ranked before it. ``"average"``: the expected rank under
        random tie-breaking, ``n_greater + (t + 1) / (r + 1)`` with ``t`` tied
        items of which ``r`` are relevant.

    Returns
    -------
    ranks : ndarray of shape (n_queries,)
        float64 (integral values unless ``ties="average"``).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import rank_of_relevant
    >>> S = np.array([[0.9, 0.5, 0.5], [0.1, 0.2, 0.3]])
    >>> rank_of_relevant(S, np.array([1, 0]))
    array([3., 3.])
    >>> rank_of_relevant(S, np.array([1, 0]), ties="average")
    array([2.5, 3. ])
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}.")
    S = check_matrix(scores, "scores")
    R = check_relevance(relevance, S.shape)
    rows = np.repeat(np.arange(S.shape[0]), np.diff(R.indptr))
    vals = S[rows, R.indices]
    best = np.maximum.reduceat(vals, R.indptr[:-1])
    n_rel_at_best = np.add.reduceat((vals == best[rows]).astype(np.int64), R.indptr[:-1])
    n_ge = np.count_nonzero(S >= best[:, None], axis=1)
    if ties == "pessimistic":
        return (n_ge - n_rel_at_best + 1).astype(np.float64)
    n_gt = np.count_nonzero(S > best[:, None], axis=1)
    n_tied = n_ge - n_gt
    return n_gt + (n_tied + 1) / (n_rel_at_best + 1)


def recall_at_k(scores, relevance, k=1, *, ties="pessimistic"):
    """R@K: percentage of queries with a relevant item in the top ``k``.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery)
    relevance : array-like or sparse matrix
        See :func:`rank_of_relevant`.
    k : int, default=1
        Cut-off, ``1 <= k <= n_gallery``.
    ties : {"pessimistic", "average"}, default="pessimistic"

    Returns
    -------
    recall : float
        In percent, as the papers report it.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import recall_at_k
    >>> S = np.array([[0.9, 0.1], [0.8, 0.2]])
    >>> recall_at_k(S, np.array([0, 0]), k=1)
    100.0
    >>> recall_at_k(S, np.array([1, 1]), k=1)
    0.0
    """
    from .._validation import check_n_neighbors

    S = check_matrix(scores, "scores")
    k = check_n_neighbors(k, S.shape[1], "k")
    ranks = rank_of_relevant(S, relevance, ties=ties)
    return float(100.0 * np.mean(ranks <= k))
