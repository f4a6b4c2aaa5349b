"""skxmr: post-hoc cross-modal retrieval for scikit-learn.

Fit a method on training banks of paired embeddings, then re-score or
transform a test gallery; chain steps in ``Pipeline`` and tune them with
``GridSearchCV`` through :func:`skxmr.metrics.make_retrieval_scorer`.
"""

from . import datasets
from ._base import GalleryIndex, PairedTransformer, RetrievalEstimator
from ._pairs import PairedItems, pair, split_pairs, unpair
from ._registry import register_method, registered_methods
from .alignment import CauchySchwarzAlignment, MultiModalCSAlignment
from .hubness import CSLS, DBNorm, DualSoftmax, InvertedSoftmax, QBNorm
from .similarity import CosineSimilarity

__version__ = "0.1.0.dev0"

__all__ = [
    "CSLS",
    "CauchySchwarzAlignment",
    "MultiModalCSAlignment",
    "CosineSimilarity",
    "DBNorm",
    "DualSoftmax",
    "InvertedSoftmax",
    "QBNorm",
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
