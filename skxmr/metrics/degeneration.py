"""Representation degeneration: how tightly a set of embeddings is packed.

The InvGC paper (Wang et al., EMNLP Findings 2023, Eq. 2 and Tables 1-2,
19-34) measures degeneration with cosine similarities:

* ``Δ_deg = (1/m) Σ_x sim(x, y)``, ``y`` the nearest neighbour of ``x`` in
  the set, ``m`` the number of points (:func:`degeneration_score`);
* ``MeanSim``: the mean similarity over all pairs (:func:`mean_similarity`);
* ``MeanSim@k``: the mean, over points, of the mean similarity to their
  ``k`` nearest neighbours (:func:`mean_similarity_at_k`); ``MeanSim@1`` is
  ``Δ_deg``.

Every function takes **embeddings**, not a score matrix, and uses cosine
similarity (rows are L2-normalised first). With ``Y=None`` the statistics
are computed *within* ``X`` -- the paper's ``Δ_deg(G)`` of a gallery
(Table 1), where a point is never its own neighbour. With ``Y`` they are
computed *between* ``X`` and ``Y`` with neighbours taken in ``Y`` for each
row of ``X`` -- the paper's Table 2 uses ``X`` = test gallery, ``Y`` = test
queries and excludes each gallery item's matching queries, which
``exclude=relevance.T`` does (``relevance`` from :func:`skxmr.split_pairs`).

Under ``sklearn.config_context(array_api_dispatch=True)`` torch embeddings
stay on their device (products and selections through POT's backend and
:mod:`skxmr.utils._topk`); the excluded pairs, given as a host (sparse)
matrix, go to that device once per call as two index arrays. The results
are Python floats, accumulated in float64 as on numpy.
"""

import math

import numpy as np
import scipy.sparse as sp

from ..utils._backend import astype, dtype_name, get_backend
from ..utils._chunking import map_row_chunks
from ..utils._validation import (
    check_matrix,
    check_n_neighbors,
    check_same_width,
    l2_normalize,
)
from .ranking import _host_relevance


def _device_index(a, like):
    """Host integer indices as int64 on the backend/device of ``like``."""
    nx = get_backend(like=like)
    return nx.from_numpy(np.asarray(a, dtype=np.int64), type_as=nx.arange(1, type_as=like))


def _prepare(X, Y, exclude):
    """Normalised X, Y (or X) and the excluded pairs as a bool CSR matrix."""
    within = Y is None
    X = check_matrix(X, "X", min_rows=2 if within else 1)
    Xn = l2_normalize(X, "X")
    if within:
        Yn = Xn
    else:
        Y = check_matrix(Y, "Y")
        check_same_width(X, Y, "X", "Y")
        get_backend(X=X, Y=Y)  # both on one backend and device, or a ValueError naming both
        Yn = l2_normalize(Y, "Y")
        if Xn.dtype != Yn.dtype:  # mixed precision: float64 (result_dtype's rule)
            Xn, Yn = astype(Xn, "float64"), astype(Yn, "float64")
    shape = (Xn.shape[0], Yn.shape[0])
    if exclude is None:
        E = sp.csr_array(shape, dtype=bool)
    else:
        exclude = _host_relevance(exclude)  # a tensor: structure, to the host once
        E = sp.csr_array(exclude) if sp.issparse(exclude) else sp.csr_array(np.asarray(exclude))
        if E.ndim != 2 or E.shape != shape:
            raise ValueError(
                f"exclude must have shape {shape} (rows of X x rows of "
                f"{'X' if within else 'Y'}), got {E.shape}."
            )
        E = E.astype(bool)
        E.eliminate_zeros()
    if within:
        # A point is never its own neighbour (by position, not by value).
        E = (E + sp.eye_array(shape[0], dtype=bool, format="csr")).astype(bool)
    E.sum_duplicates()
    return Xn, Yn, E.tocsr()


