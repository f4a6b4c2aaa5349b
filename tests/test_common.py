"""scikit-learn's estimator checks plus skxmr's own family checks.

Every public estimator in ``skxmr.__all__`` (and in the method modules'
``__all__``) is discovered, so a new method is checked without editing this
file. scikit-learn's generic checks feed X with an odd number of columns
(3 or 5); paired rows then have no unambiguous split and raise
``ValueError``. Those checks are expected failures, with the reason
(``PAIRED_ROWS_XFAIL`` and the additions below), and the same properties
are checked on paired data by the generated family checks of
:mod:`skxmr.utils.estimator_checks`.
"""

import inspect

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn import __version__ as _sklearn_version
from sklearn.base import clone
from sklearn.utils.fixes import parse_version

import skxmr
from skxmr import PairedTransformer, RetrievalEstimator, hubness
from skxmr.utils.estimator_checks import (
    PAIRED_ROWS_XFAIL as COMMON_XFAIL,
    check_strength_interpolates,
    parametrize_with_checks,
)
from skxmr.utils.estimator_checks import _ODD as ODD

from .conftest import make_pairs

# Per-estimator additions: {"ClassName": {"check_name": "reason"}}. The run is
# strict: a listed check that passes fails the suite, so the list stays true.
GAUSSIAN_HALVES = (
    "each half of X is a packed diagonal Gaussian (mean + log-variances, 2d "
    "columns); sklearn's check data has 1- or 5-column halves, which are not, "
    "so fit raises ValueError; checked on packed data by the family checks "
    "and tests/test_calibration.py"
)
NO_SPREAD_1D = (
    "the check's halves are 1-D: L2-normalised points are all +-1, so no "
    "neighbourhood varies and the covariance estimate raises ValueError "
    "(zero variance; reg_covar > 0 is the remedy)"
)
_GAUSSIAN_ROW_CHECKS = (
    "check_dtype_object",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_n_features_in",
    "check_readonly_memmap_input",
)
CENTRED_1D = (
    "the check's halves are 1-D: L2-normalised, every row of a half is the same "
    "+-1, so the centred rows are zero and have no direction (ValueError naming "
    "the half); tests/test_alignment.py covers the closed forms on paired data"
)
NO_ITEM_IDS = (
    "a Gaussian is estimated from several samples of one item: 2-D X needs "
    "item_ids (or X is 3-D, items x samples x features), and sklearn's check "
    "data gives neither; transform returns one row per item, not per sample; "
    "checked on grouped data by tests/test_calibration.py"
)
_SAMPLE_CHECKS = (
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
    "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
    "check_estimators_pickle(readonly_memmap=True)", "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_general(readonly_memmap=True)", "check_transformer_preserve_dtypes",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in",
    "check_fit2d_predict1d",
)
_ODD_TRANSFORMER_CHECKS = (
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_general(readonly_memmap=True)",
    "check_transformer_preserve_dtypes",
)
EXTRA_XFAIL = {
    "ProbabilisticCalibration": dict.fromkeys(_GAUSSIAN_ROW_CHECKS, GAUSSIAN_HALVES),
    "CalibratedProjection": {
        **dict.fromkeys(_GAUSSIAN_ROW_CHECKS, GAUSSIAN_HALVES),
        **dict.fromkeys(_ODD_TRANSFORMER_CHECKS, ODD),
        "check_transformer_n_iter": ODD,
    },
    # InvGC's transformer checks: the same properties are checked on paired
    # data by the family checks and tests/test_graph.py.
    "InvGC": dict.fromkeys(_ODD_TRANSFORMER_CHECKS, ODD),
    # Same for CS alignment (tests/test_alignment.py covers paired rows).
    "CauchySchwarzAlignment": {
        **dict.fromkeys(_ODD_TRANSFORMER_CHECKS, ODD),
        "check_transformer_n_iter": ODD,
    },
    "MultiModalCSAlignment": {
        **dict.fromkeys(_ODD_TRANSFORMER_CHECKS, ODD),
        "check_transformer_n_iter": ODD,
    },
    **{
        name: {
            **dict.fromkeys(_ODD_TRANSFORMER_CHECKS, ODD),
            "check_fit_idempotent": CENTRED_1D,
            **({"check_transformer_n_iter": ODD} if name == "PLSAlignment" else {}),
        }
        for name in ("ProcrustesAlignment", "PLSAlignment", "RidgeAlignment")
    },
    "GaussianEmbedding": dict.fromkeys(_SAMPLE_CHECKS, NO_ITEM_IDS),
    "NeighborhoodGaussian": {
        **dict.fromkeys(_ODD_TRANSFORMER_CHECKS, ODD),
        "check_fit_idempotent": NO_SPREAD_1D,
        **(
            {} if parse_version(_sklearn_version) >= parse_version("1.8") else {
                "check_n_features_in_after_fitting": (
                    "scikit-learn < 1.8 fits this check on 10 rows: fewer unique "
                    "items than n_neighbors=10 needs"
                ),
            }
        ),
    },
    "MutualProximity": {
        "check_fit_idempotent": (
            "the check's halves are 1-D: every bank cosine is +-1, so no item's "
            "similarities to a bank vary and method='gaussian' raises ValueError "
            "(zero variance); tests/test_hubness_peers.py covers it"
        ),
    },
}


