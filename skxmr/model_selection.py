"""Model selection whose validation resembles the deployment.

A re-scoring method is fitted on a *bank* of pairs and then ranks a
*gallery* it has not seen. Its best hyperparameters depend on both sizes:
the sharper temperatures of Sinkhorn or inverted-softmax normalisation pay
off when many gallery items compete, and the statistics of a small bank
are noisier. ``GroupKFold(3)`` on a bank of ``n`` items validates on
galleries of ``n / 3`` items with banks of ``2n / 3``, a problem easier than
the test (a gallery of ``n`` items, a bank of ``n``): bank-CV R@1 sits far
above test R@1 and the setting it picks does not transfer as well.

:class:`BankSplit` draws repeated random splits of the bank by item in
which the validation gallery is as large as the deployment gallery (its
``gallery_size``), as far as the bank allows, and otherwise the bank and
gallery keep the deployment's proportion. It is a scikit-learn splitter:
``GridSearchCV(est, grid, cv=BankSplit(...))`` with ``groups`` (item ids)
passed to ``fit``.

:func:`skip_unless_reliable` and :func:`one_standard_error` choose a grid
search's point where some points skip a fitted step
(``GridSearchCV(..., refit=skip_unless_reliable)``): the first keeps the
step only when it beats skipping it fold by fold by more than twice the
standard error of the gains, the second when skipping it scores more than
one standard error below the best.
"""

import numbers

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state
from .utils._compat import Interval, validate_params


class BankSplit(BaseCrossValidator):
    """Repeated random bank/validation splits by item, sized like the deployment.

    Each split puts a random set of whole items (all rows of a group) in
    the validation fold and the rest in the training bank. The validation
    fold holds ``gallery_size`` items when the bank has room for it next to
    a training bank at least as large (``n_items >= 2 * gallery_size``);
    otherwise the bank is split in the deployment's proportion ``bank :
    gallery = (n_items) : (gallery_size)``, i.e. a share ``gallery_size /
    (n_items + gallery_size)`` of the items validates. Without
    ``gallery_size`` the share is one half (a test gallery as large as the
    bank, as in ``skxmr benchmark``).

    Unlike ``GroupKFold``, the validation folds may overlap across splits
    (Monte-Carlo cross-validation): more splits average out which items
    happened to validate, at the cost of more fits.

    Parameters
    ----------
    n_splits : int, default=5
        Number of random splits.
    gallery_size : int or float, default=None
        Items in the deployment gallery (an int), or its size as a multiple
        of the bank (a float, e.g. ``1.0`` for a gallery as large as the
        bank). ``None``: ``1.0``.
    random_state : int, RandomState instance or None, default=0
        Seed of the draws; the default gives the same splits every call.

    See Also
    --------
    sklearn.model_selection.GroupShuffleSplit : The same draws with a fixed share.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skxmr import SinkhornNormalizer
    >>> from skxmr.datasets import bank_test_split, load_coco_clip
    >>> from skxmr.metrics import make_retrieval_scorer
    >>> from skxmr.model_selection import BankSplit
    >>> coco = load_coco_clip()
    >>> X_bank, X_test, g_bank, _ = bank_test_split(coco.X, coco.groups)
    >>> cv = BankSplit(n_splits=3, gallery_size=len(X_test))
    >>> [len(val) for _, val in cv.split(X_bank, groups=g_bank)]
    [125, 125, 125]
    >>> search = GridSearchCV(
    ...     SinkhornNormalizer(), {"temperature": [0.02, 0.05], "strength": [0.5, 1.0]},
    ...     scoring=make_retrieval_scorer("recall", k=1), cv=cv,
    ... ).fit(X_bank, groups=g_bank)
    >>> sorted(search.best_params_)
    ['strength', 'temperature']
    """

    @validate_params(
        {
            "n_splits": [Interval(numbers.Integral, 1, None, closed="left")],
            "gallery_size": [
                Interval(numbers.Integral, 1, None, closed="left"),
                Interval(numbers.Real, 0, None, closed="neither"),
                None,
            ],
            "random_state": ["random_state"],
        },
        prefer_skip_nested_validation=True,
    )
    def __init__(self, n_splits=5, *, gallery_size=None, random_state=0):
        self.n_splits = n_splits
        self.gallery_size = gallery_size
        self.random_state = random_state

    def get_n_splits(self, X=None, y=None, groups=None):
        """The number of splits, ``n_splits``."""
        return self.n_splits

    def validation_items(self, n_items):
        """Items per validation fold for a bank of ``n_items`` items.

        Examples
        --------
        >>> from skxmr.model_selection import BankSplit
        >>> BankSplit(gallery_size=100).validation_items(1000)   # room for it
        100
        >>> BankSplit(gallery_size=250).validation_items(250)    # 250 : 250
        125
        >>> BankSplit().validation_items(250)                     # as large as the bank
        125
        """
        size = 1.0 if self.gallery_size is None else self.gallery_size
        if isinstance(size, numbers.Integral) and not isinstance(size, bool):
            wanted = int(size)
        else:
            wanted = float(size) * n_items
        if n_items >= 2 * wanted:
            n_val = int(round(wanted))
        else:  # keep the deployment's proportion bank : gallery
            n_val = int(round(n_items * wanted / (n_items + wanted)))
        if n_items < 2:
            raise ValueError(f"BankSplit needs at least 2 items (groups), got {n_items}.")
        return min(max(n_val, 1), n_items - 1)

    def _iter_test_indices(self, X=None, y=None, groups=None):
        if groups is None:
            groups = np.arange(len(X))
        codes = np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
        n_items = int(codes.max()) + 1
        n_val = self.validation_items(n_items)
        rng = check_random_state(self.random_state)
        for _ in range(self.n_splits):
            chosen = np.zeros(n_items, dtype=bool)
            chosen[rng.permutation(n_items)[:n_val]] = True
            yield np.flatnonzero(chosen[codes])

    def split(self, X, y=None, groups=None):
        """Training-bank and validation indices of each split.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_features)
        y : array-like, default=None
            Ignored.
        groups : array-like of shape (n_pairs,), default=None
            Item id of each row; rows of one item stay together. ``None``:
            every row is its own item.

        Yields
        ------
        train, validation : ndarray
            Row indices.
        """
        n = len(X)
        if groups is not None and len(groups) != n:
            raise ValueError(
                f"groups must hold one item id per row of X ({n}), got {len(groups)}."
            )
        return super().split(X, y, groups)




