"""Speed and memory of the Sinkhorn potentials (SN / DBSN core).

Compares, on an n_bank × n_cols cosine matrix M and T iterations:

* ``ours``: :func:`skxmr._ot.sinkhorn_potentials` (builds the float64
  kernel once, then 2 BLAS matrix-vector products per iteration, plus one
  for the reported marginal error);
* ``bare``: a bare numpy loop doing the same T iterations over a
  precomputed float64 kernel (timed without, and with, building that
  kernel as ``np.exp(-(1 - M) / tau)``);
* ``POT``: the reference usage ``ot.sinkhorn(b, a, 1 - M.T, reg=tau,
  numItermax=T, log=True)``;
* ``alloc``: allocating and first-touching one fresh float64 n × m buffer
  (page faults), which ``ours`` pays for its kernel and ``bare`` does not;
* ``streamed``: :func:`skxmr._ot.sinkhorn_potentials_from_embeddings`
  under a small ``working_memory`` (log domain, kernel blocks recomputed
  from the embeddings every pass), for the smaller size.

Timings are the best of ``--repeat`` runs, interleaved so that load from
other processes hits every method alike. Peak memory is measured with
tracemalloc (numpy reports its buffers to it), as a multiple of one
float64 n × m matrix; M itself, allocated before, is not counted.

Usage::

    python benchmarks/bench_sinkhorn.py            # 5000x6000 and 20000x20000
    python benchmarks/bench_sinkhorn.py --quick    # 5000x6000 only
"""

import argparse
import gc
import time
import tracemalloc
import warnings
from functools import partial

import numpy as np
import ot

from skxmr._ot import sinkhorn_potentials, sinkhorn_potentials_from_embeddings


def unit_rows(rng, n, d):
    A = rng.standard_normal((n, d))
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    return A


def bare_iterations(K, a, b, n_iter):
    c = np.full(K.shape[1], 1.0 / K.shape[1])
    for _ in range(n_iter):
        r = a / (K @ c)
        c = b / (K.T @ r)
    return c


def pot_reference(M, a, b, tau, n_iter):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, log = ot.sinkhorn(b, a, 1 - M.T, reg=tau, numItermax=n_iter, stopThr=0, log=True)
    return -tau * np.log(log["u"])


