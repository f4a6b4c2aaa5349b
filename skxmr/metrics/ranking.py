"""Ranking metrics: ranks of relevant items, R@K, MdR, MnR, R-Precision, mAP@R.

Conventions (DESIGN §5): rows of ``scores`` are queries, columns gallery
items, higher is better. Ranks are 1-based ranks of the best relevant item of
each query. Ties count against the query (``ties="pessimistic"``) unless
``ties="average"``, the expectation under uniformly random tie-breaking.

No function sorts whole rows. Ranks compare each row once with its best
relevant score; R-Precision and mAP@R select the top ``max(R)`` columns of a
chunk of rows with :func:`numpy.argpartition` and sort only those. Whole-matrix
scans run in memory-bounded row chunks through
:func:`skxmr._chunking.map_row_chunks` (chunk size follows
``sklearn.config_context(working_memory=...)``; a joblib backend such as dask
spreads them).
"""

import numbers

import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln
from sklearn import get_config

from .._chunking import map_row_chunks
from .._validation import check_matrix, check_n_neighbors

TIES = ("pessimistic", "average")
DIRECTIONS = ("q2g", "g2q")

# Chunk budget cap (MiB). The metrics are memory-bound passes over the score
# matrix; chunks of a few MiB keep each chunk's temporaries in cache and
# avoid fresh large allocations (page faults), see benchmarks/bench_metrics.py.
CHUNK_MIB = 16


def chunk_budget(bytes_per_row):
    """Row-chunk budget in MiB: sklearn's ``working_memory`` capped at
    ``CHUNK_MIB``, and never below one row (then one row per chunk)."""
    return max(min(get_config()["working_memory"], CHUNK_MIB), bytes_per_row / 2**20)


def count_rows(mask):
    """Number of True entries in each row of a 2-D boolean array.

    Packs the bits and pop-counts them (numpy >= 2), about twice as fast as
    ``np.count_nonzero(mask, axis=1)``, which widens every bool to an integer.
    """
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(np.packbits(mask, axis=1)).sum(axis=1, dtype=np.int64)
    return np.count_nonzero(mask, axis=1)


def _check_binary(values):
    """Relevance entries must be boolean or 0/1: NaN or 0.5 are not "relevant"."""
    values = np.asarray(values)
    if values.dtype == bool:
        return
    if not (np.issubdtype(values.dtype, np.number) and not np.iscomplexobj(values)):
        raise TypeError(
            f"relevance must hold booleans or 0/1, got dtype {values.dtype}."
        )
    bad = ~((values == 0) | (values == 1))
    if bad.any():
        raise ValueError(
            f"relevance must hold booleans or 0/1; {int(bad.sum())} entry(ies) are "
            f"neither (e.g. {values[bad].ravel()[0]!r}); NaN or graded relevance is not "
            "a relevant/irrelevant label."
        )


def check_relevance(relevance, shape):
    """Relevance as a boolean CSR array of ``shape``.

    ``relevance`` may be a 1-D integer array (the one relevant gallery column
    of each query), a 2-D boolean (or 0/1) array, or a scipy sparse
    matrix/array of booleans or 0/1; any other entry (NaN, -1, 0.5) raises
    ``ValueError``. Every query needs at least one relevant item.
    """
    n_q, n_g = shape
    if sp.issparse(relevance):
        _check_binary(relevance.data)
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
            _check_binary(rel)
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


def _check_ties(ties):
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}.")


def _rank_counts(S, R, ties):
    """Per query: items scored >= / > the best relevant one, relevant ties.

    Returns ``(n_ge, n_gt, r)`` on validated ``S`` and CSR ``R``; ``n_gt`` is
    None for pessimistic ties (not needed, one comparison pass saved).
    """
    counts = np.diff(R.indptr)
    rows = np.repeat(np.arange(S.shape[0]), counts)
    vals = S[rows, R.indices]
    best = np.maximum.reduceat(vals, R.indptr[:-1])
    n_rel_at_best = np.add.reduceat((vals == best[rows]).astype(np.int64), R.indptr[:-1])

    # The one pass over S: count, per row, the items scored at least as high
    # as the best relevant one (and strictly higher for average ties).
    def count(rows):
        b = best[rows, None]
        n_ge = count_rows(S[rows] >= b)
        if ties == "pessimistic":
            return n_ge, n_ge
        return n_ge, count_rows(S[rows] > b)

    per_row = 2 * S.shape[1] + 16
    parts = map_row_chunks(count, S.shape[0], per_row, working_memory=chunk_budget(per_row))
    n_ge = np.concatenate([p[0] for p in parts])
    n_gt = None if ties == "pessimistic" else np.concatenate([p[1] for p in parts])
    return n_ge, n_gt, n_rel_at_best


