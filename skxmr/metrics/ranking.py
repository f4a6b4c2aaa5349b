"""Ranking metrics: ranks of relevant items, R@K, MdR, MnR, R-Precision, mAP@R.

Conventions: rows of ``scores`` are queries, columns gallery items, higher
is better; every score is finite and every query has at least one relevant
item (``ValueError`` otherwise). Ranks are 1-based ranks of the best relevant item of
each query. Ties count against the query (``ties="pessimistic"``) unless
``ties="average"``, the expectation under uniformly random tie-breaking.

No function sorts whole rows. Ranks compare each row once with its best
relevant score; a query with one relevant item gets its R-Precision and
MAP@R from the same counts; for the others the top ``max(R)`` columns of a
chunk of rows are selected (:func:`numpy.argpartition`) and only those are
sorted. :func:`retrieval_report` computes both directions in one pass over
row blocks of ``S`` -- the g2q counts are column sums -- never a transposed
copy. Whole-matrix scans run in memory-bounded row chunks
(:mod:`skxmr.utils._chunking`; chunk size follows
``sklearn.config_context(working_memory=...)``; a joblib backend such as dask
spreads them).

Arrays and devices: without array API dispatch everything is numpy (the
specialised path above). Under ``sklearn.config_context(array_api_dispatch=True)``
(``SCIPY_ARRAY_API=1``) torch scores stay torch on their device and the
arithmetic goes through POT's backend (``nx.sum``, ``nx.sort``,
``nx.searchsorted``, ``nx.take_along_axis``...). Per-query arrays (ranks)
come back float64 on that device, as the numpy path returns float64; scalar
metrics are Python floats. The relevance is structure, not scores: it is
validated on the host as CSR (a relevance tensor is copied there once) and
moved to the device once per call as two int64 index arrays.
"""

import math
import numbers
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn import get_config

from .._pairs import DIRECTIONS
from ..utils._backend import astype, get_backend
from ..utils._chunking import map_row_chunks, reduce_row_chunks
from ..utils._topk import row_candidates
from ..utils._validation import check_matrix, check_n_neighbors
from ._lists import TopK, check_list_cutoff, list_relevance

TIES = ("pessimistic", "average")

# Chunk budget cap (MiB). The metrics are memory-bound passes over the score
# matrix; chunks of a few MiB keep each chunk's temporaries in cache and
# avoid fresh large allocations (page faults), see benchmarks/bench_metrics.py.
CHUNK_MIB = 16
# Block of S (MiB) the fused counting pass compares in cache for both
# directions before moving on (benchmarks/bench_metrics.py).
SCAN_MIB = 2


def chunk_budget(bytes_per_row, cap=CHUNK_MIB):
    """Row-chunk budget in MiB: sklearn's ``working_memory`` capped at
    ``cap``, and never below one row (then one row per chunk)."""
    return max(min(get_config()["working_memory"], cap), bytes_per_row / 2**20)


def count_rows(mask):
    """Number of True entries in each row of a 2-D boolean array.

    Packs the bits and pop-counts them (numpy >= 2), about twice as fast as
    ``np.count_nonzero(mask, axis=1)``, which widens every bool to an integer.
    """
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(np.packbits(mask, axis=1)).sum(axis=1, dtype=np.int64)
    return np.count_nonzero(mask, axis=1)


def count_cols(mask):
    """Number of True entries in each column of a 2-D boolean array.

    Sums the bytes of up to 255 rows at a time in uint8 (no overflow, no
    widening of every bool to int64 as ``mask.sum(axis=0)`` does), about
    twice as fast.
    """
    out = np.zeros(mask.shape[1], dtype=np.int64)
    u = mask.view(np.uint8)
    for i in range(0, mask.shape[0], 255):
        out += u[i : i + 255].sum(axis=0, dtype=np.uint8)
    return out


