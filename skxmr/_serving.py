"""Serving: a fitted estimator bound to a fixed gallery.

:class:`GalleryIndex` holds the gallery and the method's per-gallery
statistics (its state, computed once by :func:`index` or
:meth:`RetrievalEstimator.index`); :func:`index` binds a plain estimator or a
Pipeline. Approximate candidates come from a faiss HNSW graph over the
gallery (:class:`LinearCandidates`) with the method's offsets folded in, or
under plain cosine for the methods that re-score candidates; either way
they are re-scored exactly.

A method whose scores are *linear in the gallery*,
``score(q, g) = scale · qᵀg − offset(g)``, is a maximum-inner-product search
over the augmented vectors ``[scale·g, −offset(g)]`` with queries ``[q, 1]``:
the normalisation is folded into the vectors, so candidates are generated
under the method's own scores, not under plain cosine. The inner-product
search is reduced to a nearest-neighbour search by the standard augmentation
(Bachrach et al., 2014): ``v' = [v, sqrt(Φ² − ‖v‖²)]``, ``q' = [q, 0]`` with
``Φ = max ‖v‖``, so ``argmax qᵀv = argmin ‖q' − v'‖`` exactly, and a faiss
HNSW graph searches it. Candidates are then re-scored exactly.

How well that works depends on the data, not on the folding. For inverted
softmax, DBNorm, SN and DBSN the offsets are almost exactly linear in the
gallery, ``offset(g) ≈ wᵀg`` with ``w`` close to the bank queries' mean (the
hub direction; on ``make_retrieval_problem`` data a least-squares fit leaves
1 % of the offsets' spread), so the methods score ``(q − w)ᵀg``: they remove
the component every query shares. What is left has less neighbourhood
structure: beyond the planted match, the normalised top 10 are extremes of
unstructured noise (the 10th score sits 3.7 standard deviations above the
mean at 100k items, against 4.3 for cosine), which no graph finds without
visiting a large share of the gallery. Other exact foldings (inner-product
HNSW on ``[scale·g, −offset]``, other λ, a centred gallery, ``w`` moved into
the query) and IVF lists measured no better (``benchmarks/bench_scale.py``
and the scaling page); a denser graph (``ef_construction``) and a wider beam
(``n_candidates``) are what raise recall.

Methods whose scores are not of that form but can score a candidate set
exactly -- CSLS, QB-Norm, local scaling, mutual proximity and distribution
normalisation -- take their candidates from a graph under plain cosine and
re-score them with the method's own score (the estimator's
``_score_candidates`` hook): each candidate's statistics are the stored
per-gallery ones, and the query's own term (CSLS's ``r(q)``, a local-scaling
radius, the mutual-proximity distribution of ``q``, DN's ``½ qᵀμ_g``)
needs only the fitted banks, so every returned score is the exact score of
that item. QB-Norm's gate reads the query's top-1 cosine item among its
candidates: the true one whenever the candidate set holds it. What is
approximate is the candidate set: an item that the method ranks in the top
``k`` but that is not among the query's ``n_candidates`` best by cosine
(or that the graph misses) is not returned.

faiss is optional (``pip install "skxmr[ann]"``).
"""

import copy
import warnings

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .utils._backend import astype, describe, dtype_name, get_backend
from .utils._chunking import concat_rows, map_row_chunks
from .utils._compat import optional_import
from .utils._topk import sorted_top_k
from .utils._validation import check_bool, check_n_neighbors, result_dtype


def _import_faiss():
    return optional_import("faiss", "ann", "approximate search")


