"""make_retrieval_scorer: equality with the metric functions, sklearn model selection."""

import pickle

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer

from skxmr import CosineSimilarity, pair
from skxmr._pairs import split_pairs
from skxmr.metrics import (
    hubness_skewness,
    make_retrieval_scorer,
    map_at_r,
    mean_rank,
    median_rank,
    r_precision,
    recall_at_k,
)
from skxmr.metrics._scorer import paired_scores
from skxmr.similarity import cosine_scores

from .conftest import make_pairs

METRICS = {
    "recall": lambda S, R, k: recall_at_k(S, R, k),
    "median_rank": lambda S, R, k: -median_rank(S, R),
    "mean_rank": lambda S, R, k: -mean_rank(S, R),
    "r_precision": lambda S, R, k: r_precision(S, R),
    "map_at_r": lambda S, R, k: map_at_r(S, R),
    "hubness_skewness": lambda S, R, k: -hubness_skewness(S, k),
}


def captioned(n_images=16, n_captions=3, d=8, noise=0.6, seed=0):
    """Images with several noisy captions each, as paired rows + image groups."""
    rng = np.random.default_rng(seed)
    img = rng.standard_normal((n_images, d))
    groups = np.repeat(np.arange(n_images), n_captions)
    cap = img[groups] + noise * rng.standard_normal((groups.size, d))
    return pair(cap, img[groups]), groups


def flip_gallery(X):
    """Negate the gallery half (a transformer that reverses every ranking)."""
    d = X.shape[1] // 2
    return np.hstack([X[:, :d], -X[:, d:]])


def test_default_scorer_equals_estimator_score():
    X = make_pairs(n=30, noise=0.8)
    est = CosineSimilarity().fit(X)
    value = make_retrieval_scorer()(est, X)
    assert value == est.score(X)
    assert 0 < value < 100  # a non-trivial value, not a coincidence at 0/100


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_scorer_equals_metric_function(metric):
    X, _ = captioned()
    est = CosineSimilarity().fit(X)
    items = split_pairs(X)
    S = cosine_scores(items.sources, items.targets)
    scorer = make_retrieval_scorer(metric, k=3)
    assert scorer(est, X) == pytest.approx(METRICS[metric](S, items.relevance, 3))
    assert scorer.greater_is_better == (metric in ("recall", "r_precision", "map_at_r"))


def test_scorer_uses_labels_for_relevance():
    X, groups = captioned()
    labels = groups % 4  # category-level relevance: many relevant items
    est = CosineSimilarity().fit(X)
    items = split_pairs(X, labels)
    S = cosine_scores(items.sources, items.targets)
    assert make_retrieval_scorer("map_at_r")(est, X, labels) == pytest.approx(
        map_at_r(S, items.relevance)
    )
    assert make_retrieval_scorer("map_at_r")(est, X, labels) != make_retrieval_scorer(
        "map_at_r"
    )(est, X)


def test_g2q_direction():
    X, _ = captioned()
    items = split_pairs(X)
    S = cosine_scores(items.sources, items.targets)
    q2g = CosineSimilarity().fit(X)
    g2q = CosineSimilarity(direction="g2q").fit(X)
    for k in (1, 5):
        expected = recall_at_k(S.T, items.relevance.T, k)
        # a q2g estimator ranked the other way: the transposed matrix
        assert make_retrieval_scorer(k=k, direction="g2q")(q2g, X) == pytest.approx(expected)
        # a g2q estimator in its own direction (cosine is symmetric)
        assert make_retrieval_scorer(k=k)(g2q, X) == pytest.approx(expected)
        assert make_retrieval_scorer(k=k, direction="q2g")(g2q, X) == pytest.approx(
            recall_at_k(S, items.relevance, k)
        )
    # 16 images ranking 48 captions differs from 48 captions ranking 16 images
    assert make_retrieval_scorer(direction="g2q")(q2g, X) != make_retrieval_scorer()(q2g, X)


