"""Image datasets: IDX files (MNIST and its relatives) and scikit-learn's bundled digits."""

from pathlib import Path

import numpy as np

from .errors import FormatError, GraphnnError
from .io import read_bytes

__all__ = ["read_idx", "find_idx", "builtin_digits"]

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """An IDX file (raw or ``.gz``) as a numpy array of its declared shape."""
    path = Path(path)
    raw = read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise FormatError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise FormatError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise FormatError(
            f"{path}: IDX data has {len(raw) - header} bytes, the header declares {expected}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def find_idx(directory, stem):
    """The path of ``stem`` or ``stem.gz`` in ``directory`` (IDX names as distributed, with
    ``-idx3-ubyte`` or ``.idx3-ubyte``)."""
    directory = Path(directory)
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.exists():
                return candidate
    raise GraphnnError(f"{directory}: no {stem} or {stem}.gz (MNIST IDX files as distributed)")


def builtin_digits():
    """scikit-learn's bundled 8 x 8 digits: ``(images in [0, 1], labels)``; works offline."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images / 16.0, d.target
