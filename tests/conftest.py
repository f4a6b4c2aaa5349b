"""Shared fixtures: real embeddings through the package's fetchers, small problems."""

import os
from pathlib import Path

import numpy as np
import pytest

# ../shared/data next to the repository; searched upwards so that git
# worktrees one level deeper (e.g. /work/wt/<branch>) find it too.
SHARED_DATA = next(
    (
        p / "shared" / "data" / "modality_gap"
        for p in Path(__file__).resolve().parents[1:]
        if (p / "shared" / "data" / "modality_gap").is_dir()
    ),
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "modality_gap",
)


def pytest_configure(config):
    # The fetchers read SKXMR_DATA; point it at the shared copy when the
    # caller did not (CI sets it explicitly).
    if "SKXMR_DATA" not in os.environ and SHARED_DATA.is_dir():
        os.environ["SKXMR_DATA"] = str(SHARED_DATA)


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
