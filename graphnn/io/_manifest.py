"""The manifests of folders: ``network.json``, what a directory of per-layer files cannot hold
itself (biases, activations, dtype, metadata), shared by the Matrix Market and challenge TSV
layouts; and a generated challenge problem's ``problem.json``, read here for every reader with
each field checked."""

import json

from ..errors import FormatError
from . import _fields as F
from ._atomic import atomic_write

FORMAT_VERSION = 1
MANIFEST = "network.json"


def write_manifest(net, directory):
    manifest = {
        "format_version": FORMAT_VERSION,
        "n_layers": len(net),
        "dtype": net.dtype.name,
        "activations": [str(a) for a in net.activations],
        "biases": [b.tolist() for b in net.biases],
        "metadata": net.metadata,
    }
    with atomic_write(directory / MANIFEST, "w") as f:
        json.dump(manifest, f)


def read_manifest(directory):
    """The manifest's Network keyword arguments and its layer count, or ``({}, None)``."""
    path = directory / MANIFEST
    if not path.exists():
        return {}, None
    try:
        m = F.mapping(json.loads(path.read_text()), str(path))
    except ValueError as e:
        raise FormatError(f"{path}: not valid JSON ({e})") from None
    where = lambda key: f"{path}: {key}"  # noqa: E731
    version = F.integer(m.get("format_version", 1), where("format_version"))
    if version > FORMAT_VERSION:
        raise FormatError(
            f"{path}: format version {version} is newer than this graphnn reads "
            f"({FORMAT_VERSION}); upgrade graphnn"
        )
    missing = [k for k in ("n_layers", "biases", "activations", "dtype") if k not in m]
    if missing:
        raise FormatError(f"{path}: {', '.join(missing)} missing")
    kwargs = {
        "biases": F.biases(m["biases"], where("biases")),
        "activations": F.activations(m["activations"], where("activations")),
        "dtype": F.text(m["dtype"], where("dtype")),
        "metadata": F.mapping(m.get("metadata", {}), where("metadata")),
    }
    return kwargs, F.integer(m["n_layers"], where("n_layers"), low=1)


PROBLEM = "problem.json"


def read_problem_manifest(path):
    """A generated challenge problem's ``problem.json`` at ``path``, every field checked:
    ``neurons``, ``layers`` (at least 1), ``images``, ``seed``, ``categories`` (counts),
    ``bias`` (a finite number), ``layer_files`` (true or false, true when absent), ``sha256``
    (file name to digest) and ``settings_sha256`` (a digest, absent in early problems)."""
    try:
        m = F.mapping(json.loads(path.read_text()), str(path))
    except ValueError as e:
        raise FormatError(f"{path}: not valid JSON ({e})") from None
    where = lambda key: f"{path}: {key}"  # noqa: E731
    missing = [k for k in ("neurons", "layers", "images", "seed", "bias", "sha256") if k not in m]
    if missing:
        raise FormatError(f"{path}: {', '.join(missing)} missing")
    for key, low in (("neurons", 1), ("layers", 1), ("images", 0), ("seed", 0)):
        m[key] = F.integer(m[key], where(key), low)
    if "categories" in m:
        m["categories"] = F.integer(m["categories"], where("categories"))
    m["bias"] = F.number(m["bias"], where("bias"))
    if not isinstance(m.setdefault("layer_files", True), bool):
        raise FormatError(f"{where('layer_files')} must be true or false, got {m['layer_files']!r}")
    for name, digest in F.mapping(m["sha256"], where("sha256")).items():
        F.text(digest, where(f"sha256[{name!r}]"))
    if F.text(m.setdefault("images_format", "tsv"), where("images_format")) not in ("tsv", "npz"):
        raise FormatError(
            f"{where('images_format')} must be tsv or npz, got {m['images_format']!r}"
        )
    if "settings_sha256" in m:
        F.text(m["settings_sha256"], where("settings_sha256"))
    return m
