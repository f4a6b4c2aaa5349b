"""Closed-form alignments of two modalities: Procrustes, PLS/CCA and ridge maps.

The baselines a scikit-learn or SciPy user tries first when two encoders
that were never trained together must be joined, as estimators on paired
rows. Each fits in one pass (an SVD, a NIPALS run or a linear solve) on the
L2-normalised training pairs and maps both halves into a shared space with
one affine map per half (:class:`~skxmr.alignment._linear.LinearAlignment`).
The same maps (module-level functions ``*_maps``) are the starting point of
:class:`~skxmr.alignment.CauchySchwarzAlignment`.
"""

import numbers

import numpy as np
from ..utils._compat import Interval, StrOptions

from .._registry import register_method
from ..utils._docstrings import fill_doc
from ..utils._params import PAIR_CONSTRAINTS
from ._linear import LinearAlignment, paired_halves

__all__ = [
    "PLSAlignment",
    "ProcrustesAlignment",
    "RidgeAlignment",
    "pls_maps",
    "procrustes_maps",
    "ridge_maps",
    "generalized_procrustes_maps",
    "truncate_maps",
]


def _centre(A, scale):
    """Mean of the rows and, with ``scale``, the inverse feature deviations."""
    mean = A.mean(axis=0)
    if not scale:
        return mean, np.ones(A.shape[1])
    std = (A - mean).std(axis=0)
    return mean, 1.0 / np.where(std > 0, std, 1.0)


def _top_directions(A, k):
    """Top ``k`` right singular vectors of ``A`` as columns."""
    return np.linalg.svd(A, full_matrices=False)[2][:k].T


def truncate_maps(views, means, Ws, k):
    """Keep the top ``k`` principal directions of the aligned training rows.

    Every view's training rows are mapped (``(V - mean) @ W``) and pooled;
    each ``W`` is multiplied by the pooled rows' top ``k`` right singular
    vectors (zero columns beyond their rank, so ``k`` may exceed the
    width), and the cosines within that subspace are those of the full
    maps. Returns the new list of ``W``.
    """
    pooled = np.vstack([(V - m) @ W for V, m, W in zip(views, means, Ws)])
    basis = np.zeros((Ws[0].shape[1], k))
    top = _top_directions(pooled, k)
    basis[:, : top.shape[1]] = top
    return [W @ basis for W in Ws]


def generalized_procrustes_maps(views, n_iter=5):
    """Centred generalised Procrustes maps of ``M`` row-paired views.

    Each view is centred and zero-padded to the widest one; the views are
    rotated in turn onto their running consensus (the mean of the rotated
    views, starting from view 0), ``n_iter`` times (Gower 1975). Returns
    ``(means, Ws)``; for two views the cosines are those of
    :func:`procrustes_maps` with ``"pad"``, up to the convergence of the
    iteration.
    """
    width = max(V.shape[1] for V in views)
    means = [V.mean(axis=0) for V in views]
    padded = [np.pad(V - m, ((0, 0), (0, width - V.shape[1]))) for V, m in zip(views, means)]
    target = padded[0]
    for _ in range(n_iter):
        Rs = []
        for C in padded:
            U, _, Vt = np.linalg.svd(C.T @ target)
            Rs.append(U @ Vt)
        target = np.mean([C @ R for C, R in zip(padded, Rs)], axis=0)
    return means, [R[: V.shape[1]] for V, R in zip(views, Rs)]


