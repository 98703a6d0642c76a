"""Trainable layers. A sparse layer stores only its structure and nonzero values.

Activations travel transposed, features x batch, so every kernel streams along the contiguous
batch axis. For ``W`` (n_in x n_out, CSR values ``w``):

* forward      ``Z^T = W^T X^T``  : the CSC view of ``W``, read as the CSR of ``W^T``;
* data grad    ``dX^T = W dZ^T``  : the CSR arrays of ``W``;
* weight grad  ``dW = X^T dZ`` at ``W``'s edges only (SDDMM), in CSR order.

No dense weight matrix or dense mask exists at any point. The structure is kept on the host
(numpy) and mirrored on the layer's backend; values and biases live there.
"""

import numpy as np
import scipy.sparse as sp

from ..backends import DEFAULT, get_backend
from ..errors import DimensionMismatch

__all__ = ["SparseLayer", "DenseLayer"]

# Below this many outputs (a classifier's output layer) a layer's backward products are faster
# in the sparse kernel's one pass at any density: the rows of dZ stay in L1 and the pass streams
# X once, where BLAS's products and the ReLU's mask read it three times (complete layers,
# batch-tiled, 2 cores, AVX-512: 300,000 x 10 batch 128 0.47x BLAS's time, 4096 x 10 batch 512
# 0.54x; 4096 x 32 1.5x, so BLAS from there)
FEW_OUTPUTS = 16


class SparseLayer:
    """A sparse ``n_in x n_out`` weight with a bias vector.

    ``indptr``/``indices`` hold the CSR structure (host), ``values`` the weights in CSR order:
    the parameter vector the optimiser sees.
    """

    sparse = True

    def __init__(self, W, bias, backend=DEFAULT):
        W = sp.csr_array(W)
        self.backend = get_backend(backend)
        self.n_in, self.n_out = W.shape
        bias = np.asarray(bias, dtype=W.dtype)
        if bias.shape != (self.n_out,):
            raise DimensionMismatch(f"bias needs shape ({self.n_out},), got {bias.shape}")
        self.bias = self.backend.asarray(bias.copy())
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
        # CSC view: column-sorted order of the entries, as a permutation of the CSR order
        rows = np.repeat(np.arange(self.n_in, dtype=np.int32), np.diff(self.indptr))
        self.to_csc = np.lexsort((rows, self.indices))
        self.csc_indptr = np.zeros(self.n_out + 1, np.int64)
        np.cumsum(np.bincount(self.indices, minlength=self.n_out), out=self.csc_indptr[1:])
        self.csc_indices = rows[self.to_csc]
        d = self.backend
        self.values = d.asarray(np.ascontiguousarray(W.data))
        if d.xp is np:
            self._dev = (
                self.indptr,
                self.indices,
                rows,
                self.to_csc,
                self.csc_indptr,
                self.csc_indices,
            )
        else:  # cuSPARSE takes 32-bit indices
            self._dev = tuple(
                d.asarray(a.astype(np.int32))
                for a in (
                    self.indptr,
                    self.indices,
                    rows,
                    self.to_csc,
                    self.csc_indptr,
                    self.csc_indices,
                )
            )

    def to_backend(self, backend):
        """The same layer on ``backend``."""
        return SparseLayer(self.to_scipy(), self.backend.asnumpy(self.bias), backend=backend)

    def rows(self):
        """The row of every stored entry, in CSR order."""
        return np.repeat(np.arange(self.n_in), np.diff(self.indptr))

    def to_scipy(self):
        return sp.csr_array(
            (self.backend.asnumpy(self.values).copy(), self.indices.copy(), self.indptr.copy()),
            shape=(self.n_in, self.n_out),
        )

    @property
    def dense_products(self):
        """Whether the products run as BLAS products over a zero-filled copy of the weight
        (the layer's density reaches its backend's measured ``dense_crossover``); the weight
        gradient is still taken at the edges only. The backward products of a layer with
        fewer than :data:`FEW_OUTPUTS` outputs stay in the sparse one-pass kernel (see there)."""
        crossover = self.backend.dense_crossover
        return crossover is not None and self.nnz >= crossover * self.n_in * self.n_out

    @property
    def dense_backward(self):
        """Whether the backward products too run as BLAS products (not below
        :data:`FEW_OUTPUTS` outputs)."""
        return self.dense_products and self.n_out >= FEW_OUTPUTS

    @property
    def _complete(self):
        """Whether every edge is there (a dense output layer stored sparse): the CSR values are
        then the dense weight's rows, one after the other."""
        return self.nnz == self.n_in * self.n_out

    def _dense(self):
        """The weight as a dense array, zero where there is no edge (a view of the values where
        the structure is complete)."""
        if self._complete:
            return self.values.reshape(self.n_in, self.n_out)
        W = self.backend.xp.zeros((self.n_in, self.n_out), self.values.dtype)
        W[self._dev[2], self._dev[1]] = self.values
        return W

    def _at_edges(self, G):
        """The dense ``n_in x n_out`` array ``G`` at the edges, in CSR order."""
        return G.reshape(-1) if self._complete else G[self._dev[2], self._dev[1]]

    def forward(self, XT, relu=False):
        """``Z^T = W^T X^T + b``, through the ReLU when ``relu``."""
        be = self.backend
        if self.dense_products:
            return be.finish(self._dense().T @ be.plain(XT), self.bias, relu)
        _, _, _, to_csc, csc_indptr, csc_indices = self._dev
        return self.backend.csr_times_dense(
            self.values, csc_indices, csc_indptr, (self.n_out, self.n_in), XT, order=to_csc,
            bias=self.bias, relu=relu,
        )  # fmt: skip

    def backward(self, XT, dZT, need_input_grad=True, relu=False):
        """``(grads, dX^T)``: the value and bias gradients, and the input gradient (kept where
        ``XT > 0`` when ``relu``: the ReLU's derivative, the layer's input its output)."""
        be = self.backend
        if self.dense_backward:
            XT, dZT = be.plain(XT), be.plain(dZT)
            dvalues = self._at_edges(XT @ dZT.T)
            dXT = self.input_grad(dZT, XT if relu else None) if need_input_grad else None
            return (dvalues, dZT.sum(axis=1)), dXT
        dZT = be.prepare(dZT, like=XT)
        XT = be.prepare(XT, like=dZT)
        indptr, indices, rows = self._dev[:3]
        shape = (self.n_in, self.n_out)
        dvalues, dXT = be.layer_backward(
            XT, dZT, self.values, indptr, indices, rows, shape, need_input_grad, relu
        )
        return (dvalues, be.batch_sums(dZT)), dXT

    def input_grad(self, dZT, mask=None):
        """``dX^T = W dZ^T``, kept where ``mask > 0``."""
        if self.dense_backward:
            return self.backend.finish(self._dense() @ self.backend.plain(dZT), mask=mask)
        indptr, indices = self._dev[:2]
        return self.backend.csr_times_dense(
            self.values, indices, indptr, (self.n_in, self.n_out), dZT, mask=mask
        )


