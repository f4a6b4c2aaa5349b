"""Ranked lists: evaluation from top-k output, and TREC run/qrels files.

A :class:`TopK` holds what :meth:`skxmr.GalleryIndex.kneighbors` returns --
the ``k`` best gallery items of each query, best first, with their scores --
and the gallery size. The ranking and hubness metrics accept it in place of
a dense score matrix, so that 10⁵-10⁶ queries are evaluated without the
``n_queries × n_gallery`` matrix. :func:`write_trec_run` and
:func:`write_trec_qrels` write the lists and the relevance in the formats
``trec_eval`` and ranx read.
"""

import numbers
import os

import numpy as np


class TopK:
    """The ``k`` best gallery items of each query, best first.

    Pass it as ``scores`` to :func:`~skxmr.metrics.recall_at_k`,
    :func:`~skxmr.metrics.retrieval_report` (R@K only) and the hubness
    metrics (:func:`~skxmr.metrics.k_occurrence`,
    :func:`~skxmr.metrics.hubness_report`, ...). For cut-offs up to ``k``
    they equal the dense metrics on the full score matrix: ties within a
    list are counted as the dense path counts them (``ties=``), and the
    hubness metrics break them by the lower gallery index, as
    :meth:`~skxmr.GalleryIndex.kneighbors` orders them. Items beyond a
    list are taken to score below its last one: should the ``k``-th and
    ``(k+1)``-th scores tie, a relevant item at the end of the list would
    rank behind the unlisted tied items in the dense pessimistic count (ask
    for one more neighbour than the largest cut-off to rule it out).

    Parameters
    ----------
    scores : array-like of shape (n_queries, k)
        Scores of the listed items, non-increasing along each row.
    indices : array-like of shape (n_queries, k)
        Gallery indices of the listed items (distinct within a row).
    n_items : int
        Gallery size (items never listed count as ``N_k = 0``).

    Attributes
    ----------
    shape : tuple
        ``(n_queries, n_items)``, the shape of the dense score matrix.
    k : int
        Length of the lists.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import TopK, k_occurrence, recall_at_k
    >>> S = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.1]])
    >>> lists = TopK([[0.9, 0.5], [0.8, 0.7]], [[0, 2], [0, 1]], n_items=3)
    >>> k_occurrence(lists, k=2), k_occurrence(S, k=2)
    (array([2, 1, 1]), array([2, 1, 1]))
    >>> recall_at_k(lists, np.array([2, 1]), k=2)
    100.0
    """

    def __init__(self, scores, indices, n_items):
        if isinstance(n_items, (bool, np.bool_)) or not isinstance(n_items, numbers.Integral) \
                or n_items < 1:
            raise ValueError(f"n_items must be a positive integer, got {n_items!r}.")
        s = np.asarray(scores)
        i = np.asarray(indices)
        if s.ndim != 2 or s.shape != i.shape or s.shape[1] == 0:
            raise ValueError(
                f"scores and indices must be 2-D of the same shape (n_queries, k >= 1), "
                f"got {s.shape} and {i.shape}."
            )
        if not np.issubdtype(s.dtype, np.floating) or np.isnan(s).any():
            raise ValueError("scores must be real numbers without NaN.")
        if not np.issubdtype(i.dtype, np.integer):
            raise TypeError(f"indices must be integers, got dtype {i.dtype}.")
        if i.min() < 0 or i.max() >= n_items:
            raise ValueError(f"indices must be in [0, {n_items - 1}] (n_items={n_items}).")
        if s.shape[1] > n_items:
            raise ValueError(f"lists of {s.shape[1]} items but n_items={n_items}.")
        if (np.diff(s, axis=1) > 0).any():
            raise ValueError("scores must be non-increasing along each row (best first).")
        if (np.diff(np.sort(i, axis=1), axis=1) == 0).any():
            raise ValueError("indices must be distinct within each row.")
        self.scores, self.indices, self.n_items = s, i.astype(np.int64, copy=False), int(n_items)

    @property
    def shape(self):
        return (self.scores.shape[0], self.n_items)

    @property
    def k(self):
        return self.scores.shape[1]

    def __repr__(self):
        return f"TopK(n_queries={self.shape[0]}, k={self.k}, n_items={self.n_items})"