def public_estimators():
    """Default instances of every public estimator class of the package."""
    seen = {}
    modules = [skxmr] + [
        getattr(skxmr, name) for name in dir(skxmr) if inspect.ismodule(getattr(skxmr, name))
    ]
    for module in modules:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if (
                inspect.isclass(obj)
                and issubclass(obj, (RetrievalEstimator, PairedTransformer))
                and obj not in (RetrievalEstimator, PairedTransformer)
            ):
                seen[obj.__name__] = obj
    return [cls() for _, cls in sorted(seen.items())]


ESTIMATORS = public_estimators()
SCORERS = [e for e in ESTIMATORS if isinstance(e, RetrievalEstimator)]
TRANSFORMERS = [e for e in ESTIMATORS if isinstance(e, PairedTransformer)]


# scikit-learn's check_array_api_input (array API dispatch, SCIPY_ARRAY_API=1
# set in the root conftest.py) runs on every estimator: with numpy input for
# all of them, and with torch tensors for those declaring array API support
# (the ``_array_api`` score estimators: their fit, decision_function and
# score_matrix keep tensors on their device, tests/test_score_backends.py).
for _name in ("ProbabilisticCalibration", "CalibratedProjection"):
    EXTRA_XFAIL.setdefault(_name, {})["check_array_api_input"] = GAUSSIAN_HALVES
EXTRA_XFAIL["GaussianEmbedding"]["check_array_api_input"] = NO_ITEM_IDS

# Estimators off the paired-row data model, checked by scikit-learn only.
OTHER_ESTIMATORS = [skxmr.GaussianEmbedding()]


#: Each method's two-view function (on explicit matrices), checked against
#: its estimator by the family check ``check_two_view_function``.
TWO_VIEW = {
    skxmr.SinkhornNormalizer: hubness.sinkhorn_scores,
    skxmr.DualBankSinkhornNormalizer: hubness.dual_bank_sinkhorn_scores,
    skxmr.InvertedSoftmax: hubness.inverted_softmax_scores,
    skxmr.QBNorm: hubness.qb_norm_scores,
    skxmr.DualSoftmax: hubness.dual_softmax_scores,
    skxmr.CSLS: hubness.csls_scores,
    skxmr.DBNorm: hubness.dbnorm_scores,
    skxmr.NearestNeighborNormalization: hubness.nnn_scores,
    skxmr.DistributionNormalization: hubness.distribution_normalization_scores,
    skxmr.MutualProximity: hubness.mutual_proximity_scores,
    skxmr.LocalScaling: hubness.local_scaling_scores,
}

#: Settings other than the defaults whose code paths differ (variants, solvers).
VARIANTS = [
    skxmr.QBNorm(n_neighbors=3),
    skxmr.CSLS(n_neighbors=5),
    skxmr.DBNorm(dynamic=True),
    skxmr.MutualProximity(method="empirical"),
    skxmr.LocalScaling(n_neighbors=5),
    skxmr.LocalScaling(method="standard", n_neighbors=5),
    skxmr.SinkhornNormalizer(temperature=0.03, strength=0.7),
    skxmr.DualBankSinkhornNormalizer(temperature=0.03, strength=0.7),
]


