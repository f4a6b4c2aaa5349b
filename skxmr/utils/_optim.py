"""Training machinery shared by the alignment estimators and CalibratedProjection.

The estimators describe their problem as

* ``make_batch(rows) -> data``: the training data of some rows (pairs or
  entities), e.g. the unique items of those rows and their relevance;
* ``loss_and_grad(params, data) -> (loss, grads)``: the matching loss of
  the projections ``params`` (one matrix per modality) and its gradient;

and :func:`fit_projections` minimises it with full-batch L-BFGS or
mini-batch Adam, optionally stopping early on held-out rows, and turns a
diverging run into a clear error instead of a NaN projection.
"""

import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

# Above this many training rows the "auto" solver switches from full-batch
# L-BFGS (time and memory grow as n_rows^2) to mini-batch Adam.
LBFGS_MAX_ROWS = 2048
# At most this many rows are used to compute the initial projections.
INIT_MAX_ROWS = 4096


class Diverged(Exception):
    """Raised inside training when the loss or the projections stop being finite."""


def project(X, W):
    """Rows of ``X @ W`` scaled to unit norm, and the norms (for backprop)."""
    U = X @ W
    norms = np.linalg.norm(U, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms) & (norms > 0)):
        # Only a diverging run gets here: W overflowed, or a projection vanished.
        raise Diverged
    return U / norms, norms


def project_grad(X, Z, norms, grad_Z):
    """Gradient with respect to ``W`` of a function of ``Z = norm(X @ W)``."""
    # d(u/|u|) projects the incoming gradient onto the tangent space of the
    # sphere at z and divides by |u|.
    grad_U = (grad_Z - np.sum(grad_Z * Z, axis=1, keepdims=True) * Z) / norms
    return X.T @ grad_U


def resolve_init(init, views):
    """``"auto"``: ``"pca"`` when every view has the same width, else ``"random"``."""
    widths = {V.shape[1] for V in views}
    if init == "auto":
        return "pca" if len(widths) == 1 else "random"
    if init == "pca" and len(widths) > 1:
        raise ValueError(
            f"init='pca' shares one basis between the modalities and needs equal "
            f"widths, got {sorted(widths)}; use init='random' or 'auto'."
        )
    return init


def init_projections(views, n_components, init, rng):
    """Initial projections of row-paired views (rows ``i`` of all views match).

    ``"pca"``: every view gets the same matrix, the top right singular
    vectors of the pooled rows (zero columns beyond their rank): the start is
    the cosine of the inputs restricted to their principal subspace, i.e. the
    alignment the embeddings already have. ``"random"``: ``W_m = X_mᵀ Ω``
    with one Gaussian ``Ω`` shared by the views; each column lies in the span
    of the view's training rows (unseen input directions are ignored, and
    gradient steps ``X_mᵀ(...)`` stay in that span), and sharing ``Ω`` makes
    the projections of an entity agree across views as far as the
    within-view similarities agree. Both are equivariant to rotations of the
    inputs (``"random"`` per view, ``"pca"`` jointly).
    """
    n = views[0].shape[0]
    rows = np.sort(rng.choice(n, INIT_MAX_ROWS, replace=False)) if n > INIT_MAX_ROWS else slice(None)
    if init == "pca":
        pooled = np.vstack([V[rows] for V in views])
        basis = np.linalg.svd(pooled, full_matrices=False)[2][:n_components].T
        W = np.zeros((pooled.shape[1], n_components))
        W[:, : basis.shape[1]] = basis
        return [W.copy() for _ in views]
    omega = rng.standard_normal((views[0][rows].shape[0], n_components))
    Ws = []
    for V in views:
        W = V[rows].T @ omega
        Ws.append(W / np.linalg.norm(W, axis=0).clip(np.finfo(float).tiny))
    return Ws


def split_validation(groups, fraction, rng, name):
    """Training and validation rows, whole groups (items) on one side.

    ``groups[r]`` is the item of row ``r`` on one side (e.g. its gallery
    item), so that no item is both trained and validated on.
    """
    uniq = np.unique(groups)
    n_val = max(2, round(fraction * uniq.size))
    if uniq.size - n_val < 2:
        raise ValueError(
            f"early_stopping holds out {n_val} of the {uniq.size} {name}; at least "
            "2 must remain for training. Use more pairs, a smaller "
            "validation_fraction, or early_stopping=False."
        )
    val_items = rng.choice(uniq, n_val, replace=False)
    is_val = np.isin(groups, val_items)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


