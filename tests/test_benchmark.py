"""The main job: ``skxmr benchmark`` (also ``python -m skxmr benchmark``)."""

import csv
import json
import subprocess
import sys

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold

import skxmr
from skxmr import _registry
from skxmr.benchmark._bootstrap import paired_bootstrap_ci, split_bootstrap_ci
from skxmr.benchmark import (
    COLUMNS,
    best_method,
    choose_best,
    format_table,
    load_dataset,
    load_files,
    main,
    run_benchmark,
)
from skxmr.datasets import load_coco_clip
from skxmr.metrics import make_retrieval_scorer, rank_of_relevant, recall_at_k
from tests.conftest import make_pairs

ROW_KEYS = {f"{d} {m}" for d in ("q2g", "g2q")
            for m in ("recall@1", "recall@5", "recall@10", "median_rank", "mean_rank",
                      "r_precision", "map_at_r", "delta_recall", "delta_recall CI")}


@pytest.fixture(scope="module")
def coco_files(tmp_path_factory):
    """The bundled COCO pairs as a user's own files."""
    root = tmp_path_factory.mktemp("own")
    coco = load_coco_clip()
    np.save(root / "text.npy", coco.queries)
    np.save(root / "image.npy", coco.gallery)
    np.savez(root / "both.npz", text=coco.queries, image=coco.gallery)
    return root, coco


def run_cli(capsys, *argv):
    """The command line, on one bank/test split unless ``--n-splits`` is given."""
    splits = () if "--n-splits" in argv or "--list" in argv else ("--n-splits", "1")
    code = main(["benchmark", "--no-progress", *map(str, argv), *splits])
    out = capsys.readouterr()
    return code, out.out, out.err


# ----------------------------------------------------------------- rows
def test_every_registered_method_has_a_row():
    result = run_benchmark("synthetic", n_pairs=120, n_splits=1)
    assert set(result["rows"]) == set(skxmr.registered_methods())
    names = list(result["rows"])
    assert names[0] == "Cosine"  # the reference row first
    for name, row in result["rows"].items():
        assert ROW_KEYS <= set(row), name
        assert all(np.isfinite(row[k]) for k in ROW_KEYS if not k.endswith("CI")), name
        assert 0 <= row["q2g recall@1"] <= row["q2g recall@5"] <= row["q2g recall@10"] <= 100
        assert row["q2g median_rank"] >= 1
        assert result["k_occurrence"][name].sum() == 60 * 10  # 60 test queries, k=10
    assert result["skipped"] == {}


def test_rows_match_the_metrics():
    """The table's numbers are the metrics of the fitted method, nothing else."""
    data = load_dataset("synthetic", n_pairs=200)
    result = run_benchmark(data, methods=["Cosine", "SN"])
    hits = {}
    for name, est in (("Cosine", skxmr.CosineSimilarity()), ("SN", skxmr.SinkhornNormalizer())):
        est.fit(data.X_bank)
        items = skxmr.split_pairs(data.X_test)
        S = est.decision_function(data.X_test)
        assert result["rows"][name]["q2g recall@1"] == pytest.approx(recall_at_k(S, items.relevance, 1))
        hits[name] = 100.0 * (rank_of_relevant(S, items.relevance) <= 1)
    # ΔR@1 and its interval: the paired bootstrap of the per-query hits.
    delta, lo, hi = paired_bootstrap_ci(hits["SN"], hits["Cosine"])
    row = result["rows"]["SN"]
    assert row["q2g delta_recall"] == pytest.approx(delta)
    assert row["q2g delta_recall"] == pytest.approx(row["q2g recall@1"] - result["rows"]["Cosine"]["q2g recall@1"])
    assert row["q2g delta_recall CI"] == pytest.approx([lo, hi])
    assert result["rows"]["Cosine"]["q2g delta_recall CI"] == [0.0, 0.0]


def test_default_is_the_bundled_coco_offline(tmp_path, monkeypatch):
    """No cache, no SKXMR_DATA, no network: the default table is on real COCO."""
    monkeypatch.delenv("SKXMR_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SKXMR_DATA_URL", "http://127.0.0.1:9/")  # nothing listens there
    result = run_benchmark(methods=["Cosine", "IS"], n_splits=1)
    assert "COCO" in result["dataset"] and "bank 250 pairs" in result["dataset"]
    assert result["rows"]["Cosine"]["q2g recall@1"] == pytest.approx(60.0)
    assert result["rows"]["IS"]["q2g recall@1"] > result["rows"]["Cosine"]["q2g recall@1"]
    assert not (tmp_path / "home").exists()


def test_msrvtt_table_or_skip():
    from skxmr.datasets import fetch_msrvtt_videoclip
    from tests.conftest import fetch_or_skip

    fetch_or_skip(fetch_msrvtt_videoclip)
    result = run_benchmark("msrvtt-videoclip", methods="Cosine", n_splits=1)
    assert "MSR-VTT" in result["dataset"] and "bank 50 pairs" in result["dataset"]


def test_methods_string_is_one_name():
    result = run_benchmark("synthetic", n_pairs=60, methods="Cosine", n_splits=1)
    assert list(result["rows"]) == ["Cosine"]
    with pytest.raises(ValueError, match="not registered"):
        run_benchmark("synthetic", n_pairs=60, methods="Cos")


@pytest.mark.parametrize("factory", [None, 3, "Cosine", skxmr.CosineSimilarity()])
def test_register_method_refuses_non_callables(factory):
    before = skxmr.registered_methods()
    with pytest.raises(TypeError, match="callable"):
        skxmr.register_method("not-callable", factory, family="baseline")
    assert skxmr.registered_methods() == before  # the registry is untouched


@pytest.mark.parametrize(
    "grid", [{"temperature": 0.1}, {"temperature": []}, {}, [], "temperature", {3: [1]}]
)
def test_register_method_refuses_bad_grids(grid):
    before = skxmr.registered_methods()
    with pytest.raises(TypeError, match="grid"):
        skxmr.register_method("bad-grid", lambda direction="q2g": None, family="x", grid=grid)
    assert skxmr.registered_methods() == before


