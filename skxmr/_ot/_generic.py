"""Sinkhorn on POT's backend object: one code path for numpy and torch (CPU, CUDA).

Every array operation of this module is a primitive of the backend ``nx``
(:func:`ot.backend.get_backend`: ``nx.dot``, ``nx.exp``, ``nx.logsumexp``,
``nx.max``, ...), so that torch tensors are solved on their own device,
CPU or GPU, without a round trip through numpy. The numpy specialisations
in :mod:`._dense`, :mod:`._streamed` and :mod:`._log` (in-place,
cache-blocked loops; faster on numpy, see ``benchmarks/bench_backends.py``)
compute the same iterates and are tested against this path.

The similarities arrive through a *source*: ``source(rows, out)`` returns
the block ``M[rows] / τ``, read from a stored matrix or recomputed from the
embeddings (``bank[rows] @ columns.T / τ``, one matrix product per entry,
written into ``out`` where the library writes into a given array:
``nx.dot_into``). With a stored kernel (the memory-aware default, or an
explicit budget that holds it) the blocks are written once into the
row-shifted kernel ``exp(M / τ - max_j M / τ)`` (float32 from float32
products where the spread allows, as on numpy; float64 otherwise) and every
iteration is two matrix-vector products over it; otherwise every iteration
streams the blocks again through one reused chunk buffer, each block
serving its row update and its share of the column update, under the
``working_memory`` budget (device memory for GPU tensors). The shift and
``exp`` run in place (``nx.shift_exp_``), one operation per step over a
chunk, as a plain loop does. Rows spanning more than
``SCALING_DOMAIN_MAX_SPREAD`` switch to the log domain (``nx.logsumexp``
over the same blocks).
"""

import math
from contextlib import contextmanager, nullcontext

import numpy as np

from ..utils._backend import dtype_name
from ..utils._chunking import chunk_n_rows, row_slices
from . import _common
from ._common import _finite, _passes, _SpreadTooLarge


def _zeros64(nx, shape, like64):
    return nx.zeros(shape, type_as=like64)


def stored_source(nx, M, inv_tau, like64):
    """``rows -> M[rows] / τ`` in float64 (the scale a float64 1-vector, so
    that float32 blocks are promoted on every backend)."""
    scale = nx.full((1,), inv_tau, type_as=like64)

    def source(rows, out=None):
        return M[rows, ...] * scale

    source.dtype, source.writes_into = "float64", False
    return source


def product_source(nx, B, blocks, inv_tau, like64, allow_tf32=False):
    """``rows -> B[rows] [C_1 | C_2 | ...]ᵀ / τ`` in the inputs' precision
    (float32 products are twice as fast); 1/τ is folded into the bank rows,
    in float64 where it would overflow float32. ``source.dtype``: the
    blocks' dtype name. ``allow_tf32``: float32 products of CUDA tensors
    in TF32 (``nx.tf32_matmul``; a no-op elsewhere)."""
    if abs(inv_tau) > 1e37:  # see _math.scaled_product_dtype
        zero = _zeros64(nx, (1, 1), like64)
        B = B + zero
        blocks = [C + zero for C in blocks]

    bounds = [0]
    for C in blocks:
        bounds.append(bounds[-1] + C.shape[0])

    def source(rows, out=None):
        """The block of ``rows``, written into ``out`` (its rows' kernel or
        a reused chunk buffer) where the library writes into a given array."""
        Bs = B[rows, ...] * inv_tau
        with nx.tf32_matmul(B) if allow_tf32 else nullcontext():
            if out is None:
                parts = [nx.dot(Bs, C.T) for C in blocks]
            else:
                views = [out[:, lo:hi] for lo, hi in zip(bounds, bounds[1:])]
                parts = [nx.dot_into(Bs, C.T, v) for C, v in zip(blocks, views)]
                if all(p is v for p, v in zip(parts, views)):
                    return out
        return parts[0] if len(parts) == 1 else nx.concatenate(parts, axis=1)

    source.dtype, source.writes_into = dtype_name(B), True
    return source


# Bytes of a float64 sub-block of the log domain's elementwise work on CPU
# arrays: its temporaries (sums, log-sum-exp) then come from the
# allocator's reused heap instead of fresh pages (first-touch page faults
# made torch CPU 3x slower on whole 1 GiB chunks) and stay in the
# last-level cache. On a GPU the whole chunk is one kernel launch per
# operation (its allocator caches). The scaling domain needs no
# temporaries: it works whole chunks in place.
CPU_SUB_BLOCK_BYTES = 8 << 20


