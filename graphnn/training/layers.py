"""Trainable layers. A sparse layer stores only its structure and nonzero values.

Activations travel transposed, features x batch, so every kernel streams along the contiguous
batch axis. For ``W`` (n_in x n_out, CSR values ``w``):

* forward      ``Z^T = W^T X^T``    : ``spmm_t`` over the CSC view of ``W``;
* data grad    ``dX^T = W dZ^T``    : ``spmm_t`` over the CSR arrays read as the CSC of ``W^T``;
* weight grad  ``dW = X^T dZ`` at ``W``'s edges only (SDDMM), in CSR order.

No dense weight matrix or dense mask exists at any point.
"""

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ..errors import DimensionMismatch

__all__ = ["SparseLayer", "DenseLayer"]


class SparseLayer:
    """A sparse ``n_in x n_out`` weight with a bias vector.

    ``indptr``/``indices`` hold the CSR structure, ``values`` the weights in CSR order: the
    parameter vector the optimiser sees.
    """

    sparse = True

    def __init__(self, W, bias):
        W = sp.csr_array(W)
        self.n_in, self.n_out = W.shape
        self.bias = np.asarray(bias, dtype=W.dtype).copy()
        if self.bias.shape != (self.n_out,):
            raise DimensionMismatch(f"bias needs shape ({self.n_out},), got {self.bias.shape}")
        self.set_structure(W)

    @property
    def nnz(self):
        return self.values.size

    @property
    def params(self):
        return (self.values, self.bias)

    def set_structure(self, W):
        """Take the structure and values of the CSR ``W`` (sorted, no duplicates)."""
        W = sp.csr_array(W)
        W.sum_duplicates()
        W.sort_indices()
        self.indptr = W.indptr.astype(np.int64)
        self.indices = W.indices.astype(np.int32)
        self.values = np.ascontiguousarray(W.data)
        # CSC view: column-sorted order of the entries, as a permutation of the CSR order
        rows = np.repeat(np.arange(self.n_in, dtype=np.int32), np.diff(self.indptr))
        self.to_csc = np.lexsort((rows, self.indices))
        self.csc_indptr = np.zeros(self.n_out + 1, np.int64)
        np.cumsum(np.bincount(self.indices, minlength=self.n_out), out=self.csc_indptr[1:])
        self.csc_indices = rows[self.to_csc]

    def rows(self):
        """The row of every stored entry, in CSR order."""
        return np.repeat(np.arange(self.n_in), np.diff(self.indptr))

    def to_scipy(self):
        return sp.csr_array(
            (self.values.copy(), self.indices.copy(), self.indptr.copy()),
            shape=(self.n_in, self.n_out),
        )

    def forward(self, XT):
        W_csc = sp.csc_array(
            (self.values[self.to_csc], self.csc_indices, self.csc_indptr),
            shape=(self.n_in, self.n_out),
        )
        ZT = kernels.spmm_t(XT, W_csc)
        ZT += self.bias[:, None]
        return ZT

    def backward(self, XT, dZT, need_input_grad=True):
        """``(grads, dX^T)``: the value and bias gradients, and the input gradient."""
        mask = sp.csr_array((self.values, self.indices, self.indptr), shape=(self.n_in, self.n_out))
        dvalues = kernels.sddmm(XT, dZT, mask)
        grads = (dvalues, dZT.sum(axis=1))
        return grads, (self.input_grad(dZT) if need_input_grad else None)

    def input_grad(self, dZT):
        """``dX^T = W dZ^T``: the CSR arrays of ``W`` read as the CSC of ``W^T``."""
        WT_csc = sp.csc_array(
            (self.values, self.indices, self.indptr), shape=(self.n_out, self.n_in)
        )
        return kernels.spmm_t(dZT, WT_csc)


class DenseLayer:
    """A dense ``n_in x n_out`` weight (the binary classifier's output layer, baselines)."""

    sparse = False

    def __init__(self, W, bias):
        self.weight = np.ascontiguousarray(W)
        self.n_in, self.n_out = self.weight.shape
        self.bias = np.asarray(bias, dtype=self.weight.dtype).copy()

    @property
    def nnz(self):
        return self.weight.size

    @property
    def params(self):
        return (self.weight, self.bias)

    def to_scipy(self):
        return sp.csr_array(self.weight)

    def forward(self, XT):
        ZT = self.weight.T @ XT
        ZT += self.bias[:, None]
        return ZT

    def backward(self, XT, dZT, need_input_grad=True):
        grads = (XT @ dZT.T, dZT.sum(axis=1))
        return grads, (self.input_grad(dZT) if need_input_grad else None)

    def input_grad(self, dZT):
        return self.weight @ dZT
