"""Sinkhorn on POT's backend object: one code path for numpy and torch (CPU, CUDA).

Every array operation of this module is a primitive of the backend ``nx``
(:func:`ot.backend.get_backend`: ``nx.dot``, ``nx.exp``, ``nx.logsumexp``,
``nx.max``, ...), so that torch tensors are solved on their own device,
CPU or GPU, without a round trip through numpy. The numpy specialisations
in :mod:`._dense`, :mod:`._streamed` and :mod:`._log` (in-place,
cache-blocked loops; faster on numpy, see ``benchmarks/bench_backends.py``)
compute the same iterates and are tested against this path.

The similarities arrive through a *source*: ``source(rows)`` returns the
block ``M[rows] / τ``, read from a stored matrix or recomputed from the
embeddings (``bank[rows] @ columns.T / τ``, one matrix product per entry).
With a stored kernel (the memory-aware default, or an explicit budget that
holds it) the blocks are read once to build the row-shifted float64 kernel
``exp(M / τ - max_j M / τ)`` and every iteration is two matrix-vector
products over it; otherwise every iteration streams the blocks again, each
block serving its row update and its share of the column update, under the
``working_memory`` budget (device memory for GPU tensors). Rows spanning
more than ``SCALING_DOMAIN_MAX_SPREAD`` switch to the log domain
(``nx.logsumexp`` over the same blocks).
"""

import math

from ..utils._chunking import chunk_n_rows, row_slices
from . import _common
from ._common import _finite, _passes, _SpreadTooLarge


def _zeros64(nx, shape, like64):
    return nx.zeros(shape, type_as=like64)


def stored_source(nx, M, inv_tau, like64):
    """``rows -> M[rows] / τ`` in float64 (the scale a float64 1-vector, so
    that float32 blocks are promoted on every backend)."""
    scale = nx.full((1,), inv_tau, type_as=like64)

    def source(rows):
        return M[rows, ...] * scale

    return source


def product_source(nx, B, blocks, inv_tau, like64):
    """``rows -> B[rows] [C_1 | C_2 | ...]ᵀ / τ`` in the inputs' precision
    (float32 products are twice as fast); 1/τ is folded into the bank rows,
    in float64 where it would overflow float32."""
    if abs(inv_tau) > 1e37:  # see _math.scaled_product_dtype
        zero = _zeros64(nx, (1, 1), like64)
        B = B + zero
        blocks = [C + zero for C in blocks]

    def source(rows):
        Bs = B[rows, ...] * inv_tau
        parts = [nx.dot(Bs, C.T) for C in blocks]
        return parts[0] if len(parts) == 1 else nx.concatenate(parts, axis=1)

    return source


# Bytes of a float64 sub-block of the elementwise work on CPU arrays: its
# temporaries (shift, exp) then come from the allocator's reused heap
# instead of fresh pages (first-touch page faults made torch CPU 3x slower
# on whole 1 GiB chunks) and stay in the last-level cache. On a GPU the
# whole chunk is one kernel launch per operation (its allocator caches).
CPU_SUB_BLOCK_BYTES = 8 << 20


