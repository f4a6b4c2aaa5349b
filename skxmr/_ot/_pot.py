"""POT's own Sinkhorn solvers (``ot.sinkhorn(..., method=...)``) in the package's convention.

``method="sinkhorn"``, ``"sinkhorn_log"`` or ``"sinkhorn_stabilized"`` runs
``ot.sinkhorn(b, a, 1 - Mᵀ, reg=τ, numItermax=T, stopThr=tol or 0,
log=True, method=...)`` on the backend of the inputs (numpy, torch CPU or
CUDA) and reads the potentials as ``h = -τ log u`` (POT's rows are our
columns; see :mod:`skxmr._ot._potentials`). POT's log-domain solver starts
from ``log u = 0`` instead of ``u = 1 / n_cols``, which shifts every
``log u`` (and ``log v`` the other way) by ``log n_cols``; it is removed
here so that all methods share one convention. The solvers hold the cost,
the kernel and the plan (three or more float64 ``n_bank × n_cols``
arrays), so they need the whole matrix in memory: an explicit
``working_memory`` that cannot hold it raises ``ValueError`` (the default
``"auto"`` streams instead).

POT's scaling-domain solvers underflow at small τ: ``"sinkhorn"`` iterates
on the unshifted kernel ``exp(-(1 - M) / τ)``, whose entries vanish (and
whose scalings overflow) once ``max(1 - M) / τ`` exceeds the package's
scaling-domain bound (``SCALING_DOMAIN_MAX_SPREAD``, 300): it then returns
finite but wrong scalings, silently. ``"sinkhorn_stabilized"`` can return
NaN there. Both cases run POT's ``"sinkhorn_log"`` instead (the same
problem, solved in the log domain) with a ``ConvergenceWarning`` naming
the reason: detected before the solve for ``"sinkhorn"``, from non-finite
potentials after it for ``"sinkhorn_stabilized"``.
"""

import math
import warnings

from sklearn.exceptions import ConvergenceWarning

from ..utils._backend import BACKENDS
from . import _common
from ._common import _all_finite, _fits

# float64 n x m arrays POT's solvers hold at once (cost, kernel, plan and
# one temporary of a backend expression).
POT_MATRICES = 4


def check_pot_memory(method, n_rows, n_cols, working_memory, like):
    """Raise when POT's dense solver cannot fit the memory rule."""
    nbytes = POT_MATRICES * 8 * n_rows * n_cols
    if not _fits(nbytes, working_memory, like):
        where = (f"working_memory={working_memory} MiB" if working_memory is not None
                 else "half of the available memory")
        raise ValueError(
            f"method={method!r} runs POT's dense solver, which holds about "
            f"{nbytes / 2**20:.0f} MiB for a {n_rows} x {n_cols} problem; "
            f"{where} cannot hold it. Use method='auto' (streamed) instead."
        )


def pot_sinkhorn(nx, M, temperature, max_iter, tol, a, b, method):
    """``(log_c, log_r, n_iter, err, log_domain)`` from POT's solver on ``M``
    (float64, on the backend ``nx``); POT's scaling-domain solvers hand over
    to ``"sinkhorn_log"`` where they underflow (see the module docstring).
    POT knows numpy and torch; other namespaces raise ``ValueError``."""
    if nx.__name__ not in BACKENDS:
        raise ValueError(
            f"method={method!r} is POT's solver, which runs on numpy and torch arrays, "
            f"not {nx.__name__}; use method='auto' (skxmr's own solver, any array API "
            "namespace).")
    if method == "sinkhorn":
        exponent = (1.0 - float(nx.min(M))) / temperature
        if exponent > _common.SCALING_DOMAIN_MAX_SPREAD:
            _log_instead(method, f"its kernel exp(-(1 - M) / τ) underflows at "
                         f"temperature={temperature:g} (max (1 - M) / τ = {exponent:.3g} "
                         f"> {_common.SCALING_DOMAIN_MAX_SPREAD:g})")
            method = "sinkhorn_log"
    out = _pot_solve(nx, M, temperature, max_iter, tol, a, b, method)
    if method == "sinkhorn_stabilized" and not (
            _all_finite(out[0]) and _all_finite(out[1]) and math.isfinite(out[3])):
        _log_instead(method, f"it returned non-finite scalings at "
                     f"temperature={temperature:g}")
        out = _pot_solve(nx, M, temperature, max_iter, tol, a, b, "sinkhorn_log")
    return out


def _log_instead(method, reason):
    warnings.warn(
        f"POT's {method!r} solver is not used: {reason}; running POT's "
        "'sinkhorn_log' (the same problem in the log domain) instead.",
        ConvergenceWarning,
        stacklevel=5,
    )


def _pot_solve(nx, M, temperature, max_iter, tol, a, b, method):
    import ot  # here, not at import: POT's backend module imports torch

    cost = 1.0 - M.T
    with warnings.catch_warnings():
        # POT warns on every run stopped by numItermax, and numpy on the
        # overflows that the checks above handle; the package's own
        # ConvergenceWarning reports a requested tol that was not reached.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        plan, log = ot.sinkhorn(b, a, cost, reg=temperature, method=method,
                                numItermax=max_iter, stopThr=0 if tol is None else tol,
                                log=True, warn=False)
    del cost
    # Rows of POT's plan are our columns: its column sums are our row marginal.
    err = float(nx.norm(nx.sum(plan, axis=0) - a))
    del plan
    n_cols = M.shape[1]
    if method == "sinkhorn":
        log_c, log_r = nx.log(log["u"]), nx.log(log["v"])
    elif method == "sinkhorn_log":
        shift = math.log(n_cols)
        log_c, log_r = log["log_u"] - shift, log["log_v"] + shift
    else:
        log_c, log_r = log["logu"], log["logv"]
    # POT reports the index of its last iteration.
    n_iter = int(log.get("niter", log.get("n_iter", max_iter - 1))) + 1
    # POT's kernel is exp(-(1 - M) / τ): log_r already refers to it.
    return log_c, log_r, n_iter, err, method != "sinkhorn"
