"""The paired-row data model: pair/unpair, unique items, relevance, bad input."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.pipeline import make_pipeline

import skxmr
from skxmr import pair, split_pairs, unpair
from skxmr._pairs import resolve_split, unique_rows
from tests.conftest import make_pairs


def test_pair_unpair_round_trip():
    Q = np.arange(6.0).reshape(3, 2)
    G = np.arange(9.0).reshape(3, 3)
    X = pair(Q, G)
    assert X.shape == (3, 5)
    Q2, G2 = unpair(X, n_query_features=2)
    np.testing.assert_array_equal(Q2, Q)
    np.testing.assert_array_equal(G2, G)


def test_pair_mismatched_rows_names_arguments():
    with pytest.raises(ValueError, match="queries has 2 rows but gallery has 3"):
        pair(np.ones((2, 2)), np.ones((3, 2)))


@pytest.mark.parametrize(
    "X, kwargs, match",
    [
        (np.ones((3, 5)), {}, "odd number of columns"),
        (np.ones((3, 4)), {"n_query_features": 4}, r"n_query_features=4 must be in \[1, 3\]"),
        (np.ones((3, 4)), {"n_query_features": 0}, "n_query_features=0"),
        (np.ones(4), {}, "must be 2-D"),
        (np.ones((2, 2, 2)), {}, "3"),
        (np.empty((0, 4)), {}, "0 sample"),
        (np.array([[1.0, np.nan]]), {}, "NaN"),
        (np.array([[1.0, np.inf]]), {}, "infinity"),
    ],
)
def test_unpair_bad_input(X, kwargs, match):
    with pytest.raises(ValueError, match=match):
        unpair(X, **kwargs)


def test_n_query_features_type():
    with pytest.raises(TypeError, match="n_query_features"):
        resolve_split(4, 1.5)


def test_unique_rows_first_appearance_order():
    A = np.array([[3.0, 1.0], [1.0, 2.0], [3.0, 1.0], [0.0, 0.0], [1.0, 2.0]])
    U, inv = unique_rows(A)
    np.testing.assert_array_equal(U, [[3.0, 1.0], [1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(inv, [0, 1, 0, 2, 1])


def test_split_pairs_duplicates_and_directions():
    img = np.array([[1.0, 0.0], [0.0, 1.0]])
    cap = np.array([[1.0, 0.1], [0.9, 0.2], [0.1, 1.0]])
    X = np.hstack([cap, img[[0, 0, 1]]])
    items = split_pairs(X)
    np.testing.assert_array_equal(items.relevance.toarray(), [[1, 0], [1, 0], [0, 1]])
    np.testing.assert_array_equal(items.source_index, [0, 1, 2])
    np.testing.assert_array_equal(items.target_index, [0, 0, 1])
    back = split_pairs(X, direction="g2q")
    np.testing.assert_array_equal(back.sources, img)
    np.testing.assert_array_equal(back.relevance.toarray(), [[1, 1, 0], [0, 0, 1]])


def test_split_pairs_labels_give_category_relevance():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 4))
    y = np.array(["a", "b", "a", "c"])
    items = split_pairs(X, y)
    expected = np.array(
        [[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool
    )
    np.testing.assert_array_equal(items.relevance.toarray(), expected)
    with pytest.raises(ValueError, match="y must be 1-D with one label per row"):
        split_pairs(X, y[:3])


def test_split_pairs_bad_direction():
    with pytest.raises(ValueError, match="direction"):
        split_pairs(np.ones((2, 4)), direction="t2v")


@given(st.integers(2, 12), st.integers(1, 4), st.integers(0, 10_000))
def test_relevance_is_exactly_the_pairs(n_items, copies, seed):
    """Every row's pair is relevant, and nothing else, whatever the duplication."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n_items, 3))
    rows = np.repeat(np.arange(n_items), copies)
    Q = rng.standard_normal((rows.size, 3))
    items = split_pairs(pair(Q, G[rows]))
    R = items.relevance.toarray()
    assert R.shape == (rows.size, n_items)
    assert R.sum() == rows.size
    assert np.all(R[items.source_index, items.target_index])
    np.testing.assert_array_equal(items.targets[items.target_index], G[rows])


