"""The Graph Challenge's tab-separated files (1-based ids): layer directories
(``n{N}-l{k}.tsv``, or ``.mtx`` as converted for LAGraph), the official ``neuron{N}.tar.gz``
read without extracting, images and truth.

Parsing is multi-threaded and exact (``_parse``); only when it fails is a file scanned line by
line to name the first bad line.
"""

import contextlib
import gzip
import re
import tarfile
import zlib
from pathlib import Path

import numba as nb
import numpy as np
import scipy.sparse as sp

from ..errors import FormatError, GraphnnError
from ..network import Network, check_sparse
from . import _fields as F
from ._atomic import atomic_folder, atomic_write, check_size, read_bytes
from ._fields import member
from ._manifest import MANIFEST, read_manifest, read_problem_manifest, write_manifest
from ._mtx import read_mtx_layer
from ._npz import NPZ_ERRORS
from ._parse import (
    BAD_COUNT,
    SLOW,
    checked_ids,
    int_triples,
    parse_numeric,
    parse_triples,
)

MAX_IMAGES = 2**31 - 1  # image ids beyond this are damage, not data (CSR row counts are int32)
OFFICIAL_BIAS = {1024: -0.30, 4096: -0.35, 16384: -0.40, 65536: -0.45}
LAYER_NAME = re.compile(r"(?:^|/)n(\d+)-l(\d+)\.(tsv|mtx)$")


def _first_bad_line(raw, name, ncols, first=1):
    for k, line in enumerate(raw.decode("utf-8", "replace").splitlines(), start=first):
        fields = line.split()
        if len(fields) != ncols:
            raise FormatError(f"{name}: line {k}: expected {ncols} columns, got {len(fields)}")
        for f in fields:
            try:
                float(f)
            except ValueError:
                raise FormatError(f"{name}: line {k}: {f!r} is not a number") from None
    raise FormatError(f"{name}: cannot parse")  # unreachable for text numpy rejects


