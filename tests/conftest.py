"""Shared test helpers: small paired problems."""

import numpy as np
import pytest

@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_pairs(n=40, d=8, noise=0.3, seed=0, dtype=np.float64):
    """Small paired rows: gallery = query + noise, both L2-normalised."""
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((n, d))
    G = Q + noise * rng.standard_normal((n, d))
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    return np.hstack([Q, G]).astype(dtype)
