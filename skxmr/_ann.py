"""Approximate candidate generation with faiss for galleries too large to scan.

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

faiss is optional (``pip install "skxmr[ann]"``).
"""

import numpy as np


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "approximate search needs faiss: pip install 'skxmr[ann]' (faiss-cpu)"
        ) from exc
    return faiss


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
