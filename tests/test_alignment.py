"""Cauchy-Schwarz alignment: losses, gradients, estimators, real data."""

import inspect
import pickle
import warnings

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline

from skxmr import CosineSimilarity, pair, registered_methods, unpair
from skxmr.utils._optim import project, project_grad
from skxmr.alignment import (
    CauchySchwarzAlignment,
    MultiModalCSAlignment,
    PLSAlignment,
    ProcrustesAlignment,
    RidgeAlignment,
    cauchy_schwarz_loss,
    cmpm_kl_loss,
    generalized_cauchy_schwarz_loss,
)
from skxmr.datasets import make_retrieval_problem
from skxmr.metrics import cs_divergence, gcs_divergence

from .conftest import make_pairs


def numeric_grad(f, A, h=1e-6):
    G = np.zeros_like(A)
    for idx in np.ndindex(A.shape):
        E = np.zeros_like(A)
        E[idx] = h
        G[idx] = (f(A + E) - f(A - E)) / (2 * h)
    return G


def random_relevance(rng, shape):
    """Several positives per row, every row and column covered, some weights."""
    R = (rng.random(shape) < 0.3).astype(float)
    n = min(shape)
    R[np.arange(n), np.arange(n)] = 1.0
    R[n:, 0] = 1.0
    R[0, n:] = 1.0
    return R * rng.uniform(0.5, 2.0, shape)


def r_at_1(X):
    return CosineSimilarity().fit(X).score(X)


# --------------------------------------------------------------------------
# Losses: gradients, values, stability
# --------------------------------------------------------------------------
@pytest.mark.parametrize("loss_fn", [cauchy_schwarz_loss, cmpm_kl_loss])
@pytest.mark.parametrize("shape", [(5, 5), (4, 6), (6, 3)])
def test_bimodal_loss_gradients(loss_fn, shape):
    rng = np.random.default_rng(sum(shape))
    L = 3 * rng.normal(size=shape)
    R = random_relevance(rng, shape)
    _, grad = loss_fn(L, R)
    np.testing.assert_allclose(grad, numeric_grad(lambda A: loss_fn(A, R)[0], L), atol=1e-7)


@pytest.mark.parametrize("M", [1, 2, 3, 4])
def test_gcs_loss_gradients(M):
    rng = np.random.default_rng(M)
    Ls = [3 * rng.normal(size=(5, 5)) for _ in range(M)]
    R = random_relevance(rng, (5, 5))
    _, grads = generalized_cauchy_schwarz_loss(Ls, R)
    for m in range(M):

        def f(A, m=m):
            return generalized_cauchy_schwarz_loss(Ls[:m] + [A] + Ls[m + 1 :], R)[0]

        np.testing.assert_allclose(grads[m], numeric_grad(f, Ls[m]), atol=1e-7)


def test_projection_gradient_end_to_end():
    """Chain rule through the L2-normalised projections of both modalities."""
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(6, 4)), rng.normal(size=(6, 5))
    W_a, W_b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    R, tau = np.eye(6), 0.2

    def loss(W_a, W_b):
        Z_a, _ = project(A, W_a)
        Z_b, _ = project(B, W_b)
        return cauchy_schwarz_loss(Z_a @ Z_b.T / tau, R)[0]

    Z_a, n_a = project(A, W_a)
    Z_b, n_b = project(B, W_b)
    _, G = cauchy_schwarz_loss(Z_a @ Z_b.T / tau, R)
    g_a = project_grad(A, Z_a, n_a, G @ Z_b / tau)
    g_b = project_grad(B, Z_b, n_b, G.T @ Z_a / tau)
    np.testing.assert_allclose(g_a, numeric_grad(lambda W: loss(W, W_b), W_a), atol=1e-7)
    np.testing.assert_allclose(g_b, numeric_grad(lambda W: loss(W_a, W), W_b), atol=1e-7)


