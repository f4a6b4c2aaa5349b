"""Split paired rows by item into a training bank and a test set."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from ..utils._validation import check_matrix


def _n_bank_groups(bank_size, n_groups):
    """Number of groups on the bank side, at least one on each side."""
    if isinstance(bank_size, (bool, np.bool_)) or not isinstance(bank_size, Real):
        raise TypeError(
            f"bank_size must be a float in (0, 1) or an int, got {bank_size!r}."
        )
    if isinstance(bank_size, Integral):
        n_bank = int(bank_size)
        if not 1 <= n_bank <= n_groups - 1:
            raise ValueError(
                f"bank_size={n_bank} groups must be in [1, {n_groups - 1}] so that "
                f"both sides of the {n_groups} groups are non-empty."
            )
        return n_bank
    if not 0.0 < bank_size < 1.0:  # also rejects nan
        raise ValueError(f"bank_size given as a fraction must be in (0, 1), got {bank_size!r}.")
    n_bank = int(np.floor(bank_size * n_groups))
    if not 1 <= n_bank <= n_groups - 1:
        raise ValueError(
            f"bank_size={bank_size} of {n_groups} groups gives {n_bank} bank "
            "groups; both sides must be non-empty."
        )
    return n_bank


def bank_test_split(X, groups=None, *, bank_size=0.5, random_state=0):
    """Split paired rows into a training bank and a test set, by item.

    Methods are fitted on a *bank* (embeddings of a training/validation split)
    and evaluated on held-out test pairs. Rows that share a group (an image
    with several captions) always land on the same side, so no item leaks from
    the bank into the test gallery. Groups are shuffled with ``random_state``
    and the first ``bank_size`` of them form the bank; within each side, rows
    keep their original order.

    Parameters
    ----------
    X : array-like of shape (n_pairs, n_features)
        Paired rows, e.g. ``data.X`` of a fetcher or of
        :func:`make_retrieval_problem`.
    groups : array-like of shape (n_pairs,), default=None
        Item id of each row (``data.groups``). ``None`` treats every row as
        its own item (ids ``0 .. n_pairs - 1``), which is only right when no
        item repeats.
    bank_size : float or int, default=0.5
        Fraction of the groups in the bank, in (0, 1) (rounded down), or
        their number. Both sides must get at least one group.
    random_state : int, RandomState instance or None, default=0
        Seed of the shuffle; the default gives the same split every call.

    Returns
    -------
    X_bank : ndarray of shape (n_bank_rows, n_features)
        Rows of the bank items (fit methods on these).
    X_test : ndarray of shape (n_test_rows, n_features)
        Rows of the held-out items (evaluate on these).
    groups_bank : ndarray of shape (n_bank_rows,)
        The groups of the bank rows (row indices when ``groups`` is None):
        pass them to ``GroupKFold`` when tuning on the bank.
    groups_test : ndarray of shape (n_test_rows,)
        The groups of the test rows.

    The same four values come back with or without ``groups``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.datasets import bank_test_split, make_retrieval_problem
    >>> data = make_retrieval_problem(100, 8, captions_per_item=5, random_state=0)
    >>> X_bank, X_test, g_bank, g_test = bank_test_split(data.X, data.groups)
    >>> X_bank.shape, X_test.shape
    ((250, 16), (250, 16))
    >>> np.intersect1d(g_bank, g_test).size
    0
    """
    X = check_matrix(X, "X")
    n = X.shape[0]
    if groups is None:
        groups = codes = np.arange(n)
    else:
        groups = np.asarray(groups)
        if groups.ndim != 1 or groups.shape[0] != n:
            raise ValueError(
                f"groups must be 1-D with one item id per row of X ({n}), "
                f"got shape {groups.shape}."
            )
        _, codes = np.unique(groups, return_inverse=True)
        codes = codes.ravel()
    n_groups = int(codes.max()) + 1 if n else 0
    if n_groups < 2:
        raise ValueError(f"X holds {n_groups} group(s); a bank/test split needs at least 2.")
    n_bank = _n_bank_groups(bank_size, n_groups)
    rng = check_random_state(random_state)
    in_bank = np.zeros(n_groups, dtype=bool)
    in_bank[rng.permutation(n_groups)[:n_bank]] = True
    mask = in_bank[codes]
    return X[mask], X[~mask], groups[mask], groups[~mask]