def test_every_grid_holds_the_default_and_valid_parameters():
    """A registered grid can keep the defaults, and names real parameters."""
    for name, entry in skxmr.registered_methods().items():
        if entry["grid"] is None:
            continue
        est = entry["factory"](direction="q2g")
        params = est.get_params()
        for grid in entry["grid"]:
            for key, values in grid.items():
                assert key in params, (name, key)
                default = params[key]
                if hasattr(default, "fit"):
                    continue  # a Pipeline step replaced ("passthrough"): another dict keeps it
                if default is not None:
                    assert default in values, (name, key, default, values)
                est.set_params(**{key: values[0]})


# ----------------------------------------------------------------- tuning
class _Recorder(skxmr.CosineSimilarity):
    """Cosine that records the rows of every fit (to prove test rows stay out)."""

    seen = []

    def __init__(self, direction="q2g", n_query_features=None, n_jobs=None, knob=0):
        super().__init__(direction=direction, n_query_features=n_query_features, n_jobs=n_jobs)
        self.knob = knob

    def fit(self, X, y=None):
        _Recorder.seen.append(np.asarray(X).copy())
        return super().fit(X, y)


@pytest.fixture
def recorder():
    _Recorder.seen = []
    skxmr.register_method(
        "Recorder", lambda direction="q2g": _Recorder(direction=direction),
        family="baseline", grid={"knob": [0, 1]},
    )
    try:
        yield _Recorder
    finally:
        del _registry._METHODS["Recorder"]


def test_tune_searches_the_bank_only_and_scores_the_test_once(recorder):
    data = load_dataset("synthetic", n_pairs=90)
    result = run_benchmark(data, methods=["Recorder"], tune=True, cv=3)
    bank = {r.tobytes() for r in data.X_bank}
    test = {r.tobytes() for r in data.X_test}
    # 2 grid points x 3 folds + 1 refit, per direction; every fit on bank rows only.
    assert len(recorder.seen) == 2 * (2 * 3 + 1)
    for X in recorder.seen:
        rows = {r.tobytes() for r in X}
        assert rows <= bank and not rows & test
    row = result["rows"]["Recorder"]
    assert set(row["params"]["q2g"]) == {"knob"} and {"q2g cv_recall", "g2q cv_recall"} <= set(row)
    assert result["info"]["tuned"] and result["info"]["cv"] == 3


@pytest.mark.parametrize("method", ["SN", "Procrustes"])
def test_tune_equals_grid_search_by_hand(method):
    """The chosen parameters and the test R@1 are GridSearchCV's on the bank,
    with the reliable-gain choice (SN: StrengthSearch's one fit per
    temperature; Procrustes: SharedStepsSearch's one fit for both directions)."""
    from skxmr.model_selection import skip_unless_reliable

    data = load_dataset("coco-clip")
    result = run_benchmark(data, methods=[method], tune=True)
    entry = skxmr.registered_methods()[method]
    for direction in ("q2g", "g2q"):
        search = GridSearchCV(
            entry["factory"](direction=direction), entry["grid"],
            scoring=make_retrieval_scorer("recall", k=1), cv=GroupKFold(3),
            refit=skip_unless_reliable,
        ).fit(data.X_bank, groups=data.groups_bank)
        row = result["rows"][method]
        assert row["params"][direction] == search.best_params_
        best = search.cv_results_["mean_test_score"][search.best_index_]
        assert row[f"{direction} cv_recall"] == pytest.approx(best)
        S = search.best_estimator_.decision_function(data.X_test)
        R = skxmr.split_pairs(data.X_test, direction=direction).relevance
        assert row[f"{direction} recall@1"] == pytest.approx(recall_at_k(S, R, 1))


@pytest.mark.parametrize("method", ["CS alignment", "Calibration (W2)", "Ridge map"])
def test_shared_steps_search_equals_grid_search_per_direction(method):
    """SharedStepsSearch (the leading steps fitted once for both directions,
    and once for grid points that differ in the final step only) gives
    GridSearchCV's fold scores, choice and refitted scores in each direction."""
    from sklearn.base import clone

    from skxmr.benchmark._search import SharedStepsSearch, shares_steps
    from skxmr.model_selection import one_standard_error

    X, X_test = make_pairs(60, 6, seed=3), make_pairs(30, 6, seed=4)
    groups = np.arange(len(X))
    entry = skxmr.registered_methods()[method]
    grid = entry["grid"]
    if method == "CS alignment":  # a short, varied grid: one trained point, one skip
        grid = [{"cauchyschwarzalignment__temperature": [0.1, 0.5],
                 "cauchyschwarzalignment__n_components": [4],
                 "cauchyschwarzalignment__max_iter": [5],
                 "cauchyschwarzalignment__tol": [None]},
                {"cauchyschwarzalignment": ["passthrough"]}]
    estimators = {d: entry["factory"](direction=d) for d in ("q2g", "g2q")}
    assert shares_steps(estimators, grid)
    shared = SharedStepsSearch(estimators, grid, cv=GroupKFold(3),
                               refit=one_standard_error).fit(X, groups=groups)
    for direction, est in estimators.items():
        search = GridSearchCV(clone(est), grid, scoring=make_retrieval_scorer("recall", k=1),
                              cv=GroupKFold(3), refit=one_standard_error).fit(X, groups=groups)
        got = shared.results_[direction]
        for j in range(3):
            np.testing.assert_array_equal(got.cv_results_[f"split{j}_test_score"],
                                          search.cv_results_[f"split{j}_test_score"])
        assert got.best_params_ == search.best_params_ and got.n_splits_ == 3
        np.testing.assert_array_equal(got.best_estimator_.decision_function(X_test),
                                      search.best_estimator_.decision_function(X_test))
    first, second = (shared.results_[d].best_estimator_ for d in ("q2g", "g2q"))
    assert first[0] is not second[0] or first[0] == "passthrough"  # no step shared


