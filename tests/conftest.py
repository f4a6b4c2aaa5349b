"""Shared test helpers: small paired problems."""

import contextlib
import os

import numpy as np
import pytest
import sklearn
from hypothesis import settings

# Small paired rows (gallery = query + noise, both L2-normalised), the data
# of the family checks.
from skxmr.utils.estimator_checks import _make_pairs as make_pairs  # noqa: F401

# One hypothesis profile for the suite: no per-example deadline (a shared
# CI machine's timings vary) and 40 examples, unless a test asks for more or
# fewer with ``@settings(max_examples=...)``.
settings.register_profile("skxmr", deadline=None, max_examples=40)
settings.load_profile("skxmr")

try:
    import torch
except ImportError:  # the optional extra skxmr[torch]
    torch = None


class Backend:
    """One array backend of the parametrised tests: numpy or torch, a dtype,
    a device. ``asarray`` moves a numpy array there, ``to_numpy`` back, and
    ``dispatch()`` is the scikit-learn context under which estimators keep
    such arrays (numpy needs no dispatch; it is on for torch)."""

    def __init__(self, name, dtype, device="cpu"):
        self.name, self.dtype, self.device = name, dtype, device
        self.id = f"{name}-{dtype}" + (f"-{device}" if name == "torch" else "")

    def asarray(self, a):
        a = np.asarray(a, dtype=self.dtype)
        if self.name == "numpy":
            return a
        return torch.as_tensor(a, device=self.device)

    def to_numpy(self, a):
        if self.name == "torch":
            assert isinstance(a, torch.Tensor), f"expected a torch tensor, got {type(a)}"
            assert str(a.device).startswith(self.device), f"left {self.device}: {a.device}"
            return a.detach().cpu().numpy()
        assert isinstance(a, np.ndarray), f"expected a numpy array, got {type(a)}"
        return a

    def dispatch(self):
        if self.name == "numpy":
            return contextlib.nullcontext()
        return sklearn.config_context(array_api_dispatch=True)


def _backend_params():
    params = [pytest.param(Backend("numpy", d), id=f"numpy-{d}") for d in ("float64", "float32")]
    reason = "torch is not installed (pip install 'skxmr[torch]')"
    if torch is not None and os.environ.get("SCIPY_ARRAY_API") != "1":
        torch_ok, reason = False, "array API dispatch needs SCIPY_ARRAY_API=1 before scipy is imported"
    else:
        torch_ok = torch is not None
    devices = ["cpu"] + (["cuda"] if torch is not None and torch.cuda.is_available() else [])
    for device in devices:
        for d in ("float64", "float32"):
            params.append(pytest.param(
                Backend("torch", d, device), id=f"torch-{d}-{device}",
                marks=pytest.mark.skipif(not torch_ok, reason=reason)))
    return params


@pytest.fixture(params=_backend_params())
def backend(request):
    """Each array backend: numpy float64/float32, torch CPU (and CUDA) float64/float32."""
    return request.param


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


