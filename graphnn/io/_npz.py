"""The native ``.npz`` network, and training checkpoints read as networks."""

import json
import zipfile
import zlib

import numpy as np
import scipy.sparse as sp

from ..errors import FormatError, GraphnnError
from ..network import Network, full_csr
from ._atomic import atomic_write
from ._manifest import FORMAT_VERSION

# what np.load and the zip reader raise on a damaged or incomplete archive
NPZ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


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
    """A network from a native ``.npz`` (:func:`save_npz`, ``graphnn train --out``) or from a
    training checkpoint (``checkpoint.npz``: the weights of its last completed epoch)."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # every member's CRC, also those not read below
        z = None if bad is not None else np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except NPZ_ERRORS as e:
        raise FormatError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
    if z is None:
        raise FormatError(f"{path}: damaged file (bad checksum in {bad})")
    with z:
        try:
            if "format_version" in z.files:
                return _native(z, path)
            if "identity" in z.files:
                return _checkpoint(z)
        except NPZ_ERRORS as e:
            raise FormatError(f"{path}: damaged or incomplete ({type(e).__name__}: {e})") from None
        except GraphnnError as e:
            raise FormatError(f"{path}: {e}") from None
    raise FormatError(f"{path}: neither a graphnn network nor a training checkpoint")


def _native(z, path):
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
    return Network(
        layers,
        biases=[z[f"bias{k}"] for k in range(len(layers))],
        activations=[str(a) for a in z["activations"]],
        dtype=str(z["dtype"]),
        metadata=json.loads(str(z["metadata"])),
    )


def _checkpoint(z):
    identity = json.loads(str(z["identity"]))
    sizes = identity["sizes"]
    layers, biases, dense = [], [], []
    for k in range(len(sizes) - 1):
        shape = (sizes[k], sizes[k + 1])
        if f"model/L{k}_weight" in z.files:
            layers.append(full_csr(z[f"model/L{k}_weight"]))
            dense.append(k)
        else:
            parts = (z[f"model/L{k}_values"], z[f"model/L{k}_indices"], z[f"model/L{k}_indptr"])
            layers.append(sp.csr_array(parts, shape=shape))
        biases.append(z[f"model/L{k}_bias"])
    last = "softmax" if identity.get("loss", "softmax") == "softmax" else "sigmoid"
    meta = {"source": "checkpoint", "epoch": int(z["epoch"]), "dense_layers": dense}
    meta["training"] = identity
    return Network(
        layers,
        biases=biases,
        activations=["relu"] * (len(layers) - 1) + [last],
        dtype=identity.get("dtype", "float32"),
        metadata=meta,
    )
