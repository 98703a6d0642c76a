"""The CPU kernel of the Sparse DNN Graph Challenge: a batch of rows through many layers in one
call.

One call takes a batch of activation rows (CSR) through a run of layers and returns the rows
still live, so a thread works on its batch from the first layer to the last without meeting the
other threads: there is no parallel region per layer to wait at, and a thread that a busy
neighbour slows simply takes fewer batches (``challenge.batched`` hands them out). Every row is
computed by the Gustavson rule in the order of its own entries, so the result does not depend on
how rows are batched or how many threads run.

Per row and layer: ``z = y W``; the bias is added where ``z != 0``; ReLU; clamp at ``ymax``.
A row that becomes empty stops (it is dead); a row with all ``N`` entries equal to ``ymax``
stops when ``collapse[layer]`` says that a row of ``ymax`` stays one through every later layer
(it is then a category whatever comes next).

Cost: one scatter-add per multiply (``nnz(y) * 32`` on the challenge networks) plus, for rows
that fill more than 1/8 of the columns, one scan of ``N`` columns; memory bound by the random
access to the ``N``-entry accumulator (L1 for N = 1024, L2 for N = 65,536). Where every weight
of a layer is the same power of two (1/16 in the challenge), the kernel adds the inputs and
scales the sum once, which is bit-identical to weighting each term (scaling by a power of two
is exact) and saves the weight loads.
"""

import numba as nb
import numpy as np

__all__ = ["LayerStack", "Workspace", "run_rows", "stays_saturated", "uniform_scale"]

DEAD, SATURATED = 0, 1


def uniform_scale(data):
    """The common weight if every entry of ``data`` is the same power of two, else 0."""
    if data.size == 0:
        return 0.0
    w = float(data[0])
    if w <= 0 or not np.all(data == data[0]):
        return 0.0
    mantissa, _ = np.frexp(w)
    return w if mantissa == 0.5 else 0.0


class LayerStack:
    """Layers in the kernel's form: one CSR ``indptr`` row per layer (``layers x (N + 1)``,
    offsets into one ``indices``/``data`` pair) and each layer's uniform power-of-two weight
    (0 where the weights differ), in the arithmetic ``dtype``."""

    def __init__(self, n_neurons, dtype):
        self.n, self.dtype = n_neurons, np.dtype(dtype)
        self._ptr, self._idx, self._val, self._scale = [], [], [], []
        self._offset = 0
        self.nbytes = 0

    def __len__(self):
        return len(self._ptr)

    def append(self, W):
        """Add the scipy CSR layer ``W`` (its values in ``self.dtype``)."""
        data = W.data.astype(self.dtype, copy=False)
        scale = uniform_scale(W.data)
        self._ptr.append(W.indptr.astype(np.uint64) + np.uint64(self._offset))
        self._idx.append(W.indices.astype(np.uint32))
        self._val.append(data)
        self._scale.append(scale)
        self._offset += W.nnz
        self.nbytes += self._ptr[-1].nbytes + self._idx[-1].nbytes + self._val[-1].nbytes

    def arrays(self):
        """``(indptr, indices, data, scale)`` for :func:`run_rows`."""
        ptr = np.stack(self._ptr) if self._ptr else np.zeros((0, self.n + 1), np.uint64)
        idx = np.concatenate(self._idx) if self._idx else np.empty(0, np.uint32)
        val = np.concatenate(self._val) if self._val else np.empty(0, self.dtype)
        return ptr, idx, val, np.array(self._scale, self.dtype)


def stays_saturated(W, dtype, bias, ymax):
    """Whether a row of ``ymax`` is one again after the scipy CSR layer ``W``: the kernel's
    arithmetic in the kernel's order (bit for bit what :func:`run_rows` computes), without
    converting the layer."""
    dtype = np.dtype(dtype)
    if not np.isfinite(ymax) or W.shape[0] != W.shape[1]:
        return False
    scale = uniform_scale(W.data)
    data = np.empty(0, dtype) if scale else W.data.astype(dtype)
    return _stays(W.indptr, W.indices, data, dtype.type(scale), dtype.type(bias),
                  dtype.type(ymax))  # fmt: skip


