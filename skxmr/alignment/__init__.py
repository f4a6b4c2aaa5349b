"""Cauchy-Schwarz divergence alignment of two or more modalities.

:class:`CauchySchwarzAlignment` learns linear projections of the query and
the gallery half of paired rows into one shared, L2-normalised space by
minimising the bidirectional Cauchy-Schwarz matching loss ("Cross-Modal
Retrieval with Cauchy-Schwarz Divergence", arXiv 2509.21339);
:class:`MultiModalCSAlignment` does the same for three or more modalities
with the generalised CS divergence. One private module per part: ``_cs``
(the estimators) and ``_losses`` (the matching losses with their analytic
gradients, public here).
"""

from ._cs import CauchySchwarzAlignment, MultiModalCSAlignment
from ._losses import cauchy_schwarz_loss, cmpm_kl_loss, generalized_cauchy_schwarz_loss

__all__ = [
    "CauchySchwarzAlignment",
    "MultiModalCSAlignment",
    "cauchy_schwarz_loss",
    "cmpm_kl_loss",
    "generalized_cauchy_schwarz_loss",
]
