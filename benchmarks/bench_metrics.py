"""Speed of the retrieval metrics against one pass over the score matrix.

DESIGN §6 target: ranks within 2x one pass over S (here ``S.max(axis=1)``);
issue 17: ``retrieval_report`` in both directions within 3x one pass per
direction (6x here: one fused pass over row blocks serves both).
The table also shows the input validation alone (``check_matrix``: sklearn's
finiteness check is itself one pass), the chunked top-max(R) metrics and a
full-sort reference (``argsort`` of every row) that the metrics avoid.

Usage: ``python benchmarks/bench_metrics.py [--quick] [--repeat N]``
"""

import argparse
import time

import numpy as np

from skxmr.utils._validation import check_matrix
from skxmr.metrics import (
    k_occurrence,
    map_at_r,
    rank_of_relevant,
    retrieval_report,
)


def full_sort_ranks(S, rel):
    order = np.argsort(-S, axis=1)
    return np.argmax(order == rel[:, None], axis=1) + 1


def best_time(func, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [1000] if args.quick else [2000, 5000]
    rng = np.random.default_rng(0)
    print(f"{'n_q = n_g':>10} {'case':<34} {'seconds':>9} {'x one pass':>10}")
    for n in sizes:
        S = rng.standard_normal((n, n))
        rel1 = rng.permutation(n)
        # five relevant items per query (e.g. five captions per image)
        rel5 = np.zeros((n, n), dtype=bool)
        rel5[np.repeat(np.arange(n), 5), rng.integers(0, n, size=5 * n)] = True
        rel5[np.arange(n), rel1] = True
        cases = {
            "one pass: S.max(axis=1)": lambda: S.max(axis=1),
            "validation: check_matrix": lambda: check_matrix(S, "scores"),
            "ranks, pessimistic": lambda: rank_of_relevant(S, rel1),
            "ranks, average": lambda: rank_of_relevant(S, rel1, ties="average"),
            "mAP@R (+R-Prec), R=1": lambda: map_at_r(S, rel1),
            "mAP@R (+R-Prec), R<=6": lambda: map_at_r(S, rel5),
            "k_occurrence, k=10": lambda: k_occurrence(S, 10),
            "retrieval_report q2g": lambda: retrieval_report(S, rel1, directions=("q2g",)),
            "retrieval_report q2g+g2q": lambda: retrieval_report(S, rel1),
            "reference: full argsort ranks": lambda: full_sort_ranks(S, rel1),
        }
        times = {name: best_time(f, args.repeat) for name, f in cases.items()}
        base = times["one pass: S.max(axis=1)"]
        for name, t in times.items():
            print(f"{n:>10} {name:<34} {t:>9.4f} {t / base:>10.2f}")


if __name__ == "__main__":
    main()