def skips_a_step(point):
    """Whether a grid point replaces a Pipeline step by ``"passthrough"``."""
    return any(isinstance(v, str) and v == "passthrough" for v in point.values())


def one_standard_error(cv_results):
    """The best grid point, unless skipping a fitted step does as well within
    one standard error.

    The one-standard-error rule (Hastie, Tibshirani and Friedman, *The
    Elements of Statistical Learning*, section 7.10) applied to the steps a
    method fits: a point that skips a Pipeline step (``"passthrough"``, e.g.
    no alignment map: plain cosine) is kept when its mean validation score is
    within one standard error (of the best point's fold scores) of the best;
    among such points the higher mean wins. A map fitted on a few hundred
    bank pairs has thousands of parameters and validation folds of a few
    dozen items cannot tell it from none unless it helps by more than the
    fold-to-fold noise. Points that differ in ``strength``, a temperature or
    a neighbourhood size fit the same statistics and are chosen by their
    mean, as ``GridSearchCV`` does (ties to the first point): preferring a
    smaller ``strength`` the same way raised the test regret of the choice
    on the bundled COCO and on MSR-VTT. Usable as ``GridSearchCV(...,
    refit=one_standard_error)``.

    Parameters
    ----------
    cv_results : dict
        ``GridSearchCV.cv_results_`` (``params``, ``mean_test_score``,
        ``split{i}_test_score``).

    Returns
    -------
    index : int
        Into ``cv_results["params"]``.

    See Also
    --------
    skip_unless_reliable : Keep the step only when its fold-by-fold gain
        over skipping it is reliable (what ``skxmr benchmark --tune`` uses).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.model_selection import one_standard_error
    >>> cv_results = {"params": [{"map": "passthrough"}, {"map__alpha": 1.0},
    ...                          {"map__alpha": 10.0}],
    ...               "split0_test_score": np.array([72.0, 71.0, 70.0]),
    ...               "split1_test_score": np.array([72.0, 75.0, 70.0])}
    >>> cv_results["mean_test_score"] = (cv_results["split0_test_score"]
    ...                                  + cv_results["split1_test_score"]) / 2
    >>> one_standard_error(cv_results)  # best 73 ± 2: skipping the map (72) qualifies
    0
    """
    folds = _fold_scores(cv_results)
    n_folds = folds.shape[1]
    mean = np.asarray(cv_results["mean_test_score"], dtype=np.float64)
    if np.isnan(mean).all():
        return 0
    best = int(np.nanargmax(mean))
    se = folds[best].std(ddof=1) / np.sqrt(n_folds) if n_folds > 1 else 0.0
    skipping = [i for i in np.flatnonzero(mean >= mean[best] - se)
                if skips_a_step(cv_results["params"][i])]
    if not skipping:
        return best
    return int(max(skipping, key=lambda i: (mean[i], -i)))


