"""Closed-form alignments against Cauchy-Schwarz alignment, each tuned on the bank only.

For every data set the pairs are split by item into a bank and a test half
(seed 0). Every method -- the registered benchmark rows "Cosine" (where the
halves share a space), "Procrustes", "PLS", "Ridge map" and "CS alignment"
-- is tuned by ``GridSearchCV`` over its registered grid on the bank pairs
only (3-fold ``GroupKFold`` over items, R@1 in its direction), refitted on
the whole bank and scored once on the test pairs, in both directions
(``skxmr.benchmark.run_method``, the code path of ``skxmr benchmark --tune``).
Reported: test R@1 (q2g: text->image / text->video; g2q: the reverse), the
bank-CV R@1 of the chosen parameters, and paired bootstrap intervals over
the test queries (1000 resamples, seed 0) of

* CS alignment minus the best closed form (the closed form with the best
  bank-CV R@1 in that direction), and
* every method minus cosine, where cosine can run.

Data sets:

* ``synthetic-2enc``: :func:`skxmr.datasets.make_retrieval_problem` in its
  two-encoder mode (1000 items, gallery 128-d, queries from a second
  96-d encoder with ``distortion=0.5``);
* ``coco``: the bundled COCO val2017 CLIP ViT-B/16 pairs (already aligned);
* ``coco-2enc``: the same with the captions re-encoded by
  :func:`skxmr.datasets.second_encoder` (384-d, ``distortion=0.5``);
* ``msrvtt``: VideoCLIP MSR-VTT (100 pairs, already aligned; needs the data
  cache, env ``SKXMR_DATA``).

Run ``python benchmarks/bench_alignment.py`` (all sets; ``--datasets coco
msrvtt`` for some; ``--output res.json`` keeps the numbers). BLAS runs on
one thread (``--blas-threads``): on a shared machine OpenBLAS's threads make
these mid-sized products much slower.
"""

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from skxmr import pair, registered_methods
from skxmr.benchmark import run_method
from skxmr.benchmark._bootstrap import paired_bootstrap_ci
from skxmr.datasets import (
    bank_test_split,
    fetch_msrvtt_videoclip,
    load_coco_clip,
    make_retrieval_problem,
    second_encoder,
)

CLOSED_FORMS = ("Procrustes", "PLS", "Ridge map")
METHODS = ("Cosine", *CLOSED_FORMS, "CS alignment")
DIRECTIONS = ("q2g", "g2q")


def load(name, seed=0):
    """``(X, groups, n_query_features, description)`` of a data set."""
    if name == "synthetic-2enc":
        b = make_retrieval_problem(1000, 128, n_query_features=96, distortion=0.5,
                                   random_state=seed)
        return b.X, b.groups, 96, "make_retrieval_problem(1000, 128, n_query_features=96, " \
            "distortion=0.5)"
    if name == "coco":
        b = load_coco_clip()
        return b.X, b.groups, None, "COCO val2017 CLIP ViT-B/16, 500 pairs"
    if name == "coco-2enc":
        b = load_coco_clip()
        text = second_encoder(b.queries, 384, 0.5, random_state=seed)
        return pair(text, b.gallery[b.groups]), b.groups, 384, \
            "COCO, captions re-encoded by second_encoder(384, distortion=0.5)"
    if name == "msrvtt":
        b = fetch_msrvtt_videoclip()
        return b.X, b.groups, None, "MSR-VTT VideoCLIP, 100 pairs"
    raise ValueError(f"unknown data set {name!r}")


def run_dataset(name, cv=3, seed=0):
    X, groups, nq, what = load(name, seed)
    X_bank, X_test, g_bank, _ = bank_test_split(X, groups, random_state=seed)
    registry = registered_methods()
    rows, hits = {}, {}
    for method in METHODS:
        if method == "Cosine" and nq is not None:
            continue  # halves of two widths: no shared space without alignment
        entry = registry[method]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row, extras = run_method(
                entry["factory"], X_bank, X_test, groups_bank=g_bank, grid=entry["grid"],
                cv=cv, n_query_features=nq,
            )
        row["seconds"] = time.perf_counter() - t0
        rows[method], hits[method] = row, extras["hits"]
        fitted = extras["estimators"]
        row["selected"] = {d: getattr(fitted[d][0], "selected_", None)
                           if hasattr(fitted[d], "steps") else None for d in DIRECTIONS}
        print(f"  {method}: {row['seconds']:.0f} s", file=sys.stderr)
    comparisons = {}
    for d in DIRECTIONS:
        best = max(CLOSED_FORMS, key=lambda m: rows[m]["cv R@1"][d])
        comparisons[f"CS - best closed form ({best}) {d}"] = paired_bootstrap_ci(
            hits["CS alignment"][d], hits[best][d])
        if "Cosine" in rows:
            for method in METHODS[1:]:
                comparisons[f"{method} - Cosine {d}"] = paired_bootstrap_ci(
                    hits[method][d], hits["Cosine"][d])
    return {"dataset": name, "description": what, "n_bank": int(len(X_bank)),
            "n_test": int(len(X_test)), "rows": rows, "comparisons": comparisons}


def print_result(res):
    print(f"\n### {res['dataset']}: {res['description']} "
          f"(bank {res['n_bank']} / test {res['n_test']} pairs)\n")
    print("| method | R@1 q2g | R@1 g2q | bank-CV R@1 q2g / g2q | chosen q2g; g2q | CS kept |")
    print("|---|---|---|---|---|---|")
    for method, row in res["rows"].items():
        params = "; ".join(
            ", ".join(f"{k.split('__')[-1]}={v}" for k, v in row["params"][d].items())
            for d in DIRECTIONS
        )
        kept = " / ".join(str(row["selected"][d]) for d in DIRECTIONS) \
            if row["selected"]["q2g"] else ""
        print(f"| {method} | {row['q2g R@1']:.1f} | {row['g2q R@1']:.1f} | "
              f"{row['cv R@1']['q2g']:.1f} / {row['cv R@1']['g2q']:.1f} | {params} | "
              f"{kept} |")
    print()
    for label, (delta, lo, hi) in res["comparisons"].items():
        print(f"- {label}: {delta:+.1f} [{lo:+.1f}, {hi:+.1f}]")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+",
                        default=["synthetic-2enc", "coco", "coco-2enc", "msrvtt"])
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, default=1)
    parser.add_argument("--output", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}, BLAS threads {args.blas_threads}")
    results = []
    with threadpool_limits(args.blas_threads):
        for name in args.datasets:
            print(f"{name} ...", file=sys.stderr)
            results.append(run_dataset(name, cv=args.cv, seed=args.seed))
            print_result(results[-1])
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
