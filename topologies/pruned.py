"""Pruning-derived topologies: keep the largest weights by magnitude.

Reference: Alford et al., "Training Behavior of Sparse Neural Network Topologies", IEEE HPEC
2019 (pruning-based structures); Zhu and Gupta, "To prune, or not to prune", 2017.
"""

import numpy as np
import scipy.sparse as sp

from graphnn.errors import GraphnnError

__all__ = ["from_weights"]


def from_weights(weights, keep, *, scope="layer"):
    """The patterns of the top ``keep`` fraction of each layer's weights by magnitude
    (``scope="layer"``) or of the whole network's (``scope="global"``).

    Ties at the threshold are broken by position (lowest flat index first), so exactly
    ``round(keep * n)`` edges are kept (at least one per layer for ``scope="layer"``).

    >>> import numpy as np
    >>> from_weights([np.array([[0.1, -3.0], [2.0, 0.5]])], 0.5)[0].toarray()
    array([[0., 1.],
           [1., 0.]])
    """
    if not 0 < keep <= 1:
        raise GraphnnError(f"keep must be in (0, 1], got {keep}")
    if scope not in ("layer", "global"):
        raise GraphnnError(f"scope {scope!r} is not valid; choose from 'layer', 'global'")
    mags = [
        np.abs(sp.csr_array(W).toarray() if sp.issparse(W) else np.asarray(W, float))
        for W in weights
    ]
    if scope == "global":
        flat = np.concatenate([m.ravel() for m in mags])
        order = np.argsort(-flat, kind="stable")[: int(round(keep * flat.size))]
        chosen = np.zeros(flat.size, dtype=bool)
        chosen[order] = True
        masks, start = [], 0
        for m in mags:
            masks.append(chosen[start : start + m.size].reshape(m.shape))
            start += m.size
    else:
        masks = []
        for m in mags:
            order = np.argsort(-m.ravel(), kind="stable")[: max(1, int(round(keep * m.size)))]
            mask = np.zeros(m.size, dtype=bool)
            mask[order] = True
            masks.append(mask.reshape(m.shape))
    return [sp.csr_array(mask.astype(np.float64)) for mask in masks]