def expected_failed_checks(estimator):
    if isinstance(estimator, skxmr.GaussianEmbedding):
        return EXTRA_XFAIL["GaussianEmbedding"]
    return {**COMMON_XFAIL, **EXTRA_XFAIL.get(type(estimator).__name__, {})}


@parametrize_with_checks(
    ESTIMATORS + OTHER_ESTIMATORS,
    two_view=TWO_VIEW,
    expected_failed_checks=expected_failed_checks,
    xfail_strict=True,  # on every supported scikit-learn (see _compat)
)
def test_estimator_checks(estimator, check):
    """scikit-learn's checks, then the generated family checks (scikit-learn's
    only for the estimators off the paired rows)."""
    check(estimator)


@parametrize_with_checks(VARIANTS, two_view=TWO_VIEW, sklearn_checks=False)
def test_family_checks_of_variants(estimator, check):
    check(estimator)


STRENGTH = [e for e in ESTIMATORS + VARIANTS if "strength" in e.get_params()]


@given(seed=st.integers(0, 10_000), alpha=st.floats(0.0, 1.0),
       which=st.integers(0, len(STRENGTH) - 1))
def test_strength_interpolates_on_random_problems(seed, alpha, which):
    """The family check on random unnormalised problems (hypothesis)."""
    est = STRENGTH[which]
    check_strength_interpolates(type(est).__name__, est, seed=seed, alpha=alpha,
                                rtol=1e-9, atol=1e-9)


def _ids(est):
    return type(est).__name__


# --------------------------------------------------------------------------
# Every estimator scikit-learn native (issue 14)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("base", [PairedTransformer, RetrievalEstimator])
def test_base_classes_are_abstract(base):
    """RetrievalEstimator().fit(X) used to fail with AttributeError."""
    with pytest.raises(TypeError, match="abstract"):
        base()


@pytest.mark.parametrize("estimator", ESTIMATORS + OTHER_ESTIMATORS, ids=_ids)
def test_bool_is_not_a_number(estimator):
    """``True`` is refused wherever a number is expected (it is an ``int``)."""
    from sklearn.utils._param_validation import Interval

    numeric = [
        name for name, constraints in estimator._parameter_constraints.items()
        if "boolean" not in constraints and any(isinstance(c, Interval) for c in constraints)
    ]
    assert numeric
    X = make_pairs() if not isinstance(estimator, skxmr.GaussianEmbedding) else np.ones((3, 2, 4))
    for name in numeric:
        # Either ours ("not a bool") or sklearn's range message (True = 1 is out).
        with pytest.raises(ValueError, match=f"'{name}' parameter .*(not a bool|Got True)"):
            clone(estimator).set_params(**{name: True}).fit(X)


def _fitted_transformers():
    rng = np.random.default_rng(0)
    samples = rng.standard_normal((6, 5, 3))
    for est in TRANSFORMERS:
        params = {"max_iter": 3, "tol": None, "random_state": 0} if "tol" in est.get_params() else {}
        if isinstance(est, skxmr.CalibratedProjection):
            from skxmr.calibration import pair_gaussians

            mu = rng.standard_normal((30, 4))
            X = pair_gaussians(mu, np.full((30, 4), .1), mu + .1, np.full((30, 4), .2))
            params = {"max_iter": 3, "random_state": 0}
        else:
            X = make_pairs()
        yield clone(est).set_params(**params), X
    for cov in ("spherical", "diag", "full"):
        yield skxmr.GaussianEmbedding(covariance=cov), samples


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("est, X", list(_fitted_transformers()), ids=lambda v: _ids(v) if hasattr(v, "fit") else "")
def test_feature_names_out_and_pandas_output(est, X):
    pd = pytest.importorskip("pandas")
    Xt = est.fit_transform(X)
    names = est.get_feature_names_out()
    assert names.dtype == object and names.shape == (Xt.shape[1],)
    assert len(set(names)) == names.size
    out = clone(est).set_output(transform="pandas").fit_transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    np.testing.assert_allclose(out.to_numpy(), Xt)


