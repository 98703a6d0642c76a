"""python-graphblas (SuiteSparse:GraphBLAS) backend.

Sparse matrices are ``graphblas.Matrix``; dense batches stay numpy arrays, because for a dense
batch times a sparse weight and for the masked gradient product the kernels of
``graphnn.kernels`` measured faster than SuiteSparse's mxm on 2 cores (``bench/backends.py``
prints the figures). Sparse times sparse, select, apply and reductions are GraphBLAS; training's
two products are the numba backend's.
"""

import graphblas as gb
import numpy as np
import scipy.sparse as sp
from graphblas import agg, binary, monoid, semiring

from .. import kernels
from ..entries import flat_keys
from ..errors import GraphnnError
from ._base import APPLY_OPS, SELECT_OPS, Backend, check_choice, check_inner
from .topk import GROWTH_BLOCK, RunningTopK

_BINARY = {"plus": binary.plus, "times": binary.times, "min": binary.min, "max": binary.max}


class GraphblasBackend(kernels.Products, Backend):
    name = "graphblas"
    xp = np

    def asarray(self, a, dtype=None):
        return np.asarray(a, dtype=dtype)

    def asnumpy(self, a):
        return np.asarray(a)

    def matrix(self, W):
        if isinstance(W, gb.Matrix):
            return W
        return gb.io.from_scipy_sparse(sp.csr_array(W))

    def to_scipy(self, A):
        return gb.io.to_scipy_sparse(A, format="csr")

    def csr_arrays(self, A, transpose=False):
        M = gb.io.to_scipy_sparse(A, format="csc" if transpose else "csr")
        M.sort_indices()
        return M.data, M.indices, M.indptr

    def from_csr(self, data, indices, indptr, shape):
        return gb.io.from_scipy_sparse(sp.csr_array((data, indices, indptr), shape=shape))

    def nnz(self, A):
        return int(A.nvals)

    def shape(self, A):
        return (A.nrows, A.ncols)

    def spgemm(self, A, B):
        check_inner(self.shape(A), self.shape(B), "spgemm")
        return semiring.plus_times(A @ B).new()

    def select(self, A, op, thresh):
        check_choice(op, SELECT_OPS, "select op")
        return A.select(op, thresh).new()

    def apply(self, A, op, scalar):
        check_choice(op, APPLY_OPS, "apply op")
        return A.apply(_BINARY[op], right=scalar).new()

    def row_counts(self, A):
        return A.reduce_rowwise(agg.count).new().to_dense(fill_value=0).astype(np.int64)

    def take_rows(self, A, rows):
        return A[np.asarray(rows, dtype=np.int64), :].new()

    def vstack(self, mats):
        return gb.ss.concat([[M] for M in mats])

    # -- structural updates, in SuiteSparse -----------------------------------------------

    def entry_keys(self, A):
        rows, cols, _ = A.to_coo(sort=True)
        return flat_keys(rows, cols, A.ncols)

    def keep(self, A, mask):
        rows, cols, _ = A.to_coo(sort=True)
        M = gb.Matrix.from_coo(rows, cols, np.asarray(mask, bool), nrows=A.nrows, ncols=A.ncols)
        C = gb.Matrix(A.dtype, A.nrows, A.ncols)
        C(M.V) << A  # the value mask: entries whose mask value is true
        return C

    def add_zeros(self, A, keys):
        keys = np.asarray(keys, np.int64)
        N = gb.Matrix.from_coo(keys // A.ncols, keys % A.ncols, 0, nrows=A.nrows, ncols=A.ncols,
                               dtype=A.dtype)  # fmt: skip
        if A.ewise_mult(N).new().nvals:
            raise GraphnnError("add_zeros: a key is already an entry of the matrix")
        return A.ewise_add(N, binary.plus).new()  # the union; N's entries keep their zero

    def complement_topk(self, XT, dZT, A, k, floor=-1.0):
        n_in, n_out = A.nrows, A.ncols
        top = RunningTopK(k, floor, XT.dtype)
        block = max(1, GROWTH_BLOCK // max(n_out, 1))
        BT = gb.Matrix.from_dense(np.ascontiguousarray(dZT))  # n_out x batch
        for r0 in range(0, n_in, block):
            r1 = min(n_in, r0 + block)
            G = gb.Matrix(XT.dtype, r1 - r0, n_out)
            # G(~W.S, replace) << X^T dZ over this block of rows, the dot-product form
            G(~A[r0:r1, :].new().S, replace=True) << semiring.plus_times(
                gb.Matrix.from_dense(XT[r0:r1]) @ BT.T
            )
            rows, cols, vals = G.to_coo(sort=True)
            top.push(np.abs(vals), flat_keys(rows.astype(np.int64) + r0, cols, n_out))
        return top.scores, top.keys

    def relu_layer(self, Y, W, bias, ymax=None):
        check_inner(self.shape(Y), self.shape(W), "relu_layer")
        Z = semiring.plus_times(Y @ W).new()
        Z = Z.select("!=", 0).new()  # the bias goes on nonzeros of Y W only
        Z = Z.apply(binary.plus, right=bias).select(">", 0).new()
        return Z if ymax is None else Z.apply(binary.min, right=ymax).new()

    def reduce(self, A, axis=None):
        if axis is None:
            return float(A.reduce_scalar(monoid.plus).new().get(0))
        v = A.reduce_columnwise(monoid.plus) if axis == 0 else A.reduce_rowwise(monoid.plus)
        return v.new().to_dense(fill_value=0)
