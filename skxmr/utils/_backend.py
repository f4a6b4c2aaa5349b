"""Array backends: which arrays a call computes on, and the one seam to them.

Without scikit-learn's array API dispatch every input is converted to numpy
(as scikit-learn does) and everything runs on numpy. Under
``sklearn.config_context(array_api_dispatch=True)`` (scikit-learn needs
``SCIPY_ARRAY_API=1`` for it), arrays of another namespace stay in their
namespace and on their device: torch tensors (CPU or GPU) through POT's
backend object (:func:`ot.backend.get_backend`), any other array API
namespace (e.g. ``array_api_strict``) through :class:`ArrayAPIBackend`, the
same interface written against the array API standard.

This is the only module that knows a library by name. As POT does, it holds
one backend class per library, each POT's class for that library plus the
primitives POT lacks (:class:`_Primitives`): partial top-k selection, unique
rows, a row-wise ``searchsorted``, a stable argsort, dtype casts by name and
free device memory. numpy's class implements POT's interface itself
(:class:`NumpyOps`) and the others are built when their first array arrives:
importing POT's backend module imports torch, which costs seconds, so
``import skxmr`` and numpy work never import it. Everything else calls ``nx.dot``, ``nx.exp``,
``nx.row_top``... on the backend :func:`get_backend` returns. Supporting a
new library means one class here (registered in :data:`BACKENDS`) and one
entry in the test suite's backend list (``tests/conftest.py``).
"""

import contextlib
import functools
import os

import numpy as np
from sklearn import get_config
from ._compat import array_namespace
from ._compat import device as _device

__all__ = ["dispatch_enabled", "get_backend", "describe", "BACKENDS"]


def dispatch_enabled():
    """Whether scikit-learn's array API dispatch is on (``config_context``)."""
    return bool(get_config().get("array_api_dispatch", False))


def describe(a):
    """``"numpy"``, ``"torch (cpu)"``, ``"torch (cuda:0)"``, ...: for messages."""
    if isinstance(a, np.ndarray):
        return "numpy"
    device = getattr(a, "device", None)
    name = type(a).__module__.split(".")[0]
    return f"{name} ({device})" if device is not None else name


