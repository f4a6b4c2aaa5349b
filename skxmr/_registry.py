"""Registry of the methods the benchmark compares.

A method module registers its row once, at import time, with the grid that
``skxmr benchmark --tune`` searches on the bank pairs::

    register_method(
        "SN",
        lambda direction="q2g": SinkhornNormalizer(direction=direction),
        family="hubness",
        description="Sinkhorn normalisation on the query bank",
        grid={"temperature": [0.01, 0.02, 0.05, 0.1]},
    )

and ``python -m skxmr benchmark`` shows every registered method without
its table code being edited. The factory returns an unfitted estimator
(or Pipeline) with ``fit(X)`` and ``decision_function(X)`` on paired rows;
the grid's keys are parameters of that object as ``set_params`` takes them
(``step__param`` for a Pipeline step).
"""

from collections.abc import Mapping, Sequence

_METHODS = {}


def _check_grid(name, grid):
    """The grid as GridSearchCV's ``param_grid`` (a list of dicts of lists)."""
    if grid is None:
        return None
    grids = [grid] if isinstance(grid, Mapping) else grid
    if isinstance(grids, (str, bytes)) or not isinstance(grids, Sequence) or not grids:
        raise TypeError(
            f"grid of {name!r} must be a dict {{parameter: [values]}} or a "
            f"non-empty list of such dicts, got {grid!r}."
        )
    checked = []
    for g in grids:
        if not isinstance(g, Mapping) or not g:
            raise TypeError(f"grid of {name!r}: each grid must be a non-empty dict, got {g!r}.")
        entry = {}
        for key, values in g.items():
            if not isinstance(key, str):
                raise TypeError(f"grid of {name!r}: parameter names are strings, got {key!r}.")
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise TypeError(
                    f"grid of {name!r}: {key!r} needs a non-empty list of values, got {values!r}."
                )
            entry[key] = list(values)
        checked.append(entry)
    return checked


def register_method(name, factory, *, family, description="", grid=None, transductive=False):
    """Register a benchmark row.

    Parameters
    ----------
    name : str
        Row label, unique.
    factory : callable
        ``factory(direction="q2g") -> estimator``; called once per direction
        and benchmark run. It receives ``direction`` (``"q2g"`` or
        ``"g2q"``) as a keyword.
    family : str
        Group used to order the table ("baseline", "hubness", "graph", ...).
    description : str, default=""
        One line for ``--list``.
    grid : dict or list of dict, default=None
        What ``skxmr benchmark --tune`` searches with ``GridSearchCV`` on the
        bank pairs: ``{parameter: [values, ...]}`` with the parameter names
        of the factory's estimator as ``set_params`` takes them
        (``"invgc__r_query"`` for a step of a Pipeline), or a list of such dicts
        (as ``param_grid``). Include the default value, so that tuning can
        keep it. ``None``: the method has nothing to tune and runs at its
        defaults. Keep grids small: every point costs ``--cv`` fits in
        each direction.

    transductive : bool, default=False
        The method re-scores with statistics of the whole batch of test
        queries at once (e.g. dual softmax) instead of one query at a time;
        ``skxmr benchmark --list`` marks it.

    Raises
    ------
    TypeError
        ``name`` or ``family`` is not a non-empty string, ``description``
        not a string, ``factory`` not callable, or ``grid`` not a dict (or
        list of dicts) of non-empty value lists.
    ValueError
        ``name`` is already registered.

    Examples
    --------
    >>> from skxmr import CosineSimilarity, register_method, registered_methods
    >>> from skxmr import _registry
    >>> register_method("Cosine (doc)", lambda direction="q2g": CosineSimilarity(
    ...     direction=direction), family="baseline", grid=None)
    >>> registered_methods()["Cosine (doc)"]["grid"] is None
    True
    >>> del _registry._METHODS["Cosine (doc)"]
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
    for arg, value, empty_ok in (("family", family, False), ("description", description, True)):
        if not isinstance(value, str) or not (value or empty_ok):
            raise TypeError(
                f"{arg} of {name!r} must be a {'' if empty_ok else 'non-empty '}string "
                f"(it is printed by skxmr benchmark --list), got {value!r}."
            )
    grid = _check_grid(name, grid)
    if name in _METHODS:
        raise ValueError(f"A benchmark method named {name!r} is already registered.")
    _METHODS[name] = {
        "factory": factory, "family": family, "description": description, "grid": grid,
        "transductive": bool(transductive),
    }


def registered_methods():
    """A copy of the registry: ``{name: {"factory", "family", "description", "grid", "transductive"}}``.

    Examples
    --------
    >>> from skxmr import registered_methods
    >>> methods = registered_methods()
    >>> methods["Cosine"]["family"], methods["Cosine"]["grid"]
    ('baseline', None)
    >>> methods["SN"]["grid"]
    [{'temperature': ['auto', 0.005, 0.01, 0.02, 0.05], 'strength': [0.0, 0.25, 0.5, 0.75, 1.0]}]
    """
    return {name: dict(entry) for name, entry in _METHODS.items()}


def format_grid(grid):
    """A grid on one line, for ``--list``: ``temperature 0.01|0.02; k 5|10``."""
    if not grid:
        return "(defaults only)"
    return " or ".join(
        "; ".join(f"{key} {'|'.join(map(str, values))}" for key, values in g.items())
        for g in grid
    )
