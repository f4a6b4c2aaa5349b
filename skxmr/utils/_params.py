"""The parameter vocabulary: each shared parameter's constraint and doc block, defined once.

An estimator builds its ``_parameter_constraints`` from the lists here
(``"temperature": TEMPERATURE``...) and splices the numpydoc entries into
its docstring with :func:`skxmr.utils._docstrings.fill_doc` and
:func:`param_doc`, which adds the estimator's default and, where the
method needs one, a sentence of its own. Renamed parameters go through
:func:`resolve_renamed` (estimators) and :func:`renamed_argument`
(functions): the old name works, with a ``FutureWarning``, for one release.
"""

import functools
import numbers
import textwrap
import warnings

import numpy as np

from ._compat import Hidden, Interval, StrOptions

from .._pairs import DIRECTIONS


class Number(Interval):
    """scikit-learn's ``Interval`` refusing bools (``True`` is an ``int``).

    sklearn's ``Interval`` already refuses nan and, where a bound is
    finite, inf.
    """

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)

    def __str__(self):
        if self.left is None and self.right is None:
            return "an int" if self.type is numbers.Integral else "a float"
        return super().__str__()


#: Smallest temperature: below ``1/max(float64)`` (about 5.6e-309), ``1/τ``
#: is not finite and every scaled score would be inf.
MIN_TEMPERATURE = 1.0 / np.finfo(np.float64).max
#: Largest temperature: the potentials are about ``τ·log(n_bank)`` and float64
#: keeps only ``τ·1e-16`` of their O(1) differences (at τ = 1e14-1e15 the
#: top-1 of IS, SN and DBSN was wrong in up to every row, at 1e308 NaN); at
#: 1e6 every method is within 1e-6 of its τ → ∞ limit (the cosine minus the
#: gallery item's mean bank similarity), so no useful value is refused.
MAX_TEMPERATURE = 1e6

TEMPERATURE = [Number(numbers.Real, MIN_TEMPERATURE, MAX_TEMPERATURE, closed="both")]
STRENGTH = [Number(numbers.Real, 0, 1, closed="both")]
#: The strengths every registered grid searches: 0 (plain cosine) lets a
#: tuned method choose "none of it", 1 is the published method.
STRENGTH_GRID = [0.0, 0.25, 0.5, 0.75, 1.0]
N_JOBS = [Number(numbers.Integral, None, None, closed="neither"), None]
WORKING_MEMORY = [Number(numbers.Real, 0, None, closed="neither"), None]
N_NEIGHBORS = [Number(numbers.Integral, 1, None, closed="left")]
#: ``"auto"``: a setting the fitted banks determine (``skxmr.hubness._defaults``);
#: the value in use is the fitted attribute ``<parameter>_``.
AUTO = StrOptions({"auto"})
TEMPERATURE_OR_AUTO = [*TEMPERATURE, AUTO]
N_NEIGHBORS_OR_AUTO = [*N_NEIGHBORS, AUTO]
N_QUERY_FEATURES = [Number(numbers.Integral, 1, None, closed="left"), None]
DIRECTION = [StrOptions(set(DIRECTIONS))]
ALLOW_TF32 = ["boolean"]

PAIR_CONSTRAINTS = {"n_query_features": N_QUERY_FEATURES, "direction": DIRECTION}

# name -> (type, the shared description)
_DOCS = {
    "temperature": (
        "float",
        "``τ``, in ``[1/max(float64), 1e6]`` (about ``5.6e-309`` to "
        "``1e6``; bools are refused): below, ``1/τ`` is not finite; above, "
        "float64 keeps only ``τ·1e-16`` of the potentials' differences, and "
        "every method is within 1e-6 of its τ → ∞ limit at 1e6.",
    ),
    "strength": (
        "float in [0, 1]",
        "``α``: 0 gives plain cosine similarity, 1 the published method, "
        "values in between interpolate.",
    ),
    "n_jobs": (
        "int",
        "joblib workers for the memory-bounded chunked passes (bank "
        "statistics, scoring); ``None`` follows the active joblib backend "
        "(one worker outside ``joblib.parallel_backend``).",
    ),
    "working_memory": (
        "float",
        "MiB budget for the temporary arrays of one chunk (per worker; device "
        "memory for GPU tensors); every chunked pass, scoring included, "
        "obeys it, and a budget smaller than one row raises ``ValueError``. "
        "``None``: chunks of at most ``sklearn.get_config()[\"working_memory\"]`` "
        "(smaller where larger ones are no faster), and a whole intermediate "
        "matrix a method can keep (the Sinkhorn kernel) is kept when it fits "
        "in half the available memory (see :doc:`/scaling`).",
    ),
    "allow_tf32": (
        "bool",
        "Let the float32 similarity products of CUDA torch tensors use TF32 "
        "(the tensor cores' format: a 10-bit mantissa, rounding each input "
        "to about 5e-4 relative, with float32 sums). A similarity of "
        "unit-norm embeddings then moves by up to about 1e-3 (typically "
        "1e-5 to 1e-4 at d = 512), against about 1e-7 in float32, and the "
        "potentials by about as much (each iteration can add at most twice "
        "it; see :doc:`/scaling`), so the scores of items closer than that "
        "may swap. It sets torch's process-wide TF32 switch for "
        "the duration of the products (other threads' products in that "
        "window too). A no-op on the CPU and on numpy; off by default.",
    ),
    "n_neighbors": ("int", "Number of nearest neighbours ``k``."),
    "n_query_features": (
        "int", "Width of the query half of ``X``; ``None`` means half the columns.",
    ),
    "direction": (
        '{"q2g", "g2q"}',
        '``"q2g"`` ranks (or transforms) the right half for each left half; '
        '``"g2q"`` the reverse (the banks swap roles accordingly).',
    ),
}


