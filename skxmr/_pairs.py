"""The paired-row data model.

Row ``i`` of ``X = hstack([Q, G])`` is a matching (query, gallery item) pair.
Both halves live in the same embedding space unless a step maps them there
(``n_query_features`` says where the split is; default: half the columns).
An item that appears in several rows (an image with five captions) is one
item: :func:`split_pairs` de-duplicates each side and derives which query is
relevant to which gallery item, from the pairs or from labels ``y``.
"""

import sys
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .utils._backend import astype, get_backend, to_numpy
from .utils._validation import check_matrix, label_codes, result_dtype

DIRECTIONS = ("q2g", "g2q")


def pair(queries, gallery):
    """Stack matching query and gallery embeddings into paired rows.

    Parameters
    ----------
    queries : array-like of shape (n_pairs, n_query_features)
        Query-side embeddings (e.g. captions).
    gallery : array-like of shape (n_pairs, n_gallery_features)
        Gallery-side embeddings; row ``i`` matches ``queries[i]``.

    Returns
    -------
    X : ndarray of shape (n_pairs, n_query_features + n_gallery_features)
        float32 when both halves are float32 (or half precision), float64
        otherwise. Under ``sklearn.config_context(array_api_dispatch=True)``
        an array of the halves' namespace and device (e.g. a torch tensor).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import pair, unpair
    >>> X = pair(np.eye(2), 2 * np.eye(2))
    >>> X.shape
    (2, 4)
    >>> Q, G = unpair(X)
    >>> G[1]
    array([0., 2.])
    """
    return stack_pairs(check_matrix(queries, "queries"), check_matrix(gallery, "gallery"))


def stack_pairs(Q, G, name_q="queries", name_g="gallery"):
    """``hstack([Q, G])`` of validated halves in a common dtype, rows checked."""
    if Q.shape[0] != G.shape[0]:
        raise ValueError(
            f"{name_q} has {Q.shape[0]} rows but {name_g} has {G.shape[0]}; "
            "row i of each must form a matching pair."
        )
    dtype = result_dtype(Q, G)
    if isinstance(Q, np.ndarray) and isinstance(G, np.ndarray):
        return np.hstack([Q.astype(dtype, copy=False), G.astype(dtype, copy=False)])
    nx = get_backend(**{name_q: Q, name_g: G})  # under dispatch: same library and device
    return nx.concatenate([astype(Q, dtype), astype(G, dtype)], axis=1)


def resolve_split(n_features, n_query_features=None):
    """Return the column where the query half ends, validated."""
    if n_query_features is None:
        if n_features % 2:
            raise ValueError(
                f"X has an odd number of columns ({n_features}); pass "
                "n_query_features to say where the query half ends."
            )
        return n_features // 2
    if isinstance(n_query_features, (bool, np.bool_)) or not isinstance(
        n_query_features, (int, np.integer)
    ):
        raise TypeError(
            f"n_query_features must be an integer or None, got {n_query_features!r}."
        )
    if not 1 <= n_query_features <= n_features - 1:
        raise ValueError(
            f"n_query_features={n_query_features} must be in [1, {n_features - 1}] "
            f"for X with {n_features} columns."
        )
    return int(n_query_features)


def unpair(X, n_query_features=None):
    """Split paired rows into their query and gallery halves (views, no copy).

    Parameters
    ----------
    X : array-like of shape (n_pairs, n_features)
        Paired rows as built by :func:`pair`.
    n_query_features : int, default=None
        Number of leading columns that hold the query; ``None`` means half.

    Returns
    -------
    queries : ndarray of shape (n_pairs, n_query_features)
    gallery : ndarray of shape (n_pairs, n_features - n_query_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import unpair
    >>> Q, G = unpair(np.arange(10.).reshape(2, 5), n_query_features=2)
    >>> Q.shape, G.shape
    ((2, 2), (2, 3))
    """
    X = check_matrix(X, "X")
    cut = resolve_split(X.shape[1], n_query_features)
    return X[:, :cut], X[:, cut:]


