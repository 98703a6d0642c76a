"""Multi-threaded CPU kernels for the operations SuiteSparse and scipy do slowly here.

Measured by ``bench/backends.py`` on 2 cores (float32, best of 3, 2026-11-26, load 0.7): a dense
512 x 4096 batch times a sparse 4096 x 4096 weight at density 0.1 takes 0.078 s here against
0.19 s (scipy), 0.44 s (SuiteSparse mxm) and 0.097 s (dense BLAS); the masked product X^T dZ at
the weight's edges takes 0.064 s here against 0.13 s for a dense product plus gather and 0.52 s
for SuiteSparse's masked mxm in its dot-product form ``C(M.S) << A @ B.T``. The fused sparse
ReLU layer (``relu_layer``, the Graph Challenge layer) runs the official network 6.3x faster
than a naive scipy loop (``bench/challenge.py``).

The dense kernels keep the batch as the innermost, contiguous axis so the loops vectorise. Each
output entry is written by one thread in a fixed order, so results do not depend on the thread
count.
"""

import numba as nb
import numpy as np

__all__ = ["spmm_t", "sddmm", "relu_layer"]


@nb.njit(parallel=True, cache=True, fastmath=True)
def _spmm_t(XT, indptr, indices, data, ncols):
    ZT = np.zeros((ncols, XT.shape[1]), XT.dtype)
    for j in nb.prange(ncols):
        z = ZT[j]
        for k in range(indptr[j], indptr[j + 1]):
            x = XT[indices[k]]
            v = data[k]
            for c in range(z.shape[0]):
                z[c] += v * x[c]
    return ZT


@nb.njit(parallel=True, cache=True, fastmath=True)
def _sddmm(A, BT, indptr, indices):
    out = np.empty(indices.shape[0], A.dtype)
    for i in nb.prange(indptr.shape[0] - 1):
        a = A[i]
        for k in range(indptr[i], indptr[i + 1]):
            b = BT[indices[k]]
            s = A.dtype.type(0)
            for c in range(a.shape[0]):
                s += a[c] * b[c]
            out[k] = s
    return out


def spmm_t(XT, W_csc):
    """``(X @ W).T`` for a dense ``XT = X.T`` (features x batch) and a scipy CSC ``W``."""
    XT = np.ascontiguousarray(XT, dtype=W_csc.dtype)
    if XT.shape[1] == 0 or W_csc.nnz == 0:
        return np.zeros((W_csc.shape[1], XT.shape[1]), W_csc.dtype)
    return _spmm_t(XT, W_csc.indptr, W_csc.indices, W_csc.data, W_csc.shape[1])


def sddmm(A, BT, mask_csr):
    """Values of ``A @ B`` at the stored entries of ``mask_csr``, in its CSR order.

    ``A`` (rows x inner) and ``BT = B.T`` (cols x inner) are dense; the inner (batch) axis is
    made contiguous in both.
    """
    dtype = np.result_type(A.dtype, BT.dtype)
    A = np.ascontiguousarray(A, dtype=dtype)
    BT = np.ascontiguousarray(BT, dtype=dtype)
    if mask_csr.nnz == 0 or A.shape[1] == 0:
        return np.zeros(mask_csr.nnz, dtype)
    return _sddmm(A, BT, mask_csr.indptr, mask_csr.indices)


