"""Test-session set-up shared by the test suite and the doctests in skxmr/.

``SCIPY_ARRAY_API=1`` is set before anything imports scipy, so that torch
tensors can go through the estimators under array API dispatch.

The fetchers read their cache from ``SKXMR_DATA``; when the caller did not
set it (CI does), point it at ../shared/data/modality_gap so that tests and
doctests load the real embeddings offline, through the fetchers.
"""

import os
from pathlib import Path

# scikit-learn's array API dispatch (torch tensors through the estimators)
# needs SCIPY_ARRAY_API=1 before scipy is first imported, which is now: the
# backend tests (tests/conftest.py's ``backend`` fixture) and sklearn's
# check_array_api_input estimator checks then run by default, in CI too.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

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
