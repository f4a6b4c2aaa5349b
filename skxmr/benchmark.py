"""Side-by-side benchmark of every registered method: ``skxmr benchmark``.

Each method registers its row (and its tuning grid) with
:func:`skxmr.register_method`; this module only runs what is registered.
For every method and both directions it fits a fresh estimator on the bank
pairs -- at its defaults, or tuned by ``GridSearchCV`` on the bank pairs
only (``GroupKFold`` over items) and refitted -- scores the test pairs once
and reports R@K, MdR, MnR, R-Precision and mAP@R, the difference of R@1
from cosine with a paired bootstrap interval over test queries, the
k-occurrence skewness of the ranking (hubness), the degeneration score
Δ_deg of the gallery the final step sees, and the fit and score times.

The command line is in :mod:`skxmr._cli`.
"""

import csv
import json
import os
import sys
import time

import numpy as np
from sklearn.utils import Bunch

from ._bootstrap import paired_bootstrap_ci
from ._pairs import item_groups, pair, split_pairs
from ._registry import registered_methods

DATASETS = ("coco-clip", "msrvtt-videoclip", "synthetic")
FAMILY_ORDER = ("baseline", "hubness", "graph", "calibration", "alignment")
DIRECTIONS = ("q2g", "g2q")
REFERENCE = "Cosine"
BOOTSTRAP = {"n_resamples": 1000, "confidence": 0.95, "random_state": 0}
EMBEDDING_SUFFIXES = (".npy", ".npz", ".pt")
OUTPUT_SUFFIXES = (".json", ".csv", ".md")

#: Columns of the table: key -> (header, format, per direction, definition).
#: The definitions are the ``--help`` text of every column.
METRICS = {
    "R@1": ("R@1", "{:.1f}", True, "% of test queries whose relevant item ranks first"),
    "dR@1": (
        "ΔR@1 [95% CI]", None, True,
        "R@1 minus cosine's R@1 on the same test queries, with its 95% paired "
        "bootstrap interval over test queries (1000 resamples, seed 0); * marks "
        "an interval that excludes 0",
    ),
    "R@5": ("R@5", "{:.1f}", True, "% of test queries with a relevant item in the top 5"),
    "R@10": ("R@10", "{:.1f}", True, "% of test queries with a relevant item in the top 10"),
    "MdR": ("MdR", "{:.1f}", True, "median rank of the best relevant item (1 = first)"),
    "MnR": ("MnR", "{:.1f}", True, "mean rank of the best relevant item"),
    "R-P": (
        "R-P", "{:.1f}", True,
        "R-Precision (%): precision in the top R, R = number of relevant items "
        "(shown by default only when a query has several relevant items)",
    ),
    "mAP@R": (
        "mAP@R", "{:.1f}", True,
        "mean average precision at R (%) (default only when relevance is many-to-many)",
    ),
    "skew": (
        "skew@10", "{:.2f}", False,
        "q2g hubness: skewness of how often each gallery item is in a query's top 10",
    ),
    "gini": (
        "gini@10", "{:.2f}", False,
        "q2g hubness: Gini index of that top-10 occurrence (scikit-hubness's; 0 = uniform)",
    ),
    "hubs": (
        "hubs@10", "{:.2f}", False,
        "q2g hubness: share of the top-10 slots taken by hubs, items in at least "
        "20 top-10 lists (scikit-hubness's hub occurrence)",
    ),
    "antihubs": (
        "anti@10", "{:.2f}", False,
        "q2g hubness: share of gallery items in no top-10 list (scikit-hubness's "
        "antihub occurrence)",
    ),
    "deg": (
        "Δdeg", "{:.3f}", False,
        "q2g degeneration: mean similarity of each gallery item to its nearest "
        "other gallery item, on the gallery the final step sees (lower = less "
        "crowded)",
    ),
    "fit": (
        "fit s", "{:.2f}", False,
        "seconds to fit the (chosen) estimator on the bank, both directions",
    ),
    "score": ("score s", "{:.2f}", False, "seconds to score the test pairs, both directions"),
    "tune": (
        "tune s", "{:.1f}", False,
        "seconds of the bank grid search, both directions (--tune / --save-best)",
    ),
}
DEFAULT_METRICS = ("R@1", "dR@1", "R@5", "MdR", "skew", "fit")
MANY_TO_MANY_METRICS = ("R@1", "dR@1", "R-P", "mAP@R", "skew", "fit")
_REPORT_KEYS = {"R@1": "R@1", "R@5": "R@5", "R@10": "R@10", "MdR": "MdR", "MnR": "MnR",
                "R-P": "R-Precision", "mAP@R": "mAP@R"}