def procrustes_maps(Q, G, *, match_widths="pad", scale=False, n_components=None):
    """Centred orthogonal Procrustes maps of row-paired halves.

    Both halves are centred on their training means (and, with ``scale``,
    each feature divided by its deviation); then the rotation ``R``
    minimising ``||Q_c R - G_c||_F`` is ``U Vᵀ`` from the SVD ``Q_cᵀ G_c =
    U S Vᵀ`` (Schönemann 1966). ``match_widths="pad"``: the narrower half is
    zero-padded to the wider one (the thin SVD of the ``d_q × d_g`` cross
    product gives the same ``R`` restricted to the real columns; a wider
    query half is rotated onto the gallery's ``d_g`` axes, its excess
    dropped); ``"pca"``: each half is first reduced to its own top
    ``n_components`` principal directions and the rotation is between those.

    Returns ``(mean_q, W_q, mean_g, W_g)``; see
    :class:`ProcrustesAlignment`.
    """
    mq, iq = _centre(Q, scale)
    mg, ig = _centre(G, scale)
    Qc, Gc = (Q - mq) * iq, (G - mg) * ig
    if match_widths == "pca":
        k = min(Q.shape[1], G.shape[1], Q.shape[0] - 1)
        k = k if n_components is None else min(k, n_components)
        Bq, Bg = _top_directions(Qc, k), _top_directions(Gc, k)
    else:
        Bq, Bg = np.eye(Q.shape[1]), np.eye(G.shape[1])
    U, _, Vt = np.linalg.svd((Qc @ Bq).T @ (Gc @ Bg), full_matrices=False)
    Wq, Wg = iq[:, None] * (Bq @ U @ Vt), ig[:, None] * Bg
    if n_components is not None and n_components < Wq.shape[1]:
        Wq, Wg = truncate_maps([Q, G], [mq, mg], [Wq, Wg], n_components)
    return mq, Wq, mg, Wg


def pls_maps(Q, G, *, n_components=0.25, algorithm="pls", scale=False, max_iter=500,
             return_n_iter=False):
    """Maps of scikit-learn's PLSCanonical (or CCA) fitted on the paired halves.

    Each half is centred (and with ``scale`` standardised) here, so the
    wrapped estimator's own centring is a no-op and its rotations
    ``x_rotations_``, ``y_rotations_`` are the maps (and, with
    ``return_n_iter``, its ``n_iter_``).
    """
    from sklearn.cross_decomposition import CCA, PLSCanonical

    limit = min(Q.shape[0] - 1, Q.shape[1], G.shape[1])
    if n_components is None:
        k = limit
    elif isinstance(n_components, numbers.Integral):
        k = int(n_components)
    else:  # a fraction of what the pairs allow
        k = min(limit, max(2, int(round(n_components * limit))))
    if k > limit:
        raise ValueError(
            f"n_components={k} exceeds the {limit} components that {Q.shape[0]} training "
            f"pairs of widths {Q.shape[1]} and {G.shape[1]} allow; lower n_components."
        )
    mq, iq = _centre(Q, scale)
    mg, ig = _centre(G, scale)
    cls = PLSCanonical if algorithm == "pls" else CCA
    est = cls(n_components=k, scale=False, max_iter=max_iter).fit((Q - mq) * iq, (G - mg) * ig)
    maps = (mq, iq[:, None] * est.x_rotations_, mg, ig[:, None] * est.y_rotations_)
    return (maps, est.n_iter_) if return_n_iter else maps


def ridge_maps(Q, G, *, alpha=1.0, map_to="gallery"):
    """Ridge regression of one centred half onto the other (scikit-learn's Ridge).

    ``map_to="gallery"``: ``W_q`` is the coefficient matrix predicting the
    centred gallery half from the centred query half and the gallery half
    is only centred; ``"query"``: the reverse. The shared space is the
    target half's.
    """
    from sklearn.linear_model import Ridge

    mq, mg = Q.mean(axis=0), G.mean(axis=0)
    src, dst = (Q - mq, G - mg) if map_to == "gallery" else (G - mg, Q - mq)
    coef = Ridge(alpha=alpha, fit_intercept=False).fit(src, dst).coef_.T
    coef = coef.reshape(src.shape[1], dst.shape[1])
    eye = np.eye(dst.shape[1])
    return (mq, coef, mg, eye) if map_to == "gallery" else (mq, eye, mg, coef)


