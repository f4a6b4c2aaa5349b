"""Checks of the retrieval family's invariants, for skxmr's estimators and yours.

scikit-learn's ``check_estimator`` checks the estimator API. The retrieval
family adds invariants that every :class:`~skxmr.RetrievalEstimator` and
:class:`~skxmr.PairedTransformer` keeps: fit leaves its input and parameters
alone; non-finite input, a bad split of the halves and an unfitted call
fail clearly; the estimator pickles at any point (before fit, after fit,
after a query, its index too); float32 in gives float32 out and agrees with
float64; permuting the test pairs permutes the scores; chunked and parallel
scoring equals one pass; an index scores as
:meth:`score_matrix`; ``strength=0`` is cosine and other strengths
interpolate linearly; a method's two-view function equals the estimator.

:func:`yield_family_checks` yields them for one estimator,
:func:`check_estimator` runs them (and scikit-learn's) and
:func:`parametrize_with_checks` makes them pytest cases, as
scikit-learn's function of that name does (and imbalanced-learn's for its
samplers). A method registered with :func:`skxmr.register_method` is
checked by passing an instance of it; see "Adding a method" in the design
notes of the documentation.
"""

import pickle
from functools import partial
from inspect import signature

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from .._base import PairedTransformer, RetrievalEstimator
from .._pairs import UNPAIRED_MESSAGE
from ._compat import sklearn_estimator_checks

__all__ = [
    "PAIRED_ROWS_XFAIL",
    "check_estimator",
    "parametrize_with_checks",
    "yield_family_checks",
]

_ODD = (
    "scikit-learn's check data has an odd number of columns, so paired rows have "
    "no query/gallery split (nor two equal views) and fit raises ValueError; "
    "checked on paired data by the family checks"
)
_NOT_PER_ROW = (
    "decision_function returns the (unique queries x unique gallery) score "
    "matrix of the pairs in X, not one value per row"
)
#: The checks of scikit-learn that every estimator on paired rows fails, and
#: why: ``{check name: reason}`` (the default expected failures of
#: :func:`parametrize_with_checks` and :func:`check_estimator`).
PAIRED_ROWS_XFAIL = {
    "check_fit_score_takes_y": _ODD,
    "check_dont_overwrite_parameters": _ODD,
    "check_estimators_dtypes": _ODD,
    "check_pipeline_consistency": _ODD,
    "check_estimators_nan_inf": _ODD,
    "check_estimators_pickle": _ODD,
    "check_estimators_pickle(readonly_memmap=True)": _ODD,
    "check_f_contiguous_array_estimator": _ODD,
    "check_dict_unchanged": _ODD,
    "check_fit2d_predict1d": _ODD,
    "check_methods_sample_order_invariance": _NOT_PER_ROW,
    "check_methods_subset_invariance": _NOT_PER_ROW,
}

#: Parameters of an estimator that its two-view function does not take.
_ESTIMATOR_ONLY = ("n_query_features", "direction")


def _make_pairs(n=40, d=8, noise=0.3, seed=0, dtype=np.float64):
    """Small paired rows: gallery = query + noise, both L2-normalised."""
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((n, d))
    G = Q + noise * rng.standard_normal((n, d))
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    return np.hstack([Q, G]).astype(dtype)


def _bank_and_test(dtype=np.float64):
    return _make_pairs(40, seed=1, dtype=dtype), _make_pairs(25, seed=2, dtype=dtype)


def _unit(A):
    A = np.asarray(A, dtype=np.float64)
    return A / np.linalg.norm(A, axis=-1, keepdims=True)


def _split_name(estimator):
    return "n_query_features" if "n_query_features" in estimator.get_params() else "view_features"


def _raises(exc, match, func, *args):
    import re

    try:
        func(*args)
    except exc as error:
        assert re.search(match, str(error)), f"{type(error).__name__} {error!s} lacks {match!r}"
        return
    raise AssertionError(f"{func} did not raise {exc.__name__} ({match!r})")


# ---------------------------------------------------------------- both kinds
def check_fit_does_not_modify_input_or_params(name, estimator):
    """fit leaves ``X`` and ``get_params()`` as they were; sets ``n_features_in_``."""
    X = _make_pairs()
    X_copy = X.copy()
    params = clone(estimator).get_params()
    est = clone(estimator).fit(X)
    np.testing.assert_array_equal(X, X_copy)
    assert est.get_params() == params
    assert est.n_features_in_ == X.shape[1]


