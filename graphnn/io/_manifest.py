"""``network.json``: what a directory of per-layer files cannot hold itself (biases,
activations, dtype, metadata), shared by the Matrix Market and challenge TSV layouts."""

import json

from ..errors import FormatError
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
        m = json.loads(path.read_text())
        if int(m.get("format_version", 1)) > FORMAT_VERSION:
            raise FormatError(
                f"{path}: format version {m['format_version']} is newer than this graphnn reads "
                f"({FORMAT_VERSION}); upgrade graphnn"
            )
        kwargs = {k: m[k] for k in ("biases", "activations", "dtype", "metadata")}
        return kwargs, m.get("n_layers")
    except (ValueError, KeyError, TypeError) as e:
        raise FormatError(f"{path}: bad manifest ({type(e).__name__}: {e})") from None
