"""Serving and inverted-softmax cases for ``benchmarks/bench_limits.py`` (issue 17).

To be folded into ``bench_limits.py``'s ``CASES`` (it was not on main when
these were written): ``CASES.update(SCORE_CASES)``. Each case uses that
file's helpers (``unit_rows``, ``interleaved``, ``row``) and ``args``.

* ``kneighbors``: ``GalleryIndex.kneighbors`` (``--knn-queries`` queries,
  ``--knn-gallery`` items, 10 neighbours) of every linear-form method
  against the float32 query × gallery GEMM alone (target <= 1.5);
* ``single query``: one query's ``kneighbors`` against a bare ``sgemv`` +
  ``argpartition`` + sort of the 10 (target: the same, ~1.0);
* ``IS scores curve``: ``inverted_softmax_scores`` (potentials and scores)
  in ns per entry from 2k × 2k to 20k × 20k, against the GEMM of each size
  (the potentials' own curve is ``IS curve``; flat is the target).

Usage (until folded)::

    PYTHONPATH=.:benchmarks python benchmarks/_limits_scores.py [--quick]
"""

import numpy as np

from skxmr import CosineSimilarity, DBNorm, InvertedSoftmax, pair
from skxmr.hubness import inverted_softmax_scores


def _helpers():
    from bench_limits import interleaved, row, unit_rows

    return interleaved, row, unit_rows


def _indexes(G, bank):
    X = pair(bank, bank)
    return {
        "cosine": CosineSimilarity().fit(X).index(G),
        "IS": InvertedSoftmax().fit(X).index(G),
        "DualIS": DBNorm().fit(X).index(G),
    }


def kneighbors_vs_gemm(args):
    interleaved, row, unit_rows = _helpers()
    n_q, n_g = args.knn_queries, args.knn_gallery
    Q, G, bank = unit_rows(n_q, seed=0), unit_rows(n_g, seed=1), unit_rows(2000, seed=2)
    rows = []
    for name, index in _indexes(G, bank).items():
        t, t_gemm = interleaved([lambda: index.kneighbors(Q, 10), lambda: Q @ G.T], args.repeat)
        rows.append(row(f"knn {name}", f"{n_q}x{n_g}", t, "float32 GEMM", t_gemm, 1.5,
                        "10 neighbours, float32 end to end"))
    return rows


def single_query(args):
    interleaved, row, unit_rows = _helpers()
    n_g = args.knn_gallery
    G, bank = unit_rows(n_g, seed=1), unit_rows(2000, seed=2)
    q = unit_rows(1, seed=3)

    def bare():
        s = G @ q[0]
        top = np.argpartition(s, s.size - 10)[-10:]
        return top[np.argsort(-s[top])]

    rows = []
    for name, index in _indexes(G, bank).items():
        reps = 20 * args.repeat
        t, t_bare = interleaved([lambda: index.kneighbors(q, 10), bare], reps)
        rows.append(row(f"1-query {name}", f"1x{n_g}", t, "sgemv+partition", t_bare, 1.0,
                        f"{1e3 * t:.2f} ms"))
    return rows


def is_scores_curve(args):
    interleaved, row, unit_rows = _helpers()
    rows = []
    for n in args.sizes:
        Q, G, B = unit_rows(n, seed=0), unit_rows(n, seed=1), unit_rows(n, seed=2)
        t, t_gemm = interleaved([lambda: inverted_softmax_scores(Q, G, B), lambda: Q @ G.T],
                                args.repeat)
        rows.append(row("IS scores", f"{n}x{n}", t, "float32 GEMM", t_gemm, None,
                        f"{1e9 * t / (n * n):.2f} ns/entry (bank {n})"))
    return rows


SCORE_CASES = {
    "kneighbors": kneighbors_vs_gemm,
    "single query": single_query,
    "IS scores curve": is_scores_curve,
}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--knn-queries", type=int, default=1000)
    parser.add_argument("--knn-gallery", type=int, default=200000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000, 8000, 20000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases", default=",".join(SCORE_CASES))
    args = parser.parse_args()
    if args.quick:
        args.knn_gallery, args.sizes = 50000, [2000, 4000]
    print(f"d=512, float32 embeddings, best of {args.repeat} interleaved")
    for name in args.cases.split(","):
        for r in SCORE_CASES[name](args):
            target = "-" if r["target"] is None else f"{r['target']:.1f}"
            print(f"{r['case']:<16}{r['shape']:>13}{r['time_s']:>9.4f}  {r['floor']:<17}"
                  f"{r['floor_s']:>8.4f}{r['ratio']:>7.2f}{target:>6}  {r['note']}", flush=True)
