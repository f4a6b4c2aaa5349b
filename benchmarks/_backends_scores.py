"""IS, CSLS and kneighbors cases for ``benchmarks/bench_backends.py`` (issue 13).

To be folded into ``bench_backends.py``'s ``CASES`` (it was not on main when
these were written): ``CASES.update(SCORE_CASES)``. Each case uses that
file's helpers (``Ctx``, ``measure``, ``row``) and times the method on each
backend against a bare loop doing the same work on the same backend:

* ``IS``: ``inverted_softmax_scores`` (potentials of ``--n`` gallery items
  over a ``--n`` bank, then the ``--n`` × ``--n`` scores); bare: the
  float32 products, a float64 log-sum-exp per gallery item, ``S - h``;
* ``CSLS``: ``csls_scores`` with k = 10; bare: the three products, the mean
  of each row's 10 largest (``partition`` / ``topk``) and ``2S - r - r``;
* ``kneighbors``: an inverted-softmax ``GalleryIndex`` of ``--n`` items
  answering ``--n`` // 10 queries with 10 neighbours; bare: ``S - h`` and a
  top 10 (``argpartition`` + sort / ``topk``).

Usage (until folded)::

    PYTHONPATH=.:benchmarks python benchmarks/_backends_scores.py --n 5000 --repeat 3
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy: torch under dispatch

import numpy as np  # noqa: E402

try:
    import torch
except ImportError:  # the optional extra skxmr[torch]
    torch = None

from skxmr import InvertedSoftmax  # noqa: E402
from skxmr.hubness import csls_scores, inverted_softmax_scores  # noqa: E402

TAU, K = 0.05, 10


def _helpers():
    from bench_backends import measure, row

    return measure, row


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
    measure, row = _helpers()
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
    measure, row = _helpers()
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
    measure, row = _helpers()
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


SCORE_CASES = {"IS": is_case, "CSLS": csls_case, "kneighbors": kneighbors_case}


if __name__ == "__main__":  # until folded: bench_backends.py's runner with these cases
    import sys

    import bench_backends

    bench_backends.CASES.update(SCORE_CASES)
    argv = sys.argv[1:]
    bench_backends.main(argv if "--cases" in argv else argv + ["--cases", ",".join(SCORE_CASES)])
