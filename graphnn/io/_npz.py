"""The native ``.npz`` network, and training checkpoints read as networks."""

import json
import zipfile
import zlib

import numpy as np
import scipy.sparse as sp

from ..errors import FormatError, GraphnnError
from ..network import Network, full_csr
from . import _fields as F
from ._atomic import atomic_write
from ._fields import member
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
                return checkpoint_network(z, path)
        except NPZ_ERRORS as e:
            raise FormatError(f"{path}: damaged or incomplete ({type(e).__name__}: {e})") from None
        except GraphnnError as e:
            raise FormatError(f"{path}: {e}") from None
    raise FormatError(f"{path}: neither a graphnn network nor a training checkpoint")


def _csr(field, prefix, names, shape, path):
    """A CSR array from the members ``prefix + name`` for (values, indices, indptr), the index
    members checked to be integers (scipy would cast floats); the rest is checked by
    :class:`~graphnn.Network`."""
    data, indices, indptr = (field(prefix + name) for name in names)
    for name, a in zip(names[1:], (indices, indptr)):
        F.index_array(a, f"{path}: {prefix + name}")
    return sp.csr_array((data, indices, indptr), shape=tuple(shape))


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
    layers = [_csr(field, f"layer{k}_", ("data", "indices", "indptr"), sizes[k : k + 2], path)
              for k in range(len(sizes) - 1)]  # fmt: skip
    return Network(
        layers,
        biases=[field(f"bias{k}") for k in range(len(layers))],
        activations=F.texts(field("activations"), f"{path}: activations"),
        dtype=F.text(field("dtype"), f"{path}: dtype"),
        metadata=F.json_object(field("metadata"), f"{path}: metadata"),
    )


def checkpoint_fields(z, path):
    """The checked scalar members of a training checkpoint: ``(identity, epoch, history)``;
    ``identity["sizes"]`` a list of at least two widths."""
    field = lambda name: member(z, name, path)  # noqa: E731
    identity = F.json_object(field("identity"), f"{path}: identity")
    sizes = F.integers(identity.get("sizes"), f"{path}: identity.sizes")
    if len(sizes) < 2:
        raise FormatError(f"{path}: identity.sizes must list at least two widths, got {sizes}")
    epoch = F.integer(field("epoch"), f"{path}: epoch")
    history = F.sequence(F.json_text(field("history"), f"{path}: history"), f"{path}: history")
    return identity, epoch, history


def checkpoint_network(z, path):
    """The network of a training checkpoint ``z`` (read from ``path``), every array checked."""
    identity, epoch, _ = checkpoint_fields(z, path)
    sizes = identity["sizes"]
    field = lambda name: member(z, name, path)  # noqa: E731
    layers, biases, dense = [], [], []
    for k in range(len(sizes) - 1):
        shape = (sizes[k], sizes[k + 1])
        if f"model/L{k}_weight" in z.files:
            layers.append(full_csr(field(f"model/L{k}_weight")))
            dense.append(k)
        else:
            parts = ("values", "indices", "indptr")
            layers.append(_csr(field, f"model/L{k}_", parts, shape, path))
        biases.append(field(f"model/L{k}_bias"))
    last = "softmax" if identity.get("loss", "softmax") == "softmax" else "sigmoid"
    meta = {"source": "checkpoint", "epoch": epoch, "dense_layers": dense}
    meta["training"] = identity
    return Network(
        layers,
        biases=biases,
        activations=["relu"] * (len(layers) - 1) + [last],
        dtype=F.text(identity.get("dtype", "float32"), f"{path}: identity.dtype"),
        metadata=meta,
    )


def check_optimizer_state(state, weights, n_layers, slots, path):
    """Every state array the optimiser keeps (``slots``) for every parameter of the
    checkpoint's ``weights`` (its ``model/`` arrays), of the parameter's shape and finite:
    resuming with any of it fresh would not continue the run exactly."""
    F.integer(state.get("t"), f"{path}: optim/t")
    for i in range(n_layers):
        params = (weights.get(f"L{i}_values", weights.get(f"L{i}_weight")), weights[f"L{i}_bias"])
        for j, shape in enumerate(p.shape for p in params):
            for slot in slots:
                key = f"{i}_{j}_{slot}"
                if key not in state:
                    raise FormatError(
                        f"{path}: optimiser state optim/{key} is missing: the run cannot resume "
                        "exactly (start it again in a fresh --checkpoint directory)"
                    )
                a = state[key]
                if a.dtype.kind != "f" or a.shape != shape or not np.isfinite(a).all():
                    raise FormatError(
                        f"{path}: optimiser state optim/{key} must be {shape} finite numbers, "
                        f"got {a.dtype} {a.shape}"
                    )
