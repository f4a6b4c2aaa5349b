"""Base classes shared by every estimator of the package.

Two families live on paired rows ``X = hstack([Q, G])`` (see :mod:`skxmr._pairs`):

* :class:`RetrievalEstimator` -- *score estimators*. ``fit(X)`` keeps the
  unique (L2-normalised) query and gallery halves as banks;
  ``decision_function(X)`` returns the normalised score matrix of the unique
  items of the test pairs; ``score(X, y)`` is R@1. A subclass implements two
  hooks, so that the estimator, the two-view :meth:`~RetrievalEstimator.score_matrix`
  and the serving :class:`GalleryIndex` share one code path:

  - ``_prepare_gallery(gallery) -> dict``: every per-gallery statistic
    (e.g. potentials ``h(g)``) computed once for a gallery;
  - ``_score_queries(queries, state) -> ndarray``: scores of a chunk of
    query rows against that gallery.

  Transductive methods (whose gallery statistics need the test queries)
  set ``_transductive = True``: their ``_score_queries`` then receives the
  whole batch of test queries at once, never a chunk.

  The class is abstract: a subclass that does not implement
  ``_score_queries`` cannot be instantiated.

* :class:`PairedTransformer` -- *embedding transformers* that fit on banks
  and return ``X`` with one half transformed (InvGC, alignment).

Both carry ``n_query_features`` (where the halves split) and ``direction``
(``"q2g"``: left half queries the right half; ``"g2q"``: the reverse), which
subclasses list in their ``__init__`` like any other parameter.
"""

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, validate_data

from .utils._backend import astype, check_same_namespace, get_backend, host_array, is_numpy
from .utils._chunking import concat_rows, map_row_chunks
from .utils._docstrings import DocLinkMixin
from .metrics.ranking import recall_at_k
from ._pairs import (
    check_y_layout,
    resolve_split,
    split_pairs,
    warn_split,
    warn_unpaired,
)
from ._serving import GalleryIndex
from .utils._math import relative_offsets
from .utils._compat import check_feature_names_in
from .utils._params import PAIR_CONSTRAINTS, resolve_renamed
from .utils._validation import (
    FLOAT_DTYPES,
    check_bank,
    check_matrix,
    check_no_bool_numbers,
    check_same_width,
    l2_normalize,
    namespace_dtypes,
    result_dtype,
    short_array_message,
)


class LinearRowScorer:
    """``score(Q) = Q @ GT - offsets`` in ``dtype`` (the linear-form methods).

    The product is written in the output dtype and the offsets subtracted
    in place: no temporary the size of the scores.
    """

    def __init__(self, GT, offsets, dtype):
        self.GT, self.offsets, self.dtype = GT, offsets, dtype

    def __call__(self, Q):
        S = get_backend(gallery=self.GT).dot(astype(Q, self.dtype), self.GT)
        if self.offsets is not None:
            S -= self.offsets
        return S


class MethodRowScorer:
    """``score(Q)``: the estimator's own ``_score_queries`` against a
    prepared gallery, in ``dtype``."""

    def __init__(self, estimator, gallery, state, dtype):
        self.estimator, self.gallery, self.state, self.dtype = estimator, gallery, state, dtype

    def __call__(self, Q):
        S = self.estimator._score_queries(astype(Q, self.dtype), self.gallery, self.state)
        return astype(S, self.dtype)


_HALVES = ("X (query half)", "X (gallery half)")


def _check_nonzero_halves(items):
    """Raise if a half of some row of ``X`` is all zeros, naming that row of X.

    The unique items are de-duplicated, so their own indices mean nothing
    to the caller: the message gives the first row of ``X`` holding one.
    """
    for A, index, name in ((items.sources, items.source_index, _HALVES[0]),
                           (items.targets, items.target_index, _HALVES[1])):
        nx = get_backend(X=A)
        nonzero = nx.to_numpy(nx.sum(astype(A != 0, "float64"), axis=1)) > 0
        rows = np.flatnonzero(~nonzero[np.asarray(index)])
        if rows.size:
            raise ValueError(
                f"{name} has {rows.size} zero-norm row(s) (first: row {rows[0]} of X); "
                "cosine similarity is undefined for them."
            )


def _check_banks(items):
    """Normalised banks from the unique items of training pairs."""
    if items.sources.shape[1] != items.targets.shape[1]:
        raise ValueError(
            f"The halves of X have {items.sources.shape[1]} and "
            f"{items.targets.shape[1]} features; similarity needs one shared "
            "space (put an alignment step such as CauchySchwarzAlignment first)."
        )
    items.require_banks()
    _check_nonzero_halves(items)
    return l2_normalize(items.sources, _HALVES[0]), l2_normalize(items.targets, _HALVES[1])


