"""The training checkpoint's format, owned here: every reader and writer goes through it.

``checkpoint.npz`` (uncompressed) holds

* ``model/L{k}_values``, ``_indices``, ``_indptr`` (a sparse layer's CSR) or ``model/L{k}_weight``
  (a dense layer), and ``model/L{k}_bias``: the weights after the last completed epoch;
* ``init/...``: the same keys for the weights at the start of training (pruning rewinds there);
* ``optim/{layer}_{param}_{slot}`` and ``optim/t``: the optimiser's state;
* ``best/...`` (with early stopping only): the model keys for the weights of the epoch with the
  best validation accuracy so far, which the run ends with;
* ``epoch`` (completed), ``history`` (JSON list) and ``identity`` (JSON object: the settings).
"""

import json

import numpy as np
import scipy.sparse as sp

from ..errors import FormatError
from ..network import Network, full_csr
from . import _fields as F
from ._atomic import atomic_write
from ._fields import NPZ_ERRORS, member

__all__ = ["NAME", "key", "layer_values", "sparse_layer", "write", "read", "is_checkpoint",
           "fields", "network", "check_optimizer_state"]  # fmt: skip

NAME = "checkpoint.npz"
MODEL, INITIAL, OPTIM, BEST = "model/", "init/", "optim/", "best/"
SPARSE_PARTS = ("values", "indices", "indptr")


def key(k, part):
    """The key of layer ``k``'s ``part`` (``values``, ``indices``, ``indptr``, ``weight`` or
    ``bias``) in a model's arrays."""
    return f"L{k}_{part}"


def layer_values(arrays, k):
    """Layer ``k``'s weight values in ``arrays``: a sparse layer's stored values, or a dense
    layer's whole weight (None when neither is there)."""
    return arrays.get(key(k, "values"), arrays.get(key(k, "weight")))


def sparse_layer(arrays, k, shape):
    """Layer ``k`` of ``arrays`` as a scipy CSR of ``shape``, or None for a dense layer."""
    if key(k, "weight") in arrays:
        return None
    data, indices, indptr = (arrays[key(k, part)] for part in SPARSE_PARTS)
    return sp.csr_array((data, indices, indptr), shape=shape)


def write(path, model, initial, optim, epoch, history, identity, best=None):
    """Write a checkpoint atomically: ``model``, ``initial``, ``optim`` and ``best`` are ``{key:
    array}`` (keys as :func:`key` and the optimiser's ``state_arrays`` make them)."""
    arrays = {MODEL + k: v for k, v in model.items()}
    arrays.update({BEST + k: v for k, v in (best or {}).items()})
    arrays.update({INITIAL + k: v for k, v in initial.items()})
    arrays.update({OPTIM + k: v for k, v in optim.items()})
    arrays["epoch"] = np.array(epoch)
    arrays["history"] = np.array(json.dumps(history))
    arrays["identity"] = np.array(json.dumps(identity, sort_keys=True))
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def is_checkpoint(path):
    """Whether ``path`` is a training checkpoint (an ``.npz`` with an ``identity`` member)
    rather than another file; an unreadable file is not one (its own reader says why)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return "identity" in z.files and "epoch" in z.files
    except NPZ_ERRORS:
        return False


def read(path):
    """A checkpoint's parts, every field and the weights checked: ``identity``, ``model``,
    ``initial``, ``optim`` (``{key: array}``), ``best`` (the same, or None), ``epoch`` and
    ``history``."""
    with np.load(path, allow_pickle=False) as z:
        identity, epoch, history = fields(z, path)
        network(z, path)  # the weights: structure, finite values, shapes
        part = lambda prefix: {k[len(prefix) :]: z[k] for k in z.files if k.startswith(prefix)}  # noqa: E731
        return {
            "identity": identity,
            "model": part(MODEL),
            "initial": part(INITIAL),
            "optim": part(OPTIM),
            "best": part(BEST) or None,
            "epoch": epoch,
            "history": history,
        }


def fields(z, path):
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


def network(z, path):
    """The network of a training checkpoint ``z`` (read from ``path``), every array checked."""
    identity, epoch, _ = fields(z, path)
    sizes = identity["sizes"]
    field = lambda name: member(z, name, path)  # noqa: E731
    layers, biases, dense = [], [], []
    for k in range(len(sizes) - 1):
        shape = (sizes[k], sizes[k + 1])
        if f"{MODEL}{key(k, 'weight')}" in z.files:
            layers.append(full_csr(field(f"{MODEL}{key(k, 'weight')}")))
            dense.append(k)
        else:
            layers.append(F.csr_members(field, f"{MODEL}L{k}_", SPARSE_PARTS, shape, path))
        biases.append(field(f"{MODEL}{key(k, 'bias')}"))
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
    F.integer(state.get("t"), f"{path}: {OPTIM}t")
    for i in range(n_layers):
        params = (layer_values(weights, i), weights[key(i, "bias")])
        for j, shape in enumerate(p.shape for p in params):
            for slot in slots:
                name = f"{i}_{j}_{slot}"
                if name not in state:
                    raise FormatError(
                        f"{path}: optimiser state {OPTIM}{name} is missing: the run cannot resume "
                        "exactly (start it again in a fresh --checkpoint directory)"
                    )
                a = state[name]
                if a.dtype.kind != "f" or a.shape != shape or not np.isfinite(a).all():
                    raise FormatError(
                        f"{path}: optimiser state {OPTIM}{name} must be {shape} finite numbers, "
                        f"got {a.dtype} {a.shape}"
                    )
