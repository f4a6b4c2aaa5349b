"""The metric table: every metric's name, function, sense, header and definition.

One row per metric, read by everything that names one: the scorers
(:func:`~skxmr.metrics.make_retrieval_scorer`), the reports
(:func:`~skxmr.metrics.retrieval_report`,
:func:`~skxmr.metrics.hubness_report`), the benchmark's rows, its
``--metrics`` and ``--help``, and every output writer.

A metric has one **name** (what code passes and reads: the scorer's
``metric``, the keys of the benchmark's rows and of ``hubness_report``,
``--metrics``) and one **header** (what a table shows: the column of the
text, Markdown and CSV tables and the key of the JSON file and of
``retrieval_report``). A metric with a cut-off ``k`` has ``{k}`` in its
header; a benchmark column of it at a fixed ``k`` is named ``name@k``
(``recall@5``, header ``R@5``).
"""

import warnings
from dataclasses import dataclass
from typing import Callable, Optional

from .hubness import antihub_rate, gini_index, hub_occurrence, hubness_skewness, robinhood_index
from .ranking import map_at_r, mean_rank, median_rank, r_precision, recall_at_k


@dataclass(frozen=True)
class Metric:
    """One row of the metric table.

    Attributes
    ----------
    name : str
        The metric's one name.
    function : callable or None
        ``function(S, relevance, k, ties) -> float`` on a score matrix;
        ``None`` for what is not computed from scores alone (the benchmark's
        times, Δ_deg of the embeddings, the bootstrap difference).
    greater_is_better : bool
        The metric's sense (a scorer negates it when ``False``).
    header : str
        Column header; ``{k}`` is replaced by the cut-off.
    fmt : str
        Format of one value in a text table.
    per_direction : bool
        The benchmark reports it in each direction (otherwise once, for q2g
        or both directions together).
    definition : str
        One sentence for ``--help`` and the docs.
    uses_k : bool
        Whether the metric takes a cut-off / neighbourhood ``k``.
    """

    name: str
    function: Optional[Callable]
    greater_is_better: bool
    header: str
    fmt: str
    per_direction: bool
    definition: str
    uses_k: bool = False

    def label(self, k=None):
        """The header at cut-off ``k``."""
        return self.header.format(k=k)

    def describe(self, k=None):
        """The definition at cut-off ``k``."""
        return self.definition.format(k=k, two_k=None if k is None else 2 * k)


def _ranked(func):
    return lambda S, R, k, ties: func(S, R, ties=ties)


def _hubness(func):
    return lambda S, R, k, ties: func(S, k)


