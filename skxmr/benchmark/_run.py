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

The command line is in :mod:`skxmr.benchmark._cli`.
"""


import sys
import time

import numpy as np
from sklearn.utils import Bunch

from ._bootstrap import paired_bootstrap_ci
from .._pairs import split_pairs
from .._registry import registered_methods
from ._data import load_dataset, many_to_many
from ..metrics._table import Report
from ._table import (BOOTSTRAP, COLUMNS, DIRECTIONS, FAMILY_ORDER, HUBNESS, HUBNESS_K,
                     OLD_ROW_KEYS, RANKING, REFERENCE)
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
    """Tell every step where the halves of its input split.

    The first step of a Pipeline reads the raw pairs; each later step reads
    the previous step's output, whose split that step states
    (``_n_query_features_out``: an alignment's equal halves in the shared
    space, packed Gaussians' mean and covariance columns per half).
    """
    from sklearn.pipeline import Pipeline

    steps = [s for _, s in estimator.steps] if isinstance(estimator, Pipeline) else [estimator]
    for step in steps:
        if n_query_features is None:
            break
        if step in (None, "passthrough"):
            continue
        step.set_params(n_query_features=n_query_features)
        n_query_features = step._n_query_features_out(n_query_features) \
            if hasattr(step, "_n_query_features_out") else None
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
    k=HUBNESS_K,
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
        Keyed by the names of the benchmark's columns: ``"q2g recall@1"``
        ... per direction, ``"hubness_skewness"``, ``"gini_index"``,
        ``"hub_occurrence"``, ``"antihub_rate"`` (q2g hubness),
        ``"degeneration_score"``, ``"fit_time"``, ``"score_time"``,
        ``"tune_time"``, ``"params"`` ``{direction: {...}}`` and, when
        cross-validated, ``"q2g cv_recall"`` per direction. The keys of the
        past (``"q2g R@1"``, ``"skew"``, ...) still read, with a FutureWarning.
    extras : dict
        ``"hits"`` ``{direction: per-query 100 * hit@1}``, ``"k_occurrence"``,
        ``"estimators"`` ``{direction: fitted estimator}``.
    """
    from sklearn.model_selection import GridSearchCV, GroupKFold

    from ..metrics import (
        degeneration_score,
        hubness_report,
        k_occurrence,
        rank_of_relevant,
        retrieval_report,
    )
    from ..metrics import make_retrieval_scorer
    from ..metrics._scorer import paired_scores

    row = Report({"params": {}, "fit_time": 0.0, "score_time": 0.0, "tune_time": 0.0},
                 aliases=OLD_ROW_KEYS)
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
            row["tune_time"] += time.perf_counter() - t0
            row["fit_time"] += search.refit_time_
            est = search.best_estimator_
            row["params"][direction] = dict(search.best_params_)
            row[f"{direction} cv_recall"] = float(search.best_score_)
        else:
            t0 = time.perf_counter()
            est.fit(X_bank, y_bank)
            row["fit_time"] += time.perf_counter() - t0
            row["params"][direction] = {}
        t1 = time.perf_counter()
        S, items = paired_scores(est, X_test, y_test)
        row["score_time"] += time.perf_counter() - t1
        report = retrieval_report(S, items.relevance, ks=(1, 5, 10), directions=("q2g",))["q2g"]
        for name in RANKING:
            row[f"{direction} {name}"] = report.get(COLUMNS[name].header, float("nan"))
        extras["hits"][direction] = 100.0 * (rank_of_relevant(S, items.relevance) <= 1)
        extras["estimators"][direction] = est
        if direction == "q2g":
            kk = min(k, S.shape[1] - 1) if S.shape[1] > 1 else 1
            hubness = hubness_report(S, k=kk)  # one k-occurrence for all four
            row.update({name: hubness[COLUMNS[name].metric.name] for name in HUBNESS})
            row["degeneration_score"] = degeneration_score(ranked_gallery(est, X_test))
            extras["k_occurrence"] = k_occurrence(S, k=kk)
    return row, extras


def _reference_factory(registry):
    if REFERENCE in registry:
        return registry[REFERENCE]["factory"]
    from ..similarity import CosineSimilarity

    return lambda direction="q2g": CosineSimilarity(direction=direction)


class _Progress:
    """Progress on stderr: a one-line bar on a terminal, otherwise (a pipe,
    a log file) one line per step, so a long run is never silent."""

    def __init__(self, total, enabled):
        self.total, self.done, self.enabled = total, 0, enabled
        self.start = time.perf_counter()
        self.bar = enabled and sys.stderr.isatty()

    def step(self, label):
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        if not self.bar:
            sys.stderr.write(f"[{self.done}/{self.total}] {label} ({elapsed:.1f}s elapsed)\n")
            sys.stderr.flush()
            return
        width = 24
        filled = int(width * self.done / self.total)
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
        Report progress on stderr (a bar on a terminal, else a line per method).
    log : callable, default=None
        Receives a note for each method that cannot run on this data (its
        row is left out, with the reason in ``result["skipped"]``).

    Returns
    -------
    result : dict
        ``{"dataset": str, "info": dict, "rows": {name: row}, "k_occurrence":
        {name: ndarray}, "estimators": {name: {direction: estimator}},
        "skipped": {name: reason}, "many_to_many": bool}``; rows ordered by
        family, each with ``"q2g delta_recall"`` and its interval
        ``"q2g delta_recall CI"``.
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
            row[f"{direction} delta_recall"] = ci[0]
            row[f"{direction} delta_recall CI"] = [ci[1], ci[2]]
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
    key = f"{direction} cv_recall"
    scored = {n: r[key] for n, r in result["rows"].items() if key in r}
    if not scored:
        raise ValueError(
            "no method was cross-validated on the bank (run with cross_validate=True)."
        )
    return max(scored, key=lambda n: (scored[n], n == REFERENCE))

