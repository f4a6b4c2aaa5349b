"""Retrieval metrics, hubness and degeneration diagnostics, and scorers."""

from .divergence import cs_divergence, gcs_divergence
from .ranking import rank_of_relevant, recall_at_k

__all__ = ["cs_divergence", "gcs_divergence", "rank_of_relevant", "recall_at_k"]
