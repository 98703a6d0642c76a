"""The numba backend: scipy.sparse containers and the multi-threaded CPU kernels of
``graphnn.kernels`` for the products (dense x sparse, the masked product, and training's two
products with the batch contiguous) and the challenge layer of ``graphnn.challenge_kernel``,
each measured faster than scipy's own operations and than SuiteSparse's on this project's
machines (``bench/``).
Everything else is the reference implementation.
"""

import numpy as np
import scipy.sparse as sp

from .. import challenge_kernel, kernels
from ._base import check_inner, check_mask
from .array_backend import ArrayBackend


class NumbaProducts:
    """Training's products on the batch-tiled kernels of ``graphnn.kernels``: a prepared operand
    is a :class:`graphnn.kernels.Blocked`, a prepared operand in gives one out (in the same
    tiles), and the bias, ReLU and its derivative are fused into the products. Shared by the
    numba and graphblas backends."""

    # a 4096 x 4096 layer, batch 512, forward and backward, against numpy's BLAS over a
    # zero-filled copy (2 cores, AVX-512): 0.90x its time at density 0.3, 1.13x at 0.4
    dense_crossover = 0.35

    def prepare(self, D, like=None, rows=None):
        T = like.width if isinstance(like, kernels.Blocked) else None
        if isinstance(D, kernels.Blocked):
            return D.retiled(T or D.width)
        D = np.asarray(D)
        if T is None:
            T = kernels.tile_width(max(rows or 0, D.shape[0]), D.shape[1], D.dtype.itemsize)
        return kernels.Blocked.of(D, T)

    def plain(self, D):
        return D.plain() if isinstance(D, kernels.Blocked) else D

    def batch_sums(self, D):
        if isinstance(D, kernels.Blocked):
            return D.row_sums.astype(D.dtype)
        return np.asarray(D).sum(axis=1)

    def csr_times_dense(
        self, data, indices, indptr, shape, D, order=None, bias=None, relu=False, mask=None
    ):
        if order is not None:  # a gather here beats reaching the values through it in the kernel
            data = kernels.take(data, order)
        return kernels.rows_times_dense(D, indptr, indices, data, shape[0], bias, relu, mask)

    def sddmm(self, XT, dZT, indptr, indices, rows):
        return kernels.sddmm(XT, dZT, indptr, indices)

    def layer_backward(
        self, XT, dZT, data, indptr, indices, rows, shape, input_grad=True, relu=False
    ):
        # one pass: each row of dZ read serves both products
        return kernels.backward(XT, dZT, indptr, indices, data, input_grad, relu)


class NumbaBackend(NumbaProducts, ArrayBackend):
    def __init__(self):
        super().__init__("numba", np, sp)

    def spmm(self, X, W):
        check_inner(X.shape, W.shape, "spmm")
        return kernels.spmm_t(np.asarray(X).T, sp.csc_array(W)).T

    def masked_product(self, A, B, mask):
        check_mask(A.shape, B.shape, mask.shape)
        M = sp.csr_array(mask)
        M.sort_indices()
        values = kernels.sddmm(np.asarray(A), np.asarray(B).T, M.indptr, M.indices)
        return sp.csr_matrix((values, M.indices, M.indptr), shape=M.shape)

    def relu_layer(self, Y, W, bias, ymax=None):
        check_inner(Y.shape, W.shape, "relu_layer")
        Z = challenge_kernel.relu_layer(sp.csr_array(Y), sp.csr_array(W), bias, ymax)
        return sp.csr_matrix(Z)
