"""A third party's method, registered and checked with skxmr.utils.estimator_checks."""

import pickle

import numpy as np
import pytest

from skxmr import RetrievalEstimator, _registry, register_method, registered_methods
from skxmr.utils.estimator_checks import (
    check_estimator,
    check_pickle_at_any_point,
    check_scores_shape_and_dtype,
    check_strength_interpolates,
    check_strength_zero_is_cosine,
    check_two_view_function,
    parametrize_with_checks,
    yield_family_checks,
)


class MeanCentering(RetrievalEstimator):
    """Cosine minus ``strength`` times each gallery item's mean similarity to
    the query bank: a per-item offset, as a user would write one."""

    def __init__(self, n_query_features=None, direction="q2g", strength=1.0):
        self.n_query_features = n_query_features
        self.direction = direction
        self.strength = strength

    def _prepare_gallery(self, gallery):
        return {"offset": (self.query_bank_ @ gallery.T).mean(axis=0)}

    def _score_queries(self, queries, gallery, state):
        return queries @ gallery.T - self.strength * state["offset"]


def mean_centering_scores(queries, gallery, query_bank, *, strength=1.0):
    """The method's two-view function: the same estimator on explicit banks."""
    return MeanCentering(strength=strength)._two_view_scores(queries, gallery, query_bank)


TWO_VIEW = {MeanCentering: mean_centering_scores}


@pytest.fixture
def registered():
    register_method("MeanCentering (test)", lambda direction="q2g": MeanCentering(
        direction=direction), family="hubness", grid={"strength": [0.5, 1.0]})
    yield registered_methods()["MeanCentering (test)"]
    del _registry._METHODS["MeanCentering (test)"]


def test_a_registered_method_passes_the_checks(registered):
    estimator = registered["factory"](direction="g2q")
    check_estimator(estimator, two_view=TWO_VIEW)
    names = [c.func.__name__ for c in yield_family_checks(estimator, two_view=TWO_VIEW)]
    assert {"check_two_view_function", "check_strength_zero_is_cosine",
            "check_strength_interpolates", "check_pickle_at_any_point"} <= set(names)


@parametrize_with_checks([MeanCentering(), MeanCentering(strength=0.5)], two_view=TWO_VIEW)
def test_parametrize_with_checks(estimator, check):
    check(estimator)


# A check must be able to fail: broken variants of the same method.
class NotInterpolating(MeanCentering):
    def _score_queries(self, queries, gallery, state):
        return queries @ gallery.T - self.strength ** 2 * state["offset"]


class Float64Out(MeanCentering):
    def _score_queries(self, queries, gallery, state):
        return (queries @ gallery.T).astype(np.float64) - self.strength * state["offset"]

    def _row_scorer(self, gallery, state, dtype):
        return lambda Q: self._score_queries(Q, gallery, state)


class NeverCosine(MeanCentering):
    def _score_queries(self, queries, gallery, state):
        return queries @ gallery.T - (self.strength + 1e-9) * state["offset"]


class Unpicklable(MeanCentering):
    def decision_function(self, X):
        self.last_ = lambda: None  # a query leaves a closure behind
        return super().decision_function(X)


@pytest.mark.parametrize("check, broken, match", [
    (check_strength_interpolates, NotInterpolating(), "Not equal to tolerance"),
    (check_strength_zero_is_cosine, NeverCosine(), "not equal"),
    (check_scores_shape_and_dtype, Float64Out(), "float64"),
    # Python 3.13 says "Can't get local object ..." where 3.12 says "Can't pickle"
    (check_pickle_at_any_point, Unpicklable(), "pickle|local object"),
])
def test_checks_catch_broken_methods(check, broken, match):
    if check is check_scores_shape_and_dtype:
        check = lambda name, est: check_scores_shape_and_dtype(name, est, dtype=np.float32)  # noqa: E731
    with pytest.raises((AssertionError, AttributeError, pickle.PicklingError), match=match):
        check(type(broken).__name__, broken)


def test_two_view_check_catches_a_wrong_function():
    def wrong(queries, gallery, query_bank, *, strength=1.0):
        return mean_centering_scores(queries, gallery, query_bank, strength=strength / 2)

    with pytest.raises(AssertionError):
        check_two_view_function("MeanCentering", MeanCentering(), two_view=wrong)


def test_not_a_family_estimator():
    from sklearn.linear_model import LinearRegression

    with pytest.raises(TypeError, match="RetrievalEstimator or PairedTransformer"):
        list(yield_family_checks(LinearRegression()))
