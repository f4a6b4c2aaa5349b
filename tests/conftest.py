"""Shared test helpers: small paired problems."""

import numpy as np
import pytest


def fetch_or_skip(fetch, **kwargs):
    """``fetch(**kwargs)``, or skip the test (with the reason) when the file is
    neither in the data cache nor downloadable, e.g. offline without
    ``SKXMR_DATA``. CI sets ``SKXMR_DATA``, so there these tests run."""
    try:
        return fetch(**kwargs)
    except OSError as exc:
        pytest.skip(f"{fetch.__name__}: file neither cached nor downloadable ({exc})")

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
