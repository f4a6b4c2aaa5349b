"""One metric table: the scorers, the reports, the CLI and every writer read it."""

import csv
import json
import pickle
import warnings

import numpy as np
import pytest

from skxmr import CosineSimilarity
from skxmr.benchmark import (
    COLUMNS,
    OUTPUT_SUFFIXES,
    WRITERS,
    format_table,
    main,
    result_rows,
    run_benchmark,
    write_output,
)
from skxmr.metrics import hubness_report, make_retrieval_scorer, retrieval_report
from skxmr.metrics._table import METRICS, SCORER_METRICS, Report

from .conftest import make_pairs


@pytest.fixture(scope="module")
def result():
    return run_benchmark("synthetic", n_pairs=80, methods=["Cosine", "IS"], tune=True, cv=2)


def _json_numbers(row):
    """Every (direction, header) -> number of one JSON row, old keys left out."""
    out = {}
    for key, value in row.items():
        if key in ("q2g", "g2q"):
            out.update({(key, h): v for h, v in value.items()})
        elif key.endswith(" CI"):
            for d, (lo, hi) in value.items():
                out[(d, key[:-3] + " low")], out[(d, key[:-3] + " high")] = lo, hi
        elif key not in ("method", "params", "delta_r1_ci", "delta_deg", "fit_s", "score_s",
                         "tune_s", "cv_r1", "transductive", "significant", "splits"):
            out[(None, key)] = value
    return out


def test_csv_carries_every_json_column(result, tmp_path):
    """The CSV used to drop gini, hubs, antihubs, tune s and cv R@1."""
    write_output(result, tmp_path / "r.json")
    write_output(result, tmp_path / "r.csv")
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    table = [line for line in csv.DictReader((tmp_path / "r.csv").open())
             if line["split"] == "mean"]  # the table's rows (then one line per split)
    assert [r["method"] for r in table] == [r["method"] for r in rows] == ["Cosine", "IS"]
    for row, line in zip(rows, table):
        numbers = _json_numbers(row)
        assert {"gini@10", "hubs@10", "anti@10", "tune s"} <= {h for _, h in numbers}
        assert ("q2g", "cv R@1") in numbers
        for (direction, header), value in numbers.items():
            text = line[f"{direction} {header}" if direction else header]
            if value is None:
                assert text == ""
            else:
                assert float(text) == pytest.approx(value), (direction, header)
        assert json.loads(line["params"]) == row["params"]


def test_markdown_carries_every_column_unless_picked(result, tmp_path):
    write_output(result, tmp_path / "r.md")
    header = (tmp_path / "r.md").read_text().splitlines()[2]
    for column in COLUMNS.values():
        directions = ("q2g ", "g2q ") if column.per_direction else ("",)
        for d in directions:
            assert f"| {d}{column.header}" in header, column.name
    write_output(result, tmp_path / "p.md", metrics=["recall@1", "gini_index"])
    assert (tmp_path / "p.md").read_text().splitlines()[2] == (
        "| method | q2g R@1 | g2q R@1 | gini@10 |")


def test_json_keys_are_the_headers_and_old_keys_stay_one_release(result):
    row = result_rows(result)[1]
    assert row["q2g"]["R@1"] == result["rows"]["IS"]["q2g recall@1"]
    assert row["gini@10"] == result["rows"]["IS"]["gini_index"]
    assert row["fit_s"] == row["fit s"] and row["delta_r1_ci"] == row["ΔR@1 CI"]
    assert row["cv_r1"]["g2q"] == row["g2q"]["cv R@1"]


def test_writers_table():
    assert OUTPUT_SUFFIXES == tuple(WRITERS) == (".json", ".csv", ".md")


def test_every_column_names_a_metric_of_the_table():
    for name, column in COLUMNS.items():
        assert column.metric is METRICS[column.metric.name]
        assert name.split("@")[0] == column.metric.name
        assert "{" not in column.header and "{" not in column.definition


