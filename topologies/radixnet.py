"""RadiX-Nets: sparse layers with the same number of paths between every input and output.

Reference: R. A. Robinett and J. Kepner, "RadiX-Net: Structured Sparse Matrices for Deep Neural
Networks", IEEE IPDPSW 2019. Used for training by Alford et al., "Training Behavior of Sparse
Neural Network Topologies", IEEE HPEC 2019.
"""

import math

import numpy as np
import scipy.sparse as sp

from graphnn.errors import GraphnnError

from ._validate import check_edges, positive_int

__all__ = ["radix_layer", "radixnet", "radixnet_for_widths"]


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


def _kron_block(rows, cols, d, dtype):
    """The Kronecker block: all ones, or the sum of ``d`` cyclic shifts
    (``block[a, (a + s) mod cols] = 1`` for ``s < d``)."""
    if d is None or d >= cols:
        return sp.csr_array(np.ones((rows, cols), dtype))
    a = np.repeat(np.arange(rows), d)
    b = (a + np.tile(np.arange(d), rows)) % cols
    return sp.csr_array((np.ones(a.size, dtype), (a, b)), shape=(rows, cols))


def radixnet(radices, kron=None, *, D=None, trim=None, dtype=np.float64):
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
    D : int or list of ints, optional
        Replace the all-ones block of layer ``i`` by the sum of ``D_i`` cyclic shifts
        (``block[a, (a + s) mod B_{i+1}] = 1`` for ``s < D_i``); ``D_i >= B_{i+1}`` is all ones.
        Sparser layers; the number of paths becomes the same for every pair only where the
        shifted blocks chain to a constant, as with the all-ones block.
    trim : int, optional
        Keep only the last ``trim`` input neurons (drop the top rows of the first layer), as
        Alford et al. drop the top 16 neurons of an 800-wide input to fit MNIST's 784 pixels.
        The kept inputs still reach every output by the same number of paths (removing an
        input removes only the paths that start at it), but the first hidden layer's fan-in is
        no longer equal: the neurons that fed on the dropped inputs lose those edges.

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
    >>> float((W[0] @ W[1] @ W[2]).toarray().min())
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
    Ds = list(D) if isinstance(D, list | tuple) else [D] * n_layers
    if len(Ds) != n_layers:
        raise GraphnnError(f"D needs one entry per layer ({n_layers}), got {len(Ds)}")
    Ds = [None if d is None else positive_int(d, "D entry") for d in Ds]
    radix_of = [r for group in lists for r in group]
    check_edges(sum(n * r * kron[i] * kron[i + 1] for i, r in enumerate(radix_of)), "the RadiX-Net")
    layers = []
    for group in lists:
        place = 1
        for radix in group:
            i = len(layers)
            block = _kron_block(kron[i], kron[i + 1], Ds[i], dtype)
            W = sp.csr_array(sp.kron(block, radix_layer(n, radix, place, dtype)))
            W.eliminate_zeros()  # scipy's kron goes through dense blocks: not edges
            layers.append(W)
            place *= radix
    if trim is not None:
        width = layers[0].shape[0]
        trim = positive_int(trim, "trim")
        if trim > width:
            raise GraphnnError(f"trim {trim} exceeds the input width {width}")
        layers[0] = sp.csr_array(layers[0][width - trim :])
    return layers


def radixnet_for_widths(sizes, radix, dtype=np.float64):
    """A RadiX-Net with the widths ``sizes`` and density ``1/radix`` in every layer, as Alford
    et al. build LeNet-300-100's sparse layers: radices ``N = (radix,) * L`` for ``L`` layers
    (``N' = radix**L``), Kronecker list ``B_i = sizes[i] / N'`` (the input rounded up), and the
    top input neurons trimmed to ``sizes[0]``. ``radixnet_for_widths([784, 300, 100], 10)``
    is their ``N = (10, 10), B = (8, 3, 1)`` with the top 16 inputs removed.

    Raises a GraphnnError naming the width when ``radix**L`` does not divide every width after
    the input (no RadiX-Net of that density has these widths). Cost O(edges).

    >>> [W.shape for W in radixnet_for_widths([784, 3000, 100], 10)]
    [(784, 3000), (3000, 100)]
    """
    sizes = [positive_int(w, "width") for w in sizes]
    radix = positive_int(radix, "radix")
    if len(sizes) < 2 or radix < 2:
        raise GraphnnError("radixnet_for_widths needs at least two widths and a radix >= 2")
    n = radix ** (len(sizes) - 1)
    for w in sizes[1:]:
        if w % n:
            raise GraphnnError(
                f"no RadiX-Net of density 1/{radix} has width {w}: with {len(sizes) - 1} layers "
                f"every width after the input must be a multiple of {radix}^{len(sizes) - 1} = {n}"
            )
    kron = [-(-sizes[0] // n)] + [w // n for w in sizes[1:]]
    return radixnet([radix] * (len(sizes) - 1), kron, trim=sizes[0], dtype=dtype)
