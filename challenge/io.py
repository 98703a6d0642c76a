"""Graph Challenge file I/O: layers, images and truth in the official TSV formats, the official
``neuron{N}.tar.gz`` read directly, and Matrix Market files as converted for LAGraph.

    >>> from challenge.io import iter_layers, read_images, read_truth   # doctest: +SKIP
    >>> Y0 = read_images("sparse-images-1024.tsv.gz", 1024)             # doctest: +SKIP
    >>> layers = iter_layers("neuron1024.tar.gz", 1024, 120)            # doctest: +SKIP
"""

import tarfile
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from graphnn.errors import FormatError, GraphnnError

from . import _tsv
from ._tsv import OFFICIAL_BIAS, write_images, write_layer, write_truth

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
            f"no official bias for --neurons {n_neurons}: the official sizes are "
            f"{', '.join(map(str, NEURON_COUNTS))}; give --bias"
        )
    return OFFICIAL_BIAS[n_neurons]


def _mmread(path, what):
    try:
        return sp.csr_array(scipy.io.mmread(path))
    except (ValueError, IndexError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise FormatError(f"{path}: bad Matrix Market {what} file ({e})") from None


def _check_shape(M, path, n_neurons, what, expect):
    if expect is not None and M.shape != expect:
        raise FormatError(f"{path}: {what} has shape {M.shape}, expected {expect}")
    return M


def _exists(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    return path


def discover(path):
    """``(N, L)`` of a layer directory or official archive, from its file names: N from
    ``n{N}-l{k}`` (or ``neuron{N}``), L the count of consecutive layers from 1."""
    path = _exists(path)
    if path.is_file():
        try:
            with tarfile.open(path, "r:*") as tar:
                names = tar.getnames()
        except (tarfile.TarError, EOFError, OSError) as e:
            raise FormatError(f"{path}: truncated or unreadable archive ({e})") from None
    else:
        sub = [p for p in path.iterdir() if p.is_dir() and p.name.startswith("neuron")]
        names = [p.name for p in path.iterdir()] + [
            f"{d.name}/{q.name}" for d in sub for q in d.iterdir()
        ]
    found = {}
    for name in names:
        m = _tsv._LAYER_NAME.search(name)
        if m:
            found.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not found:
        raise FormatError(f"{path}: no n{{N}}-l{{k}}.tsv layer files")
    if len(found) > 1:
        raise FormatError(f"{path}: layers of several widths {sorted(found)}")
    n_neurons, ks = found.popitem()
    n_layers = 0
    while n_layers + 1 in ks:
        n_layers += 1
    if n_layers == 0:
        raise FormatError(f"{path}: layer 1 (n{n_neurons}-l1.tsv) is missing")
    return n_neurons, n_layers


def iter_layers(path, n_neurons, n_layers):
    """Yield layers 1..L as (N x N) CSR arrays, one at a time.

    ``path`` is a directory of ``n{N}-l{k}.tsv`` (or ``.mtx``) files, directly or in a
    ``neuron{N}`` subdirectory, or the official ``neuron{N}.tar.gz``.
    """
    path = _exists(path)
    if path.is_file():
        yield from _tsv.iter_tar_layers(path, n_neurons, n_layers)
        return
    directory, files = _tsv.layer_files(path, n_neurons)
    missing = [k for k in range(1, n_layers + 1) if k not in files]
    if missing:
        raise FormatError(
            f"{directory}: layer {missing[0]} (n{n_neurons}-l{missing[0]}.tsv) is missing"
            + (f", and {len(missing) - 1} more" if len(missing) > 1 else "")
        )
    for k in range(1, n_layers + 1):
        f = files[k]
        if f.suffix == ".mtx":
            W = _mmread(f, "layer")
            yield _check_shape(W, f, n_neurons, "layer", (n_neurons, n_neurons))
        else:
            yield _tsv.parse_layer(f.read_bytes(), str(f), n_neurons)


def read_layers(path, n_neurons, n_layers):
    """All layers 1..L as a list (see :func:`iter_layers`)."""
    return list(iter_layers(path, n_neurons, n_layers))


def read_images(path, n_neurons):
    """Input images as an (images x N) CSR: ``.tsv``, ``.tsv.gz`` or LAGraph ``.mtx``."""
    path = _exists(path)
    if path.suffix == ".mtx":
        Y = _mmread(path, "images")
        if Y.shape[1] != n_neurons:
            raise FormatError(f"{path}: images have {Y.shape[1]} pixels, expected {n_neurons}")
        return Y
    return _tsv.read_images(path, n_neurons)


def read_truth(path):
    """Truth categories as sorted 1-based ids: one per line, or a LAGraph ``.mtx`` column."""
    path = _exists(path)
    if path.suffix == ".mtx":
        M = sp.coo_array(_mmread(path, "categories"))
        return np.unique(M.row.astype(np.int64) + 1)
    return _tsv.read_truth(path)
