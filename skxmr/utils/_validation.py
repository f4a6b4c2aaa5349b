"""Shared input checks: one place for the errors every module raises.

Every check raises ``ValueError`` (or ``TypeError`` for a wrong kind of
object) whose message names the offending argument, and never writes to its
input.
"""

import re

import numpy as np
from sklearn.utils import check_array
from ._compat import get_namespace
from ._compat import Interval, InvalidParameterError

from ._backend import astype, dispatch_enabled, dtype_name, get_backend, namespace_dtype, to_numpy

FLOAT_DTYPES = (np.float64, np.float32)


def check_matrix(A, name, *, min_rows=1, dtype=FLOAT_DTYPES, copy=False):
    """Validate a 2-D finite float matrix and return it as an array.

    Parameters
    ----------
    A : array-like of shape (n_rows, n_cols)
        The matrix.
    name : str
        Argument name used in error messages.
    min_rows : int, default=1
        Fewer rows raise ``ValueError``.
    dtype : dtype or tuple of dtypes, default=(float64, float32)
        Accepted dtypes; others are converted to the first.
    copy : bool, default=False
        Force a copy.

    Returns
    -------
    A : ndarray of shape (n_rows, n_cols)
        Under ``sklearn.config_context(array_api_dispatch=True)`` an array of
        the input's namespace and device (e.g. a torch tensor). float16 is
        computed and returned in float32 (:func:`namespace_dtypes`).
    """
    if A is None:
        raise ValueError(f"{name} is required, got None.")
    A, dtype = namespace_dtypes(A, dtype)
    try:
        A = check_array(
            A,
            dtype=dtype,
            ensure_2d=True,
            allow_nd=False,
            ensure_all_finite=True,
            ensure_min_samples=min_rows,
            ensure_min_features=1,
            copy=copy,
            input_name=name,
        )
    except ValueError as exc:
        raise ValueError(short_array_message(str(exc), name, A)) from None
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None
    return A


def short_array_message(msg, name, A):
    """scikit-learn's validation message, naming ``name``, without the data.

    Its message for a 1-D (or 0-D) input prints the whole array; a
    single row of a large embedding fills the screen. That case gets one
    line saying what to pass instead.
    """
    if "array instead" in msg and "Expected 2D array" in msg:
        shape = tuple(getattr(A, "shape", np.shape(A)))
        return (
            f"{name} must be 2-D (n_rows, n_features), got an array of shape {shape}; "
            f"pass a single row as {name}.reshape(1, -1)."
        )
    named = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", msg)
    return msg if named else f"{name}: {msg}"


def namespace_dtypes(A, dtype=FLOAT_DTYPES):
    """``(A, dtype)`` for ``check_array``: the one dtype policy of the inputs.

    float32 and float64 input is computed and returned in its own dtype.
    Half precision (float16, bfloat16) is computed and returned in float32:
    there is no half-precision BLAS on CPUs, and float32 keeps every value
    exactly. Other input (integers, lists) becomes float64.

    Without array API dispatch the result is numpy, also for arrays of
    another library (a float32 torch tensor becomes a float32 ndarray,
    where scikit-learn's ``check_array``, which does not read a torch
    dtype, would make it float64). Under dispatch the accepted dtypes are
    translated by name into the input's namespace (``torch.float32``, ...).
    """
    name = dtype_name(A) if hasattr(A, "dtype") else None
    accepts_float32 = dtype is not None and "float32" in [
        np.dtype(d).name for d in (dtype if isinstance(dtype, (tuple, list)) else (dtype,))]
    if not dispatch_enabled():
        if accepts_float32 and name in ("float16", "bfloat16", "float32"):
            if not isinstance(A, np.ndarray) and hasattr(A, "device"):
                A = to_numpy(astype(A, "float32"))
            dtype = np.float32
        return A, dtype
    xp, _ = get_namespace(A)
    if name in ("float16", "bfloat16"):
        A = xp.astype(A, xp.float32)  # no half-precision BLAS on CPUs
    if dtype is not None:  # the namespace's own dtypes, by name
        names = [np.dtype(d).name for d in (dtype if isinstance(dtype, (tuple, list)) else (dtype,))]
        dtype = tuple(getattr(xp, n) for n in names)
    return A, dtype


def check_same_width(A, B, name_a, name_b):
    """Raise if ``A`` and ``B`` do not have the same number of columns."""
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"{name_b} has {B.shape[1]} features but {name_a} has "
            f"{A.shape[1]}; both must live in the same embedding space."
        )


def check_bank(B, name, *, n_features=None, min_rows=2):
    """Validate an embedding bank (at least two rows, matching width)."""
    B = check_matrix(B, name, min_rows=1)
    if B.shape[0] < min_rows:
        raise ValueError(
            f"{name} has {B.shape[0]} row(s); a bank needs at least {min_rows}."
        )
    if n_features is not None and B.shape[1] != n_features:
        raise ValueError(
            f"{name} has {B.shape[1]} features but the embeddings have "
            f"{n_features}; both must live in the same embedding space."
        )
    return B


