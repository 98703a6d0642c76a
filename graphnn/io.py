"""Saving and loading networks: the native ``.npz`` and Matrix Market per layer.

Every write is atomic: data goes to a temporary file beside the target, which is then renamed
over it, so an interrupted run never leaves a half-written file.
"""

import contextlib
import gzip
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp

from .errors import FormatError, GraphnnError
from .network import Network

__all__ = [
    "atomic_write",
    "read_bytes",
    "save_npz",
    "load_npz",
    "save_mtx",
    "load_mtx",
    "load",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1
_MANIFEST = "network.json"


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_bytes(path):
    """The bytes of ``path``, decompressed when it ends in ``.gz``."""
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise FormatError(f"{path}: not a readable gzip file ({e})") from None
    return data


def save_npz(net, path):
    """Write ``net`` to ``path`` in the native compressed ``.npz`` format."""
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "dtype": np.array(net.dtype.name),
        "sizes": np.array(net.sizes, dtype=np.int64),
        "activations": np.array([str(a) for a in net.activations]),
        "metadata": np.array(json.dumps(net.metadata)),
    }
    for k, (W, b) in enumerate(zip(net.layers, net.biases)):
        arrays[f"layer{k}_indptr"] = W.indptr
        arrays[f"layer{k}_indices"] = W.indices
        arrays[f"layer{k}_data"] = W.data
        arrays[f"bias{k}"] = b
    with atomic_write(path) as f:
        np.savez_compressed(f, **arrays)


def load_npz(path):
    """Read a network written by :func:`save_npz`."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise FormatError(f"{path}: not a graphnn .npz file") from None
    with z:
        try:
            version = int(z["format_version"])
            if version > FORMAT_VERSION:
                raise FormatError(
                    f"{path}: format version {version} is newer than this graphnn reads "
                    f"({FORMAT_VERSION}); upgrade graphnn"
                )
            sizes = [int(n) for n in z["sizes"]]
            layers = [
                sp.csr_array(
                    (z[f"layer{k}_data"], z[f"layer{k}_indices"], z[f"layer{k}_indptr"]),
                    shape=(sizes[k], sizes[k + 1]),
                )
                for k in range(len(sizes) - 1)
            ]
            biases = [z[f"bias{k}"] for k in range(len(layers))]
            return Network(
                layers,
                biases=biases,
                activations=[str(a) for a in z["activations"]],
                dtype=str(z["dtype"]),
                metadata=json.loads(str(z["metadata"])),
            )
        except KeyError as e:
            raise FormatError(f"{path}: not a graphnn .npz file (missing {e})") from None
        except GraphnnError as e:
            raise FormatError(f"{path}: {e}") from None


def save_mtx(net, directory):
    """Write one Matrix Market file per layer (``layer001.mtx`` ...) plus ``network.json``.

    The JSON manifest holds what Matrix Market cannot: biases, activations, dtype, metadata.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for k, W in enumerate(net.layers):
        with atomic_write(directory / f"layer{k + 1:03d}.mtx") as f:
            scipy.io.mmwrite(f, W, field="real", precision=17)
    manifest = {
        "format_version": FORMAT_VERSION,
        "dtype": net.dtype.name,
        "activations": [str(a) for a in net.activations],
        "biases": [b.tolist() for b in net.biases],
        "metadata": net.metadata,
    }
    with atomic_write(directory / _MANIFEST, "w") as f:
        json.dump(manifest, f)


def load_mtx(directory):
    """Read the layers ``layer*.mtx`` of ``directory`` in name order, with ``network.json``
    when present (otherwise zero biases and ReLU)."""
    directory = Path(directory)
    files = sorted(directory.glob("layer*.mtx"))
    if not files:
        raise FormatError(f"{directory}: no layer*.mtx files")
    layers = []
    for f in files:
        try:
            layers.append(sp.csr_array(scipy.io.mmread(f)))
        except ValueError as e:
            raise FormatError(f"{f}: bad Matrix Market file ({e})") from None
    kwargs = {}
    manifest = directory / _MANIFEST
    if manifest.exists():
        try:
            m = json.loads(manifest.read_text())
            kwargs = {
                "biases": m["biases"],
                "activations": m["activations"],
                "dtype": m["dtype"],
                "metadata": m["metadata"],
            }
        except (ValueError, KeyError) as e:
            raise FormatError(f"{manifest}: bad manifest ({e})") from None
    try:
        return Network(layers, **kwargs)
    except GraphnnError as e:
        raise FormatError(f"{directory}: {e}") from None


def load(path):
    """Load a saved network: a native ``.npz`` file or a directory of ``.mtx`` layers."""
    path = Path(path)
    if not path.exists():
        raise GraphnnError(f"{path}: no such file or directory")
    return load_mtx(path) if path.is_dir() else load_npz(path)