def _fold_scores(cv_results):
    n_folds = sum(1 for key in cv_results if key.startswith("split")
                  and key.endswith("_test_score"))
    return np.column_stack([cv_results[f"split{i}_test_score"] for i in range(n_folds)])


def skip_unless_reliable(cv_results):
    """The best grid point, unless it fits a step that it does not beat
    skipping reliably.

    Where some grid points skip a Pipeline step (``"passthrough"``, e.g. no
    alignment map: plain cosine), the best point by mean validation score
    that fits the step is kept only when its gain over the best skipping
    point, fold by fold, has a mean minus twice its standard error above 0
    (the folds pair the two: each gain compares them on the same
    validation items, so the fold-to-fold differences in difficulty
    cancel). Otherwise the best skipping point is chosen. This is the rule
    of ``skxmr benchmark --save-best`` for a method against cosine, applied
    to a step against no step. Without skipping points, and for the points
    that differ in ``strength``, a temperature or a neighbourhood size, the
    best mean wins, as in ``GridSearchCV`` (ties to the first point).

    A map fitted on a few hundred bank pairs has thousands of parameters,
    and its validation folds of a few dozen items decide by a handful of
    queries: one fold gaining four of seventeen items while the two others
    tie is a mean gain of 7.8 R@1 but no evidence (on MSR-VTT's 50-pair
    banks such choices lost 2.4 R@1 on the test splits on average). A gain
    seen in every fold is. With a single fold there is no standard error
    and the step is skipped. Usable as ``GridSearchCV(...,
    refit=skip_unless_reliable)``.

    Parameters
    ----------
    cv_results : dict
        ``GridSearchCV.cv_results_`` (``params``, ``mean_test_score``,
        ``split{i}_test_score``).

    Returns
    -------
    index : int
        Into ``cv_results["params"]``.

    See Also
    --------
    one_standard_error : Skip the step when it scores within one standard
        error of the best point.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.model_selection import skip_unless_reliable
    >>> cv_results = {"params": [{"map": "passthrough"}, {"map__alpha": 1.0}],
    ...               "split0_test_score": np.array([64.7, 64.7]),
    ...               "split1_test_score": np.array([47.1, 70.6]),
    ...               "split2_test_score": np.array([50.0, 50.0])}
    >>> cv_results["mean_test_score"] = np.mean(
    ...     [cv_results[f"split{i}_test_score"] for i in range(3)], axis=0)
    >>> skip_unless_reliable(cv_results)  # gains 0, 23.5, 0: no evidence
    0
    >>> cv_results["split0_test_score"] = np.array([47.1, 52.9])
    >>> cv_results["split2_test_score"] = np.array([50.0, 62.5])
    >>> cv_results["split1_test_score"] = np.array([52.9, 58.8])
    >>> cv_results["mean_test_score"] = np.mean(
    ...     [cv_results[f"split{i}_test_score"] for i in range(3)], axis=0)
    >>> skip_unless_reliable(cv_results)  # gains 5.9, 5.9, 12.5 R@1
    1
    """
    folds = _fold_scores(cv_results)
    mean = np.asarray(cv_results["mean_test_score"], dtype=np.float64)
    if np.isnan(mean).all():
        return 0
    best = int(np.nanargmax(mean))
    params = cv_results["params"]
    skipping = [i for i in range(len(params)) if skips_a_step(params[i])]
    if not skipping or best in skipping:
        return best
    skip = int(max(skipping, key=lambda i: (mean[i], -i)))
    gain = folds[best] - folds[skip]
    if gain.size < 2:
        return skip
    stderr = gain.std(ddof=1) / np.sqrt(gain.size)
    return best if gain.mean() - 2 * stderr > 0 else skip


__all__ = ["BankSplit", "one_standard_error", "skip_unless_reliable", "skips_a_step"]
