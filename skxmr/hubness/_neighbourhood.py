"""Neighbourhood-based hubness reduction: CSLS."""

from ..utils._backend import astype, get_backend
from .._registry import register_method
from ..utils._params import N_NEIGHBORS, STRENGTH_GRID, keyword_only, param_doc
from ..utils._validation import check_n_neighbors
from ._base import HubnessEstimator, ItemwiseScores, hubness_doc
from ._kernels import _mean_top_k


# ------------------------------------------------------------------- CSLS
@hubness_doc(n_neighbors=param_doc("n_neighbors", 10, "At most the size of each bank "
                                    "(checked in ``fit``)."))
class CSLS(ItemwiseScores, HubnessEstimator):
    """Cross-domain similarity local scaling (Conneau et al., 2018).

    With ``r_B(g)`` the mean of the ``k`` largest similarities of gallery item
    ``g`` to the query bank and ``r(q)`` the mean of the ``k`` largest
    similarities of query ``q`` to the gallery bank, CSLS is
    ``2S(q, g) - r_B(g) - r(q)``. The estimator returns

    .. math::  S + \\alpha\\,(S - r_B(g) - r(q)),

    which is plain cosine for ``α = 0`` and exactly the paper's CSLS for
    ``α = 1``. ``r(q)`` is constant along a query's row, so only ``r_B(g)``
    changes rankings; it is kept so that ``α = 1`` gives the paper's values.
    ``r(q)`` needs only the gallery bank, so approximate serving
    (``index(G, approximate=True)``) takes candidates by cosine and scores
    each one exactly (as kiez re-ranks candidates); only the candidate set
    is approximate.

    Parameters
    ----------
    {n_neighbors}
    {strength}
    {common}

    Attributes
    ----------
    {attrs}

    See Also
    --------
    csls_scores : The same on explicit matrices.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import CSLS, pair
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((20, 4))
    >>> X = pair(Q, Q + 0.3 * rng.standard_normal((20, 4)))
    >>> est = CSLS(n_neighbors=3).fit(X[:10])
    >>> est.decision_function(X[10:]).shape
    (10, 10)
    """

    _parameter_constraints = {**HubnessEstimator._parameter_constraints, "n_neighbors": N_NEIGHBORS}

    @keyword_only("strength")
    def __init__(self, n_neighbors=10, *, strength=1.0, n_query_features=None, direction="q2g",
                 n_jobs=None):
        self.n_neighbors = n_neighbors
        super().__init__(strength=strength, n_query_features=n_query_features,
                         direction=direction, n_jobs=n_jobs)

    def _fit_banks(self, query_bank, gallery_bank):
        super()._fit_banks(query_bank, gallery_bank)
        check_n_neighbors(self.n_neighbors, query_bank.shape[0], "n_neighbors", "query bank items")
        check_n_neighbors(
            self.n_neighbors, gallery_bank.shape[0], "n_neighbors", "gallery bank items"
        )

    def _prepare_gallery(self, gallery):
        return {"r": _mean_top_k(gallery, self.query_bank_, self.n_neighbors, self.n_jobs)}

    def _from_similarities(self, queries, S, items):
        """``S + α(S - r_B(g) - r(q))`` in place in S's dtype; ``r(q)``
        needs only the gallery bank (see :class:`ItemwiseScores`)."""
        a = self.strength
        # queries is already one chunk of a parallel map: no nested workers
        r_q = _mean_top_k(queries, self.gallery_bank_, self.n_neighbors, n_jobs=1)
        S *= 1.0 + a
        S -= astype(a * items["r"], S.dtype)
        S -= astype(a * r_q, S.dtype)[:, None]
        return S


def csls_scores(queries, gallery, query_bank, gallery_bank, *, n_neighbors=10, strength=1.0):
    """CSLS scores ``S + α(S - r_B(g) - r(q))`` on explicit matrices.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    gallery : array-like of shape (n_gallery, d)
    query_bank : array-like of shape (n_bank_queries, d)
    gallery_bank : array-like of shape (n_bank_gallery, d)
    n_neighbors : int, default=10
    strength : float in [0, 1], default=1.0

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)

    See Also
    --------
    CSLS : Equations and parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness import csls_scores
    >>> E = np.eye(2)
    >>> csls_scores(E, E, E, E, n_neighbors=2)  # r = 0.5 everywhere: 2S - 1
    array([[ 1., -1.],
           [-1.,  1.]])
    """
    est = CSLS(n_neighbors=n_neighbors, strength=strength)
    return est._two_view_scores(queries, gallery, query_bank, gallery_bank)



register_method(
    "CSLS",
    lambda direction="q2g": CSLS(direction=direction),
    family="hubness",
    description="cross-domain similarity local scaling (k=10)",
    grid={"n_neighbors": [5, 10, 20], "strength": STRENGTH_GRID},
)