_MAPS_ATTRS_DOC = """query_mean_ : ndarray of shape (n_query_features,)
        Subtracted from the L2-normalised query halves.
    query_projection_ : ndarray of shape (n_query_features, n_components)
        Map of the centred query halves into the shared space.
    gallery_mean_ : ndarray of shape (n_gallery_features,)
        Subtracted from the L2-normalised gallery halves.
    gallery_projection_ : ndarray of shape (n_gallery_features, n_components)
        Map of the centred gallery halves into the shared space.
    n_components_ : int
        Width of the shared space (of each output half).
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of ``X``, when it had string column names."""

_PAIR_PARAMS_DOC = """n_query_features : int, default=None
        Width of the query half of ``X``; ``None`` means half the columns.
        The halves may have different widths.
    direction : {"q2g", "g2q"}, default="q2g"
        Part of the paired-row convention; the fit is symmetric and the left
        half is always mapped by the query map."""


_doc = fill_doc(attributes=_MAPS_ATTRS_DOC, pair_params=_PAIR_PARAMS_DOC)


@_doc
class ProcrustesAlignment(LinearAlignment):
    """Centred orthogonal Procrustes alignment of two modalities.

    Centres both L2-normalised halves on the training means and rotates the
    query half onto the gallery half with the orthogonal matrix ``R`` that
    minimises ``||Q_c R - G_c||_F`` (``R = U Vᵀ`` from the SVD of ``Q_cᵀ
    G_c``). Halves of different widths are matched by zero-padding the
    narrower one (``match_widths="pad"``) or by reducing each to its own
    top principal directions first (``"pca"``). Then
    ``z_q = normalise((x_q - mean_q) R)``, ``z_g = normalise(x_g - mean_g)``.

    Cost: one ``d_q × d_g`` cross product and its SVD, ``O(n d_q d_g +
    d_q d_g min(d_q, d_g))``; no tuning beyond the two options. Wins when
    the two encoders differ by (nearly) a rotation, and with few pairs: it
    has no free scale to overfit, so it is the strongest closed form on a
    few hundred pairs of similar encoders.

    Parameters
    ----------
    n_components : int, default=None
        Width of the shared space. ``None``: the gallery half's width
        (``"pad"``) or the most principal directions both halves and the
        pairs allow (``"pca"``). Smaller values keep the top principal
        directions of the aligned training rows.
    match_widths : {"pad", "pca"}, default="pad"
        How halves of different widths meet (equal widths: ``"pad"`` pads
        nothing).
    scale : bool, default=False
        Divide each centred feature by its training deviation before the
        rotation (as PLS's ``scale``). A global scale factor (the "scaled"
        Procrustes of shape analysis) is not offered: it changes no cosine.
    {pair_params}

    Attributes
    ----------
    {attributes}

    See Also
    --------
    PLSAlignment, RidgeAlignment : Other closed forms.
    CauchySchwarzAlignment : Starts from this map and trains it further.
    scipy.linalg.orthogonal_procrustes : The rotation alone.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import CosineSimilarity, pair
    >>> from skxmr.alignment import ProcrustesAlignment
    >>> rng = np.random.default_rng(0)
    >>> text = rng.standard_normal((200, 8))
    >>> rotation = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    >>> image = text @ rotation + 0.1 * rng.standard_normal((200, 8))
    >>> X = pair(text, image)
    >>> pa = ProcrustesAlignment().fit(X[:150])
    >>> Xt = pa.transform(X[150:])
    >>> Xt.shape
    (50, 16)
    >>> CosineSimilarity().fit(Xt).score(Xt)     # held-out text->image R@1
    100.0
    """

    _parameter_constraints = {
        **PAIR_CONSTRAINTS,
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "match_widths": [StrOptions({"pad", "pca"})],
        "scale": ["boolean"],
    }

    def __init__(self, n_components=None, *, match_widths="pad", scale=False,
                 n_query_features=None, direction="q2g"):
        self.n_components = n_components
        self.match_widths = match_widths
        self.scale = scale
        self.n_query_features = n_query_features
        self.direction = direction

    def _fit_pairs(self, X, y):
        Q, G, _ = paired_halves(X, y, self.n_query_features)
        self._set_maps(*procrustes_maps(
            Q, G, match_widths=self.match_widths, scale=self.scale,
            n_components=self.n_components,
        ))
        return self