class LinearCandidates:
    """HNSW index over the augmented gallery of a linear-form method.

    Parameters
    ----------
    gallery : ndarray of shape (n_gallery, d)
    scale : float
    offsets : ndarray of shape (n_gallery,)
    n_links : int, default=32
        HNSW graph degree ``M``.
    ef_construction : int, default=200
        Build beam. 200 rather than faiss' usual 40-80: on the normalised
        methods' noise-like top 10 the graph quality matters (recall@10 at
        30k items, 300 candidates: 0.89 with 80, 0.94 with 200).
    """

    def __init__(self, gallery, scale, offsets, *, n_links=32, ef_construction=200):
        faiss = _import_faiss()
        # A constant offset changes no ranking: centring keeps the extra
        # coordinates small, so the graph's geometry stays that of the gallery.
        offsets = np.asarray(offsets, dtype=np.float64)
        offsets = offsets - offsets.mean()
        # The offset enters as (λ)·(−offset/λ): the product is exact for any
        # λ; λ = sqrt(std) gives the query's and the items' extra coordinate
        # the same spread, so queries do not sit off the items' manifold.
        self._lam = float(np.sqrt(offsets.std())) or 1.0
        V = np.hstack([scale * gallery, -offsets[:, None] / self._lam]).astype(np.float32)
        sq = np.einsum("ij,ij->i", V, V, dtype=np.float64)
        extra = np.sqrt(np.maximum(sq.max() - sq, 0.0)).astype(np.float32)
        self._index = faiss.IndexHNSWFlat(V.shape[1] + 1, int(n_links))
        self._index.hnsw.efConstruction = int(ef_construction)
        self._index.add(np.ascontiguousarray(np.hstack([V, extra[:, None]])))

    def __getstate__(self):
        # A faiss index is a C++ object: it travels as faiss' own bytes.
        state = dict(self.__dict__)
        state["_index"] = _import_faiss().serialize_index(self._index)
        return state

    def __setstate__(self, state):
        state["_index"] = _import_faiss().deserialize_index(state["_index"])
        self.__dict__.update(state)

    def search(self, queries, n_candidates):
        """Candidate gallery ids of each query, shape (n_queries, n_candidates)."""
        Q = np.hstack(
            [queries, np.full((len(queries), 1), self._lam), np.zeros((len(queries), 1))]
        ).astype(np.float32)
        # HNSW's recall of the true top n_candidates needs a search beam a few
        # times wider (measured in benchmarks/bench_scale.py --approximate).
        self._index.hnsw.efSearch = max(4 * int(n_candidates), 64)
        _, ids = self._index.search(np.ascontiguousarray(Q), int(n_candidates))
        return ids


def _top_k_chunk(rows, Q, scorer, k):
    """Exact best ``k`` of the query rows ``rows``, best first (ties: lower
    index); a chunk task."""
    return sorted_top_k(scorer(Q[rows, ...]), k)


def _candidate_top_k_chunk(rows, Q, candidates, estimator, G, state, n_cand, k, scorer):
    """Best ``k`` of the query rows ``rows`` among their ``n_cand`` graph
    candidates, re-scored exactly by the estimator; a chunk task."""
    Qr = astype(Q[rows], scorer.dtype)
    ids = candidates.search(Qr, n_cand)
    found = ids >= 0  # faiss pads with -1 (after the found ones) when it finds fewer
    # The padding is filled with the row's best candidate, so that a method
    # whose per-query term reads the whole candidate row (QB-Norm's top-1)
    # sees only real items; the duplicates are masked out below.
    safe = np.where(found, ids, np.maximum(ids[:, :1], 0))
    S = estimator._score_candidates(Qr, G, state, safe)
    S = np.where(found, S, -np.inf).astype(scorer.dtype, copy=False)
    order = np.lexsort((safe, -S), axis=1)[:, :k]
    scores, idx = np.take_along_axis(S, order, 1), np.take_along_axis(safe, order, 1)
    # Rows where the graph found fewer than k items (e.g. a gallery of
    # duplicates) are scored exactly instead of padded.
    short = np.flatnonzero(found.sum(axis=1) < k)
    if short.size:
        scores[short], idx[short] = sorted_top_k(scorer(Qr[short]), k)
    return scores, idx


def _check_n_candidates(n_candidates, approximate):
    if n_candidates is None:
        return None
    if isinstance(n_candidates, (bool, np.bool_)) or not isinstance(
            n_candidates, (int, np.integer)):
        raise TypeError(f"n_candidates must be an integer, got {type(n_candidates).__name__}.")
    if n_candidates < 1:
        raise ValueError(
            f"n_candidates={n_candidates} must be a positive number of candidates per "
            "query (more than the gallery holds means the whole gallery)."
        )
    if not approximate:
        raise ValueError(
            "n_candidates applies to approximate search only: pass approximate=True, "
            "or leave n_candidates=None for exact search."
        )
    return int(n_candidates)