def test_shared_steps_fit_once_per_fold_and_setting(monkeypatch):
    """The alignment of a grid point is fitted once per fold for both
    directions (plus the refit), not once per direction, and a point that
    spells the same setting again (a default in another dict) shares it."""
    from skxmr.alignment import RidgeAlignment

    calls = []
    fit = RidgeAlignment.fit
    monkeypatch.setattr(RidgeAlignment, "fit",
                        lambda self, X, y=None: calls.append(len(X)) or fit(self, X, y))
    X = make_pairs(60, 6, seed=3)
    grid = [{"ridgealignment__alpha": [0.1, 1.0]},
            {"ridgealignment__map_to": ["gallery"]}]  # alpha=1, "gallery": the defaults
    run_method = __import__("skxmr.benchmark._run", fromlist=["run_method"]).run_method
    run_method(skxmr.registered_methods()["Ridge map"]["factory"], X[:40], X[40:],
               groups_bank=np.arange(40), grid=grid, cv=2)
    # 2 points x 2 folds of 20 rows, then the refit on 40 rows (the same point chosen
    # in both directions, or once each)
    assert calls.count(20) == 4 and 1 <= calls.count(40) <= 2


def test_shared_steps_search_in_worker_processes_equals_serial():
    """The folds run as joblib tasks (module-level function, data as
    arguments): two processes give the serial numbers."""
    from skxmr.benchmark._search import SharedStepsSearch
    from skxmr.model_selection import skip_unless_reliable

    X = make_pairs(60, 6, seed=3)
    entry = skxmr.registered_methods()["Ridge map"]
    results = [
        SharedStepsSearch({d: entry["factory"](direction=d) for d in ("q2g", "g2q")},
                          entry["grid"], cv=GroupKFold(3), refit=skip_unless_reliable,
                          n_jobs=n_jobs).fit(X, groups=np.arange(60)).results_
        for n_jobs in (None, 2)
    ]
    for d in ("q2g", "g2q"):
        np.testing.assert_array_equal(results[0][d].cv_results_["mean_test_score"],
                                      results[1][d].cv_results_["mean_test_score"])
        assert results[0][d].best_params_ == results[1][d].best_params_


def test_steps_with_a_direction_are_not_shared():
    """InvGC convolves by direction: each direction is searched on its own."""
    from skxmr.benchmark._search import shares_steps

    factory = skxmr.registered_methods()["InvGC"]["factory"]
    assert not shares_steps({d: factory(direction=d) for d in ("q2g", "g2q")}, None)
    sn = skxmr.registered_methods()["SN"]["factory"]
    assert not shares_steps({d: sn(direction=d) for d in ("q2g", "g2q")}, None)


def test_methods_without_grid_run_at_defaults_when_tuning():
    result = run_benchmark("synthetic", n_pairs=60, methods=["Cosine", "IS"], tune=True,
                           n_splits=1)
    assert "q2g cv_recall" not in result["rows"]["Cosine"]  # nothing to choose: no search
    assert "q2g cv_recall" in result["rows"]["IS"]


def test_save_best_is_the_reliable_best_and_scores_new_pairs(tmp_path, capsys):
    path = tmp_path / "best.joblib"
    code, out, err = run_cli(capsys, "--methods", "Cosine,CSLS", "--n-splits", 2,
                             "--save-best", path)
    assert code == 0, err
    result = run_benchmark(methods=["Cosine", "CSLS"], n_splits=2, cross_validate=True)
    choice = choose_best(result)
    assert choice.name == best_method(result) == "CSLS"  # about +7 R@1 on COCO, every fold
    assert choice.gain - 2 * choice.stderr > 0 and choice.n_folds == 2 * 3
    assert "saved CSLS (q2g" in out and "R@1 over cosine in 6 bank folds" in out
    est = joblib.load(path)
    coco = load_coco_clip()
    X_new = skxmr.pair(coco.queries[:20], coco.gallery[:20])
    expected = result["estimators"]["CSLS"]["q2g"].decision_function(X_new)
    np.testing.assert_allclose(est.decision_function(X_new), expected)
    # g2q picks by the other direction's bank CV.
    code, out, _ = run_cli(capsys, "--methods", "Cosine,CSLS", "--save-best", path,
                           "--direction", "g2q")
    assert code == 0 and "(g2q, fitted on the bank" in out
    assert joblib.load(path).direction == "g2q"


@pytest.fixture
def no_op():
    """A re-scoring method that changes nothing (SN at strength 0)."""
    skxmr.register_method(
        "No-op", lambda direction="q2g": skxmr.SinkhornNormalizer(strength=0.0,
                                                                  direction=direction),
        family="hubness",
    )
    try:
        yield "No-op"
    finally:
        del _registry._METHODS["No-op"]


def test_save_best_picks_cosine_without_a_reliable_gain_and_never_transductive(
        no_op, tmp_path, capsys):
    # Ties with cosine on every fold: no reliable gain, cosine is saved, and said so.
    result = run_benchmark(methods=["Cosine", no_op], n_splits=2, cross_validate=True)
    choice = choose_best(result)
    assert choice.name == "Cosine" and choice.candidate == no_op and choice.gain == 0
    path = tmp_path / "best.joblib"
    code, out, err = run_cli(capsys, "--methods", f"Cosine,{no_op},DSL", "--save-best", path)
    assert code == 0, err
    assert "saved cosine (no re-scoring)" in out and "no method beat cosine reliably" in out
    assert isinstance(joblib.load(path), skxmr.CosineSimilarity)
    # DSL (transductive) gains most on the bank folds, yet is no candidate.
    result = run_benchmark(methods=["Cosine", "DSL"], n_splits=1, cross_validate=True)
    rows = result["rows"]
    assert rows["DSL"]["q2g cv_recall"] > rows["Cosine"]["q2g cv_recall"]
    assert choose_best(result).name == "Cosine" and choose_best(result).candidate is None


def test_save_best_vetoes_a_test_loss_over_splits():
    result = run_benchmark(methods=["Cosine", "CSLS"], n_splits=2, cross_validate=True)
    assert choose_best(result).name == "CSLS"
    result["rows"]["CSLS"]["q2g delta_recall"] = -0.5  # as if it lost on the test splits
    choice = choose_best(result)
    assert choice.name == "Cosine" and "test ΔR@1 -0.5" in choice.reason
    with pytest.raises(ValueError, match="cross_validate=True"):
        choose_best(run_benchmark(methods=["Cosine", "CSLS"], n_splits=1))


