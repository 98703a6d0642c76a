"""Random Kronecker networks built like the Sparse DNN Graph Challenge networks.

Each layer is ``kron(ones(B, B), R)`` for a radix layer ``R`` of width ``n = N / B`` (a RadiX-Net
layer), cycling through the radix layers; every layer after the first cycle has its rows randomly
permuted. Any ``len(radices)`` consecutive layers then connect every input to every output.

References: J. Kepner et al., "Sparse Deep Neural Network Graph Challenge", IEEE HPEC 2019;
R. A. Robinett and J. Kepner, "RadiX-Net", IEEE IPDPSW 2019.
"""

import numpy as np
import scipy.sparse as sp

from graphnn.errors import GraphnnError

from ._validate import as_rng, positive_int
from .radixnet import radix_layer

__all__ = ["challenge_radices", "challenge_layer", "challenge_layers"]


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

    Each layer is seeded from ``(seed, layer)`` alone, so any layer can be regenerated without
    the ones before it (workers rebuild exactly the layers they need).

    Examples
    --------
    >>> W = challenge_layer(1024, 1)
    >>> W.shape, W.nnz, set(W.data)
    ((1024, 1024), 32768, {0.0625})
    """
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
    R = radix_layer(n, radices[k], place, dtype)
    W = sp.csr_array(sp.kron(sp.csr_array(np.full((block, block), weight, dtype)), R))
    if layer > len(radices):
        rng = as_rng(None if seed is None else [int(seed), layer])
        W = sp.csr_array(W[rng.permutation(n_neurons)])
    W.sort_indices()
    return W


def challenge_layers(n_neurons, n_layers, *, block=16, weight=1 / 16, seed=None, dtype=np.float64):
    """Yield layers 1..``n_layers`` of a challenge-style network (see :func:`challenge_layer`).

    With ``seed=None`` the permutations are fresh random draws; give a seed to reproduce them.
    """
    positive_int(n_layers, "nlayers")
    if seed is None:
        seed = int(np.random.default_rng().integers(2**63))
    for layer in range(1, n_layers + 1):
        yield challenge_layer(n_neurons, layer, block=block, weight=weight, seed=seed, dtype=dtype)
