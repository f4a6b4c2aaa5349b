"""Side-by-side benchmark of every registered method: ``python -m skxmr benchmark``.

Each method registers its row with :func:`skxmr.register_method`; this module
only runs what is registered. For every method and both directions it fits a
fresh estimator on the bank pairs, scores the test pairs and reports R@K,
MdR, MnR, R-Precision and mAP@R, the k-occurrence skewness of the ranking
(hubness), the degeneration score Δ_deg of the gallery the final step sees,
and the fit and score times.
"""

import argparse
import csv
import json
import sys
import time

import numpy as np

from ._pairs import split_pairs
from ._registry import registered_methods

_DESCRIPTION = "Side-by-side benchmark of every registered method."

DATASETS = ("coco-clip", "msrvtt-videoclip", "synthetic")
FAMILY_ORDER = ("baseline", "hubness", "graph", "calibration", "alignment")
COLUMNS = (
    ("q2g R@1", "{:.1f}"),
    ("q2g R@5", "{:.1f}"),
    ("q2g R@10", "{:.1f}"),
    ("q2g MdR", "{:.1f}"),
    ("q2g MnR", "{:.1f}"),
    ("g2q R@1", "{:.1f}"),
    ("g2q R@5", "{:.1f}"),
    ("g2q R@10", "{:.1f}"),
    ("g2q MdR", "{:.1f}"),
    ("g2q MnR", "{:.1f}"),
    ("q2g R-P", "{:.1f}"),
    ("q2g mAP@R", "{:.1f}"),
    ("skew@10", "{:.2f}"),
    ("Δdeg", "{:.3f}"),
    ("fit s", "{:.2f}"),
    ("score s", "{:.2f}"),
)


def load_dataset(name="coco-clip", *, n_pairs=1000, random_state=0, data_home=None):
    """Bank and test pairs for the benchmark.

    Parameters
    ----------
    name : {"coco-clip", "msrvtt-videoclip", "synthetic"}, default="coco-clip"
        ``"coco-clip"``: the COCO CLIP embeddings bundled with the package
        (always available, offline); ``"msrvtt-videoclip"``: fetched into
        the cache; ``"synthetic"``: :func:`~skxmr.datasets.make_retrieval_problem`.
    n_pairs : int, default=1000
        Size of the synthetic problem.
    random_state : int, default=0
        Seed of the generator and of the bank/test split.
    data_home : str, default=None
        Cache folder of the fetchers (env ``SKXMR_DATA``).

    Returns
    -------
    X_bank, X_test : ndarray
        Bank pairs and test pairs (half of the items each).
    description : str
    """
    from . import datasets

    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}.")
    if name == "synthetic":
        bunch = datasets.make_retrieval_problem(n_pairs=n_pairs, random_state=random_state)
        what = f"synthetic ({n_pairs} pairs, make_retrieval_problem, seed {random_state})"
    elif name == "coco-clip":
        bunch = datasets.load_coco_clip()
        what = "COCO val2017 CLIP ViT-B/16 (500 pairs, bundled), text->image"
    else:
        bunch = datasets.fetch_msrvtt_videoclip(data_home=data_home)
        what = "MSR-VTT VideoCLIP (100 pairs), text->video"
    X_bank, X_test, _, _ = datasets.bank_test_split(
        bunch.X, bunch.groups, bank_size=0.5, random_state=random_state
    )
    return X_bank, X_test, f"{what}; bank {len(X_bank)} pairs, test {len(X_test)} pairs"


def ranked_gallery(estimator, X_test):
    """The unique test gallery items as the method ranks them, as embeddings.

    Pipeline steps are applied in turn while they output embeddings (InvGC's
    convolved gallery, an alignment's shared space); a step that outputs
    something else (packed Gaussians, ``_outputs_embeddings = False``) ends
    the walk. Δ_deg is measured on the result.
    """
    from sklearn.pipeline import Pipeline

    steps = [s for _, s in estimator.steps[:-1]] if isinstance(estimator, Pipeline) else []
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    X = X_test
    for step in steps:
        if not getattr(step, "_outputs_embeddings", True):
            break
        X = step.transform(X)
    return split_pairs(X, direction=final.direction).targets


def run_method(factory, X_bank, X_test, *, k=10):
    """One benchmark row: fit and score in both directions."""
    from .metrics import (
        degeneration_score,
        hubness_skewness,
        k_occurrence,
        retrieval_report,
    )
    from .metrics._scorer import paired_scores

    row, extras = {}, {}
    fit_s = score_s = 0.0
    for direction in ("q2g", "g2q"):
        est = factory(direction=direction)
        t0 = time.perf_counter()
        est.fit(X_bank)
        t1 = time.perf_counter()
        S, items = paired_scores(est, X_test)
        t2 = time.perf_counter()
        fit_s += t1 - t0
        score_s += t2 - t1
        report = retrieval_report(S, items.relevance, ks=(1, 5, 10), directions=("q2g",))["q2g"]
        for key in ("R@1", "R@5", "R@10", "MdR", "MnR"):
            row[f"{direction} {key}"] = report[key]
        if direction == "q2g":
            row["q2g R-P"] = report["R-Precision"]
            row["q2g mAP@R"] = report["mAP@R"]
            kk = min(k, S.shape[1])
            row["skew@10"] = hubness_skewness(S, k=kk)
            row["Δdeg"] = degeneration_score(ranked_gallery(est, X_test))
            extras["k_occurrence"] = k_occurrence(S, k=kk)
    row["fit s"], row["score s"] = fit_s, score_s
    return row, extras


