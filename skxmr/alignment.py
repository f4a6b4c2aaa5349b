"""Cauchy-Schwarz divergence alignment of two or more modalities.

:class:`CauchySchwarzAlignment` learns linear projections of the query and the
gallery half of paired rows (their widths may differ) into one shared,
L2-normalised space by minimising the bidirectional Cauchy-Schwarz matching
loss (Zhang, Yin & Yu, ACM MM 2025) or, as the baseline, the CMPM KL loss
(Zhang & Lu, ECCV 2018). :class:`MultiModalCSAlignment` does the same for
three or more modalities with the generalised CS divergence and bidirectional
circular matching. The losses and their analytic gradients live in
:mod:`skxmr._cs_losses` and are re-exported here.
"""

import numbers
import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._base import PairedTransformer
from ._cs_losses import cauchy_schwarz_loss, cmpm_kl_loss, generalized_cauchy_schwarz_loss
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

# Above this many training pairs the "auto" solver switches from full-batch
# L-BFGS (cost and memory grow as n_pairs^2) to mini-batch Adam.
LBFGS_MAX_PAIRS = 2048
# Rows used to draw the initial projections (see _init_projections).
INIT_MAX_ROWS = 4096

_SOLVER_CONSTRAINTS = {
    "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
    "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
    "solver": [StrOptions({"auto", "lbfgs", "adam"})],
    "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="left"), None],
    "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
    "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
}


# --------------------------------------------------------------------------
# Projections and their gradient
# --------------------------------------------------------------------------
def _project(X, W):
    """Rows of ``X @ W`` scaled to unit norm, and the norms (for backprop)."""
    U = X @ W
    norms = np.linalg.norm(U, axis=1, keepdims=True)
    Z = U / norms
    if not np.all(np.isfinite(Z)):
        # Only a diverging run gets here (W overflowed or a projection vanished).
        raise _Diverged
    return Z, norms


def _project_grad(X, Z, norms, grad_Z):
    """Gradient with respect to ``W`` of a function of ``Z = norm(X @ W)``."""
    # d(u/|u|) projects the incoming gradient onto the tangent space of the
    # sphere at z and divides by |u|.
    grad_U = (grad_Z - np.sum(grad_Z * Z, axis=1, keepdims=True) * Z) / norms
    return X.T @ grad_U


def _init_projections(views, n_components, rng):
    """Initial ``W_m = X_mᵀ Ω`` with one Gaussian ``Ω`` shared by all views.

    Each column of ``W_m`` lies in the span of the training rows of view
    ``m``, so input directions never seen in training are ignored rather
    than mapped to noise (gradient steps, ``X_mᵀ (...)``, stay in that span
    too). Sharing ``Ω`` across the paired views makes the initial
    projections of item ``i``, ``Σ_j <x_i, x_j> Ω_j``, agree across views
    whenever the within-view similarities agree: the start is already
    roughly aligned, and it is equivariant to rotations of any view.
    """
    n = views[0].shape[0]
    rows = rng.choice(n, INIT_MAX_ROWS, replace=False) if n > INIT_MAX_ROWS else np.arange(n)
    omega = rng.standard_normal((rows.size, n_components))
    Ws = []
    for X in views:
        W = X[rows].T @ omega
        Ws.append(W / np.linalg.norm(W, axis=0).clip(np.finfo(float).tiny))
    return Ws


# --------------------------------------------------------------------------
# Optimisers
# --------------------------------------------------------------------------
class _Diverged(Exception):
    pass


def _check_finite(loss, grads):
    if not np.isfinite(loss) or not all(np.all(np.isfinite(g)) for g in grads):
        raise _Diverged


def _resolve_solver(solver, n_rows):
    if solver == "auto":
        return "lbfgs" if n_rows <= LBFGS_MAX_PAIRS else "adam"
    return solver


