"""skxmr: post-hoc cross-modal retrieval for scikit-learn.

Fit a method on training banks of paired embeddings, then re-score or
transform a test gallery; chain steps in ``Pipeline`` and tune them with
``GridSearchCV`` through :func:`skxmr.metrics.make_retrieval_scorer`.
"""

from . import datasets, metrics  # noqa: F401  (public subpackages: skxmr.datasets, skxmr.metrics)
from ._base import PairedTransformer, RetrievalEstimator
from ._serving import GalleryIndex, index
from ._pairs import PairedItems, pair, split_pairs, unpair
from ._registry import register_method, registered_methods
from .alignment import CauchySchwarzAlignment, MultiModalCSAlignment
from .calibration import (
    CalibratedProjection,
    GaussianEmbedding,
    NeighborhoodGaussian,
    ProbabilisticCalibration,
    pair_gaussians,
)
from .graph import InvGC
from .hubness import (
    CSLS,
    DBNorm,
    DistributionNormalization,
    DualBankSinkhornNormalizer,
    DualSoftmax,
    InvertedSoftmax,
    LocalScaling,
    MutualProximity,
    NearestNeighborNormalization,
    QBNorm,
    SinkhornNormalizer,
)
from .similarity import CosineSimilarity

__version__ = "0.1.0.dev0"

__all__ = [
    "CalibratedProjection",
    "CauchySchwarzAlignment",
    "CosineSimilarity",
    "CSLS",
    "DBNorm",
    "DistributionNormalization",
    "DualBankSinkhornNormalizer",
    "DualSoftmax",
    "GalleryIndex",
    "GaussianEmbedding",
    "InvertedSoftmax",
    "InvGC",
    "LocalScaling",
    "MutualProximity",
    "MultiModalCSAlignment",
    "NearestNeighborNormalization",
    "NeighborhoodGaussian",
    "PairedItems",
    "PairedTransformer",
    "ProbabilisticCalibration",
    "QBNorm",
    "RetrievalEstimator",
    "SinkhornNormalizer",
    "index",
    "pair",
    "pair_gaussians",
    "register_method",
    "registered_methods",
    "split_pairs",
    "unpair",
]
