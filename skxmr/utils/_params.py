"""The parameter vocabulary: each shared parameter's constraint, defined once."""

import numbers

from ._compat import Interval, StrOptions

from .._pairs import DIRECTIONS

PAIR_CONSTRAINTS = {
    "n_query_features": [Interval(numbers.Integral, 1, None, closed="left"), None],
    "direction": [StrOptions(set(DIRECTIONS))],
}