def test_cv_needs_enough_bank_items():
    with pytest.raises(ValueError, match="at least 6"):
        run_benchmark("synthetic", n_pairs=10, methods="IS", tune=True, cv=3, n_splits=1)


# -------------------------------------------------------------- own files
def test_own_files_npy_npz_pt_give_the_builtin_table(coco_files, capsys):
    root, coco = coco_files
    torch = pytest.importorskip("torch")
    torch.save(torch.from_numpy(coco.queries), root / "text.pt")
    torch.save({"image": torch.from_numpy(coco.gallery)}, root / "image.pt")
    builtin = run_benchmark(methods=["Cosine", "IS"], n_splits=1)
    for q, g, keys in [
        ("text.npy", "image.npy", {}),
        ("both.npz", "both.npz", {"queries_key": "text", "gallery_key": "image"}),
        ("text.pt", "image.pt", {"gallery_key": "image"}),
    ]:
        data = load_files(root / q, root / g, **keys)
        result = run_benchmark(data, methods=["Cosine", "IS"])
        for name in ("Cosine", "IS"):
            assert result["rows"][name]["q2g recall@1"] == builtin["rows"][name]["q2g recall@1"], (q, name)
    code, out, err = run_cli(capsys, "--queries", root / "both.npz", "--queries-key", "text",
                             "--gallery", root / "both.npz", "--gallery-key", "image",
                             "--methods", "Cosine")
    assert code == 0, err
    assert "60.0" in out and "reference" in out


def test_own_files_duplicates_labels_and_explicit_banks(tmp_path, capsys):
    """Five captions per image: the image is one item, the split keeps it on one
    side, relevance is many-to-many and the table shows R-P and mAP@R."""
    data = skxmr.datasets.make_retrieval_problem(60, 16, captions_per_item=3, random_state=0)
    Q, G = data.queries, data.gallery[data.groups]
    np.save(tmp_path / "q.npy", Q)
    np.save(tmp_path / "g.npy", G)
    loaded = load_files(tmp_path / "q.npy", tmp_path / "g.npy", random_state=1)
    bank_items = {r[16:].tobytes() for r in loaded.X_bank}
    test_items = {r[16:].tobytes() for r in loaded.X_test}
    assert not bank_items & test_items and len(bank_items) == 30
    assert loaded.X_bank.shape[0] == 90  # whole groups of three rows
    result = run_benchmark(loaded, methods=["Cosine"])
    assert result["many_to_many"]
    assert "R-P" in format_table(result) and "mAP@R" in format_table(result)
    # Labels: relevance = same label.
    y = data.groups % 4
    np.save(tmp_path / "y.npy", y)
    labelled = load_files(tmp_path / "q.npy", tmp_path / "g.npy", labels=tmp_path / "y.npy")
    np.testing.assert_array_equal(np.unique(labelled.y_test), np.arange(4))
    r = run_benchmark(labelled, methods=["Cosine"])["rows"]["Cosine"]
    assert r["q2g r_precision"] < r["q2g recall@1"]  # several relevant items: R-P differs from R@1
    # Explicit banks: the given files are the test set.
    np.save(tmp_path / "bq.npy", Q[:30])
    np.save(tmp_path / "bg.npy", G[:30])
    code, out, err = run_cli(capsys, "--queries", tmp_path / "q.npy", "--gallery",
                             tmp_path / "g.npy", "--bank-queries", tmp_path / "bq.npy",
                             "--bank-gallery", tmp_path / "bg.npy", "--methods", "Cosine")
    assert code == 0, err
    assert "bank 30 pairs, test 180 pairs" in out