def check_two_view_widths(**named):
    """The matrices of a two-view function, validated, each compared by
    name with ``queries`` (so that a width error names the arguments the
    caller passed, never "the fitted banks"). None entries stay None."""
    checked = {name: None if A is None else check_matrix(A, name) for name, A in named.items()}
    first = next(iter(checked))
    for name, A in checked.items():
        if A is not None:
            check_same_width(checked[first], A, first, name)
    return tuple(checked.values())


class StrictParamsMixin(DocLinkMixin):
    """``_validate_params`` that also refuses bools for numeric parameters
    and resolves renamed ones (``_renamed_params``, see
    :func:`skxmr.utils._params.resolve_renamed`); and, for every estimator of
    the package, the HTML repr's link to its API page."""

    def _validate_params(self):
        super()._validate_params()
        check_no_bool_numbers(self)
        resolve_renamed(self)


class _PairedRowsMixin(StrictParamsMixin):
    """Validation and splitting of paired rows, for both families."""

    def _validate_pairs(self, X, *, reset):
        if not get_tags(self).array_api_support:
            X = host_array(X)  # computed in numpy, also under array API dispatch
        X, dtype = namespace_dtypes(X, FLOAT_DTYPES)
        try:
            # After fit, the width seen in fit is checked (validate_data's
            # n_features_in_ message) before any split of the halves.
            return validate_data(
                self,
                X,
                dtype=dtype,
                ensure_min_samples=2 if reset else 1,
                ensure_min_features=2 if reset else 1,
                reset=reset,
            )
        except ValueError as exc:
            raise ValueError(short_array_message(str(exc), "X", X)) from None

    def _check_namespace(self, X, method):
        """Under array API dispatch, ``X`` must come in the namespace and on
        the device of the fitted banks (scikit-learn's message); estimators
        computing in numpy take any namespace (converted)."""
        if get_tags(self).array_api_support:
            check_same_namespace(X, self, "query_bank_", method)

    def _check_layout(self, X, *, shared_space):
        """Warn about training pairs laid out wrongly (see :mod:`skxmr._pairs`):
        halves split at a column ``pair`` would not have produced, and (when
        both halves share a space) matched rows no more similar than random."""
        try:
            cut = resolve_split(X.shape[1], getattr(self, "n_query_features", None))
        except (TypeError, ValueError):
            return  # not two halves (e.g. M views); the split is validated where used
        warn_split(X, cut, getattr(self, "n_query_features", None))
        if shared_space:
            warn_unpaired(X, cut)

    def _split(self, X, y=None):
        return split_pairs(
            X, y, n_query_features=self.n_query_features, direction=self.direction
        )


