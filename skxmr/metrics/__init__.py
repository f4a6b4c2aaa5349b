"""Retrieval metrics, hubness and degeneration diagnostics, and scorers."""

from .degeneration import degeneration_score, mean_similarity, mean_similarity_at_k
from .ranking import rank_of_relevant, recall_at_k

__all__ = [
    "degeneration_score",
    "mean_similarity",
    "mean_similarity_at_k",
    "rank_of_relevant",
    "recall_at_k",
]
