"""Cosine similarity: the two-view function and the reference estimator."""

from .utils._backend import astype, get_backend
from ._base import RetrievalEstimator
from .utils._docstrings import BANK_ATTRS_DOC, fill_doc
from .utils._params import N_JOBS, PAIR_JOBS_DOC
from ._registry import register_method
from .utils._validation import check_matrix, check_same_width, l2_normalize, result_dtype


def cosine_scores(queries, gallery, *, normalize=True):
    """Query × gallery cosine similarity, keeping float32 as float32.

    Parameters
    ----------
    queries : array-like of shape (n_queries, d)
    gallery : array-like of shape (n_gallery, d)
    normalize : bool, default=True
        L2-normalise the rows first; ``False`` gives plain inner products.

    Returns
    -------
    scores : ndarray of shape (n_queries, n_gallery)
        float32 if both inputs are; under array API dispatch a tensor of
        the inputs' namespace and device.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.similarity import cosine_scores
    >>> cosine_scores(np.array([[3., 4.]]), np.array([[1., 0.], [0., 2.]]))
    array([[0.6, 0.8]])
    """
    Q = check_matrix(queries, "queries")
    G = check_matrix(gallery, "gallery")
    nx = get_backend(queries=Q, gallery=G)
    check_same_width(Q, G, "queries", "gallery")
    dtype = result_dtype(Q, G)
    if normalize:
        Q, G = l2_normalize(Q, "queries"), l2_normalize(G, "gallery")
    return nx.dot(astype(Q, dtype), astype(G, dtype).T)


@fill_doc(attrs=BANK_ATTRS_DOC, common=PAIR_JOBS_DOC)
class CosineSimilarity(RetrievalEstimator):
    """Plain cosine similarity of the L2-normalised halves: the reference row.

    Parameters
    ----------
    {common}

    Attributes
    ----------
    {attrs}

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import CosineSimilarity, pair
    >>> Q = np.array([[1., 0.], [0., 1.], [1., 1.]])
    >>> X = pair(Q, Q + 0.1)
    >>> est = CosineSimilarity().fit(X)
    >>> est.decision_function(X).shape
    (3, 3)
    >>> est.score(X)
    100.0
    """

    _array_api = True
    _parameter_constraints = {
        **RetrievalEstimator._parameter_constraints,
        "n_jobs": N_JOBS,
    }

    def __init__(self, *, n_query_features=None, direction="q2g", n_jobs=None):
        self.n_query_features = n_query_features
        self.direction = direction
        self.n_jobs = n_jobs

    def _score_queries(self, queries, gallery, state):
        return self._linear_scores(queries, gallery, state)

    def _linear_form(self, gallery, state):
        return 1.0, None  # no offsets: the bare product


register_method(
    "Cosine",
    lambda direction="q2g": CosineSimilarity(direction=direction),
    family="baseline",
    description="plain cosine similarity of the L2-normalised embeddings",
)