def check_non_finite_input_names_x(name, estimator):
    """NaN or infinity in ``X`` raises a ValueError that names ``X``."""
    for bad in (np.nan, np.inf):
        X = _make_pairs()
        X[3, 2] = bad
        _raises(ValueError, "X", clone(estimator).fit, X)


def check_odd_columns_and_bad_split(name, estimator):
    """Halves that cannot split, or a split at the wrong column, raise a
    ValueError naming the split parameter."""
    X = _make_pairs()
    split = _split_name(estimator)
    _raises(ValueError, split, clone(estimator).fit, X[:, :-1])
    bad = X.shape[1] if split == "n_query_features" else (X.shape[1],)
    _raises(ValueError, split, clone(estimator).set_params(**{split: bad}).fit, X)


def check_unfitted_raises(name, estimator):
    """Scoring or transforming before fit raises NotFittedError."""
    method = "decision_function" if isinstance(estimator, RetrievalEstimator) else "transform"
    _raises(NotFittedError, "", getattr(clone(estimator), method), _make_pairs())


def _output(est, X):
    if isinstance(est, RetrievalEstimator):
        return est.decision_function(X)
    return est.transform(X)


def check_pickle_at_any_point(name, estimator):
    """The estimator pickles unfitted, fitted and after a query; its index too."""
    import warnings

    X_bank, X_test = _bank_and_test()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = pickle.loads(pickle.dumps(clone(estimator))).fit(X_bank)
    out = _output(est, X_test)
    np.testing.assert_allclose(_output(pickle.loads(pickle.dumps(est)), X_test), out, rtol=1e-6)
    again = pickle.loads(pickle.dumps(est))  # after the query above
    np.testing.assert_allclose(_output(again, X_test), out, rtol=1e-6)
    if isinstance(est, RetrievalEstimator) and not est._transductive:
        Q, G = X_test[:, :8], X_test[:, 8:]
        index = est.index(G)
        index.score(Q)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(index)).score(Q), index.score(Q))


# ------------------------------------------------------------ score estimators
def check_scores_shape_and_dtype(name, estimator, dtype=np.float64):
    """Scores of ``dtype`` pairs: (queries x gallery), ``dtype``, finite,
    in both directions; ``score`` is a percentage."""
    X_bank, X_test = _bank_and_test(dtype)
    est = clone(estimator).fit(X_bank)
    S = est.decision_function(X_test)
    assert S.shape == (25, 25) and S.dtype == dtype, (S.shape, S.dtype)
    assert np.all(np.isfinite(S))
    S_g2q = clone(estimator).set_params(direction="g2q").fit(X_bank).decision_function(X_test)
    assert S_g2q.shape == (25, 25)
    assert 0.0 <= est.score(X_test) <= 100.0


def check_permutation_equivariance(name, estimator):
    """Reordering the test pairs reorders the score matrix, nothing else."""
    X_bank, X_test = _bank_and_test()
    est = clone(estimator).fit(X_bank)
    perm = np.random.default_rng(3).permutation(25)
    S = est.decision_function(X_test)
    S_perm = est.decision_function(X_test[perm])
    np.testing.assert_allclose(S_perm, S[np.ix_(perm, perm)], rtol=1e-7, atol=1e-9)


def check_float32_and_float64_agree(name, estimator):
    """float32 input scores as float64 input, to float32 precision."""
    X_bank, X_test = _bank_and_test()
    S64 = clone(estimator).fit(X_bank).decision_function(X_test)
    S32 = clone(estimator).fit(X_bank.astype(np.float32)).decision_function(
        X_test.astype(np.float32))
    np.testing.assert_allclose(S32, S64, rtol=1e-3, atol=1e-3)


def check_index_equals_score_matrix(name, estimator):
    """``index(G).score(Q)`` is ``score_matrix(Q, G)``; ``kneighbors`` its top
    of each row, best first (a transductive method refuses an index)."""
    X_bank, X_test = _bank_and_test()
    est = clone(estimator).fit(X_bank)
    Q, G = X_test[:, :8], X_test[:, 8:]
    if est._transductive:
        _raises(ValueError, "transductive", est.index, G)
        return
    index = est.index(G)
    S = est.score_matrix(Q, G)
    np.testing.assert_allclose(index.score(Q), S, rtol=1e-10)
    scores, idx = index.kneighbors(Q, n_neighbors=5)
    np.testing.assert_allclose(scores, np.take_along_axis(S, idx, 1))
    assert np.all(np.diff(scores, axis=1) <= 0)
    np.testing.assert_allclose(scores[:, 0], S.max(axis=1))


