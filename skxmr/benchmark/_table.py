"""The benchmark's constants and its columns, drawn from the metric table."""

from dataclasses import dataclass

from ..metrics._table import METRICS, Metric

from .._pairs import DIRECTIONS  # noqa: F401  (the one definition; re-exported)

DATASETS = ("coco-clip", "msrvtt-videoclip", "synthetic")
FAMILY_ORDER = ("baseline", "hubness", "graph", "calibration", "alignment")
REFERENCE = "Cosine"
BOOTSTRAP = {"n_resamples": 1000, "confidence": 0.95, "random_state": 0}
EMBEDDING_SUFFIXES = (".npy", ".npz", ".pt")
#: Marks a transductive method's name in the table.
TRANSDUCTIVE_MARK = "†"
#: Neighbourhood of the hubness columns.
HUBNESS_K = 10


@dataclass(frozen=True)
class Column:
    """A column of the benchmark: a metric of the table at a cut-off.

    Its name is the metric's, with ``@k`` where the benchmark shows the
    metric at several cut-offs (``recall@5``); it keys the rows
    (``"q2g recall@5"`` per direction) and ``--metrics``.
    """

    name: str
    metric: Metric
    k: int = None

    @property
    def header(self):
        return self.metric.label(self.k)

    @property
    def definition(self):
        return self.metric.describe(self.k)

    @property
    def per_direction(self):
        return self.metric.per_direction

    @property
    def fmt(self):
        return self.metric.fmt


def _columns(*specs):
    counts = {}
    for name, _ in specs:
        counts[name] = counts.get(name, 0) + 1
    return {
        (f"{name}@{k}" if counts[name] > 1 else name): Column(
            f"{name}@{k}" if counts[name] > 1 else name, METRICS[name], k)
        for name, k in specs
    }


#: The columns, in table order: ``{name: Column}``. Per-direction columns
#: are ``row[f"{direction} {name}"]``, the others ``row[name]``.
COLUMNS = _columns(
    ("recall", 1), ("delta_recall", 1), ("recall", 5), ("recall", 10),
    ("median_rank", None), ("mean_rank", None), ("r_precision", None), ("map_at_r", None),
    ("hubness_skewness", HUBNESS_K), ("gini_index", HUBNESS_K), ("hub_occurrence", HUBNESS_K),
    ("antihub_rate", HUBNESS_K), ("degeneration_score", None),
    ("fit_time", None), ("score_time", None), ("tune_time", None), ("cv_recall", 1),
)
DEFAULT_METRICS = ("recall@1", "delta_recall", "recall@5", "median_rank", "hubness_skewness",
                   "fit_time")
MANY_TO_MANY_METRICS = ("recall@1", "delta_recall", "r_precision", "map_at_r",
                        "hubness_skewness", "fit_time")
#: The ranking columns, read from :func:`~skxmr.metrics.retrieval_report`.
RANKING = ("recall@1", "recall@5", "recall@10", "median_rank", "mean_rank", "r_precision",
           "map_at_r")
#: The hubness columns, read from :func:`~skxmr.metrics.hubness_report`.
HUBNESS = ("hubness_skewness", "gini_index", "hub_occurrence", "antihub_rate")

#: The columns' names of the past, still accepted with a FutureWarning.
OLD_COLUMNS = {
    "R@1": "recall@1", "dR@1": "delta_recall", "R@5": "recall@5", "R@10": "recall@10",
    "MdR": "median_rank", "MnR": "mean_rank", "R-P": "r_precision", "mAP@R": "map_at_r",
    "skew": "hubness_skewness", "gini": "gini_index", "hubs": "hub_occurrence",
    "antihubs": "antihub_rate", "deg": "degeneration_score", "fit": "fit_time",
    "score": "score_time", "tune": "tune_time",
}
#: The same for the keys of a row (``"q2g R@1"`` is now ``"q2g recall@1"``).
OLD_ROW_KEYS = {
    **OLD_COLUMNS,
    **{f"{d} {old}": f"{d} {new}" for d in DIRECTIONS for old, new in OLD_COLUMNS.items()},
    **{f"{d} dR@1 CI": f"{d} delta_recall CI" for d in DIRECTIONS},
}
