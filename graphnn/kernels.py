"""Multi-threaded CPU kernels for training's products, with the batch as the contiguous axis.

Each kernel is a single-threaded, GIL-free numba function over a range of output rows; a small
pool of Python threads (as many as ``numba.get_num_threads()``) takes the ranges, four per
thread, split so that each holds about the same number of stored entries. Nothing spins between
calls and a thread that a busy neighbour slows simply takes fewer ranges, where numba's
``prange`` (one OpenMP region, static shares) made every call wait for the slowest thread.
Each output entry is written by one range in a fixed order, so results do not depend on the
thread count.

What bounds them, measured on this project's 2-core machines (AVX2, 512 KB L2 per core) with a
512-sample float32 batch: the sparse x dense product is bound by the loads and stores of its
output row (one of each per multiply-add when applied one entry at a time; eight entries per
pass here), the masked product by its loads (two per multiply-add one at a time; 1.25 with four
dot products sharing a row). ``bench/train_step.py`` times them inside whole training epochs
against PyTorch dense and torch.sparse. (The Graph Challenge layer is
``graphnn.challenge_kernel``.)
"""

import functools
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

__all__ = ["adam_update", "rows_times_dense", "spmm_t", "sddmm"]


@nb.njit(nogil=True, cache=True, fastmath=True)
def _rows_times_dense(lo, hi, D, indptr, indices, data, out):
    """Rows ``lo..hi-1`` of ``out = M @ D``: ``out[j] = sum_k data[k] * D[indices[k]]``."""
    for j in range(lo, hi):
        z = out[j]
        z[:] = 0
        k, end = indptr[j], indptr[j + 1]
        while k + 8 <= end:
            x0, x1, x2, x3 = D[indices[k]], D[indices[k + 1]], D[indices[k + 2]], D[indices[k + 3]]
            x4, x5 = D[indices[k + 4]], D[indices[k + 5]]
            x6, x7 = D[indices[k + 6]], D[indices[k + 7]]
            w0, w1, w2, w3 = data[k], data[k + 1], data[k + 2], data[k + 3]
            w4, w5, w6, w7 = data[k + 4], data[k + 5], data[k + 6], data[k + 7]
            for c in range(z.shape[0]):
                z[c] += (w0 * x0[c] + w1 * x1[c] + w2 * x2[c] + w3 * x3[c]) + (
                    w4 * x4[c] + w5 * x5[c] + w6 * x6[c] + w7 * x7[c]
                )
            k += 8
        while k < end:
            x0 = D[indices[k]]
            w0 = data[k]
            for c in range(z.shape[0]):
                z[c] += w0 * x0[c]
            k += 1


@nb.njit(nogil=True, cache=True, fastmath=True)
def _sddmm(lo, hi, A, BT, indptr, indices, out):
    """Entries of rows ``lo..hi-1``: ``out[k] = A[i] . BT[indices[k]]``, four at a time."""
    zero = A.dtype.type(0)
    for i in range(lo, hi):
        a = A[i]
        k, end = indptr[i], indptr[i + 1]
        while k + 4 <= end:
            b0, b1 = BT[indices[k]], BT[indices[k + 1]]
            b2, b3 = BT[indices[k + 2]], BT[indices[k + 3]]
            s0 = s1 = s2 = s3 = zero
            for c in range(a.shape[0]):
                s0 += a[c] * b0[c]
                s1 += a[c] * b1[c]
                s2 += a[c] * b2[c]
                s3 += a[c] * b3[c]
            out[k], out[k + 1], out[k + 2], out[k + 3] = s0, s1, s2, s3
            k += 4
        while k < end:
            b = BT[indices[k]]
            s = zero
            for c in range(a.shape[0]):
                s += a[c] * b[c]
            out[k] = s
            k += 1


@functools.cache
def _pool(threads):
    return ThreadPoolExecutor(threads, thread_name_prefix="graphnn-kernel")


def _parallel(kernel, indptr, *args):
    """``kernel(lo, hi, *args)`` over the rows of ``indptr``, in ranges of about equal work
    (stored entries plus rows) taken by the pool's threads."""
    rows = indptr.size - 1
    threads = nb.get_num_threads()
    if threads == 1 or rows < 2:
        kernel(0, rows, *args)
        return
    parts = min(rows, 4 * threads)
    work = np.asarray(indptr, np.int64) + np.arange(rows + 1)
    cuts = np.searchsorted(work, np.linspace(0, work[-1], parts + 1)[1:-1])
    bounds = np.unique(np.concatenate([[0], cuts, [rows]]))
    jobs = [_pool(threads).submit(kernel, lo, hi, *args) for lo, hi in zip(bounds, bounds[1:])]
    for job in jobs:
        job.result()


def rows_times_dense(D, indptr, indices, data, nrows):
    """``M @ D`` for the CSR ``M`` (``nrows`` rows) given by its arrays and ``D`` dense with the
    batch as its contiguous last axis."""
    D = np.ascontiguousarray(D, dtype=data.dtype)
    out = np.empty((nrows, D.shape[1]), data.dtype)
    if D.shape[1] == 0 or indices.size == 0:
        out[:] = 0
        return out
    _parallel(_rows_times_dense, indptr, D, indptr, indices, data, out)
    return out


def spmm_t(XT, W_csc):
    """``(X @ W).T`` for a dense ``XT = X.T`` (features x batch) and a scipy CSC ``W``."""
    return rows_times_dense(XT, W_csc.indptr, W_csc.indices, W_csc.data, W_csc.shape[1])


def sddmm(A, BT, indptr, indices):
    """Values of ``A @ B`` at the entries of the CSR structure ``(indptr, indices)``, in its
    order.

    ``A`` (rows x inner) and ``BT = B.T`` (cols x inner) are dense; the inner (batch) axis is
    made contiguous in both.
    """
    dtype = np.result_type(A.dtype, BT.dtype)
    A = np.ascontiguousarray(A, dtype=dtype)
    BT = np.ascontiguousarray(BT, dtype=dtype)
    if indices.size == 0 or A.shape[1] == 0:
        return np.zeros(indices.size, dtype)
    out = np.empty(indices.size, dtype)
    _parallel(_sddmm, indptr, A, BT, indptr, indices, out)
    return out


@nb.njit(nogil=True, cache=True)
def _adam(lo, hi, p, g, m, v, b1, b2, c1, c2, step, eps):
    """Adam on entries ``lo..hi-1``, in one pass: the arithmetic and order of the numpy
    expressions in ``graphnn.training.optim.Adam`` (no fused multiply-adds), so both give the
    same bits."""
    for i in range(lo, hi):
        gi = g[i]
        mi = m[i] * b1 + c1 * gi
        vi = v[i] * b2 + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= step * mi / (np.sqrt(vi) + eps)


def adam_update(p, g, m, v, b1, b2, step, eps):
    """One Adam step in place on contiguous numpy arrays of one dtype (``step`` is the
    bias-corrected learning rate), split over the kernel threads."""
    t = p.dtype.type
    args = (p, g, m, v, t(b1), t(b2), t(1 - b1), t(1 - b2), t(step), t(eps))
    n, threads = p.size, nb.get_num_threads()
    if threads == 1 or n < 1 << 16:
        _adam(0, n, *args)
        return
    bounds = np.linspace(0, n, 4 * threads + 1).astype(np.int64)
    jobs = [_pool(threads).submit(_adam, lo, hi, *args) for lo, hi in zip(bounds, bounds[1:])]
    for job in jobs:
        job.result()
