"""Rewiring a sparse layer in place: the masked structural updates that redistribution and
pruning share (keep a selection of the entries, add new ones at zero), with the optimiser's
per-entry state following each entry."""

import numpy as np
import scipy.sparse as sp

from ..backends import get_backend

__all__ = ["host_backend", "kept_positions", "restructure"]


def host_backend(model):
    """The model's backend when it keeps arrays on the host, else numba: structural updates
    are host work (a GPU model's layers are rebuilt and uploaded again)."""
    be = get_backend(model.backend)
    return be if be.xp is np else get_backend("numba")


def kept_positions(be, layer, keep):
    """``P(keep.V, replace) << P`` for the matrix of entry positions ``P = 1..nnz`` on
    ``layer``'s structure: the kept structure, each entry saying which old entry it is."""
    positions = np.arange(1, layer.nnz + 1, dtype=np.float64)  # exact up to 2**53 entries
    P = sp.csr_array((positions, layer.indices, layer.indptr), shape=(layer.n_in, layer.n_out))
    return be.keep(be.matrix(P), keep)


def restructure(be, layer, optimizer, index, kept, new_keys):
    """``W(keep.V, replace) << W`` then ``W(N.S) << 0`` on ``layer`` with backend ``be``, given
    ``kept`` from :func:`kept_positions`; the optimiser's state for it follows the same masks.

    The masked operations run once, on the positions: afterwards each entry says which old
    entry it is, and 0 marks a new one. Weights and every state array are then gathered
    through that one map.
    """
    P = be.to_scipy(be.add_zeros(kept, new_keys))
    origin = P.data.astype(np.int64) - 1  # -1: grown, at zero with fresh state
    old = layer.backend.asnumpy(layer.values)
    values = np.where(origin >= 0, old[origin], 0).astype(old.dtype)
    layer.set_structure(sp.csr_array((values, P.indices, P.indptr), shape=P.shape))
    if optimizer is not None:
        optimizer.remap(index, origin)