class GalleryIndex:
    """A fitted score estimator bound to a fixed gallery, for serving.

    The per-gallery statistics are computed once at construction; scoring a
    batch of queries then costs the query × gallery product plus the
    method's per-row work, in memory-bounded chunks.

    With ``approximate=True``, :meth:`kneighbors` takes ``n_candidates``
    per query from a faiss HNSW graph and re-scores them exactly;
    :meth:`score` stays exact. Methods whose scores are
    ``scale · qᵀg − offset(g)`` (cosine, inverted softmax, SN, DBSN, DBNorm,
    NNN) search a graph with their offsets folded in; CSLS, QB-Norm, local
    scaling, mutual proximity and distribution normalisation search under
    cosine and re-score each candidate with their own score. The returned
    scores are exact (the entries of :meth:`score` for those items; for
    QB-Norm when the candidates hold the query's top-1 cosine item, which
    decides its gate); the candidate set is the approximation: the top-k
    can miss an item outside a query's candidates.

    Parameters
    ----------
    estimator : RetrievalEstimator
        A fitted score estimator. The index keeps a snapshot of it (a
        shallow copy, sharing its arrays): refitting the estimator or
        setting its parameters afterwards does not change the index.
    gallery : array-like of shape (n_gallery, d)
        The gallery to serve.
    approximate : bool, default=False
        Build the faiss candidate graph (needs ``skxmr[ann]``). Methods
        with neither form (e.g. the calibration estimators) raise
        ``ValueError``.
    n_candidates : int, default=None
        Candidates per query for approximate search (at least
        ``n_neighbors`` are taken, at most the gallery); only with
        ``approximate=True``. ``None`` means ``max(30 * n_neighbors, 300)``.
        Measured recall@10 against exact search at 10⁵ items for each
        method and several values: the scaling page
        (``benchmarks/bench_scale.py --candidates``).

    Attributes
    ----------
    gallery_ : ndarray of shape (n_gallery, d)
        The L2-normalised gallery.
    state_ : dict
        The method's per-gallery statistics.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import InvertedSoftmax, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((20, 4)); G = Q + 0.3 * rng.standard_normal((20, 4))
    >>> index = InvertedSoftmax().fit(pair(Q, G)).index(G)   # statistics once
    >>> scores, ids = index.kneighbors(Q[:2], n_neighbors=3)
    >>> ids.shape, index.n_gallery
    ((2, 3), 20)
    """

    def __init__(self, estimator, gallery, *, approximate=False, n_candidates=None):
        check_is_fitted(estimator)
        # A snapshot: scoring reads the estimator's parameters and banks (CSLS
        # its gallery bank, every method its strength), so an index must not
        # change when the estimator is refit or its parameters are set. fit
        # and set_params rebind attributes, never write into the arrays, so
        # a shallow copy shares the arrays and costs no memory.
        self.estimator = copy.copy(estimator)
        self.approximate = check_bool(approximate, "approximate")
        self.n_candidates = _check_n_candidates(n_candidates, self.approximate)
        self.gallery_ = estimator._check_items(gallery, "gallery")
        self.state_ = estimator._prepare_gallery(self.gallery_)
        self._build_candidates()

    def _build_candidates(self):
        self._candidates = None
        self._scorers = {}  # per output dtype; rebuilt when the gallery changes
        if not self.approximate:
            return
        if not isinstance(self.gallery_, np.ndarray):
            raise ValueError(
                "approximate=True builds a faiss graph, which needs numpy arrays; "
                f"the gallery is on {describe(self.gallery_)}."
            )
        est = self.estimator
        form = (1.0, None) if est._candidate_search == "cosine" else est._linear_form(
            self.gallery_, self.state_)
        if form is None:
            raise ValueError(
                f"approximate=True needs scores linear in the gallery "
                f"(scale * q.g - offset(g)) or an exact re-scoring of candidates; "
                f"{type(est).__name__}'s have neither."
            )
        scale, offsets = form
        self._candidates = LinearCandidates(
            self.gallery_, scale, np.zeros(self.n_gallery) if offsets is None else offsets)

    def __getstate__(self):
        # The per-dtype scorers are a cache (they hold copies of the
        # gallery): they are rebuilt on the first query after loading.
        state = dict(self.__dict__)
        state["_scorers"] = {}
        return state

    def __repr__(self):
        steps = "".join(f"{type(step).__name__} -> " for step in self._steps)
        mode = (f", approximate=True, n_candidates={self.n_candidates}"
                if self.approximate else "")
        return (f"GalleryIndex({steps}{type(self.estimator).__name__}, "
                f"n_gallery={self.n_gallery}, n_features={self.gallery_.shape[1]}, "
                f"dtype={dtype_name(self.gallery_)}{mode})")

    @property
    def n_gallery(self):
        """Number of gallery items bound."""
        return self.gallery_.shape[0]

    # Set by skxmr.index for a Pipeline: its transformer steps (snapshots),
    # applied to incoming queries (their half) and to added gallery rows.
    _steps = ()
    _halves = ("left", "right")  # (querying half, ranked half) of the pairs

    def _queries(self, queries):
        for step in self._steps:
            queries = step._transform_half(queries, self._halves[0])
        Q = self.estimator._check_items(queries, "queries")
        get_backend(queries=Q, **{"the index's gallery": self.gallery_})
        return Q, result_dtype(Q, self.gallery_)

    def _scorer(self, dtype):
        key = str(dtype)
        if key not in self._scorers:
            self._scorers[key] = self.estimator._row_scorer(self.gallery_, self.state_, dtype)
        return self._scorers[key]

    def score(self, queries):
        """Normalised scores of ``queries`` against the bound gallery.

        Parameters
        ----------
        queries : array-like of shape (n_queries, d)

        Returns
        -------
        scores : ndarray of shape (n_queries, n_gallery)
        """
        Q, dtype = self._queries(queries)
        return self.estimator._score_rows(self._scorer(dtype), Q, self.n_gallery)

    def kneighbors(self, queries, n_neighbors=10, return_distance=True, *,
                   return_scores="deprecated"):
        """The ``n_neighbors`` best gallery items of each query, best first.

        Parameters
        ----------
        queries : array-like of shape (n_queries, d)
        n_neighbors : int, default=10
        return_distance : bool, default=True
            Whether to return the scores too (scikit-learn's name for the
            flag of ``kneighbors``; the values are the method's scores,
            higher is better, not distances).
        return_scores : bool
            Deprecated alias of ``return_distance`` (removed in the next
            release).

        Returns
        -------
        scores : ndarray of shape (n_queries, n_neighbors)
            Only when ``return_distance``.
        indices : ndarray of shape (n_queries, n_neighbors)
            Gallery row indices, best first (ties by lower index).
        """
        if not (isinstance(return_scores, str) and return_scores == "deprecated"):
            warnings.warn(
                "kneighbors(return_scores=...) is deprecated and will be removed in "
                "the next release; use return_distance=... (scikit-learn's name).",
                FutureWarning, stacklevel=2,
            )
            return_distance = return_scores
        return_scores = check_bool(return_distance, "return_distance")
        k = check_n_neighbors(n_neighbors, self.n_gallery, "n_neighbors")
        Q, dtype = self._queries(queries)
        if self._candidates is not None:
            scores, indices = self._approximate_top_k(Q, k, dtype)
            return (scores, indices) if return_scores else indices
        parts = self.estimator._map_queries(_top_k_chunk, Q, self.n_gallery,
                                            (self._scorer(dtype), k))
        scores = concat_rows([p[0] for p in parts])
        indices = concat_rows([p[1] for p in parts])
        return (scores, indices) if return_scores else indices

    def _approximate_top_k(self, Q, k, dtype):
        # At least k candidates, so that every row has k neighbours to return.
        n_cand = min(max(self.n_candidates or max(30 * k, 300), k), self.n_gallery)
        G, est = self.gallery_, self.estimator
        # Per query row: the gathered candidate rows and their per-item
        # statistics, and the method's work on an n_cand-wide row.
        item_bytes = sum(v.dtype.itemsize * int(np.prod(v.shape[1:])) for v in self.state_.values())
        per_row = n_cand * (8 * (G.shape[1] + 2) + item_bytes) + est._bytes_per_query_row(n_cand)
        parts = map_row_chunks(
            _candidate_top_k_chunk, Q.shape[0], per_row,
            args=(Q, self._candidates, est, G, self.state_, n_cand, k, self._scorer(dtype)),
            n_jobs=getattr(est, "n_jobs", None),
            working_memory=getattr(est, "working_memory", None),
        )
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def kneighbors_graph(self, queries, n_neighbors=10, mode="connectivity"):
        """The query × gallery k-nearest-neighbour graph, as scikit-learn's.

        Parameters
        ----------
        queries : array-like of shape (n_queries, d)
        n_neighbors : int, default=10
        mode : {"connectivity", "distance"}, default="connectivity"
            ``"connectivity"``: ones. ``"distance"``: ``s_max - score``,
            with ``s_max`` the largest score returned: non-negative,
            smaller is closer, in the ranking of the method's scores
            (scores are similarities, and a normalised score has no
            natural zero; for cosine ``1 - score`` differs by a constant).

        Returns
        -------
        graph : scipy.sparse.csr_matrix of shape (n_queries, n_gallery)
            Row ``i`` holds the ``n_neighbors`` best items of query ``i``
            (explicit entries, zeros included), as
            :meth:`sklearn.neighbors.NearestNeighbors.kneighbors_graph`.

        Examples
        --------
        >>> import numpy as np
        >>> from skxmr import CosineSimilarity, pair
        >>> G = np.eye(3); est = CosineSimilarity().fit(pair(G, G))
        >>> est.index(G).kneighbors_graph(G[:2], n_neighbors=1).toarray()
        array([[1., 0., 0.],
               [0., 1., 0.]])
        """
        import scipy.sparse as sp

        if mode not in ("connectivity", "distance"):
            raise ValueError(f"mode must be 'connectivity' or 'distance', got {mode!r}.")
        scores, ids = self.kneighbors(queries, n_neighbors)
        scores, ids = np.asarray(get_backend(s=scores).to_numpy(scores)), np.asarray(
            get_backend(s=ids).to_numpy(ids))
        n_q, k = ids.shape
        data = (np.ones(n_q * k) if mode == "connectivity"
                else (scores.max() - scores).ravel().astype(np.float64))
        return sp.csr_matrix((data, ids.ravel(), np.arange(0, n_q * k + 1, k)),
                             shape=(n_q, self.n_gallery))

    def add(self, gallery):
        """Append gallery items, updating the statistics where the method allows.

        Parameters
        ----------
        gallery : array-like of shape (n_new, d)

        Returns
        -------
        self : GalleryIndex
        """
        est = self.estimator
        if not est._separable_gallery:
            raise ValueError(
                f"{type(est).__name__}'s gallery statistics depend jointly on all "
                "gallery items, so they cannot be extended incrementally; build "
                "a new index with estimator.index(np.vstack([old, new]))."
            )
        for step in self._steps:
            if not step._separable_half:
                raise ValueError(
                    f"{type(step).__name__} transforms the gallery jointly (e.g. InvGC's "
                    "full adjacency subtracts a mean over the whole gallery), so new "
                    "items cannot be added; build skxmr.index(pipeline, all_items)."
                )
            gallery = step._transform_half(gallery, self._halves[1])
        G = est._check_items(gallery, "gallery")
        nx = get_backend(**{"the index's gallery": self.gallery_, "gallery": G})
        G = astype(G, self.gallery_.dtype)
        new = est._prepare_gallery(G)
        self.state_ = {
            key: nx.concatenate([value, new[key]]) for key, value in self.state_.items()
        }
        self.gallery_ = nx.concatenate([self.gallery_, G], axis=0)
        self._build_candidates()  # the augmentation's norm bound may change
        return self


