"""Side-by-side benchmark of every registered method: ``skxmr benchmark``.

Each method registers its row (and its tuning grid) with
:func:`skxmr.register_method`; this module only runs what is registered.
On each of several random bank/test splits, for every method and both
directions it fits a fresh estimator on the bank pairs -- at its defaults,
or tuned on the bank pairs only (``GroupKFold`` over items) and refitted --
scores the test pairs once and reports R@K, MdR, MnR, R-Precision and
mAP@R, the difference of R@1 from cosine with a two-stage bootstrap
interval over splits and test queries, the k-occurrence skewness of the
ranking (hubness), the degeneration score Δ_deg of the gallery the final
step sees, and the fit and score times; a row holds the means over splits
and each split's own numbers. Tuning fits no more than the numbers need
(:mod:`skxmr.benchmark._search`).

The command line is in :mod:`skxmr.benchmark._cli`.
"""


import sys
import time

import numpy as np
from sklearn.utils import Bunch

from ._bootstrap import split_bootstrap_ci
from .._pairs import split_pairs
from .._registry import registered_methods
from ._data import counts_many_to_many, load_dataset, several_relevant
from ..model_selection import skip_unless_reliable
from ._search import SharedStepsSearch, StrengthSearch, blends, shares_steps
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
        if step in (None, "passthrough"):
            continue
        if not getattr(step, "_outputs_embeddings", True):
            break
        X = step.transform(X)
    return split_pairs(X, direction=final.direction, n_query_features=final.n_query_features).targets


def _can_skip(grid_dict):
    """Whether a dict of a grid replaces a Pipeline step by ``"passthrough"``."""
    return any("passthrough" in values for values in grid_dict.values())


def _same_space_only(grid):
    """``grid`` without its points that skip a step (``"passthrough"``): halves
    of two widths come from two spaces, where cosine without the step cannot
    run (such a point is for embeddings already in one space)."""
    return [g for g in grid if not _can_skip(g)] or None


def _skipping_only(grid):
    """The points of ``grid`` that skip a step (``"passthrough"``), or
    ``grid`` itself when none does."""
    return [g for g in grid if _can_skip(g)] or grid


