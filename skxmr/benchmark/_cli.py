"""The command line: ``skxmr benchmark`` (also ``python -m skxmr benchmark``)."""

import argparse
import os
import sys
import textwrap
import warnings

from . import _data, _report, _run, _table
from .._registry import format_grid, registered_methods

DESCRIPTION = """\
Side-by-side table of every registered method on one set of paired
embeddings. The pairs are split by item into a bank and a test set,
--n-splits times at random; on each split every method is fitted on the
bank pairs (at its defaults, or tuned with --tune), then scores the test
pairs once, in both directions. Each row is the mean over splits; ΔR@1's
95% interval resamples the splits and, within each, the test queries, so
it accounts for both; "4↑1↓" counts the splits whose own interval shows a
significant gain or loss. Methods marked † are transductive: they re-score
with the statistics of all test queries at once (not one query at a time)
and are never saved by --save-best.

Default data: the 500 COCO val2017 CLIP ViT-B/16 pairs bundled with the
package (offline). Your own embeddings: --queries Q.npy --gallery G.npy
(row i of Q pairs with row i of G)."""

EXAMPLES = """\
examples:
  skxmr benchmark
  skxmr benchmark --queries text.npy --gallery image.npy --tune --output res.json
  skxmr benchmark --queries emb.npz --queries-key text --gallery emb.npz \\
        --gallery-key image --labels y.npy --tune --save-best best.joblib
  skxmr benchmark --list"""


_MANY_TO_MANY_ONLY = [m for m in _table.MANY_TO_MANY_METRICS if m not in _table.DEFAULT_METRICS]
_ONE_TO_ONE_ONLY = [m for m in _table.DEFAULT_METRICS if m not in _table.MANY_TO_MANY_METRICS]


def _column_help():
    lines = ["columns (--metrics picks them; q2g and g2q each get the per-direction ones):"]
    for key, column in _table.COLUMNS.items():
        name = f"{key} ({column.header})"
        body = textwrap.fill(
            column.definition + (" [per direction]" if column.per_direction else ""),
            width=76, initial_indent="", subsequent_indent=" " * 18,
        )
        lines.append(f"  {name:<16}{body}" if len(name) < 16 else f"  {name}\n{' ' * 18}{body}")
    lines.append(
        "  q2g ranks the gallery for each query (e.g. text->image); g2q the reverse.\n"
        "  Ranks are pessimistic about ties."
    )
    return "\n".join(lines)


def _bank_size(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a fraction in (0, 1) or a number of items, got {text!r}"
            ) from None


