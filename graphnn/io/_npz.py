"""The native ``.npz`` network, and training checkpoints read as networks."""

import json
import zipfile

import numpy as np

from ..errors import FormatError, GraphnnError
from ..network import Network
from . import _fields as F
from . import checkpoint
from ._atomic import atomic_write
from ._fields import NPZ_ERRORS, member
from ._manifest import FORMAT_VERSION

# what np.load and the zip reader raise on a damaged or incomplete archive


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
                return checkpoint.network(z, path)
        except NPZ_ERRORS as e:
            raise FormatError(f"{path}: damaged or incomplete ({type(e).__name__}: {e})") from None
        except GraphnnError as e:
            raise FormatError(f"{path}: {e}") from None
    raise FormatError(f"{path}: neither a graphnn network nor a training checkpoint")


def _native(z, path):
    field = lambda name: member(z, name, path)  # noqa: E731
    version = F.integer(field("format_version"), f"{path}: format_version")
    if version > FORMAT_VERSION:
        raise FormatError(
            f"{path}: format version {version} is newer than this graphnn reads "
            f"({FORMAT_VERSION}); upgrade graphnn"
        )
    sizes = F.integers(field("sizes"), f"{path}: sizes")
    if len(sizes) < 2:
        raise FormatError(f"{path}: sizes must list at least two widths, got {sizes}")
    parts = ("data", "indices", "indptr")
    layers = [F.csr_members(field, f"layer{k}_", parts, sizes[k : k + 2], path)
              for k in range(len(sizes) - 1)]  # fmt: skip
    return Network(
        layers,
        biases=[field(f"bias{k}") for k in range(len(layers))],
        activations=F.texts(field("activations"), f"{path}: activations"),
        dtype=F.text(field("dtype"), f"{path}: dtype"),
        metadata=F.json_object(field("metadata"), f"{path}: metadata"),
    )
