"""Paired bootstrap interval of a difference of per-query scores, on scipy."""

import inspect

import numpy as np
from scipy import stats
from sklearn.utils import check_random_state

from ..utils._validation import check_matrix

# Resamples are drawn this many at a time (scipy's ``batch``), so memory stays
# at about 8 * _BATCH * n_queries bytes whatever n_resamples is.
_BATCH = 256
METHODS = ("percentile", "BCa", "basic")
# scipy 1.15 renamed bootstrap's ``random_state`` to ``rng``.
_SEED_ARG = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


def _mean_difference(a, b, axis=-1):
    return np.mean(a - b, axis=axis)


def paired_bootstrap_ci(a, b, *, n_resamples=1000, confidence=0.95, random_state=0,
                        method="percentile"):
    """Mean of ``a - b`` over queries and its paired bootstrap interval.

    Both arrays hold one value per test query (e.g. 100 * hit@1) for two
    methods on the *same* queries; resampling queries with replacement and
    keeping each query's pair of values together (a paired bootstrap) gives
    the interval of the difference of their means, which accounts for the
    two methods' correlation on a query. Computed by
    :func:`scipy.stats.bootstrap` with ``paired=True`` and a vectorised
    statistic, in batches of resamples (bounded memory).

    Parameters
    ----------
    a, b : array-like of shape (n_queries,)
        Per-query values of the method and of the reference.
    n_resamples : int, default=1000
    confidence : float, default=0.95
        Central coverage of the interval.
    random_state : int, RandomState instance or None, default=0
        Seed of the resampling; the default gives the same interval each call.
    method : {"percentile", "BCa", "basic"}, default="percentile"
        scipy's interval. ``"percentile"``: the ``(1 - confidence) / 2`` and
        ``(1 + confidence) / 2`` percentiles of the resampled differences
        (the benchmark's intervals). ``"BCa"``: bias-corrected and
        accelerated, second-order accurate, at the cost of a jackknife
        (``n_queries`` extra evaluations); with many tied per-query values
        (0/100 hits) its bias correction is not symmetric in ``a`` and
        ``b``. ``"basic"``: the reversed percentile interval.

    Returns
    -------
    delta : float
        ``mean(a) - mean(b)``.
    low, high : float
        The interval's ends. When every query has the same difference (no
        spread to resample) both equal ``delta``.

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
    a, b = _check_paired(a, b)
    d = check_matrix(np.subtract(a, b).reshape(-1, 1), "a - b").ravel()
    if not isinstance(n_resamples, (int, np.integer)) or isinstance(n_resamples, bool) \
            or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    delta = float(d.mean())
    if np.ptp(d) == 0:
        # Every resample has the same mean: the interval is that point (scipy
        # would warn of degenerate data and, for BCa, return NaN).
        return delta, delta, delta
    res = stats.bootstrap(
        (a, b), _mean_difference, paired=True, vectorized=True, n_resamples=n_resamples,
        batch=_BATCH, confidence_level=confidence, method=method,
        **{_SEED_ARG: check_random_state(random_state)},
    )
    low, high = res.confidence_interval
    return delta, float(low), float(high)


def _check_paired(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(
            f"a and b must be 1-D with one value per query, of the same non-zero "
            f"length; got shapes {a.shape} and {b.shape}."
        )
    return a, b