class DenseLayer:
    """A dense ``n_in x n_out`` weight (the binary classifier's output layer, baselines)."""

    sparse = False

    def __init__(self, W, bias, backend=DEFAULT):
        self.backend = get_backend(backend)
        W = np.ascontiguousarray(W)
        self.weight = self.backend.asarray(W)
        self.n_in, self.n_out = W.shape
        self.bias = self.backend.asarray(np.asarray(bias, dtype=W.dtype).copy())

    @property
    def nnz(self):
        return self.weight.size

    @property
    def params(self):
        return (self.weight, self.bias)

    def to_backend(self, backend):
        host = self.backend.asnumpy
        return DenseLayer(host(self.weight), host(self.bias), backend=backend)

    def to_scipy(self):
        return sp.csr_array(self.backend.asnumpy(self.weight))

    def forward(self, XT, relu=False):
        return self.backend.finish(self.weight.T @ self.backend.plain(XT), self.bias, relu)

    def backward(self, XT, dZT, need_input_grad=True, relu=False):
        XT, dZT = self.backend.plain(XT), self.backend.plain(dZT)
        grads = (XT @ dZT.T, dZT.sum(axis=1))
        if not need_input_grad:
            return grads, None
        return grads, self.input_grad(dZT, XT if relu else None)

    def input_grad(self, dZT, mask=None):
        return self.backend.finish(self.weight @ self.backend.plain(dZT), mask=mask)
