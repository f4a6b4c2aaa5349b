"""The trainable calibration: linear maps learned with the calibrated triplet loss.

Both modalities' Gaussian items (packed diagonal rows, see
:func:`skxmr.calibration.pair_gaussians`) are mapped into a shared space by
``W_q`` and ``W_g`` (their input dimensions may differ). A projected item
``N(mu, diag(v))`` becomes ``N(W^T mu, W^T diag(v) W)``; we keep the
diagonal of that covariance, ``(W o W)^T v``, and scale the Gaussian with
its mean onto the unit sphere (``m = a / |a|``, ``u = diag / |a|^2`` with
``a = W^T mu``) so that the point match is a cosine, as in the paper.

The loss is the paper's bidirectional hinge triplet loss with the hardest
negative of the mini-batch (Eq. 2, VSE++), on calibrated similarities
``s = m_q^T m_g - weight * D(N_q, N_g)`` (Eq. 5 / 7). Gradients are
analytic (those of the distances sit beside their closed forms in
:mod:`skxmr.calibration._gaussian`); the optimiser is mini-batch Adam (as in the paper),
the one of the alignment estimators (:func:`skxmr.utils._optim.fit_projections`).
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state
from ..utils._compat import Interval, StrOptions

from .._base import PairedTransformer
from ..utils._docstrings import fill_doc
from ..utils._params import N_QUERY_FEATURES, param_doc
from ..utils._optim import fit_projections
from ._gaussian import (
    PAIRWISE,
    PAIRWISE_GRAD,
    _prepare,
    layout_dim,
    packed_feature_names,
    unpack_gaussians,
)
from .._pairs import resolve_split, split_pairs, unpair

TRAIN_DISTANCES = ("w2", "kl", "kl_reverse", "symmetric_kl", "bhattacharyya")


# --------------------------------------------------------------------------
# Forward / backward of one side
# --------------------------------------------------------------------------
def _project(W, mu, var):
    """Projected, sphere-scaled Gaussians and what the backward pass needs."""
    a = mu @ W
    norm = np.linalg.norm(a, axis=1)
    if np.any(norm <= np.finfo(float).tiny):
        raise FloatingPointError("a projected mean is zero; its direction is undefined")
    m = a / norm[:, None]
    p = var @ (W * W)
    u = p / norm[:, None] ** 2
    if not np.all(u > 0):
        raise FloatingPointError("a projected variance underflows to zero")
    return {"mu": mu, "var": var, "norm": norm, "m": m, "u": u}


def _project_backward(W, side, g_m, g_u):
    """Gradient w.r.t. ``W`` from gradients w.r.t. ``m`` and ``u``."""
    m, u, norm = side["m"], side["u"], side["norm"]
    g_a = (g_m - m * np.einsum("ik,ik->i", m, g_m)[:, None]) / norm[:, None]
    # u = p / |a|^2: d|a|/da = m.
    g_a -= (2.0 * np.einsum("ik,ik->i", g_u, u) / norm)[:, None] * m
    g_p = g_u / norm[:, None] ** 2
    return side["mu"].T @ g_a + 2.0 * W * (side["var"].T @ g_p)


def _triplet(S, R, margin):
    """Bidirectional hardest-negative hinge loss and dL/dS (paper Eq. 2)."""
    B = S.shape[0]
    diag = np.diag(S)
    masked = np.where(R, -np.inf, S)
    G = np.zeros_like(S)
    loss = 0.0
    rows = np.arange(B)
    for axis in (1, 0):  # 1: each query vs gallery negatives; 0: each gallery item
        j = np.argmax(masked, axis=axis)
        neg = masked[rows, j] if axis == 1 else masked[j, rows]
        hinge = margin - diag + neg
        active = np.isfinite(neg) & (hinge > 0)
        loss += hinge[active].sum()
        a = rows[active]
        np.add.at(G, (a, a), -1.0)
        if axis == 1:
            np.add.at(G, (a, j[active]), 1.0)
        else:
            np.add.at(G, (j[active], a), 1.0)
    return loss / B, G / B


def loss_and_gradient(Wq, Wg, batch_q, batch_g, relevance, *, distance, weight, margin):
    """Calibrated triplet loss of one mini-batch and its gradients.

    Parameters
    ----------
    Wq : ndarray of shape (d_q, k)
    Wg : ndarray of shape (d_g, k)
    batch_q, batch_g : tuple of (means, variances)
        Diagonal Gaussians of the batch's rows; row ``i`` of both is a pair.
    relevance : ndarray of shape (B, B), bool
        ``relevance[i, j]``: query ``i`` matches gallery ``j`` (never a negative).
    distance : str or None
    weight, margin : float

    Returns
    -------
    loss : float
    grad_q : ndarray of shape (d_q, k)
    grad_g : ndarray of shape (d_g, k)
    """
    q = _project(Wq, *batch_q)
    g = _project(Wg, *batch_g)
    S = q["m"] @ g["m"].T
    use_distance = distance is not None and weight
    if use_distance:
        # The closed forms of skxmr.calibration._gaussian, on the projected diagonal items.
        A = _prepare(q["m"], q["u"], "diag", need_pd=True)
        B = _prepare(g["m"], g["u"], "diag", need_pd=True)
        S = S - weight * PAIRWISE[distance](A, B)
    loss, G = _triplet(S, relevance, margin)
    g_mq, g_mg = G @ g["m"], G.T @ q["m"]
    g_uq, g_ug = np.zeros_like(q["u"]), np.zeros_like(g["u"])
    if use_distance:
        d_mq, d_uq, d_mg, d_ug = PAIRWISE_GRAD[distance](A, B, -weight * G)
        g_mq, g_uq, g_mg, g_ug = g_mq + d_mq, g_uq + d_uq, g_mg + d_mg, g_ug + d_ug
    return loss, _project_backward(Wq, q, g_mq, g_uq), _project_backward(Wg, g, g_mg, g_ug)


# --------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------
@fill_doc(n_query_features=param_doc("n_query_features"))
class CalibratedProjection(PairedTransformer):
    """Learn linear maps into a shared space with the calibrated triplet loss.

    The trainable form of the calibration paper on top of fixed features:
    ``W_q`` and ``W_g`` map the two modalities' diagonal Gaussian items
    (packed rows, :func:`skxmr.calibration.pair_gaussians`; the input
    dimensions may differ) into a ``n_components``-dimensional space where
    the projected means are unit vectors (the Gaussian is scaled with its
    mean) and the projected covariance is the diagonal of ``W^T Sigma W``.
    The objective is the bidirectional hinge triplet loss with the hardest
    in-batch negative (paper Eq. 2) on the calibrated similarity
    ``m_q^T m_g - weight * D(N_q, N_g)`` (Eq. 5 / 7): point matching plus
    distribution matching. The same calibrated similarity is used for
    positives and negatives (the paper's negative-pair formula flips the
    sign of the KL term, which would *pull* negatives' distributions
    together; we read it as a typo). The ``log`` of Eq. 3 is dropped (the
    hinge is 0 for satisfied triplets). Optimiser: mini-batch Adam with
    analytic gradients.

    Parameters
    ----------
    n_components : int, default=None
        Dimension of the shared space; ``None``: the smaller input dimension.
    distance : {"w2", "kl", "kl_reverse", "symmetric_kl", "bhattacharyya"} \