def index(estimator, gallery, *, approximate=False, n_candidates=None):
    """Bind a fitted estimator or Pipeline to a fixed gallery, for serving.

    For a plain score estimator this is ``estimator.index(gallery)``. For a
    Pipeline (e.g. the ``best_estimator_`` of a grid search, or a pipeline
    saved by ``skxmr benchmark --save-best``) every transformer step maps the
    gallery first -- InvGC convolves it against the banks, an alignment
    projects it into the shared space -- and the last step binds the
    result; incoming queries pass through the steps' query-side transforms
    (an alignment's query projection; InvGC leaves queries as they are).
    Calling ``pipeline[-1].index(gallery)`` instead would skip those steps:
    the last step was fitted on transformed rows and would score raw ones.

    Parameters
    ----------
    estimator : RetrievalEstimator or Pipeline ending in one
        Fitted.
    gallery : array-like of shape (n_gallery, d)
        The raw gallery (the ranked half's columns, as in ``X``).
    approximate : bool, default=False
        See :class:`GalleryIndex`.
    n_candidates : int, default=None
        See :class:`GalleryIndex`.

    Returns
    -------
    index : GalleryIndex
        Its ``score`` and ``kneighbors`` take raw queries.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> import skxmr
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((40, 8))
    >>> G = Q + 0.3 * rng.standard_normal((40, 8))
    >>> pipe = make_pipeline(skxmr.InvGC(), skxmr.SinkhornNormalizer(temperature=0.05))
    >>> pipe.fit(skxmr.pair(Q[:30], G[:30]))  # doctest: +ELLIPSIS
    Pipeline(...)
    >>> idx = skxmr.index(pipe, G[30:])
    >>> np.allclose(idx.score(Q[30:]), pipe.decision_function(skxmr.pair(Q[30:], G[30:])))
    True
    """
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline):
        return estimator.index(gallery, approximate=approximate, n_candidates=n_candidates)
    steps = [step for _, step in estimator.steps[:-1] if step not in (None, "passthrough")]
    final = estimator.steps[-1][1]
    if isinstance(final, Pipeline):
        raise TypeError("skxmr.index takes a flat Pipeline; nest no Pipeline as its last step.")
    halves = ("left", "right") if final.direction == "q2g" else ("right", "left")
    for step in steps:
        check_is_fitted(step)
        gallery = step._transform_half(gallery, halves[1])
    bound = final.index(gallery, approximate=approximate, n_candidates=n_candidates)
    bound._steps = tuple(copy.copy(step) for step in steps)
    bound._halves = halves
    return bound
