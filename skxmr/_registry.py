"""Registry of the methods the benchmark compares.

A method module registers its row once, at import time::

    register_method("SN", lambda: SinkhornNormalizer(), family="hubness")

and ``python -m skxmr benchmark`` shows every registered method without
its table code being edited. The factory returns an unfitted estimator
(or Pipeline) with ``fit(X)`` and ``decision_function(X)`` on paired rows.
"""

_METHODS = {}


def register_method(name, factory, *, family, description=""):
    """Register a benchmark row.

    Parameters
    ----------
    name : str
        Row label, unique.
    factory : callable
        ``factory(**options) -> estimator``; called once per benchmark run.
        It receives ``direction`` (``"q2g"`` or ``"g2q"``) as a keyword.
    family : str
        Group used to order the table ("baseline", "hubness", "graph", ...).
    description : str, default=""
        One line for ``--list``.

    Examples
    --------
    >>> from skxmr import CosineSimilarity, register_method
    >>> register_method("Cosine", lambda direction="q2g": CosineSimilarity(direction=direction),
    ...                 family="baseline")
    Traceback (most recent call last):
    ...
    ValueError: A benchmark method named 'Cosine' is already registered.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}.")
    if not callable(factory):
        raise TypeError(
            f"factory of {name!r} must be callable (factory(direction=...) -> "
            f"estimator), got {type(factory).__name__} {factory!r}."
        )
    if name in _METHODS:
        raise ValueError(f"A benchmark method named {name!r} is already registered.")
    _METHODS[name] = {"factory": factory, "family": family, "description": description}


def registered_methods():
    """A copy of the registry: ``{name: {"factory", "family", "description"}}``.

    Examples
    --------
    >>> from skxmr import registered_methods
    >>> methods = registered_methods()
    >>> methods["Cosine"]["family"]
    'baseline'
    """
    return {name: dict(entry) for name, entry in _METHODS.items()}