_ROWS = (
    Metric("recall", lambda S, R, k, ties: recall_at_k(S, R, k, ties=ties), True, "R@{k}",
           "{:.1f}", True, "% of test queries with a relevant item in the top {k}", uses_k=True),
    Metric("delta_recall", None, True, "ΔR@{k}", "{:+.1f}", True,
           "R@{k} minus cosine's R@{k} on the same test queries, mean over the "
           "bank/test splits, with its 95% bootstrap interval over the splits and, "
           "within each, the test queries (1000 resamples, seed 0); * marks an "
           "interval that excludes 0; n↑m↓ counts the splits whose own interval shows "
           "a significant gain / loss", uses_k=True),
    Metric("median_rank", _ranked(median_rank), False, "MdR", "{:.1f}", True,
           "median rank of the best relevant item (1 = first)"),
    Metric("mean_rank", _ranked(mean_rank), False, "MnR", "{:.1f}", True,
           "mean rank of the best relevant item"),
    Metric("r_precision", _ranked(r_precision), True, "R-P", "{:.1f}", True,
           "R-Precision (%): precision in the top R, R = number of relevant items "
           "(shown by default only when a query has several relevant items)"),
    Metric("map_at_r", _ranked(map_at_r), True, "mAP@R", "{:.1f}", True,
           "mean average precision at R (%) (default only when relevance is many-to-many)"),
    Metric("hubness_skewness", _hubness(hubness_skewness), False, "skew@{k}", "{:.2f}", False,
           "q2g hubness: skewness of how often each gallery item is in a query's top {k}",
           uses_k=True),
    Metric("gini_index", _hubness(gini_index), False, "gini@{k}", "{:.2f}", False,
           "q2g hubness: Gini index of that top-{k} occurrence (scikit-hubness's; 0 = uniform)",
           uses_k=True),
    Metric("hub_occurrence", _hubness(hub_occurrence), False, "hubs@{k}", "{:.2f}", False,
           "q2g hubness: share of the top-{k} slots taken by hubs, items in at least "
           "{two_k} top-{k} lists (scikit-hubness's hub occurrence)", uses_k=True),
    Metric("antihub_rate", _hubness(antihub_rate), False, "anti@{k}", "{:.2f}", False,
           "q2g hubness: share of gallery items in no top-{k} list (scikit-hubness's "
           "antihub occurrence)", uses_k=True),
    Metric("robinhood_index", _hubness(robinhood_index), False, "robin@{k}", "{:.2f}", False,
           "q2g hubness: Robin Hood index of the top-{k} occurrence (share of the slots "
           "to move for a uniform occurrence)", uses_k=True),
    Metric("degeneration_score", None, False, "Δdeg", "{:.3f}", False,
           "q2g degeneration: mean similarity of each gallery item to its nearest "
           "other gallery item, on the gallery the final step sees (lower = less crowded)"),
    Metric("fit_time", None, False, "fit s", "{:.2f}", False,
           "seconds to fit the (chosen) estimator on the bank, both directions"),
    Metric("score_time", None, False, "score s", "{:.2f}", False,
           "seconds to score the test pairs, both directions"),
    Metric("tune_time", None, False, "tune s", "{:.1f}", False,
           "seconds of the bank grid search, both directions (--tune / --save-best)"),
    Metric("cv_recall", None, True, "cv R@{k}", "{:.1f}", True,
           "bank cross-validated R@{k} of the chosen parameters (--tune / --save-best)",
           uses_k=True),
)

#: The metric table: ``{name: Metric}``.
METRICS = {m.name: m for m in _ROWS}

#: The scorers' metrics: those computed from a score matrix and relevance.
SCORER_METRICS = tuple(m.name for m in _ROWS if m.function is not None)

#: Names of the past, still accepted with a FutureWarning: ``{old: new}``.
OLD_NAMES = {
    "skewness": "hubness_skewness",
    "skew": "hubness_skewness",
    "gini": "gini_index",
    "robinhood": "robinhood_index",
    "R-Precision": "R-P",
}


def deprecated_name(old, new, where):
    """Warn that ``old`` is now ``new`` in ``where``."""
    warnings.warn(
        f"{where} {old!r} is renamed {new!r}; the old name stops working in the next "
        "release.", FutureWarning, stacklevel=3,
    )


class Report(dict):
    """A report's dict; its keys of the past still read, with a FutureWarning.

    Examples
    --------
    >>> import warnings
    >>> r = Report({"hubness_skewness": 1.5}, aliases={"skewness": "hubness_skewness"})
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     r["skewness"], w[0].category.__name__
    (1.5, 'FutureWarning')
    """

    def __init__(self, values, aliases):
        super().__init__(values)
        self._aliases = dict(aliases)

    def _alias(self, key):
        new = self._aliases.get(key) if isinstance(key, str) else None
        return new if new is not None and dict.__contains__(self, new) else None

    def __missing__(self, key):
        new = self._alias(key)
        if new is None:
            raise KeyError(key)
        deprecated_name(key, new, "the key")
        return self[new]

    def get(self, key, default=None):
        return self[key] if key in self or self._alias(key) is not None else default

    def __reduce__(self):
        return (Report, (dict(self), self._aliases))