def _host_relevance(relevance):
    """Relevance is structure, not scores: a tensor given under array API
    dispatch is copied to the host once (it is validated there, as CSR)."""
    if sp.issparse(relevance) or isinstance(relevance, np.ndarray) or not hasattr(relevance, "shape"):
        return relevance
    try:
        nx = get_backend(relevance=relevance)
    except (ValueError, TypeError):
        return relevance
    return nx.to_numpy(relevance)


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
    ``ValueError``. Under array API dispatch a 1-D/2-D tensor is copied to
    the host. Every query needs at least one relevant item.
    """
    n_q, n_g = shape
    relevance = _host_relevance(relevance)
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


class Terms(NamedTuple):
    """Per-query terms of one direction, on the backend of the scores.

    ``n_ge`` / ``n_gt``: items scored >= / > the best relevant one (``n_gt``
    is None for pessimistic ties: not needed, one comparison saved); ``r``:
    relevant items tied at that best score; ``rp`` / ``ap``: R-Precision and
    MAP@R fractions (None unless asked for).
    """

    n_ge: object
    n_gt: object
    r: object
    rp: object = None
    ap: object = None


def _f64(a):
    """``a`` as float64 on its own backend and device."""
    return astype(a, "float64")


def _single_precision(n_ge, n_gt):
    """R-Precision = MAP@R of queries with exactly one relevant item.

    With ``R = 1`` both are "is the item at rank 1 relevant": pessimistic,
    iff nothing else scores >= it (``n_ge == 1``); average, with probability
    ``1 / t`` when nothing scores higher (``n_gt == 0``) and ``t`` items tie.
    So they come from the rank counts, without another pass over the row.
    """
    if n_gt is None:
        return _f64(n_ge == 1)
    t = _f64(n_ge - n_gt)
    return _f64(n_gt == 0) / t  # t >= 1: the best relevant item ties with itself


# ------------------------------------------------------------- numpy path


def _best_relevant(S, R, transposed):
    """Best relevant score of each query and how many relevant items hold it.

    ``R`` is the CSR relevance of the direction: queries are the rows of
    ``S`` or, ``transposed``, its columns (gathered in place, no copy of S).
    """
    counts = np.diff(R.indptr)
    queries = np.repeat(np.arange(R.shape[0]), counts)
    vals = S[R.indices, queries] if transposed else S[queries, R.indices]
    best = np.maximum.reduceat(vals, R.indptr[:-1])
    r = np.add.reduceat((vals == best[queries]).astype(np.int64), R.indptr[:-1])
    return best, r


def _count_pass(S, best_rows, best_cols, average):
    """One pass over row blocks of ``S`` counting, for each row (q2g) and/or
    each column (g2q), the items scored >= (and >) its best relevant score.

    Blocks of ``SCAN_MIB`` stay in cache while every comparison of both
    directions is made, so the matrix is read from memory once; the g2q
    counts are column sums accumulated block by block (no transposed copy).
    """
    n_q, n_g = S.shape
    per_row = n_g * (S.itemsize + 1)
    budget = chunk_budget(per_row, cap=SCAN_MIB)
    runs = reduce_row_chunks(_count_chunks, n_q, per_row, _combine_counts,
                             args=(S, best_rows, best_cols, average), working_memory=budget)
    acc = runs[0]
    for run in runs[1:]:
        acc = _combine_counts(acc, run)
    rows = [None if x is None else np.concatenate(x) for x in acc[:2]]
    return rows[0], rows[1], acc[2], acc[3]


def _count_chunks(chunk_rows, S, best_rows, best_cols, average):
    """A worker's :func:`_count_pass` over its row blocks: one boolean mask
    reused by every block."""
    mask = np.empty((chunk_rows, S.shape[1]), dtype=bool)

    def func(rows):
        Sb = S[rows, ...]
        m = mask[: Sb.shape[0]]
        out = [None, None, None, None]
        if best_rows is not None:
            b = best_rows[rows, None]
            out[0] = [count_rows(np.greater_equal(Sb, b, out=m))]
            if average:
                out[1] = [count_rows(np.greater(Sb, b, out=m))]
        if best_cols is not None:
            out[2] = count_cols(np.greater_equal(Sb, best_cols, out=m))
            if average:
                out[3] = count_cols(np.greater(Sb, best_cols, out=m))
        return out

    return func


def _combine_counts(acc, new):
    """Row counts (lists) concatenated, column counts summed."""
    return [None if x is None else x + y for x, y in zip(acc, new)]


def _precision_terms(S, Rd, n_rel, ties):
    """Per-query R-Precision and MAP@R (fractions) for a chunk of rows (numpy).

    ``S`` (n, n_g) scores, ``Rd`` (n, n_g) dense bool relevance, ``n_rel``
    (n,) the R of each row. Only the top ``K = max(R)`` columns of each row
    are selected (argpartition) and sorted. Within a run of equal scores
    ("tie group") what matters is, per position, the group's start ``a``
    (items strictly better), size ``t``, relevant count ``r`` and the number
    ``c`` of relevant items strictly better. Groups above the K-th largest
    score lie wholly inside the selection; the K-th score's group may spill
    over, so its ``t`` and ``r`` are counted on the full row.
    """
    K = int(n_rel.max())
    found = row_candidates(S, K) if 1 < K < S.shape[1] else None
    if found is not None:
        # Every entry >= the K-th largest of a row is among its candidates,
        # so the selection and the spill counts below can run on them alone.
        S, C = found
        Rd = np.take_along_axis(np.pad(Rd, ((0, 0), (0, 1))), C, axis=1)  # pad: False
    n, n_g = S.shape
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
    return _precision_from_groups(np, pos, a, t, r, c, n_rel, ties)


def _precision_from_groups(nx, pos, a, t, r, c, n_rel, ties):
    """R-Precision and MAP@R fractions from each sorted position's tie group.

    ``pos`` the 0-based positions (K,), ``a`` items strictly better, ``t``
    the group's size, ``r`` its relevant items, ``c`` relevant items
    strictly better (all (n, K), float64), ``n_rel`` (n,) float64.
    """
    i = pos + 1.0  # 1-based position
    j = i - a  # 1-based position inside the tie group
    if ties == "pessimistic":
        # irrelevant tied items first: position j of a group is relevant iff
        # j > t - r, and then c + j - (t - r) relevant items are at or above it
        rel = j > t - r
        rel_i = _f64(rel)
        prec_rel = nx.where(rel, c + j - (t - r), 0.0 * j) / i
    else:
        # expectation over uniformly random orders of each tie group:
        # E[rel_j] = r/t and E[rel_j * #rel in top i]
        #   = c r/t + r/t + (j - 1) r (r - 1) / (t (t - 1))
        rel_i = r / t
        pair_term = nx.where(t > 1, r * (r - 1) / nx.maximum(t * (t - 1), 1.0), 0.0 * t)
        prec_rel = (rel_i * (c + 1) + (j - 1) * pair_term) / i
    inside = pos[None, :] < n_rel[:, None]
    rp = nx.sum(nx.where(inside, rel_i, 0.0 * rel_i), axis=1) / n_rel
    ap = nx.sum(nx.where(inside, prec_rel, 0.0 * prec_rel), axis=1) / n_rel
    return rp, ap


def _multi_precision(S, R, rp, ap, ties, transposed):
    """Fill ``rp``/``ap`` of the queries with several relevant items (numpy).

    Only those queries' rows (q2g) or columns (g2q, copied a chunk at a
    time) are selected from; single-item queries came from the counts.
    """
    n_rel = np.diff(R.indptr)
    multi = np.flatnonzero(n_rel > 1)
    if not multi.size:
        return
    n_items = S.shape[0] if transposed else S.shape[1]
    # per query: its scores, argpartition indices, dense relevance, two
    # boolean masks and the O(K) sorted-selection arrays (~6 float64 rows)
    per_row = 48 * n_items
    parts = map_row_chunks(_multi_precision_chunk, multi.size, per_row,
                           args=(S, R, multi, n_rel, ties, transposed),
                           working_memory=chunk_budget(per_row))
    rp[multi] = np.concatenate([p[0] for p in parts])
    ap[multi] = np.concatenate([p[1] for p in parts])


def _multi_precision_chunk(part, S, R, multi, n_rel, ties, transposed):
    idx = multi[part]
    if idx[-1] - idx[0] + 1 == idx.size:  # a run of queries: a view, not a gather
        idx = slice(int(idx[0]), int(idx[-1]) + 1)
    Sm = np.ascontiguousarray(S[:, idx].T) if transposed else S[idx]
    return _precision_terms(Sm, R[idx].toarray(), n_rel[idx], ties)


def _terms_numpy(S, Rs, ties, precision):
    """:class:`Terms` of each direction in ``Rs`` (direction -> CSR) on numpy:
    one fused counting pass over S for both directions."""
    best = {d: _best_relevant(S, R, d == "g2q") for d, R in Rs.items()}
    n_ge_q, n_gt_q, n_ge_g, n_gt_g = _count_pass(
        S, best.get("q2g", (None,))[0], best.get("g2q", (None,))[0], ties == "average"
    )
    counts = {"q2g": (n_ge_q, n_gt_q), "g2q": (n_ge_g, n_gt_g)}
    out = {}
    for d, R in Rs.items():
        n_ge, n_gt = counts[d]
        rp = ap = None
        if precision:
            rp = _single_precision(n_ge, n_gt)
            ap = rp.copy()
            _multi_precision(S, R, rp, ap, ties, d == "g2q")
        out[d] = Terms(n_ge, n_gt, best[d][1], rp, ap)
    return out


# ----------------------------------------------------------- generic path


def _precision_terms_generic(nx, S, Rd, n_rel, K, ties):
    """:func:`_precision_terms` on POT's backend ``nx`` (any array library).

    The top ``K`` of each row are selected (the backend's ``row_top``)
    and sorted; instead of walking tie groups with cumulative maxima (which
    POT's backend lacks) each position's group is counted with
    ``nx.searchsorted`` in the sorted values: ``a`` = selected values
    > v, ``a + t`` = values >= v, and the same on the relevant values for
    ``c`` and ``r``. Only these counts matter, not the order inside a group.
    """
    n, n_g = S.shape
    vals, idx = nx.row_top(S, K)
    rels = nx.take_along_axis(Rd, idx, 1)
    asc = nx.sort(vals, axis=1)
    desc = nx.flip(asc, axis=1)
    rel_asc = nx.sort(nx.where(rels, vals, -math.inf), axis=1)

    def above(sorted_asc, side):  # entries > v (side="right") or >= v ("left")
        return K - nx.searchsorted(sorted_asc, desc, side=side)

    a = above(asc, "right")
    t = above(asc, "left") - a
    c = above(rel_asc, "right")
    r = above(rel_asc, "left") - c
    if K < n_g:
        last = asc[:, :1]  # the K-th largest: its group may spill over
        spill = desc == last
        eq = S == last
        t = nx.where(spill, nx.sum(eq, axis=1)[:, None], t)
        r = nx.where(spill, nx.sum(eq & Rd, axis=1)[:, None], r)
    pos = _f64(nx.arange(K, type_as=S))
    a, t, r, c = (_f64(x) for x in (a, t, r, c))
    return _precision_from_groups(nx, pos, a, t, r, c, _f64(n_rel), ties)


def _terms_generic(S, R, ties, precision):
    """:class:`Terms` of the rows of ``S`` (a transposed view for g2q) on
    any backend, through POT's backend object.

    The relevance structure (host CSR) goes to the device of ``S`` once, as
    two int64 index arrays; each row chunk scatters it into a dense boolean
    block there. Nothing else leaves or enters the device.
    """
    nx = get_backend(scores=S)
    n, m = S.shape
    n_rel = np.diff(R.indptr)
    like = nx.arange(1, type_as=S)  # int64 on the device of S
    rows_d = nx.from_numpy(np.repeat(np.arange(n), n_rel), type_as=like)
    cols_d = nx.from_numpy(R.indices.astype(np.int64), type_as=like)
    n_rel_d = nx.from_numpy(n_rel.astype(np.int64), type_as=like)

    # per row: the scores' block, its dense relevance and comparison masks
    per_row = 6 * 8 * m
    parts = map_row_chunks(_generic_chunk, n, per_row,
                           args=(S, R, rows_d, cols_d, n_rel_d, ties, precision),
                           working_memory=chunk_budget(per_row))
    cat = [None if parts[0][i] is None else nx.concatenate([p[i] for p in parts]) for i in range(5)]
    return Terms(cat[0], cat[1], cat[2], cat[3], cat[4])


def _generic_chunk(sl, S, R, rows_d, cols_d, n_rel_d, ties, precision):
    """:func:`_terms_generic` on the rows ``sl`` (a chunk task)."""
    nx = get_backend(scores=S)
    m = S.shape[1]
    average = ties == "average"
    n_rel = np.diff(R.indptr)
    a, b = sl.start, sl.stop
    lo, hi = int(R.indptr[a]), int(R.indptr[b])
    Sb = S[a:b, ...]
    Rd = nx.zeros((b - a, m), type_as=S) != 0
    Rd = nx.scatter(Rd, (rows_d[lo:hi] - a, cols_d[lo:hi]), True)
    best = nx.max(nx.where(Rd, Sb, -math.inf), axis=1)[:, None]
    r = nx.sum(Rd & (Sb == best), axis=1)
    n_ge = nx.sum(Sb >= best, axis=1)
    n_gt = nx.sum(Sb > best, axis=1) if average else None
    if not precision:
        return n_ge, n_gt, r, None, None
    rp = _single_precision(n_ge, n_gt)
    ap = rp * 1.0
    multi = np.flatnonzero(n_rel[a:b] > 1)
    if multi.size:
        md = nx.from_numpy(multi.astype(np.int64), type_as=n_rel_d)
        K = int(n_rel[a:b][multi].max())
        rp_m, ap_m = _precision_terms_generic(
            nx, nx.take_rows(Sb, md), nx.take_rows(Rd, md),
            nx.take_rows(n_rel_d[a:b], md), K, ties)
        rp, ap = nx.scatter(rp, md, rp_m), nx.scatter(ap, md, ap_m)
    return n_ge, n_gt, r, rp, ap


def _terms(S, Rs, ties, precision=False):
    """:class:`Terms` per direction (``Rs``: direction -> its CSR relevance).

    numpy scores take the specialised path (one fused pass over S for both
    directions, packed-bit counts, argpartition); other backends the generic
    one on POT's backend (``S.T`` is a view there, never a copy).
    """
    if isinstance(S, np.ndarray):
        return _terms_numpy(S, Rs, ties, precision)
    return {d: _terms_generic(S if d == "q2g" else S.T, R, ties, precision) for d, R in Rs.items()}


def _ranks_from(terms):
    n_ge, n_gt, r = _f64(terms.n_ge), terms.n_gt, _f64(terms.r)
    if n_gt is None:
        return n_ge - r + 1
    n_gt = _f64(n_gt)
    return n_gt + (n_ge - n_gt + 1) / (r + 1)


def _hits_from(terms, k):
    """Per query, (the probability of) a relevant item in the top ``k``."""
    n_ge, r = _f64(terms.n_ge), _f64(terms.r)
    if terms.n_gt is None:
        return _f64(n_ge - r + 1 <= k)
    nx = get_backend(counts=n_ge)
    n_gt = _f64(terms.n_gt)
    # ``t`` tied items (``r`` relevant) fill ranks n_gt + 1 .. n_gt + t in a
    # uniformly random order; the ``j = k - n_gt`` of them inside the top k
    # miss every relevant one with probability C(t - r, j) / C(t, j).
    t = n_ge - n_gt
    j = nx.minimum(nx.maximum(k - n_gt, 0.0 * t), t - r)  # clipped: valid gammaln arguments
    def gammaln(a):
        return nx.special("gammaln", a)

    log_miss = gammaln(t - r + 1) - gammaln(t - r - j + 1) - gammaln(t + 1) + gammaln(t - j + 1)
    hit = 1.0 - nx.exp(log_miss)
    hit = nx.where(k - n_gt <= 0, 0.0 * hit, hit)
    return nx.where(k - n_gt > t - r, 0.0 * hit + 1.0, hit)


def _mean(x):
    return float(get_backend(values=x).mean(x))


def _percent(x):
    """``100 · mean(x)`` as ``100 · sum / n``: one rounding, so 88 hits of
    125 queries give 70.4, not 100 · 0.704 = 70.39999999999999."""
    return float(100.0 * get_backend(values=x).sum(x)) / x.shape[0]


def _median(x):
    """np.median's value (mean of the two middle ones) on any backend."""
    nx = get_backend(values=x)
    s = nx.sort(x)
    n = s.shape[0]
    return float((s[(n - 1) // 2] + s[n // 2]) / 2)


def rank_of_relevant(scores, relevance, *, ties="pessimistic"):
    """1-based rank of the best-scored relevant gallery item of each query.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery)
        Higher is better. Finite: NaN or an infinite score (which has no
        rank among equal infinities) raises ``ValueError``.
    relevance : array-like or sparse matrix
        1-D integer array of the relevant column of each query, or a
        (n_queries, n_gallery) boolean (sparse) matrix. Every query needs
        at least one relevant item (its rank is undefined otherwise):
        ``ValueError`` names the first row without one.
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
    return _ranks_from(_terms(S, {"q2g": R}, ties)["q2g"])


def recall_at_k(scores, relevance, k=1, *, ties="pessimistic"):
    """R@K: percentage of queries with a relevant item in the top ``k``.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery) or TopK
        Ranked lists (:class:`TopK`, e.g. from ``GalleryIndex.kneighbors``)
        give the dense result for ``k`` up to their length.
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
    if isinstance(scores, TopK):
        k = check_list_cutoff(scores, k)
        R = check_relevance(relevance, scores.shape)
        return 100.0 * _mean(_list_hits(scores, R, k, ties))
    S = check_matrix(scores, "scores")
    k = check_n_neighbors(k, S.shape[1], "k")
    R = check_relevance(relevance, S.shape)
    return _percent(_hits_from(_terms(S, {"q2g": R}, ties)["q2g"], k))


def _list_hits(lists, R, k, ties):
    """Per query, (the probability of) a relevant item in the top ``k`` of
    ranked lists: the counts of :class:`Terms` taken within the list (items
    beyond it are taken to score below its last one); a query with no
    relevant item listed is a miss."""
    rel = list_relevance(lists, R)
    s = lists.scores
    best = s[np.arange(s.shape[0]), np.argmax(rel, axis=1)][:, None]
    terms = Terms(np.sum(s >= best, axis=1), np.sum(s > best, axis=1) if ties == "average" else None,
                  np.sum(rel & (s == best), axis=1))
    return np.where(rel.any(axis=1), _hits_from(terms, k), 0.0)


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
    return _median(rank_of_relevant(scores, relevance, ties=ties))


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
    return _mean(rank_of_relevant(scores, relevance, ties=ties))


def _precision_at_r(S, R, ties):
    """Mean R-Precision and MAP@R (in percent) on validated inputs."""
    terms = _terms(S, {"q2g": R}, ties, precision=True)["q2g"]
    return 100.0 * _mean(terms.rp), 100.0 * _mean(terms.ap)


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


def _report(terms, ks, n_items):
    """One direction's report, keyed by the metric table's headers."""
    from ._table import METRICS, OLD_NAMES, Report

    ranks = _ranks_from(terms)
    report = {METRICS["recall"].label(k): _percent(_hits_from(terms, k))
              for k in ks if k <= n_items}
    report[METRICS["median_rank"].header] = _median(ranks)
    report[METRICS["mean_rank"].header] = _mean(ranks)
    report[METRICS["r_precision"].header] = 100.0 * _mean(terms.rp)
    report[METRICS["map_at_r"].header] = 100.0 * _mean(terms.ap)
    return Report(report, aliases=OLD_NAMES)


def _streamed_terms(blocks, relevance, ties):
    """q2g :class:`Terms` of consecutive row blocks of the scores (one
    block held at a time) and the number of gallery items."""
    parts, R, start = [], None, 0
    for block in blocks:
        S = check_matrix(block, "each block of scores")
        if R is None:
            n_q = relevance.shape[0] if hasattr(relevance, "shape") else len(relevance)
            R = check_relevance(relevance, (n_q, S.shape[1]))
        stop = start + S.shape[0]
        if stop > R.shape[0] or S.shape[1] != R.shape[1]:
            raise ValueError(
                f"the blocks of scores must cover the {R.shape[0]} queries of relevance "
                f"with {R.shape[1]} columns; a block of shape {S.shape} at row {start} does not."
            )
        parts.append(_terms(S, {"q2g": R[start:stop]}, ties, precision=True)["q2g"])
        start = stop
    if R is None or start != R.shape[0]:
        raise ValueError(
            f"the blocks of scores cover {start} queries, relevance has "
            f"{0 if R is None else R.shape[0]}."
        )
    cat = [None if x is None else get_backend(x=x).concatenate(list(xs))
           for x, xs in zip(parts[0], zip(*parts))]
    return Terms(*cat), R.shape[1]


def retrieval_report(
    scores, relevance, *, ks=(1, 5, 10), ties="pessimistic", directions=("q2g", "g2q")
):
    """R@K, MdR, MnR, R-Precision and mAP@R in one or both directions.

    Parameters
    ----------
    scores : array-like of shape (n_queries, n_gallery), TopK or iterator
        Higher is better. An iterator (e.g. a generator) of consecutive row
        blocks streams: one block is held at a time, the result equals the
        whole matrix's (``directions="q2g"``). Ranked lists
        (:class:`TopK`) give R@K for the cut-offs up to their length
        (``directions="q2g"``; the other metrics need whole rows).
    relevance : array-like or sparse matrix
        See :func:`rank_of_relevant`: every query needs a relevant item, and
        for ``"g2q"`` every gallery item a relevant query (``ValueError``
        names the first column without one; ``directions=("q2g",)`` ranks
        one way only).
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
        ``{direction: {"R@1": ..., ..., "MdR": ..., "MnR": ..., "R-P": ...,
        "mAP@R": ...}}``, keyed by the headers of the metric table (as the
        benchmark's columns); recalls and precisions in percent. The former
        key ``"R-Precision"`` still reads, with a ``FutureWarning``.

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
    >>> blocks = (S[i:i + 2] for i in range(0, 3, 2))   # never the whole matrix
    >>> retrieval_report(blocks, np.arange(3), ks=(1, 2), directions="q2g") == {
    ...     "q2g": rep["q2g"]}
    True
    """
    _check_ties(ties)
    ks = _check_ks(ks)
    directions = tuple(directions) if not isinstance(directions, str) else (directions,)
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad or not directions:
        raise ValueError(f"directions must be a non-empty subset of {DIRECTIONS}, got {directions!r}.")
    if isinstance(scores, (TopK, Iterator)):
        if directions != ("q2g",):
            raise ValueError(
                "ranked lists and streamed blocks rank the gallery for each query: "
                f"pass directions='q2g' (got {directions!r})."
            )
        if isinstance(scores, TopK):
            R = check_relevance(relevance, scores.shape)
            return {"q2g": {f"R@{k}": 100.0 * _mean(_list_hits(scores, R, k, ties))
                            for k in (check_list_cutoff(scores, k, "ks") for k in ks)}}
        terms, n_items = _streamed_terms(scores, relevance, ties)
        return {"q2g": _report(terms, ks, n_items)}
    S = check_matrix(scores, "scores")
    R = check_relevance(relevance, S.shape)
    Rs = {}
    for direction in directions:
        if direction == "q2g":
            Rs[direction] = R
            continue
        lonely = np.flatnonzero(np.diff(R.tocsc().indptr) == 0)
        if lonely.size:
            raise ValueError(
                f"relevance: direction 'g2q' ranks the queries for each gallery item, so "
                f"every gallery item needs a relevant query; {lonely.size} gallery "
                f"item(s) have none (first: column {lonely[0]} of scores). Pass "
                "directions=('q2g',) to rank the gallery for each query only."
            )
        Rs[direction] = check_relevance(R.T, S.T.shape)
    # Both directions from one pass over S (no transposed copy of S).
    terms = _terms(S, Rs, ties, precision=True)
    return {d: _report(terms[d], ks, S.shape[1] if d == "q2g" else S.shape[0]) for d in directions}
