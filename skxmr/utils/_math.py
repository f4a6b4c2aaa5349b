"""Numerical helpers shared by the methods."""

import numpy as np

from ._backend import get_backend


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


def log_weights(W):
    """``log(W)`` with ``-inf`` where ``W == 0`` (no divide-by-zero warning)."""
    out = np.full(W.shape, -np.inf)
    np.log(W, out=out, where=W > 0)
    return out


def _shift_rows(L):
    """``L`` minus its row maxima (rows whose maximum is not finite: as is)."""
    m = np.max(L, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(over="ignore"):  # -1e308 - 1e308 = -inf: a zero weight, exactly
        return L - m


def gcs_rows(log_ps, log_q, *, grads=True):
    """Row-wise generalised CS divergence of K distributions and a target.

    The one numerical core of every Cauchy-Schwarz value in the package: the
    alignment's matching losses and :func:`skxmr.metrics.cs_divergence` /
    :func:`skxmr.metrics.gcs_divergence` (which pass ``grads=False``).

    Parameters
    ----------
    log_ps : list of K ndarrays of shape (..., m)
        Log-weights ``l_1 .. l_K`` (any scale; for the gradient, the
        row-wise log-softmax of the logits). ``-inf`` marks a zero weight.
    log_q : ndarray of shape (..., m)
        Log target weights (``-inf`` off the support; any scale). All
        arrays broadcast together; rows run along the last axis.
    grads : bool, default=True
        Whether to return the gradients (they need ``<q, prod_k p_k> > 0``).

    Returns
    -------
    values : ndarray of shape (...)
        ``-log(sum_j q_j prod_k p_k(j) / (||q||_r prod_k ||p_k||_r))``,
        ``r = K + 1``; ``+inf`` where the product is zero everywhere.
    grads : list of K ndarrays of shape (..., m)
        Derivative of ``values`` with respect to the logits of ``l_k``
        (only with ``grads=True``).
    """
    r = len(log_ps) + 1
    # Every value is invariant to a constant added to a row of any l_k (or
    # of log q): shifting each row's maximum to 0 keeps r·l and the sums
    # from overflowing, so log-weights anywhere in [-inf, +inf) (e.g. ±1e308)
    # give the exact value, never inf - inf = NaN.
    log_q = _shift_rows(log_q)
    log_ps = [_shift_rows(lp) for lp in log_ps]
    with np.errstate(over="ignore"):  # r·l = -inf where l < -max/r: weight 0
        return _gcs_shifted(log_ps, log_q, r, grads)


def _gcs_shifted(log_ps, log_q, r, grads):
    joint = log_q + sum(log_ps)
    log_inner = logsumexp(joint, axis=-1, keepdims=True)
    values = logsumexp(r * log_q, axis=-1) / r - log_inner[..., 0]
    norms = [logsumexp(r * lp, axis=-1, keepdims=True) for lp in log_ps]
    for lse in norms:
        values = values + lse[..., 0] / r
    if not grads:
        return values
    # a: the normalised product q * prod_k p_k, i.e. the gradient of the
    # log inner product; exp(-inf) = 0 off the target's support.
    a = np.exp(joint - log_inner)
    return values, [np.exp(r * lp - lse) - a for lp, lse in zip(log_ps, norms)]


# Offsets (e.g. potentials h(g)) larger than this in magnitude are applied
# relative to a reference, their midrange: at large temperatures h(g) is
# about τ·log(n_bank) plus differences of the size of the cosines, and
# float32 scores S - h would keep ~7 digits of the large part and lose the
# differences. Below it (every default temperature) the scores
# are exactly S - h; above it they are S - (h - c), the same ranking and
# the same differences within every row. 8 keeps float32's resolution
# within 10 ulps of a cosine's.
OFFSET_REFERENCE_ABOVE = 8.0


def relative_offsets(offsets):
    """``offsets - c`` with ``c`` their midrange when they exceed
    :data:`OFFSET_REFERENCE_ABOVE` in magnitude, else ``offsets`` unchanged.

    A constant shift of a row's scores changes no ranking. Computed on the
    offsets' backend without a round trip to the host.
    """
    nx = get_backend(offsets=offsets)
    hi, lo = nx.max(offsets), nx.min(offsets)
    big = nx.maximum(nx.abs(hi), nx.abs(lo)) > OFFSET_REFERENCE_ABOVE
    return offsets - nx.where(big, (hi + lo) / 2, 0.0 * hi)
