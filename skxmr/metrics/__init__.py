"""Retrieval metrics, hubness and degeneration diagnostics, and scorers."""

from .ranking import rank_of_relevant, recall_at_k

__all__ = ["rank_of_relevant", "recall_at_k"]
