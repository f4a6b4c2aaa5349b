"""Side-by-side benchmark of every registered method: ``skxmr benchmark``.

Each method registers its row (and its tuning grid) with
:func:`skxmr.register_method`; this package only runs what is registered.
One module per step: :mod:`~skxmr.benchmark._data` loads the pairs,
:mod:`~skxmr.benchmark._run` fits and scores every method on each split
(tuned by :mod:`~skxmr.benchmark._search` where asked),
:mod:`~skxmr.benchmark._bootstrap` gives the intervals,
:mod:`~skxmr.benchmark._report` formats and writes the results, and
:mod:`~skxmr.benchmark._cli` is the command line (``python -m skxmr
benchmark``). :mod:`~skxmr.benchmark._table` holds the columns, drawn from the metric
table of :mod:`skxmr.metrics`.
"""

from ._cli import main
from ._data import load_dataset, load_embeddings, load_files, many_to_many, random_splits
from ._report import (
    default_metrics,
    format_params,
    format_table,
    plot_hubness,
    OUTPUT_SUFFIXES,
    WRITERS,
    check_columns,
    result_rows,
    write_output,
)
from ._run import best_method, choose_best, ranked_gallery, run_benchmark, run_method
from ._table import (
    BOOTSTRAP,
    DATASETS,
    DEFAULT_METRICS,
    DIRECTIONS,
    EMBEDDING_SUFFIXES,
    FAMILY_ORDER,
    COLUMNS,
    MANY_TO_MANY_METRICS,
    REFERENCE,
)


def __getattr__(name):
    if name == "METRICS":  # the benchmark's columns, before the metric table
        from ..metrics._table import deprecated_name

        deprecated_name("skxmr.benchmark.METRICS", "skxmr.benchmark.COLUMNS", "the table")
        return COLUMNS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
