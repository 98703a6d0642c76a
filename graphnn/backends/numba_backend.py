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
from ._base import check_inner
from .array_backend import ArrayBackend


class NumbaBackend(kernels.Products, ArrayBackend):
    def __init__(self):
        super().__init__("numba", np, sp)

    def relu_layer(self, Y, W, bias, ymax=None):
        check_inner(Y.shape, W.shape, "relu_layer")
        Z = challenge_kernel.relu_layer(sp.csr_array(Y), sp.csr_array(W), bias, ymax)
        return sp.csr_matrix(Z)