def _smallest_fold(splitter, X, y, groups):
    """Items in the smallest validation fold of ``splitter``."""
    ids = np.arange(len(X)) if groups is None else np.asarray(groups)
    return min(np.unique(ids[val]).size for _, val in splitter.split(X, y, groups))


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
    cv : int or cross-validation splitter, default=None
        Number of ``GroupKFold`` folds over the bank items (or a splitter,
        e.g. :class:`~skxmr.model_selection.BankSplit`); ``None`` fits at
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
        cross-validated, ``"q2g cv_recall"`` per direction and ``"q2g
        cv_folds"`` (R@1 of each fold at the chosen parameters). The chosen
        point is the best, unless it fits a step that it does not beat
        skipping reliably, fold by fold
        (:func:`~skxmr.model_selection.skip_unless_reliable`); when a
        validation fold holds fewer than ``SMALL_SAMPLE`` (50) items, a grid
        that can skip a step is searched over its skipping points only (a
        fold that small decides by a handful of queries). A
        grid whose every point sets ``strength`` is searched by
        :class:`~skxmr.benchmark._search.StrengthSearch` (the same choice as
        ``GridSearchCV``, one fit per other grid point); a Pipeline whose
        steps before the scorer are the same in both directions (an
        alignment, the calibration's Gaussians), by
        :class:`~skxmr.benchmark._search.SharedStepsSearch` (those steps
        fitted once for both directions; ``"tune_time"`` is then their
        total). The keys of the past (``"q2g R@1"``, ``"skew"``, ...) still
        read, with a FutureWarning.
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
    if grid and n_query_features is not None:
        grid = _same_space_only(grid)
    estimators = {d: _set_split(factory(direction=d), n_query_features) for d in DIRECTIONS}
    shared = None
    if cv is not None:
        splitter = GroupKFold(n_splits=cv) if isinstance(cv, (int, np.integer)) else cv
        if grid and _smallest_fold(splitter, X_bank, y_bank, groups_bank) < SMALL_SAMPLE:
            # too few validation items to tell a fitted map from none
            grid = _skipping_only(grid)
        if shares_steps(estimators, grid):
            # the steps before the scorer fit once for both directions
            t0 = time.perf_counter()
            shared = SharedStepsSearch(estimators, grid, cv=splitter, n_jobs=n_jobs,
                                       refit=skip_unless_reliable)
            shared.fit(X_bank, y_bank, groups=groups_bank)
            row["tune_time"] += time.perf_counter() - t0
    for direction in DIRECTIONS:
        est = estimators[direction]
        if cv is not None:
            if shared is not None:
                search = shared.results_[direction]
            elif blends(est, grid):
                search = StrengthSearch(est, grid, cv=splitter, n_jobs=n_jobs)
            else:
                search = GridSearchCV(
                    est,
                    grid or [{}],
                    scoring=make_retrieval_scorer("recall", k=1),
                    cv=splitter,
                    n_jobs=n_jobs,
                    error_score="raise",
                    refit=skip_unless_reliable,
                )
            if shared is None:
                t0 = time.perf_counter()
                search.fit(X_bank, y_bank, groups=groups_bank)
                row["tune_time"] += time.perf_counter() - t0
            row["fit_time"] += search.refit_time_
            est = search.best_estimator_
            row["params"][direction] = dict(search.best_params_)
            row[f"{direction} cv_recall"] = float(
                search.cv_results_["mean_test_score"][search.best_index_])
            row[f"{direction} cv_folds"] = [
                float(search.cv_results_[f"split{i}_test_score"][search.best_index_])
                for i in range(search.n_splits_)
            ]
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
    n_splits=5,
    random_state=0,
    data_home=None,
    tune=False,
    cv=3,
    cross_validate=False,
    n_jobs=None,
    progress=False,
    log=None,
):
    """Run every registered method on repeated bank/test splits of one dataset.

    Parameters
    ----------
    dataset : str or sklearn.utils.Bunch, default="coco-clip"
        A name for :func:`load_dataset`, or the Bunch of :func:`load_files`
        or :func:`load_dataset` (its ``splits``; a Bunch without them is one
        split).
    methods : str or list of str, default=None
        Registered names to run (a string is one name); ``None`` runs all.
    n_pairs : int, default=1000
        Size of the synthetic problem.
    n_splits : int, default=5
        Random bank/test splits of a named dataset (seeds ``random_state``,
        ``random_state + 1``, ...); a given Bunch brings its own.
    random_state : int, default=0
    data_home : str, default=None
    tune : bool, default=False
        Search each method's registered grid on the bank pairs of each split
        (``GroupKFold`` over items, ``cv`` folds, scored by R@1 in the
        method's direction; a fitted step is skipped unless it beats
        skipping it reliably fold by fold, and always when a validation
        fold holds fewer than 50 items), refit on that bank,
        then score that split's test pairs once.
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
        row is left out, with the reason in ``result["skipped"]``) and the
        small-sample warnings (without it they are ``UserWarning``).

    Returns
    -------
    result : dict
        ``{"dataset": str, "info": dict, "rows": {name: row}, "k_occurrence":
        {name: ndarray}, "estimators": {name: {direction: estimator}},
        "skipped": {name: reason}, "many_to_many": bool, "relevance":
        {direction: [queries with several relevant items, queries]},
        "reference_cv": [{direction: [R@1 per fold]} or None per split]}``;
        rows ordered by family. A row holds the mean over splits of every
        number, ``"q2g delta_recall"`` with its interval ``"q2g delta_recall
        CI"`` over splits and test queries (:func:`split_bootstrap_ci`),
        ``"q2g gains"`` and ``"q2g losses"`` (splits whose own paired
        interval is above or below 0), ``"transductive"`` and ``"splits"``
        (each split's numbers). Estimators and k-occurrences are those of
        the first split.
    """
    registry = registered_methods()
    order = _select(methods, registry)
    data = dataset if isinstance(dataset, Bunch) else load_dataset(
        dataset, n_pairs=n_pairs, random_state=random_state, n_splits=n_splits,
        data_home=data_home,
    )
    splits = data.get("splits") or [Bunch(
        X_bank=data.X_bank, X_test=data.X_test, y_bank=data.y_bank, y_test=data.y_test,
        groups_bank=data.groups_bank, seed=data.info.get("random_state"),
    )]
    if tune or cross_validate:
        for split in splits:
            _check_folds(cv, split.groups_bank)
    bar = _Progress(len(order) * len(splits), progress)
    runs = {name: [] for name in order}  # name -> [(row, extras)], one per split
    skipped, reference_runs, no_reference = {}, [], False
    for split in splits:
        common = dict(
            y_bank=split.y_bank, y_test=split.y_test, groups_bank=split.groups_bank,
            n_query_features=data.n_query_features, n_jobs=n_jobs,
        )
        for name in order:
            if name in skipped:
                bar.step(name)
                continue
            entry = registry[name]
            grid = entry["grid"] if tune else None
            try:
                runs[name].append(run_method(
                    entry["factory"], split.X_bank, split.X_test, grid=grid,
                    cv=cv if grid or cross_validate else None, **common,
                ))
            except ValueError as exc:  # e.g. a bank too small for the method
                skipped[name] = str(exc)
                if log is not None:
                    log(f"{name} skipped: {exc}")
            bar.step(name)
        if REFERENCE in skipped or no_reference:
            continue
        if REFERENCE in order:
            reference_runs.append(runs[REFERENCE][-1])
            continue
        try:
            reference_runs.append(run_method(
                _reference_factory(registry), split.X_bank, split.X_test,
                cv=cv if cross_validate else None, **{**common, "n_jobs": None},
            ))
        except ValueError:  # e.g. halves of two widths: no ΔR@1 column
            no_reference = True
    rows = {name: _aggregate(name, registry[name], runs[name], reference_runs, splits)
            for name in order if name not in skipped}
    relevance = several_relevant(splits[0].X_test, splits[0].y_test, data.n_query_features)
    if rows:  # nothing to warn about when no method could run
        _warn_small_sample(relevance, log)
    info = dict(data.info, tuned=bool(tune), cv=cv if tune or cross_validate else None,
                n_splits=len(splits), seeds=[split.seed for split in splits],
                bootstrap=dict(BOOTSTRAP, reference=REFERENCE,
                               over="test queries" if len(splits) == 1
                               else "splits and, within each, test queries"))
    return {
        "dataset": data.description,
        "info": info,
        "rows": rows,
        "k_occurrence": {name: runs[name][0][1]["k_occurrence"] for name in rows},
        "estimators": {name: runs[name][0][1]["estimators"] for name in rows},
        "skipped": skipped,
        "many_to_many": counts_many_to_many(relevance),
        "relevance": relevance,
        "reference_cv": [_cv_folds(r) for r, _ in reference_runs],
    }


