"""Serving at scale: time and peak memory per method as the gallery grows.

For every registered score estimator (or the ``--methods`` given) that can be
bound to a gallery, on synthetic float32 embeddings (d = 512 by default):

1. fit on a bank of ``--bank`` pairs,
2. bind a gallery of n items (``est.index(G)``: all per-gallery statistics),
3. rank a batch of ``--queries`` queries (``index.kneighbors(Q, 10)``),
4. with ``--approximate``, the same with faiss candidates
   (``est.index(G, approximate=True)``) for methods of linear form: build
   and ranking time and the recall@10 of the approximate top 10 against the
   exact one,

under a fixed ``working_memory`` budget, reporting seconds and the peak of
traced (numpy) memory beyond the inputs. Time should grow linearly in
n_bank × n_gallery and the peak should stay near the budget plus the
per-gallery vectors, whatever n is.

    python benchmarks/bench_scale.py --quick
    python benchmarks/bench_scale.py --gallery 10000 100000 1000000 --bank 100000
"""

import argparse
import gc
import time
import tracemalloc

import numpy as np
from sklearn import config_context

import skxmr
from skxmr import RetrievalEstimator
from skxmr.datasets import make_retrieval_problem


def unit_rows(rng, n, d, chunk=65536):
    """n random unit vectors in a narrow cone, float32, built chunk-wise."""
    mean = rng.standard_normal(d).astype(np.float32)
    mean /= np.linalg.norm(mean)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), d)).astype(np.float32)
        block += 4.0 * mean
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + chunk] = block
    return out


def measure(fn):
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def approximate_columns(est, index, G, Q):
    """Build/rank seconds and recall@10 of faiss candidates vs exact top 10."""
    if est._linear_form(index.gallery_, index.state_) is None:
        return f"{'(not linear)':>36}"
    t0 = time.perf_counter()
    approx = est.index(G, approximate=True)
    t1 = time.perf_counter()
    ids = approx.kneighbors(Q, 10, return_scores=False)
    t2 = time.perf_counter()
    exact = index.kneighbors(Q, 10, return_scores=False)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)])
    return f"{t1 - t0:>13.2f}{t2 - t1:>12.2f}{recall:>11.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--bank", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--working-memory", type=float, default=256, help="MiB")
    parser.add_argument("--methods", help="comma-separated registered names")
    parser.add_argument("--approximate", action="store_true", help="also faiss candidates")
    parser.add_argument(
        "--data", choices=("synthetic", "isotropic"), default="synthetic",
        help="make_retrieval_problem (shared latent, modality gap, hubs) or isotropic "
        "unit vectors in a cone (full intrinsic dimension: the worst case for ANN)",
    )
    parser.add_argument("--quick", action="store_true", help="gallery 2k/5k/20k, bank 2k")
    args = parser.parse_args(argv)
    if args.quick:
        args.gallery, args.bank, args.queries = [2_000, 5_000, 20_000], 2_000, 500

    registry = skxmr.registered_methods()
    names = args.methods.split(",") if args.methods else list(registry)
    rng = np.random.default_rng(0)
    d = args.dim
    if args.data == "isotropic":
        X_bank = np.hstack([unit_rows(rng, args.bank, d), unit_rows(rng, args.bank, d)])
        Q = unit_rows(rng, args.queries, d)
        galleries = {n: unit_rows(rng, n, d) for n in args.gallery}
    else:
        n_bank, n_q, n_max = args.bank, args.queries, max(args.gallery)
        data = make_retrieval_problem(
            n_pairs=n_bank + max(n_q, n_max), n_features=d, random_state=0
        )
        X_bank = data.X[:n_bank]
        Q = data.queries[n_bank : n_bank + n_q]  # their items lead each gallery
        galleries = {n: data.gallery[n_bank : n_bank + n] for n in args.gallery}

    print(
        f"{args.data} data: bank {args.bank} pairs, {args.queries} queries, d={d}, float32, "
        f"working_memory={args.working_memory:g} MiB"
    )
    header = f"{'method':<16}{'n_gallery':>10}{'index s':>10}{'rank s':>10}{'peak MiB':>10}{'ns/(bank*gal)':>15}"
    if args.approximate:
        header += f"{'ann index s':>13}{'ann rank s':>12}{'recall@10':>11}"
    print(header)
    print("-" * len(header))
    with config_context(working_memory=args.working_memory):
        for name in names:
            est = registry[name]["factory"](direction="q2g")
            if not isinstance(est, RetrievalEstimator) or est._transductive:
                print(f"{name:<16}  (no gallery index: pipeline or transductive)")
                continue
            est.fit(X_bank)
            for n, G in galleries.items():
                index, t_index, peak_i = measure(lambda: est.index(G))
                _, t_rank, peak_r = measure(lambda: index.kneighbors(Q, 10))
                per = 1e9 * t_index / (est.query_bank_.shape[0] * n)
                line = (
                    f"{name:<16}{n:>10}{t_index:>10.2f}{t_rank:>10.2f}"
                    f"{max(peak_i, peak_r):>10.0f}{per:>15.3f}"
                )
                if args.approximate:
                    line += approximate_columns(est, index, G, Q)
                print(line)
                index = None  # free the gallery statistics before the next size
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
