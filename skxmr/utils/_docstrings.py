"""The one docstring-substitution mechanism of the package.

Shared parameter blocks are written once and spliced into the docstrings
that use them with :func:`fill_doc`. A docstring built by string
concatenation (``\"\"\"...\"\"\" + PARAMS``) is an expression, not a docstring:
its ``__doc__`` is ``None`` at run time. Under ``python -OO`` every
``__doc__`` is ``None``; the decorator then leaves the object alone.
"""


def fill_doc(**parts):
    """Replace each ``{name}`` in the decorated object's docstring by ``parts[name]``.

    Only the named placeholders are touched (docstrings also hold literal
    braces, e.g. ``{"auto", "pca"}``); a placeholder missing from the
    docstring raises ``ValueError`` at import, so a typo cannot drop a block.

    Parameters
    ----------
    **parts : str
        The text of each placeholder, indented as the docstring needs it.

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
            doc = doc.replace(token, text)
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
