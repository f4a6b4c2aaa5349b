"""Hubness reduction by re-scoring: IS, QB-Norm, DSL, CSLS, DBNorm, SN and DBSN,
and the methods peer libraries ship: NNN, DN, mutual proximity, local scaling.

Every method re-scores the test similarities ``S = Q Gᵀ`` (cosines of
L2-normalised embeddings) so that *hubs* -- gallery items that are close to
very many queries -- are demoted. Notation: ``Sbq = Bq Gᵀ``
(query bank × test gallery), ``Sgg = Bg Gᵀ`` (gallery bank × test gallery).

All methods are written on the similarity scale, as

.. math::  S_\\alpha(q, g) = S(q, g) - \\alpha\\,\\Delta(q, g),

where ``S - Δ`` is the method's score (for the softmax-based methods, the
temperature times the log of the paper's probability-like score, which ranks
every query's row exactly as the paper does and never overflows) and
``α = strength``: ``α = 0`` is plain cosine, ``α = 1`` the published method,
values in between interpolate. Every log-sum-exp is taken in float64 in the
max-shifted form of :func:`scipy.special.logsumexp`, so tiny temperatures
give finite scores.

Each method has a two-view function on explicit matrices
(:func:`sinkhorn_scores`, :func:`dual_bank_sinkhorn_scores`,
:func:`inverted_softmax_scores`, :func:`qb_norm_scores`,
:func:`dual_softmax_scores`, :func:`csls_scores`, :func:`dbnorm_scores`,
:func:`nnn_scores`, :func:`distribution_normalization_scores`,
:func:`mutual_proximity_scores`, :func:`local_scaling_scores`) and
an estimator on paired rows that runs the same code (the function binds a
transient estimator to the banks it is given).
"""

# Private modules, one per family; the Sinkhorn estimators first, so that the
# benchmark table keeps its order (registration order).
from ._sinkhorn import (
    DualBankSinkhornNormalizer,
    SinkhornNormalizer,
    dual_bank_sinkhorn_normalize,  # noqa: F401  (deprecated name of dual_bank_sinkhorn_scores)
    dual_bank_sinkhorn_scores,
    sinkhorn_normalize,  # noqa: F401  (deprecated name of sinkhorn_scores)
    sinkhorn_scores,
)
from ._softmax import (
    DualSoftmax,
    InvertedSoftmax,
    QBNorm,
    dual_softmax_scores,
    inverted_softmax_scores,
    qb_norm_scores,
)
from ._neighbourhood import CSLS, csls_scores
from ._dbnorm import DBNorm, dbnorm_scores
from ._peers import (
    DistributionNormalization,
    LocalScaling,
    MutualProximity,
    NearestNeighborNormalization,
    distribution_normalization_scores,
    local_scaling_scores,
    mutual_proximity_scores,
    nnn_scores,
)
from .._ot import sinkhorn_potentials

__all__ = [
    "CSLS",
    "DBNorm",
    "DistributionNormalization",
    "DualBankSinkhornNormalizer",
    "DualSoftmax",
    "InvertedSoftmax",
    "LocalScaling",
    "MutualProximity",
    "NearestNeighborNormalization",
    "QBNorm",
    "SinkhornNormalizer",
    "csls_scores",
    "dbnorm_scores",
    "distribution_normalization_scores",
    "dual_bank_sinkhorn_scores",
    "dual_softmax_scores",
    "inverted_softmax_scores",
    "local_scaling_scores",
    "mutual_proximity_scores",
    "nnn_scores",
    "qb_norm_scores",
    "sinkhorn_scores",
    "sinkhorn_potentials",
]
