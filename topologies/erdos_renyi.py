"""Random sparse layers: Erdos-Renyi by density or by SET's epsilon, ERK allocation, dense.

References: D. C. Mocanu et al., "Scalable training of artificial neural networks with adaptive
sparse connectivity inspired by network science", Nature Communications 9, 2383 (2018) (SET's
Erdos-Renyi layers); U. Evci et al., "Rigging the Lottery: Making All Tickets Winners", ICML 2020
(Erdos-Renyi-Kernel allocation).
"""

import numpy as np
import scipy.sparse as sp

from graphnn.errors import GraphnnError

from ._validate import as_rng, check_edges, positive_int

__all__ = ["erdos_renyi_layer", "erdos_renyi", "set_density", "erk_densities", "dense"]


def _check_sizes(sizes):
    sizes = [positive_int(n, "layer width") for n in sizes]
    if len(sizes) < 2:
        raise GraphnnError(f"need at least two layer widths (input and output), got {sizes}")
    return sizes


def _check_density(density, name="density"):
    if not 0 < density <= 1:
        raise GraphnnError(f"{name} must be in (0, 1], got {density}")
    return float(density)


def erdos_renyi_layer(n_in, n_out, density, *, seed=None, dtype=np.float64):
    """An ``n_in x n_out`` pattern with exactly ``round(density * n_in * n_out)`` edges (at
    least one), placed uniformly at random without repetition.

    >>> erdos_renyi_layer(10, 10, 0.25, seed=0).nnz
    25
    """
    density = _check_density(density)
    rng = as_rng(seed)
    total = n_in * n_out
    m = max(1, int(round(density * total)))
    flat = np.sort(rng.choice(total, size=m, replace=False))
    W = sp.csr_array((np.ones(m, dtype), (flat // n_out, flat % n_out)), shape=(n_in, n_out))
    W.sort_indices()
    return W


def set_density(n_in, n_out, epsilon):
    """SET's density ``epsilon (n_in + n_out) / (n_in n_out)``, capped at 1."""
    if epsilon <= 0:
        raise GraphnnError(f"epsilon must be positive, got {epsilon}")
    return min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))


def erk_densities(sizes, density):
    """Per-layer densities ``eps * (n_in + n_out) / (n_in n_out)`` whose total edge count is
    ``density`` times the dense count; a layer that would exceed 1 is made dense and ``eps`` is
    solved again over the others.

    >>> [round(d, 3) for d in erk_densities([784, 300, 100, 10], 0.1)]
    [0.08, 0.23, 1.0]
    """
    sizes = _check_sizes(sizes)
    density = _check_density(density)
    shapes = list(zip(sizes[:-1], sizes[1:]))
    params = np.array([a * b for a, b in shapes], dtype=float)
    raw = np.array([(a + b) / (a * b) for a, b in shapes])
    budget = density * params.sum()
    dense_layers = np.zeros(len(shapes), dtype=bool)
    while True:
        free = ~dense_layers
        eps = (budget - params[dense_layers].sum()) / (raw[free] * params[free]).sum()
        over = free & (eps * raw > 1)
        if not over.any():
            break
        dense_layers |= over
    return [1.0 if d else float(eps * r) for d, r in zip(dense_layers, raw)]


def erdos_renyi(sizes, *, density=None, epsilon=None, erk=False, seed=None, dtype=np.float64):
    """Random layers for the widths ``sizes``: by one ``density`` for every layer, by SET's
    ``epsilon``, or (``erk=True``) by ERK allocation of the total ``density``.

    >>> [w.shape for w in erdos_renyi([6, 4, 2], density=0.5, seed=1)]
    [(6, 4), (4, 2)]
    """
    sizes = _check_sizes(sizes)
    if (density is None) == (epsilon is None):
        raise GraphnnError("give exactly one of density and epsilon")
    if erk and density is None:
        raise GraphnnError("ERK allocates a total density: give density, not epsilon")
    rng = as_rng(seed)
    if density is not None:
        check_edges(density * sum(a * b for a, b in zip(sizes, sizes[1:])), "the network")
    if erk:
        densities = erk_densities(sizes, density)
    elif density is not None:
        densities = [_check_density(density)] * (len(sizes) - 1)
    else:
        densities = [set_density(a, b, epsilon) for a, b in zip(sizes[:-1], sizes[1:])]
    return [
        erdos_renyi_layer(a, b, d, seed=rng, dtype=dtype)
        for a, b, d in zip(sizes[:-1], sizes[1:], densities)
    ]


def dense(sizes, dtype=np.float64):
    """Fully connected layers (density 1), the baseline."""
    sizes = _check_sizes(sizes)
    check_edges(sum(a * b for a, b in zip(sizes, sizes[1:])), "the dense network")
    return [sp.csr_array(np.ones((a, b), dtype)) for a, b in zip(sizes[:-1], sizes[1:])]
