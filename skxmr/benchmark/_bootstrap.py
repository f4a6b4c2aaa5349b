"""Bootstrap intervals of a difference of per-query scores: paired (one
bank/test split, on scipy) and two-stage (repeated splits)."""

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
    _check_resampling(n_resamples, confidence)
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


def split_bootstrap_ci(deltas, *, n_resamples=1000, confidence=0.95, random_state=0):
    """Mean difference over repeated bank/test splits and its two-stage interval.

    ``deltas`` holds, for each split, the per-query differences ``a - b``
    of a method and the reference on that split's test queries. Each
    resample draws the splits with replacement (the split-to-split
    variation: which items formed the bank and which the test set) and,
    within every drawn split, its test queries with replacement (the query
    sampling), and averages the resampled split means; the interval is the
    percentile interval of those averages. With one split it is
    :func:`paired_bootstrap_ci` of that split.

    Parameters
    ----------
    deltas : sequence of array-like of shape (n_queries_s,)
        Per-query differences, one array per split (lengths may differ).
    n_resamples : int, default=1000
    confidence : float, default=0.95
    random_state : int, RandomState instance or None, default=0

    Returns
    -------
    delta : float
        Mean over splits of each split's mean difference.
    low, high : float
        Percentiles of the resampled means.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.benchmark._bootstrap import split_bootstrap_ci
    >>> same = [np.ones(50), np.ones(50)]        # +1 on every query of both splits
    >>> split_bootstrap_ci(same)
    (1.0, 1.0, 1.0)
    >>> delta, lo, hi = split_bootstrap_ci([np.r_[np.ones(25), -np.ones(25)], np.ones(50)])
    >>> delta, bool(lo < 0.5 < hi)
    (0.5, True)
    """
    if isinstance(deltas, np.ndarray) and deltas.ndim < 2 or not len(deltas):
        raise ValueError("deltas must be a non-empty list of 1-D arrays, one per split.")
    ds = [np.asarray(d, dtype=np.float64).ravel() for d in deltas]
    if any(d.size == 0 for d in ds):
        raise ValueError("every split needs at least one query in deltas.")
    if len(ds) == 1:
        return paired_bootstrap_ci(ds[0], np.zeros_like(ds[0]), n_resamples=n_resamples,
                                   confidence=confidence, random_state=random_state)
    ds = [check_matrix(d.reshape(-1, 1), f"deltas[{i}]").ravel() for i, d in enumerate(ds)]
    _check_resampling(n_resamples, confidence)
    rng = check_random_state(random_state)
    delta = float(np.mean([d.mean() for d in ds]))
    picks = rng.randint(len(ds), size=(n_resamples, len(ds)))
    means = np.empty(picks.shape)
    for s, d in enumerate(ds):
        # the drawn copies of split s, each with its own resample of queries,
        # _BATCH at a time (memory 8 * _BATCH * n_queries bytes)
        rows, cols = np.nonzero(picks == s)
        uniform = np.full(d.size, 1.0 / d.size)
        for start in range(0, rows.size, _BATCH):
            block = slice(start, start + _BATCH)
            counts = rng.multinomial(d.size, uniform, size=rows[block].size)
            means[rows[block], cols[block]] = counts @ d / d.size
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(means.mean(axis=1), [tail, 100.0 - tail])
    return delta, float(low), float(high)


def _check_resampling(n_resamples, confidence):
    if not isinstance(n_resamples, (int, np.integer)) or isinstance(n_resamples, bool) \
            or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")


def _check_paired(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(
            f"a and b must be 1-D with one value per query, of the same non-zero "
            f"length; got shapes {a.shape} and {b.shape}."
        )
    return a, b
