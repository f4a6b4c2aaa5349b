"""The one door to scikit-learn's and joblib's private API.

Every name the package takes from a private module of scikit-learn
(``sklearn.utils._param_validation``, ``_array_api``, ``_set_output``,
``validation._check_feature_names_in``, the vendored
``sklearn.externals.array_api_compat``) or of joblib
(``joblib._parallel_backends``) is imported here and only here, with a
fallback where the supported versions (``pyproject.toml``: scikit-learn 1.7
to 1.9 are tested; 1.6 works too) differ or a later release may move the
name. A
change of those libraries then touches this module alone;
``tests/test_compat.py`` scans the package for private imports elsewhere.
"""

__all__ = [
    "HasMethods", "Hidden", "Interval", "InvalidParameterError", "Options", "StrOptions",
    "array_namespace", "check_feature_names_in", "device", "get_namespace",
    "get_output_config", "is_threading_backend", "local_joblib_backend", "optional_import",
    "sklearn_check_same_namespace", "sklearn_estimator_checks", "validate_params",
]

# Parameter validation: the constraint vocabulary of every estimator. It has
# lived in this module since scikit-learn 1.2, unchanged in 1.6-1.9.
from sklearn.utils._param_validation import (  # noqa: F401
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_params,
)

# The array namespace of an input (numpy, torch, ... through array-api-compat).
from sklearn.utils._array_api import get_namespace  # noqa: F401

try:  # vendored by scikit-learn since 1.7
    from sklearn.externals.array_api_compat import array_namespace, device  # noqa: F401
except ImportError:  # scikit-learn 1.6: the optional array-api-compat package
    try:
        from array_api_compat import array_namespace, device  # noqa: F401
    except ImportError:  # neither: numpy arrays only, numpy 2 being the namespace
        import numpy as _np

        def array_namespace(*arrays):
            """numpy (array API compliant from numpy 2); other arrays need array-api-compat."""
            if any(not isinstance(a, (_np.ndarray, _np.generic)) for a in arrays):
                raise TypeError(
                    "arrays other than numpy's need the array-api-compat package "
                    "(pip install array-api-compat) with scikit-learn 1.6.")
            return _np

        def device(x):
            """numpy arrays live on the CPU."""
            return "cpu"

try:  # scikit-learn 1.9: "Estimator.method() ... must use the same namespace"
    from sklearn.utils._array_api import check_same_namespace as sklearn_check_same_namespace
except ImportError:  # older releases: skxmr's backend check applies alone
    sklearn_check_same_namespace = None

try:
    from sklearn.utils._set_output import _get_output_config
except ImportError:  # pragma: no cover - a scikit-learn that moves it
    from sklearn import get_config as _get_config

    def _get_output_config(method, estimator=None):
        """``{"dense": container}`` of ``set_output`` for ``method`` of ``estimator``."""
        settings = getattr(estimator, "_sklearn_output_config", {})
        dense = settings.get(method, _get_config()[f"{method}_output"])
        return {"dense": dense}


#: ``get_output_config(method, estimator)["dense"]``: the container that
#: ``set_output`` asks ``method`` of ``estimator`` to return.
get_output_config = _get_output_config


try:
    from sklearn.utils.validation import _check_feature_names_in
except ImportError:  # pragma: no cover - a scikit-learn that moves it
    import numpy as np

    def _check_feature_names_in(estimator, input_features=None):
        """Input feature names: given, seen in fit, or ``x0 ... x{n-1}``."""
        seen = getattr(estimator, "feature_names_in_", None)
        if input_features is not None:
            input_features = np.asarray(input_features, dtype=object)
            if seen is not None and not np.array_equal(seen, input_features):
                raise ValueError("input_features is not equal to feature_names_in_")
            return input_features
        if seen is not None:
            return seen
        return np.asarray([f"x{i}" for i in range(estimator.n_features_in_)], dtype=object)


#: The input feature names of ``get_feature_names_out`` (scikit-learn's rule).
check_feature_names_in = _check_feature_names_in


from inspect import signature  # noqa: E402

# joblib: is the active backend one of this machine's own (threads, processes)?
from joblib.parallel import get_active_backend  # noqa: E402

try:
    from joblib._parallel_backends import (  # noqa: E402
        LokyBackend,
        MultiprocessingBackend,
        SequentialBackend,
        ThreadingBackend,
    )

    _LOCAL_BACKENDS = (LokyBackend, MultiprocessingBackend, SequentialBackend, ThreadingBackend)
except ImportError:  # pragma: no cover - a joblib that moves its backends
    _LOCAL_BACKENDS = ()


def is_threading_backend(backend):
    """Whether a joblib backend object runs its tasks in this process (on
    threads, or one after the other: joblib 1.3 gives ``Parallel(n_jobs=None)``
    the sequential backend inside a threading context): nothing is pickled."""
    if _LOCAL_BACKENDS:
        return isinstance(backend, (ThreadingBackend, SequentialBackend))
    names = ("ThreadingBackend", "SequentialBackend")
    return any(cls.__name__ in names for cls in type(backend).__mro__)


def local_joblib_backend():
    """Whether joblib's active backend runs on this machine (not dask, ray...)."""
    backend = get_active_backend()[0]
    if _LOCAL_BACKENDS:
        return isinstance(backend, _LOCAL_BACKENDS)
    names = ("LokyBackend", "MultiprocessingBackend", "SequentialBackend", "ThreadingBackend")
    return any(cls.__name__ in names for cls in type(backend).__mro__)


def sklearn_estimator_checks(estimator, expected_failed_checks, xfail_strict=None):
    """scikit-learn's checks of ``estimator`` as pytest params, expected
    failures marked ``xfail`` (``strict`` as asked; scikit-learn 1.6 and 1.7
    lack the ``xfail_strict`` argument, so the marks are rebuilt there)."""
    import pytest
    from sklearn.utils.estimator_checks import estimator_checks_generator

    kwargs = {"expected_failed_checks": expected_failed_checks, "mark": "xfail"}
    native = "xfail_strict" in signature(estimator_checks_generator).parameters
    if native:
        kwargs["xfail_strict"] = xfail_strict
    params = []
    for item in estimator_checks_generator(estimator, **kwargs):
        if not hasattr(item, "marks"):
            item = pytest.param(*item)
        elif not native and xfail_strict is not None:
            marks = [pytest.mark.xfail(reason=m.kwargs.get("reason"), strict=xfail_strict)
                     if m.name == "xfail" else m for m in item.marks]
            item = pytest.param(*item.values, marks=marks, id=item.id)
        params.append(item)
    return params


def optional_import(module, extra, feature):
    """Import the optional dependency ``module``, or raise ``ImportError``
    naming the ``skxmr[extra]`` that installs it: the one way the package
    says an optional extra is missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{feature} needs {module}, which is not installed: pip install 'skxmr[{extra}]'"
        ) from exc
