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
    ef_construction : int, default=80
    """

    def __init__(self, gallery, scale, offsets, *, n_links=32, ef_construction=80):
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