def timed(func, clock=None):
    """(seconds, result); ``clock`` collects (wall, cpu) pairs when given."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    out = func()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if clock is not None:
        clock.append((wall, cpu))
    return wall, out


def peak_bytes(func):
    gc.collect()
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run(n, m, d, tau, n_iter, repeat, rng):
    bank, cols = unit_rows(rng, n, d), unit_rows(rng, m, d)
    M = bank @ cols.T
    nbytes = M.nbytes
    a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    row = {"size": f"{n}x{m}", "T": n_iter}
    # POT allocates 1 - M.T, K, K / a and the plan: ~4 extra n x m arrays.
    with_pot = mem_available() > 6 * nbytes
    t_ours, t_bare, t_build, t_pot, t_alloc = [], [], [], [], []

    def first_touch():
        buf = np.empty((n, m))
        buf.fill(0.0)
        return buf

    for _ in range(repeat):
        timed(first_touch, t_alloc)  # what a fresh n x m buffer costs here
        _, kernel = timed(lambda: np.exp(-(1 - M) / tau), t_build)
        _, c = timed(partial(bare_iterations, kernel, a, b, n_iter), t_bare)
        h_bare = -tau * np.log(c)
        del kernel
        _, (h, log) = timed(lambda: sinkhorn_potentials(M, tau, n_iter), t_ours)
        if with_pot and (not t_pot or nbytes < 1e9):
            _, h_pot = timed(lambda: pot_reference(M, a, b, tau, n_iter), t_pot)
    nan2 = [(float("nan"), float("nan"))]
    # best wall-clock time and best CPU time (all threads) of the repeats:
    # the CPU time is less sensitive to other processes on a shared machine.
    for name, ts in (("ours", t_ours), ("bare", t_bare), ("POT", t_pot or nan2)):
        row[name] = min(w for w, _ in ts)
        row[name + " cpu"] = min(c for _, c in ts)
    row["bare+K"] = min(w + wb for (w, _), (wb, _) in zip(t_bare, t_build))
    row["alloc"] = min(w for w, _ in t_alloc)
    row["ours/bare"] = row["ours"] / row["bare"]
    row["cpu ratio"] = row["ours cpu"] / row["bare cpu"]
    row["POT/ours"] = row["POT"] / row["ours"]
    row["POT/ours cpu"] = row["POT cpu"] / row["ours cpu"]
    row["peak"] = peak_bytes(lambda: sinkhorn_potentials(M, tau, n_iter)) / nbytes
    row["|h-bare|"] = np.abs(h - h_bare).max()
    row["|h-POT|"] = np.abs(h - h_pot).max() if t_pot else float("nan")
    row["log domain"] = log["log_domain"]
    return row, (bank, cols, h)


def run_streamed(bank, cols, h, tau, n_iter, working_memory):
    t, (h_s, log) = timed(lambda: sinkhorn_potentials_from_embeddings(
        bank, cols, tau, n_iter, working_memory=working_memory))
    peak = peak_bytes(lambda: sinkhorn_potentials_from_embeddings(
        bank, cols, tau, n_iter, working_memory=working_memory))
    t_dense, _ = timed(lambda: sinkhorn_potentials_from_embeddings(
        bank, cols, tau, n_iter, working_memory=1e6))
    peak_dense = peak_bytes(lambda: sinkhorn_potentials_from_embeddings(
        bank, cols, tau, n_iter, working_memory=1e6))
    nbytes = 8 * bank.shape[0] * cols.shape[0]
    return {
        "dense (s)": t_dense, "dense peak": peak_dense / nbytes,
        "streamed (s)": t, "streamed peak": peak / nbytes,
        "streamed": log["streamed"], "|h_streamed-h|": np.abs(h_s - h).max(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5000x6000 only")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tau", type=float, default=0.01)
    parser.add_argument("--iter", type=int, default=10)
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sizes = [(5000, 6000)] + ([] if args.quick else [(20000, 20000)])
    keys = ["size", "ours", "bare", "bare+K", "POT", "alloc", "ours/bare", "POT/ours",
            "ours cpu", "bare cpu", "POT cpu", "cpu ratio", "POT/ours cpu",
            "peak", "|h-bare|", "|h-POT|", "log domain"]
    print(f"tau={args.tau}, T={args.iter}; wall and CPU times in s (best of "
          f"{args.repeat}); cpu ratio = ours/bare in CPU time; peak = tracemalloc "
          "peak of ours / one float64 n x m matrix")
    print(" ".join(f"{k:>12s}" for k in keys))
    first = None
    for n, m in sizes:
        row, data = run(n, m, args.dim, args.tau, args.iter, args.repeat, rng)
        first = first or data
        cells = []
        for k in keys:
            v = row[k]
            if isinstance(v, (bool, np.bool_, str, int)):
                cells.append(f"{v!s:>12s}")
            elif k.startswith("|"):
                cells.append(f"{v:12.1e}")
            else:
                cells.append(f"{v:12.3f}")
        print(" ".join(cells), flush=True)
    bank, cols, h = first
    wm = 64
    s = run_streamed(bank, cols, h, args.tau, args.iter, working_memory=wm)
    print(f"\nfrom embeddings, {bank.shape[0]}x{cols.shape[0]}, d={args.dim}: dense "
          f"{s['dense (s)']:.3f} s (peak {s['dense peak']:.2f}x); streamed under "
          f"working_memory={wm} MiB {s['streamed (s)']:.3f} s (peak "
          f"{s['streamed peak']:.2f}x), max |h_streamed - h| = {s['|h_streamed-h|']:.1e}")


if __name__ == "__main__":
    main()