def unique_rows(A):
    """Unique rows of ``A`` in order of first appearance.

    Returns
    -------
    unique : array of shape (n_unique, n_cols)
        In ``A``'s namespace and on its device.
    inverse : ndarray of shape (n_rows,)
        ``unique[inverse]`` equals ``A`` (row bookkeeping: always numpy).
    """
    return get_backend(X=A).unique_rows(A)


@dataclass
class PairedItems:
    """Unique items of both sides of paired rows and their relevance.

    Attributes
    ----------
    sources : ndarray of shape (n_sources, d_s)
        Unique items that query (the left half for ``"q2g"``).
    targets : ndarray of shape (n_targets, d_t)
        Unique items that are ranked.
    relevance : scipy.sparse.csr_array of shape (n_sources, n_targets), bool
        ``relevance[i, j]`` is True iff source ``i`` and target ``j`` are a pair
        (or share a label when ``y`` was given).
    source_index, target_index : ndarray of shape (n_pairs,)
        Row ``r`` of ``X`` holds ``sources[source_index[r]]`` and
        ``targets[target_index[r]]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import pair, split_pairs
    >>> image = np.eye(2)
    >>> X = pair(np.array([[1., 0.], [.9, .1], [0., 1.]]), image[[0, 0, 1]])
    >>> items = split_pairs(X)          # two captions of image 0, one of image 1
    >>> items.sources.shape, items.targets.shape
    ((3, 2), (2, 2))
    >>> items.relevance.toarray()
    array([[ True, False],
           [ True, False],
           [False,  True]])
    """

    sources: np.ndarray
    targets: np.ndarray
    relevance: sp.csr_array
    source_index: np.ndarray
    target_index: np.ndarray

    def require_banks(self, min_items=2):
        """Raise unless both sides hold ``min_items`` unique items (to fit on)."""
        for name, bank in (("query bank", self.sources), ("gallery bank", self.targets)):
            if bank.shape[0] < min_items:
                raise ValueError(
                    f"X holds {bank.shape[0]} unique item(s) on the {name} side; "
                    f"a bank needs at least {min_items}."
                )
        return self


def _incidence(index, codes, n_rows, n_cols):
    data = np.ones(index.size, dtype=bool)
    return sp.csr_array((data, (index, codes)), shape=(n_rows, n_cols))


