"""Cauchy-Schwarz divergence alignment of two or more modalities.

:class:`CauchySchwarzAlignment` learns linear projections of the query and the
gallery half of paired rows (their widths may differ) into one shared,
L2-normalised space by minimising the bidirectional Cauchy-Schwarz matching
loss (Zhang, Yin & Yu, ACM MM 2025) or, as the baseline, the CMPM KL loss
(Zhang & Lu, ECCV 2018). :class:`MultiModalCSAlignment` does the same for
three or more modalities with the generalised CS divergence and bidirectional
circular matching. The losses and their analytic gradients live in
:mod:`skxmr._cs_losses` (re-exported here), the optimisers in
:mod:`skxmr._cs_solver`.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import PairedTransformer
from ._cs_losses import cauchy_schwarz_loss, cmpm_kl_loss, generalized_cauchy_schwarz_loss
from ._cs_solver import (
    LBFGS_MAX_ROWS,
    fit_projections,
    init_projections,
    project,
    project_grad,
    resolve_init,
)
from ._pairs import split_pairs, unpair
from ._registry import register_method
from ._validation import check_matrix, l2_normalize

__all__ = [
    "CauchySchwarzAlignment",
    "MultiModalCSAlignment",
    "cauchy_schwarz_loss",
    "cmpm_kl_loss",
    "generalized_cauchy_schwarz_loss",
]

_COMMON_CONSTRAINTS = {
    "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
    "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
    "init": [StrOptions({"auto", "pca", "random"})],
    "solver": [StrOptions({"auto", "lbfgs", "adam"})],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="left"), None],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
    "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
    "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
    "random_state": ["random_state"],
}

_COMMON_PARAMS_DOC = """n_components : int, default=256
        Dimension ``k`` of the shared space.
    temperature : float, default=0.1
        Softmax temperature ``tau`` of the predicted matching distributions
        (logits are cosines divided by ``tau``).
    init : {"auto", "pca", "random"}, default="auto"
        Initial projections. ``"pca"`` (equal widths only): every modality
        starts with the same matrix, the top ``k`` right singular vectors of
        the pooled training rows, so training starts from the cosine the
        embeddings already have (within their principal subspace).
        ``"random"``: ``W_m = X_mᵀ Ω`` with one Gaussian ``Ω`` shared by the
        modalities (columns in the span of the training rows). ``"auto"``:
        ``"pca"`` when the widths are equal, ``"random"`` otherwise.
    solver : {"auto", "lbfgs", "adam"}, default="auto"
        ``"lbfgs"``: full-batch L-BFGS (``scipy.optimize.minimize`` with the
        analytic gradient), every training item against every other;
        ``"adam"``: mini-batch Adam, a batch's items against each other.
        ``"auto"``: L-BFGS up to 2048 training rows, Adam above (full-batch
        cost and memory grow with the square of the rows).
    max_iter : int, default=100
        L-BFGS iterations or Adam epochs.
    tol : float or None, default=1e-4
        Stop when the loss (the held-out loss with ``early_stopping``) has
        not improved by ``tol`` (relative; absolute below 1) for
        ``n_iter_no_change`` iterations (L-BFGS without early stopping: its
        ``ftol``). Reaching ``max_iter`` first raises a
        ``ConvergenceWarning``. ``None``: run ``max_iter`` iterations (or
        until the held-out loss stalls), silently.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the training items, track the
        loss on them after every iteration, and keep the projections with
        the lowest held-out loss (the initial ones included). On small banks
        the projections overfit within a few iterations (they can memorise
        the noise of a few hundred pairs), which this prevents.
    validation_fraction : float, default=0.1
        Share of the items held out for early stopping (at least 2).
    n_iter_no_change : int, default=5
        Patience of the stopping rule, in iterations (epochs).
    batch_size : int, default=512
        Rows per Adam mini-batch.
    learning_rate : float, default=0.01
        Adam step size.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial projections, the validation split and Adam's
        batch order."""

_COMMON_ATTRS_DOC = """loss_curve_ : list of float
        Training loss after each L-BFGS iteration (mean over each Adam
        epoch).
    validation_scores_ : list of float or None
        Held-out loss at the start and after each iteration (with
        ``early_stopping``).
    best_iteration_ : int or None
        Iteration whose projections were kept (0: the initial ones), with
        ``early_stopping``.
    n_iter_ : int
        Iterations (L-BFGS) or epochs (Adam) run.
    init_ : str
        The initialisation used (``"pca"`` or ``"random"``).
    solver_ : str
        The solver used (``"lbfgs"`` or ``"adam"``)."""


def _store_result(est, result):
    est.loss_curve_ = result.loss_curve
    est.validation_scores_ = result.validation_scores
    est.best_iteration_ = result.best_iteration
    est.n_iter_ = result.n_iter
    return result.params


def _resolve_solver(solver, n_rows):
    if solver == "auto":
        return "lbfgs" if n_rows <= LBFGS_MAX_ROWS else "adam"
    return solver


def _label_relevance(y, n, name="y"):
    """Same-label relevance of ``n`` row-paired items (identity without labels)."""
    if y is None:
        return np.eye(n, dtype=bool)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must be 1-D with one label per row ({n}), got shape {y.shape}.")
    _, codes = np.unique(y, return_inverse=True)
    codes = codes.ravel()
    if codes.max() < 1:
        raise ValueError(
            f"{name} holds a single class: every item would match every other and "
            "the alignment would learn nothing; give at least 2 classes."
        )
    return codes[:, None] == codes[None, :]


# --------------------------------------------------------------------------
# Two modalities
# --------------------------------------------------------------------------
class CauchySchwarzAlignment(PairedTransformer):
    """Project two modalities into a shared space with the Cauchy-Schwarz loss.

    Learns linear maps ``W_q`` (``d_q × k``) and ``W_g`` (``d_g × k``) of the
    query and gallery halves of paired rows so that, with ``z = x W /
    ||x W||``, the predicted matching distribution ``p_i = softmax_j(z_qi ·
    z_gj / temperature)`` of every training query (and of every gallery item,
    in the other direction) matches the true matching distribution ``q_i``,
    uniform over its relevant items (its pair(s), or every item sharing its
    label when ``y`` is given). ``loss="cs"`` minimises the Cauchy-Schwarz
    divergence ``-log(<p,q> / (||p||₂ ||q||₂))``, computed from the logits
    (no epsilon, finite at any temperature); ``loss="cmpm"`` is the CMPM KL
    baseline. See :ref:`alignment` for the formulas.

    ``transform`` returns the paired rows ``hstack([z_q, z_g])`` (``2k``
    columns, both halves in the shared space), so the estimator chains in a
    :class:`~sklearn.pipeline.Pipeline` before any similarity or hubness
    step, which then sees equal halves (leave its ``n_query_features=None``).

    Parameters
    ----------
    <common parameters>
    loss : {"cs", "cmpm"}, default="cs"
        ``"cs"``: bidirectional Cauchy-Schwarz divergence;
        ``"cmpm"``: bidirectional CMPM KL divergence with the paper's
        ``epsilon = 1e-8`` inside ``log(q + epsilon)``.
    n_query_features : int, default=None
        Width of the query half of ``X``; ``None`` means half the columns.
        The halves may have different widths (e.g. 384-d text, 512-d images).
    direction : {"q2g", "g2q"}, default="q2g"
        Part of the paired-row convention. The loss is symmetric (both
        directions), so it does not change the fit; the left half is always
        mapped by ``query_projection_``.

    Attributes
    ----------
    query_projection_ : ndarray of shape (n_query_features, n_components)
        ``W_q``, applied to L2-normalised query halves.
    gallery_projection_ : ndarray of shape (n_gallery_features, n_components)
        ``W_g``, applied to L2-normalised gallery halves.
    <common attributes>
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.

    See Also
    --------
    MultiModalCSAlignment : Three or more modalities (generalised CS).
    skxmr.metrics.cs_divergence : The divergence itself.

    Notes
    -----
    Rows are L2-normalised before projection (the output does not depend on
    their scale). A linear map of ``d``-dimensional inputs has ``d × k``
    parameters per modality; from a bank of a few hundred pairs it can fit
    the noise of the training pairs, which is why ``early_stopping`` is on by
    default. The full-batch objective compares every training query with
    every training gallery item: L-BFGS costs ``O(n² k + n d k)`` per
    iteration for ``n`` pairs; Adam ``O(n b k + n d k)`` per epoch with
    batches of ``b``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import CosineSimilarity, pair
    >>> from skxmr.alignment import CauchySchwarzAlignment
    >>> rng = np.random.default_rng(0)
    >>> text = rng.standard_normal((200, 6))
    >>> image = np.hstack([text, text[:, :2]]) @ rng.standard_normal((8, 8))
    >>> image += 0.1 * rng.standard_normal(image.shape)
    >>> X = pair(text, image)                      # halves of width 6 and 8
    >>> cs = CauchySchwarzAlignment(n_components=6, n_query_features=6,
    ...                             random_state=0).fit(X[:150])
    >>> Xt = cs.transform(X[150:])
    >>> Xt.shape
    (50, 12)
    >>> CosineSimilarity().fit(Xt).score(Xt) > 80    # held-out text->image R@1
    True
    """

    _parameter_constraints = {
        **PairedTransformer._parameter_constraints,
        **_COMMON_CONSTRAINTS,
        "loss": [StrOptions({"cs", "cmpm"})],
    }

    def __init__(
        self,
        n_components=256,
        *,
        temperature=0.1,
        loss="cs",
        init="auto",
        solver="auto",
        max_iter=100,
        tol=1e-4,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=5,
        batch_size=512,
        learning_rate=0.01,
        random_state=None,
        n_query_features=None,
        direction="q2g",
    ):
        self.n_components = n_components
        self.temperature = temperature
        self.loss = loss
        self.init = init
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.n_query_features = n_query_features
        self.direction = direction

    def _fit_pairs(self, X, y):
        # The left half is the query side whatever ``direction`` says: the
        # loss is symmetric, and transform maps the left half with W_q.
        items = split_pairs(X, y, n_query_features=self.n_query_features, direction="q2g")
        items.require_banks()
        if y is not None and np.unique(np.asarray(y)).size < 2:
            raise ValueError("y holds a single class; alignment needs at least 2 classes.")
        Q = l2_normalize(items.sources.astype(np.float64), "X (query half)")
        G = l2_normalize(items.targets.astype(np.float64), "X (gallery half)")
        relevance, s_idx, t_idx = items.relevance, items.source_index, items.target_index
        loss_fn = cauchy_schwarz_loss if self.loss == "cs" else cmpm_kl_loss
        tau = self.temperature

        def make_batch(rows):
            # The unique items of these pairs and their relevance: every query
            # keeps its own gallery item(s), so every row has a positive.
            su, tu = np.unique(s_idx[rows]), np.unique(t_idx[rows])
            return Q[su], G[tu], relevance[su][:, tu].toarray()

        def loss_and_grad(params, data):
            (W_q, W_g), (A, B, R) = params, data
            Z_q, n_q = project(A, W_q)
            Z_g, n_g = project(B, W_g)
            value, grad_L = loss_fn(Z_q @ Z_g.T / tau, R)
            grad_S = grad_L / tau
            return value, [
                project_grad(A, Z_q, n_q, grad_S @ Z_g),
                project_grad(B, Z_g, n_g, grad_S.T @ Z_q),
            ]

        rng = check_random_state(self.random_state)
        # Rows of the pairs (duplicated items included) keep the halves paired.
        self.init_ = resolve_init(self.init, [Q, G])
        params = init_projections([Q[s_idx], G[t_idx]], self.n_components, self.init_, rng)
        self.solver_ = _resolve_solver(self.solver, X.shape[0])
        result = fit_projections(
            self, loss_and_grad, make_batch, t_idx, params, rng, self.solver_
        )
        self.query_projection_, self.gallery_projection_ = _store_result(self, result)
        return self

    def _transform_pairs(self, X):
        Q, G = unpair(X, self.n_query_features)
        Q, G = l2_normalize(Q, "X (query half)"), l2_normalize(G, "X (gallery half)")
        Z_q = l2_normalize(Q @ self.query_projection_, "X (projected query half)")
        Z_g = l2_normalize(G @ self.gallery_projection_, "X (projected gallery half)")
        return np.hstack([Z_q, Z_g]).astype(X.dtype, copy=False)


# --------------------------------------------------------------------------
# Three or more modalities
# --------------------------------------------------------------------------
class MultiModalCSAlignment(BaseEstimator):
    """Align three or more modalities with the generalised CS divergence.

    One linear projection per modality maps its (L2-normalised) rows into a
    shared L2-normalised space of dimension ``n_components``. The views are
    paired row-wise (row ``i`` of every view is the same entity) and matched
    in a circle, view ``m`` against view ``m + 1 (mod M)``, in both
    directions ("bidirectional circular matching"): per direction, each
    entity's ``M`` predicted matching distributions and the true one enter
    one generalised Cauchy-Schwarz divergence with ``(M + 1)``-norms
    (Hölder's inequality), see :func:`generalized_cauchy_schwarz_loss`. The
    loss needs ``M`` similarity matrices, linear in ``M``; ``loss=
    "pairwise_cs"`` instead sums the bidirectional CS loss over all
    ``M (M - 1) / 2`` pairs of views (the quadratic baseline).

    This estimator takes a *list of views*, not paired rows, so it is not a
    :class:`~skxmr.PairedTransformer`; for two modalities on paired rows use
    :class:`CauchySchwarzAlignment`.

    Parameters
    ----------
    <common parameters>
    loss : {"gcs", "pairwise_cs"}, default="gcs"
        Generalised CS with bidirectional circular matching, or the sum of
        the pairwise bidirectional CS losses.

    Attributes
    ----------
    projections_ : list of ndarray of shape (n_features_m, n_components)
        One projection per view, applied to L2-normalised rows.
    n_views_ : int
        Number of modalities ``M``.
    n_features_views_ : list of int
        Width of each view seen in ``fit``.
    <common attributes>

    See Also
    --------
    CauchySchwarzAlignment : Two modalities on paired rows.
    skxmr.metrics.gcs_divergence : The divergence itself.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.alignment import MultiModalCSAlignment
    >>> rng = np.random.default_rng(0)
    >>> latent = rng.standard_normal((200, 5))
    >>> views = [latent @ rng.standard_normal((5, d)) for d in (6, 7, 8)]
    >>> views = [V + 0.1 * rng.standard_normal(V.shape) for V in views]
    >>> mm = MultiModalCSAlignment(n_components=5, random_state=0)
    >>> mm = mm.fit([V[:150] for V in views])
    >>> Zs = mm.transform([V[150:] for V in views])
    >>> [Z.shape for Z in Zs]
    [(50, 5), (50, 5), (50, 5)]
    >>> Z0, Z2 = Zs[0], mm.transform_view(views[2][150:], 2)
    >>> float(np.mean((Z0 @ Z2.T).argmax(axis=1) == np.arange(50))) > 0.8
    True
    """

    _parameter_constraints = {
        **_COMMON_CONSTRAINTS,
        "loss": [StrOptions({"gcs", "pairwise_cs"})],
    }

    def __init__(
        self,
        n_components=256,
        *,
        temperature=0.1,
        loss="gcs",
        init="auto",
        solver="auto",
        max_iter=100,
        tol=1e-4,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=5,
        batch_size=512,
        learning_rate=0.01,
        random_state=None,
    ):
        self.n_components = n_components
        self.temperature = temperature
        self.loss = loss
        self.init = init
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state

    @staticmethod
    def _check_views(views):
        if isinstance(views, np.ndarray) or not isinstance(views, (list, tuple)):
            raise TypeError(
                "views must be a list of 2-D arrays (one per modality), got "
                f"{type(views).__name__}."
            )
        return [check_matrix(V, f"views[{m}]") for m, V in enumerate(views)]

    def fit(self, views, y=None):
        """Learn one projection per modality.

        Parameters
        ----------
        views : list of M array-likes of shape (n_samples, n_features_m)
            The modalities, paired row-wise; ``M >= 2``.
        y : array-like of shape (n_samples,), default=None
            Class labels: rows sharing a label match (several positives per
            row); otherwise row ``i`` matches only row ``i``.

        Returns
        -------
        self : object
        """
        self._validate_params()
        Xs = self._check_views(views)
        if len(Xs) < 2:
            raise ValueError(f"views must hold at least 2 modalities, got {len(Xs)}.")
        n = Xs[0].shape[0]
        for m, X in enumerate(Xs):
            if X.shape[0] != n:
                raise ValueError(
                    f"views are paired row-wise but views[{m}] has {X.shape[0]} rows "
                    f"and views[0] has {n}."
                )
        if n < 2:
            raise ValueError(f"views hold {n} row(s); alignment needs at least 2 pairs.")
        relevance = _label_relevance(y, n)
        Xs = [l2_normalize(X.astype(np.float64), f"views[{m}]") for m, X in enumerate(Xs)]
        M, tau = len(Xs), self.temperature
        if self.loss == "gcs":
            pairs = [(m, (m + 1) % M) for m in range(M)]  # the circle
        else:
            pairs = [(a, b) for a in range(M) for b in range(a + 1, M)]

        def make_batch(rows):
            return [X[rows] for X in Xs], relevance[np.ix_(rows, rows)]

        def loss_and_grad(params, data):
            Vs, R = data
            proj = [project(V, W) for V, W in zip(Vs, params)]
            logits = [proj[a][0] @ proj[b][0].T / tau for a, b in pairs]
            if self.loss == "gcs":
                value, grad_Ls = generalized_cauchy_schwarz_loss(logits, R)
            else:
                parts = [cauchy_schwarz_loss(L, R) for L in logits]
                value, grad_Ls = sum(v for v, _ in parts), [g for _, g in parts]
            grad_Z = [np.zeros_like(Z) for Z, _ in proj]
            for (a, b), grad_L in zip(pairs, grad_Ls):
                grad_Z[a] += grad_L @ proj[b][0] / tau
                grad_Z[b] += grad_L.T @ proj[a][0] / tau
            return value, [
                project_grad(V, Z, norms, g) for V, (Z, norms), g in zip(Vs, proj, grad_Z)
            ]

        rng = check_random_state(self.random_state)
        self.init_ = resolve_init(self.init, Xs)
        params = init_projections(Xs, self.n_components, self.init_, rng)
        self.solver_ = _resolve_solver(self.solver, n)
        result = fit_projections(
            self, loss_and_grad, make_batch, np.arange(n), params, rng, self.solver_
        )
        self.projections_ = _store_result(self, result)
        self.n_views_ = M
        self.n_features_views_ = [X.shape[1] for X in Xs]
        return self

    def transform_view(self, A, m):
        """Project the rows of one modality into the shared space.

        Parameters
        ----------
        A : array-like of shape (n_rows, n_features_m)
            Rows of modality ``m``.
        m : int
            Index of the modality in the list given to ``fit``.

        Returns
        -------
        Z : ndarray of shape (n_rows, n_components)
            L2-normalised; float32 for float32 input.
        """
        check_is_fitted(self)
        if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)):
            raise TypeError(f"m must be an integer view index, got {m!r}.")
        if not 0 <= m < self.n_views_:
            raise ValueError(f"m={m} must be in [0, {self.n_views_ - 1}].")
        X = check_matrix(A, "A")
        if X.shape[1] != self.n_features_views_[m]:
            raise ValueError(
                f"A has {X.shape[1]} features but view {m} had "
                f"{self.n_features_views_[m]} in fit."
            )
        Z = l2_normalize(l2_normalize(X, "A") @ self.projections_[m], "A (projected)")
        return Z.astype(X.dtype, copy=False)

    def transform(self, views):
        """Project every modality into the shared space.

        Parameters
        ----------
        views : list of M array-likes of shape (n_rows_m, n_features_m)
            One array per modality, in the order given to ``fit`` (rows need
            not be paired here).

        Returns
        -------
        Zs : list of M ndarrays of shape (n_rows_m, n_components)
        """
        check_is_fitted(self)
        Xs = self._check_views(views)
        if len(Xs) != self.n_views_:
            raise ValueError(f"views holds {len(Xs)} modalities but fit saw {self.n_views_}.")
        return [self.transform_view(X, m) for m, X in enumerate(Xs)]

    def fit_transform(self, views, y=None):
        """Fit, then project every modality (see :meth:`fit`, :meth:`transform`).

        Parameters
        ----------
        views : list of M array-likes of shape (n_samples, n_features_m)
        y : array-like of shape (n_samples,), default=None

        Returns
        -------
        Zs : list of M ndarrays of shape (n_samples, n_components)
        """
        return self.fit(views, y).transform(views)


for _cls in (CauchySchwarzAlignment, MultiModalCSAlignment):
    _cls.__doc__ = _cls.__doc__.replace("<common parameters>", _COMMON_PARAMS_DOC).replace(
        "<common attributes>", _COMMON_ATTRS_DOC
    )


def _benchmark_pipeline(direction="q2g"):
    from sklearn.pipeline import make_pipeline

    from .similarity import CosineSimilarity

    return make_pipeline(
        CauchySchwarzAlignment(random_state=0),
        CosineSimilarity(direction=direction),
    )


register_method(
    "CS alignment",
    _benchmark_pipeline,
    family="alignment",
    description="linear projections of both halves learned with the Cauchy-Schwarz "
    "matching loss on the bank pairs (early stopping), then cosine",
    # Each point trains a projection per fold: the grid stays at two values.
    grid={"cauchyschwarzalignment__temperature": [0.05, 0.1]},
)
