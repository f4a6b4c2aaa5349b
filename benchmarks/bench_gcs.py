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

3. Fitting :class:`skxmr.alignment.MultiModalCSAlignment` on synthetic
   three-, four- and five-view sets of different widths (one shared item
   content seen by a second encoder per view, :func:`skxmr.datasets.second_encoder`,
   widths 64, 80, 96, 112, 128, distortion 0.3): GCS with bidirectional
   circular matching against the sum of pairwise CS losses, time per
   epoch (Adam, batches of 256; fit time over epochs, the start and the
   held-out evaluations included) and held-out R@1 averaged over the pairs
   of views that are neighbours on the circle and over those that are not
   (the circle ties them only through the others), from a random start
   (the loss alone aligns the views) and from the generalised Procrustes
   start (the default).

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
    MultiModalCSAlignment,
    cauchy_schwarz_loss,
    generalized_cauchy_schwarz_loss,
)
from skxmr.datasets import make_retrieval_problem, second_encoder
from skxmr.metrics import recall_at_k


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


WIDTHS = (64, 80, 96, 112, 128)


def multiview_problem(n_items, M, seed=0):
    """``M`` views of the same items: content + view noise through a second encoder each."""
    rng = np.random.default_rng(seed)
    content = make_retrieval_problem(n_items, 128, noise=0.0, n_hubs=0,
                                     random_state=seed).gallery.astype(np.float64)
    views = []
    for m in range(M):
        noisy = content + 0.04 * rng.standard_normal(content.shape)
        views.append(second_encoder(noisy, WIDTHS[m], 0.3, random_state=seed + 1 + m))
    return views


def view_r1(Zs):
    """Mean R@1 (both directions) over circle-neighbour and non-neighbour pairs of views."""
    M, out = len(Zs), {"adjacent": [], "other": []}
    ids = np.arange(Zs[0].shape[0])
    for a in range(M):
        for b in range(a + 1, M):
            r = (recall_at_k(Zs[a] @ Zs[b].T, ids) + recall_at_k(Zs[b] @ Zs[a].T, ids)) / 2
            out["adjacent" if (b - a) in (1, M - 1) else "other"].append(r)
    return {k: f"{np.mean(v):.1f}" if v else "-" for k, v in out.items()}


def bench_multiview(n_items, epochs, views=(3, 4, 5)):
    print(f"\nMulti-view fit: {n_items} training + {n_items} held-out items, widths "
          f"{WIDTHS[:max(views)]}, Adam (batches of 256, up to {epochs} epochs, early stopping)")
    print(f"{'M':>2} {'init':>10} {'loss':>12} {'fit s':>6} {'epochs':>6} {'s/epoch':>8} "
          f"{'R@1 adj':>8} {'R@1 other':>9}")
    for M in views:
        Vs = multiview_problem(2 * n_items, M)
        X = np.hstack(Vs)
        for init in ("random", "procrustes"):
            for loss in ("gcs", "pairwise_cs"):
                est = MultiModalCSAlignment(
                    n_components=64, loss=loss, init=init, view_features=WIDTHS[:M],
                    solver="adam", batch_size=256, learning_rate=0.005, max_iter=epochs,
                    random_state=0,
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    start = time.perf_counter()
                    est.fit(X[:n_items])
                    seconds = time.perf_counter() - start
                r1 = view_r1(est.transform_views(X[n_items:]))
                print(f"{M:2d} {init:>10} {loss:>12} {seconds:6.1f} {est.n_iter_:6d} "
                      f"{seconds / max(est.n_iter_, 1):8.3f} {r1['adjacent']:>8} "
                      f"{r1['other']:>9}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--blas-threads", type=int, default=None, help="limit BLAS threads")
    parser.add_argument("--parts", nargs="+", default=["fit", "step", "multiview"],
                        choices=["fit", "step", "multiview"], help="tables to run")
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}, BLAS threads: {args.blas_threads or 'default'}")
    parts = args.parts
    with threadpool_limits(args.blas_threads):
        if "fit" in parts:
            bench_fit(n_pairs=500 if args.quick else 2500, n_components=64 if args.quick else 256,
                      repeat=1)
        if "step" in parts:
            bench_gcs(n=256, k=64, repeat=2) if args.quick else bench_gcs(n=512, k=256, repeat=5)
        if "multiview" in parts:
            bench_multiview(n_items=300 if args.quick else 500, epochs=10 if args.quick else 30)


if __name__ == "__main__":
    main()
