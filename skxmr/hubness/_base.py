"""The hubness family's base: ``strength`` and ``n_jobs``, their constraints,
their docs, and the docstring pieces every hubness estimator shares.

Adding a method is one module (a :class:`HubnessEstimator` subclass with its
``__init__``, hooks and ``register_method`` call), an import in
:mod:`skxmr.hubness` and its test.
"""

from .._base import RetrievalEstimator, candidate_similarities
from ..utils._backend import get_backend
from ..utils._docstrings import BANK_ATTRS_DOC, fill_doc
from ..utils._params import N_JOBS, PAIR_JOBS_DOC, STRENGTH, param_doc

#: How the methods whose potentials are subtracted (IS, QB-Norm, DBNorm, SN,
#: DBSN) keep float32 exact.
OFFSETS_DOC = """Offsets larger than 8 in magnitude (large temperatures: ``h`` grows like
    ``τ log n_bank``) are applied relative to their midrange ``c``, a
    constant per gallery (and per factor), so that float32 keeps the
    differences: the scores are then ``S - α(h - c)``, with every row's
    ranking and differences unchanged (``skxmr.utils._math.relative_offsets``).
    float32 inputs give float32 scores end to end."""


def hubness_doc(strength="", **parts):
    """``fill_doc`` with the family's blocks.

    Fills ``{strength}`` (the shared entry, with the method's ``strength``
    note), ``{common}`` (``n_query_features``, ``direction``, ``n_jobs``),
    ``{attrs}`` (the fitted banks) and any other ``parts``.
    """
    return fill_doc(strength=param_doc("strength", 1.0, strength), common=PAIR_JOBS_DOC,
                    attrs=BANK_ATTRS_DOC, **parts)


class HubnessEstimator(RetrievalEstimator):
    """Base of the hubness estimators: a re-scoring ``S - α·Δ``, ``α = strength``.

    It owns the constraints of ``strength`` and ``n_jobs`` (beside the pair
    parameters) and stores them; scikit-learn needs each estimator's
    ``__init__`` to list its parameters, so a subclass lists them (its own
    first, then ``strength`` and the common ones, keyword-only after the
    first) and passes the shared ones to ``super().__init__``. Every method
    runs on POT's backend (``_array_api``).
    """

    _array_api = True
    _parameter_constraints = {
        **RetrievalEstimator._parameter_constraints,
        "strength": STRENGTH,
        "n_jobs": N_JOBS,
    }

    #: The parameters that take ``"auto"``: ``{name: rule(query_bank, gallery_bank)}``
    #: (``skxmr.hubness._defaults``). ``fit`` sets ``<name>_`` to the value in use.
    _auto_rules = {}

    def __init__(self, *, strength=1.0, n_query_features=None, direction="q2g", n_jobs=None):
        self.strength = strength
        self.n_query_features = n_query_features
        self.direction = direction
        self.n_jobs = n_jobs

    def _fit_banks(self, query_bank, gallery_bank):
        """Set ``<name>_`` of every ``"auto"``-able parameter (the rule's value or the given one)."""
        for name, rule in self._auto_rules.items():
            value = getattr(self, name)
            if isinstance(value, str):  # "auto", the only string the constraints allow
                value = rule(query_bank, gallery_bank)
            setattr(self, f"{name}_", value)


class ItemwiseScores:
    """Scores computed from the cosines, the banks and per-item statistics.

    A method whose score of ``(q, g)`` reads the cosine ``S(q, g)``, terms
    of the query computed from the fitted banks, and ``g``'s entries of the
    gallery state implements ``_from_similarities(queries, S, items)``, with
    ``items`` broadcasting against ``S``: the full state for a gallery
    (``S``: queries × gallery) or its rows gathered at each query's
    candidates (``S``: queries × candidates). The same code then scores
    both, and approximate serving re-scores cosine candidates exactly.
    Listed before :class:`HubnessEstimator` among the bases.
    """

    _candidate_search = "cosine"

    def _score_queries(self, queries, gallery, state):
        S = get_backend(queries=queries).dot(queries, gallery.T)
        return self._from_similarities(queries, S, state)

    def _score_candidates(self, queries, gallery, state, ids):
        S = candidate_similarities(queries, gallery, ids)
        return self._from_similarities(queries, S, {key: v[ids] for key, v in state.items()})