class _Monitor:
    """Early stopping on a held-out loss; keeps the best projections."""

    def __init__(self, loss_fn, val_data, tol, patience):
        self.loss_fn, self.val_data = loss_fn, val_data
        self.tol, self.patience = (0.0 if tol is None else tol), patience
        self.scores, self.best, self.best_params, self.best_iter = [], np.inf, None, 0

    def update(self, params, iteration):
        """Record the held-out loss; True when it stalled for ``patience`` steps."""
        score = float(self.loss_fn(params, self.val_data)[0])
        self.scores.append(score)
        if score < self.best - self.tol * max(abs(self.best), 1.0) or self.best_params is None:
            self.best, self.best_params, self.best_iter = score, [p.copy() for p in params], iteration
        return iteration - self.best_iter >= self.patience


class FitResult:
    """What training produced (attributes copied onto the estimator)."""

    def __init__(self, params, loss_curve, n_iter, hit_max_iter):
        self.params, self.loss_curve, self.n_iter = params, loss_curve, n_iter
        self.hit_max_iter = hit_max_iter
        self.validation_scores = self.best_iteration = None


class _FixedBudget:
    """``est`` seen with ``max_iter=n_iter``, no tolerance and no early stopping."""

    def __init__(self, est, n_iter):
        self._est, self.max_iter, self.tol, self.early_stopping = est, n_iter, None, False

    def __getattr__(self, name):
        return getattr(self._est, name)


def fit_projections(est, loss_and_grad, make_batch, groups, params, rng, solver, *,
                    merge_tail=None, validation=None, validation_loss=None, n_iter=None):
    """Train the projections; see the module docstring.

    Parameters
    ----------
    est : estimator
        Supplies ``max_iter``, ``tol``, ``batch_size``, ``learning_rate``,
        ``n_iter_no_change`` and, if it has them, ``early_stopping`` and
        ``validation_fraction`` (read only; without ``early_stopping`` there
        is none).
    loss_and_grad, make_batch : callables
        See the module docstring.
    groups : ndarray of shape (n_rows,)
        Item id of each training row, for the validation split.
    params : list of ndarray
        Initial projections.
    rng : numpy.random.RandomState
    solver : {"lbfgs", "adam"}
    merge_tail : int, default=None
        Adam: a ragged last batch of at most this many rows joins the
        previous one; ``None``: half a batch.
    validation : tuple of 2 ndarray, default=None
        ``(training rows, held-out rows)`` already split (e.g. by
        :func:`split_validation`, when the start was fitted on the training
        rows only); ``None``: split here when ``est.early_stopping``.
    validation_loss : callable, default=None
        ``(params, data) -> (loss, grads)`` tracked on the held-out rows
        (e.g. the loss without a penalty); ``None``: ``loss_and_grad``.
    n_iter : int, default=None
        Run exactly this many iterations (epochs) on all rows, without
        validation or stopping rule (e.g. the refit on all rows after early
        stopping chose the count); 0 returns ``params`` unchanged.

    Returns
    -------
    result : FitResult
    """
    name = type(est).__name__
    if n_iter is not None:
        if n_iter == 0:
            return FitResult([p.copy() for p in params], [], 0, False)
        est, validation = _FixedBudget(est, n_iter), None
    rows = np.arange(groups.shape[0])
    monitor = None
    if validation is None and getattr(est, "early_stopping", False):
        validation = split_validation(groups, est.validation_fraction, rng, "items")
    if validation is not None:
        rows, val_rows = validation
        monitor = _Monitor(validation_loss or loss_and_grad, make_batch(val_rows), est.tol,
                           est.n_iter_no_change)
    # Overflow or invalid values can only come from a diverging run; they are
    # detected explicitly (loss, gradients and projections must stay finite).
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            if monitor is not None:
                monitor.update(params, 0)
            if solver == "lbfgs":
                result = _lbfgs(est, loss_and_grad, make_batch(rows), params, monitor)
            else:
                result = _adam(est, loss_and_grad, make_batch, rows, params, rng, monitor,
                               merge_tail)
        except Diverged:
            hint = " or raise temperature" if hasattr(est, "temperature") else ""
            raise ValueError(
                f"{name} training diverged: the loss, its gradient or "
                f"the projections became non-finite. Lower learning_rate "
                f"(solver='adam'){hint}; no projection was stored."
            ) from None
    if monitor is not None:
        result.params = monitor.best_params
        result.validation_scores, result.best_iteration = monitor.scores, monitor.best_iter
    if result.hit_max_iter:
        warnings.warn(
            f"{name} reached max_iter={est.max_iter} before the "
            f"{'validation ' if monitor else ''}loss stopped improving by tol={est.tol}; "
            "increase max_iter (tol=None runs exactly max_iter iterations, silently).",
            ConvergenceWarning,
        )
    return result


