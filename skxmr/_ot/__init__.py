"""The numerical core: entropic OT (Sinkhorn) solvers.

Solvers only: nothing here imports the estimators or the method registry.
:func:`sinkhorn_potentials` solves a stored similarity matrix and
:func:`sinkhorn_potentials_from_embeddings` a product of embeddings, stored
or streamed (see :mod:`skxmr._ot._potentials` for the numerics).
"""

from ._common import PRECISION_CONSTRAINT, SINKHORN_CONSTRAINTS, KernelBuffer
from ._potentials import (
    block_potentials,
    sinkhorn_potentials,
    sinkhorn_potentials_from_embeddings,
)

__all__ = [
    "KernelBuffer",
    "PRECISION_CONSTRAINT",
    "SINKHORN_CONSTRAINTS",
    "block_potentials",
    "sinkhorn_potentials",
    "sinkhorn_potentials_from_embeddings",
]
