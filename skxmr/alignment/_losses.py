"""Matching losses of Cauchy-Schwarz alignment, with analytic gradients.

Every loss compares, row by row, a *predicted matching distribution*
``p_i = softmax(logits[i])`` (``logits = cosine / temperature``) with the
*true matching distribution* ``q_i`` given by a relevance matrix (``q_i`` is
proportional to row ``i`` of ``relevance``), in both directions (rows and
columns of the logits), as CMPM does.

All three are evaluated in the log domain, from the logits: ``log p`` is
``logits - logsumexp(logits)`` and never underflows, so a saturated softmax
(temperature 0.01, or a prediction that puts all its mass off the target's
support) gives a finite loss and a finite gradient. The Cauchy-Schwarz losses
need no epsilon; the CMPM-KL baseline keeps the paper's ``epsilon`` inside
``log(q + epsilon)`` because ``q`` has zeros.

The gradients have a closed form. For the (generalised) Cauchy-Schwarz loss
of a row with predicted distributions ``p_1 .. p_K`` (softmax of logits
``l_1 .. l_K``) and target ``q``, using the ``r = K + 1``-norm,

    d GCS / d l_k = softmax(r * l_k) - a,    a_j ∝ q_j * prod_k p_k(j),

(``K = 1``, ``r = 2``: the Cauchy-Schwarz loss); for the KL loss
``d KL / d l = p * (log p - log(q + eps) - KL)``.
"""

import numpy as np

from ..utils._math import gcs_rows, log_weights, logsumexp

__all__ = ["cauchy_schwarz_loss", "cmpm_kl_loss", "generalized_cauchy_schwarz_loss"]


def _check_logits(logits, name="logits", n_views=1):
    L = np.asarray(logits)
    if np.iscomplexobj(L) or L.dtype == object:
        # np.asarray(..., float64) would drop the imaginary part silently.
        raise TypeError(f"{name} must hold real numbers, got dtype {L.dtype}.")
    L = L.astype(np.float64)
    if L.ndim != 2 or L.shape[0] < 1 or L.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {L.shape}.")
    if not np.all(np.isfinite(L)):
        raise ValueError(f"{name} contains NaN or infinity.")
    # log p = L - logsumexp(L) spans up to twice the largest |L|, and the
    # losses add n_views + 1 of those in the (n_views + 1)-norms: beyond
    # this bound they overflow float64 (loss inf, gradient NaN).
    limit = np.finfo(np.float64).max / (4 * (n_views + 1))
    largest = float(np.abs(L).max())
    if largest > limit:
        raise ValueError(
            f"{name} holds values of magnitude {largest:.3g}; above {limit:.3g} the "
            "log-softmax differences overflow float64 (the loss would be inf and its "
            "gradient NaN). Scale the logits down (a larger temperature)."
        )
    return L


def _check_relevance(relevance, shape):
    R = np.asarray(relevance)
    if np.iscomplexobj(R) or R.dtype == object:
        raise TypeError(f"relevance must hold real weights, got dtype {R.dtype}.")
    if R.shape != shape:
        raise ValueError(f"relevance has shape {R.shape} but logits has shape {shape}.")
    R = R.astype(np.float64)
    if not np.all(np.isfinite(R)) or np.any(R < 0):
        raise ValueError("relevance must hold finite non-negative weights.")
    for axis, what in ((1, "row"), (0, "column")):
        empty = np.flatnonzero(~np.any(R > 0, axis=axis))
        if empty.size:
            raise ValueError(
                f"relevance gives {empty.size} {what}(s) no relevant item (first: "
                f"{what} {empty[0]}); the true matching distribution is undefined."
            )
    return R


def log_softmax(L):
    """Row-wise log-softmax."""
    return L - logsumexp(L, axis=1, keepdims=True)


