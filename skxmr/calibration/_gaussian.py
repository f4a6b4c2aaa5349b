"""Gaussian items: estimation from samples, packing, and pairwise distances.

The numerics behind :mod:`skxmr.calibration`. Everything is vectorised over
items (batched matrix products, batched symmetric eigendecompositions);
pairwise distances run over all rows x columns pairs in memory-bounded row
chunks through :func:`skxmr.utils._chunking.map_row_chunks`.

Covariance kinds, inferred from the shape of ``covariances``:

* ``(n,)`` -- *spherical*: one variance per item (``v * I``);
* ``(n, d)`` -- *diag*: per-dimension variances;
* ``(n, d, d)`` -- *full*: symmetric positive (semi-)definite matrices.

Internally spherical items are expanded to diagonal ones and, when the two
sets differ in kind, diagonal items are promoted to full matrices. All
arithmetic is float64; results are float32 only when every input is.

Eigenvalue policy (documented in ``doc/calibration.rst``): an eigenvalue below
``-tol * lambda_max`` (``tol = 100 d eps`` of the input dtype) means the
matrix is not positive semi-definite and raises ``ValueError``; eigenvalues
in ``[-tol * lambda_max, 0)`` are rounding noise and are clipped to 0 where a
matrix square root is taken (2-Wasserstein). Divergences that need a density
(KL, Jensen-Shannon, Bhattacharyya) also refuse singular covariances
(``lambda_min <= tol * lambda_max``), since they are infinite there.
"""

import numpy as np
from sklearn.utils import check_random_state

from ..utils._chunking import chunk_n_rows, map_row_chunks, row_slices
from ..utils._docstrings import fill_doc
from ..utils._params import DEPRECATED, renamed_argument
from ..utils._validation import check_matrix, label_codes, result_dtype

COVARIANCE_TYPES = ("spherical", "diag", "full")
# exp() of a log-variance outside this range over/underflows in float64.
_LOG_LIMIT = 700.0
_LOG2 = np.log(2.0)


# --------------------------------------------------------------------------
# Validation and preparation
# --------------------------------------------------------------------------
def _kind_of(covariances, name):
    ndim = np.ndim(covariances)
    if ndim not in (1, 2, 3):
        raise ValueError(
            f"{name} must be 1-D (spherical variances), 2-D (diagonal variances) "
            f"or 3-D (full matrices), got {ndim}-D."
        )
    return COVARIANCE_TYPES[ndim - 1]


def _psd_tol(d, dtype):
    return 100.0 * max(d, 1) * np.finfo(dtype).eps


def check_gaussians(means, covariances, name="", *, need_pd=True):
    """Validate one set of Gaussians and return it as float64 arrays.

    Parameters
    ----------
    means : array-like of shape (n, d)
    covariances : array-like of shape (n,), (n, d) or (n, d, d)
        Spherical variances, diagonal variances or full covariance matrices.
    name : str, default=""
        Suffix of the argument names in error messages (``"1"`` names
        ``means1`` and ``covariances1``).
    need_pd : bool, default=True
        Refuse singular covariances (densities needed). When False only
        positive *semi*-definiteness is required.

    Returns
    -------
    means : ndarray of shape (n, d), float64
    covariances : ndarray, float64
        Same kind as given; full matrices are symmetrised.
    kind : {"spherical", "diag", "full"}
    dtype : dtype
        ``float32`` if both inputs were float32, else ``float64``.
    """
    m_name, c_name = f"means{name}", f"covariances{name}"
    M = check_matrix(means, m_name)
    kind = _kind_of(covariances, c_name)
    n, d = M.shape
    C = np.asarray(covariances)
    if not np.issubdtype(C.dtype, np.number) or np.iscomplexobj(C):
        raise TypeError(f"{c_name} must hold real numbers, got dtype {C.dtype}.")
    expected = {"spherical": (n,), "diag": (n, d), "full": (n, d, d)}[kind]
    if C.shape != expected:
        raise ValueError(
            f"{c_name} has shape {C.shape} but {m_name} has shape {M.shape}; "
            f"{kind} covariances need shape {expected}."
        )
    if not np.all(np.isfinite(C)):
        raise ValueError(f"{c_name} contains NaN or infinity.")
    dtype = result_dtype(M, C)
    in_eps_dtype = np.float32 if C.dtype == np.float32 else np.float64
    C = C.astype(np.float64)
    if kind != "full":
        flat = C.reshape(n, -1)
        bad = np.flatnonzero((flat <= 0).any(axis=1) if need_pd else (flat < 0).any(axis=1))
        if bad.size:
            what = "positive" if need_pd else "non-negative"
            raise ValueError(
                f"{c_name}: variances must be {what}; item {bad[0]} is not "
                f"({bad.size} item(s) in all)."
            )
        return M.astype(np.float64), C, kind, dtype
    asym = np.abs(C - np.swapaxes(C, 1, 2)).max(axis=(1, 2))
    scale = np.abs(C).max(axis=(1, 2))
    bad = np.flatnonzero(asym > _psd_tol(d, in_eps_dtype) * np.maximum(scale, 1e-300))
    if bad.size:
        raise ValueError(
            f"{c_name} is not symmetric: item {bad[0]} differs from its transpose "
            f"by {asym[bad[0]]:.3g}."
        )
    C = 0.5 * (C + np.swapaxes(C, 1, 2))
    return M.astype(np.float64), C, kind, dtype