def test_pipeline_pandas_output():
    """The issue's example: pandas between the steps of a retrieval pipeline."""
    pd = pytest.importorskip("pandas")
    from sklearn.pipeline import make_pipeline

    X = make_pairs(40, seed=1)
    columns = [f"q{i}" for i in range(8)] + [f"g{i}" for i in range(8)]
    frame = pd.DataFrame(X, columns=columns)
    pipe = make_pipeline(skxmr.InvGC(), skxmr.SinkhornNormalizer()).set_output(transform="pandas")
    S = pipe.fit(frame).decision_function(frame)
    S_array = make_pipeline(skxmr.InvGC(), skxmr.SinkhornNormalizer()).fit(X).decision_function(X)
    np.testing.assert_allclose(S, S_array)
    inner = pipe[:-1].transform(frame)
    assert isinstance(inner, pd.DataFrame) and list(inner.columns) == columns


def _public_callables():
    import importlib

    names = ["skxmr"] + [
        f"skxmr.{m}" for m in ("alignment", "calibration", "graph", "hubness", "similarity",
                               "metrics", "datasets", "benchmark")
    ]
    seen = {}
    for modname in names:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if callable(obj):
                seen.setdefault(id(obj), (f"{modname}.{name}", obj))
    return sorted(seen.values(), key=lambda t: t[0])


@pytest.mark.parametrize("name, obj", _public_callables(), ids=lambda v: v if isinstance(v, str) else "")
def test_public_callable_has_docstring_with_examples(name, obj):
    """A docstring with examples that doctest collects (and so runs: setup.cfg
    runs --doctest-modules on skxmr/); public methods are documented too."""
    import doctest

    assert obj.__doc__, f"{name} has no docstring at run time"
    # cleandoc: Python 3.13 strips the docstrings' indentation when compiling
    assert "\nExamples\n--------\n" in inspect.cleandoc(obj.__doc__), (
        f"{name} has no Examples section")
    examples = doctest.DocTestParser().get_examples(obj.__doc__)
    assert examples, f"{name}'s Examples section holds no doctest"
    if inspect.isclass(obj):
        for meth_name, meth in vars(obj).items():
            if not meth_name.startswith("_") and callable(meth):
                assert meth.__doc__, f"{name}.{meth_name} has no docstring"


def test_import_and_docstrings_under_python_OO():
    """python -OO strips docstrings; the substitution must not need them."""
    import subprocess
    import sys

    code = "import skxmr, skxmr.alignment as a; assert a.MultiModalCSAlignment.__doc__ is None"
    subprocess.run([sys.executable, "-OO", "-c", code], check=True)
    out = subprocess.run([sys.executable, "-OO", "-m", "skxmr", "--help"], check=True,
                         capture_output=True, text=True).stdout
    assert "benchmark" in out


@pytest.mark.parametrize(
    "estimator", [e for e in SCORERS if not isinstance(e, skxmr.ProbabilisticCalibration)],
    ids=_ids,
)
@pytest.mark.parametrize("dtype, factor", [(np.float32, 1e30), (np.float32, 1e-30),
                                           (np.float64, 1e200), (np.float64, 1e-200)])
def test_huge_and_tiny_rows_keep_their_direction(estimator, dtype, factor):
    """Cosine methods see only directions: rows scaled near the dtype's limits
    score as the unscaled rows (no zero vectors, no false "zero-norm")."""
    X_bank, X_test = make_pairs(40, seed=1, dtype=dtype), make_pairs(25, seed=2, dtype=dtype)
    est = clone(estimator).fit(X_bank)
    S = est.decision_function(X_test)
    S_scaled = est.decision_function(X_test * dtype(factor))
    np.testing.assert_allclose(S_scaled, S, rtol=1e-4, atol=1e-5)
    S_fit = clone(estimator).fit(X_bank * dtype(factor)).decision_function(X_test)
    np.testing.assert_allclose(S_fit, S, rtol=1e-4, atol=1e-5)