def cauchy_schwarz_loss(logits, relevance):
    """Bidirectional Cauchy-Schwarz matching loss and its gradient.

    .. math::

        \\mathcal{L} = \\frac{1}{n_a}\\sum_i D_{CS}(p_{i\\cdot}, q_{i\\cdot})
        + \\frac{1}{n_b}\\sum_j D_{CS}(\\tilde p_{\\cdot j}, \\tilde q_{\\cdot j}),
        \\qquad D_{CS}(p, q) = -\\log\\frac{\\langle p, q\\rangle}{\\|p\\|_2\\|q\\|_2}

    with ``p_i = softmax(logits[i, :])`` (rows: a -> b), ``p~_j =
    softmax(logits[:, j])`` (columns: b -> a) and ``q`` the relevance
    normalised along the same axis (CS is scale invariant, so the
    normalisation is implicit). No epsilon: every term is a log-sum-exp of
    the logits.

    Parameters
    ----------
    logits : array-like of shape (n_a, n_b)
        Similarities divided by the temperature, e.g. ``cos(a_i, b_j) / tau``.
        Finite, of magnitude at most ``max(float64) / 8`` (about 2e307;
        beyond it the loss overflows and ``ValueError`` is raised).
    relevance : array-like of shape (n_a, n_b)
        Non-negative weights (bool for labels/pairs); ``relevance[i, j] > 0``
        iff ``b_j`` is a true match of ``a_i``. Every row and column needs one.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_a, n_b)
        Derivative of ``loss`` with respect to ``logits``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.alignment import cauchy_schwarz_loss
    >>> loss, grad = cauchy_schwarz_loss(3 * np.eye(2), np.eye(2))
    >>> round(loss, 4), grad.shape
    (0.0025, (2, 2))
    >>> loss, grad = cauchy_schwarz_loss(-300 * np.eye(2), np.eye(2))  # saturated, wrong
    >>> loss, grad.tolist()
    (600.0, [[-1.0, 1.0], [1.0, -1.0]])
    """
    L = _check_logits(logits)
    R = _check_relevance(relevance, L.shape)
    log_q = log_weights(R)
    v_row, (g_row,) = gcs_rows([log_softmax(L)], log_q)
    v_col, (g_col,) = gcs_rows([log_softmax(L.T)], log_q.T)
    loss = v_row.mean() + v_col.mean()
    grad = g_row / L.shape[0] + g_col.T / L.shape[1]
    return float(loss), grad


def generalized_cauchy_schwarz_loss(logits, relevance):
    """Generalised CS loss of M views, bidirectional circular matching.

    The views ``0 .. M-1`` are paired row-wise (item ``i`` of every view is
    the same entity) and compared in a circle: view ``m`` matches view
    ``m + 1 (mod M)``; ``logits[m] = cos(Z_m, Z_{m+1}) / tau``. Forward, row
    ``i`` has the M predicted distributions ``softmax(logits[m][i, :])``
    (entity ``i`` of view ``m`` over the items of view ``m + 1``); backward,
    ``softmax(logits[m][:, i])`` (entity ``i`` of view ``m + 1`` over view
    ``m``). Each direction's M distributions and the target form one
    generalised CS divergence with ``(M + 1)``-norms (Hölder),

    .. math::

        D_{GCS}(p_1, .., p_M, q) = -\\log
        \\frac{\\sum_j q_j \\prod_m p_m(j)}{\\|q\\|_{M+1} \\prod_m \\|p_m\\|_{M+1}},

    averaged over rows and summed over the two directions. The cost is ``M``
    similarity matrices, linear in the number of views, where pairwise
    alignment needs ``M (M - 1) / 2``.

    Parameters
    ----------
    logits : sequence of M array-likes of shape (n, n)
        ``logits[m]``: similarities of view ``m`` (rows) to view
        ``(m + 1) % M`` (columns) divided by the temperature.
    relevance : array-like of shape (n, n)
        Non-negative weights; ``relevance[i, j] > 0`` iff entities ``i`` and
        ``j`` match (identity for paired data, same label otherwise).

    Returns
    -------
    loss : float
    grads : list of M ndarrays of shape (n, n)
        Derivative of ``loss`` with respect to each ``logits[m]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.alignment import generalized_cauchy_schwarz_loss
    >>> L = 3 * np.eye(3)
    >>> loss, grads = generalized_cauchy_schwarz_loss([L, L, L], np.eye(3))
    >>> float(np.round(loss, 6)), len(grads)
    (1.8e-05, 3)
    """
    if isinstance(logits, np.ndarray) and logits.ndim == 2:
        raise TypeError("logits must be a sequence of M 2-D arrays, one per circular pair.")
    logits = list(logits)
    Ls = [_check_logits(L, f"logits[{m}]", len(logits)) for m, L in enumerate(logits)]
    if not Ls:
        raise ValueError("logits must hold at least one matrix.")
    shape = Ls[0].shape
    for m, L in enumerate(Ls):
        if L.shape != shape or shape[0] != shape[1]:
            raise ValueError(
                f"logits[{m}] has shape {L.shape}; the views are paired row-wise, "
                f"so every matrix must be square and alike (logits[0]: {shape})."
            )
    R = _check_relevance(relevance, shape)
    log_q = log_weights(R)
    n = shape[0]
    v_fwd, g_fwd = gcs_rows([log_softmax(L) for L in Ls], log_q)
    v_bwd, g_bwd = gcs_rows([log_softmax(L.T) for L in Ls], log_q.T)
    loss = v_fwd.mean() + v_bwd.mean()
    grads = [(gf + gb.T) / n for gf, gb in zip(g_fwd, g_bwd)]
    return float(loss), grads