def mean_similarity(X, Y=None, *, exclude=None, n_jobs=None, working_memory=None):
    """MeanSim: the mean cosine similarity over all (non-excluded) pairs.

    Parameters
    ----------
    X : array-like of shape (n_x, d)
        Embeddings, e.g. a test gallery.
    Y : array-like of shape (n_y, d), default=None
        Second set (e.g. the test queries); ``None`` means pairs within
        ``X``, each point with every *other* point.
    exclude : array-like or sparse matrix of shape (n_x, n_y), default=None
        Non-zero entries mark pairs left out (e.g. the matching pairs,
        ``relevance.T``).
    n_jobs : int, default=None
        joblib workers over chunks of the excluded pairs.
    working_memory : float, default=None
        MiB budget of one chunk.

    Returns
    -------
    mean_sim : float

    Notes
    -----
    Computed without the pairwise matrix: the sum over all pairs is
    ``(Σ_i x_i)·(Σ_j y_j)``, from which the excluded pairs (the diagonal
    when ``Y`` is None) are subtracted; O((n_x + n_y + n_excluded)·d).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import mean_similarity
    >>> X = np.array([[1., 0.], [0., 1.], [1., 1.]])
    >>> round(mean_similarity(X), 4)   # (0 + 0.7071 + 0.7071) / 3
    0.4714
    """
    Xn, Yn, E = _prepare(X, Y, exclude)
    n_pairs = Xn.shape[0] * Yn.shape[0] - E.nnz
    if n_pairs < 1:
        raise ValueError("exclude leaves no pair of X and Y to average over.")
    nx = get_backend(X=Xn)
    if isinstance(Xn, np.ndarray):
        total = float(Xn.sum(axis=0, dtype=np.float64) @ Yn.sum(axis=0, dtype=np.float64))
    else:
        sums = [nx.sum(astype(A, "float64"), axis=0) for A in (Xn, Yn)]
        total = float(nx.sum(sums[0] * sums[1]))
    rows, cols = E.nonzero()
    if not isinstance(Xn, np.ndarray):
        rows, cols = _device_index(rows, Xn), _device_index(cols, Xn)
    d = Xn.shape[1]

    if rows.shape[0]:
        total -= float(
            sum(
                map_row_chunks(
                    _excluded_sum_chunk,
                    rows.shape[0],
                    3 * d * 8,
                    args=(Xn, Yn, rows, cols),
                    n_jobs=n_jobs,
                    working_memory=working_memory,
                )
            )
        )
    return total / n_pairs


def mean_similarity_at_k(X, Y=None, *, k=10, exclude=None, n_jobs=None, working_memory=None):
    """MeanSim@k: mean over rows of X of the mean similarity to its k nearest.

    Parameters
    ----------
    X : array-like of shape (n_x, d)
        Embeddings whose neighbourhoods are measured (e.g. a test gallery).
    Y : array-like of shape (n_y, d), default=None
        Where neighbours are searched; ``None`` means within ``X``,
        excluding each point itself.
    k : int, default=10
        Number of nearest neighbours (by cosine similarity).
    exclude : array-like or sparse matrix of shape (n_x, n_y), default=None
        Non-zero entries mark pairs that are never neighbours (e.g. each
        gallery item's matching queries, ``relevance.T``).
    n_jobs : int, default=None
        joblib workers over chunks of rows of ``X``.
    working_memory : float, default=None
        MiB budget of one chunk of the similarity matrix; ``None`` follows
        ``sklearn.get_config()["working_memory"]``.

    Returns
    -------
    mean_sim_at_k : float

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import mean_similarity_at_k
    >>> X = np.array([[1., 0.], [0., 1.], [1., 1.]])
    >>> round(mean_similarity_at_k(X, k=1), 4)   # every nearest sim is 0.7071
    0.7071
    >>> round(mean_similarity_at_k(X, k=2), 4)   # (0.3536 + 0.3536 + 0.7071) / 3
    0.4714
    """
    Xn, Yn, E = _prepare(X, Y, exclude)
    n_x, n_y = Xn.shape[0], Yn.shape[0]
    k = check_n_neighbors(k, n_y - (1 if Y is None else 0), "k", "candidate neighbours")
    left = n_y - np.diff(E.indptr)
    if np.any(left < k):
        i = int(np.flatnonzero(left < k)[0])
        raise ValueError(
            f"k={k} but row {i} of X has only {left[i]} candidate neighbours "
            "after exclude."
        )

    nx = get_backend(X=Xn)
    parts = map_row_chunks(
        _top_k_means_chunk,
        n_x,
        2 * n_y * np.dtype(dtype_name(Xn)).itemsize,
        args=(Xn, Yn, E, k),
        n_jobs=n_jobs,
        working_memory=working_memory,
    )
    return float(nx.mean(nx.concatenate(parts)))


