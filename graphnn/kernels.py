"""Multi-threaded CPU kernels for training's products, with the batch as the contiguous axis.

The dense operand of a product (``features x batch``) is kept in **batch tiles**:
``(tiles, features, T)``, tile ``t`` holding batch columns ``t*T .. t*T+T-1`` of every row, the
last one padded with zeros (:class:`Blocked`); a model's activations stay in tiles from layer to
layer. A product runs tile by tile, so what a stored entry reads is one ``T``-wide row of the
tile (256 bytes) out of a tile that stays in the core's L2 cache, where without tiles every
entry streamed a whole 2 KB row of an operand that did not fit there. ``T`` comes from the L2
size (:func:`tile_width`; 512-byte rows where the tile cannot fit) and is a compile-time
constant of each kernel, so a row's ``T`` partial sums are an array on the stack that LLVM keeps
in vector registers: each stored entry is a broadcast and ``T / lanes`` packed fused
multiply-adds (ymm on AVX2; on AVX-512 the one-pass backward product, two multiply-adds per
value read, is compiled for zmm, which LLVM's tuning for the host would not choose; the forward
product, bound by the L2, gained nothing from it). The rows of the entries four ahead (eight
where the tile misses the L2) are prefetched, across row ends. Indices are unsigned so that
numba emits no negative-index wraparound.

The products fuse the passes around them: the forward product adds the bias and applies the
ReLU as it writes each row, the input gradient keeps only where the ReLU's output was positive,
and every tiled result carries its row sums (the bias gradient) and which of its rows are zero
in the whole batch. A layer's two backward products read each row of ``dZ`` once for both
(:func:`backward`), and leave out the entries that read a zero row of it (a neuron with no path
to the loss, or dead for the batch): at density 0.1 the 4096 x 10 output layer reaches only
65% of the last hidden layer, at 0.01 10%.

Each kernel is a single-threaded, GIL-free numba function over a range of output rows; the
calling thread and ``numba.get_num_threads() - 1`` threads of a small pool take the ranges
from one list, eight per thread, split so that each holds about the same number of stored
entries; work under :data:`INLINE_WORK` runs on the calling thread alone. Nothing spins between
calls and a thread that a busy neighbour slows simply takes fewer ranges. Each output entry is
written by one range in a fixed order, so results do not depend on the thread count.
``bench/train_step.py`` times them inside whole training epochs against the machine's dense
GEMM, PyTorch dense and torch.sparse. (The Graph Challenge layer is
``graphnn.challenge_kernel``.)
"""

import functools
import math
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "Blocked",
    "Products",
    "adam_update",
    "backward",
    "rows_times_dense",
    "sddmm",
    "spmm_t",
    "take",
    "tile_width",
]

_TILE_BYTES = 256  # a tile row: four cache lines, eight ymm registers of partial sums
_MIN_TILE = 8


def _host_has_avx512():
    from llvmlite import binding

    return bool(binding.get_host_cpu_features().get("avx512f"))


# LLVM tunes AVX-512 CPUs to 256-bit vectors; the one-pass backward product, which does two
# multiply-adds per value read, ran 1.2-1.5x faster in 512-bit ones (4096 x 4096, batch 512,
# 2 cores: 37.5 ms against 55 at density 0.1, 4.8 against 6.6 at 0.01; the forward product
# and the weight gradient alone unchanged)
WIDE = _host_has_avx512()


@functools.cache
def l2_bytes():
    """The L2 cache of one core, from sysfs (1 MiB when the system does not say)."""
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip()
                return int(size[:-1]) * {"K": 1 << 10, "M": 1 << 20}[size[-1]]
        except (OSError, ValueError, KeyError):
            break
    return 1 << 20


def tile_width(rows, batch, itemsize):
    """Batch columns per tile for an operand of ``rows`` rows: 256 bytes a row when the tile
    fits half the L2, else 512 (a tile read from L3 or memory is bound by the latency of each
    random row, and a random 512-byte row read at 2.1x the bytes per second of a 256-byte
    one on this project's machine); never much wider than the batch."""
    size = _TILE_BYTES if rows * _TILE_BYTES <= l2_bytes() // 2 else 2 * _TILE_BYTES
    T = size // itemsize
    while T > _MIN_TILE and T >= 2 * batch:
        T //= 2
    return T


@intrinsic
def _stack_array(typingctx, size, dtype):
    """A pointer to ``size`` (a compile-time constant) uninitialised values of ``dtype`` on the
    stack: an array LLVM can keep in registers, which a heap array never is."""
    if not isinstance(size, types.IntegerLiteral):
        return None

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(dtype.dtype)
        return cgutils.alloca_once(builder, ty, size=size.literal_value)

    return types.CPointer(dtype.dtype)(size, dtype), codegen


