"""Each hot path against its floor, in one run: ratios to a GEMM, one pass over S, a bare loop.

A table of named cases: ``CASES`` maps a name to a function
``case(args) -> list of rows`` (dicts with the keys of ``COLUMNS``). To add
a hot path, write one function that times it and its floor with
:func:`interleaved` and add one entry to ``CASES``. Timings are the best
of ``--repeat`` interleaved runs (load from other processes hits the path
and its floor alike); only the ratios are meant to be compared across
machines.

Cases:

* ``SN streamed``: streamed Sinkhorn (bank × gallery never stored) per
  iteration against one float32 GEMM of the same size in the same row
  blocks (target <= 1.2 GEMMs per iteration);
* ``SN stored``: SN's potentials with the stored float32 kernel (the
  default for float32 embeddings), at ``--n`` × ``--n`` and on an index
  shape (``--index-bank`` × ``--index-gallery``), against its bound
  measured in the same run, the float32 GEMM (into a warm buffer) + one
  float32 ``exp`` pass + T matrix-vector read passes (target <= 1.5), and
  against the plain in-place numpy loop (one GEMM, row shift, ``exp`` in
  place, ``r = a / (K c); c = b / (Kᵀ r)``);
* ``SN default``: the default configuration (``working_memory=None``) in
  ns per entry and iteration, against a 1 GiB budget;
* ``SN curve`` / ``IS curve``: ns per entry (per iteration for SN) from
  2k × 2k to 20k × 20k, against the GEMM of each size (flat is the target);
* ``report``: ``retrieval_report`` in both directions (``--report-n``
  square, one relevant item each way) against one pass over S per
  direction, validation included (target <= 3);
* ``LocalAdj``: InvGC with LocalAdj (k = 1 %, gallery = banks = ``--n``)
  against its two GEMMs ``G Bgᵀ``, ``G Bqᵀ`` (target <= 2);
* ``kneighbors``: ``GalleryIndex.kneighbors`` (1000 queries, 200,000
  items, 50,000 with ``--quick``, 10 neighbours) of every linear-form method
  against the float32 query × gallery GEMM alone (target <= 1.5);
* ``single query``: one query's ``kneighbors`` against a bare ``sgemv`` +
  ``argpartition`` + sort of the 10 (target: the same, ~1.0);
* ``IS scores curve``: ``inverted_softmax_scores`` (potentials and scores)
  in ns per entry from 2k × 2k to 20k × 20k, against the GEMM of each size
  (the potentials' own curve is ``IS curve``; flat is the target).

Usage::

    python benchmarks/bench_limits.py                  # the recorded run (doc/scaling.rst)
    python benchmarks/bench_limits.py --quick          # smaller sizes
    python benchmarks/bench_limits.py --cases "SN curve,IS curve"
    python benchmarks/bench_limits.py --cases "SN stored,SN streamed"   # Sinkhorn's targets
"""

import argparse
import gc
import time

import numpy as np


COLUMNS = ("case", "shape", "time_s", "floor", "floor_s", "ratio", "target", "note")


def unit_rows(n, d=512, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d), dtype=np.float32)
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    return A


def interleaved(fns, repeat):
    """Best time of each callable, run in turn ``repeat`` times."""
    best = [np.inf] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            gc.collect()
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def row(case, shape, t, floor, t_floor, target=None, note=""):
    return {"case": case, "shape": shape, "time_s": t, "floor": floor, "floor_s": t_floor,
            "ratio": t / t_floor, "target": target, "note": note}