@pytest.mark.parametrize("metric", SCORER_METRICS)
def test_every_scorer_metric_is_a_scorer(metric):
    X = make_pairs(n=20)
    est = CosineSimilarity().fit(X)
    scorer = make_retrieval_scorer(metric, k=3)
    assert scorer.greater_is_better == METRICS[metric].greater_is_better
    value = METRICS[metric].function(est.decision_function(X), np.arange(20), 3, "pessimistic")
    assert scorer(est, X) == pytest.approx(value if scorer.greater_is_better else -value)


def test_reports_are_keyed_by_the_table(rng):
    S = rng.standard_normal((12, 9))
    rep = retrieval_report(S, np.arange(12) % 9, ks=(1, 5))
    assert list(rep["q2g"]) == [METRICS["recall"].label(1), METRICS["recall"].label(5)] + [
        METRICS[m].header for m in ("median_rank", "mean_rank", "r_precision", "map_at_r")]
    hub = hubness_report(S, k=3)
    for name in ("hubness_skewness", "gini_index", "hub_occurrence", "antihub_rate",
                 "robinhood_index"):
        assert hub[name] == pytest.approx(METRICS[name].function(S, None, 3, None))


@pytest.mark.parametrize("old, new", [("skew", "hubness_skewness"),
                                      ("skewness", "hubness_skewness"),
                                      ("gini", "gini_index"), ("robinhood", "robinhood_index")])
def test_old_names_warn(old, new, rng):
    S = rng.standard_normal((12, 9))
    X = make_pairs(n=20)
    est = CosineSimilarity().fit(X)
    with pytest.warns(FutureWarning, match=f"'{old}' is renamed '{new}'"):
        scorer = make_retrieval_scorer(old, k=3)
    assert scorer(est, X) == make_retrieval_scorer(new, k=3)(est, X)
    report = hubness_report(S, k=3)
    if old != "skew":
        with pytest.warns(FutureWarning, match=f"'{old}' is renamed '{new}'"):
            assert report[old] == report[new]
    with pytest.raises(KeyError):
        report["nope"]


def test_old_report_and_row_keys_warn(result, rng):
    S = rng.standard_normal((6, 6))
    rep = retrieval_report(S, np.arange(6))["q2g"]
    with pytest.warns(FutureWarning, match="'R-Precision' is renamed 'R-P'"):
        assert rep["R-Precision"] == rep["R-P"]
    row = result["rows"]["IS"]
    with pytest.warns(FutureWarning, match="'skew' is renamed 'hubness_skewness'"):
        assert row["skew"] == row["hubness_skewness"]
    with pytest.warns(FutureWarning, match="'q2g R@1' is renamed 'q2g recall@1'"):
        assert row["q2g R@1"] == row["q2g recall@1"]
    with pytest.warns(FutureWarning, match="'q2g dR@1 CI' is renamed"):
        assert row.get("q2g dR@1 CI") == row["q2g delta_recall CI"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert row.get("nope", 3) == 3 and "skew" not in row
    again = pickle.loads(pickle.dumps(row))
    assert isinstance(again, Report) and again == row
    with pytest.warns(FutureWarning):
        assert again["skew"] == row["hubness_skewness"]


def test_old_column_names_warn_and_pick_the_same_columns(result):
    with pytest.warns(FutureWarning, match="'skew' is renamed 'hubness_skewness'"):
        old = format_table(result, metrics=["R@1", "skew"])
    assert old == format_table(result, metrics=["recall@1", "hubness_skewness"])
    with pytest.raises(ValueError, match="unknown"):
        format_table(result, metrics=["recall@2"])


def test_cli_notes_old_column_names(capsys):
    code = main(["benchmark", "--no-progress", "--dataset", "synthetic", "--n-pairs", "60",
                 "--methods", "Cosine", "--metrics", "R@1,skew"])
    captured = capsys.readouterr()
    assert code == 0
    assert "note: --metrics: the column 'skew' is renamed 'hubness_skewness'" in captured.err
    assert "skew@10" in captured.out
    assert main(["benchmark", "--dataset", "synthetic", "--metrics", "recall@2"]) == 2
    assert "recall@2: unknown" in capsys.readouterr().err


def test_benchmark_metrics_alias_warns():
    import skxmr.benchmark

    with pytest.warns(FutureWarning, match="COLUMNS"):
        assert skxmr.benchmark.METRICS is COLUMNS