def param_doc(name, default=None, note="", *, auto=False):
    """The numpydoc entry of shared parameter ``name``, for ``fill_doc``.

    Parameters
    ----------
    name : str
        A key of the vocabulary (``"temperature"``, ``"strength"``, ...).
    default : object, default=None
        The estimator's default (strings are quoted).
    note : str, default=""
        A sentence the method adds after the shared description.
    auto : bool, default=False
        The parameter also takes ``"auto"`` (its type says so).

    Returns
    -------
    doc : str
        The entry, indented for a parameter section at four spaces.

    Examples
    --------
    >>> from skxmr.utils._params import param_doc
    >>> print(param_doc("n_neighbors", 10))
    n_neighbors : int, default=10
            Number of nearest neighbours ``k``.
    """
    kind, text = _DOCS[name]
    kind = f'{kind} or "auto"' if auto else kind
    shown = f'"{default}"' if isinstance(default, str) else default
    body = textwrap.fill(f"{text} {note}".strip(), width=79, initial_indent=" " * 8,
                         subsequent_indent=" " * 8, break_on_hyphens=False)
    return f"{name} : {kind}, default={shown}\n{body}"


def param_docs(*names, **defaults):
    """``param_doc`` of several parameters, joined into one block."""
    return "\n    ".join(param_doc(n, defaults.get(n)) for n in names)


#: The parameters every estimator on paired rows lists last.
PAIR_DOC = param_docs("n_query_features", "direction", direction="q2g")
#: The same, then ``n_jobs``.
PAIR_JOBS_DOC = param_docs("n_query_features", "direction", "n_jobs", direction="q2g")

# ------------------------------------------------------------ renames
#: Default of a renamed parameter's old name: not given.
DEPRECATED = "deprecated"


def deprecated(constraints):
    """Constraints of an old parameter name: the new one's, or ``"deprecated"``."""
    return [*constraints, Hidden(StrOptions({DEPRECATED}))]


def renamed_doc(old, new):
    """The numpydoc entry of a renamed parameter's old name."""
    return (f'{old} : deprecated, default="deprecated"\n'
            f"        Renamed ``{new}``; the old name works, with a\n"
            "        ``FutureWarning``, until the next release.")


def _warn_renamed(old, new, where, stacklevel=4):
    warnings.warn(
        f"The {old!r} parameter of {where} was renamed {new!r}; the old name "
        "will be removed in the next release.",
        FutureWarning,
        stacklevel=stacklevel,
    )


def renamed_argument(old_value, new_value, old, new, where):
    """A function's argument ``new``, or its old name's value (with a warning)."""
    if isinstance(old_value, str) and old_value == DEPRECATED:
        return new_value
    _warn_renamed(old, new, where)
    return old_value


def resolve_renamed(estimator):
    """Resolve ``estimator._renamed_params`` (``{old: new}``) after validation.

    An old name that was given warns (``FutureWarning``) and its value is
    used for the new one; :func:`value_of` reads the result. The parameters
    themselves are left as given (``get_params`` and ``clone`` round-trip).
    """
    values = {}
    for old, new in getattr(estimator, "_renamed_params", {}).items():
        given = getattr(estimator, old)
        if not (isinstance(given, str) and given == DEPRECATED):
            _warn_renamed(old, new, type(estimator).__name__, stacklevel=5)
            values[new] = given
    estimator._renamed_values = values


def value_of(estimator, name):
    """The value of parameter ``name``, or of its old name where that was given."""
    return getattr(estimator, "_renamed_values", {}).get(name, getattr(estimator, name))


def keyword_only(*old_positional):
    """Decorate an ``__init__`` whose parameters after the first became keyword-only.

    ``old_positional`` names the parameters that used to follow the first,
    in their former order: passed positionally they still work, with a
    ``FutureWarning``, until the next release. The signature seen by
    ``inspect.signature`` (and so by ``get_params``) is the new one.
    """

    def decorate(init):
        @functools.wraps(init)
        def wrapper(self, *args, **kwargs):
            if len(args) > 1:
                extra = args[1:]
                if len(extra) > len(old_positional):
                    raise TypeError(
                        f"{type(self).__name__}() takes at most {len(old_positional) + 1} "
                        f"positional arguments ({len(args)} given).")
                names = old_positional[: len(extra)]
                warnings.warn(
                    f"Pass {', '.join(names)} to {type(self).__name__} as keyword "
                    "arguments; positional use will be an error in the next release.",
                    FutureWarning,
                    stacklevel=2,
                )
                clash = set(names) & set(kwargs)
                if clash:
                    raise TypeError(f"{type(self).__name__}() got multiple values for "
                                    f"{sorted(clash)}.")
                kwargs.update(zip(names, extra))
                args = args[:1]
            return init(self, *args, **kwargs)

        return wrapper

    return decorate
