"""Which temperature and neighbourhood size suits a bank of n items? Measured on bank validation.

For each data set (bundled COCO CLIP; MSR-VTT VideoCLIP from ``SKXMR_DATA``),
each of ``--n-splits`` random bank/test halves (the benchmark's splits; the
test halves are never read), each training-bank size ``n`` and ``--draws``
random draws: ``n`` bank pairs fit the method, a fixed number of other
bank pairs (50 on COCO, 20 on MSR-VTT) are the validation gallery, and the validation R@1 (both directions)
is recorded for every point of a fine grid of the method's temperature (or
neighbourhood size) at ``strength=1``.

A rule maps the fitted bank to a setting. It is scored by its *regret*: the
validation R@1 of the best grid point of each cell (data set, split, n,
draw, direction) minus the rule's, averaged over cells (a rule's setting
between grid points reads R@1 off the linear interpolation in log scale).
Compared: the paper's fixed value and the bank rules

* temperature ``tau = c * spread / sqrt(2 log n)``, where ``spread`` is the
  standard deviation of a bank item's similarities to the other modality's
  bank (within each item, averaged), and ``sqrt(2 log n)`` the expected
  maximum of n standard normal draws: the gap between the best and the next
  similarities in a column of n shrinks like ``spread / sqrt(2 log n)``;
* ``tau = c * spread`` (no bank-size term);
* neighbourhood ``k = round(c * sqrt(n))`` and ``k = round(c * n)``;

with ``c`` swept; the best ``c`` per rule is printed with its regret.

Run: ``python benchmarks/bench_defaults.py`` (a few minutes on 2 cores).
"""

import argparse
import itertools
import time

import numpy as np

from skxmr import (
    CSLS,
    DBNorm,
    DualBankSinkhornNormalizer,
    InvertedSoftmax,
    LocalScaling,
    NearestNeighborNormalization,
    QBNorm,
    SinkhornNormalizer,
)
from skxmr.datasets import bank_test_split, fetch_msrvtt_videoclip, load_coco_clip
from skxmr.hubness._defaults import bank_spread
from skxmr.metrics import rank_of_relevant
from skxmr.metrics._scorer import paired_scores

TAUS = np.geomspace(0.0025, 0.64, 17)
KS = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256])

# name: (factory, parameter, paper value)
TEMPERATURE = {
    "SN": (SinkhornNormalizer, "temperature", 0.01),
    "DBSN": (DualBankSinkhornNormalizer, "temperature", 0.01),
    "IS": (InvertedSoftmax, "temperature", 0.05),
    "QB-Norm": (QBNorm, "temperature", 0.05),
    "DBNorm (query)": (DBNorm, "query_temperature", 0.05),
    "DBNorm (gallery)": (DBNorm, "gallery_temperature", 0.33),
}
NEIGHBOURS = {
    "CSLS": (CSLS, "n_neighbors", 10),
    "LS": (LocalScaling, "n_neighbors", 10),
    "NNN": (NearestNeighborNormalization, "n_neighbors", 256),
}