def _expand(M, C, kind):
    """Spherical -> diagonal variances (the two share every formula)."""
    if kind == "spherical":
        return np.repeat(C[:, None], M.shape[1], axis=1), "diag"
    return C, kind


def _prepare(M, C, kind, *, need_pd, name="", eps_dtype=np.float64):
    """Per-item statistics every distance reuses (dict, first axis = items).

    Diagonal items carry ``var``; full items carry ``cov`` plus an
    eigendecomposition-derived square root (and precision when ``need_pd``).
    """
    C, kind = _expand(M, C, kind)
    out = {"mean": M, "msq": np.einsum("ij,ij->i", M, M)}
    if kind == "diag":
        out["var"] = C
        out["std"] = np.sqrt(C)
        out["trace"] = C.sum(axis=1)
        if need_pd:
            out["ivar"] = 1.0 / C
            out["logdet"] = np.log(C).sum(axis=1)
        return out
    d = M.shape[1]
    evals, evecs = np.linalg.eigh(C)
    top = np.maximum(np.abs(evals).max(axis=1), 1e-300)
    tol = _psd_tol(d, eps_dtype) * top
    bad = np.flatnonzero(evals[:, 0] < -tol)
    if bad.size:
        raise ValueError(
            f"covariances{name} is not positive semi-definite: item {bad[0]} has "
            f"eigenvalue {evals[bad[0], 0]:.3g}."
        )
    if need_pd:
        bad = np.flatnonzero(evals[:, 0] <= tol)
        if bad.size:
            raise ValueError(
                f"covariances{name} is singular (not positive definite): item "
                f"{bad[0]} has smallest eigenvalue {evals[bad[0], 0]:.3g}; this "
                "divergence is infinite there (estimate with shrinkage or reg_covar)."
            )
    # Rounding noise below zero is clipped (see module docstring).
    evals = np.maximum(evals, 0.0)
    out["cov"] = C
    out["trace"] = np.trace(C, axis1=1, axis2=2)
    Vt = np.swapaxes(evecs, 1, 2)
    out["sqrt"] = (evecs * np.sqrt(evals)[:, None, :]) @ Vt
    if need_pd:
        out["prec"] = (evecs / evals[:, None, :]) @ Vt
        out["logdet"] = np.log(evals).sum(axis=1)
    return out


def _as_full(prep):
    """Promote prepared diagonal items to full matrices."""
    if "cov" in prep:
        return prep
    out = {"mean": prep["mean"], "msq": prep["msq"], "trace": prep["trace"]}
    diag = lambda v: v[:, :, None] * np.eye(v.shape[1])  # noqa: E731
    out["cov"], out["sqrt"] = diag(prep["var"]), diag(prep["std"])
    if "ivar" in prep:
        out["prec"], out["logdet"] = diag(prep["ivar"]), prep["logdet"]
    return out


def _take(prep, rows):
    return {key: value[rows] for key, value in prep.items()}


# --------------------------------------------------------------------------
# Pairwise distances on prepared items (A: rows, B: columns)
#
# Each closed form ``_name(A, B)`` is followed by ``_name_grad(A, B, H)``:
# for diagonal items, the gradient of ``sum_ij H_ij D_ij`` with respect to
# ``(A["mean"], A["var"], B["mean"], B["var"])`` (what the trainable
# calibration, :mod:`skxmr.calibration._projection`, backpropagates).
# --------------------------------------------------------------------------
def _w2(A, B):
    cross = A["mean"] @ B["mean"].T
    D = A["msq"][:, None] + B["msq"][None, :] - 2.0 * cross
    D += A["trace"][:, None] + B["trace"][None, :]
    if "var" in A:
        D -= 2.0 * (A["std"] @ B["std"].T)
    else:
        # tr((B^1/2 A B^1/2)^1/2) = sum of square roots of its eigenvalues.
        # Batched matmul (einsum would not use BLAS for this 3-operand product).
        T = B["sqrt"][None] @ A["cov"][:, None] @ B["sqrt"][None]
        ev = np.linalg.eigvalsh(T)
        D -= 2.0 * np.sqrt(np.maximum(ev, 0.0)).sum(axis=-1)
    # Expanded squares cancel to tiny negatives for equal items: clip.
    return np.maximum(D, 0.0)


def _w2_grad(A, B, H):
    mq, sq, mg, sg = A["mean"], A["std"], B["mean"], B["std"]
    r, c = H.sum(1)[:, None], H.sum(0)[:, None]
    return (2.0 * (r * mq - H @ mg), (r * sq - H @ sg) / sq,
            2.0 * (c * mg - H.T @ mq), (c * sg - H.T @ sq) / sg)


def _mahalanobis(A, B):
    """(mu_A_i - mu_B_j)^T P_B_j (mu_A_i - mu_B_j) for all pairs."""
    if "var" in A:
        Bm = B["mean"] * B["ivar"]
        return (
            (A["mean"] ** 2) @ B["ivar"].T
            - 2.0 * A["mean"] @ Bm.T
            + np.einsum("jk,jk->j", B["mean"], Bm)[None, :]
        )
    n, d = B["mean"].shape
    Pm = np.einsum("jkl,jl->jk", B["prec"], B["mean"])
    outer = np.einsum("ik,il->ikl", A["mean"], A["mean"]).reshape(-1, d * d)
    return (
        outer @ B["prec"].reshape(n, d * d).T
        - 2.0 * A["mean"] @ Pm.T
        + np.einsum("jk,jk->j", B["mean"], Pm)[None, :]
    )


