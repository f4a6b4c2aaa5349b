"""The gallery-sharded engine on a dask cluster against one process.

SN potentials (and serving ``--queries`` queries, top 10) for a bank of
``--bank`` queries and a gallery of ``--gallery`` items (unit vectors in a
narrow cone, float32), the gallery generated *on the workers* of a local
``dask.distributed`` cluster (``--workers`` processes, one thread each,
``--memory-limit`` each) as row shards that never leave them:

* sharded: ``skxmr.distributed.ShardedIndex`` -- seconds (generating the
  shards on the workers included), bytes moved (what
  the driver scattered and gathered, plus worker-to-worker transfers),
  the bytes moved per Sinkhorn iteration, the peak worker memory (the
  scheduler's heartbeat metrics, sampled), and the serving time;
* ``--compare``: the same problem in one process (``est.index(G)`` under the
  same ``--working-memory``, the gallery gathered to the driver) -- seconds,
  peak traced memory, the potentials' largest difference relative to their
  largest magnitude, and whether the top-10 lists are identical;
* a projection to ``--project`` items on N workers from the measured cost
  per bank × gallery entry and iteration.

    python benchmarks/bench_distributed.py --quick
    python benchmarks/bench_distributed.py --bank 20000 --gallery 200000 --compare
"""

import argparse
import threading
import time
import tracemalloc

import numpy as np


def cone(x, axis_seed, d):
    """Rows of ``x`` moved into a narrow cone and normalised (float32)."""
    mean = np.random.default_rng(axis_seed).standard_normal(d).astype(np.float32)
    mean /= np.linalg.norm(mean)
    x = x.astype(np.float32) + 4.0 * mean
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Traffic:
    """Bytes the driver scatters and gathers (wrapping the client's methods)."""

    def __init__(self, client):
        self.client, self.bytes = client, 0
        self._scatter, self._gather = client.scatter, client.gather

    def _nbytes(self, x):
        if isinstance(x, np.ndarray):
            return x.nbytes
        if isinstance(x, (list, tuple)):
            return sum(self._nbytes(y) for y in x)
        if isinstance(x, dict):
            return sum(self._nbytes(y) for y in x.values())
        return 0

    def __enter__(self):
        def scatter(data, *a, **k):
            self.bytes += self._nbytes(data)
            return self._scatter(data, *a, **k)

        def gather(futures, *a, **k):
            out = self._gather(futures, *a, **k)
            self.bytes += self._nbytes(out)
            return out

        self.client.scatter, self.client.gather = scatter, gather
        return self

    def __exit__(self, *exc):
        del self.client.scatter, self.client.gather


def _peer_bytes(dask_worker):
    return dask_worker.transfer_outgoing_bytes_total