def _sub_blocks(E, n_cols, like64):
    """Row sub-slices of a source block for its elementwise work."""
    n = E.shape[0]
    if getattr(getattr(like64, "device", None), "type", "cpu") != "cpu":
        return [slice(0, n)]
    return row_slices(n, max(1, CPU_SUB_BLOCK_BYTES // (8 * n_cols)))


def _row_stats(nx, E, like64):
    """Row maxima (float64) of a block, and whether the block's spread is
    within the scaling domain."""
    mx = nx.max(E, axis=1) + _zeros64(nx, (1,), like64)
    ok = not bool(nx.any(mx - nx.min(E, axis=1) > _common.SCALING_DOMAIN_MAX_SPREAD))
    return mx, ok


def nx_sinkhorn(nx, source, n_rows, n_cols, temperature, a, b, max_iter, tol, *,
                store, item_bytes, working_memory, exact_error, like64):
    """Potentials' logs from a block ``source``, on the backend ``nx``.

    ``store``: build the float64 kernel once (``n_rows × n_cols``), else
    stream the blocks on every pass. ``item_bytes``: bytes per entry of a
    source block (sizes the chunks). ``exact_error``: spend a pass on the
    row-marginal error of the returned iterate when no ``tol`` stop gave it
    (free with a stored kernel). Returns ``(log_c, log_r, n_iter, err,
    log_domain)``, ``log_r`` the log row scaling of the true kernel
    ``exp((M - 1) / τ)``.
    """
    # block, its float64 copy and one float64 temporary of an nx expression
    bytes_per_row = (item_bytes + 16) * n_cols
    chunk = chunk_n_rows(bytes_per_row, working_memory, max_rows=n_rows)
    slices = row_slices(n_rows, chunk)
    if store:
        try:
            out = _stored_scaling(nx, source, slices, n_rows, n_cols, temperature, a, b,
                                  max_iter, tol, like64)
        except _SpreadTooLarge:
            pass
        else:
            if _finite(*out[:2], out[3]):
                return out + (False,)
    else:
        try:
            out = _streamed_scaling(nx, source, slices, n_rows, n_cols, temperature, a, b,
                                    max_iter, tol, exact_error, like64)
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
                    like64):
    """The scaling domain on a stored row-shifted kernel: two matrix-vector
    products per iteration (on a GPU both are one kernel launch each)."""
    inv_tau = 1.0 / temperature
    K = _zeros64(nx, (n_rows, n_cols), like64)
    row_max = _zeros64(nx, (n_rows,), like64)
    for rows in slices:  # built block by block: no full-size temporaries
        E = source(rows)
        mx, ok = _row_stats(nx, E, like64)
        if not ok:
            raise _SpreadTooLarge
        row_max[rows] = mx
        K[rows, ...] = nx.exp(E - mx[:, None])
    c = nx.full((n_cols,), 1.0 / n_cols, type_as=like64)
    r, err, n_iter = None, None, 0
    for it in range(max_iter):
        Kc = nx.dot(K, c)
        if tol is not None and r is not None:
            e = float(nx.norm(r * Kc - a))
            if e < tol:
                err = e
                break
        r = a / Kc
        c = b / nx.dot(r, K)
        n_iter += 1
    if err is None:
        err = float(nx.norm(r * nx.dot(K, c) - a))
    return nx.log(c), nx.log(r) - (row_max - inv_tau), n_iter, err


def _streamed_scaling(nx, source, slices, n_rows, n_cols, temperature, a, b, max_iter, tol,
                      exact_error, like64):
    """The scaling domain with kernel blocks rebuilt from the source on every
    pass; row maxima taken in the first pass."""
    inv_tau = 1.0 / temperature
    row_max = _zeros64(nx, (n_rows,), like64)
    first = [True]

    def sweep(c, prev):
        r = _zeros64(nx, (n_rows,), like64)
        acc = _zeros64(nx, (n_cols,), like64)
        sq = _zeros64(nx, (1,), like64)
        for rows in slices:
            E_chunk = source(rows)  # one product per chunk: large, efficient GEMMs
            for sb in _sub_blocks(E_chunk, n_cols, like64):
                E = E_chunk[sb, ...]
                g = slice(rows.start + sb.start, rows.start + sb.stop)
                if first[0]:
                    mx, ok = _row_stats(nx, E, like64)
                    if not ok:
                        raise _SpreadTooLarge
                    row_max[g] = mx
                K = nx.exp(E - row_max[g][:, None])
                Kc = nx.dot(K, c)
                if prev is not None:
                    d = prev[g] * Kc - a[g]
                    sq = sq + nx.sum(d * d)
                rb = a[g] / Kc
                r[g] = rb
                acc = acc + nx.dot(rb, K)
        first[0] = False
        return r, acc, float(sq[0])

    c0 = nx.full((n_cols,), 1.0 / n_cols, type_as=like64)
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