def test_own_files_of_two_widths_reach_the_alignment(tmp_path):
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((60, 6)).astype(np.float32)
    G = np.hstack([Q, rng.standard_normal((60, 4)).astype(np.float32)])
    np.save(tmp_path / "q.npy", Q)
    np.save(tmp_path / "g.npy", G)
    data = load_files(tmp_path / "q.npy", tmp_path / "g.npy")
    assert data.n_query_features == 6
    notes = []
    result = run_benchmark(data, methods=["Cosine", "CS alignment"], log=notes.append)
    assert "CS alignment" in result["rows"]  # learns a shared space from 6 + 10 columns
    assert "Cosine" in result["skipped"] and "shared space" in result["skipped"]["Cosine"]
    assert notes and notes[0].startswith("Cosine skipped")


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--output", "{tmp}/r.txt"], "--output .* must end in one of .json, .csv, .md"),
        (["--output", "{tmp}/missing/r.json"], "does not exist"),
        (["--output", "{tmp}/sub.json"], "is a directory"),
        (["--plot", "{tmp}/h.jpg"], "--plot"),
        (["--save-best", "{tmp}/nowhere/b.joblib"], "does not exist"),
        (["--queries", "{tmp}/q.txt", "--gallery", "{tmp}/g.npy"], "--queries .* must end"),
        (["--queries", "{tmp}/absent.npy", "--gallery", "{tmp}/g.npy"], "not a file"),
        (["--queries", "{tmp}/g.npy"], "both --queries and --gallery"),
        (["--labels", "{tmp}/g.npy"], "--labels needs --queries"),
        (["--metrics", "R@1,bogus"], "bogus"),
        (["--queries", "{tmp}/g.npy", "--gallery", "{tmp}/g.npy", "--dataset", "synthetic"],
         "--dataset"),
        (["--queries", "{tmp}/two.npz", "--gallery", "{tmp}/g.npy"], "say which"),
        (["--queries", "{tmp}/short.npy", "--gallery", "{tmp}/g.npy"], "rows"),
        (["--queries", "{tmp}/ints.npy", "--gallery", "{tmp}/ints.npy"], "2-D float"),
    ],
)
def test_cli_errors_before_any_work(tmp_path, capsys, argv, match):
    np.save(tmp_path / "g.npy", np.ones((8, 4), np.float32))
    np.save(tmp_path / "short.npy", np.ones((7, 4), np.float32))
    np.save(tmp_path / "ints.npy", np.ones((8, 4), np.int64))
    np.savez(tmp_path / "two.npz", a=np.ones((8, 4)), b=np.ones((8, 4)))
    (tmp_path / "sub.json").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_cli(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2 and out == ""
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    import re

    assert re.search(match, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


# ------------------------------------------------------------------ output
def test_cli_outputs(tmp_path, capsys):
    out_json, out_csv, out_md = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.md"
    png = tmp_path / "h.png"
    code, printed, err = run_cli(capsys, "--dataset", "synthetic", "--n-pairs", 100,
                                 "--methods", "Cosine,IS", "--tune", "--output", out_json,
                                 "--plot", png)
    assert code == 0, err
    assert "Cosine" in printed and "ΔR@1" in printed and "chosen parameters" in printed
    payload = json.loads(out_json.read_text())
    assert {"name", "n_bank_pairs", "n_test_pairs", "tuned", "bootstrap"} <= set(payload["dataset"])
    assert [r["method"] for r in payload["rows"]] == ["Cosine", "IS"]
    for row in payload["rows"]:
        for key in ("method", "params", "q2g", "g2q", "delta_r1_ci", "fit_s", "score_s"):
            assert key in row
        for d in ("q2g", "g2q"):
            assert {"R@1", "R@5", "R@10", "MdR", "MnR"} <= set(row[d])
            lo, hi = row["delta_r1_ci"][d]
            assert lo <= hi
    assert payload["rows"][1]["params"]["q2g"]["temperature"] in [0.01, 0.02, 0.05, 0.1]
    assert png.stat().st_size > 1000
    assert run_cli(capsys, "--dataset", "synthetic", "--n-pairs", 100, "--methods", "IS",
                   "--output", out_csv)[0] == 0
    rows = list(csv.reader(out_csv.open()))
    assert rows[0][0] == "method" and rows[1][0] == "IS" and "q2g ΔR@1 low" in rows[0]
    assert run_cli(capsys, "--dataset", "synthetic", "--n-pairs", 100, "--methods", "Cosine,IS",
                   "--output", out_md, "--metrics", "recall@1,recall@10")[0] == 0
    md = out_md.read_text().splitlines()
    assert md[2] == "| method | q2g R@1 | q2g R@10 | g2q R@1 | g2q R@10 |"
    assert md[4].startswith("| Cosine |") and md[5].startswith("| IS |")


def test_default_table_fits_120_columns_and_marks_significance(capsys):
    code, out, err = run_cli(capsys, "--n-splits", 5)  # the default
    assert code == 0, err
    lines = out.splitlines()
    table = [line for line in lines if "  " in line]
    assert max(len(line) for line in lines if not line.startswith("dataset:")) <= 120
    assert "R-P" not in out and "mAP@R" not in out  # one-to-one: they equal R@1
    sn = next(line for line in table if line.startswith("SN "))
    assert "]*" in sn  # SN's q2g gain on COCO excludes 0
    assert "reference" in next(line for line in table if line.startswith("Cosine"))


def test_metrics_pick_columns():
    result = run_benchmark("synthetic", n_pairs=60, methods="Cosine", n_splits=1)
    header = format_table(result, metrics=["mean_rank", "degeneration_score"]).splitlines()[1].split()
    assert header == ["method", "MnR", "MnR", "Δdeg"]
    with pytest.raises(ValueError, match="unknown"):
        format_table(result, metrics=["R@2"])


def test_help_defines_every_column_without_markup(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for key, column in COLUMNS.items():
        assert key in text and column.header in text, key
        assert column.definition.split()[0] in text, key
    for header in ("Δdeg", "fit s", "ΔR@1"):
        assert header in text
    assert "``" not in text and ":func:" not in text and ":mod:" not in text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"skxmr {skxmr.__version__}"


@pytest.mark.parametrize("n_pairs", [4, 10, 16, 21])
def test_n_pairs_minimum_is_true(capsys, n_pairs):
    code, out, err = run_cli(capsys, "--dataset", "synthetic", "--n-pairs", n_pairs)
    assert code == 0, err
    assert "Cosine" in out


def test_n_pairs_below_minimum_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "--dataset", "synthetic", "--n-pairs", "3"])
    assert exc.value.code == 2 and "at least 4" in capsys.readouterr().err


def test_cli_errors_and_list(capsys):
    assert main(["benchmark", "--list"]) == 0
    out = capsys.readouterr().out
    assert "SN" in out and "temperature 0.005|0.01|0.02|0.05" in out
    assert main(["benchmark", "--dataset", "synthetic", "--methods", "Nope"]) == 2
    assert "not registered" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["benchmark", "--dataset", "imagenet"])


def test_rst_table_and_module_entry_point():
    result = run_benchmark("synthetic", n_pairs=60, methods=["Cosine"], n_splits=1)
    rst = format_table(result, fmt="rst")
    assert rst.splitlines()[0].startswith("====")
    assert "q2g R@1" in rst.splitlines()[1]
    proc = subprocess.run(
        [sys.executable, "-m", "skxmr", "benchmark", "--list"],
        capture_output=True, text=True, check=True,
    )
    assert "Cosine" in proc.stdout


# --------------------------------------------------------------- bootstrap
def test_bootstrap_hand_cases():
    a = np.r_[np.full(30, 100.0), np.zeros(70)]
    assert paired_bootstrap_ci(a, a) == (0.0, 0.0, 0.0)
    # Every query gains exactly 100: no spread whatever the resample.
    assert paired_bootstrap_ci(np.full(50, 100.0), np.zeros(50)) == (100.0, 100.0, 100.0)
    delta, lo, hi = paired_bootstrap_ci(a, np.zeros(100))
    assert delta == pytest.approx(30.0) and lo < 30.0 < hi
    # Normal approximation of a proportion: half-width 1.96 * sqrt(p(1-p)/n) * 100.
    assert (hi - lo) / 2 == pytest.approx(1.96 * np.sqrt(0.3 * 0.7 / 100) * 100, rel=0.15)