def test_losses_match_the_divergences():
    rng = np.random.default_rng(1)
    L = rng.normal(size=(4, 5))
    R = random_relevance(rng, (4, 5))
    expected = cs_divergence(softmax(L, axis=1), R).mean() + cs_divergence(
        softmax(L.T, axis=1), R.T
    ).mean()
    assert cauchy_schwarz_loss(L, R)[0] == pytest.approx(expected)
    # GCS with one circular pair is the CS loss, value and gradient.
    v1, g1 = cauchy_schwarz_loss(L[:4, :4], R[:4, :4])
    v2, (g2,) = generalized_cauchy_schwarz_loss([L[:4, :4]], R[:4, :4])
    assert v1 == pytest.approx(v2)
    np.testing.assert_allclose(g1, g2)
    # Three views: forward rows are GCS(p_01, p_12, p_20, q) with 4-norms.
    Ls = [rng.normal(size=(4, 4)) for _ in range(3)]
    Rs = R[:4, :4]
    fwd = gcs_divergence(*[softmax(X, axis=1) for X in Ls], Rs)
    bwd = gcs_divergence(*[softmax(X.T, axis=1) for X in Ls], Rs.T)
    assert generalized_cauchy_schwarz_loss(Ls, Rs)[0] == pytest.approx(fwd.mean() + bwd.mean())
    # CMPM: the paper's KL with q = y / sum(y) and epsilon in the log.
    P = softmax(L, axis=1)
    kl = np.sum(P * (np.log(P) - np.log(R / R.sum(1, keepdims=True) + 1e-8)), axis=1)
    Pt = softmax(L.T, axis=1)
    kl_t = np.sum(Pt * (np.log(Pt) - np.log(R.T / R.T.sum(1, keepdims=True) + 1e-8)), axis=1)
    assert cmpm_kl_loss(L, R)[0] == pytest.approx(kl.mean() + kl_t.mean())


def test_cs_loss_nonnegative_and_zero_at_the_target():
    rng = np.random.default_rng(2)
    for _ in range(20):
        L = 5 * rng.normal(size=(6, 6))
        assert cauchy_schwarz_loss(L, random_relevance(rng, (6, 6)))[0] >= 0
    # Logits that reproduce the target distribution exactly: log q (finite).
    R = np.eye(4) + 1.0  # positive everywhere, diagonal heavier
    loss, grad = cauchy_schwarz_loss(np.log(R), R)
    assert loss == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)


def test_saturated_softmax_and_empty_overlap_stay_finite():
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(30, 8))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    perm = rng.permutation(30)
    logits = Z @ Z[perm].T / 0.01  # temperature 0.01, pairs scrambled
    R = np.eye(30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for loss_fn in (cauchy_schwarz_loss, cmpm_kl_loss):
            loss, grad = loss_fn(logits, R)
            assert np.isfinite(loss) and np.all(np.isfinite(grad))
        loss, grads = generalized_cauchy_schwarz_loss([logits, logits.T, logits], R)
        assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads)
    # At temperature 0.001 the linear-domain formula breaks: <p, q> underflows
    # to 0 and -log <p, q> is inf; the log-domain loss stays finite.
    with np.errstate(under="ignore"):
        p = softmax(logits * 10, axis=1)
    assert np.any(np.sum(p * R, axis=1) == 0.0)
    loss, grad = cauchy_schwarz_loss(logits * 10, R)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    # Empty overlap: all predicted mass off the target's support.
    L = -300.0 * np.eye(3)
    loss, grad = cauchy_schwarz_loss(L, np.eye(3))
    # -log p_ii + log ||p_i|| per row and direction, with log p_ii ~ -300.
    assert loss == pytest.approx(2 * (300 + np.log(2) - 0.5 * np.log(2)), rel=1e-9)
    # CS keeps a unit-size gradient; KL's vanishes: its loss sits on the
    # epsilon plateau, sum_j p_j log(p_j / eps) = log(0.5 / eps) per row.
    assert np.abs(grad).max() == pytest.approx(1 / 3 + 1 / 3)
    kl, kl_grad = cmpm_kl_loss(L, np.eye(3))
    assert kl == pytest.approx(2 * np.log(0.5 / 1e-8), rel=1e-9)
    assert np.abs(kl_grad).max() < 1e-100


