"""Settings read off the fitted banks: the ``"auto"`` temperatures and neighbourhood sizes.

The papers tuned their temperatures and neighbourhood sizes on banks of
about 10^5 items; users fit banks of 10^2 to 10^5. ``"auto"`` scales them
with the bank (``benchmarks/bench_defaults.py`` measures the rules on
bank validation of the bundled COCO and the MSR-VTT sets):

* a temperature ``τ = c · spread / log(n_bank)``, where ``spread`` is how
  widely a gallery-bank item's similarities to the query bank vary
  (:func:`bank_spread`). Dividing by the spread makes ``τ`` follow the
  scale of the encoder's similarities; the ``log`` term sharpens it as the
  bank grows (from 25 to 200 COCO bank items the measured best ``τ`` fell
  1.4x for IS and 7.5x for SN). With CLIP's spread on COCO (0.046-0.047) it gives SN
  ``τ ≈ 0.010`` at 10^5 bank items: the paper's value at its bank size.
* NNN's neighbourhood ``k = round(sqrt(n_bank))``, at most the paper's 256
  (reached at 65,536 bank items).

``c`` per method is the constant with the lowest bank-validation regret,
rounded (the rounded constants' regret equals the best one's to 0.01 R@1).
"""

import math
from functools import partial

from ..utils._backend import astype, get_backend
from ..utils._params import MAX_TEMPERATURE, MIN_TEMPERATURE

#: ``c`` of ``τ = c · spread / log(n_bank)`` per family, measured (module docstring).
SINKHORN_SCALE = 2.5
SOFTMAX_SCALE = 4.0
DBNORM_SCALE = 2.6
#: NNN's ``k`` at large banks (its paper's default).
NNN_MAX_NEIGHBORS = 256


def bank_spread(bank, items):
    """How widely the similarities to a bank vary: ``sqrt(mean_x Var_b(bᵀx))``.

    The standard deviation, over the rows ``b`` of ``bank``, of the
    similarity ``bᵀx`` of one row ``x`` of ``items``, as a root mean square
    over ``items``. It equals ``sqrt(tr(C M))`` with ``C`` the covariance
    of the bank rows and ``M = itemsᵀ items / n_items``: two ``d × d``
    matrices in float64, without forming the similarities.

    Parameters
    ----------
    bank : array of shape (n_bank, n_features)
    items : array of shape (n_items, n_features)

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.hubness._defaults import bank_spread
    >>> bank = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> # x = (1, 0) sees similarities 1 and 0: a standard deviation of 0.5
    >>> bank_spread(bank, np.array([[1.0, 0.0]]))
    0.5
    """
    nx = get_backend(bank=bank, items=items)
    B, X = astype(bank, "float64"), astype(items, "float64")
    centred = B - nx.mean(B, axis=0)[None, :]
    C = nx.dot(centred.T, centred) / B.shape[0]
    M = nx.dot(X.T, X) / X.shape[0]
    return math.sqrt(max(float(nx.sum(C * M)), 0.0))


def bank_temperature(query_bank, gallery_bank, *, scale, paper, name="temperature"):
    """``τ = scale · bank_spread(query_bank, gallery_bank) / log(n_bank)``.

    Where the similarities do not vary (every bank query alike: a spread of
    0), a column's potential is its one similarity plus a constant whatever
    ``τ``, and the paper's value ``paper`` is returned.

    Raises
    ------
    ValueError
        No gallery bank (a two-view function given ``"auto"``); ``name``
        says which parameter.
    """
    if gallery_bank is None:
        raise ValueError(
            f"{name}='auto' reads the query bank's similarities to a gallery bank, and "
            "this function has none: pass a number (or fit the estimator on pairs)."
        )
    tau = scale * bank_spread(query_bank, gallery_bank) / math.log(max(query_bank.shape[0], 2))
    return tau if MIN_TEMPERATURE <= tau <= MAX_TEMPERATURE else paper


def nnn_neighbors(query_bank, gallery_bank):
    """NNN's ``k = round(sqrt(n_bank))``, between 1 and 256."""
    return int(min(NNN_MAX_NEIGHBORS, max(1, round(math.sqrt(query_bank.shape[0])))))


def auto_doc(scale, paper):
    """The docstring sentence of an ``"auto"`` temperature."""
    return (f'``"auto"`` sets ``τ = {scale:g} · spread / log(n_bank)`` from the fitted banks '
            f"(``temperature_``; see :ref:`auto-defaults`); {paper:g} is the paper's value, "
            "tuned on banks of about 10^5 items")


sinkhorn_temperature = partial(bank_temperature, scale=SINKHORN_SCALE, paper=0.01)
softmax_temperature = partial(bank_temperature, scale=SOFTMAX_SCALE, paper=0.05)
dbnorm_temperature = partial(bank_temperature, scale=DBNORM_SCALE, paper=0.05,
                             name="query_temperature")
