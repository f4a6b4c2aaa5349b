"""Methods on numpy against torch (CPU, and CUDA where present), each against a bare loop.

A table of named cases: ``CASES`` maps a name to a function
``case(ctx) -> list of rows``; each row is a dict with the keys of
``COLUMNS`` (``None`` where a value does not apply). To add a method, write
one function and add one entry to ``CASES`` (see ``sn_dense`` for the
pattern: time the method and a bare loop doing the same work on the same
backend, interleaved, with :func:`measure`).

For every backend a case reports the method's time (best of ``--repeat``,
interleaved with the bare loop so that load from other processes hits both
alike), the ratio to the bare loop on the same backend, and the peak memory
above what was allocated before the call: host memory (the process's
resident high-water mark, reset before each call through
``/proc/self/clear_refs``) for numpy and torch CPU, device memory
(``torch.cuda.max_memory_allocated``) for CUDA.

The Sinkhorn cases run the code path of ``SinkhornNormalizer`` and
``DualBankSinkhornNormalizer`` (the potentials of a gallery against the
query bank, ``skxmr.hubness._sinkhorn._gallery_potentials``) on a
``--n`` × ``--n`` problem (DBSN: gallery 3/4, gallery bank 1/4 of the
columns), d = 512, float32 embeddings, stored (the memory-aware default)
and streamed (``--working-memory`` MiB); each row's note says which ran
(the solver's own ``log["streamed"]``). Bare loops (:func:`bare_dense`,
:func:`bare_streamed`): the plain in-place loops, the same code on numpy
and torch, one GEMM into the float32 kernel (streamed: into one reused
chunk buffer), the row shift and ``exp`` in place, ``r = a / (K c);
c = b / (Kᵀ r)`` with float32 products and float64 scalings.

The InvGC cases run ``transform_gallery`` (gallery = both banks = ``--n``
items, a cone; k = 1 % for LocalAdj) against the bare loop of
:func:`_invgc_case`. The score cases, each against a bare loop doing the same
work on the same backend:

* ``IS``: ``inverted_softmax_scores`` (potentials of ``--n`` gallery items
  over a ``--n`` bank, then the ``--n`` × ``--n`` scores); bare: the
  float32 products, a float64 log-sum-exp per gallery item, ``S - h``;
* ``CSLS``: ``csls_scores`` with k = 10; bare: the three products, the mean
  of each row's 10 largest (``partition`` / ``topk``) and ``2S - r - r``;
* ``kneighbors``: an inverted-softmax ``GalleryIndex`` of ``--n`` items
  answering ``--n`` // 10 queries with 10 neighbours; bare: ``S - h`` and a
  top 10 (``argpartition`` + sort / ``topk``).

Usage::

    python benchmarks/bench_backends.py                     # 20000 x 20000, numpy and torch
    python benchmarks/bench_backends.py --n 5000 --repeat 3 # quick
    python benchmarks/bench_backends.py --backends numpy,torch,cuda --cases "SN streamed"
    python benchmarks/bench_backends.py --profile           # POT's functions inside SN
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy: torch under dispatch

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402

try:
    import torch
except ImportError:  # the optional extra skxmr[torch]
    torch = None

from skxmr._ot import KernelBuffer, block_potentials  # noqa: E402
from skxmr.hubness._sinkhorn import _gallery_potentials  # noqa: E402

COLUMNS = ("case", "backend", "shape", "time_s", "bare_s", "ratio", "peak_mib", "note")


# ------------------------------------------------------------ helpers
class Ctx:
    """What the cases share: sizes, backends, repeat count."""

    def __init__(self, args):
        self.n, self.d, self.max_iter = args.n, args.d, args.max_iter
        self.repeat, self.working_memory = args.repeat, args.working_memory
        self.temperature = args.temperature
        self.backends = args.backends

    def unit_rows(self, n, seed):
        rng = np.random.default_rng(seed)
        A = rng.standard_normal((n, self.d), dtype=np.float32)
        A /= np.linalg.norm(A, axis=1, keepdims=True)
        return A

    def on(self, backend, A):
        """``A`` on a backend: "numpy", "torch" (CPU) or "cuda"."""
        if backend == "numpy":
            return A
        return torch.as_tensor(A, device="cuda" if backend == "cuda" else "cpu")

    def dispatch(self, backend):
        if backend == "numpy":
            return contextlib.nullcontext()
        return sklearn.config_context(array_api_dispatch=True)


def _sync(backend):
    if backend == "cuda":
        torch.cuda.synchronize()


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


@contextlib.contextmanager
def peak_memory(backend, out):
    """``out["peak_mib"]``: peak memory of the block above its start."""
    gc.collect()
    if backend == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        yield
        torch.cuda.synchronize()
        out["peak_mib"] = (torch.cuda.max_memory_allocated() - start) / 2**20
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the resident high-water mark (VmHWM)
        start = _rss_kib("VmRSS")
    except OSError:
        start = None
    yield
    out["peak_mib"] = None if start is None else (_rss_kib("VmHWM") - start) / 1024


def measure(backend, ours, bare, repeat):
    """Best times of ``ours()`` and ``bare()``, interleaved, and the peak
    memory of ``ours`` (first run)."""
    times = {"ours": [], "bare": []}
    mem = {}
    for i in range(repeat):
        for name, fn in (("ours", ours), ("bare", bare)):
            ctx = peak_memory(backend, mem) if (i == 0 and name == "ours") else contextlib.nullcontext()
            gc.collect()
            with ctx:
                _sync(backend)
                t = time.perf_counter()
                fn()
                _sync(backend)
                times[name].append(time.perf_counter() - t)
    t_ours, t_bare = min(times["ours"]), min(times["bare"])
    return t_ours, t_bare, mem.get("peak_mib")


def row(case, backend, shape, t, t_bare=None, peak=None, note=""):
    return {"case": case, "backend": backend, "shape": shape, "time_s": t, "bare_s": t_bare,
            "ratio": None if t_bare is None else t / t_bare, "peak_mib": peak, "note": note}


# ------------------------------------------------------- bare loops
def _uniform(like, n):
    if isinstance(like, np.ndarray):
        return np.full(n, 1.0 / n)
    return torch.full((n,), 1.0 / n, dtype=torch.float64, device=like.device)


def _matmul_into(A, Bt, out):
    """``out[...] = A @ Bt`` (numpy or torch), no temporary."""
    if isinstance(A, np.ndarray):
        return np.matmul(A, Bt, out=out)
    return torch.matmul(A, Bt, out=out)


def _shift_exp(K):
    """Row shift by the row maxima and ``exp``, in place."""
    if isinstance(K, np.ndarray):
        K -= K.max(axis=1, keepdims=True)
        return np.exp(K, out=K)
    K -= K.max(dim=1, keepdim=True).values
    return torch.exp(K, out=K)


def _f32(v):
    return v.astype(np.float32) if isinstance(v, np.ndarray) else v.float()


def _f64(v):
    return v.astype(np.float64) if isinstance(v, np.ndarray) else v.double()


def _empty(like, shape):
    if isinstance(like, np.ndarray):
        return np.empty(shape, dtype=like.dtype)
    return torch.empty(shape, dtype=like.dtype, device=like.device)


def bare_dense(B, Cs, tau, n_iter):
    """The plain in-place loop on a stored float32 kernel (SN's default for
    float32 embeddings), the same on numpy and torch: one GEMM (1/τ folded
    into the bank) into the kernel's columns, the row shift and ``exp`` in
    place, then ``r = a / (K c); c = b / (Kᵀ r)`` with float32 products and
    float64 scalings: no full-size temporary."""
    Bs = B * (1.0 / tau)
    K = _empty(B, (B.shape[0], sum(C.shape[0] for C in Cs)))
    lo = 0
    for C in Cs:
        _matmul_into(Bs, C.T, K[:, lo:lo + C.shape[0]])
        lo += C.shape[0]
    _shift_exp(K)
    n, m = K.shape
    a, b = _uniform(B, n), _uniform(B, m)
    c = b * 1.0
    for _ in range(n_iter):
        r = a / _f64(K @ _f32(c))
        c = b / _f64(_f32(r) @ K)
    return c


def bare_streamed(B, Cs, tau, n_iter, working_memory):
    """The plain streamed loop, the same on numpy and torch: per row chunk
    the product in the inputs' precision into one reused buffer, the row
    shift and ``exp`` in place, both updates (``acc += rᵀ K``, float32
    products, float64 scalings)."""
    C = np.concatenate(Cs) if isinstance(B, np.ndarray) else torch.cat(Cs)
    n, m = B.shape[0], C.shape[0]
    chunk = max(1, int(working_memory * 2**20 // (4 * m)))
    a, b = _uniform(B, n), _uniform(B, m)
    c = b * 1.0
    E = _empty(B, (min(chunk, n), m))
    for _ in range(n_iter):
        acc = b * 0.0
        c32 = _f32(c)
        for i in range(0, n, chunk):
            K = _matmul_into(B[i:i + chunk] * (1.0 / tau), C.T, E[: min(chunk, n - i)])
            _shift_exp(K)
            r = a[i:i + chunk] / _f64(K @ c32)
            acc += _f64(_f32(r) @ K)
        c = b / acc
    return c


# -------------------------------------------------------------- cases
def _sinkhorn_case(ctx, name, dual, streamed):
    n = ctx.n
    Bq = ctx.unit_rows(n, 0)
    if dual:
        G, Bg = ctx.unit_rows(3 * n // 4, 1), ctx.unit_rows(n - 3 * n // 4, 2)
    else:
        G, Bg = ctx.unit_rows(n, 1), None
    wm = ctx.working_memory if streamed else None
    rows = []
    for backend in ctx.backends:
        B_, G_ = ctx.on(backend, Bq), ctx.on(backend, G)
        Bg_ = None if Bg is None else ctx.on(backend, Bg)
        Cs = [G_] if Bg_ is None else [G_, Bg_]

        log = {}

        def ours():
            with ctx.dispatch(backend):
                log.update(block_potentials(
                    B_, Cs, ctx.temperature, ctx.max_iter, None, working_memory=wm,
                    n_jobs=None, exact_error=None, buffer=buffer)[1])

        if streamed:
            def bare():
                bare_streamed(B_, Cs, ctx.temperature, ctx.max_iter, ctx.working_memory)
        else:
            def bare():
                bare_dense(B_, Cs, ctx.temperature, ctx.max_iter)

        buffer = KernelBuffer()  # reused across runs, as an estimator does
        t, t_bare, peak = measure(backend, ours, bare, ctx.repeat)
        path = "streamed" if log.get("streamed") else "stored"
        note = f"{path}, T={ctx.max_iter}" + (f", working_memory={wm:g} MiB" if streamed else "")
        rows.append(row(name, backend, f"{n}x{n}", t, t_bare, peak, note))
        del B_, G_, Bg_, Cs
    return rows


def sn_dense(ctx):
    return _sinkhorn_case(ctx, "SN dense", dual=False, streamed=False)


def dbsn_dense(ctx):
    return _sinkhorn_case(ctx, "DBSN dense", dual=True, streamed=False)


def sn_streamed(ctx):
    return _sinkhorn_case(ctx, "SN streamed", dual=False, streamed=True)


def dbsn_streamed(ctx):
    return _sinkhorn_case(ctx, "DBSN streamed", dual=True, streamed=True)


def _invgc_case(ctx, adjacency):
    """InvGC transform_gallery (banks and gallery n × d, a cone) against a
    bare loop on the same backend: full, ``G·(BᵀB/|B|)`` per bank; LocalAdj
    (k = 1 %), per row chunk the GEMM, a plain top-k (numpy
    ``argpartition``, torch ``topk``) and the neighbour sum (numpy a CSR
    product, torch the gathered bank rows)."""
    import scipy.sparse as sp

    from skxmr import InvGC, pair

    n, d = ctx.n, ctx.d
    shift = 2.0 * np.random.default_rng(9).standard_normal(d).astype(np.float32)

    def cone(seed):
        A = ctx.unit_rows(n, seed) + shift
        return A / np.linalg.norm(A, axis=1, keepdims=True)

    Bq, Bg, G = cone(0), cone(1), cone(2)
    rows = []
    for backend in ctx.backends:
        X_, G_ = ctx.on(backend, pair(Bq, Bg)), ctx.on(backend, G)
        with ctx.dispatch(backend):
            est = InvGC(adjacency=adjacency, neighbor_fraction=0.01).fit(X_)
        m = est.n_neighbors_gallery_

        def ours():
            with ctx.dispatch(backend):
                est.transform_gallery(G_)

        if adjacency == "full":
            Ms = [M.astype(np.float32) if backend == "numpy" else M.float() for M, _ in est._moments_]

            def bare():
                for M in Ms:
                    G_ @ M
        else:
            def bare():
                for B in (est.gallery_bank_, est.query_bank_):
                    for i in range(0, n, 256):
                        W = G_[i:i + 256] @ B.T
                        if backend == "numpy":
                            idx = np.argpartition(W, W.shape[1] - m, axis=1)[:, -m:]
                            w = np.take_along_axis(W, idx, 1)
                            sp.csr_array((w.ravel(), idx.ravel(), np.arange(0, w.size + 1, m)),
                                         shape=W.shape) @ B
                        else:
                            w, idx = W.topk(m, dim=1)
                            torch.einsum("nm,nmd->nd", w, B[idx])

        t, t_bare, peak = measure(backend, ours, bare, ctx.repeat)
        note = "k=1%" + (f", m={m}" if adjacency == "local" else "") + ", banks = gallery = n"
        rows.append(row(f"InvGC {adjacency}", backend, f"{n}x{n}", t, t_bare, peak, note))
        del X_, G_, est
    return rows


def invgc_full(ctx):
    return _invgc_case(ctx, "full")


def invgc_local(ctx):
    return _invgc_case(ctx, "local")


TAU, K = 0.05, 10


def _is_numpy(A):
    return isinstance(A, np.ndarray)


def _bare_h(G, B, tau):
    if _is_numpy(G):
        from scipy.special import logsumexp

        return tau * logsumexp((G @ B.T).astype(np.float64) / tau, axis=1)
    return tau * torch.logsumexp((G @ B.T).double() / tau, dim=1)


def _bare_top(S, k):
    if _is_numpy(S):
        idx = np.argpartition(S, S.shape[1] - k, axis=1)[:, -k:]
        part = np.take_along_axis(S, idx, 1)
        order = np.argsort(-part, axis=1)
        return np.take_along_axis(part, order, 1), np.take_along_axis(idx, order, 1)
    return torch.topk(S, k, dim=1)


def _mean_top(A, B, k):
    M = A @ B.T
    if _is_numpy(M):
        return np.partition(M, M.shape[1] - k, axis=1)[:, -k:].mean(axis=1, dtype=np.float64)
    return torch.topk(M, k, dim=1).values.double().mean(dim=1)


def _cast(h, like):
    return h.astype(like.dtype) if _is_numpy(like) else h.to(like.dtype)


def is_case(ctx):
    from skxmr.hubness import inverted_softmax_scores

    n = ctx.n
    arrays = [ctx.unit_rows(n, s) for s in (0, 1, 2)]
    rows = []
    for backend in ctx.backends:
        Q, G, B = (ctx.on(backend, A) for A in arrays)

        def ours():
            with ctx.dispatch(backend):
                inverted_softmax_scores(Q, G, B, temperature=TAU)

        def bare():
            return Q @ G.T - _cast(_bare_h(G, B, TAU), Q)

        t, t_bare, peak = measure(backend, ours, bare, ctx.repeat)
        rows.append(row("IS", backend, f"{n}x{n}", t, t_bare, peak, f"bank {n}, tau={TAU}"))
    return rows


def csls_case(ctx):
    from skxmr.hubness import csls_scores

    n = ctx.n
    arrays = [ctx.unit_rows(n, s) for s in (0, 1, 2, 3)]
    rows = []
    for backend in ctx.backends:
        Q, G, Bq, Bg = (ctx.on(backend, A) for A in arrays)

        def ours():
            with ctx.dispatch(backend):
                csls_scores(Q, G, Bq, Bg, n_neighbors=K)

        def bare():
            r_g, r_q = _mean_top(G, Bq, K), _mean_top(Q, Bg, K)
            return 2 * (Q @ G.T) - _cast(r_g, Q)[None, :] - _cast(r_q, Q)[:, None]

        t, t_bare, peak = measure(backend, ours, bare, ctx.repeat)
        rows.append(row("CSLS", backend, f"{n}x{n}", t, t_bare, peak, f"k={K}, banks {n}"))
    return rows


def kneighbors_case(ctx):
    from skxmr import InvertedSoftmax

    n, n_q = ctx.n, max(1, ctx.n // 10)
    Q_, G_, B_ = ctx.unit_rows(n_q, 0), ctx.unit_rows(n, 1), ctx.unit_rows(n, 2)
    rows = []
    for backend in ctx.backends:
        Q, G, B = (ctx.on(backend, A) for A in (Q_, G_, B_))
        with ctx.dispatch(backend):
            index = InvertedSoftmax(temperature=TAU)._fit_explicit_banks(B).index(G)
        h = _cast(_bare_h(G, B, TAU), Q)

        def ours():
            with ctx.dispatch(backend):
                index.kneighbors(Q, n_neighbors=10)

        def bare():
            return _bare_top(Q @ G.T - h, 10)

        t, t_bare, peak = measure(backend, ours, bare, ctx.repeat)
        rows.append(row("kneighbors", backend, f"{n_q}x{n}", t, t_bare, peak,
                        "IS index, 10 neighbours"))
    return rows


CASES = {
    "SN dense": sn_dense,
    "DBSN dense": dbsn_dense,
    "SN streamed": sn_streamed,
    "DBSN streamed": dbsn_streamed,
    "InvGC full": invgc_full,
    "InvGC LocalAdj": invgc_local,
    "IS": is_case,
    "CSLS": csls_case,
    "kneighbors": kneighbors_case,
}


# --------------------------------------------------------------- main
def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_header():
    print(f"{'case':<16}{'backend':<8}{'shape':>13}{'time s':>9}{'bare s':>9}"
          f"{'ratio':>7}{'peak MiB':>10}  note")
    print("-" * 90)


def print_rows(rows):
    for r in rows:
        print(f"{r['case']:<16}{r['backend']:<8}{r['shape']:>13}{_fmt(r['time_s'], '9.2f')}"
              f"{_fmt(r['bare_s'], '9.2f')}{_fmt(r['ratio'], '7.2f')}"
              f"{_fmt(r['peak_mib'], '10.0f')}  {r['note']}", flush=True)


def profile_sn(ctx):
    """cProfile of SN's potentials on each backend: POT's backend functions."""
    import cProfile
    import pstats

    from threadpoolctl import threadpool_limits

    Bq, G = ctx.unit_rows(2000, 0), ctx.unit_rows(2000, 1)
    for backend in ctx.backends:
        for wm, label in ((None, "stored"), (1.0, "streamed")):
            prof = cProfile.Profile()
            B_, G_ = ctx.on(backend, Bq), ctx.on(backend, G)
            # One BLAS thread: the numpy loops then run in this thread, the
            # only one cProfile sees (otherwise in one Python thread per core).
            with ctx.dispatch(backend), threadpool_limits(1, user_api="blas"):
                prof.enable()
                _gallery_potentials(B_, G_, None, temperature=0.01, max_iter=10, tol=None,
                                    working_memory=wm, n_jobs=None, method="auto")
                prof.disable()
            stats = pstats.Stats(prof)
            print(f"\n== SN potentials, {backend}, {label}: functions of ot.backend")
            for (file, line, func), (cc, nc, tt, ct, _) in sorted(
                    stats.stats.items(), key=lambda kv: -kv[1][1]):
                if "ot/backend" in file:
                    print(f"  {nc:6d} calls  {ct:8.3f} s  ot/backend.py:{line}({func})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--working-memory", type=float, default=256.0)
    default_backends = "numpy" + (",torch" if torch is not None else "") + (
        ",cuda" if torch is not None and torch.cuda.is_available() else "")
    parser.add_argument("--backends", default=default_backends)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    ctx = Ctx(args)
    if args.profile:
        profile_sn(ctx)
        return
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"load {load}; d={args.d}, float32 embeddings, tau={args.temperature}, best of {args.repeat}; "
          f"torch threads {torch.get_num_threads() if torch is not None else '-'}; "
          f"GPU: {torch.cuda.get_device_name() if torch is not None and torch.cuda.is_available() else 'none'}")
    rows = []
    print_header()
    for name in args.cases.split(","):
        new = CASES[name](ctx)
        print_rows(new)
        rows += new
    sn = [r for r in rows if r["case"] == "SN dense" and r["backend"] == "numpy"]
    if sn:
        verdict = "meets" if sn[0]["ratio"] <= 1.5 else "MISSES"
        print(f"\nnumpy SN dense / bare numpy loop: {sn[0]['ratio']:.2f} ({verdict} the 1.5x target)")


if __name__ == "__main__":
    main()
