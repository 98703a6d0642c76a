"""Every backend operation written once against an array module ``xp`` and its sparse module.

With numpy and ``scipy.sparse`` this is the ``reference`` backend, the executable
specification every other backend is tested against; with CuPy and ``cupyx.scipy.sparse`` it is
the body of the ``cupy`` backend, which overrides only the products it has kernels for. So the
GPU path's logic (empty operands, chunked products, structural selects) runs on the CPU in the
tests, line for line.

Sparse matrices are the sparse module's ``csr_matrix`` with int32 indices (cuSPARSE's fast
path); dense ones are ``xp`` arrays. In training the batch is the contiguous axis: activations
travel as ``features x batch``.
"""

import numpy as np
import scipy.sparse as sp

from ..entries import csr_keys
from ..errors import GraphnnError
from ._base import APPLY_OPS, SELECT_OPS, Backend, check_choice, check_inner, row_ids
from .topk import GROWTH_BLOCK, RunningTopK

# intermediate products per sparse-times-sparse call: cuSPARSE counts them in int32 and ran
# out of resources at 2**30 on an H200 (bench/gpu_check.sh); scipy has no such limit
MAX_PRODUCTS = 2**26
_GATHER = 1 << 24  # entries of the (entries x inner) products a gather forms at once


def filter_csr(xp, indptr, indices, data, keep):
    """The CSR arrays of the entries where ``keep`` is true, structure order preserved."""
    n_rows = indptr.shape[0] - 1
    kept = row_ids(xp, indptr)[keep]
    new_indptr = xp.zeros(n_rows + 1, dtype=indptr.dtype)
    if kept.size:  # cupy.bincount refuses an empty array
        new_indptr[1:] = xp.cumsum(xp.bincount(kept, minlength=n_rows))
    return new_indptr, indices[keep], data[keep]


