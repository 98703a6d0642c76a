"""CuPy backend (cuSPARSE on an NVIDIA GPU). CuPy is imported only when this backend is used.

Sparse matrices are ``cupyx.scipy.sparse.csr_matrix``, dense ones ``cupy.ndarray``. Sparse times
sparse is cuSPARSE SpGEMM, dense times sparse cuSPARSE SpMM; the masked product (SDDMM) is a
small elementwise kernel over the mask's stored entries.
"""

import numpy as np

from ..errors import BackendUnavailable, GraphnnError
from ._base import APPLY_OPS, SELECT_OPS, Backend, check_choice, check_inner, check_mask
from ._csr import filter_csr, row_ids

_MAX_PRODUCTS = 2**26  # intermediate products per SpGEMM call: 2**30 ran out of cuSPARSE resources

_SDDMM_SOURCE = """
T s = 0;
const T* a = &A[r * k];
const T* b = &BT[c * k];
for (long long t = 0; t < k; ++t) s += a[t] * b[t];
out = s;
"""


def _import_cupy():
    try:
        import cupy
        import cupyx.scipy.sparse as csp

        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # ImportError, or a CUDA error when no driver or device is present
        raise BackendUnavailable(
            f"backend 'cupy' needs CuPy and an NVIDIA GPU ({type(e).__name__}: {e}); "
            "install with: pip install 'graphnn[gpu]'"
        ) from None
    return cupy, csp


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self):
        self.cp, self.csp = _import_cupy()
        self._sddmm = self.cp.ElementwiseKernel(
            "int64 r, int64 c, raw T A, raw T BT, int64 k", "T out", _SDDMM_SOURCE, "graphnn_sddmm"
        )

    def matrix(self, W):
        if isinstance(W, self.csp.csr_matrix):
            return W
        import scipy.sparse as sp

        W = sp.csr_array(W)
        if W.nnz >= 2**31:
            raise GraphnnError(f"a matrix with {W.nnz} stored entries exceeds cuSPARSE's int32")
        # int32 indices: cuSPARSE's int64 path is slower, and CuPy keeps what it is given
        cp = self.cp
        return self.csp.csr_matrix(
            (cp.asarray(W.data), cp.asarray(W.indices, cp.int32), cp.asarray(W.indptr, cp.int32)),
            shape=W.shape,
        )

    def _empty(self, shape, dtype):
        cp = self.cp
        return self.csp.csr_matrix(
            (cp.empty(0, dtype), cp.empty(0, cp.int32), cp.zeros(shape[0] + 1, cp.int32)),
            shape=shape,
        )

    def to_scipy(self, A):
        import scipy.sparse as sp

        return sp.csr_array(A.get())

    def dense(self, X):
        return self.cp.asarray(X)

    def to_numpy(self, X):
        return self.cp.asnumpy(X)

    def nnz(self, A):
        return int(A.nnz)

    def spgemm(self, A, B):
        check_inner(A.shape, B.shape, "spgemm")
        shape, dtype = (A.shape[0], B.shape[1]), np.result_type(A.dtype, B.dtype)
        if A.nnz == 0 or B.nnz == 0 or 0 in shape:
            return self._empty(shape, dtype)  # cuSPARSE SpGEMM is undefined on empty operands
        # cuSPARSE counts intermediate products in int32: split A's rows to stay below 2**31
        cp = self.cp
        counts = cp.diff(B.indptr).astype(cp.int64)[A.indices]
        cum = cp.concatenate([cp.zeros(1, cp.int64), cp.cumsum(counts)])
        row_products = cum[A.indptr[1:]] - cum[A.indptr[:-1]]
        total = int(cum[-1])
        if total < _MAX_PRODUCTS:
            return (A @ B).tocsr()
        targets = cp.arange(_MAX_PRODUCTS, total, _MAX_PRODUCTS, dtype=cp.int64)
        bounds = cp.asnumpy(cp.searchsorted(cp.cumsum(row_products), targets))
        edges = [0, *sorted({int(b) for b in bounds} - {0}), A.shape[0]]
        parts = [(A[lo:hi] @ B).tocsr() for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]
        return self.csp.vstack(parts, format="csr")

    def spmm(self, X, W):
        check_inner(X.shape, W.shape, "spmm")
        if 0 in X.shape or W.nnz == 0 or W.shape[1] == 0:
            return self.cp.zeros((X.shape[0], W.shape[1]), np.result_type(X.dtype, W.dtype))
        return (W.T @ X.T).T

    def masked_product(self, A, B, mask):
        check_mask(A.shape, B.shape, mask.shape)
        cp = self.cp
        M = mask.tocsr()
        M.sort_indices()
        dtype = np.result_type(A.dtype, B.dtype)
        A = cp.ascontiguousarray(A, dtype=dtype)
        BT = cp.ascontiguousarray(B.T, dtype=dtype)
        rows = row_ids(cp, M.indptr).astype(cp.int64)
        cols = M.indices.astype(cp.int64)
        values = self._sddmm(rows, cols, A, BT, A.shape[1])
        return self.csp.csr_matrix((values, M.indices, M.indptr), shape=M.shape)

    def select(self, A, op, thresh):
        check_choice(op, SELECT_OPS, "select op")
        A = A.tocsr()
        keep = SELECT_OPS[op](A.data, thresh)
        indptr, indices, data = filter_csr(self.cp, A.indptr, A.indices, A.data, keep)
        return self.csp.csr_matrix((data, indices, indptr), shape=A.shape)

    def apply(self, A, op, scalar):
        check_choice(op, APPLY_OPS, "apply op")
        A = A.tocsr(copy=True)
        ufunc = getattr(self.cp, APPLY_OPS[op].__name__)
        A.data = ufunc(A.data, scalar).astype(A.dtype, copy=False)
        return A

    def row_counts(self, A):
        return self.cp.asnumpy(self.cp.diff(A.tocsr().indptr)).astype(np.int64)

    def take_rows(self, A, rows):
        if len(rows) == 0:
            return self._empty((0, A.shape[1]), A.dtype)
        return A.tocsr()[self.cp.asarray(rows, dtype=self.cp.int64)]

    def vstack(self, mats):
        return self.csp.vstack(mats, format="csr")

    def reduce(self, A, axis=None):
        if axis is None:
            return float(A.data.sum())
        return self.cp.asnumpy(A.sum(axis=axis)).ravel()