def _exists(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    return path


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
    """A layer ``row col value`` file as an (N x N) CSR array; an empty file is refused (a
    layer without edges is a truncated file here, never a network: :func:`save_challenge`
    writes none)."""
    if not raw.strip():
        raise FormatError(f"{name}: empty layer file (no edges): damaged or truncated")
    t = parse_table(raw, name, 3)
    rows = check_ids(t[:, 0], name, "row", n_neurons)
    cols = check_ids(t[:, 1], name, "column", n_neurons)
    index = np.int32 if n_neurons <= np.iinfo(np.int32).max else np.int64  # half the bytes
    W = sp.csr_array((t[:, 2], (rows.astype(index), cols.astype(index))),
                     shape=(n_neurons, n_neurons))  # fmt: skip
    W.sum_duplicates()
    return W


def read_images(path, n_neurons, block=1 << 26):
    """Images ``imageId pixelIndex value`` (``.tsv`` or ``.tsv.gz``), or LAGraph's ``.mtx``,
    as an (images x N) CSR. The number of images is the largest image id in the file.

    Text is read in blocks of about ``block`` bytes, each parsed in one compiled pass split
    over the kernel threads (:func:`~graphnn.io._parse.parse_triples`), so memory holds the
    images' arrays and one block, not the text: about 12 bytes a pixel (int32 ids, float32
    values where they are exact, else float64)."""
    path = _exists(path)
    name = str(path)
    if path.suffix in (".mtx", ".npz"):
        Y = read_mtx_layer(path, "images") if path.suffix == ".mtx" else _images_npz(path)
        if Y.shape[1] != n_neurons:
            raise FormatError(f"{path}: images have {Y.shape[1]} pixels, expected {n_neurons}")
        return Y
    rows, cols, vals = [], [], []
    line0, ordered, last, scratch = 0, True, -1, {}
    for raw in _text_blocks(path, block):
        r, c, v = _image_triples(raw, name, line0, n_neurons, scratch)
        if r.size:
            ordered = ordered and r[0] >= last and bool((r[1:] >= r[:-1]).all())
            last = r[-1]
        rows.append(r)
        cols.append(c)
        vals.append(v)
        line0 += r.size
        check_size(12 * line0, name, f"its {line0:,} pixels so far")
    rows, cols, vals = _joined(rows, np.int32), _joined(cols, np.int32), _joined(vals, None)
    n_images = int(rows.max()) + 1 if rows.size else 0
    if rows.size:
        line = int(np.argmax(rows)) + 1
        check_size(8 * n_images, f"{name}: line {line}", f"image id {n_images}")
    if ordered:  # the usual layout: a CSR straight away, no sort of 4e8 entries
        indptr = np.searchsorted(rows, np.arange(n_images + 1, dtype=np.int32))
        del rows
        if indptr[-1] < 2**31:  # int32 throughout: scipy would widen the indices to match
            indptr = indptr.astype(np.int32)
        Y = sp.csr_array((vals, cols.astype(np.int32, copy=False), indptr), (n_images, n_neurons))
    else:
        Y = sp.csr_array((vals, (rows, cols)), shape=(n_images, n_neurons))
    Y.sum_duplicates()
    return Y


def _images_npz(path):
    """Images written by :func:`write_images` as ``.npz``, every array checked."""
    try:
        with np.load(path, allow_pickle=False) as z:
            parts = {k: member(z, k, path) for k in ("indptr", "indices", "data", "shape")}
    except NPZ_ERRORS as e:
        raise FormatError(f"{path}: not a readable images .npz ({type(e).__name__}: {e})") from None
    shape = F.integers(parts["shape"], f"{path}: shape")
    if len(shape) != 2:
        raise FormatError(f"{path}: shape must be (images, pixels), got {shape}")
    for name in ("indptr", "indices"):
        F.index_array(parts[name], f"{path}: {name}")
    indptr, indices = parts["indptr"], parts["indices"]
    if indptr.size and indptr[-1] < 2**31:  # int32 throughout: scipy would widen the indices
        indptr, indices = indptr.astype(np.int32), indices.astype(np.int32, copy=False)
    Y = sp.csr_array((parts["data"], indices, indptr), shape=tuple(shape))
    try:
        check_sparse(Y, str(path))
    except GraphnnError as e:
        raise FormatError(str(e)) from None
    return Y


def _joined(parts, dtype):
    """The blocks' arrays as one, the list emptied as it goes, so that memory holds the parts
    and one joined array at most (float32 values only if every block's are exact in it)."""
    if dtype is None:
        dtype = np.float32 if all(p.dtype == np.float32 for p in parts) else np.float64
    out = np.empty(sum(p.size for p in parts), dtype)
    at = 0
    while parts:
        p = parts.pop(0)
        out[at : at + p.size] = p
        at += p.size
    return out


def _text_blocks(path, block):
    """The text of ``path`` (gzip-decompressed for ``.gz``) in blocks of whole lines of about
    ``block`` bytes, each a view of one buffer read into again for the next block (no copy
    of the text: the caller is done with a block when it asks for the next); a line over
    1 MiB is refused (damage, or not a text file)."""
    opener = gzip.open if path.suffix == ".gz" else open
    buf = bytearray(block + (1 << 20) + 1)
    view = memoryview(buf)
    try:
        with opener(path, "rb") as f:
            while True:
                n = f.readinto(view[:block])
                if not n:
                    break
                if buf[n - 1] != ord("\n"):  # finish the last line
                    line = f.readline((1 << 20) + 1)
                    if len(line) > 1 << 20:
                        raise FormatError(
                            f"{path}: a line longer than 1 MiB: not a text file of ids"
                        )
                    buf[n : n + len(line)] = line
                    n += len(line)
                if buf[n - 1] != ord("\n"):  # the file's last line, without its newline
                    cut = buf.rfind(b"\n", 0, n) + 1
                    if buf[cut:n].strip():
                        buf[n] = ord("\n")
                        n += 1
                    else:  # trailing blanks only
                        n = cut
                if n:
                    yield view[:n]
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        what = "gzip file" if path.suffix == ".gz" else "file"
        raise FormatError(f"{path}: not a readable {what} ({type(e).__name__}: {e})") from None


def _image_triples(raw, name, line0, n_neurons, scratch):
    """0-based int32 image and pixel ids and the values of the lines of ``raw`` (``line0``
    lines into the file ``name``), checked: ids in range, values finite."""
    rows, cols, vals, bad, slow = parse_triples(raw, nb.get_num_threads(), scratch)
    if bad >= 0:
        line = bytes(raw).split(b"\n", bad + 1)[bad]
        _first_bad_line(line, name, 3, first=line0 + bad + 1)
    lines = bytes(raw).split(b"\n") if slow.size else None
    for k in slow:  # numbers the fast path leaves to float(): exponents, nan, long mantissas
        field = lines[k].split()[2]
        try:
            vals[k] = float(field)
        except ValueError:
            raise FormatError(
                f"{name}: line {line0 + k + 1}: {field.decode(errors='replace')!r} is not a number"
            ) from None
    r32, c32, vals, bad_id, bad_value = checked_ids(rows, cols, vals, MAX_IMAGES, n_neurons)
    if bad_id >= 0:
        what, ids, upper = ("image", rows, MAX_IMAGES) if not 1 <= rows[bad_id] <= MAX_IMAGES \
            else ("pixel", cols, n_neurons)  # fmt: skip
        raise FormatError(
            f"{name}: line {line0 + bad_id + 1}: {what} id {ids[bad_id]} is out of range "
            f"1..{upper} (ids are 1-based)"
        )
    if bad_value >= 0:
        raise FormatError(f"{name}: line {line0 + bad_value + 1}: value is not a finite number")
    return r32, c32, vals


def read_truth(path):
    """Truth categories as sorted unique 1-based image ids: one per line, or LAGraph's
    ``.mtx`` column."""
    path = _exists(path)
    if path.suffix == ".mtx":
        M = sp.coo_array(read_mtx_layer(path, "categories"))
        return np.unique(M.row.astype(np.int64) + 1)
    name = str(path)
    t = parse_table(read_bytes(path), name, 1)
    return np.unique(check_ids(t[:, 0], name, "image") + 1)


def layer_files(directory, n_neurons):
    """{k: path} of the ``n{N}-l{k}.tsv`` (or ``.mtx``) files in ``directory`` or its
    ``neuron{N}`` subdirectory. Nothing is guessed: layers both in the folder and in the
    subfolder, or two files for one layer, are an error naming both."""
    directory = Path(directory)
    top = _layers_in(directory, n_neurons)
    sub = directory / f"neuron{n_neurons}"
    if sub.is_dir():
        inner = _layers_in(sub, n_neurons)
        if top and inner:
            first = top[min(top)]
            raise FormatError(
                f"{directory}: layers both here ({first.name} ...) and in {sub.name}/: two "
                "layouts in one folder; keep one"
            )
        return sub, inner
    return directory, top


def _layers_in(directory, n_neurons):
    found = {}
    for p in sorted(directory.iterdir()):
        m = LAYER_NAME.search(p.name)
        if m and int(m.group(1)) == n_neurons:
            k = int(m.group(2))
            if k in found:
                raise FormatError(
                    f"{directory}: {found[k].name} and {p.name} are both layer {k}; keep one"
                )
            found[k] = p
    return found


def _consecutive(numbers, path, name):
    """L for layer numbers that must run 1..L: a gap or a stray layer beyond it is an error
    naming it (``name(k)`` the file of layer ``k``)."""
    if 1 not in numbers:
        raise FormatError(f"{path}: layer 1 ({name(1)}) is missing")
    n_layers = 0
    while n_layers + 1 in numbers:
        n_layers += 1
    stray = sorted(k for k in numbers if k > n_layers)
    if stray:
        raise FormatError(
            f"{path}: {name(stray[0])} is there but layer {n_layers + 1} is missing: remove the "
            "stray layer or restore the missing one"
        )
    return n_layers


def _drain(tar):
    """Read a compressed archive to its very end, so that the gzip (or bz2, xz) stream's
    checksum is verified: tarfile stops at the end-of-archive marker, and at a damaged header
    it stops quietly, as if the archive had ended there."""
    while tar.fileobj.read(1 << 22):
        pass


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
                m = LAYER_NAME.search(member.name)
                if not (member.isfile() and m and m.group(3) == "tsv"):
                    continue
                widths.add(int(m.group(1)))
                if int(m.group(1)) != n_neurons or int(m.group(2)) > n_layers:
                    continue
                k = int(m.group(2))
                if k < want or k in pending:
                    raise FormatError(f"{path}: two members for layer {k} ({member.name})")
                check_size(member.size, f"{path}:{member.name}", "the layer")
                pending[k] = (member.name, tar.extractfile(member).read())
                while want in pending:
                    member_name, raw = pending.pop(want)
                    yield parse_layer(raw, f"{path}:{member_name}", n_neurons)
                    want += 1
            _drain(tar)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise FormatError(f"{path}: corrupt or truncated archive ({e})") from None
    if want == 1 and widths and n_neurons not in widths:
        raise FormatError(
            f"{path}: holds layers of {', '.join(map(str, sorted(widths)))} neurons, "
            f"not {n_neurons}: check --neurons"
        )
    if want <= n_layers:
        raise FormatError(f"{path}: layer {want} (n{n_neurons}-l{want}.tsv) is missing")


def discover(path):
    """``(N, L)`` of a layer directory or official archive, from its file names: N from
    ``n{N}-l{k}`` (or ``neuron{N}``), L the count of consecutive layers from 1."""
    path = _exists(path)
    if path.is_file():
        try:
            with tarfile.open(path, "r:*") as tar:
                names = tar.getnames()
                _drain(tar)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise FormatError(f"{path}: corrupt or truncated archive ({e})") from None
    else:
        sub = [p for p in path.iterdir() if p.is_dir() and p.name.startswith("neuron")]
        names = [p.name for p in path.iterdir()] + [
            f"{d.name}/{q.name}" for d in sub for q in d.iterdir()
        ]
    found = {}
    for name in names:
        m = LAYER_NAME.search(name)
        if m:
            layers = found.setdefault(int(m.group(1)), {})
            k = int(m.group(2))
            if k in layers:
                raise FormatError(f"{path}: {layers[k]} and {name} are both layer {k}; keep one")
            layers[k] = name
    if not found:
        raise FormatError(f"{path}: no n{{N}}-l{{k}}.tsv layer files")
    if len(found) > 1:
        raise FormatError(f"{path}: layers of several widths {sorted(found)}")
    n_neurons, layers = found.popitem()
    if path.is_dir():
        layers = layer_files(path, n_neurons)[1]  # one layout, one file a layer
    n_layers = _consecutive(layers, path, lambda k: layers.get(k, f"n{n_neurons}-l{k}.tsv"))
    return n_neurons, n_layers


def iter_layers(path, n_neurons, n_layers):
    """Yield layers 1..L as (N x N) CSR arrays, one at a time.

    ``path`` is a directory of ``n{N}-l{k}.tsv`` (or ``.mtx``) files, directly or in a
    ``neuron{N}`` subdirectory, or the official ``neuron{N}.tar.gz``.
    """
    path = _exists(path)
    if path.is_file():
        yield from iter_tar_layers(path, n_neurons, n_layers)
        return
    directory, files = layer_files(path, n_neurons)
    missing = [k for k in range(1, n_layers + 1) if k not in files]
    if missing:
        raise FormatError(
            f"{directory}: layer {missing[0]} (n{n_neurons}-l{missing[0]}.tsv) is missing"
            + (f", and {len(missing) - 1} more" if len(missing) > 1 else "")
        )
    for k in range(1, n_layers + 1):
        f = files[k]
        if f.suffix == ".mtx":
            W = read_mtx_layer(f)
            if W.shape != (n_neurons, n_neurons):
                raise FormatError(f"{f}: layer has shape {W.shape}, expected {(n_neurons,) * 2}")
            yield W
        else:
            yield parse_layer(f.read_bytes(), str(f), n_neurons)


def _problem_bias(path, n_neurons, n_layers):
    """The bias of a challenge network: a generated problem's ``problem.json`` (whose layer
    count must be the folder's), else the official value for N, else None."""
    for d in (path, path.parent) if path.is_dir() else (path.parent,):
        manifest = d / "problem.json"
        if manifest.exists():
            m = read_problem_manifest(manifest)
            if m["layers"] != n_layers:
                raise FormatError(
                    f"{manifest}: describes {m['layers']} layers but {path} holds layers "
                    f"1..{n_layers}: remove the stray files or generate the problem again"
                )
            return m["bias"]
    return OFFICIAL_BIAS.get(n_neurons)


def load_challenge(path):
    """A challenge layer directory or archive as a :class:`~graphnn.Network`: ReLU clamped at
    32 and the problem's bias (``network.json`` or ``problem.json`` beside the layers, else the
    official bias for N; zero with ``metadata["bias_known"] = False`` otherwise)."""
    path = _exists(path)
    n_neurons, n_layers = discover(path)
    layers = list(iter_layers(path, n_neurons, n_layers))
    directory = layer_files(path, n_neurons)[0] if path.is_dir() else None
    kwargs, described = read_manifest(directory) if directory is not None else ({}, None)
    if described is not None and described != n_layers:
        raise FormatError(
            f"{directory}: network.json describes {described} layers but layers 1..{n_layers} "
            "are there: remove the stale files or the manifest"
        )
    if not kwargs:
        bias = _problem_bias(path, n_neurons, n_layers)
        kwargs = {
            "biases": 0.0 if bias is None else bias,
            "activations": "relu:32",
            "metadata": {"format": "challenge", "bias_known": bias is not None},
        }
    try:
        return Network(layers, **kwargs)
    except GraphnnError as e:
        raise FormatError(f"{path}: {e}") from None


def save_challenge(net, directory):
    """Write ``n{N}-l{k}.tsv`` for every layer (values to 17 digits: lossless) and
    ``network.json``. The layout holds square layers of one width only."""
    n = net.sizes[0]
    if any(s != n for s in net.sizes):
        raise GraphnnError(
            f"format 'tsv' is the challenge layout, for square layers of one width; this "
            f"network has widths {'-'.join(map(str, net.sizes))}: use npz or mtx"
        )
    empty = [k for k, W in enumerate(net.layers, start=1) if W.nnz == 0]
    if empty:
        raise GraphnnError(
            f"format 'tsv' cannot hold layer {empty[0]}: it has no edges, and an empty layer "
            "file reads as a truncated one; use npz or mtx"
        )
    ours = lambda p: bool(LAYER_NAME.search(p.name)) or p.name == MANIFEST  # noqa: E731
    with atomic_folder(directory, ours) as tmp:  # an earlier network intact until the end
        for k, W in enumerate(net.layers, start=1):
            write_layer(W, tmp / f"n{n}-l{k}.tsv", value_fmt="%.17g")
        write_manifest(net, tmp)


def format_triples(rows, cols, values, value_fmt):
    """Tab-separated 1-based ``row col value`` lines as bytes."""
    table = np.column_stack([rows + 1, cols + 1]).astype(np.int64)
    lines = [f"{r}\t{c}\t{value_fmt % v}\n" for (r, c), v in zip(table.tolist(), values.tolist())]
    return "".join(lines).encode()


def write_layer(W, path, value_fmt="%e"):
    """Write a layer in the official format (sorted by column then row; ``%e`` values as in
    the official files)."""
    C = sp.csc_array(W)
    C.sort_indices()
    cols = np.repeat(np.arange(C.shape[1]), np.diff(C.indptr))
    with atomic_write(path) as f:
        f.write(format_triples(C.indices, cols, C.data, value_fmt))


def write_images(Y, path, chunk=1 << 20):
    """Write images ``imageId pixelIndex value`` (``%g`` values); gzipped when ``path`` ends
    in ``.gz``; graphnn's binary CSR (``indptr``, ``indices``, ``data``, ``shape``, read at
    disk speed by :func:`read_images`) when it ends in ``.npz``. Text is written in blocks of
    about ``chunk`` pixels, so memory stays bounded whatever the count (60,000 images of
    65,536 pixels hold about 4e8); integer values are formatted by a compiled writer, others
    by Python's ``%g``."""
    C = sp.csr_array(Y)
    C.sort_indices()
    if str(path).endswith(".npz"):
        with atomic_write(path) as f:
            np.savez(f, indptr=C.indptr, indices=C.indices.astype(np.int32), data=C.data,
                     shape=np.array(C.shape, np.int64))  # fmt: skip
        return
    with atomic_write(path) as f:
        out = gzip.GzipFile(fileobj=f, mode="wb", mtime=0) if str(path).endswith(".gz") else f
        with out if out is not f else contextlib.nullcontext():
            lo = 0
            while lo < C.shape[0]:
                hi = max(lo + 1, int(np.searchsorted(C.indptr, C.indptr[lo] + chunk, "right")) - 1)
                hi = min(hi, C.shape[0])
                part = C[lo:hi]
                rows = np.repeat(np.arange(lo + 1, hi + 1), np.diff(part.indptr))
                v = part.data
                if ((v == np.round(v)) & (np.abs(v) < 1e6)).all():  # %g prints these as digits
                    out.write(int_triples(rows, part.indices + 1, v))
                else:
                    out.write(format_triples(rows - 1, part.indices, v, "%g"))
                lo = hi


def write_truth(ids, path):
    """Write 1-based category ids, one per line."""
    with atomic_write(path, "w") as f:
        f.writelines(f"{int(i)}\n" for i in ids)