def _at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def build_parser():
    """The argument parser of ``skxmr``."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="skxmr", description="skxmr: post-hoc cross-modal retrieval for scikit-learn."
    )
    parser.add_argument("--version", action="version", version=f"skxmr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "benchmark",
        help="side-by-side table of every registered method",
        description=DESCRIPTION,
        epilog=_column_help() + "\n\n" + EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = b.add_argument_group("data")
    data.add_argument("--dataset", choices=_table.DATASETS, default=None,
                      help="named data set (default: coco-clip, bundled)")
    data.add_argument("--queries", metavar="FILE",
                      help="query embeddings, one row per pair (.npy, .npz, .pt)")
    data.add_argument("--gallery", metavar="FILE",
                      help="gallery embeddings; row i pairs with row i of --queries")
    data.add_argument("--queries-key", metavar="KEY", help="array name in a .npz/.pt file")
    data.add_argument("--gallery-key", metavar="KEY", help="array name in a .npz/.pt file")
    data.add_argument("--labels", metavar="FILE",
                      help="one label per pair: relevance = same label")
    data.add_argument("--bank-size", type=_bank_size, default=0.5, metavar="F",
                      help="fraction (or number) of the items that form the bank (default 0.5)")
    data.add_argument("--bank-queries", metavar="FILE",
                      help="explicit bank pairs (with --bank-gallery); the given "
                           "--queries/--gallery are then the test set")
    data.add_argument("--bank-gallery", metavar="FILE")
    data.add_argument("--bank-labels", metavar="FILE", help="labels of the bank pairs")
    data.add_argument("--n-pairs", type=_at_least(4), default=1000,
                      help="size of --dataset synthetic (at least 4; default 1000)")
    data.add_argument("--n-splits", type=_at_least(1), default=5,
                      help="random bank/test splits of the pairs, by item (default 5; seeds "
                           "--random-state, +1, ...); each method is fitted (and tuned) on "
                           "each split's bank and scored on its test pairs; explicit "
                           "--bank-* files are one split")
    data.add_argument("--random-state", type=int, default=0,
                      help="seed of the first bank/test split and of the generator "
                           "(default 0)")
    data.add_argument("--data-home", default=None, help="fetcher cache (default: $SKXMR_DATA)")
    run = b.add_argument_group("methods")
    run.add_argument("--methods", help="comma-separated registered names (default: all)")
    run.add_argument("--tune", action="store_true",
                     help="grid search of each method's registered grid on the bank pairs "
                          "(GroupKFold over items, R@1; an alignment is skipped unless its "
                          "fold-by-fold gain over skipping it, minus twice its standard "
                          "error, is above 0, and always when a validation fold holds "
                          "fewer than 50 items), refit, then score the test pairs once")
    run.add_argument("--cv", type=_at_least(2), default=3,
                     help="folds of the bank grid search (default 3)")
    run.add_argument("--n-jobs", type=int, default=None, help="parallel fits of the grid search")
    run.add_argument("--list", action="store_true",
                     help="list registered methods and their grids, and exit")
    out = b.add_argument_group("output")
    out.add_argument("--metrics", metavar="LIST",
                     help=f"comma-separated columns from {','.join(_table.COLUMNS)} "
                          f"(default: {','.join(_table.DEFAULT_METRICS)}; "
                          f"{','.join(_MANY_TO_MANY_ONLY)} instead of "
                          f"{','.join(_ONE_TO_ONE_ONLY)} when relevance is many-to-many)")
    out.add_argument("--output", metavar="PATH",
                     help="write every number to res.json, res.csv or res.md")
    out.add_argument("--save-best", metavar="PATH",
                     help="save (joblib) the method with the largest bank-CV gain over "
                          "cosine among those that beat it reliably (mean fold gain minus "
                          "twice its standard error above 0, and, over several splits, no "
                          "loss on the test splits on average), fitted on the first split's "
                          "bank; cosine when none does; never a transductive method. Load "
                          "it and call decision_function(pair(Q, G))")
    out.add_argument("--direction", choices=_table.DIRECTIONS, default="q2g",
                     help="direction whose bank-CV R@1 picks --save-best (default q2g); "
                          "each direction is tuned on its own: run again with g2q to save "
                          "the other")
    out.add_argument("--plot", metavar="PNG", help="write k-occurrence histograms to this PNG")
    out.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def _check_paths(args):
    """Every path and extension, before any work; returns an error or None."""
    inputs = [
        ("--queries", args.queries, _table.EMBEDDING_SUFFIXES),
        ("--gallery", args.gallery, _table.EMBEDDING_SUFFIXES),
        ("--labels", args.labels, _table.EMBEDDING_SUFFIXES),
        ("--bank-queries", args.bank_queries, _table.EMBEDDING_SUFFIXES),
        ("--bank-gallery", args.bank_gallery, _table.EMBEDDING_SUFFIXES),
        ("--bank-labels", args.bank_labels, _table.EMBEDDING_SUFFIXES),
    ]
    for flag, path, suffixes in inputs:
        if path is None:
            continue
        if not path.lower().endswith(suffixes):
            return f"{flag} {path!r} must end in one of {', '.join(suffixes)}"
        if not os.path.isfile(path):
            return f"{flag} {path!r} is not a file"
        if path.lower().endswith(".pt"):
            try:
                import torch  # noqa: F401
            except ImportError:
                return f"{flag} {path!r} is a torch file but torch is not installed"
    outputs = [
        ("--output", args.output, _report.OUTPUT_SUFFIXES),
        ("--plot", args.plot, (".png",)),
        ("--save-best", args.save_best, None),
    ]
    for flag, path, suffixes in outputs:
        if path is None:
            continue
        if suffixes and not path.lower().endswith(suffixes):
            return f"{flag} {path!r} must end in one of {', '.join(suffixes)}"
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            return f"{flag} {path!r} is a directory"
        if not os.path.isdir(parent):
            return f"{flag} {path!r}: the directory {parent!r} does not exist"
        if not os.access(parent, os.W_OK):
            return f"{flag} {path!r}: the directory {parent!r} is not writable"
    return None


def _check_combinations(args):
    files = args.queries is not None or args.gallery is not None
    if files and (args.queries is None or args.gallery is None):
        return "give both --queries and --gallery"
    if files and args.dataset is not None:
        return "--dataset names a built-in data set; drop it when giving --queries/--gallery"
    if not files:
        for flag in ("queries_key", "gallery_key", "labels", "bank_queries", "bank_gallery",
                     "bank_labels"):
            if getattr(args, flag) is not None:
                return f"--{flag.replace('_', '-')} needs --queries and --gallery"
    if args.metrics:
        unknown = [m for m in args.metrics.split(",")
                   if m not in _table.COLUMNS and m not in _table.OLD_COLUMNS]
        if unknown:
            return f"--metrics {','.join(unknown)}: unknown; choose from {','.join(_table.COLUMNS)}"
    return None


def _metrics(text, note):
    """The column names of ``--metrics`` (names of the past noted, then mapped)."""
    if not text:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        columns = _report.check_columns(text.split(","))
    for warning in caught:
        note(f"--metrics: {warning.message}")
    return tuple(c.name for c in columns)


class _Notes:
    """Notes on stderr; methods skipped for the same reason are named in
    one note (files of two widths skip every method that needs one shared
    space: one line, not one per method)."""

    def __init__(self):
        self.skipped = {}

    def __call__(self, msg):
        name, sep, reason = msg.partition(" skipped: ")
        if sep:
            self.skipped.setdefault(reason, []).append(name)
        else:
            print(f"note: {msg}", file=sys.stderr)

    def flush(self):
        for reason, names in self.skipped.items():
            who = names[0] if len(names) == 1 else f"{len(names)} methods ({', '.join(names)})"
            print(f"note: {who} skipped: {reason}", file=sys.stderr)
        self.skipped = {}


def _print_list():
    for name, entry in registered_methods().items():
        mark = " (transductive)" if entry.get("transductive") else ""
        print(f"{name:<18} {entry['family']:<12} {entry['description']}{mark}")
        print(f"{'':<18} {'grid:':<12} {format_grid(entry['grid'])}")


def main(argv=None):
    """Entry point of ``python -m skxmr`` and the ``skxmr`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        _print_list()
        return 0
    problem = _check_paths(args) or _check_combinations(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    methods = args.methods.split(",") if args.methods else None
    note = _Notes()
    metrics = _metrics(args.metrics, note)
    try:
        if args.queries is not None:
            data = _data.load_files(
                args.queries, args.gallery, queries_key=args.queries_key,
                gallery_key=args.gallery_key, labels=args.labels, bank_size=args.bank_size,
                random_state=args.random_state, n_splits=args.n_splits,
                bank_queries=args.bank_queries,
                bank_gallery=args.bank_gallery, bank_labels=args.bank_labels,
            )
        else:
            data = _data.load_dataset(
                args.dataset or "coco-clip", n_pairs=args.n_pairs,
                random_state=args.random_state, n_splits=args.n_splits,
                data_home=args.data_home,
            )
        result = _run.run_benchmark(
            data, methods=methods, tune=args.tune, cv=args.cv,
            cross_validate=args.save_best is not None, n_jobs=args.n_jobs,
            progress=not args.no_progress, log=note,
        )
        note.flush()
        if not result["rows"]:
            raise ValueError("no method could run on this data (see the notes above).")
        print(f"dataset: {result['dataset']}")
        if args.tune:
            print(f"tuned: grid search on each split's bank pairs only, GroupKFold({args.cv}) "
                  "over items, R@1 in each direction; test pairs scored once")
        print(_report.format_table(result, metrics=metrics))
        for line in _report.table_notes(result, metrics):
            print(line)
        if args.tune:
            print("\nchosen parameters (by bank CV; over several splits the most frequent):")
            print(_report.format_params(result))
        if args.save_best:
            import joblib

            choice = _run.choose_best(result, args.direction)
            joblib.dump(result["estimators"][choice.name][args.direction], args.save_best)
            what = "cosine (no re-scoring)" if choice.name == _table.REFERENCE else choice.name
            print(f"\nsaved {what} ({args.direction}, fitted on the bank of the first split) "
                  f"to {args.save_best}: {choice.reason}")
        if args.output:
            _report.write_output(result, args.output, metrics)
        if args.plot:
            _report.plot_hubness(result, args.plot)
    except (OSError, ValueError) as exc:
        note.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
