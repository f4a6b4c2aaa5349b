"""The metrics' and InvGC's cases of the limits and backends benchmarks.

To be folded into ``benchmarks/bench_limits.py`` and
``benchmarks/bench_backends.py`` (created by another helper, not landed when
these were written): each case is a function ``case(ctx) -> list of rows``,
a row a dict with the keys of ``COLUMNS``; ``LIMIT_CASES`` and
``BACKEND_CASES`` map names to them.

Limits (issue 17), each against its floor, timed interleaved in one run
(best of ``--repeat``) so that load from other processes hits both alike:

* ``retrieval_report``: both directions of an n × n score matrix against one
  pass over it (``S.max(axis=1)``) per direction; target <= 3 per direction.
  Validation (sklearn's finiteness check, itself about one pass) included.
* ``InvGC LocalAdj``: ``transform_gallery`` (k = 1 %) against its two GEMMs
  ``G Bgᵀ`` and ``G Bqᵀ`` in the same row chunks; target <= 2.

Backends (issue 13): InvGC full and LocalAdj ``transform_gallery`` on numpy
and torch CPU (CUDA where present), each against a bare loop on the same
backend: full, the two ``G M`` products of the d × d form; LocalAdj, the two
GEMMs, a plain top-k (numpy ``argpartition``, torch ``topk``) and the
neighbour sum (numpy a CSR product, torch the gathered bank rows).

Usage::

    python benchmarks/_limits_metrics.py                  # n = 5000 report, 20000 LocalAdj
    python benchmarks/_limits_metrics.py --n 2000 --n-invgc 5000 --repeat 3
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy: torch under dispatch

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    import torch
except ImportError:  # the optional extra skxmr[torch]
    torch = None

from skxmr import InvGC, pair  # noqa: E402
from skxmr.metrics import retrieval_report  # noqa: E402

COLUMNS = ("case", "backend", "shape", "time_s", "floor_s", "ratio", "target", "note")


class Ctx:
    def __init__(self, args):
        self.n, self.n_invgc, self.d, self.repeat = args.n, args.n_invgc, args.d, args.repeat
        self.backends = args.backends


def _sync(backend):
    if backend == "cuda":
        torch.cuda.synchronize()


def measure(ours, floor, repeat, backend="numpy"):
    """Best times of ``ours()`` and ``floor()``, interleaved."""
    times = {ours: [], floor: []}
    for _ in range(repeat):
        for fn in (ours, floor):
            gc.collect()
            _sync(backend)
            t = time.perf_counter()
            fn()
            _sync(backend)
            times[fn].append(time.perf_counter() - t)
    return min(times[ours]), min(times[floor])


def row(case, backend, shape, t, floor, target=None, note=""):
    return {"case": case, "backend": backend, "shape": shape, "time_s": t, "floor_s": floor,
            "ratio": t / floor, "target": target, "note": note}


def cone(n, d, seed, shift):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d), dtype=np.float32) + shift
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def on(backend, A):
    if backend == "numpy":
        return A
    return torch.as_tensor(A, device="cuda" if backend == "cuda" else "cpu")


def dispatch(backend):
    if backend == "numpy":
        return contextlib.nullcontext()
    return sklearn.config_context(array_api_dispatch=True)


# ------------------------------------------------------------ limits
def report_vs_pass(ctx):
    """retrieval_report both directions / (2 × one pass over S)."""
    n = ctx.n
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float64, np.float32):
        square = rng.standard_normal((n, n)).astype(dtype)
        for label, note in (("1:1", "one relevant item each way"),
                            ("5:1", "n queries x n/5 items, 5 relevant queries per item (COCO-like)")):
            if label == "5:1" and dtype == np.float32:
                continue
            S = square if label == "1:1" else square[:, : n // 5].copy()
            rel = rng.permutation(n) if label == "1:1" else np.arange(n) // 5

            def ours():
                retrieval_report(S, rel)

            def floor():  # one pass per direction
                S.max(axis=1)
                S.max(axis=1)

            t, t_floor = measure(ours, floor, ctx.repeat)
            target = 3.0 if label == "1:1" else None
            shape = f"{S.shape[0]}x{S.shape[1]} {np.dtype(dtype).name}"
            rows.append(row(f"retrieval_report {label}", "numpy", shape,
                            t, t_floor, target, note + "; floor = 2 passes (S.max)"))
    return rows


def _chunks(n, step=1024):
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def localadj_vs_gemms(ctx):
    """InvGC LocalAdj transform_gallery / its two GEMMs G Bgᵀ, G Bqᵀ."""
    n, d = ctx.n_invgc, ctx.d
    shift = 2.0 * np.random.default_rng(9).standard_normal(d).astype(np.float32)
    Bq, Bg, G = cone(n, d, 0, shift), cone(n, d, 1, shift), cone(n, d, 2, shift)
    est = InvGC(adjacency="local", k=0.01).fit(pair(Bq, Bg))
    step = 1024

    def ours():
        est.transform_gallery(G)

    def floor():
        for B in (est.gallery_bank_, est.query_bank_):
            for rows in _chunks(n, step):
                G[rows] @ B.T

    t, t_floor = measure(ours, floor, ctx.repeat)
    return [row("InvGC LocalAdj", "numpy", f"{n}x{n} d={d} f32", t, t_floor, 2.0,
                f"k=1% (m={est.n_neighbors_gallery_}); floor = G Bgᵀ + G Bqᵀ")]


# ---------------------------------------------------------- backends
def _invgc_backend_case(ctx, adjacency):
    n, d = ctx.n_invgc, ctx.d
    shift = 2.0 * np.random.default_rng(9).standard_normal(d).astype(np.float32)
    Bq, Bg, G = cone(n, d, 0, shift), cone(n, d, 1, shift), cone(n, d, 2, shift)
    rows = []
    for backend in ctx.backends:
        X_, G_ = on(backend, pair(Bq, Bg)), on(backend, G)
        with dispatch(backend):
            est = InvGC(adjacency=adjacency, k=0.01).fit(X_)
        banks = (est.gallery_bank_, est.query_bank_)
        m = est.n_neighbors_gallery_
        rs = (est.r_gallery_, est.r_query_)

        def ours():
            with dispatch(backend):
                est.transform_gallery(G_)

        if adjacency == "full":
            Ms = [M.astype(np.float32) if backend == "numpy" else M.float() for M, _ in est._moments_]

            def floor():
                for M in Ms:
                    G_ @ M
        else:
            def floor():
                for B in banks:
                    for rows_ in _chunks(n, 256):
                        W = G_[rows_] @ B.T
                        if backend == "numpy":
                            idx = np.argpartition(W, W.shape[1] - m, axis=1)[:, -m:]
                            w = np.take_along_axis(W, idx, 1)
                            sp.csr_array((w.ravel(), idx.ravel(), np.arange(0, w.size + 1, m)),
                                         shape=W.shape) @ B
                        else:
                            w, idx = W.topk(m, dim=1)
                            torch.einsum("nm,nmd->nd", w, B[idx])

        t, t_floor = measure(ours, floor, ctx.repeat, backend)
        note = ("floor = G·(BᵀB/|B|) per bank" if adjacency == "full"
                else f"m={m}; floor = GEMMs + argpartition/topk + CSR/gathered sum")
        rows.append(row(f"InvGC {adjacency}", backend, f"{n}x{n} d={d} f32", t, t_floor, None,
                        note + f"; r={rs}"))
    return rows


def invgc_full_backends(ctx):
    return _invgc_backend_case(ctx, "full")


def invgc_local_backends(ctx):
    return _invgc_backend_case(ctx, "local")


LIMIT_CASES = {
    "retrieval_report": report_vs_pass,
    "InvGC LocalAdj vs GEMMs": localadj_vs_gemms,
}
BACKEND_CASES = {
    "InvGC full": invgc_full_backends,
    "InvGC LocalAdj": invgc_local_backends,
}


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="retrieval_report: n x n scores")
    parser.add_argument("--n-invgc", type=int, default=20000, help="InvGC: gallery = banks = n")
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    default_backends = "numpy" + (",torch" if torch is not None else "") + (
        ",cuda" if torch is not None and torch.cuda.is_available() else "")
    parser.add_argument("--backends", default=default_backends)
    parser.add_argument("--cases", default=",".join([*LIMIT_CASES, *BACKEND_CASES]))
    args = parser.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    ctx = Ctx(args)
    cases = {**LIMIT_CASES, **BACKEND_CASES}
    print(f"{'case':<26}{'backend':<8}{'shape':>22}{'time s':>9}{'floor s':>9}{'ratio':>7}"
          f"{'target':>7}  note")
    for name in args.cases.split(","):
        for r in cases[name](ctx):
            verdict = "" if r["target"] is None else (" ok" if r["ratio"] <= r["target"] else " MISS")
            print(f"{r['case']:<26}{r['backend']:<8}{r['shape']:>22}{r['time_s']:9.3f}"
                  f"{r['floor_s']:9.3f}{r['ratio']:7.2f}{_fmt(r['target'], '7.1f')}{verdict}"
                  f"  {r['note']}", flush=True)


if __name__ == "__main__":
    main()
