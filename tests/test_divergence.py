"""Cauchy-Schwarz and generalised CS divergences (skxmr.metrics.divergence)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skxmr.metrics import cs_divergence, gcs_divergence

# Probability-like rows with at least one clearly positive entry.
weights = arrays(
    np.float64,
    st.integers(2, 7),
    elements=st.floats(0.0, 10.0, allow_nan=False, allow_infinity=False),
).filter(lambda a: a.max() > 1e-3)


def pairs_of(n_min=2, n_max=7):
    return st.integers(n_min, n_max).flatmap(
        lambda n: st.tuples(
            *[
                # No subnormals: scaling one by 0.25 (the scale-invariance
                # property) underflows it to 0 and makes the supports disjoint.
                arrays(np.float64, n,
                       elements=st.floats(0.0, 10.0, allow_subnormal=False)).filter(
                    lambda a: a.max() > 1e-3
                )
                for _ in range(2)
            ]
        )
    )


def test_hand_computed_values():
    # <p,q> = 0.5, |p| = sqrt(0.5), |q| = 1  ->  -log(0.5 / sqrt(0.5)) = 0.5 log 2
    assert cs_divergence([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.5 * np.log(2))
    # sum_j p q r = 0.22; 3-norms (0.52, 0.25, 0.28)^(1/3)
    expected = -np.log(0.22 / (0.52 * 0.25 * 0.28) ** (1 / 3))
    assert gcs_divergence([0.2, 0.8], [0.5, 0.5], [0.6, 0.4]) == pytest.approx(expected)


@given(pairs_of())
@settings(max_examples=60)
def test_cs_properties(pq):
    p, q = pq
    d = cs_divergence(p, q)
    assert d >= 0.0
    assert d == pytest.approx(cs_divergence(q, p), abs=1e-12)  # symmetric
    # Scale invariance: unnormalised weights give the same value.
    assert cs_divergence(3.0 * p, 0.25 * q) == pytest.approx(d, abs=1e-9)
    # Zero for proportional arguments.
    assert cs_divergence(p, 7.0 * p) == pytest.approx(0.0, abs=1e-12)
    # The closed form, where it is finite.
    inner = p @ q
    if inner > 0:
        assert d == pytest.approx(
            -np.log(inner / (np.linalg.norm(p) * np.linalg.norm(q))), rel=1e-9, abs=1e-9
        )
    else:
        assert d == np.inf


@given(pairs_of())
def test_cs_zero_only_when_proportional(pq):
    p, q = pq
    a, b = p / np.linalg.norm(p), q / np.linalg.norm(q)
    if np.linalg.norm(a - b) > 1e-3:
        assert cs_divergence(p, q) > 1e-8


@given(pairs_of())
def test_gcs_with_two_distributions_is_cs(pq):
    p, q = pq
    assert gcs_divergence(p, q) == pytest.approx(cs_divergence(p, q), rel=1e-12, abs=1e-12)


@given(pairs_of(), st.floats(0.1, 10.0))
def test_gcs_properties(pq, scale):
    p, q = pq
    r = p[::-1] + 0.5
    d = gcs_divergence(p, q, r)
    assert d >= 0.0
    assert gcs_divergence(scale * p, q, r / scale) == pytest.approx(d, abs=1e-9)
    assert gcs_divergence(r, p, q) == pytest.approx(d, abs=1e-12)  # order-free
    assert gcs_divergence(p, scale * p, 2 * p, p) == pytest.approx(0.0, abs=1e-12)


def test_row_wise_and_broadcast():
    P = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    q = np.array([1.0, 0.0])
    out = cs_divergence(P, q)
    assert out.shape == (3,)
    np.testing.assert_allclose(out, [cs_divergence(p, q) for p in P])
    np.testing.assert_allclose(gcs_divergence(P, q, P), [gcs_divergence(p, q, p) for p in P])


def test_log_input_matches_and_survives_saturation():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 6))
    log_q = np.where(rng.random((4, 6)) < 0.5, 0.0, -np.inf)
    log_q[:, 0] = 0.0
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        cs_divergence(logits, log_q, log=True), cs_divergence(p, np.exp(log_q)), rtol=1e-10
    )
    # A softmax saturated at temperature 0.001: all mass on the wrong item.
    # In linear space p = [1, 0] (exp(-1000) underflows) and <p, q> = 0;
    # in the log domain the divergence is exact and finite.
    sat = np.array([[1.0, 0.0]]) / 0.001
    target = np.array([[-np.inf, 0.0]])  # log of q = [0, 1]
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        d = cs_divergence(sat, target, log=True)
    assert np.isfinite(d[0])
    # -log p_1 + ½ log sum p² with log p = [0, -1000] (up to log(1 + e^-1000))
    assert d[0] == pytest.approx(1000.0)
    assert cs_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))[0] == np.inf


def test_tiny_probabilities_keep_precision():
    # Products of such weights underflow in linear space (1e-300² = 0).
    p = np.array([1e-300, 1e-300, 0.0])
    q = np.array([1e-300, 0.0, 5e-301])
    assert cs_divergence(p, q) == pytest.approx(cs_divergence([1, 1, 0], [1, 0, 0.5]))
    assert np.isfinite(gcs_divergence(p, q, p))


def test_disjoint_supports_give_inf_without_warning():
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        assert cs_divergence([1, 0, 0], [0, 1, 1]) == np.inf
        assert gcs_divergence([1, 1, 0], [0, 1, 1], [1, 0, 1]) == np.inf
        out = cs_divergence([[1, 0], [1, 1]], [[0, 1], [0, 1]])
    assert out[0] == np.inf and np.isfinite(out[1])


@pytest.mark.parametrize(
    "p, q, match",
    [
        ([-0.1, 1.1], [0.5, 0.5], "p has negative"),
        ([0.5, 0.5], [np.nan, 1.0], "q contains NaN"),
        ([0.0, 0.0], [0.5, 0.5], "p has an all-zero"),
        ([[1.0, 0.0], [0.0, 0.0]], [1.0, 1.0], "row 1"),
        ([], [], "non-empty"),
        (np.ones((2, 2, 2)), np.ones(2), "1-D or 2-D"),
    ],
)
def test_bad_input(p, q, match):
    with pytest.raises(ValueError, match=match):
        cs_divergence(p, q)


def test_bad_log_input_and_arity():
    with pytest.raises(ValueError, match="p holds NaN or \\+inf"):
        cs_divergence([np.inf, 0.0], [0.0, 0.0], log=True)
    with pytest.raises(ValueError, match="all-zero"):
        cs_divergence([-np.inf, -np.inf], [0.0, 0.0], log=True)
    with pytest.raises(ValueError, match="at least 2"):
        gcs_divergence([0.5, 0.5])
    with pytest.raises(ValueError, match=r"ps\[1\] has negative"):
        gcs_divergence([0.5, 0.5], [-1.0, 2.0], [1.0, 0.0])