def test_bootstrap_properties(rng):
    a = rng.integers(0, 2, 400) * 100.0
    b = rng.integers(0, 2, 400) * 100.0
    d, lo, hi = paired_bootstrap_ci(a, b, random_state=3)
    assert paired_bootstrap_ci(a, b, random_state=3) == (d, lo, hi)  # seeded
    d2, lo2, hi2 = paired_bootstrap_ci(b, a, random_state=3)  # swapping negates
    assert (d2, lo2, hi2) == pytest.approx((-d, -hi, -lo))
    d3, lo3, hi3 = paired_bootstrap_ci(a + 7.0, b, random_state=3)  # shift equivariant
    assert (d3, lo3, hi3) == pytest.approx((d + 7, lo + 7, hi + 7))
    # Four times the queries: about half the width.
    _, lo4, hi4 = paired_bootstrap_ci(np.tile(a, 4), np.tile(b, 4))
    assert (hi4 - lo4) / (hi - lo) == pytest.approx(0.5, rel=0.15)
    # Pairing: correlated methods give a narrower interval than unpaired draws.
    c = a.copy()
    c[:20] = 100.0
    _, lo_p, hi_p = paired_bootstrap_ci(c, a)
    assert hi_p - lo_p < (hi - lo) / 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"a": np.ones(3), "b": np.ones(4)}, "same"),
        ({"a": np.ones((3, 1)), "b": np.ones((3, 1))}, "1-D"),
        ({"a": [], "b": []}, "non-zero"),
        ({"a": [np.nan, 1.0], "b": [0.0, 0.0]}, "NaN|finite"),
        ({"a": np.ones(3), "b": np.ones(3), "n_resamples": 0}, "n_resamples"),
        ({"a": np.ones(3), "b": np.ones(3), "confidence": 1.0}, "confidence"),
    ],
)
def test_bootstrap_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_bootstrap_ci(**kwargs)


def test_item_groups_connect_shared_items():
    from skxmr._pairs import item_groups

    X = make_pairs(6, 3)
    X[1, 3:] = X[0, 3:]  # rows 0 and 1 share a gallery item
    X[2, :3] = X[1, :3]  # rows 1 and 2 share a query: 0, 1, 2 are one group
    X[5, 3:] = X[4, 3:]
    np.testing.assert_array_equal(item_groups(X), [0, 0, 0, 1, 2, 2])


