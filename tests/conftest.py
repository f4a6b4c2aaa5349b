"""Shared test helpers: small paired problems."""

import contextlib
import importlib
import os
import re

import numpy as np
import pytest
import sklearn
from hypothesis import settings
try:  # an oracle independent of the package's own conversion
    from sklearn.utils._array_api import move_to
except ImportError:  # scikit-learn < 1.8
    move_to = None

# Small paired rows (gallery = query + noise, both L2-normalised), the data
# of the family checks.
from skxmr.utils.estimator_checks import _make_pairs as make_pairs  # noqa: F401

# One hypothesis profile for the suite: no per-example deadline (a shared
# CI machine's timings vary) and 40 examples, unless a test asks for more or
# fewer with ``@settings(max_examples=...)``.
settings.register_profile("skxmr", deadline=None, max_examples=40)
settings.load_profile("skxmr")

#: The array libraries the backend tests run on: the one list. Each entry is
#: (library, its devices given the imported module, the dtypes). numpy runs
#: without dispatch; every other library under array API dispatch. A new
#: backend (CuPy...) is one entry here plus its class in skxmr.utils._backend.
BACKEND_LIBRARIES = [
    ("numpy", lambda xp: [None], ("float64", "float32")),
    ("torch", lambda xp: ["cpu"] + (["cuda"] if xp.cuda.is_available() else []),
     ("float64", "float32")),
    # the standard's reference namespace, on a device that is not the CPU's
    ("array_api_strict", lambda xp: [xp.Device("device1")], ("float64", "float32")),
]


class Backend:
    """One array backend of the parametrised tests: a library, a dtype, a
    device. ``asarray`` moves a numpy array there, ``to_numpy`` back (checking
    that the array stayed in the library and on the device), and
    ``dispatch()`` is the scikit-learn context under which estimators keep
    such arrays (numpy needs no dispatch; it is on for the others)."""

    def __init__(self, name, dtype, device=None):
        self.name, self.dtype, self.device = name, dtype, device
        where = "" if device is None else "-" + re.sub(r".*\('(.*)'\)", r"\1", str(device))
        self.id = f"{name}-{dtype}{where}"

    @property
    def xp(self):
        return importlib.import_module(self.name)

    def asarray(self, a):
        a = np.asarray(a, dtype=self.dtype)
        if self.name == "numpy":
            return a
        return self.xp.asarray(a, device=self.device)

    def to_numpy(self, a):
        if self.name == "numpy":
            assert isinstance(a, np.ndarray), f"expected a numpy array, got {type(a)}"
            return a
        assert type(a).__module__.split(".")[0] == self.name, (
            f"expected a {self.name} array, got {type(a)}")
        assert str(a.device).startswith(str(self.device)), f"left {self.device}: {a.device}"
        if move_to is None:
            from skxmr.utils._backend import to_numpy

            return to_numpy(a)
        return move_to(a, xp=np, device="cpu")

    def dispatch(self):
        if self.name == "numpy":
            return contextlib.nullcontext()
        return sklearn.config_context(array_api_dispatch=True)


def _backend_params():
    params = []
    for name, devices, dtypes in BACKEND_LIBRARIES:
        try:
            xp = importlib.import_module(name)
        except ImportError:
            xp, skip = None, f"{name} is not installed"
        else:
            skip = None
        if name != "numpy" and xp is not None and os.environ.get("SCIPY_ARRAY_API") != "1":
            skip = "array API dispatch needs SCIPY_ARRAY_API=1 before scipy is imported"
        for device in devices(xp) if xp is not None else [None]:
            for dtype in dtypes:
                b = Backend(name, dtype, device)
                marks = [pytest.mark.skipif(True, reason=skip)] if skip else []
                params.append(pytest.param(b, id=b.id, marks=marks))
    return params


@pytest.fixture(params=_backend_params())
def backend(request):
    """Each array backend of ``BACKEND_LIBRARIES``, dtype and device."""
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


