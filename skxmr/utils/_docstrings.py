"""The one docstring-substitution mechanism of the package.

Shared parameter blocks are written once and spliced into the docstrings
that use them with :func:`fill_doc`. A docstring built by string
concatenation (``\"\"\"...\"\"\" + PARAMS``) is an expression, not a docstring:
its ``__doc__`` is ``None`` at run time. Under ``python -OO`` every
``__doc__`` is ``None``; the decorator then leaves the object alone.
"""

import itertools
import re


# The column the shared parts are written for: continuation lines carry this
# indentation (entries at 4, their descriptions at 8).
PART_COLUMN = 4


def _reindent(text, column):
    """``text`` with its continuation lines moved from PART_COLUMN to ``column``."""
    shift = column - PART_COLUMN
    lines = text.split("\n")
    for i in range(1, len(lines)):
        line = lines[i]
        if shift >= 0:
            lines[i] = " " * shift + line if line.strip() else line
        else:
            lead = len(line) - len(line.lstrip(" "))
            lines[i] = line[min(-shift, lead):]
    return "\n".join(lines)


def fill_doc(**parts):
    """Replace each ``{name}`` in the decorated object's docstring by ``parts[name]``.

    Only the named placeholders are touched (docstrings also hold literal
    braces, e.g. ``{"auto", "pca"}``); a placeholder missing from the
    docstring raises ``ValueError`` at import, so a typo cannot drop a block.

    Parameters
    ----------
    **parts : str
        The text of each placeholder, written for a placeholder at column
        :data:`PART_COLUMN` (the body of a module-level function's or class's
        docstring); its continuation lines are re-indented to the
        placeholder's actual column (Python 3.13 strips the indentation of
        docstrings when it compiles them, so the placeholder is then at
        column 0).

    Returns
    -------
    decorate : callable
        Returns the object it is given, with the docstring filled in.

    Examples
    --------
    >>> from skxmr.utils._docstrings import fill_doc
    >>> @fill_doc(x="x : int\\n        The value.")
    ... def f(x):
    ...     '''Identity.
    ...
    ...     Parameters
    ...     ----------
    ...     {x}
    ...     '''
    ...     return x
    >>> print(f.__doc__.splitlines()[4].strip())
    x : int
    """

    def decorate(obj):
        doc = obj.__doc__
        if not doc:  # python -OO strips docstrings
            return obj
        for name, text in parts.items():
            token = "{" + name + "}"
            if token not in doc:
                raise ValueError(f"{obj.__qualname__}'s docstring has no {token} placeholder.")
            doc = re.sub(r"^([ \t]*)" + re.escape(token),
                         lambda m: m.group(1) + _reindent(text, len(m.group(1))), doc,
                         flags=re.M)
            doc = doc.replace(token, text)  # a placeholder within a line
        obj.__doc__ = doc
        return obj

    return decorate


# The fitted attributes every RetrievalEstimator sets in fit, for docstrings
# (spliced in with skxmr.utils._docstrings.fill_doc as ``{attrs}``).
BANK_ATTRS_DOC = """query_bank_ : ndarray of shape (n_bank_queries, d)
        Unique, L2-normalised query halves of the training pairs.
    gallery_bank_ : ndarray of shape (n_bank_gallery, d)
        Unique, L2-normalised gallery halves of the training pairs.
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``."""


# Where the API pages live (one page per public name, Sphinx autosummary's
# ``generated/<module>.<name>.html``); the packages with a section of their
# own on the API page, every other name is documented at the top level.
DOC_URL = "https://skxmr.readthedocs.io/en/{version}/"
API_PACKAGES = ("skxmr.hubness", "skxmr.graph", "skxmr.calibration", "skxmr.alignment")


def api_page(cls):
    """The URL of ``cls``'s API page (``latest`` for development versions)."""
    from .. import __version__

    module = ".".join(itertools.takewhile(lambda part: not part.startswith("_"),
                                          cls.__module__.split(".")))
    module = module if module in API_PACKAGES else "skxmr"
    version = "latest" if "dev" in __version__ else __version__
    return f"{DOC_URL.format(version=version)}generated/{module}.{cls.__name__}.html"


class DocLinkMixin:
    """The HTML representation links each estimator to its API page.

    scikit-learn's estimator diagram (``_repr_html_``) reads these three
    attributes: the root module whose estimators get a link, and a template
    filled by the parameter generator.
    """

    _doc_link_module = "skxmr"
    _doc_link_template = "{url}"

    def _doc_link_url_param_generator(self):
        return {"url": api_page(type(self))}
