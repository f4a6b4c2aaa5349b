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

5. with ``--candidates N [N ...]``, instead of the table above: the recall@10
   of the candidate path against the exact top 10 at each number of
   candidates N, with the time per query of both. Linear-form methods search
   a graph under their own scores; CSLS, QB-Norm, LS, MP and DN search under
   cosine and re-score the candidates exactly; the linear-form methods are
   also run on the cosine graph (same exact re-scoring). The methods
   searched under cosine build the same graph: it is built once per gallery
   (its time reported on the first) and shared,

under a fixed ``working_memory`` budget, reporting seconds and the peak of
traced (numpy) memory beyond the inputs. Time should grow linearly in
n_bank × n_gallery and the peak should stay near the budget plus the
per-gallery vectors, whatever n is.

    python benchmarks/bench_scale.py --quick
    python benchmarks/bench_scale.py --gallery 100000 --bank 5000 --queries 500 \\
        --methods Cosine,IS,SN,CSLS,QB-Norm,LS,MP --candidates 100 300 1000 3000
    python benchmarks/bench_scale.py --data cone --gallery 10000 100000 \\
        --bank 100000 --working-memory 1024 --max-iter 2
"""

import argparse
import gc
import time
import tracemalloc

import numpy as np
from sklearn import config_context
from sklearn.pipeline import Pipeline

import skxmr
from skxmr import DualBankSinkhornNormalizer, RetrievalEstimator, SinkhornNormalizer
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
    ids = approx.kneighbors(Q, 10, return_distance=False)
    t2 = time.perf_counter()
    exact = index.kneighbors(Q, 10, return_distance=False)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)])
    return f"{t1 - t0:>13.2f}{t2 - t1:>12.2f}{recall:>11.3f}"


def candidate_rows(name, est, G, Q, n_candidates, shared):
    """Recall@10 and ms per query of the candidate path at each number of
    candidates, against the exact index's top 10: one printed row per graph
    searched (a linear-form method's own graph, and the shared cosine graph
    with the same exact re-scoring)."""
    import copy

    from skxmr._serving import LinearCandidates

    exact, t_index = timed(lambda: est.index(G))
    ids_exact, t_exact = timed(lambda: exact.kneighbors(Q, 10, return_distance=False))
    form = None if est._candidate_search == "cosine" else est._linear_form(
        exact.gallery_, exact.state_)
    if form is None and est._candidate_search != "cosine":
        return [f"{name:<10}{len(G):>10}  (no candidate path)"]
    plain = form is None or (form[0] == 1 and form[1] is None)  # cosine's own graph
    searches = [] if plain else [("own", form)]
    searches.append(("cosine", (1.0, None)))
    lines = []
    for search, (scale, offsets) in searches:
        graph, t_graph = shared.get(search), 0.0
        if graph is None:
            graph, t_graph = timed(lambda: LinearCandidates(
                exact.gallery_, scale, np.zeros(len(G)) if offsets is None else offsets))
            if search == "cosine":
                shared["cosine"] = graph
        # an approximate twin of the bound index: its statistics are not recomputed
        approx = copy.copy(exact)
        approx.approximate, approx._candidates = True, graph
        line = (f"{name:<10}{len(G):>10}{search:>8}{t_index:>9.1f}"
                f"{t_graph:>9.1f}{1e3 * t_exact / len(Q):>9.2f}")
        for n_cand in n_candidates:
            approx.n_candidates = n_cand
            ids, t = timed(lambda: approx.kneighbors(Q, 10, return_distance=False))
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, ids_exact)])
            line += f"{recall:>10.3f}{1e3 * t / len(Q):>8.2f}"
        lines.append(line)
    return lines


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def serving_pair(est):
    """``(fit_target, make_index)`` for an estimator or a gallery-transform pipeline.

    Score estimators bind a gallery with ``est.index(G)``; a Pipeline of a
    gallery transformer (InvGC) and a score estimator serves the
    transformed gallery (InvGC changes the gallery only). Returns None for
    transductive methods, which cannot be bound before their queries.
    """
    if isinstance(est, Pipeline):
        first, last = est.steps[0][1], est.steps[-1][1]
        if len(est.steps) == 2 and hasattr(first, "transform_gallery") and isinstance(
            last, RetrievalEstimator
        ):
            return last, lambda G: last.index(first.transform_gallery(G))
        return None
    if not isinstance(est, RetrievalEstimator) or est._transductive:
        return None
    return est, est.index


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--bank", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--working-memory", type=float, default=256, help="MiB")
    parser.add_argument("--methods", help="comma-separated registered names")
    parser.add_argument("--max-iter", type=int, help="Sinkhorn iterations (default: each method's)")
    parser.add_argument("--approximate", action="store_true", help="also faiss candidates")
    parser.add_argument(
        "--data", choices=("synthetic", "cone"), default="synthetic",
        help="make_retrieval_problem (shared latent, modality gap, hubs; holds float64 "
        "temporaries of the whole problem, ~20 GB at 10^6 items) or unit vectors in a "
        "narrow cone, built in float32 chunks (full intrinsic dimension: the worst case "
        "for ANN)",
    )
    parser.add_argument("--quick", action="store_true", help="gallery 2k/5k/20k, bank 2k")
    parser.add_argument(
        "--candidates", type=int, nargs="+",
        help="numbers of candidates per query: print the recall@10 table of the candidate "
        "path against exact search instead of the scale table",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.gallery, args.bank, args.queries = [2_000, 5_000, 20_000], 2_000, 500

    registry = skxmr.registered_methods()
    names = args.methods.split(",") if args.methods else list(registry)
    rng = np.random.default_rng(0)
    d = args.dim
    if args.data == "cone":
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
        del data

    print(
        f"{args.data} data: bank {args.bank} pairs, {args.queries} queries, d={d}, float32, "
        f"working_memory={args.working_memory:g} MiB"
    )
    if args.candidates:
        with config_context(working_memory=args.working_memory):
            return candidate_table(names, registry, X_bank, Q, galleries, args)
    print(
        "index s: binding the gallery (all per-gallery statistics); passes: matrix "
        "passes over bank x gallery (Sinkhorn: iterations); ns/entry: index seconds "
        "per bank query x gallery item (DBSN: x (gallery + gallery bank) item) x pass; peak: traced numpy memory beyond the "
        "inputs, and the part of it that is not the index's own gallery copy"
    )
    header = (
        f"{'method':<16}{'n_gallery':>10}{'index s':>10}{'passes':>7}{'ns/entry':>10}"
        f"{'rank s':>9}{'peak MiB':>10}{'work MiB':>10}"
    )
    if args.approximate:
        header += f"{'ann index s':>13}{'ann rank s':>12}{'recall@10':>11}"
    print(header)
    print("-" * len(header), flush=True)
    with config_context(working_memory=args.working_memory):
        for name in names:
            est = registry[name]["factory"](direction="q2g")
            served = serving_pair(est)
            if served is None:
                print(f"{name:<16}  (no gallery index: transductive or not a gallery transform)")
                continue
            scorer, make_index = served
            passes = 1
            if args.max_iter and "max_iter" in scorer.get_params():
                scorer.set_params(max_iter=args.max_iter)
            if isinstance(scorer, SinkhornNormalizer):
                passes = scorer.max_iter
            est.fit(X_bank)
            n_bank = scorer.query_bank_.shape[0]
            # DBSN's transport columns are the gallery and the gallery bank
            extra = scorer.gallery_bank_.shape[0] if isinstance(
                scorer, DualBankSinkhornNormalizer) else 0
            for n, G in galleries.items():
                index, t_index, peak_i = measure(lambda: make_index(G))
                _, t_rank, peak_r = measure(lambda: index.kneighbors(Q, 10))
                peak = max(peak_i, peak_r)
                per = 1e9 * t_index / (n_bank * (n + extra) * passes)
                line = (
                    f"{name:<16}{n:>10}{t_index:>10.2f}{passes:>7}{per:>10.2f}"
                    f"{t_rank:>9.2f}{peak:>10.0f}{peak - G.nbytes / 2**20:>10.0f}"
                )
                if args.approximate:
                    line += approximate_columns(scorer, index, index.gallery_, Q)
                print(line, flush=True)
                index = None  # free the gallery statistics before the next size
    return 0


def candidate_table(names, registry, X_bank, Q, galleries, args):
    print("search: the graph searched (own: the method's linear form folded in; cosine: "
          "plain cosine), the candidates then re-scored exactly; index s: the exact statistics; graph s: the HNSW build (M=32, "
          "efConstruction=200; the cosine graph built once per gallery, shared); exact "
          "ms/q: exact kneighbors per query; then recall@10 against exact and ms/q at "
          "each number of candidates")
    header = f"{'method':<10}{'n_gallery':>10}{'search':>8}{'index s':>9}{'graph s':>9}" \
             f"{'exact ms':>9}"
    for n_cand in args.candidates:
        header += f"{'R@10 ' + str(n_cand):>10}{'ms/q':>8}"
    print(header)
    print("-" * len(header), flush=True)
    shared = {n: {} for n in galleries}
    for name in names:
        est = registry[name]["factory"](direction="q2g")
        if args.max_iter and "max_iter" in est.get_params():
            est.set_params(max_iter=args.max_iter)
        est.fit(X_bank)
        for n, G in galleries.items():
            for line in candidate_rows(name, est, G, Q, args.candidates, shared[n]):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
