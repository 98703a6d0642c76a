"""Random Kronecker networks built like the Sparse DNN Graph Challenge networks.

Challenge style: each layer is ``kron(ones(B, B), R)`` for a radix layer ``R`` of width
``n = N / B`` (a RadiX-Net layer), cycling through the radix layers; every layer after the first
cycle has its rows randomly permuted. Any ``len(radices)`` consecutive layers then connect every
input to every output.

Stochastic Kronecker (R-MAT): edges drawn from the Kronecker power of a 2 x 2 initiator of
probabilities, which gives power-law degrees.

References: J. Kepner et al., "Sparse Deep Neural Network Graph Challenge", IEEE HPEC 2019;
R. A. Robinett and J. Kepner, "RadiX-Net", IEEE IPDPSW 2019; D. Chakrabarti, Y. Zhan and
C. Faloutsos, "R-MAT: A Recursive Model for Graph Mining", SDM 2004; J. Leskovec et al.,
"Kronecker Graphs", JMLR 2010.
"""

import numpy as np
import scipy.sparse as sp

from graphnn.errors import GraphnnError

from ._validate import as_rng, positive_int
from .radixnet import radix_layer

__all__ = ["challenge_radices", "challenge_layer", "challenge_layers", "rmat_layer", "rmat"]

RMAT_INITIATOR = (0.57, 0.19, 0.19, 0.05)


def challenge_radices(n):
    """The radix list of a width-``n`` cycle: its prime factors, ascending (all 2 for the
    official sizes, e.g. ``[2] * 6`` for n = 64)."""
    n = positive_int(n, "n", minimum=2)
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors + ([n] if n > 1 else [])


def challenge_layer(n_neurons, layer, *, block=16, weight=1 / 16, seed=None, dtype=np.float64):
    """Layer ``layer`` (1-based) of a challenge-style network of ``n_neurons`` neurons.

    Layers 1..c (one cycle of ``c`` radix layers) are ``kron(weight * ones(block, block), R_k)``
    exactly as the official layers 1-6 of the 1024-neuron network are; every later layer is
    its cycle position's base layer with the rows permuted, seeded from ``(seed, layer)``
    alone, so any layer can be regenerated without the ones before it (workers rebuild exactly
    the layers they need). The official later layers are row permutations of the base layers
    too (checked on the 1024-neuron network), with their own permutation per layer.

    Examples
    --------
    >>> W = challenge_layer(1024, 1)
    >>> W.shape, W.nnz, bool(W.data.min() == W.data.max() == 1 / 16)
    ((1024, 1024), 32768, True)
    """
    base, cycle = _challenge_base(n_neurons, layer, block, weight, dtype)
    return _permuted(base, layer, cycle, seed)


def _challenge_base(n_neurons, layer, block, weight, dtype):
    """``(base layer of the cycle position of layer, cycle length)``."""
    n_neurons = positive_int(n_neurons, "neurons", minimum=2)
    layer = positive_int(layer, "layer")
    block = positive_int(block, "block")
    if n_neurons % block or n_neurons // block < 2:
        raise GraphnnError(
            f"neurons must be a multiple of the Kronecker block {block} with at least 2 "
            f"blocks, got {n_neurons}"
        )
    n = n_neurons // block
    radices = challenge_radices(n)
    k = (layer - 1) % len(radices)
    place = int(np.prod(radices[:k]))
    W = _kron_ones(radix_layer(n, radices[k], place, dtype), block, weight)
    W.sort_indices()
    return W, len(radices)


def _permuted(base, layer, cycle, seed):
    """``base`` with its rows permuted by the seeded draw of ``layer`` (after the first cycle).

    Every row of a challenge layer has the same number of entries, so the permutation is one
    gather of an (N x r) index block (4x faster than scipy's row indexing at N = 65,536). Where
    every weight is the same, permuting the values changes nothing: the layers share one
    read-only value array (new pages cost more than the gather here)."""
    if layer <= cycle:
        return base.copy()
    n = base.shape[0]
    perm = as_rng(None if seed is None else [int(seed), layer]).permutation(n)
    counts = np.diff(base.indptr)
    if counts.size and (counts == counts[0]).all():
        r = int(counts[0])
        if base.data.flags.writeable and (base.data == base.data[0]).all():
            base.data.flags.writeable = False  # from now on shared by the permuted layers
        data = base.data
        if data.flags.writeable:
            data = data.reshape(n, r)[perm].ravel()
        W = sp.csr_array(
            (data, base.indices.reshape(n, r)[perm].ravel(), base.indptr.copy()),
            shape=base.shape,
        )  # fmt: skip
    else:
        W = sp.csr_array(base[perm])
    W.has_sorted_indices = True
    return W


