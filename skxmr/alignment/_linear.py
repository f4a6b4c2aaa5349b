"""What every two-view alignment shares: one affine map per half into a shared space.

Every alignment of the family (the closed-form baselines and the learned
Cauchy-Schwarz projections) maps a row ``x`` of a half as

    z = normalise((normalise(x) - mean) @ W),

with one ``(mean, W)`` per half: ``query_mean_``/``query_projection_`` for
the left half, ``gallery_mean_``/``gallery_projection_`` for the right one.
:class:`LinearAlignment` holds that transform (paired rows, one half alone
for serving, output names); subclasses implement ``_fit_pairs`` and set the
four attributes with :meth:`LinearAlignment._set_maps`.
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._base import PairedTransformer
from .._pairs import split_pairs, unpair
from ..utils._validation import check_matrix, l2_normalize

__all__ = ["LinearAlignment", "paired_halves"]


def paired_halves(X, y, n_query_features):
    """The L2-normalised float64 halves of training pairs, and their items.

    Returns ``(Q, G, items)``: ``Q[r], G[r]`` are the halves of row ``r``
    (duplicated items repeated, so the rows stay paired), ``items`` the
    :class:`~skxmr.PairedItems` (unique items, relevance) of the left half
    querying the right one.
    """
    items = split_pairs(X, y, n_query_features=n_query_features, direction="q2g")
    items.require_banks()
    Q = l2_normalize(items.sources.astype(np.float64), "X (query half)")
    G = l2_normalize(items.targets.astype(np.float64), "X (gallery half)")
    return Q[items.source_index], G[items.target_index], items


def apply_map(A, mean, W, name):
    """``normalise((normalise(A) - mean) @ W)`` in ``A``'s dtype."""
    Z = (l2_normalize(A, name) - mean.astype(A.dtype, copy=False)) @ W.astype(A.dtype, copy=False)
    return l2_normalize(Z, f"{name} (aligned)")


class LinearAlignment(PairedTransformer):
    """Base of the two-view alignments: an affine map of each half (abstract).

    ``transform`` returns ``hstack([z_q, z_g])``, both halves in the shared
    space (``n_components_`` columns each), so the estimator chains before
    any similarity or hubness step in a :class:`~sklearn.pipeline.Pipeline`.
    The left half is always mapped by the query map, whatever ``direction``
    says (the alignments are symmetric; ``direction`` is part of the paired
    row convention only).
    """

    def _set_maps(self, query_mean, query_projection, gallery_mean, gallery_projection):
        self.query_mean_ = np.asarray(query_mean, dtype=np.float64)
        self.query_projection_ = np.asarray(query_projection, dtype=np.float64)
        self.gallery_mean_ = np.asarray(gallery_mean, dtype=np.float64)
        self.gallery_projection_ = np.asarray(gallery_projection, dtype=np.float64)
        self.n_components_ = self.query_projection_.shape[1]

    def _transform_pairs(self, X):
        Q, G = unpair(X, self.query_projection_.shape[0])
        return np.hstack([
            apply_map(Q, self.query_mean_, self.query_projection_, "X (query half)"),
            apply_map(G, self.gallery_mean_, self.gallery_projection_, "X (gallery half)"),
        ])

    def _n_query_features_out(self, n_query_features):
        return None  # both halves land in the shared space

    def _transform_half(self, A, half):
        """Serving (:func:`skxmr.index`): map one half into the shared space."""
        check_is_fitted(self)
        mean, W, name = (
            (self.query_mean_, self.query_projection_, "queries") if half == "left"
            else (self.gallery_mean_, self.gallery_projection_, "gallery")
        )
        A = check_matrix(A, name)
        if A.shape[1] != W.shape[0]:
            raise ValueError(
                f"{name} has {A.shape[1]} features; the fitted {half} half has {W.shape[0]}."
            )
        return apply_map(A, mean, W, name)

    def _feature_names_out(self, input_features):
        prefix = type(self).__name__.lower()
        k = self.n_components_
        return [f"{prefix}_query{j}" for j in range(k)] + [
            f"{prefix}_gallery{j}" for j in range(k)
        ]
