"""Cauchy-Schwarz and generalised Cauchy-Schwarz divergences.

Both are computed in the log domain: with ``a = log p`` and ``b = log q``,

    D_CS(p, q) = -logsumexp(a + b) + ½ logsumexp(2a) + ½ logsumexp(2b),

so probabilities far below the float range (a saturated softmax given as
log-probabilities, or tiny but non-zero entries) lose no precision and never
turn into ``0 · ∞``. Zero entries are ``log 0 = -inf``, which log-sum-exp
handles exactly. The divergence is ``+inf`` only when the supports are
disjoint (``<p, q> = 0``): then no finite value exists. The log-domain
core is ``skxmr.utils._math.gcs_rows``, shared with the alignment losses.
"""

import numpy as np

from ..utils._math import gcs_rows, log_weights

__all__ = ["cs_divergence", "gcs_divergence"]


def _as_log(P, name, log):
    """Validated log-weights of a probability vector or row-wise matrix."""
    A = np.asarray(P, dtype=np.float64)
    if A.ndim not in (1, 2) or A.shape[-1] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D or 2-D array, got shape {A.shape}.")
    if log:
        if np.any(np.isnan(A)) or np.any(A == np.inf):
            raise ValueError(f"{name} holds NaN or +inf; log-probabilities must be < +inf.")
        logs = A
    else:
        if not np.all(np.isfinite(A)):
            raise ValueError(f"{name} contains NaN or infinity.")
        if np.any(A < 0):
            raise ValueError(f"{name} has negative entries; it must hold probabilities.")
        logs = log_weights(A)
    empty = np.all(logs == -np.inf, axis=-1)
    if np.any(empty):
        first = int(np.flatnonzero(np.atleast_1d(empty))[0])
        raise ValueError(
            f"{name} has an all-zero distribution (row {first}); its norm is 0 and "
            "the divergence is undefined."
        )
    return logs


def _gcs_logs(logs):
    """Row-wise GCS of ``len(logs)`` log-weight arrays (broadcast together)."""
    logs = np.broadcast_arrays(*logs)
    value = gcs_rows(logs[1:], logs[0], grads=False)
    # Hölder's inequality makes the exact value >= 0; round-off may not.
    value = np.maximum(value, 0.0)
    return float(value) if np.ndim(value) == 0 else value


def cs_divergence(p, q, *, log=False):
    """Cauchy-Schwarz divergence ``-log(<p, q> / (||p||₂ ||q||₂))``, row-wise.

    Symmetric, non-negative, zero iff ``p`` and ``q`` are proportional, and
    invariant to rescaling either argument (so unnormalised weights, e.g. a
    0/1 relevance row, may be passed directly).

    Parameters
    ----------
    p, q : array-like of shape (n,) or (n_rows, n)
        Non-negative weights (probability vectors, or one per row); the two
        broadcast against each other. With ``log=True``: log-weights, any
        value in ``[-inf, +inf)`` (e.g. ``logits`` or ``log_softmax``),
        which keeps a saturated softmax exact.
    log : bool, default=False
        Whether ``p`` and ``q`` are given as logarithms.

    Returns
    -------
    divergence : float or ndarray of shape (n_rows,)
        ``+inf`` for rows whose supports are disjoint (no overlap: the inner
        product is exactly 0). Never NaN.

    Raises
    ------
    ValueError
        Negative or non-finite weights, or an all-zero row (naming ``p`` or
        ``q``).

    See Also
    --------
    gcs_divergence : Hölder generalisation to M distributions.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import cs_divergence
    >>> cs_divergence([0.5, 0.5], [1.0, 0.0])      # -log(0.5 / sqrt(0.5))
    0.3465...
    >>> cs_divergence([1, 2, 3], [2, 4, 6])          # proportional
    0.0
    >>> cs_divergence([1, 0], [0, 1])                # disjoint supports
    inf
    >>> logits = np.array([[0., -1000.], [0., 0.]])  # a saturated softmax
    >>> cs_divergence(logits, np.array([[0., 0.], [0., 0.]]), log=True)
    array([0.3465..., 0.    ])
    """
    return _gcs_logs([_as_log(p, "p", log), _as_log(q, "q", log)])


def gcs_divergence(*ps, log=False):
    """Generalised Cauchy-Schwarz divergence of M distributions, row-wise.

    From Hölder's inequality ``sum_j prod_m p_m(j) <= prod_m ||p_m||_M``:

    .. math::

        D_{GCS}(p_1, \\dots, p_M) = -\\log
        \\frac{\\sum_j \\prod_{m=1}^M p_m(j)}{\\prod_{m=1}^M \\|p_m\\|_M}

    Non-negative, zero iff all ``p_m`` are proportional, scale invariant in
    each argument, and equal to :func:`cs_divergence` for ``M = 2``.

    Parameters
    ----------
    *ps : M array-likes of shape (n,) or (n_rows, n)
        Non-negative weights (or log-weights with ``log=True``); they
        broadcast against each other. ``M >= 2``.
    log : bool, default=False
        Whether the arguments are logarithms.

    Returns
    -------
    divergence : float or ndarray of shape (n_rows,)
        ``+inf`` where ``prod_m p_m`` is zero everywhere.

    Examples
    --------
    >>> from skxmr.metrics import gcs_divergence, cs_divergence
    >>> p, q, r = [0.2, 0.8], [0.5, 0.5], [0.6, 0.4]
    >>> round(gcs_divergence(p, q, r), 4)    # -log(0.22 / (|p|_3 |q|_3 |r|_3))
    0.4097
    >>> gcs_divergence(p, q) == cs_divergence(p, q)
    True
    """
    if len(ps) < 2:
        raise ValueError(f"gcs_divergence needs at least 2 distributions, got {len(ps)}.")
    return _gcs_logs([_as_log(p, f"ps[{m}]", log) for m, p in enumerate(ps)])