@_doc
class PLSAlignment(LinearAlignment):
    """Partial least squares (or CCA) alignment of two modalities.

    Wraps :class:`sklearn.cross_decomposition.PLSCanonical`
    (``algorithm="pls"``: directions of maximal covariance between the
    halves) or :class:`~sklearn.cross_decomposition.CCA` (``"cca"``: of
    maximal correlation), fitted on the centred, L2-normalised training
    pairs; each half's scores on the ``n_components`` directions are its
    coordinates in the shared space (``z = normalise((x - mean) @
    rotations)``).

    Cost: NIPALS, ``n_components`` power iterations of ``O(n (d_q +
    d_g))`` each (``max_iter`` at most). PLS wins over Procrustes when the
    encoders share only a few directions (a low-dimensional common content
    in wide, noisy embeddings): it keeps those and drops the rest, so tune
    ``n_components``. CCA needs many more pairs than features (unregularised,
    it correlates noise perfectly once ``n <= d``).

    Parameters
    ----------
    n_components : int or float, default=0.25
        Number of directions (on a single one every L2-normalised row is
        ±1 and distinct items become one: use at least 2). A float in
        (0, 1]: that fraction of the most the pairs and widths allow,
        ``min(n_pairs - 1, d_q, d_g)`` (at least 2 where they allow it; a
        grid that suits any bank size); ``None``: all of them (slow: NIPALS
        runs once per component).
    algorithm : {"pls", "cca"}, default="pls"
        The wrapped estimator.
    scale : bool, default=False
        Standardise each centred feature first (the wrapped estimator's
        ``scale``).
    max_iter : int, default=500
        NIPALS iterations per component.
    {pair_params}

    Attributes
    ----------
    {attributes}
    n_iter_ : list of int
        NIPALS iterations of each component.

    See Also
    --------
    ProcrustesAlignment, RidgeAlignment : Other closed forms.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import CosineSimilarity, pair
    >>> from skxmr.alignment import PLSAlignment
    >>> rng = np.random.default_rng(0)
    >>> latent = rng.standard_normal((200, 8))
    >>> text = latent @ rng.standard_normal((8, 10)) + 0.1 * rng.standard_normal((200, 10))
    >>> image = latent @ rng.standard_normal((8, 12)) + 0.1 * rng.standard_normal((200, 12))
    >>> X = pair(text, image)
    >>> cca = PLSAlignment(n_components=8, algorithm="cca", n_query_features=10).fit(X[:150])
    >>> Xt = cca.transform(X[150:])
    >>> Xt.shape
    (50, 16)
    >>> CosineSimilarity().fit(Xt).score(Xt)     # held-out text->image R@1
    100.0
    """

    _parameter_constraints = {
        **PAIR_CONSTRAINTS,
        "n_components": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Real, 0, 1, closed="right"),
            None,
        ],
        "algorithm": [StrOptions({"pls", "cca"})],
        "scale": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, n_components=0.25, *, algorithm="pls", scale=False, max_iter=500,
                 n_query_features=None, direction="q2g"):
        self.n_components = n_components
        self.algorithm = algorithm
        self.scale = scale
        self.max_iter = max_iter
        self.n_query_features = n_query_features
        self.direction = direction

    def _fit_pairs(self, X, y):
        Q, G, _ = paired_halves(X, y, self.n_query_features)
        maps, self.n_iter_ = pls_maps(
            Q, G, n_components=self.n_components, algorithm=self.algorithm,
            scale=self.scale, max_iter=self.max_iter, return_n_iter=True,
        )
        self._set_maps(*maps)
        return self