def host_available_bytes():
    """Host memory a new array may take (``MemAvailable`` on Linux; 0: unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


# ----------------------------------------------------------- primitives
class _Primitives:
    """What POT's ``Backend`` lacks, written once in array API terms.

    Library classes override a primitive where their library has a faster
    native form (numpy's ``argpartition``, torch's ``topk``).
    """

    def xp(self, a):
        """The array API namespace of ``a``."""
        return array_namespace(a)

    def dtype(self, like, name):
        """The dtype called ``name`` (``"float32"``...) in ``like``'s namespace."""
        return getattr(self.xp(like), name)

    def astype(self, a, dtype):
        """``a`` in ``dtype`` (a name or a dtype of ``a``'s namespace)."""
        xp = self.xp(a)
        if isinstance(dtype, str):
            dtype = getattr(xp, dtype)
        return a if a.dtype == dtype else xp.astype(a, dtype)

    def stable_argsort(self, a, axis=-1, descending=False):
        """Argsort along ``axis`` whose ties keep their order."""
        return self.xp(a).argsort(a, axis=axis, descending=descending, stable=True)

    def row_top(self, W, m):
        """The ``m`` largest values of each row and their columns, unordered.

        ``(values, indices)``, both (n_rows, m). Ties at the ``m``-th value
        are broken arbitrarily: callers that need a rule use
        :func:`skxmr.utils._topk.top_k_indices`.
        """
        idx = self.stable_argsort(W, axis=1, descending=True)[:, :m]
        return self.take_along_axis(W, idx, 1), idx

    def unique_rows(self, A):
        """Unique rows of ``A`` in order of first appearance.

        Returns ``(unique, inverse)``: ``unique`` in ``A``'s namespace and on
        its device, ``inverse`` (row bookkeeping, not data) a numpy array.
        The generic form finds the rows on the host and gathers them on the
        device.
        """
        _, inverse, first = _numpy_unique_rows(self.to_numpy(A))
        xp = self.xp(A)
        first = xp.asarray(first, device=_device(A))
        return xp.take(A, first, axis=0), inverse

    def count_at_most(self, sorted_rows, values):
        """``counts[i, j] = #{t : sorted_rows[i, t] <= values[i, j]}``: a
        row-wise ``searchsorted(..., side="right")``."""
        return self.row_searchsorted(sorted_rows, values, side="right")

    def row_searchsorted(self, sorted_rows, values, side="left"):
        """``searchsorted`` of each row of ``values`` in the same row of
        ``sorted_rows``. The binary search is done for all entries at once,
        one bit of the count per step (``log2(n_cols)`` vectorised gathers).
        """
        xp = self.xp(values)
        m = sorted_rows.shape[1]
        count = xp.zeros(values.shape, dtype=xp.int64, device=_device(values))
        step = 1 << (m.bit_length() - 1)  # the largest power of two <= m
        while step:
            cand = count + step
            found = xp.take_along_axis(sorted_rows, xp.clip(cand, None, m) - 1, axis=1)  # numpy 2.0: no max=
            ok = (cand <= m) & ((found <= values) if side == "right" else (found < values))
            count = xp.where(ok, cand, count)
            step >>= 1
        return count

    def free_bytes(self, like):
        """Memory a new array beside ``like`` may take (host memory by default)."""
        return host_available_bytes()

    def host_view(self, a, like):
        """The numpy array ``a`` as an array of ``like``'s library sharing
        its memory, where that library can (numpy; torch on the CPU);
        ``None`` otherwise (the caller allocates on the device)."""
        return None

    def dot_into(self, a, b, out):
        """``a @ b``, written into ``out`` (returned) where the library
        writes into a given array (numpy, torch); otherwise a new array."""
        return self.dot(a, b)

    def tf32_matmul(self, like):
        """Context in which float32 matrix products beside ``like`` may use
        TF32 (tensor cores, a 10-bit mantissa): torch on CUDA only; a no-op
        elsewhere."""
        return contextlib.nullcontext()

    def row_min_max(self, E):
        """Row minima and maxima of a matrix."""
        xp = self.xp(E)
        return xp.min(E, axis=1), xp.max(E, axis=1)

    def shift_exp_(self, E, shift):
        """``exp(E - shift[:, None])`` (``shift`` in ``E``'s dtype), written
        over ``E`` where the library writes in place (numpy, torch: no
        temporary); ``E`` is the caller's to give away."""
        return self.xp(E).exp(E - shift[:, None])

    def count_true(self, mask, axis=None):
        """Number of True entries (along ``axis``), as integers."""
        xp = self.xp(mask)
        return xp.sum(xp.astype(mask, xp.int64), axis=axis)

    def special(self, name, a):
        """``scipy.special.<name>(a)`` (``"log_ndtr"``, ``"gammaln"``...).
        scipy computes it on numpy and (under ``SCIPY_ARRAY_API=1``) on
        torch natively; the generic form computes it on the host and moves
        it back."""
        import scipy.special

        func = getattr(scipy.special, name)
        if type(self) is not ArrayAPIBackend:
            return func(a)
        return self.from_numpy(func(self.to_numpy(a)), type_as=a)

    def take_rows(self, A, idx):
        """``A[idx]`` for an integer index array ``idx`` (first axis; numpy
        indices, e.g. the ``inverse`` of :meth:`unique_rows`, are accepted)."""
        xp = self.xp(A)
        if isinstance(idx, np.ndarray):
            idx = xp.asarray(idx, device=_device(A))
        return xp.take(A, idx, axis=0)

    def scatter(self, A, index, values):
        """``A[index] = values`` (``index``: an integer array or a tuple of
        them), returning ``A``. The generic form (the standard has no
        integer-array assignment) writes on the host and moves the result
        back; numpy and torch write in place on the device."""
        host = np.array(self.to_numpy(A))
        index = tuple(to_numpy(i) for i in index) if isinstance(index, tuple) else to_numpy(index)
        host[index] = to_numpy(values) if hasattr(values, "shape") else values
        xp = self.xp(A)
        return xp.asarray(host, dtype=A.dtype, device=_device(A))


