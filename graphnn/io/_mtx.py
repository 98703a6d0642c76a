"""One Matrix Market file per layer (``layer001.mtx`` ...) with a ``network.json`` manifest."""

import re

import scipy.io
import scipy.sparse as sp

from ..errors import FormatError, GraphnnError
from ..network import Network, check_sparse
from ._atomic import atomic_folder, check_size
from ._manifest import MANIFEST, read_manifest, write_manifest

_NAME = re.compile(r"^layer(\d+)\.mtx$")


def save_mtx(net, directory):
    """Write ``layer001.mtx`` ... and ``network.json`` (biases, activations, dtype, metadata)
    as a whole: into a temporary folder that takes the place of ``directory`` at the end, so
    that an earlier network there (of any length) stays intact until then.

    Explicit zeros are written as entries, so the structure survives the round trip.
    """
    width = max(3, len(str(len(net))))
    with atomic_folder(directory, lambda p: bool(_NAME.match(p.name)) or p.name == MANIFEST) as tmp:
        for k, W in enumerate(net.layers, start=1):
            with open(tmp / f"layer{k:0{width}d}.mtx", "wb") as f:
                scipy.io.mmwrite(f, sp.coo_array(W), field="real", precision=17)
        write_manifest(net, tmp)


def layer_numbers(directory):
    """``{k: path}`` of the ``layer{k}.mtx`` files of ``directory`` (k as a number)."""
    found = {}
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m:
            k = int(m.group(1))
            if k in found:
                raise FormatError(f"{directory}: {found[k].name} and {p.name} are both layer {k}")
            found[k] = p
    return found


def read_mtx_layer(path, what="layer"):
    """A Matrix Market file as a CSR array of real, finite values (a complex field, a NaN or
    an integer beyond 64 bits is refused, naming the file)."""
    try:
        rows, cols, entries = scipy.io.mminfo(path)[:3]
        check_size(8 * (rows + 1) + 16 * entries, path, "its declared shape")
        A = sp.csr_array(scipy.io.mmread(path))
    except FormatError:
        raise
    except (ValueError, IndexError, OSError, EOFError, OverflowError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise FormatError(f"{path}: bad Matrix Market {what} file ({e})") from None
    try:
        check_sparse(A, str(path))
    except GraphnnError as e:
        raise FormatError(str(e)) from None
    return A


def load_mtx(directory):
    """The layers ``layer{k}.mtx`` of ``directory`` in numeric order (``layer2`` before
    ``layer10``), with ``network.json`` when present (otherwise zero biases and ReLU).

    Layers must be numbered 1..L without gaps; files beyond the manifest's L (left over from
    an earlier, longer network) are refused rather than silently read or ignored.
    """
    files = layer_numbers(directory)
    if not files:
        raise FormatError(f"{directory}: no layer*.mtx files")
    kwargs, n_layers = read_manifest(directory)
    numbers = sorted(files)
    expected = list(range(1, len(numbers) + 1))
    if numbers != expected:
        gap = next(e for k, e in zip(numbers, expected) if k != e)
        raise FormatError(f"{directory}: layer {gap} is missing (layers run 1..{numbers[-1]})")
    if n_layers is not None and len(numbers) != n_layers:
        extra = [files[k].name for k in numbers[n_layers:]]
        raise FormatError(
            f"{directory}: network.json describes {n_layers} layers but there are "
            f"{len(numbers)} layer files"
            + (
                f" (stale: {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''})"
                if extra
                else ""
            )
        )
    layers = [read_mtx_layer(files[k]) for k in numbers]
    try:
        return Network(layers, **kwargs)
    except GraphnnError as e:
        raise FormatError(f"{directory}: {e}") from None