# ------------------------------------------------------------------ data
def load_embeddings(path, key=None, *, name="embeddings"):
    """A 2-D float array from ``.npy``, ``.npz`` (``key``) or torch ``.pt``.

    Parameters
    ----------
    path : str or path-like
    key : str, default=None
        The array inside an ``.npz`` archive or a ``.pt`` dict; may be
        omitted when the file holds exactly one.
    name : str, default="embeddings"
        What the file is, for error messages (``"--queries"``).

    Returns
    -------
    array : ndarray
        As stored (float arrays keep their dtype; torch tensors become NumPy).
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in EMBEDDING_SUFFIXES:
        raise ValueError(f"{name} {path!r} must end in one of {EMBEDDING_SUFFIXES}.")
    if suffix == ".npy":
        if key is not None:
            raise ValueError(f"{name} {path!r} is a .npy file: it has no key {key!r}.")
        return np.load(path, allow_pickle=False)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return _pick(dict(archive), key, name, path)
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"{name} {path!r} is a torch file, but torch is not installed "
            "(pip install 'skxmr[torch]')."
        ) from None
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict):
        obj = _pick(obj, key, name, path)
    elif key is not None:
        raise ValueError(f"{name} {path!r} holds one tensor, not a dict with key {key!r}.")
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"{name} {path!r} holds a {type(obj).__name__}, not a tensor.")
    return obj.detach().cpu().numpy()


def _pick(arrays, key, name, path):
    if key is None:
        if len(arrays) != 1:
            raise ValueError(
                f"{name} {path!r} holds {sorted(arrays)}; say which with its key option "
                f"(e.g. {name}-key)."
            )
        return next(iter(arrays.values()))
    if key not in arrays:
        raise ValueError(f"{name} {path!r} has no key {key!r}; it holds {sorted(arrays)}.")
    return arrays[key]


def _labels(path, n, name):
    if path is None:
        return None
    y = load_embeddings(path, name=name)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} {path!r} must hold one label per row ({n}), got shape {y.shape}.")
    return y


def load_files(
    queries,
    gallery,
    *,
    queries_key=None,
    gallery_key=None,
    labels=None,
    bank_size=0.5,
    random_state=0,
    bank_queries=None,
    bank_gallery=None,
    bank_labels=None,
):
    """Bank and test pairs from a user's embedding files.

    Row ``i`` of the queries file pairs with row ``i`` of the gallery file;
    duplicate rows are one item. Without explicit banks the pairs are split
    by item (:func:`skxmr._pairs.item_groups`) into a bank and a test set;
    with ``bank_queries`` and ``bank_gallery`` the given files are the test
    set.

    Parameters
    ----------
    queries, gallery : str or path-like
        ``.npy``, ``.npz`` or ``.pt`` files of shape (n_pairs, d).
    queries_key, gallery_key : str, default=None
        Array names inside ``.npz`` / ``.pt`` files (also used for the bank files).
    labels : str or path-like, default=None
        One label per pair: relevance becomes "same label".
    bank_size : float or int, default=0.5
        Fraction (or number) of the items in the bank when splitting.
    random_state : int, default=0
        Seed of the split.
    bank_queries, bank_gallery : str or path-like, default=None
        Explicit bank pairs (both or neither).
    bank_labels : str or path-like, default=None
        Labels of the bank pairs (tuning then scores with label relevance).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_bank, X_test, y_bank, y_test, groups_bank, description, info``.
    """
    from .datasets import bank_test_split

    X, width = _read_pairs(queries, gallery, queries_key, gallery_key, "--queries", "--gallery")
    y = _labels(labels, X.shape[0], "--labels")
    if (bank_queries is None) != (bank_gallery is None):
        raise ValueError("give both --bank-queries and --bank-gallery, or neither.")
    if bank_queries is None:
        if bank_labels is not None:
            raise ValueError("--bank-labels needs --bank-queries and --bank-gallery.")
        groups = item_groups(X, n_query_features=width)
        X_bank, X_test, groups_bank, groups_test = bank_test_split(
            X, groups, bank_size=bank_size, random_state=random_state
        )
        mask = np.isin(groups, groups_bank)
        y_bank, y_test = (None, None) if y is None else (y[mask], y[~mask])
        how = f"split by item (bank {bank_size}, seed {random_state})"
    else:
        X_bank, bank_width = _read_pairs(
            bank_queries, bank_gallery, queries_key, gallery_key, "--bank-queries", "--bank-gallery"
        )
        if (X_bank.shape[1], bank_width) != (X.shape[1], width):
            raise ValueError(
                f"the bank files have widths {bank_width} + {X_bank.shape[1] - bank_width}, "
                f"the test files {width} + {X.shape[1] - width}; they must match."
            )
        X_test, y_test = X, y
        y_bank = _labels(bank_labels, X_bank.shape[0], "--bank-labels")
        groups_bank = item_groups(X_bank, n_query_features=width)
        how = "explicit bank files"
    data = _bunch(
        X_bank, X_test, y_bank, y_test, groups_bank,
        f"{os.fspath(queries)} -> {os.fspath(gallery)} ({how})",
        name="files",
    )
    # Equal halves split at the middle by default; other widths are passed on.
    data.n_query_features = None if 2 * width == X.shape[1] else width
    data.info.update(
        queries=os.fspath(queries), gallery=os.fspath(gallery),
        labels=None if labels is None else os.fspath(labels),
        bank_queries=None if bank_queries is None else os.fspath(bank_queries),
        bank_gallery=None if bank_gallery is None else os.fspath(bank_gallery),
        bank_size=bank_size if bank_queries is None else None, random_state=random_state,
    )
    return data


def _read_pairs(q_path, g_path, q_key, g_key, q_name, g_name):
    Q = load_embeddings(q_path, q_key, name=q_name)
    G = load_embeddings(g_path, g_key, name=g_name)
    for A, name, path in ((Q, q_name, q_path), (G, g_name, g_path)):
        if A.ndim != 2 or not np.issubdtype(A.dtype, np.floating):
            raise ValueError(
                f"{name} {os.fspath(path)!r} must hold a 2-D float array (one embedding "
                f"per row), got {A.dtype} of shape {A.shape}."
            )
    if Q.shape[0] != G.shape[0]:
        raise ValueError(
            f"{q_name} has {Q.shape[0]} rows but {g_name} has {G.shape[0]}; row i of "
            "each must form a matching pair."
        )
    return pair(Q, G), Q.shape[1]


def _bunch(X_bank, X_test, y_bank, y_test, groups_bank, description, name):
    n_items = np.unique(groups_bank).size
    info = {
        "name": name,
        "description": description,
        "n_bank_pairs": int(X_bank.shape[0]),
        "n_test_pairs": int(X_test.shape[0]),
        "n_bank_items": int(n_items),
        "labels": y_test is not None,
    }
    return Bunch(
        X_bank=X_bank, X_test=X_test, y_bank=y_bank, y_test=y_test, groups_bank=groups_bank,
        description=f"{description}; bank {len(X_bank)} pairs, test {len(X_test)} pairs",
        info=info, n_query_features=None,
    )


def load_dataset(name="coco-clip", *, n_pairs=1000, random_state=0, data_home=None):
    """Bank and test pairs of a named dataset.

    Parameters
    ----------
    name : {"coco-clip", "msrvtt-videoclip", "synthetic"}, default="coco-clip"
        ``"coco-clip"``: the COCO CLIP embeddings bundled with the package
        (always available, offline); ``"msrvtt-videoclip"``: fetched into
        the cache; ``"synthetic"``: :func:`~skxmr.datasets.make_retrieval_problem`.
    n_pairs : int, default=1000
        Size of the synthetic problem.
    random_state : int, default=0
        Seed of the generator and of the bank/test split.
    data_home : str, default=None
        Cache folder of the fetchers (env ``SKXMR_DATA``).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_bank, X_test`` (half of the items each), ``y_bank = y_test =
        None``, ``groups_bank``, ``description`` and ``info`` (for the JSON
        output).
    """
    from . import datasets

    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}.")
    if name == "synthetic":
        bunch = datasets.make_retrieval_problem(n_pairs=n_pairs, random_state=random_state)
        what = f"synthetic ({n_pairs} pairs, make_retrieval_problem, seed {random_state})"
    elif name == "coco-clip":
        bunch = datasets.load_coco_clip()
        what = "COCO val2017 CLIP ViT-B/16 (500 pairs, bundled), text->image"
    else:
        bunch = datasets.fetch_msrvtt_videoclip(data_home=data_home)
        what = "MSR-VTT VideoCLIP (100 pairs), text->video"
    X_bank, X_test, g_bank, _ = datasets.bank_test_split(
        bunch.X, bunch.groups, bank_size=0.5, random_state=random_state
    )
    data = _bunch(X_bank, X_test, None, None, g_bank, what, name=name)
    data.info.update(random_state=random_state, bank_size=0.5)
    return data


def many_to_many(X, y=None, n_query_features=None):
    """Whether some query (or gallery item) has several relevant items."""
    R = split_pairs(X, y, n_query_features=n_query_features).relevance
    return bool(R.sum(axis=1).max() > 1 or R.sum(axis=0).max() > 1)


# --------------------------------------------------------------- methods
def ranked_gallery(estimator, X_test):
    """The unique test gallery items as the method ranks them, as embeddings.

    Pipeline steps are applied in turn while they output embeddings (InvGC's
    convolved gallery, an alignment's shared space); a step that outputs
    something else (packed Gaussians, ``_outputs_embeddings = False``) ends
    the walk. Δ_deg is measured on the result.
    """
    from sklearn.pipeline import Pipeline

    steps = [s for _, s in estimator.steps[:-1]] if isinstance(estimator, Pipeline) else []
    final = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    X = X_test
    for step in steps:
        if not getattr(step, "_outputs_embeddings", True):
            break
        X = step.transform(X)
    return split_pairs(X, direction=final.direction, n_query_features=final.n_query_features).targets


def _set_split(estimator, n_query_features):
    """Tell the step that reads the files where their halves split.

    Only the first step of a Pipeline reads the raw pairs; later steps read
    its output (an alignment's equal halves in the shared space).
    """
    from sklearn.pipeline import Pipeline

    if n_query_features is None:
        return estimator
    first = estimator.steps[0][1] if isinstance(estimator, Pipeline) else estimator
    first.set_params(n_query_features=n_query_features)
    return estimator


def run_method(
    factory,
    X_bank,
    X_test,
    *,
    y_bank=None,
    y_test=None,
    groups_bank=None,
    grid=None,
    cv=None,
    n_jobs=None,
    n_query_features=None,
    k=10,
):
    """One benchmark row: fit (or tune) on the bank and score in both directions.

    Parameters
    ----------
    factory : callable
        ``factory(direction=...) -> estimator`` (see :func:`skxmr.register_method`).
    X_bank, X_test : ndarray
        Bank and test pairs.
    y_bank, y_test : ndarray, default=None
        Labels (label-level relevance).
    groups_bank : ndarray, default=None
        Item id of each bank row, for ``GroupKFold``.
    grid : list of dict, default=None
        The grid to search when ``cv`` is given (``None``: the defaults only).
    cv : int, default=None
        Number of ``GroupKFold`` folds over the bank items; ``None`` fits at
        the defaults without cross-validation.
    n_jobs : int, default=None
        Parallel fits of the grid search.
    n_query_features : int, default=None
        Where the halves split, when they differ in width.
    k : int, default=10
        Neighbourhood of the skewness.

    Returns
    -------
    row : dict
        ``"q2g R@1"`` ... metric columns, ``"skew"``, ``"gini"``, ``"hubs"``,
        ``"antihubs"`` (q2g hubness), ``"deg"``, ``"fit"``,
        ``"score"``, ``"tune"`` and ``"params"`` ``{direction: {...}}``,
        ``"cv R@1"`` ``{direction: float}`` when cross-validated.
    extras : dict
        ``"hits"`` ``{direction: per-query 100 * hit@1}``, ``"k_occurrence"``,
        ``"estimators"`` ``{direction: fitted estimator}``.
    """
    from sklearn.model_selection import GridSearchCV, GroupKFold

    from .metrics import (
        degeneration_score,
        hubness_report,
        k_occurrence,
        rank_of_relevant,
        retrieval_report,
    )
    from .metrics import make_retrieval_scorer
    from .metrics._scorer import paired_scores

    row = {"params": {}, "fit": 0.0, "score": 0.0, "tune": 0.0}
    extras = {"hits": {}, "estimators": {}}
    for direction in DIRECTIONS:
        est = _set_split(factory(direction=direction), n_query_features)
        if cv is not None:
            search = GridSearchCV(
                est,
                grid or [{}],
                scoring=make_retrieval_scorer("recall", k=1),
                cv=GroupKFold(n_splits=cv),
                n_jobs=n_jobs,
                error_score="raise",
            )
            t0 = time.perf_counter()
            search.fit(X_bank, y_bank, groups=groups_bank)
            row["tune"] += time.perf_counter() - t0
            row["fit"] += search.refit_time_
            est = search.best_estimator_
            row["params"][direction] = dict(search.best_params_)
            row.setdefault("cv R@1", {})[direction] = float(search.best_score_)
        else:
            t0 = time.perf_counter()
            est.fit(X_bank, y_bank)
            row["fit"] += time.perf_counter() - t0
            row["params"][direction] = {}
        t1 = time.perf_counter()
        S, items = paired_scores(est, X_test, y_test)
        row["score"] += time.perf_counter() - t1
        report = retrieval_report(S, items.relevance, ks=(1, 5, 10), directions=("q2g",))["q2g"]
        for key, name in _REPORT_KEYS.items():
            row[f"{direction} {key}"] = report.get(name, float("nan"))
        extras["hits"][direction] = 100.0 * (rank_of_relevant(S, items.relevance) <= 1)
        extras["estimators"][direction] = est
        if direction == "q2g":
            kk = min(k, S.shape[1] - 1) if S.shape[1] > 1 else 1
            hubness = hubness_report(S, k=kk)  # one k-occurrence for all four
            row["skew"], row["gini"] = hubness["skewness"], hubness["gini"]
            row["hubs"], row["antihubs"] = hubness["hub_occurrence"], hubness["antihub_rate"]
            row["deg"] = degeneration_score(ranked_gallery(est, X_test))
            extras["k_occurrence"] = k_occurrence(S, k=kk)
    return row, extras


def _reference_factory(registry):
    if REFERENCE in registry:
        return registry[REFERENCE]["factory"]
    from .similarity import CosineSimilarity

    return lambda direction="q2g": CosineSimilarity(direction=direction)


class _Progress:
    """A one-line progress bar on stderr (silent when not a terminal or disabled)."""

    def __init__(self, total, enabled):
        self.total, self.done, self.enabled = total, 0, enabled
        self.start = time.perf_counter()

    def step(self, label):
        self.done += 1
        if not self.enabled:
            return
        width = 24
        filled = int(width * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"{label[:28]:<28} {elapsed:6.1f}s"
        )
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _select(methods, registry):
    if isinstance(methods, str):
        methods = [methods]  # one name, not its letters
    if methods is not None:
        methods = list(methods)
        unknown = sorted(set(methods) - set(registry))
        if unknown:
            raise ValueError(f"methods {unknown} are not registered; known: {sorted(registry)}.")
        registry = {name: registry[name] for name in methods}
    return sorted(
        registry,
        key=lambda n: (
            FAMILY_ORDER.index(registry[n]["family"])
            if registry[n]["family"] in FAMILY_ORDER
            else len(FAMILY_ORDER),
        ),
    )


def run_benchmark(
    dataset="coco-clip",
    *,
    methods=None,
    n_pairs=1000,
    random_state=0,
    data_home=None,
    tune=False,
    cv=3,
    cross_validate=False,
    n_jobs=None,
    progress=False,
    log=None,
):
    """Run every registered method on one dataset.

    Parameters
    ----------
    dataset : str or sklearn.utils.Bunch, default="coco-clip"
        A name for :func:`load_dataset`, or the Bunch of :func:`load_files`
        (or of :func:`load_dataset`).
    methods : str or list of str, default=None
        Registered names to run (a string is one name); ``None`` runs all.
    n_pairs : int, default=1000
        Size of the synthetic problem.
    random_state : int, default=0
    data_home : str, default=None
    tune : bool, default=False
        Search each method's registered grid with ``GridSearchCV`` on the
        bank pairs (``GroupKFold`` over items, ``cv`` folds, scored by R@1 in
        the method's direction), refit on the whole bank, then score the test
        pairs once.
    cv : int, default=3
        Folds of the bank grid search.
    cross_validate : bool, default=False
        Cross-validate every method on the bank, also those without a grid
        (at their defaults) or when not tuning, so that all can be compared
        by bank CV (``--save-best``). Without it, only tuned methods with a
        grid are cross-validated.
    n_jobs : int, default=None
        Parallel fits of the grid search.
    progress : bool, default=False
        Draw a progress bar on stderr.
    log : callable, default=None
        Receives a note for each method that cannot run on this data (its
        row is left out, with the reason in ``result["skipped"]``).

    Returns
    -------
    result : dict
        ``{"dataset": str, "info": dict, "rows": {name: row}, "k_occurrence":
        {name: ndarray}, "estimators": {name: {direction: estimator}},
        "skipped": {name: reason}, "many_to_many": bool}``; rows ordered by
        family, each with ``"q2g dR@1"`` and its interval ``"q2g dR@1 CI"``.
    """
    registry = registered_methods()
    order = _select(methods, registry)
    data = dataset if isinstance(dataset, Bunch) else load_dataset(
        dataset, n_pairs=n_pairs, random_state=random_state, data_home=data_home
    )
    if tune or cross_validate:
        _check_folds(cv, data.groups_bank)
    common = dict(
        y_bank=data.y_bank, y_test=data.y_test, groups_bank=data.groups_bank,
        n_query_features=data.n_query_features, n_jobs=n_jobs,
    )
    bar = _Progress(len(order), progress)
    rows, koccs, estimators, hits, skipped = {}, {}, {}, {}, {}
    for name in order:
        entry = registry[name]
        grid = entry["grid"] if tune else None
        try:
            row, extras = run_method(
                entry["factory"], data.X_bank, data.X_test, grid=grid,
                cv=cv if grid or cross_validate else None, **common,
            )
        except ValueError as exc:  # e.g. a bank too small for the method
            skipped[name] = str(exc)
            if log is not None:
                log(f"{name} skipped: {exc}")
            bar.step(name)
            continue
        rows[name], koccs[name] = row, extras["k_occurrence"]
        estimators[name], hits[name] = extras["estimators"], extras["hits"]
        bar.step(name)
    reference = hits.get(REFERENCE)
    if reference is None and REFERENCE not in skipped:
        reference = run_method(_reference_factory(registry), data.X_bank, data.X_test,
                               **{**common, "n_jobs": None})[1]["hits"]
    for name, row in rows.items():
        row["reference"] = name == REFERENCE
        for direction in DIRECTIONS:
            a = hits[name][direction]
            b = None if reference is None else reference[direction]
            # No interval without cosine on the same queries (e.g. halves of
            # two widths, where cosine cannot run).
            ci = paired_bootstrap_ci(a, b, **BOOTSTRAP) if b is not None and a.shape == b.shape \
                else (np.nan,) * 3
            row[f"{direction} dR@1"] = ci[0]
            row[f"{direction} dR@1 CI"] = [ci[1], ci[2]]
    info = dict(data.info, tuned=bool(tune), cv=cv if tune or cross_validate else None,
                bootstrap=dict(BOOTSTRAP, reference=REFERENCE, over="test queries"))
    return {
        "dataset": data.description,
        "info": info,
        "rows": rows,
        "k_occurrence": koccs,
        "estimators": estimators,
        "skipped": skipped,
        "many_to_many": many_to_many(data.X_test, data.y_test, data.n_query_features),
    }


def _check_folds(cv, groups_bank):
    n_items = np.unique(groups_bank).size
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv must be an integer of at least 2 folds, got {cv!r}.")
    if n_items < 2 * cv:
        raise ValueError(
            f"the bank holds {n_items} items; {cv}-fold cross-validation over items "
            f"needs at least {2 * cv} (two per fold); use a larger bank or a smaller --cv."
        )


def best_method(result, direction="q2g"):
    """Name of the method with the best bank-CV R@1 in ``direction``."""
    scored = {n: r["cv R@1"][direction] for n, r in result["rows"].items() if "cv R@1" in r}
    if not scored:
        raise ValueError(
            "no method was cross-validated on the bank (run with cross_validate=True)."
        )
    return max(scored, key=lambda n: (scored[n], n == REFERENCE))


# ---------------------------------------------------------------- output
def default_metrics(result):
    """The table's default columns: R-P and mAP@R only where they differ from R@1."""
    return MANY_TO_MANY_METRICS if result["many_to_many"] else DEFAULT_METRICS


def _cell(row, key, direction=None):
    value = row[f"{direction} {key}"] if direction else row[key]
    if key == "dR@1":
        lo, hi = row[f"{direction} dR@1 CI"]
        if row.get("reference"):
            return "reference"
        if not np.isfinite(value):
            return "—"
        mark = "*" if lo > 0 or hi < 0 else " "
        return f"{value:+.1f} [{lo:+.1f}, {hi:+.1f}]{mark}"
    if value is None or not np.isfinite(value):
        return "—"
    return METRICS[key][1].format(value)


def _table_cells(result, metrics):
    per = [m for m in metrics if METRICS[m][2]]
    once = [m for m in metrics if not METRICS[m][2]]
    header = ["method"] + [METRICS[m][0] for _ in DIRECTIONS for m in per] + [
        METRICS[m][0] for m in once
    ]
    body = []
    for name, row in result["rows"].items():
        body.append([name] + [_cell(row, m, d) for d in DIRECTIONS for m in per]
                    + [_cell(row, m) for m in once])
    return per, once, header, body


def format_table(result, fmt="text", metrics=None):
    """The benchmark table as aligned text, Markdown or reStructuredText.

    Parameters
    ----------
    result : dict
        Of :func:`run_benchmark`.
    fmt : {"text", "md", "rst"}, default="text"
    metrics : sequence of str, default=None
        Keys of :data:`METRICS`; ``None``: :func:`default_metrics`.
    """
    metrics = default_metrics(result) if metrics is None else tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"metrics {unknown} are unknown; choose from {list(METRICS)}.")
    per, once, header, body = _table_cells(result, metrics)
    if fmt == "md":
        flat = ["method"] + [f"{d} {METRICS[m][0]}" for d in DIRECTIONS for m in per] + header[
            1 + len(per) * 2:
        ]
        lines = ["| " + " | ".join(flat) + " |", "|" + "|".join(["---"] + ["---:"] * (len(flat) - 1)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c.strip() for c in r) + " |" for r in body])
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    if fmt == "rst":
        flat = ["method"] + [f"{d} {METRICS[m][0]}" for d in DIRECTIONS for m in per] + header[
            1 + len(per) * 2:
        ]
        widths = [max(len(c), w) for c, w in zip(flat, widths)]
        rule = "  ".join("=" * w for w in widths)
        return "\n".join([rule, line(flat), rule] + [line(r) for r in body] + [rule])
    # Text: one group label over each direction's columns.
    groups = [""]
    for direction, label in zip(DIRECTIONS, (" q2g: queries -> gallery ",
                                             " g2q: gallery -> queries ")):
        span = sum(widths[1 + i + len(per) * DIRECTIONS.index(direction)] for i in range(len(per)))
        span += 2 * (len(per) - 1)
        groups.append(label.center(span, "-") if span >= len(label) + 2 else direction.center(span, "-"))
    top = (" " * widths[0] + "  " + "  ".join(groups[1:])).rstrip()
    rows = [top, line(header), "-" * len(line(header))] + [line(r) for r in body]
    return "\n".join(rows)


def format_params(result):
    """The chosen parameters of each method, one line per method."""
    lines = []
    for name, row in result["rows"].items():
        if "cv R@1" not in row:
            lines.append(f"{name:<18} defaults (no grid registered)")
            continue
        parts = []
        for direction in DIRECTIONS:
            params = row["params"][direction]
            text = ", ".join(f"{k.split('__')[-1]}={_short(v)}" for k, v in params.items())
            parts.append(f"{direction} {text or 'defaults'}")
        lines.append(f"{name:<18} " + "; ".join(parts))
    return "\n".join(lines)


def _short(value):
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def _json_value(value):
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return repr(value)


def result_rows(result):
    """Rows in the JSON schema of ``--output res.json``."""
    rows = []
    for name, row in result["rows"].items():
        out = {"method": name, "params": _json_value(row["params"])}
        for direction in DIRECTIONS:
            out[direction] = {
                METRICS[m][0]: _json_value(row[f"{direction} {m}"])
                for m in ("R@1", "R@5", "R@10", "MdR", "MnR", "R-P", "mAP@R")
            }
            out[direction]["ΔR@1"] = _json_value(row[f"{direction} dR@1"])
        out["delta_r1_ci"] = {d: _json_value(row[f"{d} dR@1 CI"]) for d in DIRECTIONS}
        out["skew@10"], out["delta_deg"] = _json_value(row["skew"]), _json_value(row["deg"])
        for key in ("gini", "hubs", "antihubs"):
            out[METRICS[key][0]] = _json_value(row[key])
        out["fit_s"], out["score_s"] = _json_value(row["fit"]), _json_value(row["score"])
        out["tune_s"] = _json_value(row["tune"])
        if "cv R@1" in row:
            out["cv_r1"] = _json_value(row["cv R@1"])
        rows.append(out)
    return rows


def write_output(result, path, metrics=None):
    """Write the result to ``path``: ``.json`` (every number), ``.csv`` or ``.md``."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"output must end in one of {OUTPUT_SUFFIXES}, got {path!r}.")
    if suffix == ".json":
        payload = {
            "dataset": _json_value(result["info"]),
            "rows": result_rows(result),
            "skipped": result["skipped"],
        }
        with open(path, "w") as fh:
            json.dump(payload, fh, indent=2, ensure_ascii=False)
    elif suffix == ".csv":
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            rows = result_rows(result)
            keys = [f"{d} {k}" for d in DIRECTIONS for k in rows[0][d]] if rows else []
            writer.writerow(["method"] + keys + ["q2g ΔR@1 low", "q2g ΔR@1 high",
                                                 "g2q ΔR@1 low", "g2q ΔR@1 high",
                                                 "skew@10", "delta_deg", "fit_s", "score_s",
                                                 "params"])
            for r in rows:
                writer.writerow(
                    [r["method"]] + [r[d][k] for d in DIRECTIONS for k in r[d]]
                    + r["delta_r1_ci"]["q2g"] + r["delta_r1_ci"]["g2q"]
                    + [r["skew@10"], r["delta_deg"], r["fit_s"], r["score_s"],
                       json.dumps(r["params"], ensure_ascii=False)]
                )
    else:
        with open(path, "w") as fh:
            fh.write(f"dataset: {result['dataset']}\n\n{format_table(result, 'md', metrics)}\n")


def plot_hubness(result, path, baseline=REFERENCE):
    """k-occurrence histograms of every method against the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["k_occurrence"])
    n = len(names)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    base = result["k_occurrence"].get(baseline)
    top = max(int(v.max()) for v in result["k_occurrence"].values()) + 1
    bins = np.arange(top + 1) - 0.5
    for ax, name in zip(axes.ravel(), names):
        if base is not None and name != baseline:
            ax.hist(base, bins=bins, alpha=0.4, label=baseline, color="grey")
        ax.hist(result["k_occurrence"][name], bins=bins, alpha=0.7, label=name)
        ax.set_title(f"{name}: skew {result['rows'][name]['skew']:.2f}", fontsize=9)
        ax.set_xlabel("N_10 (k-occurrence)", fontsize=8)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    """Entry point of ``python -m skxmr`` and the ``skxmr`` console script."""
    from ._cli import main as cli_main

    return cli_main(argv)