def _kl(A, B):
    """KL(N_A_i || N_B_j) for all pairs."""
    d = A["mean"].shape[1]
    if "var" in A:
        trace = A["var"] @ B["ivar"].T
    else:
        n = B["mean"].shape[0]
        trace = A["cov"].reshape(-1, d * d) @ B["prec"].reshape(n, d * d).T
    D = 0.5 * (trace + _mahalanobis(A, B) - d + B["logdet"][None, :] - A["logdet"][:, None])
    return np.maximum(D, 0.0)


def _kl_grad(A, B, H):
    mq, uq, mg, iv = A["mean"], A["var"], B["mean"], B["ivar"]
    r, c = H.sum(1)[:, None], H.sum(0)[:, None]
    Hiv = H @ iv
    HTmq = H.T @ mq
    g_mq = Hiv * mq - H @ (mg * iv)
    g_uq = 0.5 * (Hiv - r / uq)
    g_mg = (c * mg - HTmq) * iv
    g_ug = 0.5 * (-(H.T @ (uq + mq**2)) + 2.0 * mg * HTmq - c * mg**2) * iv**2 + 0.5 * c * iv
    return g_mq, g_uq, g_mg, g_ug


def _kl_reverse(A, B):
    return _kl(B, A).T


def _kl_reverse_grad(A, B, H):
    g_mg, g_ug, g_mq, g_uq = _kl_grad(B, A, H.T)
    return g_mq, g_uq, g_mg, g_ug


def _symmetric_kl(A, B):
    return 0.5 * (_kl(A, B) + _kl(B, A).T)


def _symmetric_kl_grad(A, B, H):
    half = 0.5 * H
    return tuple(a + b for a, b in zip(_kl_grad(A, B, half), _kl_reverse_grad(A, B, half)))


def _bhattacharyya(A, B):
    diff = A["mean"][:, None, :] - B["mean"][None, :, :]
    if "var" in A:
        vbar = 0.5 * (A["var"][:, None, :] + B["var"][None, :, :])
        maha = np.einsum("ijk,ijk->ij", diff, diff / vbar)
        logdet = np.log(vbar).sum(axis=-1)
    else:
        cbar = 0.5 * (A["cov"][:, None] + B["cov"][None, :])
        L = np.linalg.cholesky(cbar)
        w = np.linalg.solve(L, diff[..., None])[..., 0]
        maha = np.einsum("ijk,ijk->ij", w, w)
        logdet = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
    D = 0.125 * maha + 0.5 * logdet - 0.25 * (A["logdet"][:, None] + B["logdet"][None, :])
    return np.maximum(D, 0.0)


def _bhattacharyya_grad(A, B, H):
    diff = A["mean"][:, None, :] - B["mean"][None, :, :]
    vbar = 0.5 * (A["var"][:, None, :] + B["var"][None, :, :])
    r, c = H.sum(1)[:, None], H.sum(0)[:, None]
    g_diff = H[:, :, None] * (0.25 * diff / vbar)
    g_vbar = H[:, :, None] * (-0.125 * diff**2 / vbar**2 + 0.5 / vbar)
    return (g_diff.sum(1), 0.5 * g_vbar.sum(1) - 0.25 * r / A["var"],
            -g_diff.sum(0), 0.5 * g_vbar.sum(0) - 0.25 * c / B["var"])


def _log_ratio_terms(P, Q, Z):
    """l_ijs = log q_j(x) - log p_i(x) at x = mu_P_i + S_P_i z_s, and at -z_s.

    ``S_P`` is the diagonal standard deviation or the symmetric square root
    of the covariance. Every term is a bilinear form between a per-(i, s)
    vector and a per-j matrix, so all pairs come out of a few GEMMs.
    Returns two arrays of shape (n_P, n_Q, n_draws) (for +z and -z).
    """
    nP, d = P["mean"].shape
    nQ, S = Q["mean"].shape[0], Z.shape[0]
    z2 = np.einsum("sk,sk->s", Z, Z)
    maha = _mahalanobis(P, Q)  # (nP, nQ)
    if "var" in P:
        Y = P["std"][:, None, :] * Z[None, :, :]  # (nP, S, d): S_P z
        lin = (Y * P["mean"][:, None, :]).reshape(-1, d) @ Q["ivar"].T
        lin -= Y.reshape(-1, d) @ (Q["mean"] * Q["ivar"]).T
        quad = (Y**2).reshape(-1, d) @ Q["ivar"].T
    else:
        Y = Z[None] @ P["sqrt"]  # (S_P z)^T = z^T S_P, S_P symmetric
        Pm = np.einsum("jkl,jl->jk", Q["prec"], Q["mean"])
        prec = Q["prec"].reshape(nQ, d * d).T
        lin = np.einsum("ik,isl->iskl", P["mean"], Y).reshape(-1, d * d) @ prec
        lin -= Y.reshape(-1, d) @ Pm.T
        quad = np.einsum("isk,isl->iskl", Y, Y).reshape(-1, d * d) @ prec
    lin = lin.reshape(nP, S, nQ).transpose(0, 2, 1)
    quad = quad.reshape(nP, S, nQ).transpose(0, 2, 1)
    base = -0.5 * (maha[:, :, None] + quad - z2[None, None, :])
    base -= 0.5 * (Q["logdet"][None, :, None] - P["logdet"][:, None, None])
    return base - lin, base + lin


def _softplus_sum(P, Q, Z):
    """Sum over the draws (and their negatives) of softplus(log q - log p)."""
    plus, minus = _log_ratio_terms(P, Q, Z)
    return (np.logaddexp(0.0, plus) + np.logaddexp(0.0, minus)).sum(axis=-1)


