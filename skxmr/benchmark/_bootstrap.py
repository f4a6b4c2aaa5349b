"""Paired bootstrap interval of a difference of per-query scores."""

import numpy as np
from sklearn.utils import check_random_state

from ..utils._validation import check_matrix

# Resample counts are drawn this many resamples at a time, so memory stays
# at 8 * _BLOCK * n_queries bytes whatever n_resamples is.
_BLOCK = 256


def paired_bootstrap_ci(a, b, *, n_resamples=1000, confidence=0.95, random_state=0):
    """Mean of ``a - b`` over queries and its percentile bootstrap interval.

    Both arrays hold one value per test query (e.g. 100 * hit@1) for two
    methods on the *same* queries; resampling queries with replacement and
    keeping each query's pair of values together (a paired bootstrap) gives
    the interval of the difference of their means, which accounts for the
    two methods' correlation on a query.

    Each resample is a vector of multinomial counts over the queries, so the
    resampled means are one matrix-vector product per block of resamples;
    no Python loop runs over queries.

    Parameters
    ----------
    a, b : array-like of shape (n_queries,)
        Per-query values of the method and of the reference.
    n_resamples : int, default=1000
    confidence : float, default=0.95
        Central coverage of the interval.
    random_state : int, RandomState instance or None, default=0
        Seed of the resampling; the default gives the same interval each call.

    Returns
    -------
    delta : float
        ``mean(a) - mean(b)``.
    low, high : float
        The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles
        of the resampled differences.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.benchmark._bootstrap import paired_bootstrap_ci
    >>> a = np.r_[np.ones(60), np.zeros(40)]       # hit@1 of a method
    >>> paired_bootstrap_ci(a, a)                    # identical: no spread
    (0.0, 0.0, 0.0)
    >>> delta, lo, hi = paired_bootstrap_ci(a, np.zeros(100))
    >>> delta, bool(lo < 0.6 < hi)
    (0.6, True)
    """
    d = check_matrix(np.subtract(*_check_paired(a, b)).reshape(-1, 1), "a - b").ravel()
    if not isinstance(n_resamples, (int, np.integer)) or isinstance(n_resamples, bool) \
            or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    n = d.size
    rng = check_random_state(random_state)
    means = np.empty(n_resamples)
    uniform = np.full(n, 1.0 / n)
    for start in range(0, n_resamples, _BLOCK):
        stop = min(start + _BLOCK, n_resamples)
        counts = rng.multinomial(n, uniform, size=stop - start)
        means[start:stop] = counts @ d / n
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(d.mean()), float(low), float(high)


def _check_paired(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(
            f"a and b must be 1-D with one value per query, of the same non-zero "
            f"length; got shapes {a.shape} and {b.shape}."
        )
    return a, b