class RetrievalEstimator(_PairedRowsMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of score estimators on paired rows (see module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import RetrievalEstimator, pair
    >>> class Dot(RetrievalEstimator):
    ...     def __init__(self, n_query_features=None, direction="q2g"):
    ...         self.n_query_features = n_query_features
    ...         self.direction = direction
    ...     def _score_queries(self, queries, gallery, state):
    ...         return queries @ gallery.T
    >>> X = pair(np.eye(3), np.eye(3))
    >>> Dot().fit(X).decision_function(X)
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]])
    """

    _parameter_constraints = dict(PAIR_CONSTRAINTS)
    _transductive = False
    # True for methods whose arithmetic runs on POT's backend, so that
    # torch tensors stay tensors under array API dispatch (scikit-learn's
    # ``array_api_support`` tag, which runs its check_array_api_input).
    _array_api = False
    # True when a gallery item's statistics do not depend on the other
    # gallery items, so that GalleryIndex.add can extend a state in place.
    _separable_gallery = True

    # ----------------------------------------------------------- hooks
    def _fit_banks(self, query_bank, gallery_bank):
        """Precompute bank statistics after fit (default: nothing)."""

    def _prepare_gallery(self, gallery):
        """Per-gallery statistics as a dict of arrays (first axis: items)."""
        return {}

    @abstractmethod
    def _score_queries(self, queries, gallery, state):
        """Scores of ``queries`` (a chunk) against ``gallery``: (n_q, n_g)."""

    def _linear_form(self, gallery, state):
        """``(scale, offsets)`` when ``score = scale * Q @ G.T - offsets``
        (``offsets`` None: none).

        Methods of that form (a per-gallery offset, e.g. potentials ``h(g)``)
        are scored by one shared path (the product written in the output
        dtype, the offsets subtracted in place, relative to a reference
        where large, see :func:`relative_offsets`) and support approximate
        candidate generation; others return None and implement
        ``_score_queries``.
        """
        return None

    # Where GalleryIndex(approximate=True) takes its candidates: "linear"
    # searches under the method's own linear form (no form: no candidate
    # path); "cosine" searches under plain cosine, for methods that re-score
    # a candidate set exactly in ``_score_candidates`` although their scores
    # are not of the linear form (a per-query term, a gate, a non-linear f).
    _candidate_search = "linear"

    def _score_candidates(self, queries, gallery, state, ids):
        """Exact scores of each query row against its own candidate items.

        ``queries`` (n, d): normalised rows in the output dtype; ``ids``
        (n, c): gallery rows (each row's candidates); returns (n, c), equal
        (to rounding) to the entries ``score_matrix(queries, gallery)[i,
        ids[i]]``. Per-query terms come from the banks and, where a method
        needs the whole row (QB-Norm's top-1 gate), from the candidates.
        Default: the linear form, ``scale * q.g - offsets[ids]`` (the
        offsets relative, as :meth:`_row_scorer` subtracts them).
        """
        form = self._linear_form(gallery, state)
        if form is None:
            raise ValueError(f"{type(self).__name__} cannot score a candidate set.")
        scale, offsets = form
        S = candidate_similarities(queries, gallery, ids)
        if scale != 1:
            S *= scale
        if offsets is not None:
            S -= astype(relative_offsets(offsets), S.dtype)[ids]
        return S

    def _linear_scores(self, queries, gallery, state):
        """``_score_queries`` of the linear-form methods: the shared path."""
        return self._row_scorer(gallery, state, result_dtype(queries, gallery))(queries)

    def _row_scorer(self, gallery, state, dtype):
        """``score(Q_chunk) -> (n, n_gallery)`` in ``dtype``: the per-chunk
        work shared by :meth:`score_matrix` and :class:`GalleryIndex`.

        A module-level callable object, not a closure: it pickles (a
        :class:`GalleryIndex` that has answered queries can be saved) and
        can be shipped to worker processes."""
        G = astype(gallery, dtype)
        form = self._linear_form(gallery, state)
        if form is None:
            return MethodRowScorer(self, G, state, dtype)
        scale, offsets = form
        off = None if offsets is None else astype(relative_offsets(offsets), dtype)
        return LinearRowScorer(G.T * scale if scale != 1 else G.T, off, dtype)

    # ------------------------------------------------------- estimator
    def fit(self, X, y=None):
        """Keep the unique halves of the training pairs as banks.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_features)
            Training (bank) pairs, built with :func:`skxmr.pair`.
        y : array-like of shape (n_pairs,), default=None
            Ignored by the normalisers (present for API consistency).

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._validate_params()
        check_y_layout(X, y, "fit")
        X = self._validate_pairs(X, reset=True)
        self._check_layout(X, shared_space=True)
        self.query_bank_, self.gallery_bank_ = _check_banks(self._split(X, y))
        self._fit_banks(self.query_bank_, self.gallery_bank_)
        return self

    def _fit_explicit_banks(self, query_bank, gallery_bank=None):
        """Set the estimator up on explicit bank matrices.

        The path of the two-view functions (``*_scores``, ``*_normalize``):
        the same validation and hooks as :meth:`fit`, without paired rows.
        ``gallery_bank`` may be None for methods that use only the query bank.
        """
        self._validate_params()
        Bq = check_bank(query_bank, "query_bank")
        self.query_bank_ = l2_normalize(Bq, "query_bank")
        self.gallery_bank_ = None
        if gallery_bank is not None:
            Bg = check_bank(gallery_bank, "gallery_bank", n_features=Bq.shape[1])
            get_backend(query_bank=Bq, gallery_bank=Bg)
            self.gallery_bank_ = l2_normalize(Bg, "gallery_bank")
        self._fit_banks(self.query_bank_, self.gallery_bank_)
        return self

    def _two_view_scores(self, queries, gallery, query_bank, gallery_bank=None):
        """The two-view functions' path: fit on explicit banks, then score.

        The scores are float32 only if every input (banks included) is.
        """
        queries, gallery, query_bank, gallery_bank = check_two_view_widths(
            queries=queries, gallery=gallery, query_bank=query_bank, gallery_bank=gallery_bank)
        self._fit_explicit_banks(query_bank, gallery_bank)
        Q, G = self._check_items(queries, "queries"), self._check_items(gallery, "gallery")
        banks = [b for b in (self.query_bank_, self.gallery_bank_) if b is not None]
        return self._score_matrix(Q, G, result_dtype(Q, G, *banks))

    def score_pairs(self, X, y=None):
        """Scores and relevance of test pairs: the one way pairs are scored.

        :meth:`decision_function`, :meth:`score` and the retrieval scorers
        (:func:`skxmr.metrics.make_retrieval_scorer`) all go through it: ``X``
        is validated, split once into unique items (with ``n_query_features``
        and ``direction``) and scored once.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_features)
            Test pairs. Duplicate halves are one item.
        y : array-like of shape (n_pairs,), default=None
            Labels for category-level relevance; pairs define it otherwise.

        Returns
        -------
        scores : ndarray of shape (n_unique_queries, n_unique_gallery)
            As :meth:`decision_function`.
        items : skxmr.PairedItems
            The unique items and their ``relevance``.
        """
        check_is_fitted(self)
        check_y_layout(X, y, "score")
        X = self._validate_pairs(X, reset=False)
        items = self._split(X, y)
        _check_nonzero_halves(items)
        return self.score_matrix(items.sources, items.targets), items

    def decision_function(self, X):
        """Normalised scores between the unique items of test pairs.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_features)
            Test pairs. Duplicate halves are one item.

        Returns
        -------
        scores : ndarray of shape (n_unique_queries, n_unique_gallery)
            Rows: unique items of the querying side (the left half for
            ``direction="q2g"``, in order of first appearance); columns: the
            unique items of the other side. float32 for float32 input.
        """
        self._check_namespace(X, "decision_function")
        return self.score_pairs(X)[0]

    def score(self, X, y=None):
        """Recall@1 (in %) of ranking the test pairs' gallery for each query.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_features)
            Test pairs.
        y : array-like of shape (n_pairs,), default=None
            Labels for category-level relevance; pairs define it otherwise.

        Returns
        -------
        score : float
        """
        scores, items = self.score_pairs(X, y)
        return float(recall_at_k(scores, items.relevance, k=1))  # ranks on the scores' device

    # -------------------------------------------------------- two-view
    def _check_items(self, A, name):
        """Validate items to score against the fitted banks (hook).

        Default: finite 2-D, the banks' width, L2-normalised (cosine).
        """
        check_is_fitted(self)
        A = check_matrix(A, name)
        get_backend(**{name: A, "the fitted banks": self.query_bank_})
        check_same_width(self.query_bank_, A, "the fitted banks", name)
        return l2_normalize(A, name)

    def _bytes_per_query_row(self, n_gallery):
        """Working memory one query row needs when scoring (sizes chunks)."""
        return 8 * n_gallery * 3

    def score_matrix(self, queries, gallery):
        """Normalised query × gallery scores on explicit matrices.

        Parameters
        ----------
        queries : array-like of shape (n_queries, d)
        gallery : array-like of shape (n_gallery, d)

        Returns
        -------
        scores : ndarray of shape (n_queries, n_gallery)
            float32 if both inputs are; under array API dispatch a tensor
            of the inputs' namespace and device.
        """
        Q, G = self._check_items(queries, "queries"), self._check_items(gallery, "gallery")
        return self._score_matrix(Q, G, result_dtype(Q, G))

    def _score_matrix(self, Q, G, dtype):
        state = self._prepare_gallery(G)
        if self._transductive:  # the batch of queries is one unit
            return astype(self._score_queries(Q, G, state), dtype)
        return self._score_rows(self._row_scorer(G, state, dtype), Q, G.shape[0])

    def _map_queries(self, func, Q, n_gallery, args=()):
        """``func(rows, Q, *args)`` over memory-bounded chunks of query rows."""
        nx = get_backend(queries=Q)
        return map_row_chunks(
            func, Q.shape[0], bytes_per_row=self._bytes_per_query_row(n_gallery),
            args=(Q, *args), n_jobs=getattr(self, "n_jobs", None),
            working_memory=getattr(self, "working_memory", None),
            prefer=None if is_numpy(nx) else "threads",
        )

    def _score_rows(self, scorer, Q, n_gallery):
        return concat_rows(self._map_queries(_score_chunk, Q, n_gallery, (scorer,)))

    def index(self, gallery, *, approximate=False, n_candidates=None):
        """Bind a fixed gallery: precompute its statistics once for serving.

        Parameters
        ----------
        gallery : array-like of shape (n_gallery, d)
        approximate : bool, default=False
            Generate candidates with a faiss HNSW graph (see
            :class:`GalleryIndex`).
        n_candidates : int, default=None
            Candidates re-scored exactly per query in approximate search.

        Returns
        -------
        index : GalleryIndex
        """
        if self._transductive:
            raise ValueError(
                f"{type(self).__name__} is transductive: its gallery statistics "
                "need the whole batch of test queries, so it cannot be bound to "
                "a gallery ahead of the queries; call score_matrix per batch."
            )
        return GalleryIndex(self, gallery, approximate=approximate, n_candidates=n_candidates)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.non_deterministic = False
        tags.array_api_support = self._array_api
        return tags


class PairedTransformer(_PairedRowsMixin, TransformerMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of embedding transformers on paired rows (abstract).

    Subclasses implement ``_fit_pairs(X, y)`` (store what ``transform``
    needs), ``_transform_pairs(X) -> X_new`` and
    ``_feature_names_out(input_features)`` (the names of the output
    columns, which give ``get_feature_names_out`` and with it
    ``set_output(transform="pandas")``).

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr import PairedTransformer
    >>> class Scale(PairedTransformer):
    ...     def __init__(self, n_query_features=None, direction="q2g"):
    ...         self.n_query_features = n_query_features
    ...         self.direction = direction
    ...     def _fit_pairs(self, X, y):
    ...         self.scale_ = np.abs(X).max()
    ...     def _transform_pairs(self, X):
    ...         return X / self.scale_
    ...     def _feature_names_out(self, input_features):
    ...         return input_features
    >>> Scale().fit_transform(np.array([[1., 2.], [4., 0.]]))
    array([[0.25, 0.5 ],
           [1.  , 0.  ]])
    >>> Scale().fit(np.ones((2, 2))).get_feature_names_out()
    array(['x0', 'x1'], dtype=object)
    """

    _parameter_constraints = dict(PAIR_CONSTRAINTS)
    # False for transformers whose output rows are not embeddings in a
    # similarity space (e.g. packed Gaussians); diagnostics then stop there.
    _outputs_embeddings = True
    # True when _transform_half maps each row on its own (GalleryIndex.add).
    _separable_half = True

    def _transform_half(self, A, half):
        """Transform the rows of one half alone, for serving (hook).

        ``half`` is ``"left"`` (the query columns of ``X``) or ``"right"``;
        :func:`skxmr.index` maps a bare gallery and incoming queries through
        the steps of a Pipeline with it. Steps that cannot transform a half
        without the other do not implement it.
        """
        raise TypeError(
            f"{type(self).__name__} cannot transform one half of the pairs alone, so "
            "a Pipeline containing it cannot be bound to a gallery for serving; "
            "score batches of pairs with decision_function instead."
        )

    def _n_query_features_out(self, n_query_features):
        """Where the halves of this step's output split, given where its
        input's halves split (``None``: in the middle), before fitting.

        Lets a Pipeline's later steps be told the split of their input
        (``skxmr benchmark`` on files of two widths). Default: each half
        keeps its width; steps into a shared space return ``None``.
        """
        return n_query_features

    def fit(self, X, y=None):
        """Fit on training pairs.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_features)
        y : array-like of shape (n_pairs,), default=None

        Returns
        -------
        self : object
        """
        self._validate_params()
        check_y_layout(X, y, "fit")
        X = self._validate_pairs(X, reset=True)
        self._check_layout(X, shared_space=False)
        self._fit_pairs(X, y)
        return self

    def transform(self, X):
        """Transform paired rows.

        Parameters
        ----------
        X : array-like of shape (n_pairs, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_pairs, n_features_out)
        """
        check_is_fitted(self)
        self._check_namespace(X, "transform")
        X = self._validate_pairs(X, reset=False)
        return self._transform_pairs(X)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Names of the input columns; ``None``: those seen in ``fit``
            (``feature_names_in_``) or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        names = check_feature_names_in(self, input_features)
        return np.asarray(self._feature_names_out(names), dtype=object)

    @abstractmethod
    def _fit_pairs(self, X, y):
        """Learn from validated training pairs ``X`` (and labels ``y``)."""

    @abstractmethod
    def _transform_pairs(self, X):
        """Transform validated paired rows."""

    @abstractmethod
    def _feature_names_out(self, input_features):
        """Output column names, given the validated input names."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags


def candidate_similarities(queries, gallery, ids):
    """``S[i, j] = <queries[i], gallery[ids[i, j]]>`` in the queries' dtype:
    each query against its own candidate rows (numpy)."""
    return np.einsum("qd,qcd->qc", queries, gallery[ids].astype(queries.dtype, copy=False))


def _score_chunk(rows, Q, scorer):
    """The scores of the query rows ``rows`` (a chunk task)."""
    return scorer(Q[rows, ...])
