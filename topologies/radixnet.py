"""RadiX-Nets: sparse layers with the same number of paths between every input and output.

Reference: R. A. Robinett and J. Kepner, "RadiX-Net: Structured Sparse Matrices for Deep Neural
Networks", IEEE IPDPSW 2019. Used for training by Alford et al., "Training Behavior of Sparse
Neural Network Topologies", IEEE HPEC 2019.
"""

import math

import numpy as np
import scipy.sparse as sp

from graphnn.errors import GraphnnError

from ._validate import positive_int

__all__ = ["radix_layer", "radixnet"]


def radix_layer(n, radix, place_value, dtype=np.float64):
    """The n x n pattern ``I + P^pv + ... + P^((r-1) pv)`` of one radix layer.

    ``P`` is the cyclic shift with ``P[i, j] = 1`` where ``i = j + 1 (mod n)``, so column ``j``
    receives edges from rows ``j, j + pv, ..., j + (r-1) pv`` (mod n): every neuron has ``r``
    inputs and ``r`` outputs.

    >>> radix_layer(4, 2, 1).toarray().astype(int)
    array([[1, 0, 0, 1],
           [1, 1, 0, 0],
           [0, 1, 1, 0],
           [0, 0, 1, 1]])
    """
    cols = np.tile(np.arange(n), radix)
    rows = (cols + np.repeat(np.arange(radix) * place_value, n)) % n
    A = sp.csr_array((np.ones(rows.size, dtype), (rows, cols)), shape=(n, n))
    A.sum_duplicates()
    return A


def _radix_lists(radices):
    """Normalise ``radices`` to a list of radix lists (a flat list is one list)."""
    radices = list(radices)
    if not radices:
        raise GraphnnError("radices must not be empty")
    if all(isinstance(r, int | np.integer) for r in radices):
        radices = [radices]
    lists = [[int(r) for r in group] for group in radices]
    for group in lists:
        if not group:
            raise GraphnnError("a radix list must not be empty")
        for r in group:
            if r < 2:
                raise GraphnnError(f"every radix must be >= 2, got {r} in {group}")
    return lists


def radixnet(radices, kron=None, *, dtype=np.float64):
    """The layers of a RadiX-Net, as scipy CSR arrays of ones.

    Parameters
    ----------
    radices : list of ints, or list of lists of ints
        The mixed radix system: every list but the last multiplies to the width ``n``; the last
        divides it. A flat list is a single radix list (``n`` is its product). One layer per
        radix, in order; the place value starts at 1 in each list and is multiplied by the
        radix after each layer.
    kron : list of ints, optional
        The Kronecker list ``B``, one longer than the number of layers (default all ones):
        layer ``i`` becomes ``kron(ones(B_i, B_{i+1}), layer_i)`` and the widths are ``n B_i``.

    Returns
    -------
    list of scipy.sparse.csr_array

    Notes
    -----
    Every input reaches every output by the same number of paths: ``prod(B[1:-1])`` times the
    products of the radix lists after the first (for a single list, ``prod(B[1:-1])``).
    Cost O(sum of edges).

    Examples
    --------
    >>> W = radixnet([2, 2, 2])
    >>> (W[0] @ W[1] @ W[2]).toarray().min()
    1.0
    >>> [w.shape for w in radixnet([2, 2, 2], kron=[1, 2, 2, 1])]
    [(8, 16), (16, 16), (16, 8)]
    """
    lists = _radix_lists(radices)
    n = math.prod(lists[0])
    for group in lists[:-1]:
        if math.prod(group) != n:
            raise GraphnnError(
                f"every radix list but the last must multiply to the width n={n}, "
                f"got {group} (product {math.prod(group)})"
            )
    if n % math.prod(lists[-1]):
        raise GraphnnError(
            f"the last radix list must divide the width n={n}, got {lists[-1]} "
            f"(product {math.prod(lists[-1])})"
        )
    n_layers = sum(len(g) for g in lists)
    kron = [1] * (n_layers + 1) if kron is None else [positive_int(b, "kron entry") for b in kron]
    if len(kron) != n_layers + 1:
        raise GraphnnError(
            f"kron needs {n_layers + 1} entries (one more than the {n_layers} layers), "
            f"got {len(kron)}"
        )
    layers = []
    for group in lists:
        place = 1
        for radix in group:
            i = len(layers)
            block = sp.csr_array(np.ones((kron[i], kron[i + 1]), dtype))
            layers.append(sp.csr_array(sp.kron(block, radix_layer(n, radix, place, dtype))))
            place *= radix
    return layers
