"""Serving and inverted-softmax cases for ``benchmarks/bench_limits.py`` (issue 17).

To be folded into ``bench_limits.py``'s ``CASES`` (it was not on main when
these were written): ``CASES.update(SCORE_CASES)``. Each case uses that
file's helpers (``unit_rows``, ``interleaved``, ``row``) and ``args``.

* ``kneighbors``: ``GalleryIndex.kneighbors`` (1000 queries, 200,000
  items, 50,000 with ``--quick``, 10 neighbours) of every linear-form method
  against the float32 query × gallery GEMM alone (target <= 1.5);
* ``single query``: one query's ``kneighbors`` against a bare ``sgemv`` +
  ``argpartition`` + sort of the 10 (target: the same, ~1.0);
* ``IS scores curve``: ``inverted_softmax_scores`` (potentials and scores)
  in ns per entry from 2k × 2k to 20k × 20k, against the GEMM of each size
  (the potentials' own curve is ``IS curve``; flat is the target).

Usage (until folded)::

    PYTHONPATH=.:benchmarks python benchmarks/_limits_scores.py [--quick] [--sizes 2000 4000]
"""

import numpy as np

from skxmr import CosineSimilarity, DBNorm, InvertedSoftmax, pair
from skxmr.hubness import inverted_softmax_scores


def _helpers():
    from bench_limits import interleaved, row, unit_rows

    return interleaved, row, unit_rows


def _knn_sizes(args):
    """1000 queries against 200,000 items (50,000 with ``--quick``)."""
    return 1000, 50000 if getattr(args, "quick", False) else 200000


def _indexes(G, bank):
    X = pair(bank, bank)
    return {
        "cosine": CosineSimilarity().fit(X).index(G),
        "IS": InvertedSoftmax().fit(X).index(G),
        "DualIS": DBNorm().fit(X).index(G),
    }


def kneighbors_vs_gemm(args):
    interleaved, row, unit_rows = _helpers()
    n_q, n_g = _knn_sizes(args)
    Q, G, bank = unit_rows(n_q, seed=0), unit_rows(n_g, seed=1), unit_rows(2000, seed=2)
    rows = []
    for name, index in _indexes(G, bank).items():
        t, t_gemm = interleaved([lambda: index.kneighbors(Q, 10), lambda: Q @ G.T], args.repeat)
        rows.append(row(f"knn {name}", f"{n_q}x{n_g}", t, "float32 GEMM", t_gemm, 1.5,
                        "10 neighbours, float32 end to end"))
    return rows


def single_query(args):
    interleaved, row, unit_rows = _helpers()
    n_g = _knn_sizes(args)[1]
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


if __name__ == "__main__":  # until folded: bench_limits.py's runner with these cases
    import sys

    import bench_limits

    bench_limits.CASES.update(SCORE_CASES)
    argv = sys.argv[1:]
    bench_limits.main(argv if "--cases" in argv else argv + ["--cases", ",".join(SCORE_CASES)])