def _excluded_sum_chunk(part, Xn, Yn, rows, cols):
    """Σ of the similarities of the excluded pairs ``part`` (a chunk task)."""
    r, c = rows[part], cols[part]
    if isinstance(Xn, np.ndarray):
        return np.einsum("ij,ij->", Xn[r], Yn[c], dtype=np.float64)
    nx = get_backend(X=Xn)
    return float(nx.sum(astype(nx.take_rows(Xn, r), "float64")
                        * astype(nx.take_rows(Yn, c), "float64")))


def _top_k_means_chunk(rows, Xn, Yn, E, k):
    """Mean of the ``k`` best non-excluded similarities of the rows ``rows``."""
    nx = get_backend(X=Xn)
    n_y = Yn.shape[0]
    S = nx.dot(Xn[rows, ...], Yn.T)
    excl = E[rows].tocoo()
    if isinstance(Xn, np.ndarray):
        S[excl.row, excl.col] = -np.inf
        top = np.partition(S, n_y - k, axis=1)[:, n_y - k :]
        return top.mean(axis=1, dtype=np.float64)
    S = nx.scatter(S, (_device_index(excl.row, S), _device_index(excl.col, S)), -math.inf)
    return nx.mean(astype(nx.row_top(S, k)[0], "float64"), axis=1)


def degeneration_score(X, Y=None, *, exclude=None, n_jobs=None, working_memory=None):
    """Δ_deg: the mean cosine similarity of each point to its nearest neighbour.

    The InvGC paper's Eq. 2, ``Δ_deg = (1/m) Σ_x sim(x, y)`` with ``y`` the
    closest point to ``x``; equal to :func:`mean_similarity_at_k` with
    ``k=1``. The paper reports ``Δ_deg(G)`` of the test gallery, i.e.
    ``degeneration_score(gallery)`` (``Y=None``: neighbours within the set,
    a point is not its own neighbour; duplicate rows *are* neighbours at
    similarity 1). Higher means a more degenerate (narrower) set.

    Parameters
    ----------
    X : array-like of shape (n_x, d)
        Embeddings, e.g. a test gallery.
    Y : array-like of shape (n_y, d), default=None
        Where nearest neighbours are searched; ``None`` means within ``X``.
    exclude : array-like or sparse matrix of shape (n_x, n_y), default=None
        Pairs that are never neighbours.
    n_jobs : int, default=None
        joblib workers over chunks of rows of ``X``.
    working_memory : float, default=None
        MiB budget of one chunk of the similarity matrix.

    Returns
    -------
    score : float in [-1, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import degeneration_score
    >>> G = np.array([[1., 0.], [0.6, 0.8], [0., 1.]])
    >>> degeneration_score(G)   # nearest sims 0.6, 0.8, 0.8
    0.7333...
    """
    return mean_similarity_at_k(
        X, Y, k=1, exclude=exclude, n_jobs=n_jobs, working_memory=working_memory
    )


__all__ = ["degeneration_score", "mean_similarity", "mean_similarity_at_k"]
