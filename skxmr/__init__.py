"""skxmr: post-hoc cross-modal retrieval for scikit-learn.

Fit a method on training banks of paired embeddings, then re-score or
transform a test gallery; chain steps in ``Pipeline`` and tune them with
``GridSearchCV`` through :func:`skxmr.metrics.make_retrieval_scorer`.
"""

from ._base import GalleryIndex, PairedTransformer, RetrievalEstimator
from ._pairs import PairedItems, pair, split_pairs, unpair
from ._registry import register_method, registered_methods
from .alignment import CauchySchwarzAlignment, MultiModalCSAlignment
from .similarity import CosineSimilarity

__version__ = "0.1.0.dev0"

register_method(
    "Cosine",
    lambda direction="q2g": CosineSimilarity(direction=direction),
    family="baseline",
    description="plain cosine similarity of the L2-normalised embeddings",
)

__all__ = [
    "CauchySchwarzAlignment",
    "MultiModalCSAlignment",
    "CosineSimilarity",
    "GalleryIndex",
    "PairedTransformer",
    "RetrievalEstimator",
    "PairedItems",
    "pair",
    "split_pairs",
    "register_method",
    "registered_methods",
    "unpair",
]