def test_bootstrap_methods_of_scipy():
    """The interval is scipy's paired bootstrap: BCa and basic on request."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 300) * 100.0, rng.integers(0, 2, 300) * 100.0
    d, lo, hi = paired_bootstrap_ci(a, b)
    for method in ("BCa", "basic"):
        d_m, lo_m, hi_m = paired_bootstrap_ci(a, b, method=method)
        assert d_m == d and lo_m < d < hi_m
        assert (hi_m - lo_m) == pytest.approx(hi - lo, rel=0.2)
    with pytest.raises(ValueError, match="method"):
        paired_bootstrap_ci(a, b, method="student")


# ------------------------------------------------------- repeated splits
def test_split_bootstrap_one_split_is_the_paired_bootstrap(rng):
    a = rng.integers(0, 2, 120) * 100.0
    b = rng.integers(0, 2, 120) * 100.0
    assert split_bootstrap_ci([a - b]) == paired_bootstrap_ci(a - b, np.zeros(120))
    assert split_bootstrap_ci([a - b])[0] == pytest.approx(paired_bootstrap_ci(a, b)[0])


def test_split_bootstrap_counts_the_split_to_split_variation(rng):
    """Splits that disagree widen the interval beyond the query sampling alone."""
    gain = [np.full(200, 5.0) + rng.normal(0, 1, 200) for _ in range(5)]
    agree = split_bootstrap_ci(gain)
    disagree = split_bootstrap_ci([g + shift for g, shift in zip(gain, (-8, -4, 0, 4, 8))])
    assert agree[0] == pytest.approx(disagree[0])  # the shifts cancel in the mean
    assert agree[1] > 4.5 and agree[2] < 5.5  # 1000 queries of sd 1: narrow
    assert disagree[2] - disagree[1] > 4 * (agree[2] - agree[1])
    assert split_bootstrap_ci(gain, random_state=2) == split_bootstrap_ci(gain, random_state=2)
    with pytest.raises(ValueError, match="one per split"):
        split_bootstrap_ci(np.ones(3))
    with pytest.raises(ValueError, match="at least one query"):
        split_bootstrap_ci([np.ones(3), np.ones(0)])
    with pytest.raises(ValueError, match="NaN"):
        split_bootstrap_ci([np.ones(3), np.array([1.0, np.nan])])


def test_split_bootstrap_covers_the_mean_of_a_known_population():
    """Coverage of the two-stage interval: splits drawn around a known mean."""
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(100):
        shifts = rng.normal(0, 2, 5)  # split-to-split variation, mean 0
        deltas = [1.0 + s + rng.normal(0, 5, 100) for s in shifts]
        _, lo, hi = split_bootstrap_ci(deltas, n_resamples=400, random_state=trial)
        covered += lo <= 1.0 <= hi
    assert covered >= 80  # nominal 95; the percentile bootstrap of 5 splits undercovers a bit


def test_repeated_splits_rows_are_means_with_per_split_numbers():
    data = load_dataset("coco-clip", n_splits=3, random_state=4)
    assert [s.seed for s in data.splits] == [4, 5, 6]
    assert data.info["n_splits"] == 3 and "3 splits, seeds 4-6" in data.description
    tests = [frozenset(r.tobytes() for r in s.X_test) for s in data.splits]
    assert len(set(tests)) == 3  # different test sets
    result = run_benchmark(data, methods=["Cosine", "SN"])
    row = result["rows"]["SN"]
    assert len(row["splits"]) == 3 and result["info"]["seeds"] == [4, 5, 6]
    for key in ("q2g recall@1", "g2q median_rank", "hubness_skewness"):
        assert row[key] == pytest.approx(np.mean([s[key] for s in row["splits"]]))
    # Each split's numbers are those of a one-split run with its seed.
    for s, split in enumerate(row["splits"]):
        one = run_benchmark(load_dataset("coco-clip", random_state=4 + s),
                            methods=["Cosine", "SN"])["rows"]["SN"]
        assert split["q2g recall@1"] == pytest.approx(one["q2g recall@1"])
        assert split["q2g delta_recall CI"] == pytest.approx(one["q2g delta_recall CI"])
    mean = np.mean([s["q2g delta_recall"] for s in row["splits"]])
    assert row["q2g delta_recall"] == pytest.approx(mean)
    gains = sum(s["q2g delta_recall CI"][0] > 0 for s in row["splits"])
    losses = sum(s["q2g delta_recall CI"][1] < 0 for s in row["splits"])
    assert (row["q2g gains"], row["q2g losses"]) == (gains, losses)
    assert f"{gains}↑{losses}↓" in format_table(result)


def test_per_split_numbers_in_json_and_csv(tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    for path in (out_json, out_csv):
        code, _, err = run_cli(capsys, "--dataset", "synthetic", "--n-pairs", 120, "--methods",
                               "Cosine,DSL", "--n-splits", 2, "--output", path)
        assert code == 0, err
    payload = json.loads(out_json.read_text())
    assert payload["dataset"]["n_splits"] == 2 and payload["dataset"]["seeds"] == [0, 1]
    dsl = payload["rows"][1]
    assert dsl["transductive"] is True and payload["rows"][0]["transductive"] is False
    assert [s["seed"] for s in dsl["splits"]] == [0, 1]
    assert set(dsl["significant"]["q2g"]) == {"gains", "losses"}
    mean = np.mean([s["q2g"]["ΔR@1"] for s in dsl["splits"]])
    assert dsl["q2g"]["ΔR@1"] == pytest.approx(mean)
    rows = list(csv.reader(out_csv.open()))
    assert rows[0][:3] == ["method", "split", "transductive"]
    assert [r[:2] for r in rows[1:]] == [["Cosine", "mean"], ["Cosine", "0"], ["Cosine", "1"],
                                         ["DSL", "mean"], ["DSL", "0"], ["DSL", "1"]]


def test_transductive_methods_are_marked(capsys):
    assert skxmr.registered_methods()["DSL"]["transductive"]
    assert not skxmr.registered_methods()["SN"]["transductive"]
    code, out, err = run_cli(capsys, "--dataset", "synthetic", "--n-pairs", 120, "--methods",
                             "Cosine,DSL")
    assert code == 0, err
    assert "DSL†" in out and "† transductive" in out
    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    assert "transductive" in capsys.readouterr().out
    assert main(["benchmark", "--list"]) == 0
    assert "(transductive)" in next(line for line in capsys.readouterr().out.splitlines()
                                    if line.startswith("DSL"))


def test_every_strength_method_can_choose_none():
    """A grid of a method with ``strength`` holds 0 (plain cosine) and 1 (the method)."""
    for name, entry in skxmr.registered_methods().items():
        est = entry["factory"](direction="q2g")
        if "strength" not in est.get_params():
            continue
        assert entry["grid"] is not None, name
        for grid in entry["grid"]:
            assert {0.0, 1.0} <= set(grid.get("strength", ())), name


@pytest.mark.parametrize("name", [n for n, e in skxmr.registered_methods().items()
                                  if "strength" in e["factory"]().get_params()])
def test_strength_blends_the_method_with_cosine(name):
    """What StrengthSearch relies on: the scores at strength a are
    S0 + a (S1 - S0), S0 the cosines (each registered method)."""
    X_bank, X_test = make_pairs(60, 6, seed=1), make_pairs(30, 6, seed=2)
    factory = skxmr.registered_methods()[name]["factory"]
    S0 = skxmr.CosineSimilarity().fit(X_bank).decision_function(X_test)
    S1 = factory().set_params(strength=1.0).fit(X_bank).decision_function(X_test)
    Sa = factory().set_params(strength=0.3).fit(X_bank).decision_function(X_test)
    np.testing.assert_allclose(Sa, S0 + 0.3 * (S1 - S0), rtol=1e-6, atol=1e-7)


def test_small_samples_warn_and_one_query_has_no_interval(tmp_path, capsys):
    with pytest.warns(UserWarning, match="only 20 test queries"):
        run_benchmark("synthetic", n_pairs=40, methods=["Cosine", "IS"], n_splits=1)
    X = make_pairs(10, 4)
    X[9, :4] = X[8, :4]  # the test set: one caption of two images, so one q2g query
    for name, rows in (("", slice(8, 10)), ("b", slice(0, 8))):
        np.save(tmp_path / f"{name}q.npy", X[rows, :4])
        np.save(tmp_path / f"{name}g.npy", X[rows, 4:])
    data = load_files(tmp_path / "q.npy", tmp_path / "g.npy", bank_queries=tmp_path / "bq.npy",
                      bank_gallery=tmp_path / "bg.npy")
    with pytest.warns(UserWarning, match="only 1 test queries: no interval"):
        result = run_benchmark(data, methods=["Cosine", "IS"])
    row = result["rows"]["IS"]
    assert np.isnan(row["q2g delta_recall CI"]).all() and np.isfinite(row["q2g delta_recall"])
    assert "(no interval)" in format_table(result)
    code, out, err = run_cli(capsys, "--dataset", "synthetic", "--n-pairs", 40, "--methods",
                             "Cosine")
    assert code == 0 and "only 20 test queries" in err


def test_columns_switch_on_many_queries_with_several_relevant_and_say_so(tmp_path, capsys):
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((200, 8)).astype(np.float32)
    G = Q + 0.5 * rng.standard_normal((200, 8)).astype(np.float32)
    G[1] = G[0]  # one duplicated image among 200 pairs: still one-to-one in effect
    np.save(tmp_path / "q.npy", Q)
    np.save(tmp_path / "g.npy", G)
    code, out, err = run_cli(capsys, "--queries", tmp_path / "q.npy", "--gallery",
                             tmp_path / "g.npy", "--methods", "Cosine", "--random-state", 3)
    assert code == 0, err
    assert "R-P" not in out.splitlines()[2]  # header: R@5, MdR kept
    G[2:40:2] = G[3:40:2]  # 19 more duplicates: 10% of the queries
    np.save(tmp_path / "g.npy", G)
    code, out, err = run_cli(capsys, "--queries", tmp_path / "q.npy", "--gallery",
                             tmp_path / "g.npy", "--methods", "Cosine")
    assert code == 0, err
    assert "columns: R-P and mAP@R instead of R@5 and MdR" in out


def test_the_command_line_runs_five_splits_by_default():
    from skxmr.benchmark._cli import build_parser

    args = build_parser().parse_args(["benchmark"])
    assert args.n_splits == 5


def test_alignment_can_choose_none_in_one_space_only(tmp_path):
    """CLIP's halves share a space: re-aligning them from 250 bank pairs loses
    about 30 R@1, and the tuned row picks the alignment skipped. Halves of
    two widths (two spaces) never get that point (cosine cannot run there)."""
    result = run_benchmark(methods=["Cosine", "Procrustes"], tune=True, n_splits=1)
    row = result["rows"]["Procrustes"]
    assert row["params"]["q2g"] == {"procrustesalignment": "passthrough"}
    assert row["q2g delta_recall"] == 0
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((60, 6))
    np.save(tmp_path / "q.npy", Q)
    np.save(tmp_path / "g.npy", Q[:, :4] + 0.1 * rng.standard_normal((60, 4)))
    data = load_files(tmp_path / "q.npy", tmp_path / "g.npy")
    result = run_benchmark(data, methods=["Procrustes"], tune=True)
    assert "procrustesalignment" not in result["rows"]["Procrustes"]["params"]["q2g"]


def _cv(folds, params):
    folds = np.asarray(folds, dtype=float)
    cv = {f"split{j}_test_score": folds[:, j] for j in range(folds.shape[1])}
    cv.update(params=params, mean_test_score=folds.mean(axis=1))
    return cv


def test_skip_unless_reliable_needs_a_gain_beyond_twice_its_standard_error():
    from skxmr.model_selection import one_standard_error, skip_unless_reliable

    points = [{"map": "passthrough"}, {"map__alpha": 1.0}, {"map__alpha": 10.0}]
    # one fold gains 4 of 17 items, two tie (MSR-VTT): a mean gain of 7.8
    # beyond one standard error of the best point's fold scores, but no evidence
    cv = _cv([[64.7, 47.1, 50.0], [64.7, 70.6, 50.0], [60.0, 60.0, 40.0]], points)
    assert one_standard_error(cv) == 1 and skip_unless_reliable(cv) == 0
    # a gain in every fold: kept
    cv = _cv([[47.1, 52.9, 50.0], [52.9, 58.8, 62.5], [40.0, 40.0, 40.0]], points)
    assert skip_unless_reliable(cv) == 1
    # a small gain in every fold on folds of different difficulty: the paired
    # gains are reliable though the skip is within one standard error of the best
    cv = _cv([[50.0, 70.0, 60.0], [51.0, 71.5, 61.0], [40.0, 40.0, 40.0]], points)
    assert one_standard_error(cv) == 0 and skip_unless_reliable(cv) == 1
    # the best skipping point is the fallback; a skipping best stays
    cv = _cv([[50.0, 50.0], [40.0, 60.0], [52.0, 52.0]],
             [{"map": "passthrough"}, {"map__alpha": 1.0}, {"map": "passthrough", "k": 2}])
    assert skip_unless_reliable(cv) == 2
    # one fold: no standard error, so no evidence
    assert skip_unless_reliable(_cv([[50.0], [60.0]], points[:2])) == 0
    # no point skips a step (strength, temperatures): the best mean, first on ties
    cv = _cv([[70.0, 70.0], [72.0, 71.0], [72.0, 71.0]],
             [{"strength": 0.0}, {"strength": 0.5}, {"strength": 1.0}])
    assert skip_unless_reliable(cv) == 1


def test_small_validation_folds_search_only_the_skipped_step(monkeypatch):
    """Below 50 items per validation fold the map is never fitted in the
    search and plain cosine is chosen; from 50 on the map's points are searched."""
    from skxmr.alignment import RidgeAlignment
    from skxmr.benchmark._run import run_method

    calls = []
    fit = RidgeAlignment.fit
    monkeypatch.setattr(RidgeAlignment, "fit",
                        lambda self, X, y=None: calls.append(len(X)) or fit(self, X, y))
    factory = skxmr.registered_methods()["Ridge map"]["factory"]
    grid = [{"ridgealignment__alpha": [1.0]}, {"ridgealignment": ["passthrough"]}]
    X = make_pairs(200, 6, seed=5)
    row, _ = run_method(factory, X[:147], X[147:], groups_bank=np.arange(147), grid=grid, cv=3)
    assert not calls
    assert row["params"] == {d: {"ridgealignment": "passthrough"} for d in ("q2g", "g2q")}
    run_method(factory, X[:150], X[150:], groups_bank=np.arange(150), grid=grid, cv=3)
    assert calls.count(100) == 3  # each fold fits the map (once for both directions)