def _check_finite(loss, grads):
    if not np.isfinite(loss) or not all(np.all(np.isfinite(g)) for g in grads):
        raise Diverged


def _lbfgs(est, loss_and_grad, data, params, monitor):
    shapes = [p.shape for p in params]
    splits = np.cumsum([p.size for p in params])[:-1]

    def unpack(w):
        return [part.reshape(shape) for part, shape in zip(np.split(w, splits), shapes)]

    def fun(w):
        loss, grads = loss_and_grad(unpack(w), data)
        _check_finite(loss, grads)
        return loss, np.concatenate([g.ravel() for g in grads])

    curve, stopped = [], [False]

    def callback(intermediate_result):
        curve.append(float(intermediate_result.fun))
        if monitor is not None and monitor.update(unpack(intermediate_result.x), len(curve)):
            stopped[0] = True
            raise StopIteration  # scipy ends the run and returns the current point

    # With early stopping, tol applies to the held-out loss only.
    ftol = 0.0 if (est.tol is None or monitor is not None) else est.tol
    res = minimize(
        fun,
        np.concatenate([p.ravel() for p in params]),
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={"maxiter": est.max_iter, "ftol": ftol, "gtol": 1e-10},
    )
    hit_max = len(curve) >= est.max_iter and not stopped[0] and est.tol is not None
    return FitResult(unpack(res.x), curve, len(curve), hit_max)


def _adam(est, loss_and_grad, make_batch, rows, params, rng, monitor, merge_tail,
          beta1=0.9, beta2=0.999, eps=1e-8):
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    n = rows.size
    size = min(est.batch_size, n)
    # A ragged last batch of at most half a batch joins the previous one:
    # tiny batches give poor estimates of a contrastive loss.
    tail = size // 2 if merge_tail is None else merge_tail
    starts = list(range(0, n - tail, size)) or [0]
    curve, best, stall, step = [], np.inf, 0, 0
    for epoch in range(1, est.max_iter + 1):
        order = rows[rng.permutation(n)]
        losses = []
        for i, start in enumerate(starts):
            stop = n if i == len(starts) - 1 else start + size
            loss, grads = loss_and_grad(params, make_batch(order[start:stop]))
            _check_finite(loss, grads)
            step += 1
            for p, g, m_p, v_p in zip(params, grads, m, v):
                m_p *= beta1
                m_p += (1 - beta1) * g
                v_p *= beta2
                v_p += (1 - beta2) * g * g
                p -= est.learning_rate * (m_p / (1 - beta1**step)) / (
                    np.sqrt(v_p / (1 - beta2**step)) + eps
                )
            losses.append(loss)
        if not all(np.all(np.isfinite(p)) for p in params):
            raise Diverged
        curve.append(float(np.mean(losses)))
        if monitor is not None:
            if monitor.update(params, epoch):
                return FitResult(params, curve, epoch, False)
        elif est.tol is not None:
            stall = stall + 1 if curve[-1] > best - est.tol * max(abs(best), 1.0) else 0
            best = min(best, curve[-1])
            if stall >= est.n_iter_no_change:
                return FitResult(params, curve, epoch, False)
    return FitResult(params, curve, est.max_iter, est.tol is not None)
