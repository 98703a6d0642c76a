"""The operations every backend provides; the rest of graphnn is written against these."""

import operator

import numpy as np

from ..errors import DimensionMismatch, GraphnnError

SELECT_OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
APPLY_OPS = {"plus": np.add, "times": np.multiply, "min": np.minimum, "max": np.maximum}


def check_choice(value, valid, name):
    if value not in valid:
        raise GraphnnError(
            f"{name} {value!r} is not valid; choose from {', '.join(map(repr, valid))}"
        )


def check_inner(a_shape, b_shape, what):
    if a_shape[1] != b_shape[0]:
        raise DimensionMismatch(f"{what}: cannot multiply {a_shape} by {b_shape}")


def row_ids(xp, indptr):
    """The row of every stored entry of a CSR matrix (``xp``: numpy or CuPy)."""
    counts = xp.diff(indptr)
    if xp is np:
        return np.repeat(np.arange(indptr.shape[0] - 1), counts)
    # cupy.repeat takes no array of counts
    return xp.searchsorted(indptr, xp.arange(int(indptr[-1])), side="right") - 1


class Backend:
    """The handful of sparse operations graphnn needs, on one library's native types.

    Sparse operands are the backend's sparse matrix type (made by :meth:`matrix`), dense ones its
    dense array type (made by :meth:`dense`). Each backend picks, per operation, the fastest
    kernel measured by ``bench/backends.py``.
    """

    name = "abstract"

    def __reduce__(self):
        # pickled by name: a backend holds library modules, and each process has its own instance
        from . import get_backend

        return get_backend, (self.name,)

    def matrix(self, W):
        """Native sparse matrix from a scipy sparse matrix."""
        raise NotImplementedError

    def to_scipy(self, A):
        """scipy CSR array from a native sparse matrix."""
        raise NotImplementedError

    def csr_arrays(self, A, transpose=False):
        """``(data, indices, indptr)`` of the native sparse ``A`` (of ``A^T`` when
        ``transpose``: ``A``'s CSC), columns ascending in every row, on :attr:`xp`."""
        raise NotImplementedError

    def from_csr(self, data, indices, indptr, shape):
        """The native sparse matrix of CSR arrays on :attr:`xp`."""
        raise NotImplementedError

    def shape(self, A):
        return tuple(A.shape)

    def nnz(self, A):
        """Number of stored entries."""
        raise NotImplementedError

    def spgemm(self, A, B):
        """Sparse ``A @ B`` (sparse times sparse, plus-times semiring)."""
        raise NotImplementedError

    def spmm(self, X, W):
        """Dense ``X @ W`` for a dense batch ``X`` (batch first) and a sparse weight ``W``:
        :meth:`csr_times_dense` of ``W^T`` on ``X^T`` (one kernel for both)."""
        check_inner(X.shape, self.shape(W), "spmm")
        n_out = self.shape(W)[1]
        data, indices, indptr = self.csr_arrays(W, transpose=True)
        dtype = np.result_type(X.dtype, data.dtype)
        if 0 in X.shape or data.size == 0 or n_out == 0:
            return self.xp.zeros((X.shape[0], n_out), dtype)
        Z = self.csr_times_dense(data, indices, indptr, (n_out, X.shape[1]), X.T)
        return self.plain(Z).T.astype(dtype, copy=False)  # a view: batch x outputs

    def masked_product(self, A, B, mask):
        """``(A @ B)`` computed only at the stored entries of ``mask`` (dense A and B):
        :meth:`sddmm` of ``A`` and ``B^T`` at ``mask``'s entries.

        The result has exactly ``mask``'s structure: a gradient at existing edges only.
        """
        check_mask(A.shape, B.shape, self.shape(mask))
        xp = self.xp
        dtype = np.result_type(A.dtype, B.dtype)
        _, indices, indptr = self.csr_arrays(mask)
        values = self.sddmm(xp.asarray(A, dtype=dtype), xp.asarray(B, dtype=dtype).T, indptr,
                            indices, row_ids(xp, indptr))  # fmt: skip
        return self.from_csr(values, indices, indptr, self.shape(mask))

    def select(self, A, op, thresh):
        """Keep the stored entries whose value satisfies ``value op thresh``."""
        raise NotImplementedError

    def apply(self, A, op, scalar):
        """``op(value, scalar)`` on every stored entry; the structure is unchanged."""
        raise NotImplementedError

    def reduce(self, A, axis=None):
        """Sum of stored values: all (``None``), per column (``0``) or per row (``1``), numpy."""
        raise NotImplementedError

    def row_counts(self, A):
        """Number of stored entries in each row, as a numpy int64 array."""
        raise NotImplementedError

    def take_rows(self, A, rows):
        """The rows ``rows`` (numpy ints, repeats allowed) of ``A``, in that order."""
        raise NotImplementedError

    def vstack(self, mats):
        """Sparse matrices with the same number of columns, stacked top to bottom."""
        raise NotImplementedError

    # -- training: activations travel as features x batch, the batch contiguous -----------

    xp = np  # the array module of the backend's dense arrays

    def asarray(self, a, dtype=None):
        """The backend's dense array from a numpy array (a copy only when needed)."""
        raise NotImplementedError

    def asnumpy(self, a):
        """A numpy array from the backend's dense array."""
        raise NotImplementedError

    def prepare(self, D, like=None, rows=None):
        """The dense operand ``D`` (features x batch) in the form the products below read
        fastest (by default ``D`` itself); they take ``D`` itself too, and give a prepared
        result for a prepared operand. ``like``: an operand ``D`` will meet in one
        :meth:`sddmm` or as a mask; ``rows``: the most rows of the operands it will meet."""
        return D

    def plain(self, D):
        """A prepared operand as a ``features x batch`` array (a plain one as it is)."""
        return D

    def batch_sums(self, D):
        """The sum over the batch of each row of ``D`` (plain or prepared): a bias gradient."""
        return D.sum(axis=1)

    def csr_times_dense(
        self, data, indices, indptr, shape, D, order=None, bias=None, relu=False, mask=None
    ):
        """``M @ D`` for ``M`` given by its CSR arrays and ``shape`` (its values ``data[order]``
        when ``order`` is given), ``D`` dense (batch last) or prepared: the forward product (the
        CSC of ``W`` read as the CSR of ``W^T``, its values reached through the CSC order) and
        the input gradient ``W dZ^T``. Then ``+ bias[:, None]`` and the ReLU when ``relu``
        (a layer's output), or kept only where ``mask > 0`` (the ReLU's derivative)."""
        raise NotImplementedError

    def finish(self, Z, bias=None, relu=False, mask=None):
        """``Z + bias[:, None]``, its ReLU when ``relu``, kept where ``mask > 0``; in place on
        a plain ``Z``."""
        if bias is not None:
            Z += bias[:, None]
        if relu:
            self.xp.maximum(Z, 0, out=Z)
        if mask is not None:
            Z *= self.plain(mask) > 0
        return Z

    # the density from which a sparse layer's products are faster as BLAS products over a
    # zero-filled copy of its weight (None: never; the reference backend stays the spec)
    dense_crossover = None

    def sddmm(self, XT, dZT, indptr, indices, rows):
        """``X^T dZ`` at the CSR entries ``(rows, indices)`` only, in CSR order: the weight
        gradient of a sparse layer (no dense gradient is formed). ``XT`` and ``dZT`` plain or
        prepared alike."""
        raise NotImplementedError

    def layer_backward(
        self, XT, dZT, data, indptr, indices, rows, shape, input_grad=True, relu=False
    ):
        """A sparse layer's backward products for its CSR weight ``(data, indices, indptr)``
        of ``shape``: the weight gradient (:meth:`sddmm`) and, when ``input_grad``, the input
        gradient ``W dZ^T``, kept where ``XT > 0`` when ``relu`` (``XT`` the ReLU's output);
        ``(dvalues, dXT or None)``."""
        dvalues = self.sddmm(XT, dZT, indptr, indices, rows)
        if not input_grad:
            return dvalues, None
        mask = XT if relu else None
        return dvalues, self.csr_times_dense(data, indices, indptr, shape, dZT, mask=mask)

    # -- structural updates (redistribution, pruning) --------------------------------------

    def entry_keys(self, A):
        """The flat keys ``row * ncols + col`` of the stored entries, ascending (numpy)."""
        raise NotImplementedError

    def keep(self, A, mask):
        """``A(M.V, replace) << A``: the stored entries where the boolean ``mask`` (one value
        per stored entry, in row-major order) is true."""
        raise NotImplementedError

    def add_zeros(self, A, keys):
        """``A(N.S) << 0``: ``A`` with explicit zeros at the flat ``keys`` (absent from ``A``)."""
        raise NotImplementedError

    def complement_topk(self, XT, dZT, A, k, floor=-1.0):
        """The ``k`` largest ``|X^T dZ|`` in the structural complement ``~A.S``, as
        ``(scores, keys)`` (ties to the smaller key; scores not above ``floor`` ignored).
        ``XT`` and ``dZT`` are numpy (features x batch); the dense product is formed a block of
        rows at a time with only a running top-k kept."""
        raise NotImplementedError

    def relu_layer(self, Y, W, bias, ymax=None):
        """One sparse ReLU layer: ``Z = Y @ W``; scalar ``bias`` added to the nonzeros of ``Z``
        only; ReLU; clamp at ``ymax`` (``None``: no clamp). The Graph Challenge layer."""
        Z = self.select(self.spgemm(Y, W), "!=", 0)
        Z = self.select(self.apply(Z, "plus", bias), ">", 0)
        return Z if ymax is None else self.apply(Z, "min", ymax)


def check_mask(a_shape, b_shape, mask_shape):
    check_inner(a_shape, b_shape, "masked_product")
    if (a_shape[0], b_shape[1]) != tuple(mask_shape):
        raise DimensionMismatch(
            f"masked_product: A @ B has shape {(a_shape[0], b_shape[1])} but the mask has "
            f"{tuple(mask_shape)}"
        )