def split_pairs(X, y=None, *, n_query_features=None, direction="q2g"):
    """De-duplicate both halves of paired rows and derive relevance.

    Parameters
    ----------
    X : array-like of shape (n_pairs, n_features)
        Paired rows.
    y : array-like of shape (n_pairs,), default=None
        Class labels. When given, a query and a gallery item are relevant iff
        they carry a common label (category-level retrieval); otherwise iff
        some row pairs them.
    n_query_features : int, default=None
        Width of the query half; ``None`` means half of the columns.
    direction : {"q2g", "g2q"}, default="q2g"
        ``"q2g"`` ranks gallery items (right half) for each query (left half);
        ``"g2q"`` the reverse.

    Returns
    -------
    items : PairedItems

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr._pairs import split_pairs
    >>> img = np.array([[1., 0.], [0., 1.]])
    >>> cap = np.array([[1., .1], [.9, .2], [.1, 1.]])   # two captions of image 0
    >>> items = split_pairs(np.hstack([cap, img[[0, 0, 1]]]))
    >>> items.sources.shape, items.targets.shape
    ((3, 2), (2, 2))
    >>> items.relevance.toarray().astype(int)
    array([[1, 0],
           [1, 0],
           [0, 1]])
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}.")
    X = check_matrix(X, "X")
    cut = resolve_split(X.shape[1], n_query_features)
    left, right = X[:, :cut], X[:, cut:]
    if direction == "g2q":
        left, right = right, left
    sources, s_idx = unique_rows(left)
    targets, t_idx = unique_rows(right)
    n_s, n_t = sources.shape[0], targets.shape[0]
    if y is None:
        relevance = _incidence(s_idx, t_idx, n_s, n_t)
    else:
        codes = label_codes(y, X.shape[0])
        n_labels = int(codes.max()) + 1
        # An item seen with several labels is relevant to every item that
        # shares any of them (multi-label union).
        L_s = _incidence(s_idx, codes, n_s, n_labels).astype(np.int32)
        L_t = _incidence(t_idx, codes, n_t, n_labels).astype(np.int32)
        relevance = (L_s @ L_t.T).astype(bool).tocsr()
    relevance.sum_duplicates()
    return PairedItems(sources, targets, relevance.tocsr(), s_idx, t_idx)


def item_groups(X, *, n_query_features=None):
    """One id per connected set of rows: rows sharing a query or a gallery item.

    Duplicate halves are one item, so an image with five captions ties its
    five rows together, and a caption that appears with two images ties
    those too. Pass the result as ``groups`` to ``GroupKFold`` or
    :func:`skxmr.datasets.bank_test_split` so that no item sits on both sides
    of a split.

    Parameters
    ----------
    X : array-like of shape (n_pairs, n_features)
        Paired rows.
    n_query_features : int, default=None
        Width of the query half; ``None`` means half of the columns.

    Returns
    -------
    groups : ndarray of shape (n_pairs,)
        Group ids ``0 .. n_groups - 1``, numbered in order of first appearance.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr._pairs import item_groups
    >>> img = np.eye(2)
    >>> cap = np.array([[1., .1], [.9, .2], [.1, 1.]])   # two captions of image 0
    >>> item_groups(np.hstack([cap, img[[0, 0, 1]]]))
    array([0, 0, 1])
    """
    from scipy.sparse.csgraph import connected_components

    X = check_matrix(X, "X")
    cut = resolve_split(X.shape[1], n_query_features)
    _, q_idx = unique_rows(X[:, :cut])
    _, g_idx = unique_rows(X[:, cut:])
    n_q = int(q_idx.max()) + 1
    n_nodes = n_q + int(g_idx.max()) + 1
    # Bipartite graph: query items 0..n_q-1, gallery items after them.
    edges = sp.csr_array(
        (np.ones(q_idx.size, dtype=bool), (q_idx, n_q + g_idx)), shape=(n_nodes, n_nodes)
    )
    _, component = connected_components(edges, directed=False)
    labels = component[q_idx]
    # Renumber in order of first appearance, as the rest of the data model does.
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.intp)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()]


# ------------------------------------------------------------------ layout
def check_y_layout(X, y, method="fit"):
    """Refuse ``method(Q, G)``: a 2-D float ``y`` as long as ``X`` is a half.

    ``y`` holds labels (one per pair); two embedding matrices passed as
    ``(X, y)`` would otherwise fit on ``Q`` alone and ignore ``G``.
    """
    if y is None or sp.issparse(y):
        return
    y_arr = to_numpy(y)
    if (y_arr.ndim == 2 and y_arr.shape[0] == np.shape(X)[0]
            and np.issubdtype(y_arr.dtype, np.floating)):
        raise ValueError(
            f"{method}(X, y) got a 2-D float y of shape {y_arr.shape}, one row per row "
            f"of X: it looks like {method}(Q, G). Build one matrix of paired rows, "
            f"X = skxmr.pair(Q, G), and call {method}(X); y is for labels, one per pair."
        )


def _row_normalised(A):
    # Max-abs first, so that rows of 1e200 or 1e-200 neither overflow nor underflow.
    scale = np.max(np.abs(A), axis=1, keepdims=True)
    A = A / np.where(scale > 0, scale, 1.0)
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.where(norms > 0, norms, 1.0)


# The start of warn_unpaired's message: scikit-learn's generic estimator
# checks fit random (unpaired) X by design, and the published checks silence it.
UNPAIRED_MESSAGE = "The halves of X show no pairing signal"


def warn_unpaired(X, cut):
    """Warn when matched rows are no more similar than random rows.

    The halves of paired rows share a space, so row ``i``'s query should be
    closer to row ``i``'s gallery item than to the other rows' items; when
    it is not (e.g. one modality passed alone and split in two), every score
    is meaningless. Compares the mean matched cosine with the mean over all
    mismatched rows (computed from the halves' column means, O(n d)).
    """
    n = X.shape[0]
    if n < 3 or 2 * cut != X.shape[1]:
        return  # too few rows to tell, or halves in different spaces
    X = to_numpy(X, np.float64)
    Q, G = _row_normalised(X[:, :cut]), _row_normalised(X[:, cut:])
    matched = np.einsum("ij,ij->i", Q, G)
    everything = float(Q.sum(axis=0) @ G.sum(axis=0))
    mismatched = (everything - matched.sum()) / (n * n - n)
    margin = 2.0 * matched.std() / np.sqrt(n)
    if not matched.mean() > mismatched + margin:
        _warn_once_per_call(
            f"{UNPAIRED_MESSAGE}: matched rows are no more similar "
            "than mismatched rows. Rows must be matching pairs X = skxmr.pair(Q, G); a "
            "single modality passed alone (split in two halves) gives meaningless scores."
        )


# The warnings already shown to the current recipient of warnings: (caller's
# line, text). The recipient itself is held, so that its id is never reused.
_SHOWN = {"recipient": None, "keys": set()}
_LIBRARIES = ("skxmr", "sklearn", "joblib", "concurrent", "threading", "numpy")


def _warn_once_per_call(message):
    """``UserWarning`` once per line of the caller's code (and text).

    Python shows a warning once per message and place, but scikit-learn
    resets that record for every fit of a grid search or cross-validation
    (it runs each in ``warnings.catch_warnings``), so one ``search.fit(X)``
    printed it once per fold and again for the refit. The record kept here
    is keyed on the first frame outside the libraries (the user's line)
    and starts afresh for each new recipient of the warnings (each
    ``catch_warnings(record=True)``, e.g. every test under pytest), which
    scikit-learn's resets do not change.
    """
    frame, depth = sys._getframe(1), 1
    while frame is not None and (frame.f_globals.get("__name__") or "").split(".")[0] in _LIBRARIES:
        frame, depth = frame.f_back, depth + 1
    where = (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None
    recipient = getattr(warnings, "_showwarnmsg_impl", None)
    if _SHOWN["recipient"] is not recipient:  # e.g. a new recording context
        _SHOWN["recipient"], _SHOWN["keys"] = recipient, set()
    if (where, message) in _SHOWN["keys"]:
        return
    _SHOWN["keys"].add((where, message))
    warnings.warn(message, UserWarning, stacklevel=depth + 1)


def warn_split(X, cut, n_query_features):
    """Warn when equal halves are assumed for rows that are not equal halves.

    ``pair`` of L2-normalised ``Q`` and ``G`` gives rows whose two halves
    each have unit norm. When every row has squared norm 2 and the unit-norm
    split sits at another column than the assumed middle (e.g. 512 + 768
    columns split 640/640), say which ``n_query_features`` fits.
    """
    if n_query_features is not None or X.shape[0] == 0:
        return
    with np.errstate(over="ignore"):  # huge rows: inf totals, not two unit halves
        sq = np.cumsum(np.square(to_numpy(X, np.float64)), axis=1)
    tol = 1e-2  # published float32 embeddings are unit-norm to ~1e-3 only
    if not np.all(np.abs(sq[:, -1] - 2.0) < 2 * tol):
        return  # not two unit-norm halves: nothing to infer
    deviation = np.max(np.abs(sq[:, :-1] - 1.0), axis=0)  # per candidate split
    j = int(np.argmin(deviation)) + 1
    if deviation[j - 1] < tol and deviation[cut - 1] >= tol:
        warnings.warn(
            f"X's rows look like pairs of unit-norm halves of {j} and {X.shape[1] - j} "
            f"columns, but n_query_features=None splits them at column {cut} (half of "
            f"{X.shape[1]}); pass n_query_features={j}.",
            UserWarning,
            stacklevel=3,
        )