def test_negative_zero_is_the_same_item():
    A = np.array([[0.0, 1.0], [-0.0, 1.0], [1.0, 0.0]])
    U, inv = unique_rows(A)
    assert U.shape == (2, 2)
    np.testing.assert_array_equal(inv, [0, 0, 1])


@pytest.mark.parametrize(
    "y, match",
    [
        (np.array([0, None, 1, 1], dtype=object), "y has 1 missing label"),
        (np.array([0.0, np.nan, 1.0, 1.0]), "y has 1 missing label"),
        (np.array([0, "a", 1, 1], dtype=object), "mixes labels of types"),
    ],
)
def test_bad_labels_name_y(y, match):
    X = np.hstack([np.eye(4), np.eye(4)])
    with pytest.raises(ValueError, match=match):
        split_pairs(X, y)


# ---------------------------------------------------------------- layouts
def _coco_halves():
    from skxmr.datasets import load_coco_clip

    data = load_coco_clip()
    return data.queries[:200], data.gallery[:200]


@pytest.mark.parametrize("method", ["fit", "score"])
@pytest.mark.parametrize(
    "make", [lambda: skxmr.SinkhornNormalizer(), lambda: skxmr.InvGC(),
             lambda: make_pipeline(skxmr.InvGC(), skxmr.CosineSimilarity())],
)
def test_fit_q_g_instead_of_pair_is_refused(make, method):
    Q, G = _coco_halves()
    est = make()
    if method == "fit":
        with pytest.raises(ValueError, match=r"pair\(Q, G\)"):
            est.fit(Q, G)
    elif hasattr(est, "score") and not hasattr(est, "steps"):
        # (Pipeline.score transforms X before its last step sees y.)
        est.fit(skxmr.pair(Q, G))
        with pytest.raises(ValueError, match=r"X = skxmr.pair\(Q, G\)"):
            est.score(Q, G)


def test_labels_are_still_accepted():
    X = make_pairs(30)
    skxmr.CosineSimilarity().fit(X, np.arange(30) % 3)  # 1-D labels
    skxmr.CosineSimilarity().fit(X, (np.arange(30) % 3).astype(float))  # float labels, 1-D


def test_single_modality_alone_warns_naming_pair():
    Q, G = _coco_halves()
    with pytest.warns(UserWarning, match=r"no pairing signal.*skxmr.pair\(Q, G\)"):
        skxmr.SinkhornNormalizer().fit(Q)  # 512 columns split 256/256
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skxmr.SinkhornNormalizer().fit(skxmr.pair(Q, G))  # real pairs: silent
        skxmr.CosineSimilarity().fit(make_pairs(40))
    # Mismatched rows (a shuffled gallery) are no better than random either.
    with pytest.warns(UserWarning, match="no pairing signal"):
        skxmr.CosineSimilarity().fit(skxmr.pair(Q, G[::-1]))


def test_wrong_equal_split_warns_naming_n_query_features():
    Q, _ = _coco_halves()
    rng = np.random.default_rng(0)
    G = rng.standard_normal((200, 768))
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    X = skxmr.pair(Q, G)  # 512 + 768 columns; None splits 640/640
    with pytest.warns(UserWarning, match="n_query_features=512"):
        skxmr.CauchySchwarzAlignment(max_iter=1, tol=None).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skxmr.CauchySchwarzAlignment(n_query_features=512, max_iter=1, tol=None).fit(X)
        skxmr.CosineSimilarity().fit(make_pairs(40))  # equal halves: silent


def test_layout_checks_survive_extreme_scales():
    X = make_pairs(30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for scale in (1e200, 1e-200):
            skxmr.CosineSimilarity().fit(X * scale)
