"""Inverse graph convolution (InvGC) of the test gallery.

InvGC (Wang et al., "InvGC: Robust Cross-Modal Retrieval by Inverse Graph
Convolution", EMNLP Findings 2023) pushes every gallery item away from its
neighbours in two training banks -- the gallery bank and the query bank --
so that the gallery spreads out of the narrow cone it occupies
(representation degeneration, see :mod:`skxmr.metrics.degeneration`).
For a gallery ``G`` (L2-normalised rows) and a bank ``B`` with ``W = G Bᵀ``:

* ``adjacency="full"`` (the paper's Eqs. 5-6, 9 with the centring of the
  authors' code)::

      G_B = norm(G - r_B (W - W̄) B / |B|),   W̄ = mean of all entries of W

* ``adjacency="local"`` (LocalAdj, Eqs. 7-9): keep the ``m = ⌈k·|B|⌉``
  largest entries of each row of ``W`` (``rounding="floor"``: the authors'
  ``⌊k·|B|⌋``), zero the rest (no centring)::

      G_B = norm(G - r_B W_top B / m)

* ``adjacency="avgpool"`` (the AvgPool baseline, Appendix C.4): as LocalAdj
  with weight 1 for every kept neighbour (``r_B`` times the mean of the
  ``m`` nearest bank items is subtracted);

and finally ``G' = norm(½ G_Bg + ½ G_Bq)``.

Arrays and devices: under ``sklearn.config_context(array_api_dispatch=True)``
torch tensors stay torch on their device -- the fitted banks, their moments
and every product (``nx.dot`` of POT's backend); the LocalAdj selection uses
the backend's ``topk`` for the threshold (:mod:`skxmr.utils._topk`) and the
neighbours' bank rows are gathered and summed on the device. numpy keeps
its specialised path (candidate top-k, a sparse CSR product).
"""

import math
import numbers
from fractions import Fraction

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.pipeline import make_pipeline
from .utils._compat import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .utils._backend import astype, dtype_name, get_backend
from ._base import PairedTransformer, _check_banks
from .utils._chunking import map_row_chunks
from .utils._docstrings import fill_doc
from .utils._params import (
    DEPRECATED,
    N_JOBS,
    PAIR_JOBS_DOC,
    WORKING_MEMORY,
    deprecated,
    keyword_only,
    param_doc,
    renamed_doc,
    value_of,
)
from ._pairs import resolve_split, unique_rows
from ._registry import register_method
from .utils._topk import top_k_indices, top_k_mask
from .utils._validation import check_matrix, check_same_width, l2_normalize
from .similarity import CosineSimilarity

ADJACENCIES = ("full", "local", "avgpool")

#: The AvgPool baseline's pooling ratios (paper, Appendix C.4: p in
#: {10, 25, 50, 100} %).
AVGPOOL_RATIOS = (0.1, 0.25, 0.5, 1.0)

#: Defaults of (r_gallery, r_query) per adjacency, used when the parameters
#: are None. Chosen on real CLIP ViT-B/16 COCO embeddings (text -> image) by a
#: grid on the BANK half only (``skxmr.datasets.bank_test_split``,
#: random_state 0..4), scored by mean R@1 over GroupKFold(2) folds inside the
#: bank -- never on a test half -- taking the grid's argmax. AvgPool shares
#: one pair across its four ratios, as in the paper (Appendix C.4). Reproduce
#: with ``python benchmarks/bench_invgc.py --choose-defaults``.
DEFAULT_R = {
    "full": (5.0, 2.0),
    "local": (0.25, 0.75),
    "avgpool": (0.0, 2.0),
}


#: Cap (MiB) on LocalAdj's default chunk of W: beyond a few hundred MiB a
#: chunk is no faster, only more first-touch page faults.
LOCAL_CHUNK_MIB = 256


def n_neighbors_for(k, n_bank, rounding="ceil"):
    """``⌈k·n_bank⌉`` (or ``⌊k·n_bank⌋``) on the decimal value of ``k``, at least 1.

    ``0.01 * 300`` is ``3.0000000000000004`` in binary floating point, whose
    ceiling would be 4; ``Fraction(repr(k))`` is the decimal the user wrote.
    ``rounding="floor"`` is the authors' ``int(k * |B|)``.
    """
    exact = Fraction(repr(float(k))) * n_bank
    return max(1, math.ceil(exact) if rounding == "ceil" else math.floor(exact))