@_doc
class RidgeAlignment(LinearAlignment):
    """Ridge map of one modality into the other's space.

    Predicts the centred, L2-normalised gallery half from the centred query
    half with :class:`sklearn.linear_model.Ridge` (``map_to="gallery"``), or
    the reverse (``"query"``); the target half is only centred. Queries and
    gallery then meet in the target half's space.

    Cost: one regularised least-squares solve, ``O(n d_s d_t + d_s³)`` (or
    ``n³`` in the dual when ``n < d_s``). A ridge map is not constrained to
    keep angles, so it wins when the encoders differ by more than a
    rotation (stretched, mixed directions) and there are enough pairs to
    estimate ``d_s × d_t`` coefficients; with few pairs it shrinks towards
    the target's mean and loses to Procrustes. Mapping the richer side onto
    the poorer one is usually better; tune ``alpha`` and ``map_to``.

    Parameters
    ----------
    alpha : float, default=1.0
        Ridge penalty (on rows of unit norm: values around 0.1--10).
    map_to : {"gallery", "query"}, default="gallery"
        The half whose space is shared (the other is regressed onto it).
    {pair_params}

    Attributes
    ----------
    {attributes}

    See Also
    --------
    ProcrustesAlignment, PLSAlignment : Other closed forms.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import CosineSimilarity, pair
    >>> from skxmr.alignment import RidgeAlignment
    >>> rng = np.random.default_rng(0)
    >>> text = rng.standard_normal((300, 6))
    >>> image = text @ rng.standard_normal((6, 9)) + 0.1 * rng.standard_normal((300, 9))
    >>> X = pair(text, image)
    >>> ridge = RidgeAlignment(alpha=0.1, n_query_features=6).fit(X[:250])
    >>> Xt = ridge.transform(X[250:])       # text mapped into the image space
    >>> Xt.shape
    (50, 18)
    >>> CosineSimilarity().fit(Xt).score(Xt) > 80
    True
    """

    _parameter_constraints = {
        **PAIR_CONSTRAINTS,
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "map_to": [StrOptions({"gallery", "query"})],
    }

    def __init__(self, alpha=1.0, *, map_to="gallery", n_query_features=None, direction="q2g"):
        self.alpha = alpha
        self.map_to = map_to
        self.n_query_features = n_query_features
        self.direction = direction

    def _fit_pairs(self, X, y):
        Q, G, _ = paired_halves(X, y, self.n_query_features)
        self._set_maps(*ridge_maps(Q, G, alpha=self.alpha, map_to=self.map_to))
        return self


def _pipeline(step):
    """The benchmark row: the alignment, then cosine. Its grid also holds the
    alignment skipped (``"passthrough"``, plain cosine): embeddings trained
    into one space (CLIP) lose 25-40 R@1 when a map fitted on a few hundred
    bank pairs re-aligns them, so tuning must be able to choose none."""
    def factory(direction="q2g"):
        from sklearn.pipeline import make_pipeline

        from ..similarity import CosineSimilarity

        return make_pipeline(step(), CosineSimilarity(direction=direction))

    return factory


register_method(
    "Procrustes",
    _pipeline(ProcrustesAlignment),
    family="alignment",
    description="centred orthogonal Procrustes of the query half onto the gallery half "
    "(bank pairs), then cosine",
    grid=[{"procrustesalignment__match_widths": ["pad", "pca"],
           "procrustesalignment__scale": [False, True]},
          {"procrustesalignment": ["passthrough"]}],
)
register_method(
    "PLS",
    _pipeline(PLSAlignment),
    family="alignment",
    description="PLSCanonical directions of the centred halves (bank pairs), then cosine",
    # Half the components (0.5) was never chosen on COCO, MSR-VTT or 1,000
    # synthetic pairs of width 512 (a quarter or plain cosine won; the tuned
    # rows were the same without it), and it costs more than the other
    # points together (one NIPALS run per component).
    grid=[{"plsalignment__n_components": [0.03, 0.1, 0.25]},
          {"plsalignment": ["passthrough"]}],
)
register_method(
    "Ridge map",
    _pipeline(RidgeAlignment),
    family="alignment",
    description="ridge regression of one centred half onto the other (bank pairs), "
    "then cosine",
    grid=[{"ridgealignment__alpha": [0.1, 1.0, 10.0],
           "ridgealignment__map_to": ["gallery", "query"]},
          {"ridgealignment": ["passthrough"]}],
)