@intrinsic
def _wide_vectors(typingctx, bits):
    """Let LLVM vectorise the calling function with ``bits``-wide vectors (a compile-time
    constant), where its tuning for the host would stop at 256."""
    if not isinstance(bits, types.IntegerLiteral):
        return None

    def codegen(context, builder, signature, args):
        width = bits.literal_value
        for attribute in ("prefer-vector-width", "min-legal-vector-width"):
            # a string attribute, which llvmlite's list of known names does not hold
            set.add(builder.function.attributes, f'"{attribute}"="{width}"')
        return context.get_dummy_value()

    return types.none(bits), codegen


@intrinsic
def _prefetch(typingctx, flat, index):
    """A hint to bring the cache line of ``flat[index]`` into L1 (no fault if out of range)."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(
            context, builder, aryty, ary, [args[1]], wraparound=False, boundscheck=False
        )
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # read, high locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.none(flat, index), codegen


@nb.njit(nogil=True, inline="always")
def _prefetch_rows(flat, indices, k, T, line):
    """Prefetch the tile rows of the four entries from ``k`` (``flat``: the tile, flattened;
    ``line``: values per cache line)."""
    for q in range(4):
        r = np.uint64(indices[k + np.uint64(q)]) * np.uint64(T)
        for c in range(0, T, line):
            _prefetch(flat, r + np.uint64(c))


@nb.njit(nogil=True, cache=True)
def _holds_nonzero(z):
    """Whether ``z`` holds a value other than zero, NaN included (outside the kernels' fast
    math, which may take a NaN for anything)."""
    for c in range(z.size):
        if z[c] != 0:
            return True
    return False


# what a row kernel writes after its product: the product plus the bias, the ReLU of that, or
# the product where the row operand is positive (the ReLU's derivative, the operand its output)
PLUS_BIAS, RELU, WHERE_POSITIVE = 0, 1, 2


@functools.cache
def _rows_kernel(T, lookahead, product, dots, epilogue, row_sums):
    """A pass over the rows ``lo..hi-1`` of a CSR matrix ``(indptr, indices, data)``, all
    operands in tiles of ``T``, that reads the row ``indices[k]`` of ``D`` once for each stored
    entry ``k`` and with it computes

    * ``product``: ``out[t, i] = sum_k data[k] D[t, indices[k]]``, then the ``epilogue``
      (``bias`` one value per row; ``R`` for ``WHERE_POSITIVE``), the padding kept zero, and
      when ``row_sums`` the sum of each row of each tile in ``sums[t, i]`` and whether it
      holds a value other than zero in ``nonzero[t, i]``;
    * ``dots``: ``dW[k] = sum over tiles of R[t, i] . D[t, indices[k]]``, the product's
      values at the entries.

    A layer's forward product is ``product`` over the CSC of its weight with ``D = X``; its
    backward products are ``product`` and ``dots`` over its CSR with ``D = dZ``, ``R = X``.
    It runs the tiles ``t0..t1-1``; ``dots`` sum over tiles, so those run all of them."""
    uses_r = dots or epilogue == WHERE_POSITIVE

    @nb.njit(nogil=True, cache=True, fastmath=True)
    def kernel(lo, hi, t0, t1, D, indptr, indices, data, R, bias, n, out, sums, nonzero, dW):
        if WIDE and product and dots:
            _wide_vectors(512)
        one, four, ahead = np.uint64(1), np.uint64(4), np.uint64(lookahead)
        two, three = np.uint64(2), np.uint64(3)
        a = nb.carray(_stack_array(T, D.dtype), T)  # the row of R
        acc = nb.carray(_stack_array(T, D.dtype), T)  # the row of the product
        zero = D.dtype.type(0)
        line = 64 // D.itemsize
        last = indptr[np.uint64(hi)]
        for t in range(t0, t1):
            Dt = D[t]
            flat = Dt.ravel()
            width = min(T, n - t * T)
            for i in range(lo, hi):
                i = np.uint64(i)
                k, end = indptr[i], indptr[i + one]
                if k == end and not product:
                    continue
                if k == end and epilogue == WHERE_POSITIVE:  # zero, whatever R holds
                    z = out[t, i]
                    for c in range(T):
                        z[c] = 0
                    if row_sums:
                        sums[t, i] = 0
                        nonzero[t, i] = False
                    continue
                if uses_r:
                    ri = R[t, i]
                    for c in range(T):
                        a[c] = ri[c]
                for c in range(T):
                    acc[c] = 0
                while k + four <= end:
                    if k + ahead + four <= last:  # entries ahead, this row's or a next one's
                        _prefetch_rows(flat, indices, k + ahead, T, line)
                    b0, b1 = Dt[indices[k]], Dt[indices[k + one]]
                    b2, b3 = Dt[indices[k + two]], Dt[indices[k + three]]
                    w0, w1, w2, w3 = data[k], data[k + one], data[k + two], data[k + three]
                    s0 = s1 = s2 = s3 = zero
                    if product and dots:
                        for c in range(T):
                            acc[c] += (w0 * b0[c] + w1 * b1[c]) + (w2 * b2[c] + w3 * b3[c])
                            s0 += a[c] * b0[c]
                            s1 += a[c] * b1[c]
                            s2 += a[c] * b2[c]
                            s3 += a[c] * b3[c]
                    elif product:
                        for c in range(T):
                            acc[c] += (w0 * b0[c] + w1 * b1[c]) + (w2 * b2[c] + w3 * b3[c])
                    else:
                        for c in range(T):
                            s0 += a[c] * b0[c]
                            s1 += a[c] * b1[c]
                            s2 += a[c] * b2[c]
                            s3 += a[c] * b3[c]
                    if dots and t == 0:
                        dW[k], dW[k + one], dW[k + two], dW[k + three] = s0, s1, s2, s3
                    elif dots:
                        dW[k] += s0
                        dW[k + one] += s1
                        dW[k + two] += s2
                        dW[k + three] += s3
                    k += four
                while k < end:
                    b0 = Dt[indices[k]]
                    w0 = data[k]
                    s0 = zero
                    for c in range(T):
                        if product:
                            acc[c] += w0 * b0[c]
                        if dots:
                            s0 += a[c] * b0[c]
                    if dots:
                        dW[k] = s0 if t == 0 else dW[k] + s0
                    k += one
                if product:
                    z = out[t, i]
                    b = bias[i]
                    if epilogue == WHERE_POSITIVE:
                        for c in range(T):
                            z[c] = acc[c] if a[c] > 0 else 0
                    elif epilogue == RELU:
                        for c in range(T):
                            z[c] = max(acc[c] + b, 0)
                    else:
                        for c in range(T):
                            z[c] = acc[c] + b
                    for c in range(width, T):
                        z[c] = 0
                    if row_sums:
                        s = 0.0
                        for c in range(T):
                            s += z[c]
                        sums[t, i] = s
                        nonzero[t, i] = _holds_nonzero(z)

    return kernel


def _run_rows(M, D, n_rows, *, product, dots=False, epilogue=PLUS_BIAS, R=None, bias=None):
    """:func:`_rows_kernel` over the rows of ``M = (indptr, indices, data)`` with the tiled
    ``D`` (and ``R``, of ``n_rows`` rows, in the same tiles); returns the tiled product (empty
    without ``product``) and ``dW`` (empty without ``dots``). The product's row sums, and
    which of its rows hold a value other than zero, are made in the pass where it is an input
    gradient through the ReLU (``WHERE_POSITIVE``: the next layer down's bias gradient), else
    the sums only if asked for. Where ``D`` says that many of its rows are zero, the entries
    that read them are left out (:func:`_reading_live_rows`)."""
    entries = M[1].size
    M, kept = _reading_live_rows(M, D)
    indptr, indices, data = M
    T, n, dtype = D.width, D.shape[1], D.dtype
    tiles = D.tiles.shape[0]
    row_sums = product and epilogue == WHERE_POSITIVE
    sums = np.zeros((tiles, n_rows if row_sums else 0))
    nonzero = np.zeros((tiles, n_rows if row_sums else 0), np.bool_)
    out = _SPARES.empty((tiles, n_rows if product else 0, T), dtype)
    dW = _SPARES.empty(indices.size if dots else 0, dtype)
    r = np.empty((tiles, 0, T), dtype) if R is None else R.retiled(T).astype(dtype).tiles
    bias = np.zeros(n_rows, dtype) if bias is None else np.ascontiguousarray(bias, dtype)
    if tiles and n_rows:
        kernel = _rows_kernel(T, _ahead(D), product, dots, epilogue, row_sums)
        args = (D.tiles, indptr, indices, data, r, bias, n, out, sums, nonzero, dW)
        _over_rows_and_tiles(kernel, indptr, D, not dots, *args)
    else:  # no pass writes the weight gradient of an empty batch
        dW[:] = 0
    if kept is not None and dots:
        dW, dW_kept = np.empty(entries, dtype), dW
        _spread(kept, dW_kept, dW)
    if not row_sums:
        return Blocked(out, n), dW
    return Blocked(out, n, sums, nonzero.any(axis=0)), dW


# the share of zero rows of the operand from which a product leaves out the entries that read
# them: below it, finding those entries costs more than it saves
DEAD_SHARE = 0.25


def _reading_live_rows(M, D):
    """``M = (indptr, indices, data)`` without the entries whose row of ``D`` is zero in the
    whole batch, and which entries were kept (None: ``M`` itself, where ``D`` does not know
    its zero rows or has few of them).

    Such a row is the output gradient of a neuron with no path to the loss (at density 0.01
    the 4096 x 10 output layer has 410 edges, and 90% of the last hidden layer's neurons none)
    or dead for the whole batch. An entry reading it adds ``w * 0`` to the product and ``0``
    to the weight gradient, so leaving it out changes neither (only the order of the other
    terms' additions, and a NaN or infinity it would have multiplied)."""
    live = D.live
    if live is None or live.size - np.count_nonzero(live) < DEAD_SHARE * live.size:
        return M, None
    indptr, indices, data = M
    kept = np.empty(indices.size, np.bool_)
    out = (np.empty_like(indptr), np.empty_like(indices), np.empty_like(data))
    n = _live_entries(indptr, indices, data, live, kept, *out)
    return (out[0], out[1][:n], out[2][:n]), kept


@nb.njit(nogil=True, cache=True)
def _live_entries(indptr, indices, data, live, kept, out_indptr, out_indices, out_data):
    """The entries whose column is ``live`` into ``out_*`` (CSR; no values where ``data`` is
    empty: a weight gradient alone needs none), ``kept`` marking them; returns how many."""
    valued = data.size > 0
    n = 0
    for i in range(indptr.size - 1):
        out_indptr[i] = n
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            out_indices[n] = j
            if valued:
                out_data[n] = data[k]
            kept[k] = live[j]
            n += live[j]
    out_indptr[indptr.size - 1] = n
    return n


@nb.njit(nogil=True, cache=True)
def _spread(kept, values, out):
    """``out`` with ``values`` at the ``kept`` entries, in order, and zero elsewhere."""
    n = 0
    for k in range(kept.size):
        if kept[k]:
            out[k] = values[n]
            n += 1
        else:
            out[k] = 0


@nb.njit(nogil=True, cache=True)
def _to_tiles(lo, hi, X, out, sums):
    """Rows ``lo..hi-1`` of ``X`` into the tiles ``out`` (zero padding), and their sums
    (in float64, in column order)."""
    T = out.shape[2]
    n = X.shape[1]
    for i in range(lo, hi):
        x = X[i]
        s = 0.0
        for t in range(out.shape[0]):
            o = out[t, i]
            c0 = t * T
            width = min(T, n - c0)
            for c in range(width):
                v = x[c0 + c]
                o[c] = v
                s += v
            for c in range(width, T):
                o[c] = 0
        sums[i] = s


@nb.njit(nogil=True, cache=True)
def _from_tiles(lo, hi, tiles, out):
    """Rows ``lo..hi-1`` of ``out`` (features x batch) from the tiles."""
    T = tiles.shape[2]
    n = out.shape[1]
    for i in range(lo, hi):
        x = out[i]
        for t in range(tiles.shape[0]):
            o = tiles[t, i]
            c0 = t * T
            for c in range(min(T, n - c0)):
                x[c0 + c] = o[c]


@nb.njit(nogil=True, cache=True)
def _rows_to_tiles(lo, hi, X, out, live, sums):
    """Features ``lo..hi-1`` of the batch-major ``X`` (batch x features) into the tiles ``out``
    (zero padding), 16 features (a cache line of each row of ``X``) at a time, each written
    whole (unsigned indices: no negative-index checks); then, where ``live`` is not empty,
    whether each holds a value other than zero (NaN included) and its sum over the batch
    (float64, in batch order: an output gradient's bias gradient). (512 x 4096 float32, 2 cores:
    1.7 ms with ``live``, where a 64-feature block written a batch column at a time took 2.4
    ms without and 4.4 with.)"""
    T = out.shape[2]
    batch = np.uint64(X.shape[0])
    for f0 in range(lo, hi, 16):
        for t in range(out.shape[0]):
            base = np.uint64(t) * np.uint64(T)
            for i in range(f0, min(f0 + 16, hi)):
                i = np.uint64(i)
                o = out[np.uint64(t), i]
                if base + np.uint64(T) <= batch:
                    for c in range(T):
                        o[np.uint64(c)] = X[base + np.uint64(c), i]
                else:
                    for c in range(T):
                        b = base + np.uint64(c)
                        o[np.uint64(c)] = X[b, i] if b < batch else 0
    if live.size:
        for f in range(lo, hi):
            s, nonzero = 0.0, False
            for tile in out:
                row = tile[f]
                for c in range(T):
                    s += row[c]
                nonzero = nonzero or _holds_nonzero(row)
            sums[f], live[f] = s, nonzero


@nb.njit(nogil=True, cache=True)
def _tiles_to_rows(lo, hi, tiles, out):
    """Features ``lo..hi-1`` of the batch-major ``out`` (batch x features) from the tiles."""
    T = tiles.shape[2]
    batch = out.shape[0]
    for f0 in range(lo, hi, 64):
        f1 = min(f0 + 64, hi)
        for t in range(tiles.shape[0]):
            for c in range(min(T, batch - t * T)):
                b = t * T + c
                for i in range(f0, f1):
                    out[b, i] = tiles[t, i, c]


def _ahead(D):
    """How many entries ahead a kernel prefetches the rows of the tiled operand ``D``: four
    from the L2 (1.2-1.6x over none at 4096 x 4096), eight from beyond (300,000 x 300,000 at
    epsilon 20: 1.1x over four, sixteen or more slower again)."""
    return 4 if D.tiles[0].nbytes <= l2_bytes() // 2 else 8


def _uniform(rows, cols):
    """Work counts for rows of equal cost."""
    return np.arange(rows + 1, dtype=np.int64) * max(cols, 1)


class Blocked:
    """A dense ``features x batch`` operand in batch tiles, as the products read and write it.

    ``tiles`` has shape ``(ceil(batch / T), features, T)``, the last tile padded with zeros;
    ``shape`` is the operand's (features, batch) and :attr:`row_sums` the sum of each row
    (float64): the bias gradient when the operand is a layer's output gradient. ``sums``, where
    the pass that wrote the tiles made them, is those sums or each tile's (tiles x features,
    added up in tile order); else they are taken when first asked for. ``live``, where that
    pass knew it, says which rows hold a value other than zero (None: not known). Build one
    from an array with :meth:`of`; :meth:`plain` gives the array back.
    """

    __slots__ = ("tiles", "shape", "_sums", "live")

    def __init__(self, tiles, batch, sums=None, live=None):
        self.tiles, self._sums, self.live = tiles, sums, live
        self.shape = (tiles.shape[1], batch)

    @property
    def row_sums(self):
        """The sum over the batch of each row, in float64."""
        if self._sums is None:
            self._sums = self.tiles.sum(axis=(0, 2), dtype=np.float64)
        elif self._sums.ndim == 2:
            self._sums = self._sums.sum(axis=0)
        return self._sums

    @classmethod
    def of(cls, X, T=None):
        """``X`` (features x batch) in tiles of ``T`` batch columns (by default
        :func:`tile_width`'s); a view of ``X`` where that is one tile (a batch of ``T`` at a
        300,000-neuron layer: no copy of its 154 MB)."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"a dense operand must be 2-d (features x batch), got {X.shape}")
        rows, n = X.shape
        T = T or tile_width(rows, n, X.dtype.itemsize)
        if n == T and X.flags.c_contiguous:  # one tile, no padding: the array itself
            return cls(X[None], n)
        out = cls(np.empty((-(-n // T), rows, T), X.dtype), n, np.empty(rows))
        if rows:
            _parallel(_to_tiles, _uniform(rows, n), X, out.tiles, out._sums)
        return out

    @classmethod
    def of_rows(cls, X, T=None, find_live=False):
        """The operand ``X.T`` from a batch-major ``X`` (batch x features, as PyTorch holds a
        batch), tiled without forming the transpose; with ``find_live``, :attr:`live` says
        which features hold a value other than zero (an output gradient's: the products then
        leave out the entries that read the others) and :attr:`row_sums` are made in the same
        pass."""
        X = np.ascontiguousarray(X)
        if X.ndim != 2:
            raise ValueError(f"a batch must be 2-d (batch x features), got {X.shape}")
        n, rows = X.shape
        T = T or tile_width(rows, n, X.dtype.itemsize)
        live = np.zeros(rows if find_live else 0, np.bool_)
        sums = np.empty(rows if find_live else 0)
        out = cls(np.empty((-(-n // T), rows, T), X.dtype), n, sums if find_live else None,
                  live if find_live else None)  # fmt: skip
        if rows:
            _parallel(_rows_to_tiles, _uniform(rows, n), X, out.tiles, live, sums)
        return out

    def rows(self):
        """The operand as a batch-major array (batch x features): :meth:`plain` transposed."""
        out = np.empty(self.shape[::-1], self.dtype)
        if out.size:
            _parallel(_tiles_to_rows, _uniform(*self.shape), self.tiles, out)
        return out

    def plain(self):
        """The operand as a ``features x batch`` array (the tile itself where there is one tile
        and no padding)."""
        if self.tiles.shape[0] == 1 and self.shape[1] == self.width:
            return self.tiles[0]
        out = np.empty(self.shape, self.dtype)
        if out.size:
            _parallel(_from_tiles, _uniform(*self.shape), self.tiles, out)
        return out

    def retiled(self, T):
        """The same operand in tiles of ``T`` (itself when they already are)."""
        if T == self.width:
            return self
        out = Blocked.of(self.plain(), T)
        out.live = self.live
        return out

    def astype(self, dtype):
        """The same operand with values of ``dtype`` (itself when they already are)."""
        if self.dtype == dtype:
            return self
        return Blocked(self.tiles.astype(dtype), self.shape[1], self._sums, self.live)

    @property
    def dtype(self):
        return self.tiles.dtype

    @property
    def width(self):
        """The tile width ``T``."""
        return self.tiles.shape[2]


class _Spares:
    """Large arrays the kernels wrote, kept to be written again once nothing else holds them.

    A fresh array of hundreds of megabytes is paid for on first touch: a page fault for each
    page, and huge pages only where the system finds them free, so the same product ran 1.3x
    slower on some steps' arrays than on others' (a 300,000-neuron layer, batch 128). Reused,
    an array keeps its pages. Only arrays of at least :attr:`SMALLEST` bytes are kept, the
    :attr:`KEPT` most recently made; an array is handed out again only when the list holds the
    sole reference to it (no view, no :class:`Blocked`, no caller keeps it)."""

    SMALLEST = 16 << 20
    KEPT = 12

    def __init__(self):
        self._arrays = []
        self._lock = threading.Lock()

    def empty(self, shape, dtype):
        """An uninitialised array of ``shape`` and ``dtype``, reused where one is free."""
        shape, dtype = tuple(np.atleast_1d(shape)), np.dtype(dtype)
        if math.prod(shape) * dtype.itemsize < self.SMALLEST:
            return np.empty(shape, dtype)
        with self._lock:
            for k in range(len(self._arrays)):
                a = self._arrays[k]
                # referenced by the list, by ``a`` and by getrefcount's argument: free
                if a.shape == shape and a.dtype == dtype and sys.getrefcount(a) == 3:
                    self._arrays.append(self._arrays.pop(k))
                    return a
                del a
            a = np.empty(shape, dtype)
            self._arrays = self._arrays[-(self.KEPT - 1) :] + [a]
            return a


_SPARES = _Spares()


@functools.cache
def _pool(threads):
    return ThreadPoolExecutor(threads, thread_name_prefix="graphnn-kernel")


# Below this much work (multiply-adds or values moved) a call runs on the calling thread alone:
# waking a sleeping pool thread costs 40-50 us on the 2-core VM this was measured on (an idle
# vCPU's wake-up), and the output layer's products at density 0.01 (4096 x 10, 410 edges,
# batch 512) took 0.57 ms on two threads and 0.04 ms on one.
INLINE_WORK = 1 << 21


def _parallel(kernel, work, *args):
    """``kernel(lo, hi, *args)`` over the rows of ``work`` (a cumulative count of each row's
    work, ``rows + 1`` long), in ranges of about equal work taken by the pool's threads."""
    rows = work.size - 1
    threads = nb.get_num_threads()
    if threads == 1 or rows < 2 or work[-1] < INLINE_WORK:
        kernel(0, rows, *args)
        return
    parts = min(rows, 8 * threads)
    work = np.asarray(work, np.int64) + np.arange(rows + 1)
    cuts = np.searchsorted(work, np.linspace(0, work[-1], parts + 1)[1:-1])
    bounds = np.unique(np.concatenate([[0], cuts, [rows]]))
    _in_pool(kernel, [(lo, hi) for lo, hi in zip(bounds, bounds[1:])], threads, *args)


def _over_rows_and_tiles(kernel, indptr, D, split_tiles, *args):
    """``kernel(lo, hi, t0, t1, *args)`` over the rows of the CSR ``indptr`` and the tiles of
    ``D``, taken by the pool's threads: jobs of rows with about equal entries, each over all
    tiles, or over one tile when ``split_tiles``.

    A job that runs few entries per tile reads most rows of a tile of ``D`` once only, from L3
    rather than L2 (4096 x 4096 at density 0.01, batch 512, 2 cores: the forward product 1.8x
    slower in 16 row ranges than in 2). So while the tile fits the L2, a job over one tile
    takes all rows where there are two tiles a thread or more (each tile read from L3 once:
    1.17x faster than two row ranges at density 0.01, 1.10x at 0.03, 1.05x at 0.1), and
    otherwise a range holds at least 16 entries a row of ``D``, one range a thread at the
    least; beyond the L2, and up to eight jobs a thread, more jobs let a thread that a busy
    neighbour slows take fewer."""
    rows, tiles = indptr.size - 1, D.tiles.shape[0]
    threads = nb.get_num_threads()
    work = (int(indptr[-1]) + rows) * D.tiles.shape[0] * D.width
    if threads == 1 or rows < 2 or work < INLINE_WORK:
        kernel(0, rows, 0, tiles, *args)
        return
    jobs = 8 * threads
    ranges = -(-jobs // tiles) if split_tiles else jobs
    if D.tiles[0].nbytes <= l2_bytes() // 2:
        if split_tiles and tiles >= 2 * threads:
            ranges = 1
        else:
            enough = int(indptr[-1]) // (16 * max(D.shape[0], 1))
            ranges = min(ranges, max(threads, enough // threads * threads))
    work = np.asarray(indptr, np.int64) + np.arange(rows + 1)
    cuts = np.searchsorted(work, np.linspace(0, work[-1], min(rows, ranges) + 1)[1:-1])
    bounds = np.unique(np.concatenate([[0], cuts, [rows]]))
    spans = [(t, t + 1) for t in range(tiles)] if split_tiles else [(0, tiles)]
    jobs = [(lo, hi, t0, t1) for t0, t1 in spans for lo, hi in zip(bounds, bounds[1:])]
    _in_pool(kernel, jobs, threads, *args)


def _in_pool(kernel, jobs, threads, *args):
    """``kernel(*job, *args)`` for each of ``jobs``, taken one at a time from a shared list by
    the calling thread and ``threads - 1`` of the pool's; returns when all are done. (One
    wake-up a helper thread, where submitting each job woke a thread for it: 16 empty jobs
    took 267 us, now 94 us.)"""
    queue = iter(jobs)  # next() on a list's iterator is atomic under the GIL

    def work():
        for job in queue:
            kernel(*job, *args)

    helpers = [_pool(threads).submit(work) for _ in range(min(threads, len(jobs)) - 1)]
    try:
        work()
    finally:
        for helper in helpers:
            helper.result()


def _unsigned(indptr, indices):
    """The CSR arrays as uint64 ``indptr`` and uint32 ``indices`` (views where the width
    matches)."""
    indptr, indices = np.asarray(indptr), np.asarray(indices)
    u = lambda a, t: a.view(t) if a.dtype.itemsize == t().itemsize else a.astype(t)  # noqa: E731
    return u(indptr, np.uint64), u(indices, np.uint32)


def rows_times_dense(D, indptr, indices, data, nrows, bias=None, relu=False, mask=None):
    """``M @ D`` for the CSR ``M`` (``nrows`` rows) given by its arrays and ``D`` dense with the
    batch as its contiguous last axis, or a :class:`Blocked` of it (the result is then one too,
    in the same tiles); then ``+ bias`` (one value per row) and the ReLU when ``relu``, or only
    where ``mask > 0`` (``mask`` shaped like the result, plain or tiled: the ReLU's
    derivative), fused into the writing of each row."""
    tiled = isinstance(D, Blocked)
    D = D if tiled else Blocked.of(np.asarray(D, dtype=data.dtype))
    D = D.astype(data.dtype)
    if mask is not None:
        if mask.shape != (nrows, D.shape[1]):
            raise ValueError(f"mask has shape {mask.shape}, the product {(nrows, D.shape[1])}")
        mask = mask if isinstance(mask, Blocked) else Blocked.of(mask, D.width)
    epilogue = WHERE_POSITIVE if mask is not None else RELU if relu else PLUS_BIAS
    M = (*_unsigned(indptr, indices), data)
    out, _ = _run_rows(M, D, nrows, product=True, epilogue=epilogue, R=mask, bias=bias)
    return out if tiled else out.plain()


def spmm_t(XT, W_csc):
    """``(X @ W).T`` for a dense ``XT = X.T`` (features x batch) and a scipy CSC ``W``."""
    return rows_times_dense(XT, W_csc.indptr, W_csc.indices, W_csc.data, W_csc.shape[1])


def _same_tiles(A, B, dtype):
    """``A`` and ``B`` as :class:`Blocked` of one tile width (``B``'s rows choose it)."""
    if not isinstance(B, Blocked):
        B = Blocked.of(np.asarray(B, dtype), A.width if isinstance(A, Blocked) else None)
    if not isinstance(A, Blocked):
        A = Blocked.of(np.asarray(A, dtype), B.width)
    return A, B.retiled(A.width)


def sddmm(A, BT, indptr, indices):
    """Values of ``A @ B`` at the entries of the CSR structure ``(indptr, indices)``, in its
    order.

    ``A`` (rows x inner) and ``BT = B.T`` (cols x inner) are dense, or :class:`Blocked`; the
    inner (batch) axis is the contiguous one.
    """
    dtype = np.result_type(A.dtype, BT.dtype)
    return backward(A, BT, indptr, indices, np.empty(0, dtype), input_grad=False)[0]


def backward(XT, dZT, indptr, indices, data, input_grad=True, relu=False):
    """A sparse layer's backward products in one pass over its CSR weight ``(indptr,
    indices, data)``: the weight gradient ``X^T dZ`` at the entries (in CSR order) and, when
    ``input_grad``, the input gradient ``W dZ^T`` (kept where ``XT > 0`` when ``relu``: the
    ReLU's derivative, ``XT`` being the ReLU's output), as a :class:`Blocked` with its row
    sums when ``XT`` is one, else plain (None without ``input_grad``)."""
    tiled = isinstance(XT, Blocked)
    dtype = np.result_type(XT.dtype, dZT.dtype)
    X, dZ = _same_tiles(XT, dZT, dtype)
    X, dZ = X.astype(dtype), dZ.astype(dtype)
    M = (*_unsigned(indptr, indices), np.asarray(data, dtype))
    rows = M[0].size - 1
    epilogue = WHERE_POSITIVE if relu else PLUS_BIAS
    if not input_grad:
        return _run_rows(M, dZ, rows, product=False, dots=True, R=X)[1], None
    # one pass: each row of dZ read serves both products (4096 x 4096, batch 512, 2 cores:
    # 1.3x faster than two passes at density 0.1 and 0.3, 2x at 0.01)
    dX, dW = _run_rows(M, dZ, rows, product=True, dots=True, epilogue=epilogue, R=X)
    return dW, (dX if tiled else dX.plain())


@intrinsic
def _sqrt(typingctx, x):
    """The correctly rounded square root as LLVM's intrinsic, which vectorises (numba calls the
    C library's ``sqrtf``, which stops a loop from vectorising; both give the same bits)."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(x)
        return builder.call(builder.module.declare_intrinsic("llvm.sqrt", [ty]), args)

    return x(x), codegen


@nb.njit(nogil=True, cache=True, error_model="numpy")
def _adam(lo, hi, p, g, m, v, b1, b2, c1, c2, step, eps):
    """Adam on entries ``lo..hi-1``, in one pass: the arithmetic and order of the numpy
    expressions in ``graphnn.training.optim.Adam`` (no fused multiply-adds), so both give the
    same bits, a zero divisor included (numpy's error model). An unsigned index, LLVM's square
    root and no division check let it vectorise: 1.68M float32 entries on 2 threads took 4.2 ms,
    now 1.1."""
    for j in range(hi - lo):
        i = np.uint64(lo) + np.uint64(j)
        gi = g[i]
        mi = m[i] * b1 + c1 * gi
        vi = v[i] * b2 + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= step * mi / (_sqrt(vi) + eps)


def adam_update(p, g, m, v, b1, b2, step, eps):
    """One Adam step in place on contiguous numpy arrays of one dtype (``step`` is the
    bias-corrected learning rate), split over the kernel threads."""
    t = p.dtype.type
    args = (p, g, m, v, t(b1), t(b2), t(1 - b1), t(1 - b2), t(step), t(eps))
    _in_ranges(_adam, p.size, *args)


@nb.njit(nogil=True, cache=True)
def _take(lo, hi, data, order, out):
    for j in range(hi - lo):
        k = np.uint64(lo) + np.uint64(j)
        out[k] = data[order[k]]


def take(data, order):
    """``data[order]`` for a permutation ``order`` (int64), split over the kernel threads."""
    out = _SPARES.empty(order.size, data.dtype)
    _in_ranges(_take, order.size, data, np.asarray(order, np.int64).view(np.uint64), out)
    return out


def _in_ranges(kernel, n, *args):
    """``kernel(lo, hi, *args)`` over ``0..n-1`` in equal ranges taken by the pool's threads
    (one call for less than 65,536)."""
    threads = nb.get_num_threads()
    if threads == 1 or n < 1 << 16:
        kernel(0, n, *args)
        return
    bounds = np.linspace(0, n, 8 * threads + 1).astype(np.int64)
    _in_pool(kernel, [(lo, hi) for lo, hi in zip(bounds, bounds[1:])], threads, *args)


class Products:
    """Training's products on the batch-tiled kernels of ``graphnn.kernels``: a prepared operand
    is a :class:`Blocked`, a prepared operand in gives one out (in the same
    tiles), and the bias, ReLU and its derivative are fused into the products. Shared by the
    numba and graphblas backends."""

    # a 4096 x 4096 layer, batch 512, forward and one-pass backward, against numpy's BLAS over
    # a zero-filled copy (2 cores, AVX-512, 2026-12-05): 0.90x its time at density 0.4, 1.06x
    # at 0.5
    dense_crossover = 0.45

    def prepare(self, D, like=None, rows=None):
        T = like.width if isinstance(like, Blocked) else None
        if isinstance(D, Blocked):
            return D.retiled(T or D.width)
        D = np.asarray(D)
        if T is None:
            T = tile_width(max(rows or 0, D.shape[0]), D.shape[1], D.dtype.itemsize)
        return Blocked.of(D, T)

    def plain(self, D):
        return D.plain() if isinstance(D, Blocked) else D

    def batch_sums(self, D):
        if isinstance(D, Blocked):
            return D.row_sums.astype(D.dtype)
        return np.asarray(D).sum(axis=1)

    def csr_times_dense(
        self, data, indices, indptr, shape, D, order=None, bias=None, relu=False, mask=None
    ):
        if order is not None:  # a gather here beats reaching the values through it in the kernel
            data = take(data, order)
        return rows_times_dense(D, indptr, indices, data, shape[0], bias, relu, mask)

    def sddmm(self, XT, dZT, indptr, indices, rows):
        return sddmm(XT, dZT, indptr, indices)

    def layer_backward(
        self, XT, dZT, data, indptr, indices, rows, shape, input_grad=True, relu=False
    ):
        # one pass: each row of dZ read serves both products
        return backward(XT, dZT, indptr, indices, data, input_grad, relu)