def cmpm_kl_loss(logits, relevance, *, epsilon=1e-8):
    """Bidirectional CMPM loss (KL divergence), the baseline, and its gradient.

    Zhang & Lu (ECCV 2018): ``p_i = softmax(logits[i])``, ``q_i = y_i /
    sum_k y_ik`` and

    .. math::

        \\mathcal{L} = \\frac{1}{n_a}\\sum_i \\sum_j p_{ij}
        \\log\\frac{p_{ij}}{q_{ij} + \\epsilon} + (\\text{same on columns}).

    ``log p`` comes from the logits (no underflow); ``epsilon`` is the
    paper's constant that keeps ``log q`` finite where ``q = 0``. The loss
    therefore depends on ``epsilon``: mass put on a wrong item costs
    ``log(1 / epsilon)`` per unit. (The authors' public code divides the
    label mask by its L2 norm instead of its sum; we follow the paper.)

    Parameters
    ----------
    logits : array-like of shape (n_a, n_b)
        Similarities divided by the temperature.
    relevance : array-like of shape (n_a, n_b)
        Non-negative weights, as in :func:`cauchy_schwarz_loss`.
    epsilon : float, default=1e-8
        Smoothing inside ``log(q + epsilon)``.

    Returns
    -------
    loss : float
    grad : ndarray of shape (n_a, n_b)

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.alignment import cmpm_kl_loss
    >>> loss, grad = cmpm_kl_loss(5 * np.eye(2), np.eye(2))
    >>> round(loss, 3)
    0.166
    >>> loss, grad = cmpm_kl_loss(-300 * np.eye(2), np.eye(2))  # saturated, wrong
    >>> round(loss, 2), bool(abs(grad).max() < 1e-30)  # 2 log(1/eps); no gradient
    (36.84, True)
    """
    if not (np.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a positive finite number, got {epsilon!r}.")
    L = _check_logits(logits)
    R = _check_relevance(relevance, L.shape)

    def one_side(L, R):
        log_p = log_softmax(L)
        p = np.exp(log_p)
        delta = log_p - np.log(R / R.sum(axis=1, keepdims=True) + epsilon)
        kl = np.sum(p * delta, axis=1)
        return kl, p * (delta - kl[:, None])

    kl_row, g_row = one_side(L, R)
    kl_col, g_col = one_side(L.T, R.T)
    loss = kl_row.mean() + kl_col.mean()
    grad = g_row / L.shape[0] + g_col.T / L.shape[1]
    return float(loss), grad