def _kron_ones(R, block, weight):
    """``kron(weight * ones(block, block), R)`` as a sorted CSR, built directly: row
    ``a n + i`` holds row ``i`` of ``R`` shifted by ``b n`` for every ``b`` (10x faster than
    scipy's ``kron``, which also goes through dense blocks and stores their zeros)."""
    R = sp.csr_array(R)
    R.sort_indices()
    n, counts = R.shape[0], np.diff(R.indptr)
    if R.shape[0] != R.shape[1] or counts.size == 0 or (counts != counts[0]).any():
        W = sp.csr_array(sp.kron(sp.csr_array(np.full((block, block), weight, R.dtype)), R))
        W.eliminate_zeros()
        return W
    r = int(counts[0])
    shifts = n * np.arange(block, dtype=np.int64)[None, :, None]
    indices = (R.indices.reshape(n, 1, r).astype(np.int64) + shifts).reshape(n, block * r)
    N = n * block
    index = np.int32 if N * block * r < 2**31 else np.int64  # half the bytes to permute
    indices = indices.astype(index)
    data = np.broadcast_to((weight * R.data).reshape(n, 1, r), (n, block, r)).reshape(n, -1)
    return sp.csr_array(
        (np.tile(data, (block, 1)).ravel(), np.tile(indices, (block, 1)).ravel(),
         np.arange(N + 1, dtype=index) * block * r),
        shape=(N, N),
    )  # fmt: skip


def challenge_layers(n_neurons, n_layers, *, block=16, weight=1 / 16, seed=None, dtype=np.float64):
    """Yield layers 1..``n_layers`` of a challenge-style network (see :func:`challenge_layer`).

    With ``seed=None`` the permutations are fresh random draws; give a seed to reproduce them.
    """
    positive_int(n_layers, "nlayers")
    if seed is None:
        seed = int(np.random.default_rng().integers(2**63))
    bases, cycle = [], None  # one cycle of base layers, built once
    for layer in range(1, n_layers + 1):
        if cycle is None or layer <= cycle:
            base, cycle = _challenge_base(n_neurons, layer, block, weight, dtype)
            bases.append(base)
        yield _permuted(bases[(layer - 1) % cycle], layer, cycle, seed)


def _levels(n, name):
    """The levels of the power-of-two grid that holds ``n`` (``ceil(log2 n)``)."""
    return (positive_int(n, name) - 1).bit_length()


def rmat_layer(n_in, n_out, density, *, initiator=RMAT_INITIATOR, seed=None, dtype=np.float64):
    """An ``n_in x n_out`` stochastic Kronecker (R-MAT) pattern with exactly
    ``round(density * n_in * n_out)`` distinct edges.

    Each edge descends ``ceil(log2)`` levels of the power-of-two grid that holds the layer,
    choosing a quadrant with the ``initiator`` probabilities ``(a, b, c, d)`` (top-left,
    top-right, bottom-left, bottom-right) at each. Any widths: an edge that lands outside the
    layer (a width that is not a power of 2) is drawn again, as are duplicates, so the layer is
    the R-MAT distribution of the grid restricted to ``n_in x n_out`` (for powers of 2, the
    grid itself).

    >>> W = rmat_layer(64, 64, 0.1, seed=0)
    >>> W.nnz, int(W.sum(axis=1).max()) > 3 * W.nnz // 64
    (410, True)
    >>> rmat_layer(784, 300, 0.05, seed=0).nnz
    11760
    """
    kr, kc = _levels(n_in, "input width"), _levels(n_out, "output width")
    p = np.asarray(initiator, dtype=float)
    if p.shape != (4,) or (p < 0).any() or not np.isclose(p.sum(), 1):
        raise GraphnnError(f"initiator must be 4 probabilities summing to 1, got {initiator}")
    if not 0 < density <= 1:
        raise GraphnnError(f"density must be in (0, 1], got {density}")
    rng = as_rng(seed)
    m = max(1, int(round(density * n_in * n_out)))
    levels = max(kr, kc)
    found = np.empty(0, dtype=np.int64)
    for _ in range(100):
        need = m - found.size
        q = rng.choice(4, size=(2 * need + 16, levels), p=p)
        rows = ((q[:, :kr] >> 1) << np.arange(kr)).sum(axis=1)
        cols = ((q[:, :kc] & 1) << np.arange(kc)).sum(axis=1)
        inside = (rows < n_in) & (cols < n_out)
        # keep first occurrences in draw order, so the result depends on the seed alone
        flat = np.concatenate([found, rows[inside] * n_out + cols[inside]])
        _, first = np.unique(flat, return_index=True)
        found = flat[np.sort(first)][:m]
        if found.size == m:
            break
    else:
        raise GraphnnError(
            f"could not draw {m} distinct R-MAT edges: the initiator {tuple(p)} is too skewed "
            f"for density {density}"
        )
    W = sp.csr_array((np.ones(m, dtype), (found // n_out, found % n_out)), shape=(n_in, n_out))
    W.sort_indices()
    return W


def rmat(sizes, density, *, initiator=RMAT_INITIATOR, seed=None, dtype=np.float64):
    """R-MAT layers for the widths ``sizes`` (any; see :func:`rmat_layer`), one ``density``
    for all."""
    rng = as_rng(seed)
    return [
        rmat_layer(a, b, density, initiator=initiator, seed=rng, dtype=dtype)
        for a, b in zip(sizes[:-1], sizes[1:])
    ]