def l2_normalize(A, name):
    """Return the rows of ``A`` scaled to unit L2 norm (a new array).

    Scale-safe: a row whose norm overflows (float32 near 1e30, float64 near
    1e200) or whose squares underflow (float32 1e-30) is divided by its
    largest absolute entry first, so it keeps its direction instead of
    becoming a zero vector or a false "zero-norm" row; other rows take the
    plain ``A / ||A||``. Only rows that are exactly zero have no direction;
    they raise ``ValueError``. Works on any backend (numpy, torch on its
    device), in the input's dtype.
    """
    if not isinstance(A, np.ndarray):
        return _l2_normalize_backend(A, name)
    with np.errstate(over="ignore", under="ignore"):  # handled below
        norms = np.linalg.norm(A, axis=1)
    info = np.finfo(A.dtype)
    risky = np.flatnonzero(~((norms >= np.sqrt(info.tiny)) & (norms <= info.max)))
    if risky.size:
        B = A[risky]
        scale = np.maximum(B.max(axis=1, initial=0), -B.min(axis=1, initial=0))
        bad = risky[~(scale > 0)]
        if bad.size:
            raise ValueError(
                f"{name} has {bad.size} zero-norm row(s) (first at index {bad[0]}); "
                "cosine similarity is undefined for them."
            )
        B = B / scale[:, None]  # entries in [-1, 1], the largest exactly 1
        norms[risky] = 1.0
    out = A / norms[:, None]
    if risky.size:
        out[risky] = B / np.linalg.norm(B, axis=1)[:, None]
    return out.astype(A.dtype, copy=False)


def _l2_normalize_backend(A, name):
    """:func:`l2_normalize` on a non-numpy backend (POT's ``nx``), on the device.

    Scale-safe as the numpy path: every row is divided by its largest
    absolute entry first (one more pass, cheap next to the products).
    """
    nx = get_backend(**{name: A})
    scale = nx.max(nx.abs(A), axis=1)
    bad = ~(scale > 0)
    if bool(nx.any(bad)):
        idx = np.flatnonzero(nx.to_numpy(bad))
        raise ValueError(
            f"{name} has {idx.size} zero-norm row(s) (first at index {idx[0]}); "
            "cosine similarity is undefined for them."
        )
    B = A / scale[:, None]
    return astype(B / nx.sqrt(nx.sum(B * B, axis=1))[:, None], A.dtype)


def check_n_neighbors(k, n_items, name="k", items="gallery items"):
    """Validate an integer neighbourhood size ``1 <= k <= n_items``."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(k).__name__}.")
    if not 1 <= k <= n_items:
        raise ValueError(f"{name}={k} must be in [1, {n_items}] (the number of {items}).")
    return int(k)


def result_dtype(*arrays):
    """float32 if every input is float32, float64 otherwise.

    numpy's dtypes for numpy (or array-like) input; the namespace's own
    (``torch.float32``, ...) when the first input is a tensor.
    """
    def name(a):
        return dtype_name(a) if hasattr(a, "dtype") else np.asarray(a).dtype.name

    single = all(name(a) == "float32" for a in arrays)
    first = arrays[0]
    if isinstance(first, np.ndarray) or not hasattr(first, "device"):
        return np.float32 if single else np.float64
    return namespace_dtype(first, "float32" if single else "float64")


def label_codes(y, n_rows, name="y", row="row of X"):
    """Integer codes ``0..n_labels-1`` of 1-D labels, one per row.

    Missing labels (``None``, NaN) and labels that cannot be ordered (e.g.
    ints mixed with strings) raise ``ValueError`` naming ``name``, instead
    of the ``TypeError`` about ``<`` that sorting them would give.
    """
    y = to_numpy(y)
    if y.ndim != 1 or y.shape[0] != n_rows:
        raise ValueError(
            f"{name} must be 1-D with one label per {row} ({n_rows}), got shape {y.shape}."
        )
    if y.dtype == object:
        missing = [i for i, v in enumerate(y) if v is None or (isinstance(v, float) and v != v)]
    elif y.dtype.kind in "fc":
        missing = np.flatnonzero(np.isnan(y)).tolist()
    else:
        missing = []
    if missing:
        raise ValueError(
            f"{name} has {len(missing)} missing label(s) (None or NaN; first at index "
            f"{missing[0]}); every row needs a label."
        )
    try:
        _, codes = np.unique(y, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in y})
        raise ValueError(
            f"{name} mixes labels of types {kinds} that cannot be compared; use "
            "labels of one type."
        ) from None
    return codes.ravel()


def check_no_bool_numbers(estimator):
    """Refuse ``True``/``False`` for a numeric parameter of ``estimator``.

    scikit-learn's ``Interval`` constraints accept bools (``bool`` is an
    ``int``), so ``temperature=True`` would run as 1.0. A bool is accepted
    only where the constraints list ``"boolean"``. Raises
    ``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``), as
    scikit-learn's own parameter validation does.
    """
    params = estimator.get_params(deep=False)
    for name, constraints in estimator._parameter_constraints.items():
        value = params.get(name)
        if (
            isinstance(value, (bool, np.bool_))
            and "boolean" not in constraints
            and any(isinstance(c, Interval) for c in constraints)
        ):
            raise InvalidParameterError(
                f"The {name!r} parameter of {type(estimator).__name__} must be a "
                f"number, not a bool; got {value!r}."
            )


def check_bool(value, name):
    """``value`` as a bool; anything but ``True``/``False`` raises ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}.")
    return bool(value)