def _js(A, B, Z):
    """Monte-Carlo JS = log 2 - E softplus(.)/2 - E softplus(.)/2, all pairs.

    ``KL(P || M) = E_P[log p - log m] = log 2 - E_P softplus(log q - log p)``,
    stable for any gap. The draws are processed in blocks so that the
    per-(item, draw) arrays of *both* sets stay within ``working_memory``.
    """
    n_a, d = A["mean"].shape
    width = d * d if "cov" in A else d
    per_draw = 8 * 4 * (n_a + B["mean"].shape[0]) * width
    block = chunk_n_rows(per_draw, max_rows=Z.shape[0])
    total = np.zeros((n_a, B["mean"].shape[0]))
    for rows in row_slices(Z.shape[0], block):
        total += _softplus_sum(A, B, Z[rows]) + _softplus_sum(B, A, Z[rows]).T
    D = _LOG2 - total / (4.0 * Z.shape[0])
    # Each Monte-Carlo term is <= log 2 by construction; tiny negatives are
    # sampling noise for near-identical items.
    return np.clip(D, 0.0, _LOG2)


PAIRWISE = {
    "w2": _w2,
    "kl": _kl,
    "kl_reverse": _kl_reverse,
    "symmetric_kl": _symmetric_kl,
    "bhattacharyya": _bhattacharyya,
    "js": _js,
}
# Gradients of the closed forms, diagonal items only (see the section header).
PAIRWISE_GRAD = {"w2": _w2_grad, "kl": _kl_grad, "kl_reverse": _kl_reverse_grad,
                 "symmetric_kl": _symmetric_kl_grad, "bhattacharyya": _bhattacharyya_grad}
NEED_PD = {"w2": False, "kl": True, "kl_reverse": True, "symmetric_kl": True,
           "bhattacharyya": True, "js": True}


def _bytes_per_row(distance, kind, n_cols, d, n_draws=0):
    """Working memory of one row of a chunk, to size the chunks."""
    if distance == "js":  # (row, draw, column) terms; the draws are blocked
        return 8 * n_draws * (6 * n_cols + 3 * (d * d if kind == "full" else d))
    if kind == "full" and distance in ("w2", "bhattacharyya"):
        return 8 * n_cols * (3 * d * d + 2 * d)
    if distance == "bhattacharyya":
        return 8 * n_cols * 4 * d
    return 8 * n_cols * 6


def pairwise_prepared(distance, A, B, *, draws=None, n_jobs=None):
    """Distance matrix between prepared items, in memory-bounded row chunks.

    Parameters
    ----------
    distance : str
        One of ``"w2"``, ``"kl"``, ``"kl_reverse"``, ``"symmetric_kl"``,
        ``"bhattacharyya"``, ``"js"``.
    A, B : dict
        Prepared items (see ``_prepare``), same kind.
    draws : ndarray of shape (n_draws, d), default=None
        Standard normal draws for ``"js"`` (used with their negatives).
    n_jobs : int, default=None

    Returns
    -------
    D : ndarray of shape (n_A, n_B), float64
    """
    func = PAIRWISE[distance]
    kind = "diag" if "var" in A else "full"
    n, d = A["mean"].shape
    n_draws = 0 if draws is None else draws.shape[0]
    args = (draws,) if distance == "js" else ()
    parts = map_row_chunks(
        _distance_chunk,
        n,
        _bytes_per_row(distance, kind, B["mean"].shape[0], d, n_draws),
        args=(func, A, B, *args),
        n_jobs=n_jobs,
    )
    return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]


def _distance_chunk(rows, func, A, B, *args):
    return func(_take(A, rows), B, *args)


def paired_prepared(distance, A, B, *, draws=None, block=256):
    """Distances of the matched pairs ``(A[i], B[i])`` only: the diagonal.

    Computed block by block (``block`` pairs against each other, keeping the
    diagonal), so the cost is ``O(n * block)`` distances, not ``O(n^2)``.
    """
    func = PAIRWISE[distance]
    args = (draws,) if distance == "js" else ()
    n = A["mean"].shape[0]
    out = np.empty(n)
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        out[rows] = np.diagonal(func(_take(A, rows), _take(B, rows), *args))
    return out


def _pairwise_public(distance, means1, covariances1, means2, covariances2, *,
                     draws=None, n_jobs=None):
    need_pd = NEED_PD[distance]
    M1, C1, k1, t1 = check_gaussians(means1, covariances1, "1", need_pd=need_pd)
    M2, C2, k2, t2 = check_gaussians(means2, covariances2, "2", need_pd=need_pd)
    if M1.shape[1] != M2.shape[1]:
        raise ValueError(
            f"means2 has {M2.shape[1]} features but means1 has {M1.shape[1]}; "
            "both sets of Gaussians must live in the same space."
        )
    eps1 = np.float32 if np.asarray(covariances1).dtype == np.float32 else np.float64
    eps2 = np.float32 if np.asarray(covariances2).dtype == np.float32 else np.float64
    A = _prepare(M1, C1, k1, need_pd=need_pd, name="1", eps_dtype=eps1)
    B = _prepare(M2, C2, k2, need_pd=need_pd, name="2", eps_dtype=eps2)
    if ("cov" in A) != ("cov" in B):
        A, B = _as_full(A), _as_full(B)
    D = pairwise_prepared(distance, A, B, draws=draws, n_jobs=n_jobs)
    return D.astype(result_dtype(np.empty(0, t1), np.empty(0, t2)), copy=False)