def normalized(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def r1(est, X_fit, X_val):
    S, items = paired_scores(est.fit(X_fit), X_val)
    return 100.0 * np.mean(rank_of_relevant(S, items.relevance) <= 1)


def cells(data, n_splits, sizes, n_val, draws):
    """(data set, split, n, draw, direction, X_fit, X_val, spread) of every cell."""
    for (dname, bunch), s in itertools.product(data.items(), range(n_splits)):
        X_bank, _, _, _ = bank_test_split(bunch.X, bunch.groups, random_state=s)
        d = bunch.X.shape[1] // 2
        for n, r in itertools.product(sizes[dname], range(draws)):
            order = np.random.default_rng([s, n, r]).permutation(len(X_bank))
            X_val, X_fit = X_bank[order[:n_val[dname]]], X_bank[order[n_val[dname]:][:n]]
            halves = [normalized(X_fit[:, :d]), normalized(X_fit[:, d:])]
            for direction in ("q2g", "g2q"):
                bank, other = halves if direction == "q2g" else halves[::-1]
                # the query bank against the other modality's items; the
                # gallery bank against its own modality (DBNorm's gallery side)
                spread = {"cross": bank_spread(bank, other), "same": bank_spread(other, other)}
                yield dname, s, n, r, direction, X_fit, X_val, spread


def curve(make, param, grid, X_fit, X_val, direction, **fixed):
    """Validation R@1 at every grid value (NaN where the value does not fit the bank)."""
    out = np.full(len(grid), np.nan)
    for i, v in enumerate(grid):
        if param == "n_neighbors" and v > len(X_fit):
            continue
        v = int(v) if param == "n_neighbors" else float(v)
        out[i] = r1(make(direction=direction, **{param: v}, **fixed), X_fit, X_val)
    return out


def read_off(grid, values, x):
    """R@1 at setting ``x``: linear in log(grid), clipped to the measured range."""
    ok = ~np.isnan(values)
    g, v = np.log(grid[ok]), values[ok]
    return float(np.interp(np.log(x), g, v))


def report(name, rows, grid, rules, paper):
    """Regret of the paper value, of the package's "auto" and of each rule at its best constant."""
    autos = [row[-1] for row in rows]
    rows = [row[:-1] for row in rows]
    best = np.array([np.nanmax(v) for *_, v in rows])
    paper_r = np.array([read_off(grid, v, paper) for *_, v in rows])
    print(f"\n{name}: {len(rows)} cells; mean best R@1 {best.mean():.2f}; "
          f"paper value {paper}: regret {np.mean(best - paper_r):.2f}")
    if autos[0] is not None:
        auto_r = np.array([read_off(grid, v, a) for (*_, v), a in zip(rows, autos)])
        print(f"  skxmr's \"auto\" (the default): regret {np.mean(best - auto_r):.2f}; "
              f"its setting ranged {min(autos):.3g} to {max(autos):.3g}")
    per_set = {}
    for rule, (settings, consts) in rules.items():
        regrets = []
        for c in consts:
            got = np.array([read_off(grid, v, settings(c, n, spread))
                            for (_, n, _, spread, v) in rows])
            regrets.append(np.mean(best - got))
        i = int(np.argmin(regrets))
        c = consts[i]
        got = np.array([read_off(grid, v, settings(c, n, spread)) for (_, n, _, spread, v) in rows])
        by = {
            key: f"{np.mean((best - got)[[r[0] == key[0] and r[1] == key[1] for r in rows]]):.2f}"
            for key in sorted({(r[0], r[1]) for r in rows})
        }
        per_set[rule] = by
        print(f"  {rule:<28} best c = {c:.3g}: regret {regrets[i]:.2f}  by (set, n): {by}")
    argbest = {}
    for dname, n, _, spread, v in rows:
        argbest.setdefault((dname, n), []).append(
            (grid[int(np.nanargmax(v))], grid[int(np.nanargmax(v))] / spread
             * np.sqrt(2 * np.log(n))))
    print("  per (set, n): median best setting (and in units of spread/sqrt(2 log n)): " + "; ".join(
        f"{k[0]} n={k[1]}: {np.median([a for a, _ in v]):.3g} ({np.median([b for _, b in v]):.2f})"
        for k, v in sorted(argbest.items())))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-splits", type=int, default=5)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--methods", default=None)
    args = parser.parse_args()
    data = {"COCO": load_coco_clip()}
    sizes = {"COCO": [25, 50, 100, 200]}
    n_val = {"COCO": 50}
    try:
        data["MSR-VTT"] = fetch_msrvtt_videoclip(download_if_missing=False)
        sizes["MSR-VTT"] = [10, 20, 30]
        n_val["MSR-VTT"] = 20
    except OSError as exc:
        print(f"MSR-VTT unavailable: {exc}")
    wanted = set(args.methods.split(",")) if args.methods else None
    t0 = time.perf_counter()
    tau_consts = np.geomspace(0.01, 40, 80)
    tau_rules = {
        "tau = c": (lambda c, n, spread: c / 40, tau_consts),
        "tau = c spread": (lambda c, n, spread: c * spread, tau_consts),
        "tau = c spread / sqrt(2 log n)": (
            lambda c, n, spread: c * spread / np.sqrt(2 * np.log(n)), tau_consts),
        "tau = c spread / log n": (lambda c, n, spread: c * spread / np.log(n), tau_consts),
        "tau = c spread / sqrt(n)": (lambda c, n, spread: c * spread / np.sqrt(n), tau_consts),
    }
    k_consts = np.geomspace(0.01, 40, 80)
    k_rules = {
        "k = round(c)": (lambda c, n, spread: max(1, round(c * 5)), k_consts),
        "k = round(c log n)": (lambda c, n, spread: max(1, round(c * np.log(n))), k_consts),
        "k = round(c sqrt(n))": (lambda c, n, spread: max(1, round(c * np.sqrt(n))), k_consts),
        "k = round(c n)": (lambda c, n, spread: max(1, round(c * n / 10)), k_consts),
    }
    table = {**{k: (v, TAUS, tau_rules) for k, v in TEMPERATURE.items()},
             **{k: (v, KS, k_rules) for k, v in NEIGHBOURS.items()}}
    rows = {name: [] for name in table}
    for dname, s, n, r, direction, X_fit, X_val, spread in cells(
            data, args.n_splits, sizes, n_val, args.draws):
        for name, ((make, param, paper), grid, _) in table.items():
            if wanted and name.split(" ")[0] not in wanted:
                continue
            kind = "same" if name == "DBNorm (gallery)" else "cross"
            # the package's own "auto" setting of this cell, where it has one
            est = make(direction=direction).fit(X_fit)
            auto = getattr(est, f"{param}_", None)
            rows[name].append((dname, n, direction, spread[kind],
                               curve(make, param, grid, X_fit, X_val, direction), auto))
    for name, ((make, param, paper), grid, rules) in table.items():
        if rows[name]:
            report(name, rows[name], grid, rules, paper)
    print(f"\nwall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