def gather_dot(xp, A, BT, rows, cols, out=None):
    """``out[p] = <A[rows[p]], BT[cols[p]]>`` in chunks (no entries x inner temporary)."""
    out = xp.empty(rows.size, dtype=A.dtype) if out is None else out
    step = max(1, _GATHER // max(A.shape[1], 1))
    for lo in range(0, rows.size, step):
        hi = min(rows.size, lo + step)
        out[lo:hi] = (A[rows[lo:hi]] * BT[cols[lo:hi]]).sum(axis=1)
    return out


class ArrayBackend(Backend):
    """The backend contract on ``xp`` (numpy-like) and ``xsp`` (scipy.sparse-like)."""

    def __init__(self, name, xp, xsp):
        self.name, self.xp, self.xsp = name, xp, xsp

    # -- arrays --------------------------------------------------------------------------

    def asarray(self, a, dtype=None):
        return self.xp.asarray(a, dtype=dtype)

    def asnumpy(self, a):
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def matrix(self, W):
        if isinstance(W, self.xsp.csr_matrix):
            return W
        W = sp.csr_array(W)
        if W.nnz >= 2**31:
            raise GraphnnError(f"a matrix with {W.nnz} stored entries exceeds int32 indices")
        xp = self.xp
        return self.xsp.csr_matrix(
            (xp.asarray(W.data), xp.asarray(W.indices, xp.int32), xp.asarray(W.indptr, xp.int32)),
            shape=W.shape,
        )

    def _empty(self, shape, dtype):
        xp = self.xp
        return self.xsp.csr_matrix(
            (xp.empty(0, dtype), xp.empty(0, xp.int32), xp.zeros(shape[0] + 1, xp.int32)),
            shape=shape,
        )

    def to_scipy(self, A):
        A = A.tocsr()
        host = self.asnumpy
        return sp.csr_array((host(A.data), host(A.indices), host(A.indptr)), shape=A.shape)

    def csr_arrays(self, A, transpose=False):
        A = self.xsp.csr_matrix(A.T if transpose else A)
        A.sort_indices()
        return A.data, A.indices, A.indptr

    def from_csr(self, data, indices, indptr, shape):
        return self.xsp.csr_matrix((data, indices, indptr), shape=shape)

    def nnz(self, A):
        return int(A.nnz)

    # -- products ------------------------------------------------------------------------

    def spgemm(self, A, B):
        check_inner(A.shape, B.shape, "spgemm")
        shape, dtype = (A.shape[0], B.shape[1]), np.result_type(A.dtype, B.dtype)
        if A.nnz == 0 or B.nnz == 0 or 0 in shape:
            return self._empty(shape, dtype)  # cuSPARSE SpGEMM is undefined on empty operands
        xp = self.xp
        # products of each row of A: sum over its entries of the lengths of B's rows
        cum = xp.zeros(A.nnz + 1, xp.int64)
        cum[1:] = xp.cumsum(xp.diff(B.indptr).astype(xp.int64)[A.indices])
        row_products = cum[A.indptr[1:]] - cum[A.indptr[:-1]]
        total = int(cum[-1])
        if total <= MAX_PRODUCTS:
            return self.xsp.csr_matrix(A @ B)
        # split A's rows so that no call forms more than MAX_PRODUCTS products
        targets = xp.arange(MAX_PRODUCTS, total, MAX_PRODUCTS, dtype=xp.int64)
        bounds = self.asnumpy(xp.searchsorted(xp.cumsum(row_products), targets, side="right"))
        edges = sorted({0, A.shape[0], *(int(b) for b in bounds)})
        parts = [self.xsp.csr_matrix(A[lo:hi] @ B) for lo, hi in zip(edges[:-1], edges[1:])]
        return self.xsp.vstack(parts, format="csr")

    # -- structure -----------------------------------------------------------------------

    def select(self, A, op, thresh):
        check_choice(op, SELECT_OPS, "select op")
        A = A.tocsr()
        keep = SELECT_OPS[op](A.data, thresh)
        indptr, indices, data = filter_csr(self.xp, A.indptr, A.indices, A.data, keep)
        return self.xsp.csr_matrix((data, indices, indptr), shape=A.shape)

    def apply(self, A, op, scalar):
        check_choice(op, APPLY_OPS, "apply op")
        A = A.tocsr(copy=True)
        ufunc = getattr(self.xp, APPLY_OPS[op].__name__)
        A.data = ufunc(A.data, scalar).astype(A.dtype, copy=False)
        return A

    def row_counts(self, A):
        return self.asnumpy(self.xp.diff(A.tocsr().indptr)).astype(np.int64)

    def take_rows(self, A, rows):
        if len(rows) == 0:
            return self._empty((0, A.shape[1]), A.dtype)
        return self.xsp.csr_matrix(A.tocsr()[self.xp.asarray(rows, dtype=self.xp.int64)])

    def vstack(self, mats):
        return self.xsp.vstack(mats, format="csr")

    def reduce(self, A, axis=None):
        if axis is None:
            return float(A.data.sum())
        return self.asnumpy(A.sum(axis=axis)).ravel()

    # -- structural updates: on the host (a device model moves there for them) ------------

    def entry_keys(self, A):
        A = self.to_scipy(A)
        A.sort_indices()
        return csr_keys(A.indptr, A.indices, A.shape[1])

    def keep(self, A, mask):
        A = A.tocsr()
        A.sort_indices()
        indptr, indices, data = filter_csr(
            self.xp, A.indptr, A.indices, A.data, self.xp.asarray(mask, dtype=bool)
        )
        return self.xsp.csr_matrix((data, indices, indptr), shape=A.shape)

    def add_zeros(self, A, keys):
        S = self.to_scipy(A)
        S.sort_indices()
        new = np.sort(np.asarray(keys, np.int64))
        existing = self.entry_keys(S)
        pos = np.searchsorted(existing, new)  # a merge of two sorted key lists: O(n + k)
        hit = pos < existing.size
        if (existing[pos[hit]] == new[hit]).any() or (np.diff(new) == 0).any():
            raise GraphnnError("add_zeros: a key is already an entry of the matrix")
        merged = np.insert(existing, pos, new)
        values = np.insert(S.data, pos, np.zeros(new.size, S.dtype))
        indptr = np.zeros(S.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(merged // S.shape[1], minlength=S.shape[0]), out=indptr[1:])
        return self.matrix(sp.csr_array((values, merged % S.shape[1], indptr), shape=S.shape))

    def complement_topk(self, XT, dZT, A, k, floor=-1.0):
        existing = self.entry_keys(A)
        n_in, n_out = A.shape
        top = RunningTopK(k, floor, XT.dtype)
        block = max(1, GROWTH_BLOCK // max(n_out, 1))
        for r0 in range(0, n_in, block):
            r1 = min(n_in, r0 + block)
            G = np.abs(XT[r0:r1] @ dZT.T).ravel()
            lo, hi = np.searchsorted(existing, [r0 * n_out, r1 * n_out])
            G[existing[lo:hi] - r0 * n_out] = -1  # the complement: present edges never grow
            top.push(G, offset=r0 * n_out)
        return top.scores, top.keys

    # -- training: batch along the contiguous axis ----------------------------------------

    def csr_times_dense(
        self, data, indices, indptr, shape, D, order=None, bias=None, relu=False, mask=None
    ):
        """``M @ D`` for ``M`` given by its CSR arrays and ``shape``, ``D`` dense; then the
        bias and ReLU, or the mask."""
        if order is not None:
            data = data[order]
        Z = self.xp.asarray(self.xsp.csr_matrix((data, indices, indptr), shape=shape) @ D)
        return self.finish(Z, bias, relu, mask)

    def sddmm(self, XT, dZT, indptr, indices, rows):
        """``(X^T dZ)`` at the CSR entries ``(rows, indices)``, in CSR order."""
        return gather_dot(self.xp, XT, dZT, rows, indices)


class ReferenceBackend(ArrayBackend):
    """numpy and scipy.sparse only: the executable specification."""

    def __init__(self):
        super().__init__("reference", np, sp)