def test_pipeline_transforms_before_the_final_step():
    X = make_pairs(n=25, noise=0.5)
    pipe = make_pipeline(FunctionTransformer(flip_gallery), CosineSimilarity()).fit(X)
    items = split_pairs(flip_gallery(X))
    S = cosine_scores(items.sources, items.targets)
    for metric in ("recall", "mean_rank", "map_at_r"):
        scorer = make_retrieval_scorer(metric, k=1)
        assert scorer(pipe, X) == pytest.approx(METRICS[metric](S, items.relevance, 1))
    S2, items2 = paired_scores(pipe, X)
    np.testing.assert_allclose(S2, S)
    assert (items2.relevance != items.relevance).nnz == 0
    # negated gallery: the matching item drops to the bottom
    assert make_retrieval_scorer("mean_rank")(pipe, X) < -20
    # Normalizer on whole rows keeps cosines; nested pipelines are unwrapped
    nested = Pipeline([("norm", Normalizer()), ("inner", make_pipeline(CosineSimilarity()))])
    nested.fit(X)
    plain = CosineSimilarity().fit(X)
    for metric in ("recall", "r_precision"):
        scorer = make_retrieval_scorer(metric)
        assert scorer(nested, X) == pytest.approx(scorer(plain, X))


def test_grid_search_multimetric_with_groups():
    X, groups = captioned(n_images=20, noise=0.9)
    scoring = {
        "R@1": make_retrieval_scorer(k=1),
        "R@5": make_retrieval_scorer(k=5),
        "MdR": make_retrieval_scorer("median_rank"),
    }
    cv = GroupKFold(n_splits=2)
    search = GridSearchCV(
        Pipeline([("cos", CosineSimilarity())]),
        {"cos__direction": ["q2g", "g2q"]},
        scoring=scoring,
        refit="R@1",
        cv=cv,
    ).fit(X, groups=groups)
    # recompute every cell by hand
    for i, params in enumerate(search.cv_results_["params"]):
        for fold, (train, test) in enumerate(cv.split(X, groups=groups)):
            items = split_pairs(X[test], direction=params["cos__direction"])
            S = cosine_scores(items.sources, items.targets)
            got = {key: search.cv_results_[f"split{fold}_test_{key}"][i] for key in scoring}
            assert got["R@1"] == pytest.approx(recall_at_k(S, items.relevance, 1))
            assert got["R@5"] == pytest.approx(recall_at_k(S, items.relevance, 5))
            assert got["MdR"] == pytest.approx(-median_rank(S, items.relevance))
    # images ranking captions (g2q) has 3 relevant items per query: higher R@1
    best = search.best_params_["cos__direction"]
    assert best == "g2q"
    assert search.best_score_ == max(search.cv_results_["mean_test_R@1"])


def test_cross_val_score_group_kfold():
    X, groups = captioned(n_images=20, noise=0.9)
    cv = GroupKFold(n_splits=2)
    scorer = make_retrieval_scorer("r_precision")
    got = cross_val_score(CosineSimilarity(), X, groups=groups, cv=cv, scoring=scorer)
    expected = []
    for train, test in cv.split(X, groups=groups):
        items = split_pairs(X[test])
        expected.append(r_precision(cosine_scores(items.sources, items.targets), items.relevance))
    np.testing.assert_allclose(got, expected)


def test_pickle_and_repr():
    scorer = make_retrieval_scorer("recall", k=5, direction="g2q", ties="average")
    assert repr(scorer) == "make_retrieval_scorer(metric='recall', k=5, direction='g2q', ties='average')"
    assert repr(make_retrieval_scorer("map_at_r")) == "make_retrieval_scorer(metric='map_at_r')"
    clone = pickle.loads(pickle.dumps(scorer))
    X = make_pairs(n=20)
    est = CosineSimilarity().fit(X)
    assert clone(est, X) == scorer(est, X)


def test_bad_arguments():
    with pytest.raises(ValueError, match="metric"):
        make_retrieval_scorer("ndcg")
    with pytest.raises(ValueError, match="k=0"):
        make_retrieval_scorer(k=0)
    with pytest.raises(TypeError, match="k"):
        make_retrieval_scorer(k=1.0)
    with pytest.raises(ValueError, match="direction"):
        make_retrieval_scorer(direction="t2v")
    with pytest.raises(ValueError, match="ties"):
        make_retrieval_scorer(ties="random")
    X = make_pairs(n=10)
    est = CosineSimilarity().fit(X)
    with pytest.raises(ValueError, match="k=11"):  # 10 gallery items in the fold
        make_retrieval_scorer(k=11)(est, X)
    with pytest.raises(ValueError, match="k=11"):
        make_retrieval_scorer("hubness_skewness", k=11)(est, X)
    with pytest.raises(NotFittedError):
        make_retrieval_scorer()(CosineSimilarity(), X)
    with pytest.raises(TypeError, match="estimator"):
        make_retrieval_scorer()(make_pipeline(Normalizer()).fit(X), X)
    with pytest.raises(ValueError, match="features"):
        make_retrieval_scorer()(est, X[:, :-2])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        make_retrieval_scorer()(est, bad)