def _numpy_unique_rows(A):
    """``(unique, inverse, first)`` of a numpy matrix, rows in order of first
    appearance; ``first`` holds the row of ``A`` where each unique row is."""
    # Hash whole rows at once through a void view instead of comparing floats
    # column by column; adding 0.0 turns -0.0 into +0.0 so the bytes of equal
    # rows are equal (it also makes the copy the view needs).
    A = np.ascontiguousarray(A) + 0.0
    keys = A.view(np.dtype((np.void, A.dtype.itemsize * A.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return A[first[order]], rank[inverse.ravel()], first[order]


def _pot():
    """POT's backend module, imported on the first array that is not numpy's.

    ``ot.backend`` imports torch (and any other array library installed) at
    import time: seconds that a numpy-only user would pay at ``import
    skxmr``. numpy arrays therefore run on :class:`NumpyOps`, the same
    interface written here, and POT's module is imported when another
    library's array arrives (or a POT solver is asked for by name).
    """
    import ot.backend

    return ot.backend


class _Conversions:
    """``to_numpy``/``from_numpy`` of POT's ``Backend``, over ``_to_numpy``
    and ``_from_numpy`` (one or several arrays)."""

    def to_numpy(self, *arrays):
        out = [self._to_numpy(a) for a in arrays]
        return out[0] if len(out) == 1 else out

    def from_numpy(self, *arrays, type_as=None):
        out = [self._from_numpy(a, type_as=type_as) for a in arrays]
        return out[0] if len(out) == 1 else out


class NumpyOps(_Conversions):
    """numpy arithmetic with the interface of POT's ``NumpyBackend``.

    The methods the package calls on a backend object (``nx.dot``,
    ``nx.logsumexp``, ...), with POT's semantics, written here so that numpy
    work never imports POT's backend module, which imports torch when it is
    installed (seconds at start-up, for a library most users never call).
    """

    __name__ = "numpy"
    __type__ = np.ndarray

    def _to_numpy(self, a):
        return a

    def _from_numpy(self, a, type_as=None):
        if type_as is None or isinstance(a, float):
            return a
        return np.asarray(a, dtype=type_as.dtype)

    def zeros(self, shape, type_as=None):
        return np.zeros(shape) if type_as is None else np.zeros(shape, dtype=type_as.dtype)

    def ones(self, shape, type_as=None):
        return np.ones(shape) if type_as is None else np.ones(shape, dtype=type_as.dtype)

    def full(self, shape, fill_value, type_as=None):
        if type_as is None:
            return np.full(shape, fill_value)
        return np.full(shape, fill_value, dtype=type_as.dtype)

    def arange(self, stop, start=0, step=1, type_as=None):
        return np.arange(start, stop, step)

    def dot(self, a, b):
        return np.dot(a, b)

    def einsum(self, subscripts, *operands):
        return np.einsum(subscripts, *operands)

    def sum(self, a, axis=None, keepdims=False):
        return np.sum(a, axis, keepdims=keepdims)

    def cumsum(self, a, axis=None):
        return np.cumsum(a, axis)

    def mean(self, a, axis=None):
        return np.mean(a, axis=axis)

    def max(self, a, axis=None, keepdims=False):
        return np.max(a, axis, keepdims=keepdims)

    def min(self, a, axis=None, keepdims=False):
        return np.min(a, axis, keepdims=keepdims)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def minimum(self, a, b):
        return np.minimum(a, b)

    def argmax(self, a, axis=None):
        return np.argmax(a, axis=axis)

    def argmin(self, a, axis=None):
        return np.argmin(a, axis=axis)

    def abs(self, a):
        return np.abs(a)

    def exp(self, a):
        return np.exp(a)

    def log(self, a):
        return np.log(a)

    def sqrt(self, a):
        return np.sqrt(a)

    def logsumexp(self, a, axis=None, keepdims=False):
        from scipy.special import logsumexp

        return logsumexp(a, axis=axis, keepdims=keepdims)

    def norm(self, a, axis=None, keepdims=False):
        return np.linalg.norm(a, axis=axis, keepdims=keepdims)

    def any(self, a):
        return np.any(a)

    def isfinite(self, a):
        return np.isfinite(a)

    def where(self, condition, x=None, y=None):
        return np.where(condition) if x is None and y is None else np.where(condition, x, y)

    def clip(self, a, a_min=None, a_max=None):
        return np.clip(a, a_min, a_max)

    def sort(self, a, axis=-1):
        return np.sort(a, axis)

    def searchsorted(self, a, v, side="left"):
        if a.ndim == 1:
            return np.searchsorted(a, v, side)
        out = np.empty(v.shape, dtype=int)
        for i in range(a.shape[0]):
            out[i, :] = np.searchsorted(a[i, :], v[i, :], side)
        return out

    def take_along_axis(self, arr, indices, axis):
        return np.take_along_axis(arr, indices, axis)

    def concatenate(self, arrays, axis=0):
        return np.concatenate(arrays, axis)

    def stack(self, arrays, axis=0):
        return np.stack(arrays, axis)

    def reshape(self, a, shape):
        return np.reshape(a, shape)

    def flip(self, a, axis=None):
        return np.flip(a, axis)

    def copy(self, a):
        return a.copy()


# ------------------------------------------------------------ libraries
class NumpyBackend(_Primitives, NumpyOps):
    """numpy: POT's ``NumpyBackend`` interface (:class:`NumpyOps`) with
    partition-based selection."""

    def xp(self, a):
        return np

    def dtype(self, like, name):
        return np.dtype(name)

    def astype(self, a, dtype):
        return a.astype(dtype, copy=False)

    def stable_argsort(self, a, axis=-1, descending=False):
        return np.argsort(-a if descending else a, axis=axis, kind="stable")

    def row_top(self, W, m):
        n_cols = W.shape[1]
        if m == 1:
            idx = np.argmax(W, axis=1)[:, None]
        elif m < n_cols:
            idx = np.argpartition(W, n_cols - m, axis=1)[:, n_cols - m :]
        else:
            idx = np.broadcast_to(np.arange(n_cols), W.shape)
        return np.take_along_axis(W, idx, axis=1), idx

    def unique_rows(self, A):
        unique, inverse, _ = _numpy_unique_rows(A)
        return unique, inverse

    def count_true(self, mask, axis=None):
        return np.count_nonzero(mask, axis=axis)

    def host_view(self, a, like):
        return a

    def dot_into(self, a, b, out):
        return np.matmul(a, b, out=out)

    def row_min_max(self, E):
        return E.min(axis=1), E.max(axis=1)

    def shift_exp_(self, E, shift):
        np.subtract(E, shift[:, None], out=E)
        return np.exp(E, out=E)

    def take_rows(self, A, idx):
        return A[idx]

    def scatter(self, A, index, values):
        A[index] = values
        return A


@functools.cache
def _torch_backend():
    """The torch class, built on first use (its base is POT's, which imports torch)."""

    class TorchBackend(_Primitives, _pot().TorchBackend):
        """torch, on the tensors' device: POT's ``TorchBackend`` with ``topk``,
        ``unique(dim=0)``, batched ``searchsorted`` and CUDA free memory."""

        def dtype(self, like, name):
            import torch

            return getattr(torch, name)

        def astype(self, a, dtype):
            return a.to(self.dtype(a, dtype) if isinstance(dtype, str) else dtype)

        def stable_argsort(self, a, axis=-1, descending=False):
            import torch

            return torch.sort(a, dim=axis, descending=descending, stable=True)[1]

        def row_top(self, W, m):
            return W.topk(m, dim=1, largest=True, sorted=False)

        def unique_rows(self, A):
            import torch

            unique, inverse = torch.unique(A + 0.0, dim=0, return_inverse=True)
            n = A.shape[0]
            first = torch.full((unique.shape[0],), n, dtype=torch.int64, device=A.device)
            first = first.scatter_reduce(0, inverse, torch.arange(n, device=A.device), "amin")
            order = torch.argsort(first)  # first appearances are distinct
            rank = torch.empty_like(order)
            rank[order] = torch.arange(order.shape[0], device=A.device)
            return A[first[order]], rank[inverse].cpu().numpy()

        take_rows = NumpyBackend.take_rows
        scatter = NumpyBackend.scatter

        def host_view(self, a, like):
            import torch

            return torch.from_numpy(a) if like.device.type == "cpu" else None

        def dot_into(self, a, b, out):
            import torch

            return torch.matmul(a, b, out=out)

        def tf32_matmul(self, like):
            if like.device.type != "cuda":
                return contextlib.nullcontext()
            return _torch_tf32()

        def row_min_max(self, E):
            import torch

            # amin and amax: two passes, 8x faster than aminmax's one on CPU
            return torch.amin(E, dim=1), torch.amax(E, dim=1)

        def shift_exp_(self, E, shift):
            return E.sub_(shift[:, None]).exp_()

        def count_at_most(self, sorted_rows, values):
            return self.searchsorted(sorted_rows.contiguous(), values.contiguous(), side="right")

        def free_bytes(self, like):
            device = getattr(like, "device", None)
            if getattr(device, "type", None) == "cuda":
                import torch

                return torch.cuda.mem_get_info(device)[0]
            return host_available_bytes()

    TorchBackend.__module__ = __name__  # pickles as skxmr.utils._backend.TorchBackend
    return TorchBackend


@contextlib.contextmanager
def _torch_tf32():
    """torch's process-wide TF32 switch for CUDA matrix products, on for the
    block and restored after (``fp32_precision`` where torch has it,
    ``allow_tf32`` before)."""
    import torch

    flags = torch.backends.cuda.matmul
    name, value = (("fp32_precision", "tf32") if hasattr(flags, "fp32_precision")
                   else ("allow_tf32", True))
    old = getattr(flags, name)
    setattr(flags, name, value)
    try:
        yield
    finally:
        setattr(flags, name, old)


def __getattr__(name):
    if name == "TorchBackend":
        return _torch_backend()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ArrayAPIBackend(_Primitives, _Conversions):
    """POT's backend interface on any array API namespace POT does not know
    (e.g. ``array_api_strict``), written against the standard: only the
    operations skxmr uses are implemented."""

    def __init__(self, xp):
        self._xp = xp
        self.__name__ = xp.__name__.rsplit(".", 1)[-1]

    def xp(self, a=None):
        return self._xp

    def _like(self, type_as):
        if type_as is None:
            return {}
        return {"dtype": type_as.dtype, "device": _device(type_as)}

    # conversions and creation
    def _to_numpy(self, a):
        if self.__name__ == "array_api_strict":
            a = self._xp.asarray(a, device=self._xp.Device("CPU_DEVICE"))
        return np.asarray(a)

    def _from_numpy(self, a, type_as=None):
        return self._xp.asarray(np.ascontiguousarray(a), **self._like(type_as))

    def zeros(self, shape, type_as=None):
        return self._xp.zeros(shape, **self._like(type_as))

    def ones(self, shape, type_as=None):
        return self._xp.ones(shape, **self._like(type_as))

    def full(self, shape, fill_value, type_as=None):
        return self._xp.full(shape, fill_value, **self._like(type_as))

    def arange(self, stop, start=0, step=1, type_as=None):
        kw = {} if type_as is None else {"device": _device(type_as)}
        return self._xp.arange(start, stop, step, **kw)

    # reductions (booleans count as 0/1, as in numpy and torch)
    def _numeric(self, a):
        xp = self._xp
        return xp.astype(a, xp.int64) if a.dtype == xp.bool else a

    def sum(self, a, axis=None, keepdims=False):
        return self._xp.sum(self._numeric(a), axis=axis, keepdims=keepdims)

    def cumsum(self, a, axis=None):
        a = self._numeric(a)
        if axis is None:
            a, axis = self._xp.reshape(a, (-1,)), 0
        return self._xp.cumulative_sum(a, axis=axis)

    def mean(self, a, axis=None):
        return self._xp.mean(a, axis=axis)

    def max(self, a, axis=None, keepdims=False):
        return self._xp.max(a, axis=axis, keepdims=keepdims)

    def min(self, a, axis=None, keepdims=False):
        return self._xp.min(a, axis=axis, keepdims=keepdims)

    def argmax(self, a, axis=None):
        return self._xp.argmax(a, axis=axis)

    def argmin(self, a, axis=None):
        return self._xp.argmin(a, axis=axis)

    def clip(self, a, a_min=None, a_max=None):
        return self._xp.clip(a, min=a_min, max=a_max)

    def copy(self, a):
        return self._xp.asarray(a, copy=True)

    def any(self, a):
        return self._xp.any(a)

    def logsumexp(self, a, axis=None, keepdims=False):
        xp = self._xp
        m = xp.max(a, axis=axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        out = xp.log(xp.sum(xp.exp(a - m), axis=axis, keepdims=True)) + m
        if not keepdims:
            out = xp.squeeze(out, axis=axis) if axis is not None else xp.reshape(out, ())
        return out

    def norm(self, a, axis=None, keepdims=False):
        return self._xp.sqrt(self._xp.sum(a * a, axis=axis, keepdims=keepdims))

    # element-wise
    def _pair(self, a, b):
        xp = self._xp
        if not hasattr(a, "dtype"):
            a = xp.asarray(a, dtype=b.dtype, device=_device(b))
        if not hasattr(b, "dtype"):
            b = xp.asarray(b, dtype=a.dtype, device=_device(a))
        return a, b

    def maximum(self, a, b):
        return self._xp.maximum(*self._pair(a, b))

    def minimum(self, a, b):
        return self._xp.minimum(*self._pair(a, b))

    def abs(self, a):
        return self._xp.abs(a)

    def exp(self, a):
        return self._xp.exp(a)

    def log(self, a):
        return self._xp.log(a)

    def sqrt(self, a):
        return self._xp.sqrt(a)

    def isfinite(self, a):
        return self._xp.isfinite(a)

    def where(self, condition, x=None, y=None):
        if x is None:
            return self._xp.nonzero(condition)
        return self._xp.where(condition, *self._pair(x, y))

    # products, shapes, orderings
    def dot(self, a, b):
        return self._xp.matmul(a, b)

    def einsum(self, subscripts, *operands):
        if subscripts == "nm,nmd->nd":
            w, B = operands
            return self._xp.sum(w[:, :, None] * B, axis=1)
        raise NotImplementedError(f"einsum {subscripts!r} on {self.__name__}")

    def reshape(self, a, shape):
        return self._xp.reshape(a, tuple(shape))

    def stack(self, arrays, axis=0):
        return self._xp.stack(list(arrays), axis=axis)

    def concatenate(self, arrays, axis=0):
        return self._xp.concat(list(arrays), axis=axis)

    def take_along_axis(self, arr, indices, axis):
        return self._xp.take_along_axis(arr, indices, axis=axis)

    def sort(self, a, axis=-1):
        return self._xp.sort(a, axis=axis)

    def argsort(self, a, axis=-1):
        return self._xp.argsort(a, axis=axis)

    def flip(self, a, axis=None):
        return self._xp.flip(a, axis=axis)

    def searchsorted(self, a, v, side="left"):
        if a.ndim == 1:
            return self._xp.searchsorted(a, v, side=side)
        return self.row_searchsorted(a, v, side=side)


#: The libraries with their own class, by POT's backend name: a function
#: returning the class (built on first use). A library POT supports (CuPy,
#: JAX...) gets a class here, subclassing POT's, when its primitives need a
#: native form; until then it runs on the array API forms.
BACKENDS = {"numpy": lambda: NumpyBackend, "torch": _torch_backend}

_instances = {}


def _instance(key, make):
    if key not in _instances:
        _instances[key] = make()
    return _instances[key]


def get_backend(**arrays):
    """Backend of the named arrays (``None`` values are skipped).

    Parameters
    ----------
    **arrays : array-like or None
        The arrays of one call, by the names the user knows them by (``X``,
        ``queries``, ``the fitted banks``...).

    Returns
    -------
    nx : ot.backend.Backend
        POT's backend for the arrays' library with skxmr's primitives
        (:data:`BACKENDS`), or :class:`ArrayAPIBackend` for an array API
        namespace POT does not support.

    Raises
    ------
    ValueError
        Naming both arrays when two come from different backends or devices.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.utils._backend import get_backend
    >>> get_backend(X=np.ones((2, 2)), bank=None).__name__
    'numpy'
    """
    present = [(name, a) for name, a in arrays.items() if a is not None]
    if not present:
        raise ValueError("get_backend needs at least one array.")
    first_name, first = present[0]
    where = describe(first)
    for name, a in present[1:]:
        if describe(a) != where:
            raise ValueError(
                f"{first_name} and {name} must live on the same backend and device, "
                f"got {where} and {describe(a)}."
            )
    if isinstance(first, np.ndarray):
        return _instance("numpy", NumpyBackend)
    try:
        name = _pot().get_backend(*(a for _, a in present)).__name__
    except ValueError:  # a namespace POT does not know
        xp = array_namespace(first)
        return _instance(xp.__name__, lambda: ArrayAPIBackend(xp))
    if name in BACKENDS:
        cls = BACKENDS[name]()
    else:  # POT knows it, skxmr has no class: POT's with the generic primitives
        pot_cls = type(_pot().get_backend(first))
        cls = type(pot_cls.__name__, (_Primitives, pot_cls), {})
    return _instance(name, cls)


# ------------------------------------------------------------ small helpers
def is_numpy(nx):
    """Whether ``nx`` (a backend) is numpy's."""
    return nx.__name__ == "numpy"


def namespace_dtype(like, name):
    """The dtype called ``name`` ("float32", "float64") in the namespace of ``like``."""
    if isinstance(like, np.ndarray) or not hasattr(like, "device"):
        return np.dtype(name)
    return get_backend(like=like).dtype(like, name)


def dtype_name(a_or_dtype):
    """``"float32"``, ``"float64"``, ...: the dtype's name in any namespace."""
    is_array = hasattr(a_or_dtype, "shape") and not isinstance(a_or_dtype, type)
    dtype = a_or_dtype.dtype if is_array else a_or_dtype
    try:
        return np.dtype(dtype).name
    except TypeError:  # torch.float32, array_api_strict.float32, ...
        return str(dtype).rsplit(".", 1)[-1]


def astype(a, dtype):
    """``a`` in ``dtype`` (a name or a dtype of ``a``'s namespace), no copy if it is."""
    if isinstance(a, np.ndarray):
        return a.astype(dtype, copy=False)
    return get_backend(a=a).astype(a, dtype)


def stable_argsort(a, axis=-1, descending=False):
    """Stable argsort along ``axis`` (ties keep their order)."""
    return get_backend(a=a).stable_argsort(a, axis=axis, descending=descending)


def _foreign(a):
    """Whether ``a`` is an array of a namespace other than numpy."""
    if isinstance(a, np.ndarray) or not hasattr(a, "shape"):
        return False
    try:
        array_namespace(a)
    except TypeError:
        return False
    return True


def to_numpy(a, dtype=None):
    """``a`` as a numpy array on the host (any backend; lists too)."""
    if _foreign(a):
        a = get_backend(a=a).to_numpy(a)
    return np.asarray(a, dtype=dtype)


def host_array(a):
    """``a`` as numpy when it is an array of another namespace (a float32
    tensor stays float32); anything else unchanged."""
    if not _foreign(a):
        return a
    return to_numpy(a)


def check_same_namespace(X, estimator, attribute, method):
    """Under dispatch, raise ``ValueError`` unless ``X`` is in the namespace and
    on the device of the fitted ``attribute`` (scikit-learn's check, message
    "``Estimator.method()`` ... must use the same namespace")."""
    from ._compat import sklearn_check_same_namespace as check

    if check is None:  # scikit-learn < 1.9: get_backend's own check applies
        return
    if getattr(estimator, attribute, None) is not None:
        check(X, estimator, attribute=attribute, method=method)