_PARAMS_DOC = """Parameters
    ----------
    means1 : array-like of shape (n1, d)
        Means of the first set (rows of the result).
    covariances1 : array-like of shape (n1,), (n1, d) or (n1, d, d)
        Spherical variances, diagonal variances or full covariance matrices.
    means2 : array-like of shape (n2, d)
        Means of the second set (columns of the result).
    covariances2 : array-like of shape (n2,), (n2, d) or (n2, d, d)
    n_jobs : int, default=None
        joblib workers over row chunks (see :func:`skxmr.utils._chunking.map_row_chunks`)."""


@fill_doc(params=_PARAMS_DOC)
def wasserstein2_squared(means1, covariances1, means2, covariances2, *, n_jobs=None):
    """Squared 2-Wasserstein distance between all pairs of Gaussians.

    .. math::
        W_2^2 = \\|\\mu_1 - \\mu_2\\|^2 + \\operatorname{tr}\\big(\\Sigma_1 + \\Sigma_2
        - 2 (\\Sigma_2^{1/2} \\Sigma_1 \\Sigma_2^{1/2})^{1/2}\\big),

    which for diagonal (commuting) covariances is
    :math:`\\|\\mu_1-\\mu_2\\|^2 + \\|\\sigma_1-\\sigma_2\\|^2` (paper Eq. 7). The
    Bures term uses symmetric eigendecompositions; eigenvalues that rounding
    pushes slightly below zero are clipped to 0, and singular (positive
    semi-definite) covariances are allowed. This is the *squared* distance;
    ``ot.gaussian.bures_wasserstein_distance`` returns its square root.

    {params}

    Returns
    -------
    D : ndarray of shape (n1, n2)

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import wasserstein2_squared
    >>> wasserstein2_squared(np.zeros((1, 2)), np.array([[1., 4.]]),
    ...                      np.ones((1, 2)), np.array([[1., 1.]]))
    array([[3.]])
    """
    return _pairwise_public("w2", means1, covariances1, means2, covariances2, n_jobs=n_jobs)


@fill_doc(params=_PARAMS_DOC)
def kl_divergence(means1, covariances1, means2, covariances2, *, n_jobs=None):
    """Kullback-Leibler divergence KL(N1_i || N2_j) between all pairs.

    .. math::
        \\mathrm{KL}(\\mathcal N_1 \\| \\mathcal N_2) = \\tfrac12\\big[
        \\operatorname{tr}(\\Sigma_2^{-1}\\Sigma_1) + \\Delta^\\top\\Sigma_2^{-1}\\Delta
        - d + \\log\\det\\Sigma_2 - \\log\\det\\Sigma_1\\big],\\quad
        \\Delta = \\mu_2 - \\mu_1.

    Every pair comes out of matrix products (the trace and quadratic terms
    are Frobenius products with the precision matrices), so no per-pair
    decomposition is needed. Singular covariances raise ``ValueError``.

    {params}

    Returns
    -------
    D : ndarray of shape (n1, n2)
        Non-negative; swap the arguments (or transpose
        ``kl_divergence(m2, c2, m1, c1)``) for the other direction.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import kl_divergence
    >>> kl_divergence(np.zeros((1, 1)), np.array([1.]), np.ones((1, 1)), np.array([1.]))
    array([[0.5]])
    """
    return _pairwise_public("kl", means1, covariances1, means2, covariances2, n_jobs=n_jobs)


@fill_doc(params=_PARAMS_DOC)
def symmetric_kl_divergence(means1, covariances1, means2, covariances2, *, n_jobs=None):
    """Symmetrised KL, ``(KL(N1 || N2) + KL(N2 || N1)) / 2``, for all pairs.

    This is what the calibration paper calls "JS divergence" in its ablation
    (Table 4); the true Jensen-Shannon divergence is :func:`js_divergence`.

    {params}

    Returns
    -------
    D : ndarray of shape (n1, n2)

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import symmetric_kl_divergence
    >>> symmetric_kl_divergence(np.zeros((1, 1)), np.array([1.]),
    ...                         np.zeros((1, 1)), np.array([4.])).round(4)
    array([[0.5625]])
    """
    return _pairwise_public(
        "symmetric_kl", means1, covariances1, means2, covariances2, n_jobs=n_jobs
    )


@fill_doc(params=_PARAMS_DOC)
def bhattacharyya_distance(means1, covariances1, means2, covariances2, *, n_jobs=None):
    """Bhattacharyya distance between all pairs of Gaussians.

    .. math::
        D_B = \\tfrac18 \\Delta^\\top \\bar\\Sigma^{-1} \\Delta
        + \\tfrac12 \\log\\frac{\\det\\bar\\Sigma}{\\sqrt{\\det\\Sigma_1\\det\\Sigma_2}},
        \\quad \\bar\\Sigma = \\tfrac12(\\Sigma_1 + \\Sigma_2).

    Full covariances need one batched Cholesky factorisation per pair.

    {params}

    Returns
    -------
    D : ndarray of shape (n1, n2)

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import bhattacharyya_distance
    >>> bhattacharyya_distance(np.zeros((1, 1)), np.array([1.]),
    ...                        np.full((1, 1), 2.), np.array([1.]))
    array([[0.5]])
    """
    return _pairwise_public(
        "bhattacharyya", means1, covariances1, means2, covariances2, n_jobs=n_jobs
    )