or None, default="w2"
        Distribution-matching term (closed forms only; ``"symmetric_kl"`` is
        the paper's "JS"). ``None``: point matching only.
    weight : float, default=0.5
        Weight of the distance, ``>= 0``.
    margin : float, default=0.2
        Triplet margin ``alpha``.
    batch_size : int, default=64
        Rows per mini-batch (the paper's 64); a lone last row joins the
        previous batch.
    learning_rate : float, default=0.01
        Adam step size.
    max_iter : int, default=200
        Maximum number of epochs.
    tol : float, default=1e-4
        Training stops when the epoch loss has not improved by ``tol``
        (relative; absolute below 1) for ``n_iter_no_change`` consecutive
        epochs. Reaching ``max_iter`` first raises a ``ConvergenceWarning``.
    n_iter_no_change : int, default=10
    init : {"auto", "identity", "random"}, default="auto"
        ``"identity"``: the first ``n_components`` coordinates (for two
        halves already in one space); ``"random"``: Gaussian with variance
        ``1 / d``; ``"auto"``: identity when both inputs and the output
        have the same dimension, random otherwise.
    random_state : int, RandomState instance or None, default=None
        Initialisation and batch order.
    {n_query_features}

    Attributes
    ----------
    query_projection_ : ndarray of shape (d_q, n_components)
    gallery_projection_ : ndarray of shape (d_g, n_components)
    loss_curve_ : list of float
        Training loss of each epoch (the mean over its mini-batches).
    n_iter_ : int
        Epochs run.
    n_query_features_out_ : int
        Width of the query half of the output (``2 * n_components``).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import CalibratedProjection, pair_gaussians
    >>> rng = np.random.default_rng(0)
    >>> mq, mg = rng.standard_normal((40, 6)), rng.standard_normal((40, 4))
    >>> X = pair_gaussians(mq, np.full((40, 6), .1), mg, np.full((40, 4), .1))
    >>> proj = CalibratedProjection(n_components=3, tol=0.5, n_iter_no_change=2, random_state=0)
    >>> proj.fit_transform(X).shape   # [m_q, log u_q, m_g, log u_g]
    (40, 12)
    >>> len(proj.loss_curve_) == proj.n_iter_
    True
    """

    _parameter_constraints = {
        "n_query_features": N_QUERY_FEATURES,
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "distance": [StrOptions(set(TRAIN_DISTANCES)), None],
        "weight": [Interval(numbers.Real, 0, None, closed="left")],
        "margin": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "init": [StrOptions({"auto", "identity", "random"})],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=None, *, distance="w2", weight=0.5, margin=0.2,
                 batch_size=64, learning_rate=0.01, max_iter=200, tol=1e-4,
                 n_iter_no_change=10, init="auto", random_state=None,
                 n_query_features=None):
        self.n_components = n_components
        self.distance = distance
        self.weight = weight
        self.margin = margin
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.init = init
        self.random_state = random_state
        self.n_query_features = n_query_features

    def _halves(self, X):
        left, right = unpair(X, self.n_query_features)
        mq, vq = unpack_gaussians(left, "diag", "X (query half)")
        mg, vg = unpack_gaussians(right, "diag", "X (gallery half)")
        for name, mu in (("query", mq), ("gallery", mg)):
            zero = np.flatnonzero(~np.any(mu != 0, axis=1))
            if zero.size:
                raise ValueError(
                    f"X (the {name} half) has {zero.size} item(s) with a zero mean (first "
                    f"at row {zero[0]}); a projected Gaussian is scaled onto the unit "
                    "sphere by its mean, which then has no direction."
                )
        return (mq, vq), (mg, vg)

    def _init_weights(self, d_q, d_g, k, rng):
        init = self.init
        if init == "auto":
            init = "identity" if d_q == d_g == k else "random"
        if init == "identity":
            return np.eye(d_q, k), np.eye(d_g, k)
        return (rng.standard_normal((d_q, k)) / np.sqrt(d_q),
                rng.standard_normal((d_g, k)) / np.sqrt(d_g))

    def _n_query_features_out(self, n_query_features):
        return None  # both halves are n_components Gaussians

    def _fit_pairs(self, X, y):
        cut = resolve_split(X.shape[1], self.n_query_features)
        d_q = layout_dim(cut, "diag", "X (query half)")
        d_g = layout_dim(X.shape[1] - cut, "diag", "X (gallery half)")
        k = self.n_components or min(d_q, d_g)
        side_q, side_g = self._halves(X)
        items = split_pairs(X, y, n_query_features=self.n_query_features)
        relevance = items.relevance.tocsr()
        rng = check_random_state(self.random_state)
        Wq, Wg = self._init_weights(d_q, d_g, k, rng)

        def make_batch(rows):
            R = relevance[items.source_index[rows]][:, items.target_index[rows]].toarray()
            return (side_q[0][rows], side_q[1][rows]), (side_g[0][rows], side_g[1][rows]), R

        def loss_and_grad(params, data):
            loss, grad_q, grad_g = loss_and_gradient(
                *params, *data, distance=self.distance, weight=self.weight, margin=self.margin
            )
            return loss, [grad_q, grad_g]

        # Batches of batch_size rows as in the paper; only a lone last row (no
        # in-batch negative) joins the previous batch.
        result = fit_projections(
            self, loss_and_grad, make_batch, np.arange(X.shape[0]), [Wq, Wg], rng, "adam",
            merge_tail=1,
        )
        self.loss_curve_, self.n_iter_ = result.loss_curve, result.n_iter
        self.query_projection_, self.gallery_projection_ = result.params
        self.n_query_features_out_ = 2 * k

    def _transform_pairs(self, X):
        (mq, vq), (mg, vg) = self._halves(X)
        if mq.shape[1] != self.query_projection_.shape[0]:
            raise ValueError(
                f"X has a {mq.shape[1]}-dimensional query half, but "
                f"CalibratedProjection was fitted with {self.query_projection_.shape[0]}."
            )
        parts = []
        for (mu, var), W, name in ((
            (mq, vq), self.query_projection_, "query"), ((mg, vg), self.gallery_projection_,
                                                          "gallery")):
            try:
                side = _project(W, mu, var)
            except FloatingPointError as exc:
                raise ValueError(
                    f"X (the {name} half) has an item whose Gaussian cannot be "
                    f"projected: {exc}."
                ) from None
            parts += [side["m"], np.log(side["u"])]
        return np.hstack(parts).astype(X.dtype, copy=False)

    def _feature_names_out(self, input_features):
        k = self.query_projection_.shape[1]
        return packed_feature_names(k, "diag", "query_") + packed_feature_names(
            k, "diag", "gallery_"
        )
