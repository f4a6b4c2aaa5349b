"""Retrieval metrics, hubness and degeneration diagnostics, and scorers.

Ranking metrics (:mod:`skxmr.metrics.ranking`): ranks, R@K, MdR, MnR,
R-Precision, mAP@R and a two-direction report. Hubness diagnostics
(:mod:`skxmr.metrics.hubness`): k-occurrence, its skewness, the Robin Hood
index, the antihub rate, and scikit-hubness's Gini index and hub
occurrence. :func:`make_retrieval_scorer` turns any of them into a
``GridSearchCV`` scorer. Degeneration (:mod:`skxmr.metrics.degeneration`):
Δ_deg, MeanSim and MeanSim@k of the InvGC paper. Ranked lists
(:class:`TopK`, the output of ``GalleryIndex.kneighbors``) stand in for the
score matrix in R@K and the hubness metrics, and export to TREC run/qrels
files. Divergences
(:mod:`skxmr.metrics.divergence`): Cauchy-Schwarz and generalised CS.
"""

from ._lists import TopK, write_trec_qrels, write_trec_run
from ._scorer import make_retrieval_scorer
from .degeneration import degeneration_score, mean_similarity, mean_similarity_at_k
from .divergence import cs_divergence, gcs_divergence
from .hubness import (
    antihub_rate,
    gini_index,
    hub_occurrence,
    hubness_report,
    hubness_skewness,
    k_occurrence,
    robinhood_index,
)
from .ranking import (
    map_at_r,
    mean_rank,
    median_rank,
    r_precision,
    rank_of_relevant,
    recall_at_k,
    retrieval_report,
)

# degeneration.py and divergence.py (other helpers) add their names here.
__all__ = [
    "TopK",
    "antihub_rate",
    "cs_divergence",
    "gcs_divergence",
    "degeneration_score",
    "gini_index",
    "hub_occurrence",
    "hubness_report",
    "hubness_skewness",
    "k_occurrence",
    "make_retrieval_scorer",
    "map_at_r",
    "mean_similarity",
    "mean_similarity_at_k",
    "mean_rank",
    "median_rank",
    "r_precision",
    "rank_of_relevant",
    "recall_at_k",
    "retrieval_report",
    "robinhood_index",
    "write_trec_qrels",
    "write_trec_run",
]
