"""Utilities of the package: private helpers shared by every family.

One private module per responsibility: ``_backend`` (which array library
and device), ``_validation`` (input checks), ``_chunking`` (memory-bounded
row chunks), ``_docstrings`` (docstring substitution), ``_params`` (the
parameter vocabulary), ``_math`` (log-sum-exp and the Cauchy-Schwarz core),
``_topk`` (exact top-k selection), ``_optim`` (the projection trainer
shared by the alignment and calibration families) and ``_compat`` (the one
module that imports scikit-learn's and joblib's private names). One public
module: :mod:`skxmr.utils.estimator_checks`, the family's invariants as
checks for any method.
"""
