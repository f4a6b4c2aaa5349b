"""Calibrated probabilistic embeddings: the paper's ablations and timings.

Tables printed:

1. distance ablation (the paper's Table 4) on the synthetic multiplicity
   problem: R-Precision on held-out items, each distance's weight tuned by
   GridSearchCV on the bank half;
1b. one weight for every distance at the variance scale of real captions;
2. augmentations per item (the paper's Fig. 3);
3. COCO CLIP with synthetic augmentations (noise model of
   ``examples/plot_calibration.py``): text->image R@1 without calibration
   and with W2 at the default weight;
4. the registered "Calibration (W2)" row vs cosine on plain COCO points;
5. the trainable CalibratedProjection with each training distance;
6. wall time of the pairwise distances.

    python benchmarks/bench_calibration.py --quick
    python benchmarks/bench_calibration.py
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skxmr import CosineSimilarity, registered_methods
from skxmr.datasets import make_multiplicity_problem
from skxmr.calibration import (
    CalibratedProjection,
    GaussianEmbedding,
    ProbabilisticCalibration,
    bhattacharyya_distance,
    js_divergence,
    kl_divergence,
    pair_gaussians,
    symmetric_kl_divergence,
    wasserstein2_squared,
)
from skxmr.metrics import make_retrieval_scorer

RP = make_retrieval_scorer("r_precision")
LABELS = {None: "w/o calibration", "w2": "W2", "kl": "KL", "kl_reverse": "KL reverse",
          "symmetric_kl": "symmetrised KL (paper's JS)", "js": "Jensen-Shannon (MC)",
          "bhattacharyya": "Bhattacharyya"}


def gaussian_pairs(query_samples, gallery_samples):
    q = GaussianEmbedding().fit(query_samples)
    g = GaussianEmbedding().fit(gallery_samples)
    return pair_gaussians(q.means_, q.covariances_, g.means_, g.covariances_)


def split(n_aug, seed, per=24, transform=None):
    data = make_multiplicity_problem(n_items_per_category=per, n_augmentations=n_aug,
                                     random_state=seed)
    gallery = data.gallery_samples if transform is None else data.gallery_samples @ transform
    X = gaussian_pairs(data.query_samples, gallery)
    bank = (np.arange(data.y.size) % per) < per // 2
    return X[bank], data.y[bank], X[~bank], data.y[~bank]


def tuned(distance, X_bank, y_bank, X_test, y_test):
    grid = [0.0] if distance is None else list(np.logspace(-4, 2, 13))
    search = GridSearchCV(
        ProbabilisticCalibration(distance=distance, n_mc_samples=64, random_state=0),
        {"weight": grid}, scoring=RP, cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X_bank, y_bank)
    return RP(search.best_estimator_, X_test, y_test)


def table4(seeds):
    print("\n1. Distance ablation (Table 4): synthetic multiplicity, 8 augmentations, "
          f"R-Precision on held-out items, {len(seeds)} seeds")
    res = {d: [] for d in LABELS}
    res["w2 default"] = []
    for seed in seeds:
        sp = split(8, seed)
        for distance in LABELS:
            res[distance].append(tuned(distance, *sp))
        res["w2 default"].append(RP(ProbabilisticCalibration().fit(sp[0]), sp[2], sp[3]))
    for key, values in res.items():
        label = "W2, default weight 0.5 (untuned)" if key == "w2 default" else LABELS[key]
        print(f"  {label:34s} {np.mean(values):6.1f} ± {np.std(values):4.1f}")


def real_variance_scale(seeds):
    print("\n1b. One weight for every distance: synthetic multiplicity at the variance "
          "scale of real caption Gaussians (variance_scale=3.5e-4, 32 features), "
          f"R-Precision on held-out items at weight 0.5, {len(seeds)} seeds")
    res = {}
    for seed in seeds:
        data = make_multiplicity_problem(n_items_per_category=24, n_features=32,
                                         variance_scale=3.5e-4, random_state=seed)
        X = gaussian_pairs(data.query_samples, data.gallery_samples)
        bank = (np.arange(data.y.size) % 24) < 12
        Xb, Xt, yt = X[bank], X[~bank], data.y[~bank]
        for distance in (None, "w2", "kl", "symmetric_kl", "bhattacharyya"):
            est = ProbabilisticCalibration(distance=distance).fit(Xb)
            res.setdefault((distance, "scaled"), []).append(RP(est, Xt, yt))
            if distance is not None:  # the raw weight 0.5 (before distance_scale_)
                raw = ProbabilisticCalibration(distance=distance,
                                               weight=0.5 * est.distance_scale_).fit(Xb)
                res.setdefault((distance, "raw"), []).append(RP(raw, Xt, yt))
    for (distance, kind), values in res.items():
        label = LABELS[distance] + ("" if distance is None else f" ({kind} weight)")
        print(f"  {label:44s} {np.mean(values):6.1f} ± {np.std(values):4.1f}")


def fig3(seeds, n_augs):
    print("\n2. Augmentations per item (Fig. 3): R-Precision, mean over seeds")
    print("  " + "n_aug".ljust(34) + "".join(f"{n:>7d}" for n in n_augs))
    for distance, label in ((None, "w/o calibration"), ("w2", "W2 (weight 0.5)")):
        cells = []
        for n_aug in n_augs:
            vals = []
            for seed in seeds:
                Xb, _, Xt, yt = split(n_aug, seed)
                est = ProbabilisticCalibration(distance=distance).fit(Xb)
                vals.append(RP(est, Xt, yt))
            cells.append(np.mean(vals))
        print(f"  {label:34s}" + "".join(f"{c:7.1f}" for c in cells))


def augment(X, tau, rng, n_aug=8):
    d = X.shape[1]
    noise = rng.standard_normal((X.shape[0], n_aug, d)) / np.sqrt(d)
    A = X[:, None, :] + tau[:, None, None] * noise
    return A / np.linalg.norm(A, axis=-1, keepdims=True)


def coco_augmented(seeds):
    from skxmr.datasets import load_coco_clip

    coco = load_coco_clip()
    n = coco.queries.shape[0]
    print(f"\n3. COCO CLIP (500 pairs) with 8 synthetic augmentations per item, text->image "
          f"R@1, {len(seeds)} seeds (mean, min difference)")
    for model in ("isotropic", "heteroscedastic"):
        res = {}
        for seed in seeds:
            rng = np.random.default_rng(seed)
            if model == "isotropic":
                tq = tg = np.full(n, 0.5)
            else:
                tq, tg = rng.uniform(0.25, 0.75, n), rng.uniform(0.25, 0.75, n)
            X = gaussian_pairs(augment(coco.queries, tq, rng), augment(coco.gallery, tg, rng))
            for w in (None, 0.1, 0.5, 1.0):
                est = ProbabilisticCalibration(distance=None if w is None else "w2",
                                               weight=w or 0.0).fit(X)
                res.setdefault(w, []).append(est.score(X))
        base = np.array(res[None])
        cells = ", ".join(
            f"W2@{w}: {np.mean(v):.1f} ({np.mean(np.array(v) - base):+.1f}, "
            f"min {np.min(np.array(v) - base):+.1f})"
            for w, v in res.items() if w is not None
        )
        print(f"  {model:15s} none: {base.mean():.1f}; {cells}")


def benchmark_row(seeds):
    from skxmr.datasets import bank_test_split, load_coco_clip

    coco = load_coco_clip()
    factory = registered_methods()["Calibration (W2)"]["factory"]
    print(f"\n4. Plain COCO points, 250/250 bank/test, {len(seeds)} splits: R@1")
    for direction in ("q2g", "g2q"):
        cos, cal = [], []
        for seed in seeds:
            X_bank, X_test, _, _ = bank_test_split(coco.X, coco.groups, bank_size=0.5,
                                                   random_state=seed)
            cos.append(CosineSimilarity(direction=direction).fit(X_bank).score(X_test))
            cal.append(factory(direction=direction).fit(X_bank).score(X_test))
        print(f"  {direction}: Cosine {np.mean(cos):.1f}, Calibration (W2) {np.mean(cal):.1f}")


def projection(seeds):
    print("\n5. CalibratedProjection (gallery in another 24-d space), R-Precision of "
          "held-out items scored by ProbabilisticCalibration(w2, 0.5)")
    for distance in (None, "w2", "kl", "symmetric_kl", "bhattacharyya"):
        vals, iters = [], []
        for seed in seeds:
            T = np.random.default_rng(seed).standard_normal((16, 24)) / 4
            Xb, yb, Xt, yt = split(8, seed, transform=T)
            proj = CalibratedProjection(n_components=16, distance=distance, random_state=0,
                                        n_query_features=32, max_iter=100)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                proj.fit(Xb, yb)
            est = ProbabilisticCalibration().fit(proj.transform(Xb))
            vals.append(RP(est, proj.transform(Xt), yt))
            iters.append(proj.n_iter_)
        print(f"  trained with {LABELS[distance]:30s} {np.mean(vals):6.1f}"
              f"   (epochs {np.mean(iters):.0f})")


def timings(quick):
    print("\n6. Pairwise distances, wall time (2 cores)")
    rng = np.random.default_rng(0)
    n, d = (250, 512) if quick else (500, 512)
    m, v = rng.standard_normal((n, d)), rng.uniform(0.1, 1, (n, d))
    nf, df = (100, 16) if quick else (200, 32)
    mf = rng.standard_normal((nf, df))
    A = rng.standard_normal((nf, df, df))
    cf = A @ A.transpose(0, 2, 1) / df + 0.1 * np.eye(df)
    funcs = {"w2": wasserstein2_squared, "kl": kl_divergence,
             "symmetric_kl": symmetric_kl_divergence, "bhattacharyya": bhattacharyya_distance,
             "js (128 draws)": lambda *a: js_divergence(*a, random_state=0)}
    for name, func in funcs.items():
        t0 = time.perf_counter()
        func(m, v, m, v)
        t1 = time.perf_counter()
        func(mf, cf, mf, cf)
        t2 = time.perf_counter()
        print(f"  {name:16s} diag {n}x{n}, d={d}: {t1 - t0:6.2f} s   "
              f"full {nf}x{nf}, d={df}: {t2 - t1:6.2f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds, smaller timings")
    args = parser.parse_args(argv)
    seeds = range(2) if args.quick else range(5)
    t0 = time.perf_counter()
    table4(seeds)
    real_variance_scale(seeds)
    fig3(seeds, [2, 4, 8, 16] if args.quick else [2, 3, 4, 6, 8, 12, 16])
    coco_augmented(range(2) if args.quick else range(6))
    benchmark_row(range(2) if args.quick else range(4))
    projection(range(1) if args.quick else range(3))
    timings(args.quick)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
