"""Metrics from ranked lists (TopK), streamed reports, and TREC export."""

import io

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr.metrics import (
    TopK,
    antihub_rate,
    gini_index,
    hub_occurrence,
    hubness_report,
    hubness_skewness,
    k_occurrence,
    recall_at_k,
    retrieval_report,
    robinhood_index,
    write_trec_qrels,
    write_trec_run,
)
from skxmr.utils._topk import sorted_top_k


def _problem(tied=False, seed=0):
    rng = np.random.default_rng(seed)
    S = rng.standard_normal((60, 40))
    if tied:
        S = np.round(S, 1)  # many ties, inside and across the lists
    R = sp.random(60, 40, density=0.06, random_state=seed, data_rvs=np.ones).astype(bool)
    R = (R + sp.csr_array((np.ones(60, bool), (np.arange(60), rng.integers(0, 40, 60))),
                          shape=(60, 40))).astype(bool)
    return S, R


def _lists(S, k):
    s, i = sorted_top_k(S, k)
    return TopK(s, i, n_items=S.shape[1])


@pytest.mark.parametrize("ties", ["pessimistic", "average"])
def test_recall_from_lists_equals_dense(ties):
    S, R = _problem()
    lists = _lists(S, 10)
    for k in range(1, 11):
        assert recall_at_k(lists, R, k, ties=ties) == pytest.approx(
            recall_at_k(S, R, k, ties=ties), abs=1e-12)
    rep = retrieval_report(lists, R, ks=(1, 5, 10), ties=ties, directions="q2g")
    dense = retrieval_report(S, R, ks=(1, 5, 10), ties=ties, directions="q2g")
    assert rep["q2g"] == pytest.approx({k: dense["q2g"][k] for k in ("R@1", "R@5", "R@10")})


@pytest.mark.parametrize("ties", ["pessimistic", "average"])
def test_recall_from_whole_lists_with_ties_equals_dense(ties):
    """Ties within the lists are counted as the dense path counts them."""
    S, R = _problem(tied=True)
    lists = _lists(S, S.shape[1])
    for k in (1, 3, 7, 40):
        assert recall_at_k(lists, R, k, ties=ties) == pytest.approx(
            recall_at_k(S, R, k, ties=ties), abs=1e-12)


@pytest.mark.parametrize("tied", [False, True])
def test_hubness_from_lists_equals_dense(tied):
    S, _ = _problem(tied=tied)
    lists = _lists(S, 10)
    for k in (1, 5, 10):
        np.testing.assert_array_equal(k_occurrence(lists, k), k_occurrence(S, k))
        assert hubness_report(lists, k) == hubness_report(S, k)
        for metric in (hubness_skewness, robinhood_index, gini_index, antihub_rate,
                       hub_occurrence):
            assert metric(lists, k) == metric(S, k)


def test_lists_refuse_what_they_cannot_answer():
    S, R = _problem()
    lists = _lists(S, 5)
    with pytest.raises(ValueError, match="k=6 but the lists hold 5"):
        recall_at_k(lists, R, 6)
    with pytest.raises(ValueError, match="k=6 but the lists hold 5"):
        k_occurrence(lists, 6)
    with pytest.raises(ValueError, match="ks=10 but the lists hold 5"):
        retrieval_report(lists, R, ks=(1, 10), directions="q2g")
    with pytest.raises(ValueError, match="directions='q2g'"):
        retrieval_report(lists, R)


def test_topk_validation():
    with pytest.raises(ValueError, match="non-increasing"):
        TopK([[0.1, 0.9]], [[0, 1]], n_items=2)
    with pytest.raises(ValueError, match="distinct"):
        TopK([[0.9, 0.1]], [[1, 1]], n_items=2)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 1\]"):
        TopK([[0.9, 0.1]], [[0, 2]], n_items=2)
    with pytest.raises(ValueError, match="same shape"):
        TopK([[0.9, 0.1]], [[0]], n_items=2)
    with pytest.raises(ValueError, match="NaN"):
        TopK([[np.nan]], [[0]], n_items=2)
    with pytest.raises(TypeError, match="integers"):
        TopK([[0.9]], [[0.0]], n_items=2)
    with pytest.raises(ValueError, match="n_items"):
        TopK([[0.9]], [[0]], n_items=0)


@pytest.mark.parametrize("ties", ["pessimistic", "average"])
def test_streamed_report_equals_dense(ties):
    S, R = _problem(tied=True)
    blocks = (S[i:i + 7] for i in range(0, S.shape[0], 7))
    got = retrieval_report(blocks, R, ks=(1, 5, 10), ties=ties, directions="q2g")
    assert got == retrieval_report(S, R, ks=(1, 5, 10), ties=ties, directions="q2g")


def test_streamed_report_checks_coverage():
    S, R = _problem()
    with pytest.raises(ValueError, match="cover 14 queries, relevance has 60"):
        retrieval_report(iter([S[:7], S[7:14]]), R, directions="q2g")
    with pytest.raises(ValueError, match="must cover the 60 queries"):
        retrieval_report(iter([S, S[:1]]), R, directions="q2g")
    with pytest.raises(ValueError, match="directions='q2g'"):
        retrieval_report(iter([S]), R)


def test_trec_run_and_qrels_round_trip(tmp_path):
    """The written files give back the lists and relevance; R@K computed
    from them as trec_eval's success@K does equals recall_at_k."""
    S, R = _problem()
    lists = _lists(S, 10)
    qids = [f"q{i}" for i in range(60)]
    iids = [f"doc{j}" for j in range(40)]
    write_trec_run(tmp_path / "run.txt", lists, query_ids=qids, item_ids=iids, run_name="test")
    write_trec_qrels(tmp_path / "qrels.txt", R, query_ids=qids, item_ids=iids)
    run = [line.split() for line in (tmp_path / "run.txt").read_text().splitlines()]
    qrels = {(q, d) for q, _, d, rel in
             (line.split() for line in (tmp_path / "qrels.txt").read_text().splitlines())}
    assert len(run) == 600 and len(qrels) == R.nnz
    assert run[0][:4] == ["q0", "Q0", iids[lists.indices[0, 0]], "1"] and run[0][5] == "test"
    assert float(run[0][4]) == lists.scores[0, 0]
    for k in (1, 5, 10):
        hit = {q for q, _, d, rank, _, _ in run if int(rank) <= k and (q, d) in qrels}
        assert 100.0 * len(hit) / 60 == pytest.approx(recall_at_k(lists, R, k))


def test_trec_bad_ids():
    out = io.StringIO()
    lists = TopK([[0.9]], [[0]], n_items=2)
    with pytest.raises(ValueError, match="whitespace"):
        write_trec_run(out, lists, query_ids=["a b"])
    with pytest.raises(ValueError, match="item_ids has 1 entries, expected 2"):
        write_trec_run(out, lists, item_ids=["x"])
    with pytest.raises(TypeError, match="TopK"):
        write_trec_run(out, (np.ones((1, 1)), np.zeros((1, 1), int)))
