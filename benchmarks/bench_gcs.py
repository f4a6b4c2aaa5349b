"""Speed of Cauchy-Schwarz alignment: fitting, and GCS versus pairwise CS.

Two tables:

1. Fit time of :class:`skxmr.alignment.CauchySchwarzAlignment` on synthetic
   paired rows (text 384-d, images 512-d, a shared 64-d latent seen through
   a random linear map per modality plus noise) projected to 256-d, for both
   solvers, with the held-out text->image R@1 it reaches.
2. One loss + gradient step of the multi-modal loss for M = 2..6 views
   (batch of n entities, k-d normalised embeddings, from the embeddings to
   their gradients: the M (or M(M-1)/2) similarity products, the loss and the
   back-propagation to the embeddings): the generalised CS loss with
   bidirectional circular matching against the sum of the pairwise CS losses.
   GCS touches M similarity matrices, the pairwise sum M(M-1)/2.

Run ``python benchmarks/bench_gcs.py`` (``--quick`` for a small run;
``--blas-threads 1`` pins BLAS to one thread: on a shared, oversubscribed
machine OpenBLAS's threads can make these mid-sized products several times
slower than one thread).
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from skxmr import CosineSimilarity, pair
from skxmr.alignment import (
    CauchySchwarzAlignment,
    cauchy_schwarz_loss,
    generalized_cauchy_schwarz_loss,
)


def make_problem(n_pairs, d_text=384, d_image=512, d_latent=64, noise=1.5, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_pairs, d_latent))
    text = latent @ rng.standard_normal((d_latent, d_text))
    image = latent @ rng.standard_normal((d_latent, d_image))
    text += noise * np.sqrt(d_latent) * rng.standard_normal(text.shape)
    image += noise * np.sqrt(d_latent) * rng.standard_normal(image.shape)
    return pair(text, image).astype(np.float32), d_text


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def bench_fit(n_pairs, n_components, repeat):
    X, d_text = make_problem(2 * n_pairs)
    X_train, X_test = X[:n_pairs], X[n_pairs:]
    print(
        f"\nFit: {n_pairs} training pairs, {d_text}-d text + {X.shape[1] - d_text}-d "
        f"images -> {n_components}-d; held-out R@1 on {len(X_test)} pairs "
        "(best of %d runs)" % repeat
    )
    print(f"{'solver':>8} {'fit s':>8} {'iters':>6} {'best it':>8} {'R@1':>6}")
    for solver in ("adam", "lbfgs"):
        est = CauchySchwarzAlignment(
            n_components=n_components, n_query_features=d_text, solver=solver, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seconds, est = best_of(lambda est=est: est.fit(X_train), repeat)
        Xt = est.transform(X_test)
        r1 = CosineSimilarity().fit(Xt).score(Xt)
        print(f"{solver:>8} {seconds:8.2f} {est.n_iter_:6d} {est.best_iteration_:8d} {r1:6.1f}")


def gcs_step(Zs, R, tau):
    M = len(Zs)
    logits = [Zs[m] @ Zs[(m + 1) % M].T / tau for m in range(M)]
    loss, grads = generalized_cauchy_schwarz_loss(logits, R)
    out = [np.zeros_like(Z) for Z in Zs]
    for m, G in enumerate(grads):
        out[m] += G @ Zs[(m + 1) % M] / tau
        out[(m + 1) % M] += G.T @ Zs[m] / tau
    return loss, out


def pairwise_step(Zs, R, tau):
    M = len(Zs)
    loss, out = 0.0, [np.zeros_like(Z) for Z in Zs]
    for a in range(M):
        for b in range(a + 1, M):
            value, G = cauchy_schwarz_loss(Zs[a] @ Zs[b].T / tau, R)
            loss += value
            out[a] += G @ Zs[b] / tau
            out[b] += G.T @ Zs[a] / tau
    return loss, out


def bench_gcs(n, k, repeat, views=range(2, 7)):
    rng = np.random.default_rng(0)
    R = np.eye(n, dtype=bool)
    print(f"\nLoss + gradient step, batch of {n} entities, {k}-d embeddings (best of {repeat})")
    print(f"{'M':>3} {'GCS ms':>8} {'pairwise ms':>12} {'ratio':>6} {'GCS/M ms':>9} {'pairs':>6}")
    for M in views:
        Zs = [rng.standard_normal((n, k)) for _ in range(M)]
        Zs = [Z / np.linalg.norm(Z, axis=1, keepdims=True) for Z in Zs]
        t_gcs, _ = best_of(lambda Zs=Zs: gcs_step(Zs, R, 0.1), repeat)
        t_pw, _ = best_of(lambda Zs=Zs: pairwise_step(Zs, R, 0.1), repeat)
        print(
            f"{M:3d} {1e3 * t_gcs:8.1f} {1e3 * t_pw:12.1f} {t_pw / t_gcs:6.2f} "
            f"{1e3 * t_gcs / M:9.1f} {M * (M - 1) // 2:6d}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--blas-threads", type=int, default=None, help="limit BLAS threads")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}, BLAS threads: {args.blas_threads or 'default'}")
    with threadpool_limits(args.blas_threads):
        if args.quick:
            bench_fit(n_pairs=500, n_components=64, repeat=1)
            bench_gcs(n=256, k=64, repeat=2)
        else:
            bench_fit(n_pairs=2500, n_components=256, repeat=1)
            bench_gcs(n=512, k=256, repeat=5)


if __name__ == "__main__":
    main()