@nb.njit(parallel=True, cache=True)
def _relu_layer_rows(
    y_indptr,
    y_indices,
    y_data,
    w_indptr,
    w_indices,
    w_data,
    bias,
    ymax,
    row0,
    offsets,
    out_idx,
    out_val,
    counts,
    n_cols,
    block,
):
    n_rows = offsets.shape[0] - 1
    for blk in nb.prange((n_rows + block - 1) // block):
        acc = np.zeros(n_cols, y_data.dtype)
        seen = np.zeros(n_cols, np.bool_)
        for r in range(blk * block, min(n_rows, (blk + 1) * block)):
            base = offsets[r]
            lo, hi = y_indptr[row0 + r], y_indptr[row0 + r + 1]
            # Only values matter (the bias goes on nonzeros of Y W), so a row that may fill
            # more than 1/8 of the columns accumulates without tracking its pattern and is
            # then scanned in column order; a sparser row records the columns it touches.
            if (offsets[r + 1] - base) * 8 > n_cols:
                for p in range(lo, hi):
                    v = y_data[p]
                    k = y_indices[p]
                    for q in range(w_indptr[k], w_indptr[k + 1]):
                        acc[w_indices[q]] += v * w_data[q]
                m = 0
                for j in range(n_cols):
                    z = acc[j]
                    if z != 0:
                        acc[j] = 0
                        z += bias
                        if z > 0:
                            out_idx[base + m] = j
                            out_val[base + m] = min(z, ymax)
                            m += 1
                counts[r] = m
                continue
            cnt = 0
            for p in range(lo, hi):
                k = y_indices[p]
                v = y_data[p]
                for q in range(w_indptr[k], w_indptr[k + 1]):
                    j = w_indices[q]
                    if not seen[j]:
                        seen[j] = True
                        out_idx[base + cnt] = j
                        cnt += 1
                    acc[j] += v * w_data[q]
            out_idx[base : base + cnt].sort()
            m = 0
            for t in range(cnt):
                j = out_idx[base + t]
                z = acc[j]
                acc[j] = 0
                seen[j] = False
                if z != 0:
                    z += bias
                    if z > 0:
                        out_idx[base + m] = j
                        out_val[base + m] = min(z, ymax)
                        m += 1
            counts[r] = m


@nb.njit(parallel=True, cache=True)
def _row_bounds(y_indptr, y_indices, w_indptr, n_cols):
    """Worst-case output length of every row: its inputs' out-degrees summed, at most n_cols."""
    n_rows = y_indptr.shape[0] - 1
    bound = np.empty(n_rows, np.int64)
    for r in nb.prange(n_rows):
        total = 0
        for p in range(y_indptr[r], y_indptr[r + 1]):
            k = y_indices[p]
            total += w_indptr[k + 1] - w_indptr[k]
        bound[r] = min(total, n_cols)
    return bound


@nb.njit(parallel=True, cache=True)
def _compact(offsets, counts, out_idx, out_val, indptr, indices, data):
    for r in nb.prange(counts.shape[0]):
        src, dst = offsets[r], indptr[r]
        for t in range(counts[r]):
            indices[dst + t] = out_idx[src + t]
            data[dst + t] = out_val[src + t]


def relu_layer(Y, W, bias, ymax=None, max_entries=1 << 20):
    """One sparse ReLU layer, fused: ``Z = Y @ W``; ``bias`` added to the nonzeros of Z only;
    ReLU; clamp at ``ymax``. ``Y`` and ``W`` are scipy CSR; returns CSR with sorted indices.

    Rows go through in chunks whose worst-case output fits ``max_entries`` (1M measured
    fastest on 2 cores), so memory stays bounded however many rows come.
    """
    import scipy.sparse as sp

    dtype = np.result_type(Y.dtype, W.dtype)
    n_rows, n_cols = Y.shape[0], W.shape[1]
    y_indptr = Y.indptr.astype(np.int64, copy=False)
    w_indptr = W.indptr.astype(np.int64, copy=False)
    y_indices = Y.indices.astype(np.int32, copy=False)
    y_data = Y.data.astype(dtype, copy=False)
    w_indices = W.indices.astype(np.int32, copy=False)
    w_data = W.data.astype(dtype, copy=False)
    cap = dtype.type(np.inf if ymax is None else ymax)
    bound = _row_bounds(y_indptr, y_indices, w_indptr, n_cols)
    counts = np.zeros(n_rows, np.int64)
    ends = np.concatenate([[0], np.cumsum(bound)])
    cuts = [0]
    while cuts[-1] < n_rows:
        limit = ends[cuts[-1]] + max_entries
        cuts.append(max(cuts[-1] + 1, int(np.searchsorted(ends, limit, side="right")) - 1))
    cuts[-1] = min(cuts[-1], n_rows)
    # one scratch buffer for every chunk: fresh large buffers would cost page faults each time
    scratch = max((ends[b] - ends[a] for a, b in zip(cuts[:-1], cuts[1:])), default=0)
    out_idx = np.empty(scratch, np.int32)
    out_val = np.empty(scratch, dtype)
    pieces_idx, pieces_val = [], []
    for row0, row1 in zip(cuts[:-1], cuts[1:]):
        offsets = ends[row0 : row1 + 1] - ends[row0]
        _relu_layer_rows(
            y_indptr,
            y_indices,
            y_data,
            w_indptr,
            w_indices,
            w_data,
            dtype.type(bias),
            cap,
            row0,
            offsets,
            out_idx,
            out_val,
            counts[row0:row1],
            n_cols,
            64,
        )
        indptr = np.concatenate([[0], np.cumsum(counts[row0:row1])])
        pieces_idx.append(np.empty(indptr[-1], np.int32))
        pieces_val.append(np.empty(indptr[-1], dtype))
        _compact(
            offsets, counts[row0:row1], out_idx, out_val, indptr, pieces_idx[-1], pieces_val[-1]
        )
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate(pieces_idx) if pieces_idx else np.empty(0, np.int32)
    data = np.concatenate(pieces_val) if pieces_val else np.empty(0, dtype)
    out = sp.csr_array((data, indices, indptr), shape=(n_rows, n_cols))
    out.has_sorted_indices = True
    return out