def _minimize(objective, params, n_rows, est, solver, rng):
    """Minimise ``objective(params, rows) -> (loss, grads)`` over the projections.

    ``rows=None`` means the full batch, else an index array of training rows.
    ``est`` supplies the optimiser settings (never modified). Returns the
    parameters, the loss curve, the number of iterations (L-BFGS iterations
    or Adam epochs) and whether ``max_iter`` was reached with ``tol`` unmet.
    """
    # Overflow/invalid operations can only come from a diverging run; they are
    # detected explicitly below (loss and gradients must stay finite).
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            if solver == "lbfgs":
                return _lbfgs(objective, params, est)
            return _adam(objective, params, n_rows, est, rng)
        except _Diverged:
            raise ValueError(
                f"{type(est).__name__} training diverged: the loss or its gradient "
                "became non-finite. Lower learning_rate (solver='adam') or raise "
                "temperature; no projection was stored."
            ) from None


def _lbfgs(objective, params, est):
    shapes = [p.shape for p in params]
    splits = np.cumsum([p.size for p in params])[:-1]

    def unpack(w):
        return [part.reshape(shape) for part, shape in zip(np.split(w, splits), shapes)]

    def fun(w):
        loss, grads = objective(unpack(w), None)
        _check_finite(loss, grads)
        return loss, np.concatenate([g.ravel() for g in grads])

    curve = []
    tol = 0.0 if est.tol is None else est.tol
    result = minimize(
        fun,
        np.concatenate([p.ravel() for p in params]),
        jac=True,
        method="L-BFGS-B",
        callback=lambda intermediate_result: curve.append(float(intermediate_result.fun)),
        options={"maxiter": est.max_iter, "ftol": tol, "gtol": 1e-10},
    )
    hit_max_iter = result.status == 1 and est.tol is not None
    return unpack(result.x), curve, int(result.nit), hit_max_iter


