"""Utilities of the package: private helpers shared by every family.

One private module per responsibility: ``_backend`` (which array library
and device), ``_validation`` (input checks), ``_chunking`` (memory-bounded
row chunks), ``_docstrings`` (docstring substitution), ``_params`` (the
parameter vocabulary), ``_math`` (log-sum-exp and the Cauchy-Schwarz core),
``_topk`` (exact top-k selection) and ``_optim`` (the projection trainer
shared by the alignment and calibration families).
"""
