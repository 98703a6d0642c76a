"""Graph Challenge file I/O: the official bias per size, and the readers and writers of
:mod:`graphnn.io.tsv` (layers, images and truth in the official TSV formats or LAGraph's
Matrix Market; the official ``neuron{N}.tar.gz`` read without extracting).

    >>> from challenge.io import iter_layers, read_images, read_truth   # doctest: +SKIP
    >>> Y0 = read_images("sparse-images-1024.tsv.gz", 1024)             # doctest: +SKIP
    >>> layers = iter_layers("neuron1024.tar.gz", 1024, 120)            # doctest: +SKIP
"""

from graphnn.errors import GraphnnError
from graphnn.io.tsv import (
    OFFICIAL_BIAS,
    discover,
    iter_layers,
    read_images,
    read_truth,
    write_images,
    write_layer,
    write_truth,
)

__all__ = [
    "OFFICIAL_BIAS",
    "NEURON_COUNTS",
    "official_bias",
    "discover",
    "iter_layers",
    "read_layers",
    "read_images",
    "read_truth",
    "write_layer",
    "write_images",
    "write_truth",
]

NEURON_COUNTS = tuple(OFFICIAL_BIAS)


def official_bias(n_neurons):
    """The official bias for N neurons (the same for every neuron of every layer)."""
    if n_neurons not in OFFICIAL_BIAS:
        raise GraphnnError(
            f"no official bias for {n_neurons} neurons: the official sizes are "
            f"{', '.join(map(str, NEURON_COUNTS))}; give the bias"
        )
    return OFFICIAL_BIAS[n_neurons]


def read_layers(path, n_neurons, n_layers):
    """All layers 1..L as a list (see :func:`iter_layers`)."""
    return list(iter_layers(path, n_neurons, n_layers))