def test_one_standard_error_skips_a_fitted_step_unless_it_clearly_helps():
    from skxmr.model_selection import one_standard_error, skips_a_step

    points = [{"map": "passthrough"}, {"map__alpha": 1.0}, {"map__alpha": 10.0},
              {"strength": 0.0}, {"strength": 1.0}]
    assert [skips_a_step(p) for p in points] == [True, False, False, False, False]
    folds = np.array([[72.0, 72.0], [71.0, 75.0], [70.0, 70.0], [72.0, 72.0], [70.0, 70.0]])
    cv = {"params": points, "split0_test_score": folds[:, 0], "split1_test_score": folds[:, 1],
          "mean_test_score": folds.mean(axis=1)}
    # best: 73 with fold scores 71 and 75 (standard error 2); skipping the map
    # (72) is within it and kept. strength 0 (72) is not preferred: only a
    # skipped step is.
    assert one_standard_error(cv) == 0
    cv["split0_test_score"] = np.array([60.0, 71.0, 70.0, 72.0, 70.0])  # skipping at 66
    cv["mean_test_score"] = (cv["split0_test_score"] + cv["split1_test_score"]) / 2
    assert one_standard_error(cv) == 1  # the best point: nothing skips within 73 - 2
    cv["params"][0] = {"map__alpha": 0.1}  # no step skipped anywhere: GridSearchCV's choice
    assert one_standard_error(cv) == int(np.argmax(cv["mean_test_score"]))
