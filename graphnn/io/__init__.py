"""Reading and writing networks in every format graphnn knows, behind :func:`load` and
:func:`save`.

=========  ==============================================================================
format     layout
=========  ==============================================================================
``npz``    one native compressed file: layers (explicit zeros kept), biases, activations,
           dtype, metadata; also what ``graphnn train --out`` exports
``mtx``    a directory of ``layer001.mtx`` ... (Matrix Market) and ``network.json``
``tsv``    a Graph Challenge directory of ``n{N}-l{k}.tsv`` (square layers of one width)
=========  ==============================================================================

:func:`load` also reads the official ``neuron{N}.tar.gz`` (without extracting it), challenge
directories of ``n{N}-l{k}.mtx`` and training checkpoints (``checkpoint.npz`` or its
directory). Every write is atomic: an interrupted run never leaves a half-written file.
"""

from pathlib import Path

from ..errors import FormatError, GraphnnError
from . import checkpoint
from ._atomic import atomic_folder, atomic_write, claim, read_bytes
from ._manifest import FORMAT_VERSION, read_problem_manifest
from ._mtx import layer_numbers
from ._mtx import load_mtx as _load_mtx
from ._mtx import save_mtx as _save_mtx
from ._npz import NPZ_ERRORS, load_npz, save_npz
from .tsv import LAYER_NAME, discover, iter_layers, load_challenge, save_challenge

__all__ = [
    "FORMATS",
    "FORMAT_VERSION",
    "load",
    "save",
    "load_npz",
    "save_npz",
    "load_mtx",
    "save_mtx",
    "discover",
    "iter_layers",
    "atomic_write",
    "atomic_folder",
    "claim",
    "read_bytes",
    "NPZ_ERRORS",
    "read_problem_manifest",
    "checkpoint",
]

FORMATS = ("npz", "mtx", "tsv")
_CHECKPOINT = checkpoint.NAME


def load_mtx(directory):
    """A network from a directory of ``layer{k}.mtx`` files (see :func:`save_mtx`)."""
    return _load_mtx(Path(directory))


def save_mtx(net, directory):
    """Write ``net`` as ``layer001.mtx`` ... plus ``network.json`` in ``directory``."""
    _save_mtx(net, Path(directory))


def _is_challenge_dir(path):
    return any(LAYER_NAME.search(p.name) for p in path.iterdir()) or any(
        p.is_dir() and p.name.startswith("neuron") for p in path.iterdir()
    )


def load(path):
    """The :class:`~graphnn.Network` stored at ``path``, whatever its format.

    ``path`` is a native ``.npz`` (a network or a training checkpoint), a directory holding
    ``checkpoint.npz``, ``network.npz``, ``layer{k}.mtx`` files or challenge
    ``n{N}-l{k}.tsv``/``.mtx`` files, or an official ``neuron{N}.tar.gz``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from graphnn import Network
    >>> net = Network([np.eye(3)], biases=-0.3, activations="relu:32")
    >>> d = tempfile.mkdtemp()
    >>> save(net, os.path.join(d, "net.npz"))
    >>> load(os.path.join(d, "net.npz")).sizes
    [3, 3]
    """
    path = Path(path)
    if not path.exists():
        raise GraphnnError(f"{path}: no such file or directory")
    if path.is_dir():
        for name in (_CHECKPOINT, "network.npz"):
            if (path / name).is_file():
                return load_npz(path / name)
        if layer_numbers(path):
            return _load_mtx(path)
        if _is_challenge_dir(path):
            return load_challenge(path)
        raise FormatError(
            f"{path}: no network here (expected network.npz, checkpoint.npz, layer{{k}}.mtx "
            "or n{N}-l{k}.tsv files)"
        )
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return load_challenge(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK"):
        return load_npz(path)
    raise FormatError(
        f"{path}: not a network file (expected a .npz, a neuron{{N}}.tar.gz or a directory)"
    )


def infer_format(path, format=None):
    """The format to write ``path`` in: ``format`` when given, else ``npz`` for ``*.npz``."""
    if format is None:
        if str(path).lower().endswith(".npz"):
            return "npz"
        raise GraphnnError(
            f"cannot tell the format of {path}: give format as one of {', '.join(FORMATS)} "
            "(npz is a file ending in .npz, mtx and tsv are directories)"
        )
    if format not in FORMATS:
        raise GraphnnError(f"format {format!r} is not valid; choose from {', '.join(FORMATS)}")
    return format


def save(net, path, format=None):
    """Write ``net`` to ``path`` as ``format`` (``npz``, ``mtx`` or ``tsv``; by default from
    the name: ``*.npz``). ``mtx`` and ``tsv`` write a directory."""
    path = Path(path)
    format = infer_format(path, format)
    if format == "npz":
        save_npz(net, path)
    elif format == "mtx":
        _save_mtx(net, path)
    else:
        save_challenge(net, path)
