"""Wall time of ``skxmr benchmark --tune`` on 1,000 pairs of 512-d embeddings.

The goal: every registered method tuned on each of 5 random bank/test
splits of 1,000 pairs in under 3 minutes on 2 cores. The pairs are what a
user brings (``--queries Q.npy --gallery G.npy``): 1,000 synthetic
CLIP-like pairs of width 512 (:func:`skxmr.datasets.make_retrieval_problem`
with a 64-d shared content, a modality gap and hubs; cosine R@1 about 64 on
500 items, as the bundled COCO's 51 to 62), written to a temporary folder
and read back as the command line reads them.

Printed: the load and thread settings, the wall time and its ratio to the
goal, and each method's share of the tuning time. ``--separate`` also runs
the methods whose leading pipeline steps are shared across directions
(alignments, calibration) with the sharing switched off, in the same
process, and prints the ratio of the two times (and whether the tuned
results are identical).

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_tune_time.py`` (add
``--dataset coco-clip`` for the bundled pairs, ``--separate`` for the
ratio).
"""

import argparse
import os
import tempfile
import time
from unittest import mock

import numpy as np

from skxmr.benchmark import load_files, run_benchmark
from skxmr.benchmark import _run
from skxmr.datasets import make_retrieval_problem

GOAL_S = 180.0


def user_files(root, n_pairs, n_features, random_state=0):
    """Synthetic paired embeddings saved as a user's ``.npy`` files."""
    data = make_retrieval_problem(n_pairs, n_features, n_latent=64, noise=2.2, cone=1.5,
                                  random_state=random_state)
    paths = os.path.join(root, "queries.npy"), os.path.join(root, "gallery.npy")
    np.save(paths[0], data.queries)
    np.save(paths[1], data.gallery)
    return paths


def timed(data, methods, n_splits):
    t0 = time.perf_counter()
    result = run_benchmark(data, methods=methods, tune=True, n_splits=n_splits)
    return time.perf_counter() - t0, result


def outcome(result):
    """What tuning chose and what it scored, per method, split and direction."""
    return {name: ([s["params"] for s in row["splits"]],
                   [row.get(f"{d} cv_folds") for d in ("q2g", "g2q")],
                   [row[f"{d} recall@1"] for d in ("q2g", "g2q")])
            for name, row in result["rows"].items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=None,
                        help="a named data set instead of the synthetic files")
    parser.add_argument("--n-pairs", type=int, default=1000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--n-splits", type=int, default=5)
    parser.add_argument("--methods", default=None, help="comma-separated (default: all)")
    parser.add_argument("--separate", action="store_true",
                        help="also time the shared-step methods without sharing")
    args = parser.parse_args()
    methods = args.methods.split(",") if args.methods else None
    print(f"load {open('/proc/loadavg').read().split()[:3]}" if os.path.exists("/proc/loadavg")
          else "load n/a", f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
          f"cpus {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as root:
        if args.dataset:
            data, what = args.dataset, args.dataset
        else:
            q, g = user_files(root, args.n_pairs, args.n_features)
            data = load_files(q, g, n_splits=args.n_splits)
            what = f"{args.n_pairs} synthetic pairs of width {args.n_features}"
        wall, result = timed(data, methods, args.n_splits)
        print(f"--tune, {what}, {args.n_splits} splits: {wall:.1f} s wall "
              f"({wall / GOAL_S:.2f} of the {GOAL_S:.0f} s goal)")
        rows = result["rows"]
        total = sum(row["tune_time"] + row["fit_time"] + row["score_time"]
                    for row in rows.values()) * args.n_splits
        print(f"{'method':20s} {'s/split':>8s} {'share':>6s}")
        for name, row in sorted(rows.items(), key=lambda kv: -kv[1]["tune_time"]):
            per_split = row["tune_time"] + row["fit_time"] + row["score_time"]
            print(f"{name:20s} {per_split:8.2f} {per_split * args.n_splits / total:6.1%}")
        if args.separate:
            shared = [name for name in rows
                      if _run.shares_steps(*_estimators_and_grid(name))]
            t_shared, r_shared = timed(data, shared, args.n_splits)
            with mock.patch.object(_run, "shares_steps", lambda *a: False):
                t_separate, r_separate = timed(data, shared, args.n_splits)
            same = outcome(r_shared) == outcome(r_separate)
            print(f"shared-step methods {shared}: separate {t_separate:.1f} s, shared "
                  f"{t_shared:.1f} s, ratio {t_separate / t_shared:.2f}; "
                  f"results {'identical' if same else 'DIFFER'}")


def _estimators_and_grid(name):
    from skxmr import registered_methods

    entry = registered_methods()[name]
    return {d: entry["factory"](direction=d) for d in ("q2g", "g2q")}, entry["grid"]


if __name__ == "__main__":
    main()
