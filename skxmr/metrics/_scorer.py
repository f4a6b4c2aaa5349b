"""Retrieval metrics as scikit-learn scorers (``GridSearchCV``, ``cross_val_score``)."""

import numbers

import numpy as np
from sklearn.pipeline import Pipeline

from .._pairs import DIRECTIONS
from ._table import METRICS, OLD_NAMES, SCORER_METRICS, deprecated_name
from .ranking import TIES


def _final_step(estimator, X):
    """Push ``X`` through the transformers of (nested) pipelines."""
    while isinstance(estimator, Pipeline):
        if len(estimator) > 1:
            X = estimator[:-1].transform(X)
        estimator = estimator[-1]
    # Duck-typed (no import of the estimator base: metrics stay below it).
    if not callable(getattr(estimator, "score_pairs", None)):
        raise TypeError(
            "estimator must be a skxmr RetrievalEstimator or a Pipeline ending "
            f"in one, got {type(estimator).__name__}."
        )
    return estimator, X


def paired_scores(estimator, X, y=None):
    """Score matrix and relevance of test pairs for a fitted estimator.

    The one place that evaluates a (pipeline ending in a) score estimator on
    paired rows: earlier pipeline steps transform ``X``, the final step's
    ``n_query_features`` and ``direction`` split it once into unique items,
    and ``score_matrix`` scores them once.

    Parameters
    ----------
    estimator : RetrievalEstimator or Pipeline ending in one
        Fitted.
    X : array-like of shape (n_pairs, n_features)
        Test pairs.
    y : array-like of shape (n_pairs,), default=None
        Labels for category-level relevance; pairs define it otherwise.

    Returns
    -------
    scores : ndarray of shape (n_sources, n_targets)
    items : skxmr._pairs.PairedItems
        The unique items and their ``relevance``.
    """
    S, items, _ = _paired_scores(estimator, X, y)
    return S, items


def _paired_scores(estimator, X, y):
    final, Xt = _final_step(estimator, X)
    S, items = final.score_pairs(Xt, y)
    return S, items, final


class _RetrievalScorer:
    """Callable ``scorer(estimator, X, y=None)``; see :func:`make_retrieval_scorer`."""

    def __init__(self, metric, k, direction, ties):
        self.metric = metric
        self.k = k
        self.direction = direction
        self.ties = ties

    @property
    def greater_is_better(self):
        """Whether the underlying metric increases with quality."""
        return METRICS[self.metric].greater_is_better

    def _evaluate(self, estimator, X, y=None):
        """The metric's value (not sign-flipped) for a fitted estimator on ``X``."""
        S, items, final = _paired_scores(estimator, X, y)
        relevance = items.relevance
        if self.direction is not None and self.direction != final.direction:
            S, relevance = S.T, relevance.T.tocsr()
        return METRICS[self.metric].function(S, relevance, self.k, self.ties)

    def __call__(self, estimator, X, y=None):
        value = self._evaluate(estimator, X, y)
        return float(value if self.greater_is_better else -value)

    def __repr__(self):
        args = [f"metric={self.metric!r}"]
        if METRICS[self.metric].uses_k:
            args.append(f"k={self.k}")
        if self.direction is not None:
            args.append(f"direction={self.direction!r}")
        if self.ties != "pessimistic":
            args.append(f"ties={self.ties!r}")
        return f"make_retrieval_scorer({', '.join(args)})"


def make_retrieval_scorer(metric="recall", k=1, direction=None, ties="pessimistic"):
    """A retrieval metric as a scorer for ``GridSearchCV`` and ``cross_val_score``.

    The scorer ``scorer(estimator, X, y=None)`` takes a fitted
    :class:`skxmr.RetrievalEstimator`, or a ``Pipeline`` ending in one (its
    earlier steps transform ``X`` first), and test pairs ``X``. It splits ``X``
    once into unique sources and targets (with the estimator's
    ``n_query_features`` and ``direction``; labels ``y`` give category-level
    relevance), scores them once with ``score_matrix`` and evaluates the
    metric. Metrics where lower is better are negated (scikit-learn's
    ``greater_is_better=False`` convention), so larger is always better.

    Parameters
    ----------
    metric : {"recall", "median_rank", "mean_rank", "r_precision", \
"map_at_r", "hubness_skewness", "gini_index", "hub_occurrence", \
"antihub_rate", "robinhood_index"}, default="recall"
        A name of the metric table (the metric functions of
        :mod:`skxmr.metrics` of that name): ``"recall"``: R@k
        (:func:`recall_at_k`, percent). ``"median_rank"``, ``"mean_rank"``
        (negated). ``"r_precision"``, ``"map_at_r"`` (percent). The hubness
        measures of the k-occurrence of the ranked items (negated):
        ``"hubness_skewness"``, ``"gini_index"``, ``"hub_occurrence"``,
        ``"antihub_rate"``, ``"robinhood_index"``. The former names
        ``"skewness"``, ``"skew"``, ``"gini"`` and ``"robinhood"`` still work
        with a ``FutureWarning``.
    k : int, default=1
        Cut-off of R@k and neighbourhood size of the hubness measures
        (ignored by the other metrics). Must not exceed the number of ranked
        items of the test fold.
    direction : {"q2g", "g2q"} or None, default=None
        ``None`` evaluates in the estimator's own ``direction``. A different
        direction ranks the *same* normalised score matrix the other way (the
        transposed matrix and relevance). A normaliser fitted for ``"q2g"``
        then still carries its q2g normalisation; to normalise for g2q, set
        the estimator's ``direction="g2q"`` instead.
    ties : {"pessimistic", "average"}, default="pessimistic"
        Tie rule of the ranking metrics (see :func:`rank_of_relevant`).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> float``; it has a
        ``greater_is_better`` attribute telling the metric's own sense.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skxmr import CosineSimilarity, pair
    >>> from skxmr.metrics import make_retrieval_scorer
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((20, 4))
    >>> X = pair(Q, Q + 0.1 * rng.standard_normal((20, 4)))
    >>> est = CosineSimilarity().fit(X)
    >>> make_retrieval_scorer("recall", k=1)(est, X) == est.score(X)
    True
    >>> make_retrieval_scorer("median_rank")(est, X)   # negated MdR
    -1.0
    >>> search = GridSearchCV(
    ...     CosineSimilarity(), {"direction": ["q2g", "g2q"]},
    ...     scoring={"R@1": make_retrieval_scorer(k=1),
    ...              "R@5": make_retrieval_scorer(k=5)}, refit="R@1", cv=2,
    ... ).fit(X)
    >>> sorted(search.cv_results_)[:2]
    ['mean_fit_time', 'mean_score_time']
    """
    if isinstance(metric, str) and OLD_NAMES.get(metric) in SCORER_METRICS:
        deprecated_name(metric, OLD_NAMES[metric], "the metric")
        metric = OLD_NAMES[metric]
    if metric not in SCORER_METRICS:
        raise ValueError(f"metric must be one of {sorted(SCORER_METRICS)}, got {metric!r}.")
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer, got {type(k).__name__}.")
    if k < 1:
        raise ValueError(f"k={k} must be a positive integer.")
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"direction must be None or one of {DIRECTIONS}, got {direction!r}.")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}.")
    return _RetrievalScorer(metric, int(k), direction, ties)
