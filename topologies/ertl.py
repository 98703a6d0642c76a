"""Ertl's partitioned equal fan-in layers.

Every output neuron gets the same number ``k`` of inputs: the input range is cut into ``k``
contiguous partitions and one active input is drawn uniformly within each.

Reference: Ertl et al., as described in "Weight redistribution algorithms for sparse neural
networks" (section 3, initialisation); see ``../shared/reference/SPEC.md`` section 4.
"""

import numpy as np
import scipy.sparse as sp

from graphnn.errors import GraphnnError

from ._validate import as_rng, positive_int

__all__ = ["ertl_layer", "ertl"]


def ertl_layer(n_in, n_out, fan_in, *, seed=None, dtype=np.float64):
    """An ``n_in x n_out`` pattern where every column has exactly ``fan_in`` entries, one in
    each of ``fan_in`` equal partitions of the inputs.

    >>> W = ertl_layer(8, 3, 2, seed=0)
    >>> W.sum(axis=0).tolist()
    [2.0, 2.0, 2.0]
    """
    fan_in = positive_int(fan_in, "fan-in")
    if fan_in > n_in:
        raise GraphnnError(f"fan-in {fan_in} exceeds the {n_in} inputs of the layer")
    rng = as_rng(seed)
    bounds = np.linspace(0, n_in, fan_in + 1).astype(np.int64)
    lo, width = bounds[:-1], np.diff(bounds)
    rows = lo[:, None] + (rng.random((fan_in, n_out)) * width[:, None]).astype(np.int64)
    cols = np.broadcast_to(np.arange(n_out), (fan_in, n_out))
    W = sp.csr_array((np.ones(rows.size, dtype), (rows.ravel(), cols.ravel())), shape=(n_in, n_out))
    W.sort_indices()
    return W


def ertl(sizes, fan_in, *, seed=None, dtype=np.float64):
    """Ertl layers for the widths ``sizes``; ``fan_in`` is one int or one per layer (capped at
    each layer's input width)."""
    sizes = [positive_int(n, "layer width") for n in sizes]
    n_layers = len(sizes) - 1
    if n_layers < 1:
        raise GraphnnError(f"need at least two layer widths, got {sizes}")
    fans = list(fan_in) if isinstance(fan_in, list | tuple) else [fan_in] * n_layers
    if len(fans) != n_layers:
        raise GraphnnError(f"fan-in needs one value per layer ({n_layers}), got {len(fans)}")
    rng = as_rng(seed)
    return [
        ertl_layer(a, b, min(positive_int(k, "fan-in"), a), seed=rng, dtype=dtype)
        for a, b, k in zip(sizes[:-1], sizes[1:], fans)
    ]
