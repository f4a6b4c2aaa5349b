"""scikit-learn's and joblib's private API is reached through one module."""

import ast
from pathlib import Path

import joblib
import pytest

import skxmr
from skxmr.utils import _compat

PACKAGE = Path(skxmr.__file__).parent
COMPAT = PACKAGE / "utils" / "_compat.py"


def _private_imports(path):
    """``(line, dotted name)`` of each private sklearn/joblib name ``path`` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [(node.module, [a.name for a in node.names])]
        elif isinstance(node, ast.Import):
            modules = [(a.name, []) for a in node.names]
        else:
            continue
        for module, names in modules:
            parts = module.split(".")
            if parts[0] not in ("sklearn", "joblib"):
                continue
            private = [p for p in parts[1:] if p.startswith("_") or p == "externals"]
            private += [n for n in names if n.startswith("_")]
            if private:
                found.append((node.lineno, f"{module}: {', '.join(private)}"))
    return found


def test_private_imports_only_in_compat():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line} {what}"
        for path in sorted(PACKAGE.rglob("*.py")) if path != COMPAT
        for line, what in _private_imports(path)
    ]
    assert offenders == []
    assert _private_imports(COMPAT)  # the scan sees what _compat imports


@pytest.mark.parametrize("source, expected", [
    ("from sklearn.utils._param_validation import Interval", 1),
    ("from sklearn.utils.validation import _check_feature_names_in, check_is_fitted", 1),
    ("import joblib._parallel_backends", 1),
    ("from sklearn.externals.array_api_compat import device", 1),
    ("def f():\n    from joblib._parallel_backends import LokyBackend", 1),
    ("from sklearn.utils.validation import check_is_fitted, validate_data", 0),
    ("from joblib import Parallel", 0),
    ("from ._compat import _get_output_config", 0),
])
def test_scan_finds_private_imports(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source + "\n")
    assert len(_private_imports(path)) == expected


def test_local_joblib_backend():
    assert _compat.local_joblib_backend()
    with joblib.parallel_backend("threading"):
        assert _compat.local_joblib_backend()


def test_optional_import_names_the_extra():
    assert _compat.optional_import("joblib", "dask", "anything") is joblib
    with pytest.raises(ImportError, match=r"approximate search needs no_such_module_xmr, "
                       r"which is not installed: pip install 'skxmr\[ann\]'"):
        _compat.optional_import("no_such_module_xmr", "ann", "approximate search")