class _Progress:
    """A one-line progress bar on stderr (silent when not a terminal or disabled)."""

    def __init__(self, total, enabled):
        self.total, self.done, self.enabled = total, 0, enabled
        self.start = time.perf_counter()

    def step(self, label):
        self.done += 1
        if not self.enabled:
            return
        width = 24
        filled = int(width * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"{label[:28]:<28} {elapsed:6.1f}s"
        )
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_benchmark(
    dataset="coco-clip",
    *,
    methods=None,
    n_pairs=1000,
    random_state=0,
    data_home=None,
    progress=False,
):
    """Run every registered method on one dataset.

    Parameters
    ----------
    dataset : str, default="coco-clip"
        See :func:`load_dataset`.
    methods : str or list of str, default=None
        Registered names to run (a string is one name); ``None`` runs all.
    n_pairs : int, default=1000
        Size of the synthetic problem.
    random_state : int, default=0
    data_home : str, default=None
    progress : bool, default=False
        Draw a progress bar on stderr.

    Returns
    -------
    result : dict
        ``{"dataset": str, "rows": {name: {column: value}}, "k_occurrence":
        {name: ndarray}}``, rows ordered by family.
    """
    registry = registered_methods()
    if isinstance(methods, str):
        methods = [methods]  # one name, not its letters
    if methods is not None:
        unknown = sorted(set(methods) - set(registry))
        if unknown:
            raise ValueError(
                f"methods {unknown} are not registered; known: {sorted(registry)}."
            )
        registry = {name: registry[name] for name in methods}
    order = sorted(
        registry,
        key=lambda n: (
            FAMILY_ORDER.index(registry[n]["family"])
            if registry[n]["family"] in FAMILY_ORDER
            else len(FAMILY_ORDER),
        ),
    )
    X_bank, X_test, description = load_dataset(
        dataset, n_pairs=n_pairs, random_state=random_state, data_home=data_home
    )
    bar = _Progress(len(order), progress)
    rows, koccs = {}, {}
    for name in order:
        rows[name], extras = run_method(registry[name]["factory"], X_bank, X_test)
        koccs[name] = extras["k_occurrence"]
        bar.step(name)
    return {"dataset": description, "rows": rows, "k_occurrence": koccs}


def format_table(result, fmt="text"):
    """The benchmark table as aligned text or reStructuredText."""
    header = ["method"] + [c for c, _ in COLUMNS]
    body = [
        [name] + [f.format(row[c]) for c, f in COLUMNS] for name, row in result["rows"].items()
    ]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    if fmt == "rst":
        rule = "  ".join("=" * w for w in widths)
        return "\n".join([rule, line(header), rule] + [line(r) for r in body] + [rule])
    return "\n".join([line(header), "-" * len(line(header))] + [line(r) for r in body])


def write_output(result, path):
    """Write rows to ``path`` (``.json`` or ``.csv``)."""
    if str(path).endswith(".json"):
        payload = {"dataset": result["dataset"], "rows": result["rows"]}
        with open(path, "w") as fh:
            json.dump(payload, fh, indent=2, ensure_ascii=False)
    elif str(path).endswith(".csv"):
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["method"] + [c for c, _ in COLUMNS])
            for name, row in result["rows"].items():
                writer.writerow([name] + [row[c] for c, _ in COLUMNS])
    else:
        raise ValueError(f"output must end in .json or .csv, got {path!r}.")


def plot_hubness(result, path, baseline="Cosine"):
    """k-occurrence histograms of every method against the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["k_occurrence"])
    n = len(names)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    base = result["k_occurrence"].get(baseline)
    top = max(int(v.max()) for v in result["k_occurrence"].values()) + 1
    bins = np.arange(top + 1) - 0.5
    for ax, name in zip(axes.ravel(), names):
        if base is not None and name != baseline:
            ax.hist(base, bins=bins, alpha=0.4, label=baseline, color="grey")
        ax.hist(result["k_occurrence"][name], bins=bins, alpha=0.7, label=name)
        ax.set_title(f"{name}: skew {result['rows'][name]['skew@10']:.2f}", fontsize=9)
        ax.set_xlabel("N_10 (k-occurrence)", fontsize=8)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    """Entry point of ``python -m skxmr`` and the ``skxmr`` console script."""
    # Not __doc__: it is None under python -OO.
    parser = argparse.ArgumentParser(prog="skxmr", description=_DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("benchmark", help="side-by-side table of every registered method")
    bench.add_argument("--dataset", choices=DATASETS, default="coco-clip")
    bench.add_argument("--n-pairs", type=int, default=1000, help="synthetic problem size")
    bench.add_argument("--methods", help="comma-separated registered names (default: all)")
    bench.add_argument("--random-state", type=int, default=0)
    bench.add_argument("--data-home", default=None, help="fetcher cache (default: $SKXMR_DATA)")
    bench.add_argument("--output", help="write rows to results.json or results.csv")
    bench.add_argument("--plot", help="write k-occurrence histograms to this PNG")
    bench.add_argument("--list", action="store_true", help="list registered methods and exit")
    bench.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    if args.list:
        for name, entry in registered_methods().items():
            print(f"{name:<20} {entry['family']:<12} {entry['description']}")
        return 0
    if args.n_pairs < 10:
        parser.error("--n-pairs must be at least 10")
    methods = args.methods.split(",") if args.methods else None
    try:
        result = run_benchmark(
            args.dataset,
            methods=methods,
            n_pairs=args.n_pairs,
            random_state=args.random_state,
            data_home=args.data_home,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"dataset: {result['dataset']}")
    print(format_table(result))
    if args.output:
        write_output(result, args.output)
    if args.plot:
        plot_hubness(result, args.plot)
    return 0