def _adam(objective, params, n_rows, est, rng, beta1=0.9, beta2=0.999, eps=1e-8):
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    batch = min(est.batch_size, n_rows)
    curve, best, stall, step = [], np.inf, 0, 0
    for epoch in range(est.max_iter):
        order = rng.permutation(n_rows)
        losses = []
        # Drop a ragged last batch smaller than half a batch into the
        # previous one: tiny batches give poor contrastive estimates.
        starts = list(range(0, n_rows - batch // 2, batch)) or [0]
        for i, start in enumerate(starts):
            stop = n_rows if i == len(starts) - 1 else start + batch
            loss, grads = objective(params, order[start:stop])
            _check_finite(loss, grads)
            step += 1
            for p, g, m_p, v_p in zip(params, grads, m, v):
                m_p *= beta1
                m_p += (1 - beta1) * g
                v_p *= beta2
                v_p += (1 - beta2) * g * g
                m_hat = m_p / (1 - beta1**step)
                v_hat = v_p / (1 - beta2**step)
                p -= est.learning_rate * m_hat / (np.sqrt(v_hat) + eps)
            losses.append(loss)
        curve.append(float(np.mean(losses)))
        if not all(np.all(np.isfinite(p)) for p in params):
            raise _Diverged
        if est.tol is not None:
            stall = stall + 1 if curve[-1] > best - est.tol * max(abs(best), 1.0) else 0
            best = min(best, curve[-1])
            if stall >= est.n_iter_no_change:
                return params, curve, epoch + 1, False
    return params, curve, est.max_iter, est.tol is not None


def _warn_max_iter(est):
    warnings.warn(
        f"{type(est).__name__} reached max_iter={est.max_iter} before the loss "
        f"improvement fell below tol={est.tol}; increase max_iter or tol "
        "(tol=None runs exactly max_iter iterations without this warning).",
        ConvergenceWarning,
    )


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
    in the other direction) matches the true matching distribution ``q_i``
    (uniform over its relevant items). ``loss="cs"`` minimises the
    Cauchy-Schwarz divergence ``-log(<p,q> / (||p||₂ ||q||₂))``, computed from
    the logits (no epsilon, finite at any temperature); ``loss="cmpm"`` is
    the CMPM KL baseline. See :ref:`alignment` for the formulas.

    ``transform`` returns the paired rows ``hstack([z_q, z_g])`` (``2k``
    columns, both halves in the shared space), so the estimator chains in a
    :class:`~sklearn.pipeline.Pipeline` before any similarity or hubness
    step, which then sees equal halves (leave its ``n_query_features=None``).

    Parameters
    ----------
    n_components : int, default=256
        Dimension ``k`` of the shared space.
    temperature : float, default=0.1
        Softmax temperature ``tau`` of the predicted matching distributions.
    loss : {"cs", "cmpm"}, default="cs"
        ``"cs"``: bidirectional Cauchy-Schwarz divergence;
        ``"cmpm"``: bidirectional CMPM KL divergence with the paper's
        ``epsilon = 1e-8`` inside ``log(q + epsilon)``.
    solver : {"auto", "lbfgs", "adam"}, default="auto"
        ``"lbfgs"``: full-batch L-BFGS (``scipy.optimize.minimize``, analytic
        gradient), every unique query against every unique gallery item;
        ``"adam"``: mini-batch Adam, the batch's items against each other.
        ``"auto"`` picks L-BFGS up to 2048 training pairs and Adam above.
    max_iter : int, default=100
        L-BFGS iterations, or Adam epochs.
    tol : float or None, default=1e-4
        L-BFGS stops when the relative loss decrease (``ftol``) falls below
        ``tol``; Adam when the epoch loss has not improved by ``tol`` (relative,
        absolute below 1) for ``n_iter_no_change`` epochs. Reaching
        ``max_iter`` first raises a ``ConvergenceWarning``. ``None`` runs
        exactly ``max_iter`` iterations, silently.
    batch_size : int, default=512
        Pairs per Adam mini-batch.
    learning_rate : float, default=0.01
        Adam step size.
    n_iter_no_change : int, default=5
        Adam epochs without improvement before stopping (with ``tol``).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial projections and Adam's batch order.
    n_query_features : int, default=None
        Width of the query half of ``X``; ``None`` means half the columns.
        The halves may have different widths (e.g. 384-d text, 512-d images).
    direction : {"q2g", "g2q"}, default="q2g"
        Part of the paired-row convention; the loss is symmetric (both
        directions), so it does not change the fit. The left half is always
        mapped by ``query_projection_``.

    Attributes
    ----------
    query_projection_ : ndarray of shape (n_query_features, n_components)
        ``W_q``, applied to L2-normalised query halves.
    gallery_projection_ : ndarray of shape (n_gallery_features, n_components)
        ``W_g``, applied to L2-normalised gallery halves.
    loss_curve_ : list of float
        Training loss after each L-BFGS iteration (or mean over each Adam
        epoch).
    n_iter_ : int
        Iterations (L-BFGS) or epochs (Adam) run.
    solver_ : str
        The solver used (``"lbfgs"`` or ``"adam"``).
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.

    See Also
    --------
    MultiModalCSAlignment : Three or more modalities (generalised CS).
    skxmr.metrics.cs_divergence : The divergence itself.

    Notes
    -----
    Rows are L2-normalised before projection (the output is invariant to
    their scale). The initial projections are ``W = Xᵀ Ω`` with one Gaussian
    ``Ω`` shared by both halves (rows of the training pairs): they lie in the
    span of the training data, so unseen input directions are ignored, and
    they start roughly aligned when the two halves have similar
    within-modality similarities. With few training pairs relative to the
    input width the projections overfit; ``max_iter``/``tol`` act as early
    stopping, and a higher ``temperature`` regularises.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import pair
    >>> from skxmr.alignment import CauchySchwarzAlignment
    >>> rng = np.random.default_rng(0)
    >>> text = rng.standard_normal((60, 6))
    >>> image = np.hstack([text, text[:, :2]]) @ rng.standard_normal((8, 8))
    >>> X = pair(text, image)                      # halves of width 6 and 8
    >>> cs = CauchySchwarzAlignment(n_components=4, n_query_features=6,
    ...                             random_state=0).fit(X)
    >>> Xt = cs.transform(X)
    >>> Xt.shape
    (60, 8)
    >>> from skxmr import CosineSimilarity
    >>> CosineSimilarity().fit(Xt).score(Xt) > 90
    True
    """

    _parameter_constraints = {
        **PairedTransformer._parameter_constraints,
        **_SOLVER_CONSTRAINTS,
        "loss": [StrOptions({"cs", "cmpm"})],
    }

    def __init__(
        self,
        n_components=256,
        *,
        temperature=0.1,
        loss="cs",
        solver="auto",
        max_iter=100,
        tol=1e-4,
        batch_size=512,
        learning_rate=0.01,
        n_iter_no_change=5,
        random_state=None,
        n_query_features=None,
        direction="q2g",
    ):
        self.n_components = n_components
        self.temperature = temperature
        self.loss = loss
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.n_query_features = n_query_features
        self.direction = direction

    def _halves(self, X):
        Q, G = unpair(X, self.n_query_features)
        return l2_normalize(Q, "X (query half)"), l2_normalize(G, "X (gallery half)")

    def _fit_pairs(self, X, y):
        # The left half is the query side whatever ``direction`` says: the
        # loss is symmetric, and transform maps the left half with W_q.
        items = split_pairs(X, y, n_query_features=self.n_query_features, direction="q2g")
        for side, bank in (("query", items.sources), ("gallery", items.targets)):
            if bank.shape[0] < 2:
                raise ValueError(
                    f"X holds {bank.shape[0]} unique {side} item(s); alignment needs "
                    "at least 2 pairs."
                )
        if y is not None and np.unique(np.asarray(y)).size < 2:
            raise ValueError("y holds a single class; alignment needs at least 2 classes.")
        Q = l2_normalize(items.sources.astype(np.float64), "X (query half)")
        G = l2_normalize(items.targets.astype(np.float64), "X (gallery half)")
        relevance = items.relevance
        s_idx, t_idx = items.source_index, items.target_index
        loss_fn = cauchy_schwarz_loss if self.loss == "cs" else cmpm_kl_loss
        tau = self.temperature
        full = relevance.toarray()

        def objective(params, rows):
            W_q, W_g = params
            if rows is None:
                A, B, R = Q, G, full
            else:
                su, tu = np.unique(s_idx[rows]), np.unique(t_idx[rows])
                A, B, R = Q[su], G[tu], relevance[su][:, tu].toarray()
            Z_q, n_q = _project(A, W_q)
            Z_g, n_g = _project(B, W_g)
            value, grad_L = loss_fn(Z_q @ Z_g.T / tau, R)
            grad_S = grad_L / tau
            return value, [
                _project_grad(A, Z_q, n_q, grad_S @ Z_g),
                _project_grad(B, Z_g, n_g, grad_S.T @ Z_q),
            ]

        rng = check_random_state(self.random_state)
        # The rows of the pairs (not the unique items) share Ω, so that the
        # two halves of a pair are drawn with the same weights.
        params = _init_projections([Q[s_idx], G[t_idx]], self.n_components, rng)
        self.solver_ = _resolve_solver(self.solver, X.shape[0])
        (W_q, W_g), curve, n_iter, hit_max = _minimize(
            objective, params, X.shape[0], self, self.solver_, rng
        )
        self.query_projection_, self.gallery_projection_ = W_q, W_g
        self.loss_curve_, self.n_iter_ = curve, n_iter
        if hit_max:
            _warn_max_iter(self)
        return self

    def _transform_pairs(self, X):
        Q, G = self._halves(X)
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
    n_components : int, default=256
        Dimension of the shared space.
    temperature : float, default=0.1
        Softmax temperature.
    loss : {"gcs", "pairwise_cs"}, default="gcs"
        Generalised CS with circular matching, or the sum of pairwise CS
        losses.
    solver : {"auto", "lbfgs", "adam"}, default="auto"
        As in :class:`CauchySchwarzAlignment` (L-BFGS up to 2048 rows).
    max_iter : int, default=100
        L-BFGS iterations or Adam epochs.
    tol : float or None, default=1e-4
        Stopping tolerance; ``None`` runs exactly ``max_iter`` iterations.
    batch_size : int, default=512
        Rows per Adam mini-batch.
    learning_rate : float, default=0.01
        Adam step size.
    n_iter_no_change : int, default=5
        Adam epochs without improvement before stopping.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial projections and Adam's batch order.

    Attributes
    ----------
    projections_ : list of ndarray of shape (n_features_m, n_components)
        One projection per view, applied to L2-normalised rows.
    n_views_ : int
        Number of modalities ``M``.
    n_features_views_ : list of int
        Width of each view seen in ``fit``.
    loss_curve_ : list of float
        Training loss per iteration (epoch).
    n_iter_ : int
        Iterations (L-BFGS) or epochs (Adam) run.
    solver_ : str
        The solver used.

    See Also
    --------
    CauchySchwarzAlignment : Two modalities on paired rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.alignment import MultiModalCSAlignment
    >>> rng = np.random.default_rng(0)
    >>> latent = rng.standard_normal((50, 5))
    >>> views = [latent @ rng.standard_normal((5, d)) for d in (6, 7, 8)]
    >>> mm = MultiModalCSAlignment(n_components=4, random_state=0).fit(views)
    >>> [Z.shape for Z in mm.transform(views)]
    [(50, 4), (50, 4), (50, 4)]
    >>> Z0, Z2 = mm.transform_view(views[0], 0), mm.transform_view(views[2], 2)
    >>> float(np.mean((Z0 @ Z2.T).argmax(axis=1) == np.arange(50))) > 0.9
    True
    """

    _parameter_constraints = {
        **_SOLVER_CONSTRAINTS,
        "loss": [StrOptions({"gcs", "pairwise_cs"})],
    }

    def __init__(
        self,
        n_components=256,
        *,
        temperature=0.1,
        loss="gcs",
        solver="auto",
        max_iter=100,
        tol=1e-4,
        batch_size=512,
        learning_rate=0.01,
        n_iter_no_change=5,
        random_state=None,
    ):
        self.n_components = n_components
        self.temperature = temperature
        self.loss = loss
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    @staticmethod
    def _check_views(views, *, min_rows=1):
        if isinstance(views, np.ndarray) or not hasattr(views, "__len__"):
            raise TypeError(
                "views must be a list of 2-D arrays (one per modality), got "
                f"{type(views).__name__}."
            )
        return [
            check_matrix(V, f"views[{m}]", min_rows=min_rows) for m, V in enumerate(views)
        ]

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
            pairs = [(m, (m + 1) % M) for m in range(M)]
        else:
            pairs = [(a, b) for a in range(M) for b in range(a + 1, M)]

        def objective(params, rows):
            Vs = Xs if rows is None else [X[rows] for X in Xs]
            R = relevance if rows is None else relevance[np.ix_(rows, rows)]
            proj = [_project(V, W) for V, W in zip(Vs, params)]
            logits = [proj[a][0] @ proj[b][0].T / tau for a, b in pairs]
            if self.loss == "gcs":
                value, grad_Ls = generalized_cauchy_schwarz_loss(logits, R)
            else:
                parts = [cauchy_schwarz_loss(L, R) for L in logits]
                value = sum(v for v, _ in parts)
                grad_Ls = [g for _, g in parts]
            grad_Z = [np.zeros_like(Z) for Z, _ in proj]
            for (a, b), grad_L in zip(pairs, grad_Ls):
                grad_Z[a] += grad_L @ proj[b][0] / tau
                grad_Z[b] += grad_L.T @ proj[a][0] / tau
            return value, [
                _project_grad(V, Z, norms, g) for V, (Z, norms), g in zip(Vs, proj, grad_Z)
            ]

        rng = check_random_state(self.random_state)
        params = _init_projections(Xs, self.n_components, rng)
        self.solver_ = _resolve_solver(self.solver, n)
        self.projections_, self.loss_curve_, self.n_iter_, hit_max = _minimize(
            objective, params, n, self, self.solver_, rng
        )
        self.n_views_ = M
        self.n_features_views_ = [X.shape[1] for X in Xs]
        if hit_max:
            _warn_max_iter(self)
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


def _benchmark_pipeline(direction="q2g"):
    from sklearn.pipeline import make_pipeline

    from .similarity import CosineSimilarity

    return make_pipeline(
        CauchySchwarzAlignment(n_components=128, temperature=0.1, random_state=0),
        CosineSimilarity(direction=direction),
    )


register_method(
    "CS alignment",
    _benchmark_pipeline,
    family="alignment",
    description="linear projections of both halves learned with the Cauchy-Schwarz "
    "matching loss on the bank pairs, then cosine",
)