def standard_normal_draws(n_mc_samples, d, random_state=None):
    """Half of ``n_mc_samples`` standard normal draws; their negatives are the rest."""
    n = n_mc_samples
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n_mc_samples must be an integer, got {type(n).__name__}.")
    if n < 2:
        raise ValueError(f"n_mc_samples={n} must be at least 2 (antithetic pairs).")
    rng = check_random_state(random_state)
    return rng.standard_normal((int(n + 1) // 2, d))


@fill_doc(params=_PARAMS_DOC)
def js_divergence(means1, covariances1, means2, covariances2, *, n_mc_samples=128,
                  random_state=None, n_jobs=None, n_samples=DEPRECATED):
    """Jensen-Shannon divergence between all pairs, by Monte-Carlo.

    .. math::
        \\mathrm{JS}(P, Q) = \\tfrac12 \\mathrm{KL}(P \\| M) + \\tfrac12
        \\mathrm{KL}(Q \\| M), \\quad M = \\tfrac12 (P + Q),

    has no closed form for Gaussians. The estimator draws ``x = mu + S z``
    with the same standard normal draws ``z`` for every pair (common random
    numbers, so a row of the matrix is ranked without independent noise)
    and uses each draw with its negative (antithetic pairs), and averages
    ``log 2 - softplus(log q(x) - log p(x))``. Every estimate lies in
    ``[0, log 2]`` (a negative estimate, only possible for near-identical
    items, is clipped to 0); identical Gaussians give exactly 0 and the
    estimate is exactly symmetric. Cost: ``O(n1 n2 n_mc_samples d)`` through
    matrix products (``d^2`` instead of ``d`` for full covariances).

    {params}
    n_mc_samples : int, default=128
        Monte-Carlo draws per pair (rounded up to an even number). The
        error shrinks as ``1 / sqrt(n_mc_samples)``; the tests bound it
        against a 200 000-draw reference.
    random_state : int, RandomState instance or None, default=None
    n_samples : deprecated
        Renamed ``n_mc_samples``; the old name works, with a
        ``FutureWarning``, until the next release.

    Returns
    -------
    D : ndarray of shape (n1, n2)

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.calibration import js_divergence
    >>> m, v = np.zeros((1, 2)), np.ones((1, 2))
    >>> js_divergence(m, v, m, v, random_state=0)
    array([[0.]])
    >>> far = js_divergence(m, v, m + 50., v, random_state=0)
    >>> bool(abs(far[0, 0] - np.log(2)) < 1e-6)
    True
    """
    n_mc_samples = renamed_argument(n_samples, n_mc_samples, "n_samples", "n_mc_samples",
                                    "js_divergence")
    d = check_matrix(means1, "means1").shape[1]
    draws = standard_normal_draws(n_mc_samples, d, random_state)
    return _pairwise_public(
        "js", means1, covariances1, means2, covariances2, draws=draws, n_jobs=n_jobs
    )


# --------------------------------------------------------------------------
# Estimation from samples (batched Ledoit-Wolf)
# --------------------------------------------------------------------------
def _grouped(samples, item_ids, name="samples"):
    """Centred samples padded per item, their counts, means and item ids.

    Returns ``Xc`` of shape (n_items, max_samples, d) whose padding rows are
    zero (so they drop out of every sum), ``counts`` (n_items,), ``means``
    (n_items, d) and the item ids in order of first appearance.
    """
    X = np.asarray(samples)
    if X.ndim == 3:
        if item_ids is not None:
            raise ValueError(
                "item_ids must be None for 3-D samples of shape "
                "(n_items, n_samples, n_features); items are the first axis."
            )
        n_items, n_s, d = X.shape
        flat = check_matrix(X.reshape(n_items * n_s, d), name)
        X = flat.reshape(n_items, n_s, d).astype(np.float64)
        means = X.mean(axis=1)
        return X - means[:, None], np.full(n_items, n_s), means, np.arange(n_items)
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be 3-D (n_items, n_samples, n_features) or 2-D "
            f"(n_rows, n_features) with item_ids, got {X.ndim}-D."
        )
    X = check_matrix(X, name).astype(np.float64)
    if item_ids is None:
        raise ValueError(
            "item_ids is required with 2-D samples: it says which item each "
            "row (one augmented embedding) belongs to."
        )
    ids = np.asarray(item_ids)
    if ids.ndim != 1 or ids.shape[0] != X.shape[0]:
        raise ValueError(
            f"item_ids must be 1-D with one id per row of {name} ({X.shape[0]}), "
            f"got shape {ids.shape}."
        )
    label_codes(ids, X.shape[0], "item_ids", f"row of {name}")  # None/NaN/mixed ids
    uniq, first, codes = np.unique(ids, return_index=True, return_inverse=True)
    order_items = np.argsort(first, kind="stable")  # ids in order of first appearance
    rank = np.empty_like(order_items)
    rank[order_items] = np.arange(order_items.size)
    codes = rank[codes.ravel()]
    counts = np.bincount(codes)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    means = np.add.reduceat(X[order], starts, axis=0) / counts[:, None]
    pos = np.arange(X.shape[0]) - starts[codes[order]]
    Xc = np.zeros((counts.size, counts.max(), X.shape[1]))
    Xc[codes[order], pos] = X[order] - means[codes[order]]
    return Xc, counts, means, uniq[order_items]


def ledoit_wolf_shrinkage_batched(Xc, counts):
    """Ledoit-Wolf shrinkage intensity of every item at once.

    The formula of :func:`sklearn.covariance.ledoit_wolf_shrinkage` with the
    per-item sums batched. ``||X^T X||_F^2`` is computed as ``||X X^T||_F^2``
    when items have fewer samples than features (the Gram matrix is then
    the smaller one).

    Parameters
    ----------
    Xc : ndarray of shape (n_items, max_samples, d)
        Centred samples, zero-padded.
    counts : ndarray of shape (n_items,)
        Number of real samples of each item.

    Returns
    -------
    shrinkage : ndarray of shape (n_items,)
    """
    n_items, s, d = Xc.shape
    if d == 1:  # sklearn: the shrinkage does not matter for one feature
        return np.zeros(n_items)
    n = counts.astype(np.float64)
    X2 = Xc**2
    emp_trace = X2.sum(axis=1) / n[:, None]
    mu = emp_trace.sum(axis=1) / d
    if s <= d:
        gram = Xc @ np.swapaxes(Xc, 1, 2)
    else:
        gram = np.swapaxes(Xc, 1, 2) @ Xc
    delta_ = np.einsum("ijk,ijk->i", gram, gram) / n**2
    beta_ = (X2.sum(axis=2) ** 2).sum(axis=1)
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * emp_trace.sum(axis=1) + d * mu**2) / d
    beta = np.minimum(beta, delta)
    out = np.zeros(n_items)
    np.divide(beta, delta, out=out, where=beta != 0)
    return out


