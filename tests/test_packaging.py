"""Release-facing promises: each estimator's HTML repr links to its API page."""

import importlib
import inspect
import re
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator

import skxmr

API = Path(__file__).resolve().parents[1] / "doc" / "api.rst"


def _documented_pages():
    """``<module>.<name>`` of every autosummary entry of doc/api.rst."""
    pages, module = set(), None
    for line in API.read_text().splitlines():
        found = re.match(r"\.\. currentmodule:: (\S+)", line)
        if found:
            module = found.group(1)
        elif re.match(r"   [A-Za-z_]\w*$", line) and module:
            pages.add(f"{module}.{line.strip()}")
    return pages


def _public_estimators():
    seen = {}
    for name in ("skxmr", "skxmr.hubness", "skxmr.graph", "skxmr.calibration",
                 "skxmr.alignment"):
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator) \
                    and not inspect.isabstract(obj):
                seen[obj] = f"{name}.{attr}"
    return sorted(seen.items(), key=lambda kv: kv[1])


@pytest.mark.skipif(not API.is_file(), reason="doc/api.rst is not beside the tests")
@pytest.mark.parametrize("cls, name", _public_estimators(), ids=lambda v: v if isinstance(v, str) else "")
def test_html_repr_links_the_api_page(cls, name):
    est = cls()
    url = est._get_doc_link()
    page = re.fullmatch(r"https://skxmr\.readthedocs\.io/en/[^/]+/generated/(.+)\.html", url)
    assert page, f"{name}: {url!r}"
    assert page.group(1) in _documented_pages(), f"{name} links {url}, not an API page"
    assert url in est._repr_html_()


def test_version_of_the_linked_docs(monkeypatch):
    monkeypatch.setattr(skxmr, "__version__", "1.2.0")
    assert "/en/1.2.0/" in skxmr.SinkhornNormalizer()._get_doc_link()
    monkeypatch.setattr(skxmr, "__version__", "1.3.0.dev0")
    assert "/en/latest/" in skxmr.SinkhornNormalizer()._get_doc_link()


@pytest.mark.parametrize("column", [0, 4, 8])
def test_docstring_parts_follow_the_placeholder_indentation(column):
    """Python 3.13 compiles docstrings without their indentation: a shared
    part lands at the placeholder's column either way."""
    from skxmr.utils._docstrings import fill_doc

    part = "a : int\n        First.\n    b : int\n        Second."

    def f():
        pass

    pad = " " * column
    f.__doc__ = f"Sum.\n\n{pad}Parameters\n{pad}----------\n{pad}{{params}}\n"
    fill_doc(params=part)(f)
    assert inspect.cleandoc(f.__doc__).splitlines()[4:] == [
        "a : int", "    First.", "b : int", "    Second."]
