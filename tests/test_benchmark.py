"""The main job: ``python -m skxmr benchmark``."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import skxmr
from skxmr.benchmark import COLUMNS, format_table, load_dataset, main, run_benchmark


def test_every_registered_method_has_a_row():
    result = run_benchmark("synthetic", n_pairs=120)
    assert set(result["rows"]) == set(skxmr.registered_methods())
    names = list(result["rows"])
    assert names[0] == "Cosine"  # the reference row first
    for name, row in result["rows"].items():
        assert set(row) == {c for c, _ in COLUMNS}, name
        assert all(np.isfinite(v) for v in row.values()), name
        assert 0 <= row["q2g R@1"] <= row["q2g R@5"] <= row["q2g R@10"] <= 100
        assert row["q2g MdR"] >= 1
        assert result["k_occurrence"][name].sum() == 60 * 10  # 60 test queries, k=10


def test_rows_match_the_metrics():
    """The table's numbers are the metrics of the fitted method, nothing else."""
    from skxmr.metrics import recall_at_k

    X_bank, X_test, _ = load_dataset("synthetic", n_pairs=200)
    result = run_benchmark("synthetic", n_pairs=200, methods=["Cosine", "SN"])
    for name, est in (
        ("Cosine", skxmr.CosineSimilarity()),
        ("SN", skxmr.SinkhornNormalizer()),
    ):
        est.fit(X_bank)
        items = skxmr.split_pairs(X_test)
        S = est.decision_function(X_test)
        assert result["rows"][name]["q2g R@1"] == pytest.approx(recall_at_k(S, items.relevance, 1))


def test_default_is_the_bundled_coco_offline(tmp_path, monkeypatch):
    """No cache, no SKXMR_DATA, no network: the default table is on real COCO."""
    monkeypatch.delenv("SKXMR_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SKXMR_DATA_URL", "http://127.0.0.1:9/")  # nothing listens there
    result = run_benchmark(methods=["Cosine", "IS"])
    assert "COCO" in result["dataset"] and "bank 250 pairs" in result["dataset"]
    assert result["rows"]["Cosine"]["q2g R@1"] == pytest.approx(60.0)
    assert result["rows"]["IS"]["q2g R@1"] > result["rows"]["Cosine"]["q2g R@1"]
    assert not (tmp_path / "home").exists()


def test_msrvtt_table_or_skip():
    from tests.conftest import fetch_or_skip
    from skxmr.datasets import fetch_msrvtt_videoclip

    fetch_or_skip(fetch_msrvtt_videoclip)
    result = run_benchmark("msrvtt-videoclip", methods="Cosine")
    assert "MSR-VTT" in result["dataset"] and "bank 50 pairs" in result["dataset"]


def test_methods_string_is_one_name():
    result = run_benchmark("synthetic", n_pairs=60, methods="Cosine")
    assert list(result["rows"]) == ["Cosine"]
    with pytest.raises(ValueError, match="not registered"):
        run_benchmark("synthetic", n_pairs=60, methods="Cos")


@pytest.mark.parametrize("factory", [None, 3, "Cosine", skxmr.CosineSimilarity()])
def test_register_method_refuses_non_callables(factory):
    before = skxmr.registered_methods()
    with pytest.raises(TypeError, match="callable"):
        skxmr.register_method("not-callable", factory, family="baseline")
    assert skxmr.registered_methods() == before  # the registry is untouched


def test_cli_outputs(tmp_path, capsys):
    out_json, out_csv, png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "h.png"
    code = main(
        ["benchmark", "--dataset", "synthetic", "--n-pairs", "100", "--methods", "Cosine,IS",
         "--output", str(out_json), "--plot", str(png), "--no-progress"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Cosine" in printed and "q2g R@1" in printed
    payload = json.loads(out_json.read_text())
    assert set(payload["rows"]) == {"Cosine", "IS"}
    assert png.stat().st_size > 1000
    assert main(["benchmark", "--dataset", "synthetic", "--n-pairs", "100", "--methods", "IS",
                 "--output", str(out_csv), "--no-progress"]) == 0
    rows = list(csv.reader(out_csv.open()))
    assert rows[0][0] == "method" and rows[1][0] == "IS"


def test_cli_errors_and_list(capsys):
    assert main(["benchmark", "--list"]) == 0
    assert "SN" in capsys.readouterr().out
    assert main(["benchmark", "--dataset", "synthetic", "--methods", "Nope"]) == 2
    assert "not registered" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["benchmark", "--dataset", "imagenet"])


def test_rst_table_and_module_entry_point():
    result = run_benchmark("synthetic", n_pairs=60, methods=["Cosine"])
    rst = format_table(result, fmt="rst")
    assert rst.splitlines()[0].startswith("====")
    proc = subprocess.run(
        [sys.executable, "-m", "skxmr", "benchmark", "--list"],
        capture_output=True, text=True, check=True,
    )
    assert "Cosine" in proc.stdout
