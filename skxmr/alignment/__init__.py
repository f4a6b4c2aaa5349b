"""Alignment of two or more modalities into one shared space.

Closed-form baselines (:class:`ProcrustesAlignment`, :class:`PLSAlignment`,
:class:`RidgeAlignment`) fit in one pass; :class:`CauchySchwarzAlignment`
starts from one of them and learns linear projections of the query and the
gallery half of paired rows by minimising the bidirectional Cauchy-Schwarz
matching loss ("Cross-Modal Retrieval with Cauchy-Schwarz Divergence",
arXiv 2509.21339); :class:`MultiModalCSAlignment` does the same for three
or more modalities with the generalised CS divergence. One private module
per part: ``_linear`` (the affine map of each half they share),
``_closed_form`` (the baselines), ``_cs`` (the trained estimators) and
``_losses`` (the matching losses with their analytic gradients, public
here).
"""

from ._closed_form import PLSAlignment, ProcrustesAlignment, RidgeAlignment
from ._cs import CauchySchwarzAlignment, MultiModalCSAlignment
from ._losses import cauchy_schwarz_loss, cmpm_kl_loss, generalized_cauchy_schwarz_loss

__all__ = [
    "CauchySchwarzAlignment",
    "MultiModalCSAlignment",
    "PLSAlignment",
    "ProcrustesAlignment",
    "RidgeAlignment",
    "cauchy_schwarz_loss",
    "cmpm_kl_loss",
    "generalized_cauchy_schwarz_loss",
]