def estimate_gaussians(samples, item_ids=None, *, covariance="diag",
                       shrinkage="ledoit-wolf", reg_covar=0.0, name="samples"):
    """Per-item Gaussians from several embeddings (augmentations) per item.

    Parameters
    ----------
    samples : array-like of shape (n_items, n_samples, d) or (n_rows, d)
        Embeddings of every item's augmentations.
    item_ids : array-like of shape (n_rows,), default=None
        Item of each row for 2-D ``samples`` (any hashable labels; items are
        returned in order of first appearance).
    covariance : {"spherical", "diag", "full"}, default="diag"
    shrinkage : "ledoit-wolf", float in [0, 1] or None, default="ledoit-wolf"
        Convex weight on the scaled identity ``mu I`` (``mu`` the mean
        variance); ``None`` is the empirical covariance.
    reg_covar : float, default=0.0
        Added to the diagonal afterwards.
    name : str, default="samples"
        Argument name used in error messages.

    Returns
    -------
    means : ndarray of shape (n_items, d)
    covariances : ndarray of shape (n_items,), (n_items, d) or (n_items, d, d)
    shrinkage : ndarray of shape (n_items,)
        The intensity used for each item.
    ids : ndarray of shape (n_items,)
    """
    Xc, counts, means, ids = _grouped(samples, item_ids, name)
    few = np.flatnonzero(counts < 2)
    if few.size:
        raise ValueError(
            f"item {_id(ids, few[0])!r} has {counts[few[0]]} sample(s) ({few.size} such "
            "item(s)); a covariance needs at least 2 samples per item (n_samples >= 2)."
        )
    n_items, _, d = Xc.shape
    n = counts.astype(np.float64)
    # Work on each item's samples divided by their largest deviation: squares
    # and fourth powers of samples near 1e200 would overflow to inf and NaN,
    # and the shrinkage intensity does not depend on the scale.
    scale = np.abs(Xc).max(axis=(1, 2))
    scale[scale == 0] = 1.0
    Xc = Xc / scale[:, None, None]
    if shrinkage == "ledoit-wolf":
        delta = ledoit_wolf_shrinkage_batched(Xc, counts)
    else:
        delta = np.full(n_items, 0.0 if shrinkage is None else float(shrinkage))
    emp_diag = (Xc**2).sum(axis=1) / n[:, None]
    mu = emp_diag.mean(axis=1)
    if covariance == "full":
        covs = (1.0 - delta)[:, None, None] * (np.swapaxes(Xc, 1, 2) @ Xc / n[:, None, None])
        covs[:, np.arange(d), np.arange(d)] += (delta * mu)[:, None]
    elif covariance == "diag":
        covs = (1.0 - delta)[:, None] * emp_diag + (delta * mu)[:, None]
    else:
        covs = mu
    with np.errstate(over="ignore", invalid="ignore"):
        sq = scale**2
        covs = covs * sq.reshape((-1,) + (1,) * (covs.ndim - 1))
        mu = mu * sq
    if not (np.isfinite(covs).all() and np.isfinite(mu).all()):
        i = int(np.flatnonzero(~np.isfinite(covs.reshape(n_items, -1)).all(axis=1))[0])
        raise ValueError(
            f"{name}: the covariance of item {_id(ids, i)!r} overflows float64 (its "
            f"samples deviate by up to {scale[i]:.3g}); rescale the samples."
        )
    floor = delta * mu + reg_covar  # lower bound of every eigenvalue
    if covariance == "full":
        covs[:, np.arange(d), np.arange(d)] += reg_covar
    else:
        covs = covs + reg_covar
    _check_estimated(covs, covariance, floor, counts, ids, shrinkage)
    return means, covs, delta, ids


def _id(ids, i):
    value = ids[i]
    return value.item() if isinstance(value, np.generic) else value


