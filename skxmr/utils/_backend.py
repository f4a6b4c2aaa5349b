"""Array backends: which arrays a call computes on, and where.

Without scikit-learn's array API dispatch every input is converted to numpy
(as scikit-learn does) and everything runs on numpy. Under
``sklearn.config_context(array_api_dispatch=True)`` (scikit-learn needs
``SCIPY_ARRAY_API=1`` for it), torch tensors, on the CPU or a GPU, stay
torch tensors on their device: the arithmetic goes through POT's backend
object (:func:`ot.backend.get_backend`), one code path for every backend.

This module only decides and checks; the solvers call ``nx.dot``,
``nx.exp``, ``nx.logsumexp``, ... on the backend it returns.
"""

import importlib

import numpy as np
from ot.backend import get_backend as _pot_backend
from sklearn import get_config

__all__ = ["dispatch_enabled", "get_backend", "describe"]


def dispatch_enabled():
    """Whether scikit-learn's array API dispatch is on (``config_context``)."""
    return bool(get_config().get("array_api_dispatch", False))


def describe(a):
    """``"numpy"``, ``"torch (cpu)"``, ``"torch (cuda:0)"``, ...: for messages."""
    if isinstance(a, np.ndarray):
        return "numpy"
    device = getattr(a, "device", None)
    name = type(a).__module__.split(".")[0]
    return f"{name} ({device})" if device is not None else name


def get_backend(**arrays):
    """POT backend of the named arrays (``None`` values are skipped).

    Parameters
    ----------
    **arrays : array-like or None
        The arrays of one call, by the names the user knows them by (``X``,
        ``queries``, ``the fitted banks``...).

    Returns
    -------
    nx : ot.backend.Backend
        ``NumpyBackend`` for numpy arrays, ``TorchBackend`` for torch tensors.

    Raises
    ------
    ValueError
        Naming both arrays when two come from different backends or devices.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.utils._backend import get_backend
    >>> get_backend(X=np.ones((2, 2)), bank=None).__name__
    'numpy'
    """
    present = [(name, a) for name, a in arrays.items() if a is not None]
    if not present:
        raise ValueError("get_backend needs at least one array.")
    first_name, first = present[0]
    where = describe(first)
    for name, a in present[1:]:
        if describe(a) != where:
            raise ValueError(
                f"{first_name} and {name} must live on the same backend and device, "
                f"got {where} and {describe(a)}."
            )
    return _pot_backend(*(a for _, a in present))


# ------------------------------------------------------------ small helpers
# POT's backend covers the arithmetic; these cover what it does not (dtypes,
# in-place output, stable ordering), for numpy and torch alike.
def is_numpy(nx):
    """Whether ``nx`` (a POT backend) is numpy's."""
    return nx.__name__ == "numpy"


def namespace_dtype(like, name):
    """The dtype called ``name`` ("float32", "float64") in the namespace of ``like``."""
    if isinstance(like, np.ndarray) or not hasattr(like, "device"):
        return np.dtype(name)
    return getattr(importlib.import_module(type(like).__module__.split(".")[0]), name)


def dtype_name(a_or_dtype):
    """``"float32"``, ``"float64"``, ...: the dtype's name in any namespace."""
    is_array = hasattr(a_or_dtype, "shape") and not isinstance(a_or_dtype, type)
    dtype = a_or_dtype.dtype if is_array else a_or_dtype
    try:
        return np.dtype(dtype).name
    except TypeError:  # torch.float32, ...
        return str(dtype).rsplit(".", 1)[-1]


def astype(a, dtype):
    """``a`` in ``dtype`` (a name or a dtype of ``a``'s namespace), no copy if it is."""
    if isinstance(dtype, str):
        dtype = namespace_dtype(a, dtype)
    if isinstance(a, np.ndarray):
        return a.astype(dtype, copy=False)
    return a.to(dtype)


def stable_argsort(a, axis=-1, descending=False):
    """Stable argsort along ``axis`` (ties keep their order)."""
    if isinstance(a, np.ndarray):
        return np.argsort(-a if descending else a, axis=axis, kind="stable")
    import torch

    return torch.sort(a, dim=axis, descending=descending, stable=True)[1]