@pytest.mark.parametrize("loss_fn", [cauchy_schwarz_loss, cmpm_kl_loss])
def test_loss_bad_input(loss_fn):
    L = np.zeros((3, 3))
    with pytest.raises(ValueError, match="no relevant item"):
        loss_fn(L, np.diag([1.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        loss_fn(L, np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        loss_fn(np.full((3, 3), np.nan), np.eye(3))
    with pytest.raises(ValueError, match="non-negative"):
        loss_fn(L, -np.eye(3))
    with pytest.raises(TypeError, match="sequence"):
        generalized_cauchy_schwarz_loss(L, np.eye(3))
    with pytest.raises(ValueError, match="square"):
        generalized_cauchy_schwarz_loss([L, np.zeros((3, 2))], np.eye(3))


# --------------------------------------------------------------------------
# CauchySchwarzAlignment
# --------------------------------------------------------------------------
def linear_views(n=200, d_q=6, d_g=9, noise=0.1, seed=0):
    """Text and image halves of different widths, related by a linear map."""
    rng = np.random.default_rng(seed)
    text = rng.standard_normal((n, d_q))
    image = text @ rng.standard_normal((d_q, d_g)) + noise * rng.standard_normal((n, d_g))
    return text, image


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
@pytest.mark.parametrize("loss", ["cs", "cmpm"])
def test_learns_a_linear_misalignment(solver, loss):
    text, image = linear_views()
    X = pair(text, image)
    assert r_at_1(pair(text[150:], image[150:, :6])) < 20  # unaligned raw halves
    est = CauchySchwarzAlignment(
        n_components=6, n_query_features=6, solver=solver, loss=loss,
        max_iter=200, batch_size=64, random_state=0,
    ).fit(X[:150])
    Xt = est.transform(X[150:])
    assert Xt.shape == (50, 12)
    np.testing.assert_allclose(np.linalg.norm(Xt[:, :6], axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(Xt[:, 6:], axis=1), 1.0)
    assert r_at_1(Xt) >= 80
    assert est.solver_ == solver and est.init_ == "procrustes"
    assert est.query_projection_.shape == (6, 6) and est.gallery_projection_.shape == (9, 6)
    assert len(est.loss_curve_) == est.n_iter_ and est.loss_curve_[-1] < est.loss_curve_[0]
    assert len(est.validation_scores_) == est.n_iter_ + 1
    assert 0 <= est.best_iteration_ <= est.n_iter_


def test_pipeline_dtype_pickle_and_determinism():
    X_bank, X_test = make_pairs(60, seed=1), make_pairs(30, seed=2)
    pipe = make_pipeline(
        CauchySchwarzAlignment(n_components=8, random_state=0), CosineSimilarity()
    ).fit(X_bank)
    S = pipe.decision_function(X_test)
    assert S.shape == (30, 30)
    est = CauchySchwarzAlignment(n_components=8, random_state=0).fit(X_bank.astype(np.float32))
    X32 = est.transform(X_test.astype(np.float32))
    assert X32.dtype == np.float32
    assert pipe[0].init_ == "pca"  # equal widths: start from the shared cosine
    np.testing.assert_allclose(X32, pipe[0].transform(X_test), atol=1e-4)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(X_test), est.transform(X_test))
    twin = clone(est).fit(X_bank.astype(np.float32))
    np.testing.assert_array_equal(twin.query_projection_, est.query_projection_)


def test_duplicate_items_are_one_item():
    """An image with several captions is one gallery item (several positives)."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((40, 6))
    owner = np.repeat(np.arange(40), 2)  # two captions per image
    captions = images[owner] @ rng.standard_normal((6, 6)) + 0.2 * rng.standard_normal((80, 6))
    X = pair(captions, images[owner])
    for solver in ("lbfgs", "adam"):
        est = CauchySchwarzAlignment(n_components=6, solver=solver,
                                     batch_size=32, random_state=0).fit(X)
        Xt = est.transform(X)
        np.testing.assert_allclose(Xt[0::2, 6:], Xt[1::2, 6:])  # same image, same z
        assert r_at_1(Xt) > 80


def test_labels_give_several_positives():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 5))
    y = np.repeat(np.arange(4), 30)
    text = centers[y] + 0.3 * rng.standard_normal((120, 5))
    image = (centers[y] + 0.3 * rng.standard_normal((120, 5))) @ rng.standard_normal((5, 5))
    X = pair(text, image)
    est = CauchySchwarzAlignment(n_components=5, init="random", random_state=0).fit(X, y)
    Xt = est.transform(X)
    S = CosineSimilarity().fit(Xt).decision_function(Xt)
    # Category-level retrieval: the top item of each query shares its class.
    assert np.mean(y[S.argmax(axis=1)] == y) > 0.9


def test_early_stopping_keeps_the_initial_alignment_when_training_hurts():
    # Pure noise pairs: training can only memorise, so the held-out loss never
    # beats the start by much and the PCA start is (nearly) kept.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 20))
    est = CauchySchwarzAlignment(n_components=10, random_state=0, tol=None).fit(X)
    assert est.best_iteration_ < est.n_iter_
    assert min(est.validation_scores_) == est.validation_scores_[est.best_iteration_]
    free = CauchySchwarzAlignment(n_components=10, random_state=0, early_stopping=False,
                                  tol=None, max_iter=30).fit(X)
    assert free.n_iter_ == 30 and free.best_iteration_ is None


def test_convergence_warning_only_with_tol():
    X = make_pairs(40)
    kwargs = {"n_components": 4, "max_iter": 2, "early_stopping": False, "random_state": 0}
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        CauchySchwarzAlignment(**kwargs).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = CauchySchwarzAlignment(tol=None, **kwargs).fit(X)
    assert est.n_iter_ == 2
    with pytest.warns(ConvergenceWarning):
        CauchySchwarzAlignment(**{**kwargs, "solver": "adam", "tol": 1e-12}).fit(X)


def test_divergence_is_an_error_not_a_nan_projection():
    est = CauchySchwarzAlignment(
        n_components=4, solver="adam", learning_rate=1e300, max_iter=5, random_state=0
    )
    with pytest.raises(ValueError, match="diverged"):
        est.fit(make_pairs(40))
    assert not hasattr(est, "query_projection_")


def test_low_temperature_trains_without_warnings():
    text, image = linear_views(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = CauchySchwarzAlignment(
            n_components=6, n_query_features=6, temperature=0.01, tol=None,
            max_iter=30, random_state=0,
        ).fit(pair(text, image))
    assert all(np.isfinite(est.loss_curve_))
    assert np.all(np.isfinite(est.query_projection_))


@pytest.mark.parametrize(
    "params, X_fn, y, match",
    [
        ({"temperature": 0.0}, None, None, "temperature"),
        ({"temperature": -1.0}, None, None, "temperature"),
        ({"temperature": np.inf}, None, None, "temperature"),
        ({"n_components": 0}, None, None, "n_components"),
        ({"init": "pca", "n_query_features": 6}, None, None, "init='pca'"),
        ({}, lambda X: X[[0, 0]], None, "at least 2"),
        ({}, lambda X: X, np.zeros(40), "y holds a single class"),
        ({}, lambda X: np.where(np.arange(16) == 3, np.nan, X), None, "X"),
        ({"early_stopping": True}, lambda X: X[:3], None, "early_stopping"),
        ({}, lambda X: np.where((np.arange(40) == 5)[:, None] & (np.arange(16) >= 8), 0.0, X),
         None, "zero-norm"),
    ],
)
def test_bad_input(params, X_fn, y, match):
    X = make_pairs(40)
    if X_fn is not None:
        X = X_fn(X)
    with pytest.raises(ValueError, match=match):
        CauchySchwarzAlignment(**{"n_components": 4, **params}).fit(X, y)


def test_benchmark_row_is_registered():
    entry = registered_methods()["CS alignment"]
    assert entry["family"] == "alignment"
    est = entry["factory"](direction="g2q")
    X_bank, X_test = make_pairs(60, seed=1), make_pairs(30, seed=2)
    S = est.fit(X_bank).decision_function(X_test)
    assert S.shape == (30, 30) and est[-1].direction == "g2q"


# --------------------------------------------------------------------------
# Real data: recover a rotated modality (COCO val2017, CLIP ViT-B/16)
# --------------------------------------------------------------------------
def test_recovers_rotated_coco_embeddings():
    """CS alignment undoes a random rotation of the image side.

    250 bank pairs cannot identify a rotation of the full 512-d space (even
    orthogonal Procrustes fitted on the *true* rotated/unrotated images only
    reaches ~40 % R@1 against 61 % unrotated), so both modalities are first
    reduced to the 48 leading principal components of the bank, where 250
    pairs suffice. In that space the image side is rotated and noised.
    """
    from scipy.stats import ortho_group
    from sklearn.linear_model import Ridge

    from skxmr.datasets import bank_test_split, load_coco_clip

    data = load_coco_clip()
    X_bank, X_test, _, _ = bank_test_split(data.X, data.groups, random_state=0)
    (Qb, Gb), (Qt, Gt) = unpair(X_bank), unpair(X_test)
    pooled = np.vstack([Qb, Gb]).astype(np.float64)
    basis = np.linalg.svd(pooled - pooled.mean(0), full_matrices=False)[2][:48].T

    def reduce(A):
        A = A @ basis
        return A / np.linalg.norm(A, axis=1, keepdims=True)

    Qb, Gb, Qt, Gt = map(reduce, (Qb, Gb, Qt, Gt))
    rng = np.random.default_rng(0)
    rotation = ortho_group.rvs(48, random_state=0)

    def misalign(G):
        return G @ rotation + 0.1 / np.sqrt(48) * rng.standard_normal(G.shape)

    Gb_rot, Gt_rot = misalign(Gb), misalign(Gt)
    unrotated = r_at_1(pair(Qt, Gt))
    assert r_at_1(pair(Qt, Gt_rot)) < 5
    ridge = max(
        r_at_1(pair(Ridge(alpha=a).fit(Qb, Gb_rot).predict(Qt), Gt_rot))
        for a in (0.01, 0.1, 1.0, 10.0)
    )
    est = CauchySchwarzAlignment(n_components=48, temperature=0.3, random_state=0)
    aligned = r_at_1(est.fit(pair(Qb, Gb_rot)).transform(pair(Qt, Gt_rot)))
    assert aligned >= unrotated - 5
    assert aligned >= ridge + 4


# --------------------------------------------------------------------------
# MultiModalCSAlignment
# --------------------------------------------------------------------------
def latent_views(n=200, widths=(6, 7, 8), noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 5))
    return [
        latent @ rng.standard_normal((5, d)) + noise * rng.standard_normal((n, d))
        for d in widths
    ]


@pytest.mark.parametrize("loss", ["gcs", "pairwise_cs"])
def test_multimodal_aligns_every_pair_of_views(loss):
    X = np.hstack(latent_views())
    mm = MultiModalCSAlignment(n_components=5, loss=loss, view_features=(6, 7, 8), random_state=0)
    Zs = mm.fit(X[:150]).transform_views(X[150:])
    assert mm.n_views_ == 3 and mm.init_ == "procrustes" and mm.view_features_ == (6, 7, 8)
    assert [P.shape for P in mm.projections_] == [(6, 5), (7, 5), (8, 5)]
    for a in range(3):
        for b in range(3):
            if a != b:  # non-adjacent pairs too: the circle closes
                hits = (Zs[a] @ Zs[b].T).argmax(axis=1) == np.arange(50)
                assert hits.mean() > 0.8
    np.testing.assert_allclose(mm.transform_view(X[150:, 6:13], 1), Zs[1])
    # transform: the paired rows [Z_q | Z_g] of output_views (default (0, 1)).
    np.testing.assert_array_equal(mm.transform(X[150:]), np.hstack([Zs[0], Zs[1]]))
    mm.set_params(output_views=(2, 0))
    np.testing.assert_array_equal(mm.transform(X[150:]), np.hstack([Zs[2], Zs[0]]))


def test_multimodal_labels_dtype_and_determinism():
    X = np.hstack(latent_views(n=90, widths=(4, 4, 4, 4))).astype(np.float32)
    y = np.arange(90) % 3
    mm = MultiModalCSAlignment(
        n_components=3, view_features=4, random_state=0, max_iter=20, tol=None
    ).fit(X, y)
    assert mm.init_ == "procrustes" and mm.view_features_ == (4, 4, 4, 4)
    Zs = mm.transform_views(X)
    assert all(Z.dtype == np.float32 and Z.shape == (90, 3) for Z in Zs)
    assert mm.transform(X).dtype == np.float32 and mm.transform(X).shape == (90, 6)
    twin = clone(mm).fit(X, y)
    for P, Q in zip(mm.projections_, twin.projections_):
        np.testing.assert_array_equal(P, Q)


def test_multimodal_in_a_pipeline_with_grid_search():
    """Chains with a score estimator and tunes with the retrieval scorer."""
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline

    from skxmr import CosineSimilarity
    from skxmr.metrics import make_retrieval_scorer

    X = np.hstack(latent_views(n=120, widths=(6, 7, 8)))
    pipe = make_pipeline(
        MultiModalCSAlignment(n_components=5, view_features=(6, 7, 8), output_views=(1, 2),
                              random_state=0, max_iter=30),
        CosineSimilarity(),
    )
    grid = GridSearchCV(
        pipe, {"multimodalcsalignment__temperature": [0.1, 1.0]},
        scoring=make_retrieval_scorer("recall", k=1), cv=KFold(2),
    ).fit(X)
    assert grid.best_score_ > 50
    assert pipe.fit(X).score(X) > 80


@pytest.mark.parametrize(
    "X_fn, kwargs, exc, match",
    [
        (lambda X: X[:, :7], {"view_features": (6, 7, 8)}, ValueError, "adds up to 21"),
        (lambda X: X, {"view_features": 4}, ValueError, "view_features=4 cannot"),
        (lambda X: X, {"view_features": (21,)}, ValueError, "at least 2 positive"),
        (lambda X: X, {"view_features": (6.5, 14.5)}, ValueError, "positive int"),
        (lambda X: X, {"view_features": 1}, ValueError, "view_features"),
        (lambda X: X, {"output_views": (0, 3)}, ValueError, r"output_views.*\[0, 2\]"),
        (lambda X: X, {"output_views": (1, 1)}, ValueError, "two different"),
        (lambda X: X, {"output_views": (True, 1)}, ValueError, "output_views"),
        (lambda X: np.where(X > 1, np.inf, X), {}, ValueError, "X"),
        (lambda X: X[:1], {}, ValueError, "minimum of 2"),
        (lambda X: X, {"temperature": 0}, ValueError, "temperature"),
        (lambda X: X, {"temperature": True}, ValueError, "temperature"),
        (lambda X: X, {"y": np.ones(40)}, ValueError, "single class"),
        (lambda X: X, {"y": np.array([None, "a"] * 20, dtype=object)}, ValueError,
         "y has 20 missing"),
    ],
)
def test_multimodal_bad_input(X_fn, kwargs, exc, match):
    X = np.hstack(latent_views(n=40))
    y = kwargs.pop("y", None)
    kwargs.setdefault("view_features", (6, 7, 8))
    with pytest.raises(exc, match=match):
        MultiModalCSAlignment(n_components=3, **kwargs).fit(X_fn(X), y)


def test_multimodal_transform_checks():
    X = np.hstack(latent_views(n=40))
    mm = MultiModalCSAlignment(
        n_components=3, view_features=(6, 7, 8), random_state=0, max_iter=5, tol=None
    ).fit(X)
    with pytest.raises(ValueError, match="m=3"):
        mm.transform_view(X[:, :6], 3)
    with pytest.raises(ValueError, match="A has 6 features but view 1 had 7"):
        mm.transform_view(X[:, :6], 1)
    with pytest.raises(ValueError, match="X has 13 features"):
        mm.transform_views(X[:, :13])
    with pytest.raises(ValueError, match="X has 13 features"):
        mm.transform(X[:, :13])


def test_alignments_share_one_base():
    """The 15 common parameters, their constraints and docs come from one place."""
    from skxmr.alignment._cs import _CSAlignmentBase

    common = set(inspect.signature(_CSAlignmentBase.__init__).parameters) - {"self"}
    assert len(common) == 15
    for cls in (CauchySchwarzAlignment, MultiModalCSAlignment):
        assert issubclass(cls, _CSAlignmentBase)
        assert common <= set(cls().get_params())
        for name in common - {"loss"}:
            assert cls._parameter_constraints[name] is _CSAlignmentBase._parameter_constraints[name]
        assert "validation_fraction : float, default=0.1" in cls.__doc__


def test_alignment_feature_names_and_pandas_output():
    pd = pytest.importorskip("pandas")
    X = np.hstack(latent_views(n=60, widths=(4, 4, 4)))
    mm = MultiModalCSAlignment(n_components=2, view_features=3, random_state=0, max_iter=5,
                               tol=None)
    out = mm.set_output(transform="pandas").fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [
        "multimodalcsalignment_query0", "multimodalcsalignment_query1",
        "multimodalcsalignment_gallery0", "multimodalcsalignment_gallery1",
    ]
    cs = CauchySchwarzAlignment(n_components=2, random_state=0, max_iter=5, tol=None)
    names = cs.fit(X[:, :8]).get_feature_names_out()
    assert names.tolist() == [
        "cauchyschwarzalignment_query0", "cauchyschwarzalignment_query1",
        "cauchyschwarzalignment_gallery0", "cauchyschwarzalignment_gallery1",
    ]


@pytest.mark.parametrize(
    "loss", [cauchy_schwarz_loss, cmpm_kl_loss, lambda L, R: generalized_cauchy_schwarz_loss([L], R)]
)
def test_losses_refuse_complex_input(loss):
    L = np.eye(3) + 1j * np.ones((3, 3))
    with pytest.raises(TypeError, match="real"):
        loss(L, np.eye(3, dtype=bool))
    with pytest.raises(TypeError, match="relevance must hold real"):
        loss(np.eye(3), np.eye(3) + 1j)


def test_cs_loss_is_exact_where_the_reference_clamp_binds():
    """The authors' code clamps at 1e-8 before the log (cap ~18.4 per term);
    skxmr is exact: logits 40 apart cost 40 per row and direction."""
    for gap in (4.0, 40.0, 400.0):
        value, grad = cauchy_schwarz_loss(np.array([[0.0, gap], [gap, 0.0]]), np.eye(2, dtype=bool))
        a = np.exp(-np.logaddexp(0.0, gap))  # softmax mass on the positive
        per_row = np.logaddexp(0.0, gap) + 0.5 * np.log(a**2 + (1 - a) ** 2)
        assert value == pytest.approx(2 * per_row, rel=1e-12)
        assert value > 2 * np.log(1e8) or gap < 20
        assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0.1  # no vanishing


# --------------------------------------------------------------------------
# Closed-form baselines and the start of CS training
# --------------------------------------------------------------------------
def rotated_views(n=200, d_q=6, d_g=9, noise=0.05, seed=0):
    """Text of width d_q; images: the text zero-padded to d_g, rotated, noised."""
    rng = np.random.default_rng(seed)
    text = rng.standard_normal((n, d_q)) + 0.5  # off-centre, as real embeddings
    rotation = np.linalg.qr(rng.standard_normal((d_g, d_g)))[0]
    image = np.pad(text, ((0, 0), (0, d_g - d_q))) @ rotation
    return text, image + noise * rng.standard_normal(image.shape)


def test_procrustes_is_scipys_rotation_of_the_centred_halves():
    from scipy.linalg import orthogonal_procrustes

    text, image = rotated_views(d_g=6)
    X = pair(text, image)
    est = ProcrustesAlignment().fit(X)
    Q = text / np.linalg.norm(text, axis=1, keepdims=True)
    G = image / np.linalg.norm(image, axis=1, keepdims=True)
    R, _ = orthogonal_procrustes(Q - Q.mean(0), G - G.mean(0))
    np.testing.assert_allclose(est.query_projection_, R, atol=1e-10)
    np.testing.assert_allclose(est.query_mean_, Q.mean(0))
    np.testing.assert_array_equal(est.gallery_projection_, np.eye(6))


@pytest.mark.parametrize("est", [
    ProcrustesAlignment(), ProcrustesAlignment(match_widths="pca", scale=True),
    PLSAlignment(n_components=6, algorithm="cca"), RidgeAlignment(alpha=0.01),
    RidgeAlignment(alpha=0.01, map_to="query"),
])
def test_closed_forms_join_two_widths(est):
    text, image = rotated_views()
    X = pair(text, image).astype(np.float32)
    assert r_at_1(pair(text[150:], image[150:, :6])) < 30  # raw halves do not match
    est = clone(est).set_params(n_query_features=6).fit(X[:150])
    Xt = est.transform(X[150:])
    k = est.n_components_
    assert Xt.dtype == np.float32 and Xt.shape == (50, 2 * k)
    assert r_at_1(Xt) >= 90 and CosineSimilarity(direction="g2q").fit(Xt).score(Xt) >= 90
    # Serving maps each half alone as transform does; the fit is symmetric.
    np.testing.assert_allclose(est._transform_half(X[150:, :6], "left"), Xt[:, :k], rtol=1e-5)
    np.testing.assert_allclose(est._transform_half(X[150:, 6:], "right"), Xt[:, k:], rtol=1e-5)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(est)).transform(X[150:]), Xt
    )
    assert len(est.get_feature_names_out()) == 2 * k


def test_closed_form_widths_and_components():
    text, image = rotated_views()
    X = pair(text, image)
    assert ProcrustesAlignment(n_query_features=6).fit(X).n_components_ == 9  # padded
    assert ProcrustesAlignment(match_widths="pca", n_query_features=6).fit(X).n_components_ == 6
    assert ProcrustesAlignment(3, n_query_features=6).fit(X).n_components_ == 3
    assert RidgeAlignment(map_to="query", n_query_features=6).fit(X).n_components_ == 6
    assert PLSAlignment(0.5, n_query_features=6).fit(X).n_components_ == 3
    with pytest.raises(ValueError, match="n_components=7 exceeds the 6"):
        PLSAlignment(7, n_query_features=6).fit(X)
    # One direction would make every L2-normalised row +-1 (items merge):
    # a fraction gives at least 2.
    assert PLSAlignment(0.01, n_query_features=6).fit(X).n_components_ == 2


def test_closed_form_rows_are_registered():
    methods = registered_methods()
    X_bank, X_test = make_pairs(60, seed=1), make_pairs(30, seed=2)
    for name in ("Procrustes", "PLS", "Ridge map"):
        assert methods[name]["family"] == "alignment" and methods[name]["grid"]
        est = methods[name]["factory"](direction="g2q")
        assert est.fit(X_bank).decision_function(X_test).shape == (30, 30)
    grid = methods["CS alignment"]["grid"]
    temperatures = grid[0]["cauchyschwarzalignment__temperature"]
    assert min(temperatures) < 0.1 < max(temperatures) and 0.1 in temperatures  # the default
    assert max(grid[0]["cauchyschwarzalignment__alpha"]) > 0
    assert len(grid[1]["cauchyschwarzalignment__n_components"]) > 1


@pytest.mark.parametrize("init", ["procrustes", "ridge", PLSAlignment(1.0),
                                  ProcrustesAlignment(match_widths="pca")])
def test_cs_starts_from_the_closed_form_and_never_ends_behind_it(init):
    text, image = rotated_views(noise=0.3)
    X = pair(text, image)
    est = CauchySchwarzAlignment(n_components=None, init=init, n_query_features=6,
                                 random_state=0).fit(X[:150])
    assert est.init_ == (init if isinstance(init, str) else "estimator")
    # Held-out loss of the start first; the kept projections are the best seen.
    assert est.validation_scores_[est.best_iteration_] == min(est.validation_scores_)
    assert min(est.validation_scores_) <= est.validation_scores_[0]
    assert r_at_1(est.transform(X[150:])) >= 80


def test_regularisation_toward_the_start_keeps_the_start():
    text, image = rotated_views(noise=0.3)
    X = pair(text, image)
    kwargs = dict(n_components=None, n_query_features=6, early_stopping=False, max_iter=20,
                  tol=None, random_state=0)
    held = CauchySchwarzAlignment(alpha=1e6, **kwargs).fit(X)
    start = ProcrustesAlignment(n_query_features=6).fit(X)
    np.testing.assert_allclose(held.query_projection_, start.query_projection_, atol=1e-5)
    np.testing.assert_allclose(held.query_mean_, start.query_mean_)
    free = CauchySchwarzAlignment(**kwargs).fit(X)
    assert np.abs(free.query_projection_ - start.query_projection_).max() > 1e-2
    assert held.loss_curve_[-1] > free.loss_curve_[-1]


def test_aligned_inputs_fall_back_to_the_identity():
    """Embeddings already in one space: alignment first is cosine, not worse."""
    from skxmr.datasets import bank_test_split, load_coco_clip

    coco = load_coco_clip()
    X_bank, X_test, _, _ = bank_test_split(coco.X, coco.groups, random_state=0)
    est = CauchySchwarzAlignment(random_state=0).fit(X_bank)
    assert est.selected_ == "identity" and est.n_components_ == 512
    Q, G = unpair(X_test)
    np.testing.assert_allclose(
        est.transform(X_test), pair(*(A / np.linalg.norm(A, axis=1, keepdims=True)
                                     for A in (Q, G))), rtol=1e-5)
    for direction in ("q2g", "g2q"):
        cosine = CosineSimilarity(direction=direction).fit(X_bank).score(X_test)
        aligned = make_pipeline(clone(est), CosineSimilarity(direction=direction))
        assert aligned.fit(X_bank).score(X_test) >= cosine
    # Without the fallback the projections are kept (and lose here).
    free = CauchySchwarzAlignment(fallback=None, random_state=0).fit(X_bank)
    assert free.selected_ != "identity"


def test_init_needs_two_views_unless_procrustes():
    X = np.hstack(latent_views(n=60))
    with pytest.raises(ValueError, match="init='pls' maps two views"):
        MultiModalCSAlignment(n_components=3, init="pls", view_features=(6, 7, 8)).fit(X)
    mm = MultiModalCSAlignment(n_components=None, view_features=(6, 7, 8), max_iter=2,
                               tol=None, random_state=0).fit(X)
    assert mm.init_ == "procrustes" and mm.n_components_ == 8


def test_kept_start_is_the_closed_form_refitted_on_all_items():
    """The held-out items only choose; the kept start is fitted on every item."""
    b = make_retrieval_problem(300, 32, n_query_features=24, distortion=0.5, random_state=0)
    est = CauchySchwarzAlignment(n_components=None, n_query_features=24, temperature=0.5,
                                 random_state=0).fit(b.X)
    assert est.selected_ == "start"
    start = ProcrustesAlignment(n_query_features=24).fit(b.X)
    np.testing.assert_allclose(est.query_projection_, start.query_projection_, atol=1e-12)
    np.testing.assert_allclose(est.gallery_mean_, start.gallery_mean_)