def _sub_blocks(E, n_cols, like64):
    """Row sub-slices of a source block for its elementwise work."""
    n = E.shape[0]
    if getattr(getattr(like64, "device", None), "type", "cpu") != "cpu":
        return [slice(0, n)]
    return row_slices(n, max(1, CPU_SUB_BLOCK_BYTES // (8 * n_cols)))


def _row_stats(nx, E):
    """Row maxima of a block (its dtype; one pass with the minima where the
    library has one) and the block's largest row spread (a float)."""
    mn, mx = nx.row_min_max(E)
    return mx, float(nx.max(mx - mn))


def _dot64(nx, x, y, dtype):
    """The matrix-vector product ``x @ y`` computed in ``dtype`` (the
    kernel's), returned in float64."""
    return nx.astype(nx.dot(nx.astype(x, dtype), nx.astype(y, dtype)), "float64")


@contextmanager
def _kernel_array(nx, shape, dtype, like64, buffer):
    """An uninitialised kernel of ``dtype`` beside ``like64``: in the memory
    of ``buffer`` (a :class:`._common.KernelBuffer`, reused across calls)
    where the library can view host memory (torch on the CPU), otherwise
    allocated on the device."""
    if buffer is not None and nx.host_view(np.empty(0, dtype), like64) is not None:
        with buffer.array(shape, dtype) as K:
            yield nx.host_view(K, like64)
        return
    yield nx.zeros(shape, type_as=nx.astype(like64, dtype))


def nx_sinkhorn(nx, source, n_rows, n_cols, temperature, a, b, max_iter, tol, *,
                store, item_bytes, working_memory, exact_error, like64, buffer=None):
    """Potentials' logs from a block ``source``, on the backend ``nx``.

    ``store``: build the kernel once (``n_rows × n_cols``, in the source's
    dtype: a float32 kernel from float32 products needs every row's spread
    within ``FLOAT32_KERNEL_MAX_SPREAD`` and raises ``_SpreadTooLarge``
    otherwise, for the caller to choose), else stream the blocks on every
    pass. ``item_bytes``: bytes per entry of a source block (sizes the
    chunks). ``exact_error``: spend a pass on the row-marginal error of the
    returned iterate when no ``tol`` stop gave it (free with a stored
    kernel). ``buffer``: where a stored kernel lives (see
    :func:`_kernel_array`). Returns ``(log_c, log_r, n_iter, err,
    log_domain)``, ``log_r`` the log row scaling of the true kernel
    ``exp((M - 1) / τ)``.
    """
    # The block (written in place), and for float32 blocks whose rows are
    # too wide for float32 work a float64 copy of an eighth of it.
    bytes_per_row = (item_bytes + (1 if source.dtype == "float32" else 0)) * n_cols
    chunk = chunk_n_rows(bytes_per_row, working_memory, max_rows=n_rows)
    slices = row_slices(n_rows, chunk)
    if store and source.dtype == "float32":
        return _stored_scaling(nx, source, slices, n_rows, n_cols, temperature, a, b,
                               max_iter, tol, like64, buffer) + (False,)
    try:
        if store:
            out = _stored_scaling(nx, source, slices, n_rows, n_cols, temperature, a, b,
                                  max_iter, tol, like64, buffer)
        else:
            out = _streamed_scaling(nx, source, slices, n_rows, n_cols, temperature, a, b,
                                    max_iter, tol, exact_error, like64, buffer)
    except _SpreadTooLarge:
        pass
    else:
        if _finite(*out[:2], out[3]):
            return out + (False,)
    # The log domain holds log-sum-exp temporaries of a few float64 blocks.
    chunk = chunk_n_rows((item_bytes + 32) * n_cols, working_memory, max_rows=n_rows)
    out = _streamed_log(nx, source, row_slices(n_rows, chunk), n_cols, temperature, a, b,
                        max_iter, tol, exact_error or store)
    return out + (True,)


def _stored_scaling(nx, source, slices, n_rows, n_cols, temperature, a, b, max_iter, tol,
                    like64, buffer):
    """The scaling domain on a stored row-shifted kernel in the source's
    dtype, built chunk by chunk (the product written into the kernel's rows
    where the library writes into a given array, its shift and ``exp`` in
    place: one operation per step over the chunk, no temporary), then two
    matrix-vector products per iteration (on a GPU both are one kernel
    launch each; a float32 kernel is read in float32, the scalings stay
    float64)."""
    inv_tau = 1.0 / temperature
    dtype = source.dtype
    bound = (_common.FLOAT32_KERNEL_MAX_SPREAD if dtype == "float32"
             else _common.SCALING_DOMAIN_MAX_SPREAD)
    row_max = _zeros64(nx, (n_rows,), like64)
    with _kernel_array(nx, (n_rows, n_cols), dtype, like64, buffer) as K:
        for rows in slices:
            Kr = K[rows, ...]
            E = source(rows, out=Kr)
            mx, spread = _row_stats(nx, E)
            if spread > bound:
                raise _SpreadTooLarge
            row_max[rows] = nx.astype(mx, "float64")
            E = nx.shift_exp_(E, mx)
            if E is not Kr:  # a library that does not write into a view
                K[rows, ...] = E
        del E
        c = nx.full((n_cols,), 1.0 / n_cols, type_as=like64)
        r, err, n_iter = None, None, 0
        for it in range(max_iter):
            Kc = _dot64(nx, K, c, dtype)
            if tol is not None and r is not None:
                e = float(nx.norm(r * Kc - a))
                if e < tol:
                    err = e
                    break
            r = a / Kc
            c = b / _dot64(nx, r, K, dtype)
            n_iter += 1
        if err is None:
            err = float(nx.norm(r * _dot64(nx, K, c, dtype) - a))
    return nx.log(c), nx.log(r) - (row_max - inv_tau), n_iter, err


def _streamed_scaling(nx, source, slices, n_rows, n_cols, temperature, a, b, max_iter, tol,
                      exact_error, like64, buffer):
    """The scaling domain with kernel blocks rebuilt from the source on every
    pass, one pass per iteration: each chunk's product into one chunk
    buffer (reused across chunks, passes and, in ``buffer``, calls), its
    shift and ``exp`` in place, its ``K c`` and its share of ``Kᵀ r`` (one
    operation per step over the chunk, as a plain loop). Row maxima and
    spreads are taken in the first pass; a chunk of float32 products whose
    rows span at most ``FLOAT32_KERNEL_MAX_SPREAD`` is worked in float32 (as
    the numpy specialisation), others in float64 (in eighths: their
    float64 copies stay within the budget)."""
    inv_tau = 1.0 / temperature
    row_max = _zeros64(nx, (n_rows,), like64)
    narrow = []  # per chunk, from the first pass: float32 work
    longest = max(s.stop - s.start for s in slices)

    def sweep(c, prev):
        first = not narrow
        r = _zeros64(nx, (n_rows,), like64)
        acc = _zeros64(nx, (n_cols,), like64)
        sq = _zeros64(nx, (1,), like64)
        for k, rows in enumerate(slices):
            n = rows.stop - rows.start
            E = source(rows, out=None if E_buf is None else E_buf[:n, ...])
            if first:
                mx, spread = _row_stats(nx, E)
                if spread > _common.SCALING_DOMAIN_MAX_SPREAD:
                    raise _SpreadTooLarge
                row_max[rows] = nx.astype(mx, "float64")
                narrow.append(spread <= _common.FLOAT32_KERNEL_MAX_SPREAD)
            # the whole chunk in place in its dtype; float32 products of
            # wide rows in float64 copies of an eighth of the chunk
            dtype = "float32" if source.dtype == "float32" and narrow[k] else "float64"
            pieces = [slice(0, n)] if dtype == source.dtype else row_slices(n, -(-n // 8))
            for p in pieces:
                g = slice(rows.start + p.start, rows.start + p.stop)
                K = nx.shift_exp_(nx.astype(E[p, ...], dtype), nx.astype(row_max[g], dtype))
                Kc = _dot64(nx, K, c, dtype)
                if prev is not None:
                    d = prev[g] * Kc - a[g]
                    sq = sq + nx.sum(d * d)
                rb = a[g] / Kc
                r[g] = rb
                acc = acc + _dot64(nx, rb, K, dtype)
        return r, acc, float(sq[0])

    c0 = nx.full((n_cols,), 1.0 / n_cols, type_as=like64)
    buf = (_kernel_array(nx, (longest, n_cols), source.dtype, like64, buffer)
           if source.writes_into else nullcontext())
    with buf as E_buf:
        r, c, n_iter, err = _passes(sweep, lambda acc: b / acc, c0, max_iter, tol,
                                    exact_error=exact_error)
    return nx.log(c), nx.log(r) - (row_max - inv_tau), n_iter, err


def _streamed_log(nx, source, slices, n_cols, temperature, a, b, max_iter, tol,
                  exact_error):
    """Log-domain Sinkhorn over the source's blocks (exact where the kernel
    underflows): ``f = log a - LSE_j((M - 1)/τ + g)`` per block and the
    block's share ``LSE_i((M - 1)/τ + f)`` of the column update, folded
    with a two-term log-sum-exp."""
    inv_tau = 1.0 / temperature
    log_a, log_b = nx.log(a), nx.log(b)
    n_rows = a.shape[0]
    like64 = a

    def sweep(g, prev):
        f_all = _zeros64(nx, (n_rows,), like64)
        acc = None
        sq = _zeros64(nx, (1,), like64)
        shift = g - inv_tau
        for rows in slices:
            E_chunk = source(rows)
            for sb in _sub_blocks(E_chunk, n_cols, like64):
                E = E_chunk[sb, ...]
                g = slice(rows.start + sb.start, rows.start + sb.stop)
                lse = nx.logsumexp(E + shift[None, :], axis=1)
                if prev is not None:
                    d = nx.exp(prev[g] + lse) - a[g]
                    sq = sq + nx.sum(d * d)
                f = log_a[g] - lse
                f_all[g] = f
                part = nx.logsumexp(E + (f - inv_tau)[:, None], axis=0)
                acc = part if acc is None else nx.logsumexp(nx.stack([acc, part]), axis=0)
        return f_all, acc, float(sq[0])

    g0 = nx.full((n_cols,), -math.log(n_cols), type_as=like64)
    f, g, n_iter, err = _passes(sweep, lambda lse: log_b - lse, g0, max_iter, tol,
                                exact_error=exact_error)
    return g, f, n_iter, err
