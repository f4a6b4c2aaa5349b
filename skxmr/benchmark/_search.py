"""The benchmark's grid search over ``strength``: one fit per other grid point."""

import time

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from ..model_selection import one_standard_error


def blends(estimator, grid):
    """Whether every dict of ``grid`` searches ``strength`` of ``estimator`` itself.

    Then :class:`StrengthSearch` applies (a Pipeline's step parameters,
    ``step__name``, go through ``GridSearchCV``).
    """
    return bool(grid) and "strength" in estimator.get_params(deep=False) and all(
        "strength" in g and all("__" not in k for k in g) for g in grid
    )


def _rest(point):
    """The grid point without ``strength``, hashable."""
    return tuple(sorted((k, repr(v)) for k, v in point.items() if k != "strength"))


def _fold_recalls(estimator, points, X, y, train, val):
    """R@1 on one validation fold of every grid point (module level: a joblib task).

    The other parameters are fitted once at ``strength=1``; the score matrix
    at strength ``a`` is the blend ``S0 + a (S1 - S0)`` with the fold's
    cosines ``S0``.
    """
    from ..metrics import recall_at_k
    from ..metrics._scorer import paired_scores
    from ..similarity import CosineSimilarity

    params = estimator.get_params(deep=False)
    y_tr, y_val = (None, None) if y is None else (y[train], y[val])
    cosine = CosineSimilarity(direction=params["direction"],
                              n_query_features=params.get("n_query_features"))
    S0, items = paired_scores(cosine.fit(X[train], y_tr), X[val], y_val)
    S0 = np.asarray(S0, dtype=np.float64)
    full, scores = {}, np.empty(len(points))
    for i, point in enumerate(points):
        rest = _rest(point)
        if rest not in full:
            est = clone(estimator).set_params(
                **{k: v for k, v in point.items() if k != "strength"}, strength=1.0)
            full[rest] = np.asarray(paired_scores(est.fit(X[train], y_tr), X[val], y_val)[0],
                                    dtype=np.float64)
        a = point["strength"]
        scores[i] = recall_at_k(S0 + a * (full[rest] - S0), items.relevance, 1)
    return scores


class StrengthSearch:
    """The benchmark's grid search by R@1 for grids over ``strength``, one fit
    per other point.

    Every registered re-scoring method returns ``S + a (f - S)``: the
    cosines ``S`` blended with its own scores ``f`` by ``strength = a``.
    So on each fold the other parameters are fitted once at ``a = 1``, and
    the R@1 of every ``a`` of the grid is read off the blend of that score
    matrix with the fold's cosines; a full grid search fits
    ``len(strengths)`` times as often for the same numbers (up to float
    rounding of the blend). The choice, its tie rule (the first best point
    in ``ParameterGrid`` order), ``best_params_``, ``cv_results_``'s
    per-split scores and the refit on the whole bank are those of
    ``GridSearchCV(..., scoring=make_retrieval_scorer("recall", k=1),
    refit=one_standard_error)``.

    Parameters
    ----------
    estimator : RetrievalEstimator
        With a ``strength`` parameter (see :func:`blends`).
    grid : dict or list of dict
        Every dict holds ``strength``.
    cv : cross-validation splitter
        Its ``split(X, y, groups)`` gives the folds.
    n_jobs : int, default=None
        Folds in parallel (joblib).
    """

    def __init__(self, estimator, grid, *, cv, n_jobs=None):
        self.estimator, self.grid, self.cv, self.n_jobs = estimator, grid, cv, n_jobs

    def fit(self, X, y=None, groups=None):
        points = list(ParameterGrid(self.grid))
        folds = list(self.cv.split(X, y, groups))
        per_fold = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_recalls)(self.estimator, points, X, y, train, val)
            for train, val in folds)
        scores = np.column_stack(per_fold)  # (n_points, n_folds)
        self.n_splits_ = len(folds)
        self.cv_results_ = {f"split{j}_test_score": scores[:, j] for j in range(len(folds))}
        self.cv_results_["mean_test_score"] = scores.mean(axis=1)
        self.cv_results_["params"] = points
        self.best_index_ = one_standard_error(self.cv_results_)
        self.best_params_ = points[self.best_index_]
        t0 = time.perf_counter()
        self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_).fit(X, y)
        self.refit_time_ = time.perf_counter() - t0
        return self