def _cv_folds(row):
    """``{direction: [R@1 of each bank fold]}`` of a cross-validated row, else None."""
    if any(f"{d} cv_folds" not in row for d in DIRECTIONS):
        return None
    return {d: row[f"{d} cv_folds"] for d in DIRECTIONS}


#: Below this many test queries the bootstrap intervals are flagged unreliable
#: (their coverage drops to 87-92 % at 30 queries).
SMALL_SAMPLE = 50


def _aggregate(name, entry, runs, reference_runs, splits):
    """One table row from a method's per-split runs: means, intervals, counts."""
    first = runs[0][0]
    numbers = [key for key, value in first.items()
               if isinstance(value, (float, np.floating)) and "delta_recall" not in key]
    row = Report({key: float(np.mean([r[key] for r, _ in runs])) for key in numbers},
                 aliases=OLD_ROW_KEYS)
    row["reference"] = name == REFERENCE
    row["transductive"] = bool(entry.get("transductive", False))
    row["params"] = {d: _most_common([r["params"][d] for r, _ in runs]) for d in DIRECTIONS}
    per_split = [dict({key: r[key] for key in numbers}, seed=split.seed, params=r["params"])
                 for (r, _), split in zip(runs, splits)]
    for d in DIRECTIONS:
        if all(f"{d} cv_folds" in r for r, _ in runs):
            row[f"{d} cv_folds"] = [r[f"{d} cv_folds"] for r, _ in runs]
    for direction in DIRECTIONS:
        delta_key = f"{direction} delta_recall"
        deltas = []
        for (_, extras), ref, split_row in zip(runs, reference_runs, per_split):
            a, b = extras["hits"][direction], ref[1]["hits"][direction]
            if a.shape != b.shape:
                break  # no cosine on the same queries (e.g. halves of two widths)
            d, lo, hi = _delta_ci([a - b])
            split_row[delta_key], split_row[f"{delta_key} CI"] = d, [lo, hi]
            deltas.append(a - b)
        if not deltas or len(deltas) < len(runs):
            row[delta_key], row[f"{delta_key} CI"] = np.nan, [np.nan, np.nan]
            row[f"{direction} gains"] = row[f"{direction} losses"] = None
            continue
        # one split: its own interval is the row's (the same bootstrap)
        d, lo, hi = ((per_split[0][delta_key], *per_split[0][f"{delta_key} CI"])
                     if len(deltas) == 1 else _delta_ci(deltas))
        row[delta_key], row[f"{delta_key} CI"] = d, [lo, hi]
        row[f"{direction} gains"] = sum(s[f"{delta_key} CI"][0] > 0 for s in per_split)
        row[f"{direction} losses"] = sum(s[f"{delta_key} CI"][1] < 0 for s in per_split)
    row["splits"] = per_split
    return row


