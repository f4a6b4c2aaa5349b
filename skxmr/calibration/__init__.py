"""Calibrated similarity of probabilistic (Gaussian) embeddings.

Each item is a Gaussian ``N(mu, Sigma)`` estimated from several augmented
embeddings of it; the calibrated similarity is the point match minus a
distribution distance (2-Wasserstein, KL, JS, Bhattacharyya). One private
module per part: ``_gaussian`` (the distances, packing and estimation of
Gaussians), ``_probabilistic`` (:class:`GaussianEmbedding`,
:class:`ProbabilisticCalibration`, :class:`NeighborhoodGaussian` and the
functional forms) and ``_projection`` (:class:`CalibratedProjection`).
"""

import warnings

from ._probabilistic import (
    CalibratedProjection,
    GaussianEmbedding,
    NeighborhoodGaussian,
    ProbabilisticCalibration,
    bhattacharyya_distance,
    calibrated_similarity,
    js_divergence,
    kl_divergence,
    pair_gaussians,
    symmetric_kl_divergence,
    unpair_gaussians,
    wasserstein2_squared,
)

__all__ = [
    "CalibratedProjection",
    "GaussianEmbedding",
    "NeighborhoodGaussian",
    "ProbabilisticCalibration",
    "bhattacharyya_distance",
    "calibrated_similarity",
    "js_divergence",
    "kl_divergence",
    "pair_gaussians",
    "symmetric_kl_divergence",
    "unpair_gaussians",
    "wasserstein2_squared",
]


def __getattr__(name):
    # Moved to skxmr.datasets with the other generators; the old name works
    # for one release.
    if name == "make_multiplicity_problem":
        warnings.warn(
            "skxmr.calibration.make_multiplicity_problem moved to "
            "skxmr.datasets.make_multiplicity_problem; the old name will be "
            "removed in the next release.",
            FutureWarning,
            stacklevel=2,
        )
        from ..datasets import make_multiplicity_problem

        return make_multiplicity_problem
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
