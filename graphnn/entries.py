"""Flat entry keys: an edge ``(row, col)`` of an ``nrows x ncols`` layer as the one integer
``row * ncols + col`` (int64), so that sets of edges sort, search and compare as arrays. The one
place that computes them (redistribution, pruning, the PyTorch layers, the backends)."""

import numpy as np

__all__ = ["flat_keys", "csr_keys"]


def flat_keys(rows, cols, ncols):
    """``row * ncols + col`` for each ``(row, col)``, int64. Cost: O(len)."""
    return np.asarray(rows, np.int64) * np.int64(ncols) + np.asarray(cols, np.int64)


def csr_keys(indptr, indices, ncols):
    """The keys of a CSR structure's stored entries, in its order (ascending where its rows'
    indices are sorted). Cost: O(nnz + rows).

    >>> csr_keys([0, 2, 2, 3], [1, 3, 0], 4).tolist()
    [1, 3, 8]
    """
    indptr = np.asarray(indptr)
    rows = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    return flat_keys(rows, indices, ncols)
