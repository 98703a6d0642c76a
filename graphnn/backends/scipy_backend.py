"""scipy.sparse backend: CSR arrays, with the multi-threaded kernels of ``graphnn.kernels``
for the dense-times-sparse and masked products and the fused sparse ReLU layer (each measured
faster than scipy's own operations, see ``bench/``)."""

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ._base import APPLY_OPS, SELECT_OPS, Backend, check_choice, check_inner, check_mask
from ._csr import filter_csr


class ScipyBackend(Backend):
    name = "scipy"

    def matrix(self, W):
        return sp.csr_array(W)

    def to_scipy(self, A):
        return sp.csr_array(A)

    def dense(self, X):
        return np.asarray(X)

    def to_numpy(self, X):
        return np.asarray(X)

    def nnz(self, A):
        return int(A.nnz)

    def spgemm(self, A, B):
        check_inner(A.shape, B.shape, "spgemm")
        return sp.csr_array(A @ B)

    def spmm(self, X, W):
        check_inner(X.shape, W.shape, "spmm")
        return kernels.spmm_t(X.T, sp.csc_array(W)).T

    def masked_product(self, A, B, mask):
        check_mask(A.shape, B.shape, mask.shape)
        M = sp.csr_array(mask)
        M.sort_indices()
        return sp.csr_array((kernels.sddmm(A, B.T, M), M.indices, M.indptr), shape=M.shape)

    def select(self, A, op, thresh):
        check_choice(op, SELECT_OPS, "select op")
        A = sp.csr_array(A)
        keep = SELECT_OPS[op](A.data, thresh)
        indptr, indices, data = filter_csr(np, A.indptr, A.indices, A.data, keep)
        return sp.csr_array((data, indices, indptr), shape=A.shape)

    def apply(self, A, op, scalar):
        check_choice(op, APPLY_OPS, "apply op")
        A = sp.csr_array(A, copy=True)
        A.data = APPLY_OPS[op](A.data, scalar).astype(A.dtype, copy=False)
        return A

    def row_counts(self, A):
        return np.diff(A.indptr).astype(np.int64)

    def take_rows(self, A, rows):
        return sp.csr_array(A[np.asarray(rows, dtype=np.int64)])

    def vstack(self, mats):
        return sp.csr_array(sp.vstack(mats, format="csr"))

    def relu_layer(self, Y, W, bias, ymax=None):
        check_inner(Y.shape, W.shape, "relu_layer")
        return kernels.relu_layer(sp.csr_array(Y), sp.csr_array(W), bias, ymax)

    def reduce(self, A, axis=None):
        if axis is None:
            return float(A.data.sum())
        return np.asarray(A.sum(axis=axis)).ravel()
