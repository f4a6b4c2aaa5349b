"""The benchmark's constants and its table of columns (one definition each)."""

from .._pairs import DIRECTIONS  # noqa: F401  (the one definition; re-exported)

DATASETS = ("coco-clip", "msrvtt-videoclip", "synthetic")
FAMILY_ORDER = ("baseline", "hubness", "graph", "calibration", "alignment")
REFERENCE = "Cosine"
BOOTSTRAP = {"n_resamples": 1000, "confidence": 0.95, "random_state": 0}
EMBEDDING_SUFFIXES = (".npy", ".npz", ".pt")
OUTPUT_SUFFIXES = (".json", ".csv", ".md")

#: Columns of the table: key -> (header, format, per direction, definition).
#: The definitions are the ``--help`` text of every column.
METRICS = {
    "R@1": ("R@1", "{:.1f}", True, "% of test queries whose relevant item ranks first"),
    "dR@1": (
        "ΔR@1 [95% CI]", None, True,
        "R@1 minus cosine's R@1 on the same test queries, with its 95% paired "
        "bootstrap interval over test queries (1000 resamples, seed 0); * marks "
        "an interval that excludes 0",
    ),
    "R@5": ("R@5", "{:.1f}", True, "% of test queries with a relevant item in the top 5"),
    "R@10": ("R@10", "{:.1f}", True, "% of test queries with a relevant item in the top 10"),
    "MdR": ("MdR", "{:.1f}", True, "median rank of the best relevant item (1 = first)"),
    "MnR": ("MnR", "{:.1f}", True, "mean rank of the best relevant item"),
    "R-P": (
        "R-P", "{:.1f}", True,
        "R-Precision (%): precision in the top R, R = number of relevant items "
        "(shown by default only when a query has several relevant items)",
    ),
    "mAP@R": (
        "mAP@R", "{:.1f}", True,
        "mean average precision at R (%) (default only when relevance is many-to-many)",
    ),
    "skew": (
        "skew@10", "{:.2f}", False,
        "q2g hubness: skewness of how often each gallery item is in a query's top 10",
    ),
    "gini": (
        "gini@10", "{:.2f}", False,
        "q2g hubness: Gini index of that top-10 occurrence (scikit-hubness's; 0 = uniform)",
    ),
    "hubs": (
        "hubs@10", "{:.2f}", False,
        "q2g hubness: share of the top-10 slots taken by hubs, items in at least "
        "20 top-10 lists (scikit-hubness's hub occurrence)",
    ),
    "antihubs": (
        "anti@10", "{:.2f}", False,
        "q2g hubness: share of gallery items in no top-10 list (scikit-hubness's "
        "antihub occurrence)",
    ),
    "deg": (
        "Δdeg", "{:.3f}", False,
        "q2g degeneration: mean similarity of each gallery item to its nearest "
        "other gallery item, on the gallery the final step sees (lower = less "
        "crowded)",
    ),
    "fit": (
        "fit s", "{:.2f}", False,
        "seconds to fit the (chosen) estimator on the bank, both directions",
    ),
    "score": ("score s", "{:.2f}", False, "seconds to score the test pairs, both directions"),
    "tune": (
        "tune s", "{:.1f}", False,
        "seconds of the bank grid search, both directions (--tune / --save-best)",
    ),
}
DEFAULT_METRICS = ("R@1", "dR@1", "R@5", "MdR", "skew", "fit")
MANY_TO_MANY_METRICS = ("R@1", "dR@1", "R-P", "mAP@R", "skew", "fit")
_REPORT_KEYS = {"R@1": "R@1", "R@5": "R@5", "R@10": "R@10", "MdR": "MdR", "MnR": "MnR",
                "R-P": "R-Precision", "mAP@R": "mAP@R"}

