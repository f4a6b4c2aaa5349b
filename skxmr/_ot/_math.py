"""Numerical helpers shared by the methods."""

import numpy as np


def logsumexp(A, axis=-1, *, keepdims=False, overwrite=False):
    """Max-shifted ``log Σ exp(A)`` along ``axis``.

    The stable form of :func:`scipy.special.logsumexp` (every shifted
    exponent is <= 0 and each sum >= 1 unless the slice is all ``-inf``,
    which gives ``-inf``), several times faster on large blocks because
    ``overwrite=True`` reuses ``A`` (a float array the caller owns) as the
    work space instead of allocating another block.

    Parameters
    ----------
    A : ndarray of float
        Finite or ``-inf`` entries.
    axis : int, default=-1
    keepdims : bool, default=False
    overwrite : bool, default=False
        Destroy ``A`` instead of allocating a work array.

    Returns
    -------
    lse : ndarray
    """
    m = A.max(axis=axis, keepdims=True)
    m[~np.isfinite(m)] = 0.0  # all -inf slices: exp(-inf - 0) = 0, log 0 = -inf
    E = np.subtract(A, m, out=A if overwrite else None)
    np.exp(E, out=E)
    with np.errstate(divide="ignore"):
        out = np.log(E.sum(axis=axis, keepdims=True)) + m
    return out if keepdims else out.squeeze(axis)


def scaled_product_dtype(scale, *arrays):
    """dtype for matrix products of ``arrays`` pre-multiplied by ``scale``.

    The inputs' own precision (float32 products are twice as fast), unless
    ``scale`` times a cosine could overflow float32 (``scale = 1/τ`` with
    an absurdly small τ): then float64, so the result is never inf/NaN.
    """
    dtype = np.result_type(*arrays)
    return np.dtype(np.float64) if abs(scale) > 1e37 else dtype