def _ranks_from(counts):
    n_ge, n_gt, r = counts
    if n_gt is None:
        return (n_ge - r + 1).astype(np.float64)
    return n_gt + (n_ge - n_gt + 1) / (r + 1)


def _hits_from(counts, k):
    """Per query, (the probability of) a relevant item in the top ``k``."""
    n_ge, n_gt, r = counts
    if n_gt is None:
        return (n_ge - r + 1 <= k).astype(np.float64)
    # ``t`` tied items (``r`` relevant) fill ranks n_gt + 1 .. n_gt + t in a
    # uniformly random order; the ``j = k - n_gt`` of them inside the top k
    # miss every relevant one with probability C(t - r, j) / C(t, j).
    t = n_ge - n_gt
    j = np.clip(k - n_gt, 0, t - r)  # clipped: valid gammaln arguments
    log_miss = gammaln(t - r + 1) - gammaln(t - r - j + 1) - gammaln(t + 1) + gammaln(t - j + 1)
    hit = 1.0 - np.exp(log_miss)
    hit[k - n_gt <= 0] = 0.0
    hit[k - n_gt > t - r] = 1.0
    return hit


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
    _check_ties(ties)
    S = check_matrix(scores, "scores")
    R = check_relevance(relevance, S.shape)
    return _ranks_from(_rank_counts(S, R, ties))


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
        ``"pessimistic"``: irrelevant items tied with the best relevant one
        rank before it. ``"average"``: the expected R@K under uniformly random
        tie-breaking (a query whose best relevant item is tied across the
        cut-off counts with the probability that a relevant item lands in
        the top ``k``).

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
    >>> recall_at_k(np.ones((1, 4)), np.array([0]), k=2, ties="average")
    50.0
    """
    _check_ties(ties)
    S = check_matrix(scores, "scores")
    k = check_n_neighbors(k, S.shape[1], "k")
    R = check_relevance(relevance, S.shape)
    return float(100.0 * np.mean(_hits_from(_rank_counts(S, R, ties), k)))


def median_rank(scores, relevance, *, ties="pessimistic"):
    """MdR: median over queries of the rank of the best relevant item.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery)
        Higher is better.
    relevance : array-like or sparse matrix
        See :func:`rank_of_relevant`.
    ties : {"pessimistic", "average"}, default="pessimistic"
        See :func:`rank_of_relevant`.

    Returns
    -------
    mdr : float
        In ``[1, n_gallery]``; lower is better. With an even number of
        queries, the mean of the two middle ranks (:func:`numpy.median`).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import median_rank
    >>> S = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.1, 0.9]])
    >>> median_rank(S, np.array([0, 0, 0]))   # ranks 1, 2, 3
    2.0
    """
    return float(np.median(rank_of_relevant(scores, relevance, ties=ties)))


def mean_rank(scores, relevance, *, ties="pessimistic"):
    """MnR: mean over queries of the rank of the best relevant item.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery)
        Higher is better.
    relevance : array-like or sparse matrix
        See :func:`rank_of_relevant`.
    ties : {"pessimistic", "average"}, default="pessimistic"
        See :func:`rank_of_relevant`.

    Returns
    -------
    mnr : float
        In ``[1, n_gallery]``; lower is better.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import mean_rank
    >>> S = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.1, 0.9]])
    >>> mean_rank(S, np.array([0, 0, 1]))     # ranks 1, 2, 2
    1.6666666666666667
    """
    return float(np.mean(rank_of_relevant(scores, relevance, ties=ties)))


def _precision_terms(S, Rd, n_rel, ties):
    """Per-query R-Precision and MAP@R (fractions) for a chunk of rows.

    ``S`` (n, n_g) scores, ``Rd`` (n, n_g) dense bool relevance, ``n_rel``
    (n,) the R of each row. Only the top ``K = max(R)`` columns of each row
    are selected (argpartition) and sorted. Within a run of equal scores
    ("tie group") what matters is, per position, the group's start ``a``
    (items strictly better), size ``t``, relevant count ``r`` and the number
    ``c`` of relevant items strictly better. Groups above the K-th largest
    score lie wholly inside the selection; the K-th score's group may spill
    over, so its ``t`` and ``r`` are counted on the full row.
    """
    n, n_g = S.shape
    K = int(n_rel.max())
    if K == 1:  # one relevant item per row: a single argmax pass
        idx = np.argmax(S, axis=1)[:, None]
    elif K < n_g:
        idx = np.argpartition(S, n_g - K, axis=1)[:, n_g - K :]
    if K < n_g:
        vals = np.take_along_axis(S, idx, axis=1)
        rels = np.take_along_axis(Rd, idx, axis=1)
    else:
        vals, rels = S, Rd
    order = np.lexsort((rels, -vals), axis=1)  # by score, irrelevant first
    vals = np.take_along_axis(vals, order, axis=1)
    rels = np.take_along_axis(rels, order, axis=1).astype(np.int64)

    pos = np.arange(K)
    starts = np.ones((n, K), dtype=bool)
    starts[:, 1:] = vals[:, 1:] != vals[:, :-1]
    a = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
    ends = np.ones((n, K), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    end = np.minimum.accumulate(np.where(ends, pos + 1, K)[:, ::-1], axis=1)[:, ::-1]
    cum = np.zeros((n, K + 1), dtype=np.int64)
    np.cumsum(rels, axis=1, out=cum[:, 1:])
    c = np.take_along_axis(cum, a, axis=1)
    t = end - a
    r = np.take_along_axis(cum, end, axis=1) - c
    if K < n_g:
        last = vals[:, -1:]
        spill = vals == last  # the K-th score's group
        eq = S == last
        t = np.where(spill, count_rows(eq)[:, None], t)
        r = np.where(spill, count_rows(eq & Rd)[:, None], r)

    i = pos + 1.0  # 1-based position
    j = i - a  # 1-based position inside the tie group
    if ties == "pessimistic":
        # irrelevant tied items first: position j of a group is relevant iff
        # j > t - r, and then c + j - (t - r) relevant items are at or above it
        rel_i = j > t - r
        hits = np.where(rel_i, c + j - (t - r), 0)
        prec_rel = hits / i
    else:
        # expectation over uniformly random orders of each tie group:
        # E[rel_j] = r/t and E[rel_j * #rel in top i]
        #   = c r/t + r/t + (j - 1) r (r - 1) / (t (t - 1))
        rel_i = r / t
        pair_term = np.where(t > 1, r * (r - 1) / np.maximum(t * (t - 1), 1), 0.0)
        prec_rel = (rel_i * (c + 1) + (j - 1) * pair_term) / i
    inside = pos < n_rel[:, None]
    rp = np.sum(rel_i * inside, axis=1) / n_rel
    ap = np.sum(prec_rel * inside, axis=1) / n_rel
    return rp, ap


def _precision_at_r(S, R, ties):
    """Mean R-Precision and MAP@R (in percent) on validated inputs."""
    n_rel = np.diff(R.indptr)
    n_g = S.shape[1]

    def chunk(rows):
        return _precision_terms(S[rows], R[rows].toarray(), n_rel[rows], ties)

    # per row: argpartition indices, dense relevance, two boolean masks and
    # the O(K) sorted-selection arrays; bounded by ~6 float64 rows of n_g
    per_row = 48 * n_g
    parts = map_row_chunks(chunk, S.shape[0], per_row, working_memory=chunk_budget(per_row))
    rp = np.concatenate([p[0] for p in parts])
    ap = np.concatenate([p[1] for p in parts])
    return float(100.0 * rp.mean()), float(100.0 * ap.mean())


def r_precision(scores, relevance, *, ties="pessimistic"):
    """R-Precision (Musgrave et al., 2020), in percent.

    For a query with ``R`` relevant gallery items, R-Precision is the fraction
    of relevant items among its top ``R``; the result is the mean over
    queries, times 100.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery)
        Higher is better.
    relevance : array-like or sparse matrix
        See :func:`rank_of_relevant`; ``R`` is the number of relevant items of
        each row.
    ties : {"pessimistic", "average"}, default="pessimistic"
        ``"pessimistic"``: among equal scores irrelevant items are ranked
        first (a deterministic rule, the worst case, consistent with
        :func:`rank_of_relevant`). ``"average"``: the exact expectation under
        uniformly random tie-breaking.

    Returns
    -------
    r_precision : float
        In ``[0, 100]``; 100 for a ranking that puts all relevant items first.

    References
    ----------
    K. Musgrave, S. Belongie, S.-N. Lim. A Metric Learning Reality Check.
    ECCV 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import r_precision
    >>> S = np.array([[0.9, 0.8, 0.7, 0.1]])
    >>> r_precision(S, np.array([[True, False, True, False]]))  # 1 of top 2
    50.0
    """
    _check_ties(ties)
    S = check_matrix(scores, "scores")
    R = check_relevance(relevance, S.shape)
    return _precision_at_r(S, R, ties)[0]


def map_at_r(scores, relevance, *, ties="pessimistic"):
    """MAP@R (Musgrave et al., 2020), in percent.

    For a query with ``R`` relevant items, ``MAP@R = (1/R) sum_{i<=R} P(i)
    rel(i)`` where ``rel(i)`` is 1 if the item at rank ``i`` is relevant and
    ``P(i)`` is the precision of the top ``i``. Unlike AP, only the top ``R``
    positions count and the division is always by ``R``. The result is the mean
    over queries, times 100.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery)
        Higher is better.
    relevance : array-like or sparse matrix
        See :func:`rank_of_relevant`.
    ties : {"pessimistic", "average"}, default="pessimistic"
        See :func:`r_precision`.

    Returns
    -------
    map_at_r : float
        In ``[0, 100]``; 100 for a ranking that puts all relevant items first.

    References
    ----------
    K. Musgrave, S. Belongie, S.-N. Lim. A Metric Learning Reality Check.
    ECCV 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import map_at_r
    >>> S = np.array([[0.9, 0.8, 0.7, 0.1]])
    >>> map_at_r(S, np.array([[True, False, True, False]]))  # (1/1 + 0) / 2
    50.0
    """
    _check_ties(ties)
    S = check_matrix(scores, "scores")
    R = check_relevance(relevance, S.shape)
    return _precision_at_r(S, R, ties)[1]


def _check_ks(ks):
    ks = np.atleast_1d(np.asarray(ks, dtype=object))
    if ks.ndim != 1 or ks.size == 0 or not all(
        isinstance(k, numbers.Integral) and not isinstance(k, (bool, np.bool_)) and k >= 1
        for k in ks
    ):
        raise ValueError(f"ks must be a non-empty sequence of positive integers, got {ks!r}.")
    return sorted({int(k) for k in ks})


def _report(S, R, ks, ties):
    counts = _rank_counts(S, R, ties)
    ranks = _ranks_from(counts)
    report = {
        f"R@{k}": float(100.0 * np.mean(_hits_from(counts, k))) for k in ks if k <= S.shape[1]
    }
    report["MdR"] = float(np.median(ranks))
    report["MnR"] = float(np.mean(ranks))
    report["R-Precision"], report["mAP@R"] = _precision_at_r(S, R, ties)
    return report


def retrieval_report(
    scores, relevance, *, ks=(1, 5, 10), ties="pessimistic", directions=("q2g", "g2q")
):
    """R@K, MdR, MnR, R-Precision and mAP@R in one or both directions.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery)
        Higher is better.
    relevance : array-like or sparse matrix
        See :func:`rank_of_relevant`. For ``"g2q"`` every gallery item needs
        at least one relevant query.
    ks : sequence of int, default=(1, 5, 10)
        Cut-offs of R@K. A cut-off larger than the number of ranked items in a
        direction is skipped (its key is absent) rather than reported as a
        trivial 100.
    ties : {"pessimistic", "average"}, default="pessimistic"
        Applies to every metric (see :func:`rank_of_relevant` and
        :func:`r_precision`).
    directions : sequence of {"q2g", "g2q"}, default=("q2g", "g2q")
        ``"q2g"`` ranks the columns for each row of ``scores``; ``"g2q"`` ranks
        the rows for each column (the transposed problem, e.g. image-to-text
        on a text-to-image matrix). Note that a normaliser fitted for one
        direction rescales for that direction only.

    Returns
    -------
    report : dict
        ``{direction: {"R@1": ..., ..., "MdR": ..., "MnR": ...,
        "R-Precision": ..., "mAP@R": ...}}``; recalls and precisions in percent.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import retrieval_report
    >>> S = np.array([[0.9, 0.2, 0.1], [0.3, 0.1, 0.8], [0.2, 0.7, 0.4]])
    >>> rep = retrieval_report(S, np.arange(3), ks=(1, 2))
    >>> rep["q2g"]["R@1"], rep["q2g"]["R@2"], rep["q2g"]["MdR"]
    (33.33..., 66.66..., 2.0)
    >>> rep["g2q"]["R@1"], rep["g2q"]["mAP@R"]
    (33.33..., 33.33...)
    """
    _check_ties(ties)
    ks = _check_ks(ks)
    directions = tuple(directions) if not isinstance(directions, str) else (directions,)
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad or not directions:
        raise ValueError(f"directions must be a non-empty subset of {DIRECTIONS}, got {directions!r}.")
    S = check_matrix(scores, "scores")
    R = check_relevance(relevance, S.shape)
    out = {}
    for direction in directions:
        if direction == "q2g":
            out[direction] = _report(S, R, ks, ties)
            continue
        try:
            RT = check_relevance(R.T, S.T.shape)
        except ValueError as exc:
            raise ValueError(
                f"relevance: direction 'g2q' ranks queries for each gallery item, "
                f"so every gallery item needs a relevant query ({exc})"
            ) from None
        out[direction] = _report(np.ascontiguousarray(S.T), RT, ks, ties)
    return out