def check_chunked_and_parallel_equal_one_pass(name, estimator):
    """Scores in one-row chunks, and on two joblib threads (``n_jobs=2``
    where the estimator has it), equal the scores of one pass."""
    import joblib
    from sklearn import config_context

    X_bank, X_test = _bank_and_test()
    est = clone(estimator).fit(X_bank)
    S = est.decision_function(X_test)
    Q, G = X_test[:, :8], X_test[:, 8:]
    whole = est.score_matrix(Q, G)
    # equal up to float64 rounding (BLAS sums a 1-row product in another order)
    with config_context(working_memory=1e-6):  # one row per chunk everywhere
        np.testing.assert_allclose(est.decision_function(X_test), S, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(est.score_matrix(Q, G), whole, rtol=1e-12, atol=1e-14)
    if "n_jobs" in est.get_params():
        with joblib.parallel_backend("threading", n_jobs=2), config_context(working_memory=1e-4):
            np.testing.assert_allclose(est.set_params(n_jobs=2).decision_function(X_test), S,
                                       rtol=1e-12, atol=1e-14)


def _strength_problem(seed):
    """Unnormalised queries, gallery and (noisy) paired banks of a random problem."""
    rng = np.random.default_rng(seed)
    Q, G, Bq, noise = (rng.standard_normal((n, 3)) for n in (7, 6, 12, 12))
    return Q, G, np.hstack([Bq, Bq + 0.1 * noise])


def check_strength_zero_is_cosine(name, estimator):
    """``strength=0`` scores exactly as cosine; the default does not."""
    from ..similarity import CosineSimilarity

    X_bank, X_test = _bank_and_test()
    split = {k: v for k, v in estimator.get_params().items() if k in _ESTIMATOR_ONLY}
    cos = CosineSimilarity(**split).fit(X_bank).decision_function(X_test)
    S0 = clone(estimator).set_params(strength=0.0).fit(X_bank).decision_function(X_test)
    np.testing.assert_array_equal(S0, cos)
    S1 = clone(estimator).fit(X_bank).decision_function(X_test)
    assert not np.allclose(S1, cos)


def check_strength_interpolates(name, estimator, seed=0, alpha=0.5, rtol=1e-12, atol=1e-12):
    """``S_α = S + α (S_1 - S)``: 0 is cosine, 1 the published method, in
    between the straight line (on a random problem of ``seed``)."""
    Q, G, X_bank = _strength_problem(seed)

    def scores(strength):
        est = clone(estimator).set_params(strength=strength).fit(X_bank)
        return est.score_matrix(Q, G)

    S = _unit(Q) @ _unit(G).T
    np.testing.assert_allclose(scores(0.0), S, rtol=rtol, atol=atol)
    S1 = scores(1.0)
    np.testing.assert_allclose(scores(alpha), S + alpha * (S1 - S), rtol=rtol, atol=atol)


def two_view_scores(function, estimator, queries, gallery, query_bank, gallery_bank):
    """``function`` (a two-view function) called with the fitted ``estimator``'s parameters.

    An ``"auto"`` parameter passes the value the fit chose (``<name>_``):
    a function without a gallery bank cannot choose it.
    """
    accepted = signature(function).parameters
    params = {k: getattr(estimator, f"{k}_", v) if isinstance(v, str) and v == "auto" else v
              for k, v in estimator.get_params().items()
              if k in accepted and k not in _ESTIMATOR_ONLY}
    banks = {"query_bank": query_bank, "gallery_bank": gallery_bank}
    banks = {k: v for k, v in banks.items() if k in accepted}
    return function(queries, gallery, **banks, **params)


def check_two_view_function(name, estimator, two_view=None):
    """The two-view function on explicit matrices equals the estimator on
    paired rows, in both directions."""
    X_bank, X_test = _bank_and_test()
    for direction in ("q2g", "g2q"):
        est = clone(estimator).set_params(direction=direction)
        S = est.fit(X_bank).decision_function(X_test)
        (Qb, Gb), (Q, G) = (X_bank[:, :8], X_bank[:, 8:]), (X_test[:, :8], X_test[:, 8:])
        if direction == "g2q":
            Qb, Gb, Q, G = Gb, Qb, G, Q
        np.testing.assert_allclose(
            S, two_view_scores(two_view, est, Q, G, Qb, Gb), rtol=1e-12)


# ------------------------------------------------------------- transformers
def check_transformer_shape_and_dtype(name, estimator, dtype=np.float64):
    """``transform`` of ``dtype`` pairs: one finite row per pair, ``dtype``."""
    import warnings

    X_bank, X_test = _bank_and_test(dtype)
    with warnings.catch_warnings():
        # trainable transformers may stop at max_iter on 40 random pairs
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = clone(estimator).fit(X_bank)
    Xt = est.transform(X_test)
    assert Xt.shape[0] == 25 and Xt.dtype == dtype, (Xt.shape, Xt.dtype)
    assert np.all(np.isfinite(Xt))


# ------------------------------------------------------------------- drivers
def yield_family_checks(estimator, *, two_view=None):
    """Yield the family checks that apply to ``estimator``.

    Parameters
    ----------
    estimator : RetrievalEstimator or PairedTransformer
        An instance (its parameters are those checked).
    two_view : dict, default=None
        ``{estimator class: two-view function}``; a class found there gets
        :func:`check_two_view_function` (the function is called with the
        estimator's parameters that its signature names, and with
        ``query_bank`` / ``gallery_bank`` where it takes them).

    Yields
    ------
    check : callable
        ``check(estimator)``; raises AssertionError where an invariant fails.

    Examples
    --------
    >>> from skxmr import InvertedSoftmax
    >>> from skxmr.utils.estimator_checks import yield_family_checks
    >>> [c.func.__name__ for c in yield_family_checks(InvertedSoftmax())][-2:]
    ['check_strength_zero_is_cosine', 'check_strength_interpolates']
    """
    if not isinstance(estimator, (RetrievalEstimator, PairedTransformer)):
        raise TypeError(
            "estimator must be a skxmr RetrievalEstimator or PairedTransformer instance, "
            f"got {type(estimator).__name__}.")
    name = type(estimator).__name__
    checks = [check_fit_does_not_modify_input_or_params, check_non_finite_input_names_x,
              check_odd_columns_and_bad_split, check_unfitted_raises, check_pickle_at_any_point]
    if isinstance(estimator, RetrievalEstimator):
        checks += [partial(check_scores_shape_and_dtype, dtype=np.float32),
                   partial(check_scores_shape_and_dtype, dtype=np.float64),
                   check_permutation_equivariance, check_float32_and_float64_agree,
                   check_chunked_and_parallel_equal_one_pass, check_index_equals_score_matrix]
        function = (two_view or {}).get(type(estimator))
        if function is not None:
            checks.append(partial(check_two_view_function, two_view=function))
        if "strength" in estimator.get_params():
            checks += [check_strength_zero_is_cosine, check_strength_interpolates]
    else:
        checks += [partial(check_transformer_shape_and_dtype, dtype=np.float32),
                   partial(check_transformer_shape_and_dtype, dtype=np.float64)]
    for check in checks:
        if isinstance(check, partial):
            yield partial(check.func, name, **check.keywords)
        else:
            yield partial(check, name)


def _check_name(check):
    """``check_x`` or ``check_x(dtype=float32)``, as scikit-learn names its checks."""
    func = check.func if isinstance(check, partial) else check
    kwargs = {k: v for k, v in getattr(check, "keywords", {}).items() if k != "two_view"}
    if not kwargs:
        return func.__name__
    args = ", ".join(f"{k}={getattr(v, '__name__', v)}" for k, v in kwargs.items())
    return f"{func.__name__}({args})"


def check_estimator(estimator, *, two_view=None, sklearn_checks=True, expected_failed_checks=None):
    """Run scikit-learn's checks and the family checks on ``estimator``.

    Parameters
    ----------
    estimator : RetrievalEstimator or PairedTransformer
    two_view : dict, default=None
        See :func:`yield_family_checks`.
    sklearn_checks : bool, default=True
        Run scikit-learn's ``check_estimator`` first.
    expected_failed_checks : dict, default=None
        ``{check name: reason}`` of checks to skip (scikit-learn's and the
        family's); ``None``: :data:`PAIRED_ROWS_XFAIL`.

    Examples
    --------
    >>> from skxmr import CosineSimilarity
    >>> from skxmr.utils.estimator_checks import check_estimator
    >>> check_estimator(CosineSimilarity(), sklearn_checks=False)
    """
    expected = dict(PAIRED_ROWS_XFAIL if expected_failed_checks is None
                    else expected_failed_checks)
    if sklearn_checks:
        import warnings

        from sklearn.utils.estimator_checks import check_estimator as sklearn_check_estimator

        with warnings.catch_warnings():
            # scikit-learn's checks fit random, unpaired X by design
            warnings.filterwarnings("ignore", message=UNPAIRED_MESSAGE, category=UserWarning)
            sklearn_check_estimator(estimator, expected_failed_checks=expected)
    for check in yield_family_checks(estimator, two_view=two_view):
        if _check_name(check) not in expected:
            check(estimator)


def parametrize_with_checks(estimators, *, two_view=None, sklearn_checks=True,
                            expected_failed_checks=None, xfail_strict=None):
    """A pytest ``parametrize`` over scikit-learn's and the family's checks.

    Wraps :func:`sklearn.utils.estimator_checks.parametrize_with_checks`:
    each estimator gets scikit-learn's checks, then (if it is a
    :class:`~skxmr.RetrievalEstimator` or :class:`~skxmr.PairedTransformer`)
    :func:`yield_family_checks`; test ids are ``Estimator()-check_name``.

    Parameters
    ----------
    estimators : list of estimator instances
    two_view : dict, default=None
        ``{estimator class: two-view function}``, see
        :func:`yield_family_checks`.
    sklearn_checks : bool, default=True
        Include scikit-learn's checks.
    expected_failed_checks : callable, default=None
        ``expected_failed_checks(estimator) -> {check name: reason}``; those
        checks are marked ``xfail``. ``None``: :data:`PAIRED_ROWS_XFAIL`,
        the checks every estimator on paired rows fails.
    xfail_strict : bool, default=None
        A check marked ``xfail`` that passes fails the suite (``True``).

    Returns
    -------
    decorator : ``pytest.mark.parametrize("estimator, check", ...)``

    Examples
    --------
    >>> from skxmr import CosineSimilarity
    >>> from skxmr.utils.estimator_checks import parametrize_with_checks
    >>> @parametrize_with_checks([CosineSimilarity()], sklearn_checks=False)
    ... def test_my_method(estimator, check):
    ...     check(estimator)
    """
    import pytest

    params = []
    for estimator in estimators:
        expected = (PAIRED_ROWS_XFAIL if expected_failed_checks is None
                    else expected_failed_checks(estimator))
        if sklearn_checks:
            # scikit-learn's checks fit random, unpaired X by design
            quiet = pytest.mark.filterwarnings(f"ignore:{UNPAIRED_MESSAGE}:UserWarning")
            params += [pytest.param(*p.values, marks=[*p.marks, quiet], id=p.id)
                       for p in sklearn_estimator_checks(estimator, expected, xfail_strict)]
        if not isinstance(estimator, (RetrievalEstimator, PairedTransformer)):
            continue  # off the family (e.g. GaussianEmbedding): scikit-learn's checks only
        for check in yield_family_checks(estimator, two_view=two_view):
            check_id = _check_name(check)
            strict = {} if xfail_strict is None else {"strict": xfail_strict}
            marks = ([pytest.mark.xfail(reason=expected[check_id], **strict)]
                     if check_id in expected else [])
            params.append(pytest.param(estimator, check, marks=marks))
    return pytest.mark.parametrize("estimator, check", params, ids=_param_id)


def _param_id(value):
    if isinstance(value, (RetrievalEstimator, PairedTransformer)) or hasattr(value, "get_params"):
        return f"{type(value).__name__}({_changed_params(value)})"
    if callable(value):
        return _check_name(value)
    return str(value)


def _changed_params(estimator):
    defaults = {k: p.default for k, p in signature(type(estimator).__init__).parameters.items()}
    changed = {k: v for k, v in estimator.get_params(deep=False).items()
               if k in defaults and defaults[k] is not v and not _same(defaults[k], v)}
    return ",".join(f"{k}={v!r}" for k, v in changed.items())


def _same(a, b):
    try:
        return bool(a == b)
    except Exception:  # arrays and the like
        return False
