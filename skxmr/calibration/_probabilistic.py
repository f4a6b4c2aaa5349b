"""Calibrated similarity for probabilistic (Gaussian) embeddings.

Each item (a caption, an image) is a Gaussian ``N(mu, Sigma)`` estimated from
several augmented embeddings of it. The calibrated similarity of the
calibration paper (Eq. 5 with the 2-Wasserstein distance of Eq. 7) is the
point match minus a distribution distance,

    s(q, g) = mu_q^T mu_g - weight * D(N_q, N_g),

and ``distance=None`` is the paper's "w/o calibration" row.

Paired-row convention: every half of ``X`` is a *packed Gaussian*
``[mean | covariance parameters]`` (log-variances for ``"diag"``, one
log-variance for ``"spherical"``, a log-Cholesky factor for ``"full"``),
built by :func:`pair_gaussians` (or :class:`GaussianEmbedding` per side, or
:class:`NeighborhoodGaussian` for plain point embeddings). See
``doc/calibration.rst``.
"""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array, check_random_state
from ..utils._compat import Interval, StrOptions
from ..utils._compat import get_output_config
from sklearn.utils.validation import check_is_fitted

from .._base import PairedTransformer, RetrievalEstimator, StrictParamsMixin
from ._projection import CalibratedProjection
from ..utils._chunking import map_row_chunks
from ..utils._docstrings import fill_doc
from ..utils._params import (
    N_JOBS,
    N_NEIGHBORS,
    N_QUERY_FEATURES,
    PAIR_JOBS_DOC,
    keyword_only,
    param_doc,
    param_docs,
)
from ._gaussian import (
    COVARIANCE_TYPES,
    NEED_PD,
    _as_full,
    _bytes_per_row,
    _prepare,
    bhattacharyya_distance,
    check_gaussians,
    estimate_gaussians,
    js_divergence,
    kl_divergence,
    layout_dim,
    n_covariance_params,
    pack_gaussians,
    packed_feature_names,
    paired_prepared,
    pairwise_prepared,
    standard_normal_draws,
    symmetric_kl_divergence,
    unpack_gaussians,
    wasserstein2_squared,
)
from .._pairs import resolve_split, split_pairs, stack_pairs, unpair
from .._registry import register_method
from ..utils._validation import check_matrix, check_same_width, l2_normalize, result_dtype

DISTANCES = ("w2", "kl", "kl_reverse", "symmetric_kl", "js", "bhattacharyya")
# Asymmetric distances seen from the other half (direction="g2q").
_SWAPPED = {"kl": "kl_reverse", "kl_reverse": "kl"}


_SHRINKAGE = [StrOptions({"ledoit-wolf"}), Interval(numbers.Real, 0, 1, closed="both"), None]