class PeakMemory(threading.Thread):
    """Largest worker memory seen in the scheduler's heartbeats."""

    def __init__(self, client, every=0.2):
        super().__init__(daemon=True)
        self.client, self.every, self.peak, self._stop_event = client, every, 0, threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            for w in self.client.scheduler_info()["workers"].values():
                self.peak = max(self.peak, w["metrics"]["memory"])
            time.sleep(self.every)

    def stop(self):
        self._stop_event.set()
        self.join()
        return self.peak


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bank", type=int, default=20_000)
    p.add_argument("--gallery", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--shard", type=int, default=None,
                   help="items per shard (default: gallery / (4 * workers))")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-limit", default="1GiB")
    p.add_argument("--working-memory", type=float, default=64.0, help="MiB per task")
    p.add_argument("--max-iter", type=int, default=10)
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--compare", action="store_true", help="also run one process")
    p.add_argument("--project", type=float, default=1e8)
    p.add_argument("--quick", action="store_true", help="bank 2000 x gallery 20000, d=128")
    args = p.parse_args(argv)
    if args.quick:
        args.bank, args.gallery, args.dim, args.compare = 2000, 20_000, 128, True

    import dask.array as da
    from distributed import Client, LocalCluster

    from skxmr import SinkhornNormalizer, pair
    from skxmr.distributed import ShardedIndex

    d, n_g, n_b = args.dim, args.gallery, args.bank
    shard = args.shard or -(-n_g // (4 * args.workers))
    rng = np.random.default_rng(0)
    B = cone(rng.standard_normal((n_b, d)), 1, d)
    Q = cone(rng.standard_normal((args.queries, d)), 1, d)
    est = SinkhornNormalizer(temperature=args.temperature, max_iter=args.max_iter)
    est.fit(pair(B, cone(B + 0.3 * rng.standard_normal((n_b, d)), 1, d)))

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      memory_limit=args.memory_limit, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        # Lazy: the engine computes each block on a worker and keeps only its
        # validated copy (a persisted array would hold the raw blocks too).
        G = da.random.default_rng(2).standard_normal((n_g, d), chunks=(shard, d))
        G = G.map_blocks(cone, 1, d, dtype=np.float32)
        client.wait_for_workers(args.workers)
        peers0 = sum(client.run(_peer_bytes).values())
        monitor = PeakMemory(client)
        monitor.start()
        with Traffic(client) as traffic:
            t = time.perf_counter()
            index = ShardedIndex(est, G, client=client, working_memory=args.working_memory)
            t_index = time.perf_counter() - t
            moved_index = traffic.bytes
            t = time.perf_counter()
            s_sh, i_sh = index.kneighbors(Q, 10)
            t_serve = time.perf_counter() - t
            moved_serve = traffic.bytes - moved_index
        peak = monitor.stop()
        peers = sum(client.run(_peer_bytes).values()) - peers0
        n_passes = index.n_iter_ + 1
        per_iter = (moved_index - B.nbytes) / n_passes  # after the bank's one scatter
        print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
        print(f"bank {n_b} x gallery {n_g}, d={d}, float32, {len(index.shards_)} shards on "
              f"{args.workers} workers ({args.memory_limit} each), working_memory="
              f"{args.working_memory:g} MiB, {index.n_iter_} iterations, τ={args.temperature}")
        gallery_mib = n_g * d * 4 / 2**20
        print(f"gallery {gallery_mib:.0f} MiB; per worker {gallery_mib / args.workers:.0f} MiB")
        print(f"{'engine':<10}{'index s':>9}{'serve s':>9}{'moved MiB':>11}{'MiB/iter':>10}"
              f"{'peer MiB':>10}{'peak MiB':>10}")
        print(f"{'sharded':<10}{t_index:>9.1f}{t_serve:>9.2f}"
              f"{(moved_index + moved_serve) / 2**20:>11.1f}{per_iter / 2**20:>10.3f}"
              f"{peers / 2**20:>10.1f}{peak / 2**20:>10.0f}  (peak: largest worker)")
        if args.compare:
            G_local = G.compute()
            h_sh = index.gather_state()["h"]
            tracemalloc.start()
            t = time.perf_counter()
            est.set_params(working_memory=args.working_memory)
            single = est.index(G_local)
            t_single = time.perf_counter() - t
            t = time.perf_counter()
            s_1, i_1 = single.kneighbors(Q, 10)
            t_serve1 = time.perf_counter() - t
            _, peak1 = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            h_1 = np.asarray(single.state_["h"])
            print(f"{'one proc.':<10}{t_single:>9.1f}{t_serve1:>9.2f}{0:>11.1f}{0:>10.3f}"
                  f"{0:>10.1f}{peak1 / 2**20:>10.0f}  (peak: traced, beyond the inputs)")
            print(f"potentials: max |Δh| / max |h| = "
                  f"{np.max(np.abs(h_sh - h_1)) / np.max(np.abs(h_1)):.2e}; "
                  f"top-10 identical: {bool((i_sh == i_1).all())}")
        # Projection: the sharded solve's cost per bank × gallery entry and pass.
        per_entry = t_index * args.workers / (n_b * n_g * n_passes)
        print(f"\nprojection to {args.project:.0e} items, bank {n_b}, d={d}, "
              f"{args.max_iter} iterations (measured {1e9 * per_entry:.2f} ns per entry and "
              "pass on one worker):")
        print(f"{'workers':>8}{'GiB/worker':>12}{'s/iteration':>13}{'solve min':>11}"
              f"{'MiB/iteration':>15}")
        for n_workers in (8, 64, 512):
            n_shards = 2 * n_workers
            print(f"{n_workers:>8}{args.project * d * 4 / n_workers / 2**30:>12.1f}"
                  f"{per_entry * n_b * args.project / n_workers:>13.1f}"
                  f"{per_entry * n_b * args.project / n_workers * n_passes / 60:>11.1f}"
                  f"{(n_workers + n_shards) * n_b * 8 / 2**20:>15.1f}")


if __name__ == "__main__":
    main()