def gemm_blocks(B, C, n_iter, working_memory, scale=100.0):
    """The floor of a streamed pass: float32 GEMMs of row chunks into one
    reused buffer (all BLAS threads)."""
    chunk = max(1, int(working_memory * 2**20 // (4 * C.shape[0])))
    E = np.empty((min(chunk, B.shape[0]), C.shape[0]), dtype=np.float32)
    for _ in range(n_iter):
        for i in range(0, B.shape[0], chunk):
            Bs = B[i:i + chunk] * np.float32(scale)
            np.matmul(Bs, C.T, out=E[: Bs.shape[0]])


def bare_stored(B, C, tau, n_iter):
    """The plain in-place loop on a float32 kernel: one GEMM (1/τ folded
    into the bank), the row shift and ``exp`` in place, then
    ``r = a / (K c); c = b / (Kᵀ r)``."""
    K = (B * np.float32(1.0 / tau)) @ C.T
    K -= K.max(axis=1, keepdims=True)
    np.exp(K, out=K)
    a, b = np.full(K.shape[0], 1.0 / K.shape[0]), np.full(K.shape[1], 1.0 / K.shape[1])
    c = b.copy()
    for _ in range(n_iter):
        r = a / (K @ c.astype(np.float32))
        c = b / (r.astype(np.float32) @ K)
    return c


def stored_bound(B, C, n_iter, repeat):
    """The stored kernel's bound, each part timed on its own (best of
    ``repeat``): float32 GEMM into a warm buffer, one float32 ``exp`` pass
    over it, T read passes (``K @ c``, one matrix-vector product each)."""
    K = np.empty((B.shape[0], C.shape[0]), dtype=np.float32)
    c = np.full(C.shape[0], 1.0 / C.shape[0], dtype=np.float32)
    t_gemm, t_exp, t_read = interleaved(
        [lambda: np.matmul(B, C.T, out=K), lambda: np.exp(K, out=K), lambda: K @ c], repeat)
    return t_gemm + t_exp + n_iter * t_read, (t_gemm, t_exp, t_read)


def _sn(B, C, T, working_memory, log=None):
    """SN's potentials as the estimator computes them; ``log`` (a dict)
    receives whether the run streamed."""
    from skxmr._ot import KernelBuffer, block_potentials

    buffer = KernelBuffer()  # reused across runs, as an estimator does

    def run():
        _, out = block_potentials(B, [C], 0.01, T, None, working_memory=working_memory,
                                  n_jobs=None, exact_error=None, buffer=buffer)
        if log is not None:
            log.update(out)

    return run


def _path(log):
    return "streamed" if log.get("streamed") else "stored"


# -------------------------------------------------------------- cases
def sn_streamed(args):
    n_b, n_g, T, wm = args.stream_bank, args.stream_gallery, args.stream_iter, args.stream_wm
    B, C = unit_rows(n_b, seed=0), unit_rows(n_g, seed=1)
    log = {}
    t, t_gemm = interleaved([_sn(B, C, T, wm, log), lambda: gemm_blocks(B, C, 1, wm)],
                            args.repeat)
    return [row("SN streamed", f"{n_b}x{n_g}", t / T, "float32 GEMM", t_gemm, 1.2,
                f"{_path(log)}, per iteration, T={T}, working_memory={wm:g} MiB")]


def sn_stored(args):
    T, rows = 10, []
    for n_b, n_g in ((args.n, args.n), (args.index_bank, args.index_gallery)):
        B, C = unit_rows(n_b, seed=0), unit_rows(n_g, seed=1)
        log = {}
        sn = _sn(B, C, T, None, log)
        t, t_bare = interleaved([sn, lambda: bare_stored(B, C, 0.01, T)], args.repeat)
        bound, (t_gemm, t_exp, t_read) = stored_bound(B, C, T, args.repeat)
        parts = f"GEMM {t_gemm:.2f} + exp {t_exp:.2f} + {T} x read {t_read:.3f} s"
        rows.append(row("SN stored", f"{n_b}x{n_g}", t, "sgemm bound", bound, 1.5,
                        f"{_path(log)}, T={T}: {parts}"))
        rows.append(row("SN stored", f"{n_b}x{n_g}", t, "plain loop", t_bare, None,
                        f"{_path(log)}, T={T}, float32 kernel both"))
        del B, C, sn
        gc.collect()
    return rows


def sn_default(args):
    n, T = args.n, 10
    B, C = unit_rows(n, seed=0), unit_rows(n, seed=1)
    log, log_1g = {}, {}
    t, t_1g = interleaved([_sn(B, C, T, None, log), _sn(B, C, T, 1024.0, log_1g)],
                          args.repeat)
    ns = 1e9 * t / (n * n * T)
    return [row("SN default", f"{n}x{n}", t, f"{_path(log_1g)}, 1 GiB", t_1g, None,
                f"{_path(log)}, {ns:.1f} ns/entry/iteration "
                f"(1 GiB: {1e9 * t_1g / (n * n * T):.1f})")]


def _curve(name, make, sizes, repeat, per_iter=1):
    rows = []
    for n in sizes:
        B, C = unit_rows(n, seed=0), unit_rows(n, seed=1)
        fn = make(B, C)
        t, t_gemm = interleaved([fn, lambda: B @ C.T], repeat)
        ns = 1e9 * t / (n * n * per_iter)
        rows.append(row(name, f"{n}x{n}", t, "float32 GEMM", t_gemm, None,
                        f"{ns:.2f} ns/entry" + ("/iteration" if per_iter > 1 else "")))
    return rows


def sn_curve(args):
    return _curve("SN curve", lambda B, C: _sn(B, C, 10, None), args.sizes, args.repeat, 10)


def is_curve(args):
    from skxmr import InvertedSoftmax

    def make(B, C):
        est = InvertedSoftmax()._fit_explicit_banks(B)
        return lambda: est.index(C)

    return _curve("IS curve", make, args.sizes, args.repeat)


def _cone(n, d, seed, shift):
    A = unit_rows(n, d, seed) + shift
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def report_both(args):
    """retrieval_report, both directions, against one pass over S per
    direction (``S.max(axis=1)`` twice); validation included (target <= 3)."""
    from skxmr.metrics import retrieval_report

    n = args.report_n
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float64, np.float32):
        S = rng.standard_normal((n, n)).astype(dtype)
        rel = rng.permutation(n)
        t, t_floor = interleaved([lambda: retrieval_report(S, rel),
                                  lambda: (S.max(axis=1), S.max(axis=1))], args.repeat)
        rows.append(row("report q2g+g2q", f"{n}x{n}", t, "2 passes S.max", t_floor, 3.0,
                        f"{np.dtype(dtype).name}, one relevant item each way"))
    return rows


def localadj(args):
    """InvGC LocalAdj (k = 1 %) transform_gallery against its two GEMMs
    G Bgᵀ and G Bqᵀ in row chunks (target <= 2)."""
    from skxmr import InvGC, pair

    n, d = args.n, 512
    shift = 2.0 * np.random.default_rng(9).standard_normal(d).astype(np.float32)
    Bq, Bg, G = (_cone(n, d, seed, shift) for seed in (0, 1, 2))
    est = InvGC(adjacency="local", neighbor_fraction=0.01).fit(pair(Bq, Bg))
    banks = (est.gallery_bank_, est.query_bank_)

    def gemms():
        for B in banks:
            for i in range(0, n, 1024):
                G[i:i + 1024] @ B.T

    t, t_floor = interleaved([lambda: est.transform_gallery(G), gemms], args.repeat)
    return [row("LocalAdj", f"{n}x{n}", t, "G Bgᵀ + G Bqᵀ", t_floor, 2.0,
                f"k=1% (m={est.n_neighbors_gallery_}), gallery = banks = n, float32")]


def _knn_sizes(args):
    """1000 queries against 200,000 items (50,000 with ``--quick``)."""
    return 1000, 50000 if getattr(args, "quick", False) else 200000


def _indexes(G, bank):
    from skxmr import CosineSimilarity, DBNorm, InvertedSoftmax, pair

    X = pair(bank, bank)
    return {
        "cosine": CosineSimilarity().fit(X).index(G),
        "IS": InvertedSoftmax().fit(X).index(G),
        "DualIS": DBNorm().fit(X).index(G),
    }


def kneighbors_vs_gemm(args):
    n_q, n_g = _knn_sizes(args)
    Q, G, bank = unit_rows(n_q, seed=0), unit_rows(n_g, seed=1), unit_rows(2000, seed=2)
    rows = []
    for name, index in _indexes(G, bank).items():
        t, t_gemm = interleaved([lambda: index.kneighbors(Q, 10), lambda: Q @ G.T], args.repeat)
        rows.append(row(f"knn {name}", f"{n_q}x{n_g}", t, "float32 GEMM", t_gemm, 1.5,
                        "10 neighbours, float32 end to end"))
    return rows


def single_query(args):
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
    from skxmr.hubness import inverted_softmax_scores

    rows = []
    for n in args.sizes:
        Q, G, B = unit_rows(n, seed=0), unit_rows(n, seed=1), unit_rows(n, seed=2)
        t, t_gemm = interleaved([lambda: inverted_softmax_scores(Q, G, B), lambda: Q @ G.T],
                                args.repeat)
        rows.append(row("IS scores", f"{n}x{n}", t, "float32 GEMM", t_gemm, None,
                        f"{1e9 * t / (n * n):.2f} ns/entry (bank {n})"))
    return rows


CASES = {
    "SN streamed": sn_streamed,
    "SN stored": sn_stored,
    "SN default": sn_default,
    "SN curve": sn_curve,
    "IS curve": is_curve,
    "report": report_both,
    "LocalAdj": localadj,
    "kneighbors": kneighbors_vs_gemm,
    "single query": single_query,
    "IS scores curve": is_scores_curve,
}


def _fmt(v, spec, width=8):
    return f"{'-':>{width}}" if v is None else format(v, spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--index-bank", type=int, default=2000)
    parser.add_argument("--index-gallery", type=int, default=200000)
    parser.add_argument("--stream-bank", type=int, default=20000)
    parser.add_argument("--stream-gallery", type=int, default=50000)
    parser.add_argument("--stream-iter", type=int, default=2)
    parser.add_argument("--stream-wm", type=float, default=256.0,
                        help="SN streamed: working_memory (MiB)")
    parser.add_argument("--report-n", type=int, default=5000, help="retrieval_report: n x n")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000, 8000, 20000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5000-sized problems")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.stream_bank, args.stream_gallery = 5000, 5000, 10000
        args.index_bank, args.index_gallery, args.stream_wm = 1000, 25000, 32.0
        args.sizes = [2000, 4000]
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"d=512, float32 embeddings, best of {args.repeat} interleaved; load {load}")
    print(f"{'case':<13}{'shape':>12}{'time s':>9}  {'floor':<17}{'floor s':>8}{'ratio':>7}"
          f"{'target':>8}  note")
    print("-" * 100)
    for name in args.cases.split(","):
        for r in CASES[name](args):
            print(f"{r['case']:<13}{r['shape']:>12}{r['time_s']:>9.3f}  {r['floor']:<17}"
                  f"{r['floor_s']:>8.3f}{r['ratio']:>7.2f}{_fmt(r['target'], '>8.1f')}  "
                  f"{r['note']}", flush=True)


if __name__ == "__main__":
    main()