# --------------------------------------------------------------------------
# Gaussians from samples
# --------------------------------------------------------------------------
class GaussianEmbedding(StrictParamsMixin, TransformerMixin, BaseEstimator):
    """Per-item Gaussians from several embeddings (augmentations) per item.

    A batched :class:`sklearn.covariance.LedoitWolf`: for every item, the
    mean of its samples and their covariance, shrunk towards ``mu I``
    (``mu`` the item's mean variance) so that a few samples in many
    dimensions still give a positive definite matrix. All items are
    estimated at once (no loop over items); the Ledoit-Wolf intensity is the
    formula of :func:`sklearn.covariance.ledoit_wolf_shrinkage` in batched
    form.

    Parameters
    ----------
    covariance : {"spherical", "diag", "full"}, default="diag"
        ``"diag"`` keeps the diagonal of the (shrunk) estimate;
        ``"spherical"`` its mean variance (shrinkage does not change it).
    shrinkage : "ledoit-wolf", float in [0, 1] or None, default="ledoit-wolf"
        Weight of the scaled identity in ``(1 - s) * empirical + s * mu I``;
        ``None`` means the empirical (biased, 1/n) covariance. With few
        samples (n_samples <= d) the Ledoit-Wolf intensity is large and
        diagonal estimates move towards spherical ones; it is 0 for exactly
        2 samples.
    reg_covar : float, default=0.0
        Added to the diagonal of every covariance afterwards.

    Attributes
    ----------
    means_ : ndarray of shape (n_items, d)
        Means of the items seen in ``fit`` (in order of first appearance).
    covariances_ : ndarray of shape (n_items,), (n_items, d) or (n_items, d, d)
        Their covariances.
    shrinkage_ : ndarray of shape (n_items,)
        Shrinkage intensity used for each item.
    item_ids_ : ndarray of shape (n_items,)
        Item ids in the order of the rows of ``means_``.
    n_features_in_ : int
        Embedding dimension ``d``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import GaussianEmbedding
    >>> samples = np.random.default_rng(0).standard_normal((5, 8, 3))
    >>> ge = GaussianEmbedding(covariance="full").fit(samples)
    >>> ge.means_.shape, ge.covariances_.shape
    ((5, 3), (5, 3, 3))
    >>> ge.transform(samples).shape   # packed rows: mean + log-Cholesky
    (5, 9)
    """

    _parameter_constraints = {
        "covariance": [StrOptions(set(COVARIANCE_TYPES))],
        "shrinkage": _SHRINKAGE,
        "reg_covar": [Interval(numbers.Real, 0, None, closed="left")],
    }

    @keyword_only("shrinkage", "reg_covar")
    def __init__(self, covariance="diag", *, shrinkage="ledoit-wolf", reg_covar=0.0):
        self.covariance = covariance
        self.shrinkage = shrinkage
        self.reg_covar = reg_covar

    def _estimate(self, X, item_ids):
        return estimate_gaussians(
            X, item_ids, covariance=self.covariance, shrinkage=self.shrinkage,
            reg_covar=self.reg_covar, name="X",
        )

    def fit(self, X, y=None, item_ids=None):
        """Estimate the Gaussians of the items in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_items, n_samples, d) or (n_rows, d)
            Several embeddings per item (at least 2).
        y : None
            Ignored.
        item_ids : array-like of shape (n_rows,), default=None
            Item of each row, required for 2-D ``X``.

        Returns
        -------
        self : GaussianEmbedding
        """
        self._validate_params()
        X = _check_samples(X)
        means, covs, shrink, ids = self._estimate(X, item_ids)
        dtype = result_dtype(X)
        self.means_ = means.astype(dtype, copy=False)
        self.covariances_ = covs.astype(dtype, copy=False)
        self.shrinkage_ = shrink
        self.item_ids_ = ids
        self.n_features_in_ = means.shape[1]
        return self

    def transform(self, X, item_ids=None):
        """Packed Gaussian rows ``[mean | covariance parameters]`` of each item.

        Parameters
        ----------
        X : array-like of shape (n_items, n_samples, d) or (n_rows, d)
        item_ids : array-like of shape (n_rows,), default=None

        Returns
        -------
        rows : ndarray of shape (n_items, d + n_params)
            See :func:`pair_gaussians` for the layout.
        """
        check_is_fitted(self)
        X = _check_samples(X)
        if X.shape[-1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[-1]} features, but GaussianEmbedding was fitted "
                f"with {self.n_features_in_}."
            )
        means, covs, _, ids = self._estimate(X, item_ids)
        return self._item_rows(pack_gaussians(means, covs).astype(result_dtype(X), copy=False), ids)

    def fit_transform(self, X, y=None, item_ids=None):
        """Fit, then return the packed rows of the same items.

        Parameters
        ----------
        X : array-like of shape (n_items, n_samples, d) or (n_rows, d)
        y : None
            Ignored.
        item_ids : array-like of shape (n_rows,), default=None

        Returns
        -------
        rows : ndarray of shape (n_items, d + n_params)
        """
        self.fit(X, item_ids=item_ids)
        return self._item_rows(pack_gaussians(self.means_, self.covariances_), self.item_ids_)

    def _item_rows(self, rows, ids):
        # One row per item, not per input row: under set_output(transform=
        # "pandas") the frame is indexed by item id, since the input's row
        # index (one entry per sample) does not fit it.
        if get_output_config("transform", self)["dense"] == "pandas":
            import pandas as pd

            return pd.DataFrame(rows, index=pd.Index(ids, name="item_id"))
        return rows

    def get_feature_names_out(self, input_features=None):
        """Names of the packed columns: ``mean0..``, then the covariance parameters.

        Parameters
        ----------
        input_features : None
            Ignored (the output columns are named by their role).

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        return np.asarray(packed_feature_names(self.n_features_in_, self.covariance), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def _check_samples(X):
    """Samples as an array: 3-D, or 2-D rows (validated in full by the estimation)."""
    if sp.issparse(X) or hasattr(X, "to_numpy"):
        # sparse: check_array's TypeError; a DataFrame: its 2-D rows
        X = check_array(X, dtype=None, ensure_all_finite=False, input_name="X")
    X = np.asarray(X)
    if X.ndim not in (2, 3):
        raise ValueError(
            "X must be 3-D (n_items, n_samples, n_features) or 2-D (n_rows, "
            f"n_features) with item_ids, got a {X.ndim}-D array."
        )
    return X


# --------------------------------------------------------------------------
# Paired rows of Gaussians
# --------------------------------------------------------------------------
def pair_gaussians(means_q, covariances_q, means_g, covariances_g):
    """Paired rows ``X = [mu_q, P_q, mu_g, P_g]`` of matching Gaussians.

    ``P`` are the packed covariance parameters: log-variances (``(n, d)``
    variances, "diag"), one log-variance (``(n,)``, "spherical") or the
    log-Cholesky factor (``(n, d, d)``, "full": ``log diag(L)`` then the
    strictly lower entries row by row, ``Sigma = L L^T``). Logs make every
    finite row a valid Gaussian. Both sides must use the same kind; pass it
    as ``covariance`` to the estimators. The query half is the left
    ``d_q + n_params`` columns (``n_query_features`` when the two sides
    differ in ``d``).

    Parameters
    ----------
    means_q : array-like of shape (n_pairs, d_q)
    covariances_q : array-like of shape (n_pairs,), (n_pairs, d_q) or (n_pairs, d_q, d_q)
    means_g : array-like of shape (n_pairs, d_g)
    covariances_g : array-like, same kind as ``covariances_q``

    Returns
    -------
    X : ndarray of shape (n_pairs, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import pair_gaussians, unpair_gaussians
    >>> X = pair_gaussians(np.zeros((2, 3)), np.ones((2, 3)), np.ones((2, 3)), 2 * np.ones((2, 3)))
    >>> X.shape
    (2, 12)
    >>> unpair_gaussians(X)[3]
    array([[2., 2., 2.],
           [2., 2., 2.]])
    """
    kinds = [np.ndim(c) for c in (covariances_q, covariances_g)]
    if kinds[0] != kinds[1]:
        raise ValueError(
            f"covariances_q is {kinds[0]}-D but covariances_g is {kinds[1]}-D; both "
            "sides must use the same covariance kind."
        )
    Pq = _pack_named(means_q, covariances_q, "_q")
    Pg = _pack_named(means_g, covariances_g, "_g")
    return stack_pairs(Pq, Pg, "means_q", "means_g")


def _pack_named(means, covariances, suffix):
    try:
        return pack_gaussians(means, covariances)
    except ValueError as exc:  # name the caller's arguments
        msg = str(exc).replace("covariances", f"covariances{suffix}")
        raise ValueError(msg.replace("means", f"means{suffix}")) from None


def unpair_gaussians(X, covariance="diag", n_query_features=None):
    """Means and covariances of both halves of packed Gaussian rows.

    Parameters
    ----------
    X : array-like of shape (n_pairs, n_features)
        Built by :func:`pair_gaussians`.
    covariance : {"spherical", "diag", "full"}, default="diag"
    n_query_features : int, default=None
        Width of the query half; ``None`` means half of the columns.

    Returns
    -------
    means_q, covariances_q, means_g, covariances_g : ndarray
        float64.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import pair_gaussians, unpair_gaussians
    >>> X = pair_gaussians(np.zeros((2, 3)), np.full(2, .5), np.ones((2, 3)), np.ones(2))
    >>> unpair_gaussians(X, covariance="spherical")[1]
    array([0.5, 0.5])
    """
    if covariance not in COVARIANCE_TYPES:
        raise ValueError(f"covariance must be one of {COVARIANCE_TYPES}, got {covariance!r}.")
    left, right = unpair(X, n_query_features)
    mq, cq = unpack_gaussians(left, covariance, "X (query half)")
    mg, cg = unpack_gaussians(right, covariance, "X (gallery half)")
    return mq, cq, mg, cg


def _check_distance(distance):
    if distance is not None and distance not in DISTANCES:
        raise ValueError(f"distance must be None or one of {DISTANCES}, got {distance!r}.")


def _check_weight(weight):
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real):
        raise TypeError(f"weight must be a real number, got {type(weight).__name__}.")
    if not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"weight must be a finite number >= 0, got {weight!r}.")


def calibrated_similarity(means_q, covariances_q, means_g, covariances_g, *,
                          distance="w2", weight=0.5, n_mc_samples=128,
                          random_state=None, n_jobs=None):
    """Calibrated similarity of all query x gallery Gaussian pairs.

    ``S = mu_q^T mu_g - weight * D(N_q, N_g)`` (paper Eq. 5, with Eq. 7 for
    ``"w2"``), with ``weight`` multiplying the raw distance (the estimator
    :class:`ProbabilisticCalibration` divides it by the median distance of
    its training pairs first, so that its ``weight`` is dimensionless). Asymmetric divergences are taken from the query side:
    ``"kl"`` is ``KL(N_q || N_g)`` -- the paper's ``KL(p(v) || p(u))`` with
    captions ``v`` as queries -- and ``"kl_reverse"`` is ``KL(N_g || N_q)``.

    Parameters
    ----------
    means_q : array-like of shape (n_q, d)
    covariances_q : array-like of shape (n_q,), (n_q, d) or (n_q, d, d)
    means_g : array-like of shape (n_g, d)
    covariances_g : array-like of shape (n_g,), (n_g, d) or (n_g, d, d)
    distance : {"w2", "kl", "kl_reverse", "symmetric_kl", "js", \
"bhattacharyya"} or None, default="w2"
        ``None``: point matching only ("w/o calibration").
    weight : float, default=0.5
        Non-negative, finite (see :class:`ProbabilisticCalibration`).
    n_mc_samples : int, default=128
        Monte-Carlo draws of ``"js"`` (see :func:`js_divergence`).
    random_state : int, RandomState instance or None, default=None
        Seeds the ``"js"`` draws.
    n_jobs : int, default=None

    Returns
    -------
    S : ndarray of shape (n_q, n_g)

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import calibrated_similarity
    >>> mu = np.eye(2)
    >>> calibrated_similarity(mu, np.array([.1, .1]), mu, np.array([.1, .4]), weight=1.0).round(3)
    array([[ 1. , -2.2],
           [-2. ,  0.8]])
    """
    _check_distance(distance)
    _check_weight(weight)
    need_pd = NEED_PD.get(distance, False)
    Mq, Cq, kq, tq = check_gaussians(means_q, covariances_q, "_q", need_pd=need_pd)
    Mg, Cg, kg, tg = check_gaussians(means_g, covariances_g, "_g", need_pd=need_pd)
    check_same_width(Mq, Mg, "means_q", "means_g")
    dtype = result_dtype(np.empty(0, tq), np.empty(0, tg))
    S = Mq @ Mg.T
    if distance is not None and weight:
        A = _prepare(Mq, Cq, kq, need_pd=need_pd, name="_q")
        B = _prepare(Mg, Cg, kg, need_pd=need_pd, name="_g")
        if ("cov" in A) != ("cov" in B):
            A, B = _as_full(A), _as_full(B)
        draws = standard_normal_draws(n_mc_samples, Mq.shape[1], random_state)
        S -= weight * pairwise_prepared(distance, A, B, draws=draws, n_jobs=n_jobs)
    return S.astype(dtype, copy=False)


# --------------------------------------------------------------------------
# The score estimator
# --------------------------------------------------------------------------
@fill_doc(common=PAIR_JOBS_DOC)
class ProbabilisticCalibration(RetrievalEstimator):
    """Calibrated similarity of Gaussian (probabilistic) embeddings.

    ``s(q, g) = mu_q^T mu_g - weight * D(N_q, N_g)``: the point match of the
    means (the expected inner product of independent draws) minus a
    distribution distance (paper Eq. 5; Eq. 7 for ``"w2"``). Both halves of
    ``X`` are packed Gaussians (:func:`pair_gaussians`); use
    :class:`NeighborhoodGaussian` in front of it for plain point embeddings.
    Every item is scored independently of the others, so ``fit`` only
    validates the training pairs and fixes the Monte-Carlo draws of
    ``"js"``; nothing else is learned from the banks.

    Parameters
    ----------
    distance : {"w2", "kl", "kl_reverse", "symmetric_kl", "js", \
"bhattacharyya"} or None, default="w2"
        ``"w2"``: squared 2-Wasserstein (:func:`wasserstein2_squared`).
        ``"kl"``: ``KL(N_left || N_right)`` between the left (query, e.g.
        caption) and right (gallery) half -- the paper's ``KL(p(v)||p(u))``
        -- whatever the ``direction``; ``"kl_reverse"`` the other way.
        ``"symmetric_kl"``: their mean (the paper's "JS divergence" row).
        ``"js"``: the true Jensen-Shannon divergence (Monte-Carlo).
        ``"bhattacharyya"``. ``None``: no calibration (point matching).
    weight : float, default=0.5
        Weight of the distance, ``>= 0``, in units of the typical distance
        of a matching pair: the score is ``mu_q^T mu_g - weight * D /
        distance_scale_``, with ``distance_scale_`` the median of ``D`` over
        the training pairs (fixed at ``fit``). The same ``weight`` thus means
        the same for every distance (raw KL-type values are sums over ``d``
        features and can be orders of magnitude above W2, so one raw grid
        could not serve both), and a matching pair at the median distance
        loses ``weight`` of similarity. The paper gives no value; tune
        ``weight`` and ``distance`` together with ``GridSearchCV`` and
        :func:`skxmr.metrics.make_retrieval_scorer`.
    covariance : {"spherical", "diag", "full"}, default="diag"
        Layout of the packed halves (see :func:`pair_gaussians`).
    n_mc_samples : int, default=128
        Monte-Carlo draws of ``"js"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the ``"js"`` draws (fixed at ``fit``).
    {common}

    Attributes
    ----------
    query_bank_ : ndarray of shape (n_bank_queries, n_features_half)
        Unique packed query halves of the training pairs.
    gallery_bank_ : ndarray of shape (n_bank_gallery, n_features_half)
        Unique packed gallery halves of the training pairs.
    embedding_dim_ : int
        Dimension ``d`` of the Gaussians.
    mc_draws_ : ndarray of shape (ceil(n_mc_samples / 2), d)
        Standard normal draws of ``"js"`` (used with their negatives).
    distance_scale_ : float
        Median of the distance over the training pairs (``D(left_i,
        right_i)`` for every row of ``X``); ``weight`` is in its units.
        1.0 when ``distance=None``.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import ProbabilisticCalibration, pair_gaussians
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.standard_normal((6, 4))
    >>> X = pair_gaussians(mu, np.full((6, 4), .1), mu + .1, np.full((6, 4), .2))
    >>> est = ProbabilisticCalibration(distance="w2", weight=1.0).fit(X)
    >>> est.decision_function(X).shape
    (6, 6)
    >>> est.score(X)
    100.0
    """

    _parameter_constraints = {
        **RetrievalEstimator._parameter_constraints,
        "distance": [StrOptions(set(DISTANCES)), None],
        "weight": [Interval(numbers.Real, 0, None, closed="left")],
        "covariance": [StrOptions(set(COVARIANCE_TYPES))],
        "n_mc_samples": [Interval(numbers.Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
    }

    def __init__(self, distance="w2", *, weight=0.5, covariance="diag", n_mc_samples=128,
                 random_state=None, n_query_features=None, direction="q2g", n_jobs=None):
        self.distance = distance
        self.weight = weight
        self.covariance = covariance
        self.n_mc_samples = n_mc_samples
        self.random_state = random_state
        self.n_query_features = n_query_features
        self.direction = direction
        self.n_jobs = n_jobs

    # ------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Validate the training pairs of packed Gaussians.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_features)
            Training pairs built with :func:`pair_gaussians`.
        y : array-like of shape (n_pairs,), default=None
            Ignored (present for API consistency).

        Returns
        -------
        self : ProbabilisticCalibration
        """
        self._validate_params()
        X = self._validate_pairs(X, reset=True)
        cut = resolve_split(X.shape[1], self.n_query_features)
        d_left = layout_dim(cut, self.covariance, "X (query half)")
        d_right = layout_dim(X.shape[1] - cut, self.covariance, "X (gallery half)")
        if d_left != d_right:
            raise ValueError(
                f"The halves of X hold {d_left}- and {d_right}-dimensional Gaussians; "
                "calibration needs one shared space (put CalibratedProjection first)."
            )
        items = self._split(X, y).require_banks()
        for name, bank in (("query bank", items.sources), ("gallery bank", items.targets)):
            unpack_gaussians(bank, self.covariance, f"X ({name})")
        self.query_bank_, self.gallery_bank_ = items.sources, items.targets
        self.embedding_dim_ = d_left
        self.mc_draws_ = standard_normal_draws(
            self.n_mc_samples, d_left, check_random_state(self.random_state)
        )
        self.distance_scale_ = self._matching_scale(X, cut)
        return self

    def _matching_scale(self, X, cut):
        """Median distance of the training pairs: what makes ``weight`` dimensionless."""
        if self.distance is None:
            return 1.0
        # Left || right on every row, whatever the direction: g2q scores
        # with the swapped distance from the right half, the same values.
        A = self._prepare_items(X[:, :cut], "X (query half)")
        B = self._prepare_items(X[:, cut:], "X (gallery half)")
        D = paired_prepared(self.distance, A, B, draws=self.mc_draws_)
        scale = float(np.median(D))
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(
                f"the training pairs of X have a median {self.distance!r} distance of "
                f"{scale:g}: matching Gaussians are identical, so the distance has no "
                "scale to calibrate weight by."
            )
        return scale

    # ------------------------------------------------------- scoring
    def _check_items(self, A, name):
        check_is_fitted(self)
        A = check_matrix(A, name)
        check_same_width(self.query_bank_, A, "the fitted banks", name)
        unpack_gaussians(A, self.covariance, name)  # validates the layout
        return A

    def _distance_for_rows(self):
        if self.direction == "g2q":
            return _SWAPPED.get(self.distance, self.distance)
        return self.distance

    def _prepare_items(self, A, name):
        M, C = unpack_gaussians(A, self.covariance, name)
        return _prepare(M, C, self.covariance, need_pd=NEED_PD.get(self.distance, False))

    def _prepare_gallery(self, gallery):
        return self._prepare_items(gallery, "gallery")

    def _score_queries(self, queries, gallery, state):
        A = self._prepare_items(queries, "queries")
        S = A["mean"] @ state["mean"].T
        if self.distance is not None and self.weight:
            D = pairwise_prepared(self._distance_for_rows(), A, state, draws=self.mc_draws_)
            S -= (self.weight / self.distance_scale_) * D
        return S

    def _bytes_per_query_row(self, n_gallery):
        kind = "full" if self.covariance == "full" else "diag"
        return _bytes_per_row(
            self.distance or "w2", kind, n_gallery, self.embedding_dim_, self.mc_draws_.shape[0]
        )


# --------------------------------------------------------------------------
# Point embeddings -> Gaussians from bank neighbourhoods
# --------------------------------------------------------------------------
@fill_doc(
    n_neighbors=param_doc("n_neighbors", 10, "Same-modality neighbours per item; at most the "
                          "bank size minus one."),
    common=param_docs("n_query_features", "n_jobs"),
)
class NeighborhoodGaussian(PairedTransformer):
    """Gaussian items for plain point embeddings, from bank neighbourhoods.

    Point embeddings carry no per-item uncertainty. This transformer gives
    each (L2-normalised) item ``x`` the Gaussian ``N(x, Sigma(x))`` whose
    covariance is estimated (as in :class:`GaussianEmbedding`) from ``x``
    and its ``n_neighbors`` most similar items of *its own modality's*
    training bank -- the neighbours stand in for the augmentations the
    paper uses. The mean stays the point itself (averaging neighbours
    would blur the item). Bank items identical to ``x`` are skipped. The
    output is the packed Gaussian rows that :class:`ProbabilisticCalibration`
    consumes; the two halves may have different widths.

    Parameters
    ----------
    {n_neighbors}
    covariance : {"spherical", "diag", "full"}, default="diag"
    shrinkage : "ledoit-wolf", float in [0, 1] or None, default="ledoit-wolf"
    reg_covar : float, default=0.0
    {common}

    Attributes
    ----------
    query_bank_ : ndarray of shape (n_bank_queries, d_q)
        Unique L2-normalised query halves of the training pairs.
    gallery_bank_ : ndarray of shape (n_bank_gallery, d_g)
        Unique L2-normalised gallery halves.
    n_query_features_out_ : int
        Width of the query half of the output (pass it as
        ``n_query_features`` downstream when ``d_q != d_g``).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from skxmr import pair
    >>> from skxmr.calibration import NeighborhoodGaussian, ProbabilisticCalibration
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.standard_normal((30, 4))
    >>> X = pair(Q, Q + .2 * rng.standard_normal((30, 4)))
    >>> pipe = make_pipeline(NeighborhoodGaussian(n_neighbors=5), ProbabilisticCalibration())
    >>> pipe.fit(X).decision_function(X).shape
    (30, 30)
    """

    _outputs_embeddings = False  # packed Gaussians, not a similarity space

    _parameter_constraints = {
        "n_query_features": N_QUERY_FEATURES,
        "n_neighbors": N_NEIGHBORS,
        "covariance": [StrOptions(set(COVARIANCE_TYPES))],
        "shrinkage": _SHRINKAGE,
        "reg_covar": [Interval(numbers.Real, 0, None, closed="left")],
        "n_jobs": N_JOBS,
    }

    def __init__(self, n_neighbors=10, *, covariance="diag", shrinkage="ledoit-wolf",
                 reg_covar=0.0, n_query_features=None, n_jobs=None):
        self.n_neighbors = n_neighbors
        self.covariance = covariance
        self.shrinkage = shrinkage
        self.reg_covar = reg_covar
        self.n_query_features = n_query_features
        self.n_jobs = n_jobs

    def _n_query_features_out(self, n_query_features):
        # each half's d columns become d + the covariance parameters
        if n_query_features is None:
            return None
        return n_query_features + n_covariance_params(n_query_features, self.covariance)

    def _fit_pairs(self, X, y):
        items = split_pairs(X, n_query_features=self.n_query_features)
        banks = []
        for name, bank in (("query", items.sources), ("gallery", items.targets)):
            if bank.shape[0] < self.n_neighbors + 1:
                raise ValueError(
                    f"n_neighbors={self.n_neighbors} needs at least "
                    f"{self.n_neighbors + 1} unique {name} items in X, got {bank.shape[0]}."
                )
            banks.append(l2_normalize(bank, f"X ({name} half)"))
        self.query_bank_, self.gallery_bank_ = banks
        d_q = self.query_bank_.shape[1]
        self.n_query_features_out_ = d_q + n_covariance_params(d_q, self.covariance)

    def _gaussians(self, A, bank, name):
        A = l2_normalize(A, name).astype(np.float64)
        B = bank.astype(np.float64)
        k = self.n_neighbors

        parts = map_row_chunks(_neighbours_chunk, A.shape[0], 8 * B.shape[0] * 2,
                               args=(A, B, k), n_jobs=self.n_jobs)
        idx = np.concatenate(parts) if len(parts) > 1 else parts[0]
        samples = np.concatenate([A[:, None, :], B[idx]], axis=1)
        _, covs, _, _ = estimate_gaussians(
            samples, covariance=self.covariance, shrinkage=self.shrinkage,
            reg_covar=self.reg_covar,
        )
        return pack_gaussians(A, covs)

    def _transform_pairs(self, X):
        left, right = unpair(X, self.n_query_features)
        check_same_width(self.query_bank_, left, "the fitted query bank", "X (query half)")
        out = np.hstack([
            self._gaussians(left, self.query_bank_, "X (query half)"),
            self._gaussians(right, self.gallery_bank_, "X (gallery half)"),
        ])
        return out.astype(X.dtype, copy=False)

    def _feature_names_out(self, input_features):
        d_q = self.query_bank_.shape[1]
        d_g = self.gallery_bank_.shape[1]
        return packed_feature_names(d_q, self.covariance, "query_") + packed_feature_names(
            d_g, self.covariance, "gallery_"
        )


register_method(
    "Calibration (W2)",
    lambda direction="q2g": _benchmark_pipeline(direction),
    family="calibration",
    description=(
        "point match minus 2-Wasserstein distance of per-item Gaussians "
        "(covariance from each item's 10 same-modality bank neighbours)"
    ),
    grid={"probabilisticcalibration__weight": [0.1, 0.5, 1.0]},
)


def _benchmark_pipeline(direction):
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        NeighborhoodGaussian(n_neighbors=10),
        ProbabilisticCalibration(distance="w2", weight=0.5, direction=direction),
    )


def _neighbours_chunk(rows, A, B, k):
    """The ``k`` nearest bank rows of the items ``rows`` (the item itself,
    if it is in the bank, excluded); a chunk task."""
    S = A[rows] @ B.T
    S[S >= 1.0 - 1e-10] = -np.inf
    return np.argpartition(-S, k - 1, axis=1)[:, :k]
