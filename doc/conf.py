"""Sphinx configuration of the skxmr documentation.

Build: ``python -m pip install ".[docs]" && make -C doc html`` (warnings are
errors; the gallery examples run, and the "Reproducing the papers" tables are
computed by ``skxmr.benchmark`` at build time).
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import skxmr  # noqa: E402

project = "skxmr"
author = "the skxmr developers"
copyright = "2026, the skxmr developers"
release = skxmr.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax copied into the build (_static/mathjax) and mathjax_path set
    # to it: the formulas render offline, with nothing fetched from a CDN.
    "sphinx-mathjax-offline",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
templates_path = []
exclude_patterns = ["_build", "generated_tables", "sg_execution_times.rst"]
nitpicky = False
suppress_warnings = ["config.cache"]

try:
    import pydata_sphinx_theme  # noqa: F401

    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
        # The benchmark tables (11 columns) take the page's whole width.
        "secondary_sidebar_items": {"**": ["page-toc", "sourcelink"], "reproducing": []},
    }
except ImportError:  # pragma: no cover - docs extras not installed
    html_theme = "alabaster"
html_static_path = ["_static"]
html_css_files = ["skxmr.css"]  # wide tables scroll instead of overflowing
html_title = f"skxmr {release}"

intersphinx_mapping = {}  # builds offline: no inventories fetched

sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "plot_gallery": "True",
}

# The benchmark tables of "Reproducing the papers" are computed now, from
# the fetchers' cache (SKXMR_DATA), never pasted.
from build_tables import write_tables  # noqa: E402

write_tables(HERE / "generated_tables")


def _skip_sklearn_members(app, what, name, obj, skip, options):
    """Document skxmr's own API: members inherited from scikit-learn's
    mixins (get_params, set_output, metadata routing, ...) are documented
    there, and their docstrings refer to labels of scikit-learn's site."""
    if (getattr(obj, "__module__", None) or "").startswith("sklearn"):
        return True
    return None


def setup(app):
    from no_mailto import NoMailto

    app.connect("autodoc-skip-member", _skip_sklearn_members)
    app.add_transform(NoMailto)