def _check_estimated(covs, covariance, floor, counts, ids, shrinkage):
    if covariance != "full":
        flat = covs.reshape(covs.shape[0], -1)
        bad = np.flatnonzero((flat <= 0).any(axis=1))
        if bad.size:
            raise ValueError(
                f"item {_id(ids, bad[0])!r} has zero variance (its samples do not vary "
                f"{'at all' if covariance == 'spherical' else 'along some feature'}); "
                "use a shrinkage in (0, 1] or reg_covar > 0."
            )
        return
    d = covs.shape[1]
    trace = np.trace(covs, axis1=1, axis2=2)
    # A floor well above rounding makes the matrix positive definite by
    # construction; otherwise d or fewer samples make it singular for certain.
    unsure = np.flatnonzero(floor <= _psd_tol(d, np.float64) * trace)
    if not unsure.size:
        return
    singular = unsure[counts[unsure] <= d]
    if not singular.size:
        ev = np.linalg.eigvalsh(covs[unsure])
        tol = _psd_tol(d, np.float64) * np.maximum(ev[:, -1], 1e-300)
        singular = unsure[ev[:, 0] <= tol]
    if singular.size:
        i = singular[0]
        hint = (
            " (the Ledoit-Wolf intensity is 0 here, as it always is for 2 samples)"
            if shrinkage == "ledoit-wolf" else ""
        )
        raise ValueError(
            f"the full covariance of item {_id(ids, i)!r} is singular ({counts[i]} "
            f"samples in {d} dimensions, shrinkage={shrinkage!r}{hint}); pass a "
            "shrinkage in (0, 1] or reg_covar > 0."
        )


# --------------------------------------------------------------------------
# Packing Gaussians into rows: [mean | covariance parameters]
# --------------------------------------------------------------------------
def n_covariance_params(d, covariance):
    """Columns taken by one item's covariance parameters."""
    return {"spherical": 1, "diag": d, "full": d * (d + 1) // 2}[covariance]


def layout_dim(width, covariance, name="X"):
    """Embedding dimension ``d`` of packed rows of ``width`` columns."""
    if covariance == "spherical":
        d = width - 1
    elif covariance == "diag":
        d = width // 2 if width % 2 == 0 else 0
    else:  # d (d + 3) / 2 = width
        d = int(round((np.sqrt(9.0 + 8.0 * width) - 3.0) / 2.0))
        d = d if d * (d + 3) // 2 == width else 0
    if d < 1:
        need = {"spherical": "d + 1", "diag": "2 d", "full": "d (d + 3) / 2"}[covariance]
        raise ValueError(
            f"{name} has {width} columns per item, which is not {need} for any "
            f"d >= 1: not a packed {covariance!r} Gaussian (check covariance and "
            "n_query_features)."
        )
    return d


def packed_feature_names(d, covariance, prefix=""):
    """Column names of packed Gaussian rows (the layout of :func:`pack_gaussians`).

    ``mean0..`` then ``logvar`` (spherical), ``logvar0..`` (diag) or
    ``logchol0_0..`` (log of the Cholesky diagonal) and ``chol1_0..`` (the
    strictly lower entries, row by row) for full covariances.
    """
    names = [f"{prefix}mean{i}" for i in range(d)]
    if covariance == "spherical":
        return names + [f"{prefix}logvar"]
    if covariance == "diag":
        return names + [f"{prefix}logvar{i}" for i in range(d)]
    low = np.tril_indices(d, -1)
    return (
        names
        + [f"{prefix}logchol{i}_{i}" for i in range(d)]
        + [f"{prefix}chol{i}_{j}" for i, j in zip(*low)]
    )


def pack_gaussians(means, covariances):
    """Rows ``[mean, log-covariance parameters]`` for each Gaussian.

    Spherical and diagonal variances are stored as their logarithms; a full
    covariance as its log-Cholesky factor (log of the diagonal of ``L``,
    then the strictly lower entries row by row, ``Sigma = L L^T``). Every
    finite row therefore unpacks to a valid (positive definite) Gaussian.

    Parameters
    ----------
    means : array-like of shape (n, d)
    covariances : array-like of shape (n,), (n, d) or (n, d, d)

    Returns
    -------
    rows : ndarray of shape (n, d + n_params)
    """
    M, C, kind, dtype = check_gaussians(means, covariances, need_pd=True)
    if kind != "full":
        params = np.log(C).reshape(M.shape[0], -1)
    else:
        try:
            L = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            raise ValueError(
                "covariances is not positive definite: its Cholesky factor (needed "
                "to pack it) does not exist."
            ) from None
        d = M.shape[1]
        low = np.tril_indices(d, -1)
        params = np.hstack([np.log(np.diagonal(L, axis1=1, axis2=2)), L[:, low[0], low[1]]])
    return np.hstack([M, params]).astype(dtype, copy=False)


def unpack_gaussians(rows, covariance, name="X"):
    """Inverse of :func:`pack_gaussians` (float64 means and covariances).

    Raises ``ValueError`` naming ``name`` when the layout does not fit or a
    log-variance would over/underflow.
    """
    R = check_matrix(rows, name).astype(np.float64)
    d = layout_dim(R.shape[1], covariance, name)
    M, P = R[:, :d], R[:, d:]
    logs = P if covariance != "full" else P[:, :d]
    if np.abs(logs).max(initial=0.0) > _LOG_LIMIT:
        raise ValueError(
            f"{name} holds log-variances of magnitude above {_LOG_LIMIT:g}; they "
            "over/underflow when exponentiated (is X really packed Gaussians?)."
        )
    if covariance == "spherical":
        return M, np.exp(P[:, 0])
    if covariance == "diag":
        return M, np.exp(P)
    L = np.zeros((R.shape[0], d, d))
    L[:, np.arange(d), np.arange(d)] = np.exp(P[:, :d])
    low = np.tril_indices(d, -1)
    L[:, low[0], low[1]] = P[:, d:]
    return M, L @ np.swapaxes(L, 1, 2)
