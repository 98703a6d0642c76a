"""Multi-threaded CPU kernels for the operations SuiteSparse and scipy do slowly here.

Measured by ``bench/backends.py`` on 2 cores (float32, best of 3, 2026-11-26, load 0.7): a dense
512 x 4096 batch times a sparse 4096 x 4096 weight at density 0.1 takes 0.078 s here against
0.19 s (scipy), 0.44 s (SuiteSparse mxm) and 0.097 s (dense BLAS); the masked product X^T dZ at
the weight's edges takes 0.064 s here against 0.13 s for a dense product plus gather and 0.52 s
for SuiteSparse's masked mxm in its dot-product form ``C(M.S) << A @ B.T``. (The Graph
Challenge layer is ``graphnn.challenge_kernel``.)

The dense kernels keep the batch as the innermost, contiguous axis so the loops vectorise. Each
output entry is written by one thread in a fixed order, so results do not depend on the thread
count.
"""

import numba as nb
import numpy as np

__all__ = ["spmm_t", "sddmm"]


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
