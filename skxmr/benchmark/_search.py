"""The benchmark's grid searches that fit less than ``GridSearchCV`` for the
same numbers: :class:`StrengthSearch` (one fit per grid point other than
``strength``) and :class:`SharedStepsSearch` (a Pipeline's steps before the
final one fitted once for both directions)."""

import copy
import time

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from ..model_selection import skip_unless_reliable


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
    refit=skip_unless_reliable)``.

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
        self.best_index_ = skip_unless_reliable(self.cv_results_)
        self.best_params_ = points[self.best_index_]
        t0 = time.perf_counter()
        self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_).fit(X, y)
        self.refit_time_ = time.perf_counter() - t0
        return self


def _leading_params(estimator):
    """Parameters of a Pipeline's steps before the final one, comparable."""
    from sklearn.pipeline import Pipeline

    return repr(sorted(Pipeline(estimator.steps[:-1]).get_params(deep=True).items()))


def _leading_key(estimator, point):
    """What the steps before the final one of ``estimator`` at ``point`` fit
    with: points that differ in the final step only, or that spell the same
    setting twice (a default also listed in another dict), share it."""
    return _leading_params(clone(estimator).set_params(**point))


def shares_steps(estimators, grid):
    """Whether the pipelines of the directions differ in their final step only.

    ``estimators`` maps each direction to its unfitted estimator. When every
    one is a :class:`~sklearn.pipeline.Pipeline` of the same step names whose
    steps before the final one have equal parameters (an alignment or a
    density step, with ``direction`` only on the final scorer), those steps
    are fitted on the same rows with the same parameters at every grid
    point, whichever the direction: :class:`SharedStepsSearch` fits them
    once for all directions.
    """
    from sklearn.pipeline import Pipeline

    pipes = list(estimators.values())
    if len(pipes) < 2 or not all(isinstance(p, Pipeline) and len(p.steps) > 1 for p in pipes):
        return False
    names = [tuple(name for name, _ in p.steps) for p in pipes]
    if any(n != names[0] for n in names):
        return False
    return all(_leading_params(p) == _leading_params(pipes[0]) for p in pipes[1:])


def _fit_leading(estimator, point, X, y):
    """The steps before the final one of ``estimator`` at ``point``, fitted on ``X``,
    and ``X`` transformed by them (what ``Pipeline.fit`` hands its final step)."""
    from sklearn.pipeline import Pipeline

    pipe = clone(estimator).set_params(**point)
    leading = Pipeline(pipe.steps[:-1])
    return leading, leading.fit_transform(X, y)


def _fitted(leading, estimator, point, Xt, y):
    """``estimator`` at ``point`` with ``leading`` (fitted) and its final step fitted on ``Xt``."""
    from sklearn.pipeline import Pipeline

    name, final = clone(estimator).set_params(**point).steps[-1]
    return Pipeline(list(leading.steps) + [(name, final.fit(Xt, y))])


def _fold_direction_recalls(estimators, points, X, y, train, val):
    """R@1 on one validation fold of every grid point in every direction
    (module level: a joblib task); ``{direction: scores}``."""
    from ..metrics import make_retrieval_scorer

    scorer = make_retrieval_scorer("recall", k=1)
    y_tr, y_val = (None, None) if y is None else (y[train], y[val])
    first = next(iter(estimators.values()))
    leading = {}
    scores = {d: np.empty(len(points)) for d in estimators}
    for i, point in enumerate(points):
        key = _leading_key(first, point)
        if key not in leading:
            leading[key] = _fit_leading(first, point, X[train], y_tr)
        fitted, Xt = leading[key]
        for d, est in estimators.items():
            pipe = _fitted(fitted, est, point, Xt, y_tr)
            scores[d][i] = scorer(pipe, X[val]) if y is None else scorer(pipe, X[val], y_val)
    return scores


class SharedStepsSearch:
    """``GridSearchCV`` by R@1 of each direction's Pipeline, with the steps
    before the final one fitted once for all directions.

    When the directions' pipelines differ in their final step only
    (:func:`shares_steps`: an alignment or density step, then a scorer with
    its ``direction``), a grid point's leading steps fit the same rows with
    the same parameters in every direction, and grid points that differ only
    in the final step's parameters, or that spell the same setting twice (a
    default value also listed in another dict of the grid), share them as
    well. On each fold they
    are fitted once per distinct setting; each direction fits its own final
    step on their output and is scored by R@1. The fold scores, the choice
    (``refit``, e.g. :func:`~skxmr.model_selection.one_standard_error`),
    ``best_params_``, ``cv_results_``'s per-split scores and the refit on
    the whole bank are those of one ``GridSearchCV(pipeline, grid,
    scoring=make_retrieval_scorer("recall", k=1), cv=cv, refit=refit)`` per
    direction, for about half the fits.

    Parameters
    ----------
    estimators : dict
        ``{direction: Pipeline}``, unfitted.
    grid : list of dict
    cv : cross-validation splitter
    refit : callable
        ``refit(cv_results) -> index`` of the chosen point.
    n_jobs : int, default=None
        Folds in parallel (joblib).

    Attributes
    ----------
    results_ : dict
        ``{direction: Bunch}`` with ``cv_results_``, ``best_index_``,
        ``best_params_``, ``best_estimator_``, ``refit_time_`` and
        ``n_splits_``, as ``GridSearchCV`` names them.
    """

    def __init__(self, estimators, grid, *, cv, refit, n_jobs=None):
        self.estimators, self.grid, self.cv = estimators, grid, cv
        self.refit, self.n_jobs = refit, n_jobs

    def fit(self, X, y=None, groups=None):
        from sklearn.utils import Bunch

        points = list(ParameterGrid(self.grid or [{}]))
        folds = list(self.cv.split(X, y, groups))
        per_fold = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_direction_recalls)(self.estimators, points, X, y, train, val)
            for train, val in folds)
        first = next(iter(self.estimators.values()))
        leading = {}
        self.results_ = {}
        for d, est in self.estimators.items():
            scores = np.column_stack([fold[d] for fold in per_fold])  # (n_points, n_folds)
            cv_results = {f"split{j}_test_score": scores[:, j] for j in range(len(folds))}
            cv_results["mean_test_score"] = scores.mean(axis=1)
            cv_results["params"] = points
            best = self.refit(cv_results)
            t0 = time.perf_counter()
            key = _leading_key(first, points[best])
            if key not in leading:
                leading[key] = _fit_leading(first, points[best], X, y)
            # each direction's pipeline owns its steps (no object shared)
            steps = copy.deepcopy(leading[key][0])
            refitted = _fitted(steps, est, points[best], leading[key][1], y)
            self.results_[d] = Bunch(
                cv_results_=cv_results, best_index_=best, best_params_=points[best],
                best_estimator_=refitted, refit_time_=time.perf_counter() - t0,
                n_splits_=len(folds))
        return self