def _dense_neighbourhoods(m, n_bank):
    """Whether a masked dense BLAS product beats a sparse one for m of n_bank."""
    return 8 * m >= n_bank


def _local_update(G, B, m, binary):
    """``S B / m`` with S the (binary or similarity) top-m adjacency of G."""
    nx = get_backend(gallery=G, bank=B)
    W = nx.dot(G, B.T)
    n_rows, n_bank = W.shape
    if not isinstance(W, np.ndarray):
        if _dense_neighbourhoods(m, n_bank):
            mask = top_k_mask(W, m)
            A = astype(mask, W.dtype) if binary else nx.where(mask, W, 0.0 * W)
            return nx.dot(A, B) / m
        idx = top_k_indices(W, m)
        weights = nx.ones(idx.shape, type_as=W) if binary else nx.take_along_axis(W, idx, 1)
        # the m neighbours' bank rows, gathered on the device: (rows, m, d)
        near = nx.reshape(nx.take_rows(B, nx.reshape(idx, (-1,))), (*idx.shape, B.shape[1]))
        return nx.einsum("nm,nmd->nd", weights, near) / m
    idx = top_k_indices(W, m)
    weights = np.ones(idx.shape, W.dtype) if binary else np.take_along_axis(W, idx, 1)
    if _dense_neighbourhoods(m, n_bank):
        # Dense neighbourhoods: a masked BLAS product beats a sparse one.
        A = np.zeros_like(W)
        np.put_along_axis(A, idx, weights, axis=1)
        return (A @ B) / m
    A = sp.csr_array(
        (weights.ravel(), idx.ravel(), np.arange(0, n_rows * m + 1, m)),
        shape=(n_rows, n_bank),
    )
    return np.asarray(A @ B) / m


def _moments(B):
    """``(BᵀB/|B|, mean(B))`` in float64 (one BLAS product; mixed-dtype
    operands would fall back to a slow non-BLAS loop)."""
    nx = get_backend(bank=B)
    B64 = astype(B, "float64")
    return nx.dot(B64.T, B64) / B.shape[0], nx.mean(B64, axis=0)


_NEIGHBOR_FRACTION = [Interval(numbers.Real, 0, 1, closed="right")]