def check_list_cutoff(lists, k, name="k"):
    """``k`` as an int in ``[1, lists.k]``: the lists cannot rank beyond ``k``."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}.")
    if k > lists.k:
        raise ValueError(
            f"{name}={k} but the lists hold {lists.k} items per query: evaluate with "
            f"{name} <= {lists.k}, or ask kneighbors for more neighbours."
        )
    return int(k)


def list_relevance(lists, R):
    """Boolean (n_queries, k): whether each listed item is relevant (CSR ``R``)."""
    rows = np.repeat(np.arange(lists.shape[0]), lists.k)
    return np.asarray(R[rows, lists.indices.ravel()]).reshape(lists.scores.shape).astype(bool)


def _ids(ids, n, name):
    if ids is None:
        return [str(j) for j in range(n)]
    ids = [str(x) for x in ids]
    if len(ids) != n:
        raise ValueError(f"{name} has {len(ids)} entries, expected {n}.")
    bad = [x for x in ids if not x or any(c.isspace() for c in x)]
    if bad:
        raise ValueError(f"{name} must be non-empty and without whitespace, got {bad[0]!r}.")
    return ids


def _open(file):
    if isinstance(file, (str, os.PathLike)):
        return open(file, "w", encoding="utf-8"), True
    return file, False


def write_trec_run(file, lists, *, query_ids=None, item_ids=None, run_name="skxmr"):
    """Write ranked lists as a TREC run file (``trec_eval``, ranx).

    One line per listed item: ``query_id Q0 item_id rank score run_name``,
    ranks from 1, best first.

    Parameters
    ----------
    file : str, path or text file object
    lists : TopK
        The ranked lists (e.g. from :meth:`skxmr.GalleryIndex.kneighbors`).
    query_ids, item_ids : sequence, default=None
        Identifiers of the queries and of the gallery items (without
        whitespace); ``None`` uses the row and column numbers.
    run_name : str, default="skxmr"

    Examples
    --------
    >>> import io
    >>> from skxmr.metrics import TopK, write_trec_run
    >>> out = io.StringIO()
    >>> write_trec_run(out, TopK([[0.9, 0.5]], [[2, 0]], n_items=3))
    >>> print(out.getvalue(), end="")
    0 Q0 2 1 0.9 skxmr
    0 Q0 0 2 0.5 skxmr
    """
    if not isinstance(lists, TopK):
        raise TypeError(f"lists must be a TopK, got {type(lists).__name__}.")
    qids = _ids(query_ids, lists.shape[0], "query_ids")
    iids = _ids(item_ids, lists.n_items, "item_ids")
    (run_name,) = _ids([run_name], 1, "run_name")
    f, close = _open(file)
    try:
        for q, (row_s, row_i) in enumerate(zip(lists.scores, lists.indices)):
            f.writelines(f"{qids[q]} Q0 {iids[j]} {r} {float(s)!r} {run_name}\n"
                         for r, (s, j) in enumerate(zip(row_s, row_i), start=1))
    finally:
        if close:
            f.close()


def write_trec_qrels(file, relevance, *, n_items=None, query_ids=None, item_ids=None):
    """Write relevance judgements as a TREC qrels file: ``query_id 0 item_id 1``.

    Parameters
    ----------
    file : str, path or text file object
    relevance : array-like or sparse matrix
        As for the ranking metrics: the relevant column of each query (1-D
        integers) or a (n_queries, n_items) boolean (sparse) matrix.
    n_items : int, default=None
        Gallery size; needed for 1-D relevance when ``item_ids`` is None
        (then ``max + 1``).
    query_ids, item_ids : sequence, default=None
        As in :func:`write_trec_run`.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from skxmr.metrics import write_trec_qrels
    >>> out = io.StringIO()
    >>> write_trec_qrels(out, np.array([2, 0]))
    >>> print(out.getvalue(), end="")
    0 0 2 1
    1 0 0 1
    """
    from .ranking import check_relevance

    rel = relevance
    n_q = rel.shape[0] if hasattr(rel, "shape") else len(rel)
    if n_items is None:
        if item_ids is not None:
            n_items = len(item_ids)
        elif np.ndim(rel) == 2 or hasattr(rel, "tocsr"):
            n_items = rel.shape[1]
        else:
            n_items = int(np.max(rel)) + 1
    R = check_relevance(rel, (n_q, n_items))
    qids = _ids(query_ids, n_q, "query_ids")
    iids = _ids(item_ids, n_items, "item_ids")
    f, close = _open(file)
    try:
        for q in range(n_q):
            f.writelines(f"{qids[q]} 0 {iids[j]} 1\n"
                         for j in R.indices[R.indptr[q]:R.indptr[q + 1]])
    finally:
        if close:
            f.close()
