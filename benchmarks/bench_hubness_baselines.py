"""Hubness baselines (IS, QB-Norm, DSL, CSLS, DBNorm, NNN, DN, MP, LS): quality and cost.

Run ``python benchmarks/bench_hubness_baselines.py`` (``--quick`` for a
small run). Two tables:

1. text→image R@1 and k-occurrence skewness (k=10) of every method at its
   defaults on the real COCO CLIP and MSR-VTT VideoCLIP embeddings (half of
   the pairs as banks, ``bank_test_split(X, bank_size=0.5, random_state=0)``);
2. time to bind a gallery (``est.index(G)``: the per-gallery bank pass) and
   to score a batch of queries, on random float32 embeddings, next to one
   bare matrix product of the same size (the floor a dense method pays),
   and both per entry: ns per bank × gallery entry for ``index(G)``, ns per
   query × gallery entry for ``score(Q)``.
"""

import argparse
import time

import numpy as np
from sklearn.base import clone

from skxmr import (
    CSLS,
    CosineSimilarity,
    DBNorm,
    DistributionNormalization,
    DualSoftmax,
    InvertedSoftmax,
    LocalScaling,
    MutualProximity,
    NearestNeighborNormalization,
    QBNorm,
    split_pairs,
)

METHODS = {
    "Cosine": CosineSimilarity(),
    "IS": InvertedSoftmax(),
    "QB-Norm": QBNorm(),
    "DSL": DualSoftmax(),
    "CSLS": CSLS(),
    "DBNorm": DBNorm(),
    "DBNorm dyn": DBNorm(dynamic=True),
    "NNN": NearestNeighborNormalization(),
    "DN": DistributionNormalization(),
    "MP": MutualProximity(),
    "MP emp": MutualProximity(method="empirical"),
    "LS nicdm": LocalScaling(),
    "LS std": LocalScaling(method="standard"),
}


def quality():
    from skxmr.datasets import bank_test_split, load_coco_clip, fetch_msrvtt_videoclip
    from skxmr.metrics import hubness_skewness, recall_at_k

    print("Quality: text->image (COCO), text->video (MSR-VTT), defaults; skew = skewness of N_10")
    header = f"{'method':12s}"
    rows = {name: f"{name:12s}" for name in METHODS}
    for label, fetch in (("COCO CLIP", load_coco_clip), ("MSR-VTT VideoCLIP", fetch_msrvtt_videoclip)):
        data = fetch()
        X_bank, X_test, _, _ = bank_test_split(data.X, bank_size=0.5, random_state=0)
        relevance = split_pairs(X_test).relevance
        header += f" | {label + ' R@1':>22s} {'skew':>6s}"
        for name, est in METHODS.items():
            S = clone(est).fit(X_bank).decision_function(X_test)
            rows[name] += f" | {recall_at_k(S, relevance, k=1):22.1f} {hubness_skewness(S, k=10):6.2f}"
    print(header)
    print("-" * len(header))
    for row in rows.values():
        print(row)


def best_of(func, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def cost(n, d, n_queries, repeat):
    rng = np.random.default_rng(0)

    def unit(m):
        A = rng.standard_normal((m, d)).astype(np.float32)
        return A / np.linalg.norm(A, axis=1, keepdims=True)

    B, G, Q = unit(n), unit(n), unit(n_queries)
    X_bank = np.hstack([B, unit(n)])  # bank queries | bank gallery
    floor_bank = best_of(lambda: G @ B.T, repeat)
    floor_query = best_of(lambda: Q @ G.T, repeat)
    print(
        f"\nCost: bank {n} x {n}, gallery {n}, {n_queries} queries, d={d}, float32; "
        f"best of {repeat}\n"
        f"bare products: gallery x bank {floor_bank:.3f} s ({floor_bank * 1e9 / n**2:.2f} ns/entry), "
        f"queries x gallery {floor_query:.3f} s ({floor_query * 1e9 / (n_queries * n):.2f} ns/entry)"
    )
    header = (f"{'method':12s} {'index(G) s':>11s} {'/ product':>10s} {'ns/entry':>9s} "
              f"{'score(Q) s':>11s} {'/ product':>10s} {'ns/entry':>9s}")
    per_bank, per_query = 1e9 / (n * n), 1e9 / (n_queries * n)
    print(header)
    print("-" * len(header))
    for name, est in METHODS.items():
        est = clone(est).fit(X_bank)
        if est._transductive:
            t_score = best_of(lambda: est.score_matrix(Q, G), repeat)
            print(f"{name:12s} {'(transductive)':>32s} {t_score:11.3f} {t_score / floor_query:10.1f} "
                  f"{t_score * per_query:9.2f}")
            continue
        t_index = best_of(lambda: est.index(G), repeat)
        index = est.index(G)
        t_score = best_of(lambda: index.score(Q), repeat)
        print(
            f"{name:12s} {t_index:11.3f} {t_index / floor_bank:10.1f} {t_index * per_bank:9.2f} "
            f"{t_score:11.3f} {t_score / floor_query:10.1f} {t_score * per_query:9.2f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cost problem")
    parser.add_argument("--no-real", action="store_true", help="skip the real-data table")
    args = parser.parse_args(argv)
    if not args.no_real:
        quality()
    if args.quick:
        cost(n=2000, d=256, n_queries=500, repeat=2)
    else:
        cost(n=10000, d=512, n_queries=2000, repeat=2)


if __name__ == "__main__":
    main()
