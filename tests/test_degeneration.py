"""Degeneration metrics (InvGC paper Eq. 2, Tables 1-2): hand-computed cases,
brute-force agreement, chunking invariance and bad input."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from skxmr._pairs import split_pairs
from skxmr.metrics import degeneration_score, mean_similarity, mean_similarity_at_k

SQRT_HALF = np.sqrt(0.5)


def _unit(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def brute(X, Y=None, k=1, exclude=None):
    """Direct transcription: full cosine matrix, masked pairs, sorted rows."""
    Xn = _unit(np.asarray(X, float))
    Yn = Xn if Y is None else _unit(np.asarray(Y, float))
    S = Xn @ Yn.T
    mask = np.zeros(S.shape, bool) if exclude is None else np.asarray(exclude, bool).copy()
    if Y is None:
        np.fill_diagonal(mask, True)
    mean_sim = S[~mask].mean()
    topk = np.sort(np.where(mask, -np.inf, S), axis=1)[:, ::-1][:, :k]
    return mean_sim, topk.mean(axis=1).mean()


# ---------------------------------------------------------- hand-computed
def test_three_points_by_hand():
    # Unit vectors e1, e2 and (e1 + e2)/√2: sims 0, 1/√2, 1/√2.
    X = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])  # norms do not matter
    assert mean_similarity(X) == pytest.approx(2 * SQRT_HALF / 3, abs=1e-15)
    # Everyone's nearest neighbour is at 1/√2.
    assert degeneration_score(X) == pytest.approx(SQRT_HALF, abs=1e-15)
    # k=2: e1 -> (1/√2 + 0)/2, e2 likewise, the diagonal -> 1/√2.
    assert mean_similarity_at_k(X, k=2) == pytest.approx(
        (SQRT_HALF / 2 + SQRT_HALF / 2 + SQRT_HALF) / 3, abs=1e-15
    )


def test_nearest_neighbour_by_hand():
    G = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    # sims: (0,1)=0.6, (0,2)=0, (1,2)=0.8 -> nearest: 0.6, 0.8, 0.8
    assert degeneration_score(G) == pytest.approx((0.6 + 0.8 + 0.8) / 3, abs=1e-15)
    assert mean_similarity_at_k(G, k=1) == degeneration_score(G)
    assert mean_similarity(G) == pytest.approx((0.6 + 0.0 + 0.8) / 3, abs=1e-15)


def test_cross_set_with_matching_pairs_excluded_by_hand():
    # Paper Table 2: gallery vs queries, a gallery item's own query excluded.
    G = np.array([[1.0, 0.0], [0.0, 1.0]])
    Q = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    exclude = np.array([[1, 0, 0], [0, 0, 1]], bool)
    # G0 keeps Q1 (0.6), Q2 (0); G1 keeps Q0 (0), Q1 (0.8).
    assert degeneration_score(G, Q, exclude=exclude) == pytest.approx(0.7, abs=1e-15)
    assert mean_similarity(G, Q, exclude=exclude) == pytest.approx(1.4 / 4, abs=1e-15)
    assert mean_similarity_at_k(G, Q, k=2, exclude=exclude) == pytest.approx(1.4 / 4)
    # Without exclusion the own query (sim 1) is the nearest.
    assert degeneration_score(G, Q) == pytest.approx(1.0)


def test_relevance_from_pairs_as_exclusion():
    rng = np.random.default_rng(0)
    Q, G = rng.standard_normal((30, 6)), rng.standard_normal((30, 6))
    items = split_pairs(np.hstack([Q, G]))
    E = items.relevance.T  # gallery x queries, sparse
    expected = brute(items.targets, items.sources, k=3, exclude=E.toarray())
    assert mean_similarity(items.targets, items.sources, exclude=E) == pytest.approx(
        expected[0], abs=1e-12
    )
    assert mean_similarity_at_k(
        items.targets, items.sources, k=3, exclude=E
    ) == pytest.approx(expected[1], abs=1e-12)


def test_duplicates_are_neighbours_at_similarity_one():
    G = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert degeneration_score(G) == pytest.approx((1 + 1 + 0) / 3)


# --------------------------------------------------------- brute force
@given(
    n=st.integers(2, 25),
    m=st.integers(1, 20),
    d=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    cross=st.booleans(),
    p_excl=st.sampled_from([0.0, 0.2]),
)
def test_agrees_with_brute_force(n, m, d, seed, cross, p_excl):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((m, d)) if cross else None
    n_y = m if cross else n
    E = rng.random((n, n_y)) < p_excl
    if not cross:
        np.fill_diagonal(E, False)
    left = n_y - E.sum(1) - (0 if cross else 1)
    k = int(max(1, left.min()))
    if left.min() < 1 or E.sum() + (0 if cross else n) == n * n_y:
        return
    k = min(k, 3)
    ms, msk = brute(X, Y, k=k, exclude=E)
    assert mean_similarity(X, Y, exclude=E) == pytest.approx(ms, abs=1e-12)
    assert mean_similarity_at_k(X, Y, k=k, exclude=sp.csr_array(E)) == pytest.approx(
        msk, abs=1e-12
    )
    assert degeneration_score(X, Y, exclude=E) == pytest.approx(
        brute(X, Y, k=1, exclude=E)[1], abs=1e-12
    )


def test_meansim_at_all_neighbours_is_meansim_and_monotone_in_k():
    X = np.random.default_rng(1).standard_normal((20, 5))
    vals = [mean_similarity_at_k(X, k=k) for k in range(1, 20)]
    assert np.all(np.diff(vals) <= 1e-12)
    assert vals[-1] == pytest.approx(mean_similarity(X), abs=1e-12)
    assert vals[0] == degeneration_score(X) <= 1.0


def test_chunking_and_jobs_do_not_change_the_result():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((300, 16)), rng.standard_normal((200, 16))
    E = sp.random_array((300, 200), density=0.05, random_state=3, format="csr").astype(bool)
    for args in [(X, None), (X, Y)]:
        ex = None if args[1] is None else E
        ref = mean_similarity_at_k(*args, k=5, exclude=ex)
        small = mean_similarity_at_k(*args, k=5, exclude=ex, working_memory=0.01, n_jobs=2)
        assert small == pytest.approx(ref, abs=1e-13)
        ref = mean_similarity(*args, exclude=ex)
        small = mean_similarity(*args, exclude=ex, working_memory=0.001, n_jobs=2)
        assert small == pytest.approx(ref, abs=1e-13)


def test_float32_and_no_mutation():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((50, 8)).astype(np.float32)
    X_copy = X.copy()
    v32 = degeneration_score(X)
    np.testing.assert_array_equal(X, X_copy)
    assert isinstance(v32, float)
    assert v32 == pytest.approx(degeneration_score(X.astype(np.float64)), abs=1e-5)
    assert mean_similarity(X) == pytest.approx(mean_similarity(X.astype(float)), abs=1e-5)


# ----------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_names_the_argument(bad):
    X = np.random.default_rng(0).standard_normal((5, 3))
    Y = X.copy()
    X[1, 1] = bad
    for f in (degeneration_score, mean_similarity, mean_similarity_at_k):
        with pytest.raises(ValueError, match="X"):
            f(X)
        with pytest.raises(ValueError, match="Y"):
            f(Y, X)


def test_bad_input_raises_naming_it():
    X = np.random.default_rng(0).standard_normal((5, 3))
    with pytest.raises(ValueError, match="Y"):
        degeneration_score(X, X[:, :2])
    Z = X.copy()
    Z[2] = 0.0
    with pytest.raises(ValueError, match="X.*zero-norm"):
        mean_similarity(Z)
    with pytest.raises(ValueError, match="k"):
        mean_similarity_at_k(X, k=5)  # only 4 other points
    with pytest.raises(ValueError, match="k"):
        mean_similarity_at_k(X, k=0)
    with pytest.raises(TypeError, match="k"):
        mean_similarity_at_k(X, k=1.5)
    with pytest.raises(ValueError, match="exclude"):
        mean_similarity(X, exclude=np.zeros((5, 4), bool))
    with pytest.raises(ValueError, match="X"):
        degeneration_score(X[:1])  # a single point has no neighbour
    full = ~np.eye(5, dtype=bool)
    with pytest.raises(ValueError, match="exclude leaves no pair"):
        mean_similarity(X, exclude=full)
    with pytest.raises(ValueError, match="row 0 of X has only 0"):
        degeneration_score(X, exclude=full)
