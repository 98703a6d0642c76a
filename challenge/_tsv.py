"""Readers and writers of the official tab-separated challenge files (1-based ids).

Parsing is vectorised: a whole file is converted by numpy in one call, and only when that fails
is it scanned line by line to name the first bad line.
"""

import gzip
import re
import tarfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graphnn.errors import FormatError
from graphnn.io import atomic_write, read_bytes

from ._parse import BAD_COUNT, SLOW, parse_numeric

OFFICIAL_BIAS = {1024: -0.30, 4096: -0.35, 16384: -0.40, 65536: -0.45}
_LAYER_NAME = re.compile(r"(?:^|/)n(\d+)-l(\d+)\.(tsv|mtx)$")


def _first_bad_line(raw, name, ncols):
    for k, line in enumerate(raw.decode("utf-8", "replace").splitlines(), start=1):
        fields = line.split()
        if len(fields) != ncols:
            raise FormatError(f"{name}: line {k}: expected {ncols} columns, got {len(fields)}")
        for f in fields:
            try:
                float(f)
            except ValueError:
                raise FormatError(f"{name}: line {k}: {f!r} is not a number") from None
    raise FormatError(f"{name}: cannot parse")  # unreachable for text numpy rejects


def parse_table(raw, name, ncols):
    """An (n, ncols) float64 array from whitespace-separated text ``raw`` (bytes)."""
    if not raw.strip():
        return np.empty((0, ncols))
    table, status, starts, ends = parse_numeric(raw, ncols)
    if (status == BAD_COUNT).any():
        _first_bad_line(raw, name, ncols)
    for r in np.flatnonzero(status == SLOW):  # tokens the fast path leaves to float()
        for c, field in enumerate(raw[starts[r] : ends[r]].split()):
            try:
                table[r, c] = float(field)
            except ValueError:
                raise FormatError(
                    f"{name}: line {r + 1}: {field.decode()!r} is not a number"
                ) from None
    bad = ~np.isfinite(table).all(axis=1)
    if bad.any():
        raise FormatError(f"{name}: line {np.argmax(bad) + 1}: value is not a finite number")
    return table


def check_ids(ids, name, what, upper=None):
    """0-based int64 ids from 1-based float ids, checked to be integers in 1..upper."""
    bad = (ids != np.floor(ids)) | (ids < 1)
    if upper is not None:
        bad |= ids > upper
    if bad.any():
        k = int(np.argmax(bad))
        rng = f"1..{upper}" if upper is not None else ">= 1"
        raise FormatError(
            f"{name}: line {k + 1}: {what} id {ids[k]:g} is out of range {rng} (ids are 1-based)"
        )
    return ids.astype(np.int64) - 1


def parse_layer(raw, name, n_neurons):
    """A layer ``row col value`` file as an (N x N) CSR array."""
    t = parse_table(raw, name, 3)
    rows = check_ids(t[:, 0], name, "row", n_neurons)
    cols = check_ids(t[:, 1], name, "column", n_neurons)
    W = sp.csr_array((t[:, 2], (rows, cols)), shape=(n_neurons, n_neurons))
    W.sum_duplicates()
    return W


def read_images(path, n_neurons):
    """Images ``imageId pixelIndex value`` (``.tsv`` or ``.tsv.gz``) as an (images x N) CSR.

    The number of images is the largest image id in the file.
    """
    name = str(path)
    t = parse_table(read_bytes(path), name, 3)
    rows = check_ids(t[:, 0], name, "image")
    cols = check_ids(t[:, 1], name, "pixel", n_neurons)
    n_images = int(rows.max()) + 1 if rows.size else 0
    Y = sp.csr_array((t[:, 2], (rows, cols)), shape=(n_images, n_neurons))
    Y.sum_duplicates()
    return Y


def read_truth(path):
    """Truth categories: sorted unique 1-based image ids, one per line."""
    name = str(path)
    t = parse_table(read_bytes(path), name, 1)
    return np.unique(check_ids(t[:, 0], name, "image") + 1)


def layer_files(directory, n_neurons):
    """{k: path} of the ``n{N}-l{k}.tsv`` (or ``.mtx``) files in ``directory`` or its
    ``neuron{N}`` subdirectory."""
    directory = Path(directory)
    if (directory / f"neuron{n_neurons}").is_dir():
        directory = directory / f"neuron{n_neurons}"
    found = {}
    for p in directory.iterdir():
        m = _LAYER_NAME.search(p.name)
        if m and int(m.group(1)) == n_neurons:
            found.setdefault(int(m.group(2)), p)
    return directory, found


def iter_tar_layers(path, n_neurons, n_layers):
    """Yield the layers 1..L of an official ``neuron{N}.tar.gz``, read without extracting.

    Members arrive in archive order; a layer that arrives early is kept as raw bytes until its
    turn, so memory holds the compressed order's backlog, not the parsed network.
    """
    pending = {}
    want = 1
    widths = set()
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                m = _LAYER_NAME.search(member.name)
                if not (member.isfile() and m and m.group(3) == "tsv"):
                    continue
                widths.add(int(m.group(1)))
                if int(m.group(1)) != n_neurons or int(m.group(2)) > n_layers:
                    continue
                pending[int(m.group(2))] = (member.name, tar.extractfile(member).read())
                while want in pending:
                    member_name, raw = pending.pop(want)
                    yield parse_layer(raw, f"{path}:{member_name}", n_neurons)
                    want += 1
    except (tarfile.TarError, EOFError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise FormatError(f"{path}: truncated or unreadable archive ({e})") from None
    if want == 1 and widths and n_neurons not in widths:
        raise FormatError(
            f"{path}: holds layers of {', '.join(map(str, sorted(widths)))} neurons, "
            f"not {n_neurons}: check --neurons"
        )
    if want <= n_layers:
        raise FormatError(f"{path}: layer {want} (n{n_neurons}-l{want}.tsv) is missing")


def format_triples(rows, cols, values, value_fmt):
    """Tab-separated 1-based ``row col value`` lines as bytes."""
    table = np.column_stack([rows + 1, cols + 1]).astype(np.int64)
    lines = [f"{r}\t{c}\t{value_fmt % v}\n" for (r, c), v in zip(table.tolist(), values.tolist())]
    return "".join(lines).encode()


def write_layer(W, path):
    """Write a layer in the official format (``%e`` values, sorted by column then row)."""
    C = sp.csc_array(W)
    C.sort_indices()
    cols = np.repeat(np.arange(C.shape[1]), np.diff(C.indptr))
    with atomic_write(path) as f:
        f.write(format_triples(C.indices, cols, C.data, "%e"))


def write_images(Y, path):
    """Write images ``imageId pixelIndex value``; gzipped when ``path`` ends in ``.gz``."""
    C = sp.csr_array(Y)
    C.sort_indices()
    rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
    data = format_triples(rows, C.indices, C.data, "%g")
    with atomic_write(path) as f:
        f.write(gzip.compress(data, mtime=0) if str(path).endswith(".gz") else data)


def write_truth(ids, path):
    """Write 1-based category ids, one per line."""
    with atomic_write(path, "w") as f:
        f.writelines(f"{int(i)}\n" for i in ids)