def _delta_ci(deltas):
    """Mean difference and its interval; none from a single query (nothing to resample)."""
    if len(deltas) == 1 and deltas[0].size < 2:
        return float(np.mean(deltas[0])), np.nan, np.nan
    return split_bootstrap_ci(deltas, **BOOTSTRAP)


def _most_common(params):
    """The parameters chosen in most splits (the first split's on a tie)."""
    keys = [repr(sorted(p.items())) for p in params]
    best = max(range(len(keys)), key=lambda i: (keys.count(keys[i]), -i))
    return params[best]


def _warn_small_sample(relevance, log):
    n = min(count for _, count in relevance.values())
    if n >= SMALL_SAMPLE:
        return
    msg = (f"only {n} test queries: no interval from a single query" if n < 2 else
           f"only {n} test queries (fewer than {SMALL_SAMPLE}): the bootstrap intervals are "
           "unreliable (they cover the true difference less often than stated)")
    if log is not None:
        log(msg)
    else:
        import warnings

        warnings.warn(msg, UserWarning, stacklevel=3)


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
    """Name of the method ``--save-best`` saves for ``direction``.

    See :func:`choose_best`: the method whose bank-CV gain over cosine is
    the largest among those that beat it reliably, else ``"Cosine"``.
    """
    return choose_best(result, direction).name


def choose_best(result, direction="q2g"):
    """The pipeline to serve in ``direction``, chosen by bank validation.

    Every candidate was cross-validated on the bank of each split with the
    same folds as cosine, so its gain over cosine is known fold by fold.
    A method is *reliable* when the mean of those fold gains minus twice
    their standard error is above 0; the reliable method with the largest
    mean gain wins. Transductive methods (statistics of the whole batch of
    test queries) are never candidates: a saved pipeline serves one query
    at a time. When several splits were run, a method whose mean ΔR@1 on
    the test splits is below 0 is vetoed as well (the held-out verdict
    overrides the bank's). Without a reliable candidate the answer is
    cosine, which re-scores nothing.

    Parameters
    ----------
    result : dict
        Of :func:`run_benchmark` with ``cross_validate=True``.
    direction : {"q2g", "g2q"}, default="q2g"

    Returns
    -------
    choice : sklearn.utils.Bunch
        ``name``; ``candidate`` (the best non-transductive method by mean
        bank-CV gain, reliable or not); ``gain`` and ``stderr`` (its mean
        fold gain over cosine and the standard error, R@1 points);
        ``n_folds``; ``reason`` (one sentence).
    """
    reference = result.get("reference_cv") or []
    if not reference or any(r is None for r in reference):
        raise ValueError(
            "no method was cross-validated on the bank (run with cross_validate=True)."
        )
    ref = np.concatenate([np.asarray(r[direction]) for r in reference])
    stats = {}
    for name, row in result["rows"].items():
        folds = row.get(f"{direction} cv_folds")
        if name == REFERENCE or row.get("transductive") or folds is None:
            continue
        gain = np.concatenate([np.asarray(f) for f in folds]) - ref
        stderr = gain.std(ddof=1) / np.sqrt(gain.size) if gain.size > 1 else np.inf
        stats[name] = (float(gain.mean()), float(stderr), int(gain.size))
    if not stats:
        return Bunch(name=REFERENCE, candidate=None, gain=np.nan, stderr=np.nan, n_folds=0,
                     reason="no inductive method was cross-validated; cosine re-scores nothing")
    candidate = max(stats, key=lambda n: stats[n][0])
    several = result["info"].get("n_splits", 1) > 1

    def test_delta(n):
        return result["rows"][n][f"{direction} delta_recall"]

    reliable = {n: st for n, st in stats.items()
                if st[0] - 2 * st[1] > 0 and not (several and test_delta(n) < 0)}
    if not reliable:
        gain, stderr, n_folds = stats[candidate]
        held_out = f", test ΔR@1 {test_delta(candidate):+.1f}" if several else ""
        return Bunch(
            name=REFERENCE, candidate=candidate, gain=gain, stderr=stderr, n_folds=n_folds,
            reason=(f"no method beat cosine reliably in bank validation (best: {candidate}, "
                    f"{gain:+.1f} ± {2 * stderr:.1f} R@1 over {n_folds} folds{held_out}); "
                    "cosine re-scores nothing"),
        )
    name = max(reliable, key=lambda n: reliable[n][0])
    gain, stderr, n_folds = reliable[name]
    return Bunch(name=name, candidate=candidate, gain=gain, stderr=stderr, n_folds=n_folds,
                 reason=f"{gain:+.1f} ± {2 * stderr:.1f} R@1 over cosine in {n_folds} bank folds")
