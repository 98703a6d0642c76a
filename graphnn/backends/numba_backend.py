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


class NumbaBackend(kernels.Products, ArrayBackend):
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