@fill_doc(
    common=PAIR_JOBS_DOC,
    working_memory=param_doc(
        "working_memory", None,
        "Here the chunks are of the gallery × bank similarities (LocalAdj); "
        "with ``None`` they are also capped at ``LOCAL_CHUNK_MIB`` (256): "
        "larger chunks of ``W`` only add fresh pages to touch, not speed "
        "(``benchmarks/bench_limits.py``)."),
    k=renamed_doc("k", "neighbor_fraction"),
)
class InvGC(PairedTransformer):
    """Inverse graph convolution of the gallery half against two banks.

    ``fit`` keeps the unique L2-normalised gallery and query halves of the
    training pairs as the gallery bank ``B_g`` and the query bank ``B_q``.
    ``transform`` returns a new ``X`` whose gallery half (the right half for
    ``direction="q2g"``, the left half for ``"g2q"``) is replaced row-wise by
    the convolved, re-normalised gallery item; the query half is untouched.
    With ``G`` the L2-normalised unique gallery items and ``W = G Bᵀ``:

    * ``"full"``: ``G_B = norm(G - r_B (W - W̄) B / |B|)``, where ``W̄`` is
      the mean of *all* entries of ``W`` -- a scalar, as in the authors'
      public code (the paper's Eq. 9 has no centring; the code subtracts the
      global mean ``sum(W) / (n_g·|B|)``). Since ``W̄ = mean(G)·mean(B)``,
      the transform of a gallery item depends on the rest of the gallery
      through this one scalar per bank, computed over the unique gallery
      items passed to ``transform``. A per-row mean instead would reduce the
      update to ``G·Cov(B)`` and, on CLIP COCO, hardly changes R@1, whereas
      the global centring does help (see the user guide).
    * ``"local"`` (LocalAdj): keep the ``m = ⌈k·|B|⌉`` largest similarities
      of each row of ``W`` (exactly ``m``: ties with the ``m``-th value are
      kept in increasing bank order), no centring, divide by ``m``.
    * ``"avgpool"`` (the paper's AvgPool baseline): LocalAdj with weight 1 on
      each of the ``m`` kept neighbours, so ``r_B`` times the mean of the
      ``m`` nearest bank items is subtracted. The paper evaluates pooling
      ratios p ∈ {10, 25, 50, 100} %, so ``k`` (``neighbor_fraction``) must
      be one of {0.1, 0.25, 0.5, 1.0}; ``r_B`` still scales the update (the paper tunes
      ``r_g, r_q`` for AvgPool too).

    and ``G' = norm(½ G_Bg + ½ G_Bq)``. Duplicate gallery rows give identical
    outputs. The full update is computed as ``G·(BᵀB/|B|) - W̄·mean(B)``
    (the same number by associativity), which costs O(n_g·d²) instead of two
    n_g×|B|×d products; LocalAdj computes ``W`` in memory-bounded chunks of
    gallery rows and never holds more than a chunk of it.

    Parameters
    ----------
    r_gallery : float >= 0, default=None
        ``r_g``, the step away from the gallery bank. ``None`` uses the
        default of the adjacency (``DEFAULT_R``): 5.0 for ``"full"``, 0.25
        for ``"local"``, 0.0 for ``"avgpool"``.
    r_query : float >= 0, default=None
        ``r_q``, the step away from the query bank. ``None``: 2.0 for
        ``"full"``, 0.75 for ``"local"``, 2.0 for ``"avgpool"``. The paper's
        code requires both steps; these defaults are the argmax of a grid on
        the *bank* half of CLIP COCO text -> image (R@1, GroupKFold(2) inside
        the bank, five bank/test splits; the test halves never seen). On that
        grid R@1 is flat in ``r_gallery`` and peaks in ``r_query`` (full: 2;
        local: 0.75, dropping beyond 1). AvgPool's shared pair suits its
        large ratios (k >= 0.5, where subtracting the mean of half the bank
        acts like removing the bank's mean direction); at ``k=0.1`` it is far
        too large -- tune the steps there. For other models tune them, e.g.
        with ``GridSearchCV`` over ``invgc__r_gallery`` / ``invgc__r_query``.
    adjacency : {"full", "local", "avgpool"}, default="full"
        Graph used for the convolution (see above).
    neighbor_fraction : float in (0, 1], default=0.01
        The paper's ``k``: the fraction of each bank kept as neighbours by
        ``"local"`` and ``"avgpool"`` (``m = ⌈k·|B|⌉``, at least 1; the
        paper's k = 1 %).
        Ignored by ``"full"``; must be in {0.1, 0.25, 0.5, 1.0} for
        ``"avgpool"``.
    rounding : {"ceil", "floor"}, default="ceil"
        How ``k·|B|`` becomes a neighbour count when it is not an integer.
        ``"ceil"`` (``⌈k·|B|⌉``, never fewer neighbours than the
        fraction asks for); ``"floor"``: the authors' code (``int(k·|B|)``,
        at least 1). Rankings differ whenever ``k·|B|`` is not an integer
        (e.g. ``k=0.01`` with a bank of 250: 3 against 2 neighbours); choose
        ``"floor"`` to reproduce the authors' numbers.
    {common}
    {working_memory}
    {k}

    Attributes
    ----------
    gallery_bank_ : ndarray of shape (n_bank_gallery, d)
        Unique L2-normalised gallery halves of the training pairs.
    query_bank_ : ndarray of shape (n_bank_queries, d)
        Unique L2-normalised query halves of the training pairs.
    r_gallery_, r_query_ : float
        The steps used (the parameters, or their defaults when None).
    n_neighbors_gallery_, n_neighbors_query_ : int
        Neighbours kept per gallery item in each bank (the bank size for
        ``"full"``).
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import InvGC, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((60, 8)) + 3.0      # a narrow cone
    >>> X = pair(Q, Q + 0.3 * rng.standard_normal((60, 8)))
    >>> invgc = InvGC(adjacency="local", neighbor_fraction=0.05).fit(X[:40])
    >>> invgc.n_neighbors_gallery_
    2
    >>> Xt = invgc.transform(X[40:])
    >>> Xt.shape, bool(np.all(Xt[:, :8] == X[40:, :8]))
    ((20, 16), True)
    >>> np.round(np.linalg.norm(Xt[:, 8:], axis=1)[:3], 6)
    array([1., 1., 1.])
    """

    _parameter_constraints = {
        **PairedTransformer._parameter_constraints,
        "r_gallery": [Interval(numbers.Real, 0, None, closed="left"), None],
        "r_query": [Interval(numbers.Real, 0, None, closed="left"), None],
        "adjacency": [StrOptions(set(ADJACENCIES))],
        "neighbor_fraction": _NEIGHBOR_FRACTION,
        "rounding": [StrOptions({"ceil", "floor"})],
        "n_jobs": N_JOBS,
        "working_memory": WORKING_MEMORY,
        "k": deprecated(_NEIGHBOR_FRACTION),
    }
    _renamed_params = {"k": "neighbor_fraction"}

    @keyword_only("r_query", "adjacency", "k")
    def __init__(self, r_gallery=None, *, r_query=None, adjacency="full", neighbor_fraction=0.01,
                 rounding="ceil", n_query_features=None, direction="q2g", n_jobs=None,
                 working_memory=None, k=DEPRECATED):
        self.r_gallery = r_gallery
        self.r_query = r_query
        self.adjacency = adjacency
        self.neighbor_fraction = neighbor_fraction
        self.k = k
        self.rounding = rounding
        self.n_query_features = n_query_features
        self.direction = direction
        self.n_jobs = n_jobs
        self.working_memory = working_memory

    # ------------------------------------------------------------ fit
    def _fit_pairs(self, X, y):
        fraction = value_of(self, "neighbor_fraction")
        if self.adjacency == "avgpool" and float(fraction) not in AVGPOOL_RATIOS:
            raise ValueError(
                f"neighbor_fraction={fraction!r}: adjacency='avgpool' is the paper's AvgPool "
                f"baseline with pooling ratios {AVGPOOL_RATIOS}; pass one of them."
            )
        self.query_bank_, self.gallery_bank_ = _check_banks(self._split(X, y))
        default_g, default_q = DEFAULT_R[self.adjacency]
        self.r_gallery_ = float(default_g if self.r_gallery is None else self.r_gallery)
        self.r_query_ = float(default_q if self.r_query is None else self.r_query)
        if self.adjacency == "full":
            self.n_neighbors_gallery_ = self.gallery_bank_.shape[0]
            self.n_neighbors_query_ = self.query_bank_.shape[0]
            # Bank moments in float64: BᵀB/|B| and mean(B) (see the class
            # docstring); both are d×d or d, independent of the bank size.
            self._moments_ = [_moments(B) for B in (self.gallery_bank_, self.query_bank_)]
        else:
            self.n_neighbors_gallery_ = n_neighbors_for(
                fraction, self.gallery_bank_.shape[0], self.rounding
            )
            self.n_neighbors_query_ = n_neighbors_for(
                fraction, self.query_bank_.shape[0], self.rounding
            )
        return self

    # ------------------------------------------------------ transform
    def _gallery_columns(self, n_features):
        cut = resolve_split(n_features, self.n_query_features)
        return slice(cut, None) if self.direction == "q2g" else slice(0, cut)

    def _transform_pairs(self, X):
        X_new = get_backend(X=X).copy(X)
        cols = self._gallery_columns(X.shape[1])
        X_new[:, cols] = self.transform_gallery(X[:, cols])
        return X_new

    def _feature_names_out(self, input_features):
        return input_features  # the gallery half changes in place

    @property
    def _separable_half(self):
        # The full adjacency subtracts a mean over the whole gallery.
        return self.adjacency != "full"

    def _transform_half(self, A, half):
        """Serving (:func:`skxmr.index`): convolve the gallery half, keep the other."""
        gallery_half = "right" if self.direction == "q2g" else "left"
        return self.transform_gallery(A) if half == gallery_half else check_matrix(A, "queries")

    def transform_gallery(self, gallery):
        """Convolve a bare gallery matrix against the fitted banks.

        Parameters
        ----------
        gallery : array-like of shape (n_gallery, d)
            Gallery embeddings (rows are L2-normalised first). Duplicate rows
            are one item (they count once in the full adjacency's mean).

        Returns
        -------
        gallery_new : ndarray of shape (n_gallery, d)
            Unit-norm convolved gallery, float32 for float32 input.
        """
        check_is_fitted(self)
        G = check_matrix(gallery, "gallery")
        get_backend(gallery=G, **{"the fitted banks": self.gallery_bank_})
        check_same_width(self.gallery_bank_, G, "the fitted banks", "gallery")
        G_unique, inverse = unique_rows(G)
        G_unique = l2_normalize(G_unique, "gallery")
        return get_backend(gallery=G_unique).take_rows(self._convolve(G_unique), inverse)

    def _chunk_budget(self):
        if self.working_memory is not None or self.adjacency == "full":
            return self.working_memory
        return min(get_config()["working_memory"], LOCAL_CHUNK_MIB)

    def _convolve(self, G):
        nx = get_backend(gallery=G)
        d = G.shape[1]
        itemsize = np.dtype(dtype_name(G)).itemsize
        rs = (self.r_gallery_, self.r_query_)
        if self.adjacency == "full":
            # W̄ = mean over all (gallery, bank) pairs = mean(G)·mean(B).
            g_mean = nx.mean(astype(G, "float64"), axis=0)
            terms = [
                (astype(M, G.dtype), astype(nx.sum(g_mean * b_mean) * b_mean, G.dtype))
                for M, b_mean in self._moments_
            ]

            updates = (_full_updates, terms)
            bytes_per_row = 6 * d * itemsize
        else:
            banks = [astype(B, G.dtype) for B in (self.gallery_bank_, self.query_bank_)]
            ms = (self.n_neighbors_gallery_, self.n_neighbors_query_)
            binary = self.adjacency == "avgpool"

            updates = (_local_updates, banks, ms, binary)

            # Per bank in turn, one chunk row holds a row of W, at most one
            # partitioned copy of it (the plain path of _topk.row_kth_largest; the
            # subsample path needs less), two boolean masks, m kept entries
            # with their int64 indices (twice: flatnonzero, then CSR), the
            # dense adjacency when neighbourhoods are dense, and d-vectors.
            # Tensors gather the m neighbours' bank rows instead (m·d more).
            s = itemsize
            gathered = 0 if isinstance(G, np.ndarray) else d
            bytes_per_row = 4 * d * s + max(
                n_b * (2 * s + 2)
                + m * (s + 24 + gathered * s)
                + (n_b * s if _dense_neighbourhoods(m, n_b) else 0)
                for n_b, m in zip((B.shape[0] for B in banks), ms)
            )

        parts = map_row_chunks(
            _convolve_chunk,
            G.shape[0],
            bytes_per_row,
            args=(G, rs, updates),
            n_jobs=self.n_jobs,
            working_memory=self._chunk_budget(),
        )
        return nx.concatenate(parts) if len(parts) > 1 else parts[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True  # torch stays torch (module docstring)
        return tags


def _full_updates(G, terms):
    """The full adjacency's update of each bank: ``G M - shift``."""
    return [get_backend(gallery=G).dot(G, M) - shift for M, shift in terms]


def _local_updates(G, banks, ms, binary):
    """The local adjacencies' updates (the ``m`` nearest bank items)."""
    return [_local_update(G, B, m, binary) for B, m in zip(banks, ms)]


def _convolve_chunk(rows, G, rs, updates):
    """The convolved gallery rows ``rows`` (a chunk task of InvGC)."""
    Gr = G[rows, ...]
    G_B = [
        l2_normalize(Gr - r * u, "the convolved gallery (is r too large?)")
        for r, u in zip(rs, updates[0](Gr, *updates[1:]))
    ]
    out = l2_normalize(0.5 * G_B[0] + 0.5 * G_B[1], "the convolved gallery")
    return astype(out, G.dtype)


register_method(
    "InvGC",
    lambda direction="q2g": make_pipeline(
        InvGC(direction=direction), CosineSimilarity(direction=direction)
    ),
    family="graph",
    description="inverse graph convolution of the gallery against both banks",
    # R@1 is flat in r_gallery and peaks in r_query (see InvGC): tune r_query.
    grid={"invgc__r_query": [0.5, 1.0, 2.0, 4.0]},
)
register_method(
    "InvGC+LocalAdj",
    lambda direction="q2g": make_pipeline(
        InvGC(adjacency="local", direction=direction), CosineSimilarity(direction=direction)
    ),
    family="graph",
    description="InvGC with the top-1% LocalAdj adjacency",
    grid={"invgc__r_query": [0.25, 0.5, 0.75, 1.0]},
)

__all__ = ["InvGC"]
