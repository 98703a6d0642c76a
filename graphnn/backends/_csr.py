"""CSR helpers shared by the scipy and CuPy backends (``xp`` is numpy or cupy)."""


def filter_csr(xp, indptr, indices, data, keep):
    """The CSR arrays of the entries where ``keep`` is true, structure order preserved."""
    n_rows = indptr.shape[0] - 1
    rows = row_ids(xp, indptr)
    new_indptr = xp.zeros(n_rows + 1, dtype=indptr.dtype)
    if rows.size:  # cupy.bincount refuses an empty array
        new_indptr[1:] = xp.cumsum(xp.bincount(rows[keep], minlength=n_rows))
    return new_indptr, indices[keep], data[keep]


def row_ids(xp, indptr):
    """The row of every stored entry of a CSR matrix."""
    if xp.__name__ == "numpy":
        return xp.repeat(xp.arange(indptr.shape[0] - 1), xp.diff(indptr))
    # cupy.repeat takes no array of counts
    return xp.searchsorted(indptr, xp.arange(int(indptr[-1])), side="right") - 1