@nb.njit(nogil=True, cache=True)
def _stays(indptr, indices, data, scale, bias, ymax):
    n = indptr.size - 1
    acc = np.zeros(n, data.dtype)
    for k in range(n):
        for q in range(indptr[k], indptr[k + 1]):
            if scale != 0:
                acc[indices[q]] += ymax
            else:
                acc[indices[q]] += ymax * data[q]
    for j in range(n):
        z = acc[j]
        if z == 0:
            return False
        if scale != 0:
            z *= scale
        if z + bias < ymax:
            return False
    return True


class Workspace:
    """Row buffers for :func:`run_rows`, kept between calls (one per thread)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.bufs = (
            np.zeros(1, np.uint64), np.empty(0, np.uint32), np.empty(0, self.dtype),
            np.empty(0, np.int64), np.zeros(1, np.uint64), np.empty(0, np.uint32),
            np.empty(0, self.dtype), np.empty(0, np.int64),
        )  # fmt: skip

    def load(self, indptr, indices, data, ids):
        """Copy rows ``ids`` of the CSR ``(indptr, indices, data)`` into the input set."""
        nnz = int((indptr[ids + 1] - indptr[ids]).sum())
        b = list(self.bufs)
        for i, need in ((0, ids.size + 1), (1, nnz), (2, nnz), (3, ids.size)):
            if b[i].size < need:
                b[i] = np.empty(need + need // 2, b[i].dtype)
        _gather(indptr, indices, data, ids, b[0], b[1], b[2], b[3])
        self.bufs = tuple(b)
        return ids.size

    def rows(self, which, count):
        """Copies of the first ``count`` rows of set ``which``: ``(ptr, idx, val, ids)``."""
        ptr, idx, val, ids = self.bufs[4 * which : 4 * which + 4]
        end = int(ptr[count])
        return ptr[: count + 1].copy(), idx[:end].copy(), val[:end].copy(), ids[:count].copy()


@nb.njit(nogil=True, cache=True)
def _gather(indptr, indices, data, ids, ptr, idx, val, out_ids):
    m = 0
    ptr[0] = 0
    for r in range(ids.size):
        i = ids[r]
        for p in range(indptr[i], indptr[i + 1]):
            idx[m] = indices[p]
            val[m] = data[p]
            m += 1
        ptr[r + 1] = m
        out_ids[r] = i


@nb.njit(nogil=True, cache=True)
def _grow(a, need):
    b = np.empty(max(np.int64(need), 2 * a.size), a.dtype)
    b[: a.size] = a
    return b


@nb.njit(nogil=True, cache=True, inline="always")
def _emit(z, j, scale, bias, ymax, o_idx, o_val, m):
    """Write output ``j`` of a row if its value survives; returns ``(m, saturated)``."""
    if scale != 0:
        z *= scale
    z += bias
    if z > 0:
        sat = z >= ymax
        o_idx[m] = j
        o_val[m] = ymax if sat else z
        return m + np.uint64(1), sat
    return m, False


@nb.njit(nogil=True, cache=True)
def _row(lo, hi, idx, val, wptr, lidx, lval, scale, bias, ymax, acc, stamp, tag, touched,
         o_idx, o_val, m):  # fmt: skip
    """One row through one layer: its outputs from ``o_idx[m]`` on; returns ``(m, saturated
    entries)``."""
    one = np.uint64(1)
    n = np.uint64(acc.size)
    bound = np.uint64(0)
    for p in range(lo, hi):
        k = idx[p]
        bound += wptr[k + one] - wptr[k]
    nsat = 0
    if bound * np.uint64(8) > n:
        # dense enough: accumulate without tracking columns, then scan them in order
        if scale != 0:
            for p in range(lo, hi):
                v = val[p]
                k = idx[p]
                for q in range(wptr[k], wptr[k + one]):
                    acc[lidx[q]] += v
        else:
            for p in range(lo, hi):
                v = val[p]
                k = idx[p]
                for q in range(wptr[k], wptr[k + one]):
                    acc[lidx[q]] += v * lval[q]
        for j in range(n):
            z = acc[j]
            if z != 0:
                acc[j] = 0
                m, sat = _emit(z, j, scale, bias, ymax, o_idx, o_val, m)
                nsat += sat
        return m, nsat
    cnt = np.uint64(0)
    for p in range(lo, hi):
        v = val[p]
        k = idx[p]
        for q in range(wptr[k], wptr[k + one]):
            j = lidx[q]
            if stamp[j] != tag:
                stamp[j] = tag
                touched[cnt] = j
                cnt += one
            if scale != 0:
                acc[j] += v
            else:
                acc[j] += v * lval[q]
    for t in range(cnt):
        j = touched[t]
        z = acc[j]
        acc[j] = 0
        if z != 0:
            m, sat = _emit(z, j, scale, bias, ymax, o_idx, o_val, m)
            nsat += sat
    return m, nsat


@nb.njit(nogil=True, cache=True)
def run_rows(
    bufs, rows, lptr, lidx, lval, lscale, first, last, collapse, bias, ymax, fate_layer,
    fate_kind,
):  # fmt: skip
    """The first ``rows`` rows of ``bufs`` through layers ``first..last-1``.

    ``bufs`` is two sets of row buffers ``(ptr, idx, val, ids, ptr, idx, val, ids)`` (CSR with
    uint64 ``ptr``, uint32 ``idx``, int64 image ids) whose first set holds the input rows;
    the layers are :meth:`LayerStack.arrays` ``(lptr, lidx, lval, lscale)``. Layers write
    alternately into the second and the first set, growing a buffer when it is short, so a
    caller that keeps the returned buffers allocates nothing in the next call (fresh pages
    cost more than the arithmetic here). Returns ``(bufs, which, rows)``: the live rows after
    the last layer are the first ``rows`` rows of set ``which`` (0 or 1). Rows that stop are
    recorded by id: ``fate_layer[id]`` the 0-based layer after which they stopped,
    ``fate_kind[id]`` ``DEAD`` or ``SATURATED``. Indices are unsigned so that numba emits no
    negative-index wraparound (2.5x faster).
    """
    ptr, idx, val, ids, o_ptr, o_idx, o_val, o_ids = bufs
    n = lptr.shape[1] - 1
    un = np.uint64(n)
    one = np.uint64(1)
    acc = np.zeros(n, val.dtype)
    stamp = np.zeros(n, np.uint64)  # stamp[j] == tag: column j already touched by this row
    touched = np.empty(n, np.uint32)
    tag = np.uint64(0)
    which = 0
    if o_ptr.size < rows + 1:
        o_ptr = np.empty(ptr.size, np.uint64)
        o_ids = np.empty(ids.size, np.int64)
    for layer in range(first, last):
        wptr = lptr[layer]
        scale = lscale[layer]
        kept = 0
        m = np.uint64(0)
        o_ptr[0] = 0
        for r in range(rows):
            if np.int64(m + un) > o_idx.size:
                o_idx = _grow(o_idx, m + un)
                o_val = _grow(o_val, m + un)
            start = m
            tag += one
            m, nsat = _row(ptr[r], ptr[r + 1], idx, val, wptr, lidx, lval, scale, bias, ymax,
                           acc, stamp, tag, touched, o_idx, o_val, m)  # fmt: skip
            if m == start:
                fate_layer[ids[r]] = layer
                fate_kind[ids[r]] = DEAD
            elif nsat == n and collapse[layer]:
                fate_layer[ids[r]] = layer
                fate_kind[ids[r]] = SATURATED
                m = start
            else:
                o_ids[kept] = ids[r]
                kept += 1
                o_ptr[kept] = m
        # the outputs become the next layer's inputs; the old inputs become scratch
        ptr, idx, val, ids, o_ptr, o_idx, o_val, o_ids = (
            o_ptr, o_idx, o_val, o_ids, ptr, idx, val, ids,
        )  # fmt: skip
        which = 1 - which
        rows = kept
        if rows == 0:
            break
    if which == 0:
        return (ptr, idx, val, ids, o_ptr, o_idx, o_val, o_ids), which, rows
    return (o_ptr, o_idx, o_val, o_ids, ptr, idx, val, ids), which, rows
