"""The official 2019 Sparse DNN Graph Challenge files, fetched and checked.

The files are public (layers archive, images, truth per size); no checksums are published, so
a download records each file's size and SHA-256 in ``download.json`` beside it, and every later
use of the file is checked against that record (:func:`verify`). An interrupted download
resumes from its ``.part`` file with an HTTP range request.
"""

import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from graphnn.errors import FormatError, GraphnnError
from graphnn.io import atomic_write

from .io import NEURON_COUNTS

__all__ = ["OFFICIAL_URL", "MANIFEST", "official_files", "download", "verify"]

OFFICIAL_URL = "https://graphchallenge.s3.amazonaws.com/synthetic/sparsechallenge_2019"
MANIFEST = "download.json"
LAYER_COUNTS = (120, 480, 1920)
_BLOCK = 1 << 20


def official_files(n_neurons, n_layers=120, *, layers=True, images=True, truth=True,
                   base_url=OFFICIAL_URL):  # fmt: skip
    """``{file name: url}`` of the official files for ``n_neurons`` (and ``n_layers``, whose
    truth differs): the layers archive, the images and the truth, as chosen."""
    if n_neurons not in NEURON_COUNTS:
        raise GraphnnError(
            f"neurons must be one of {', '.join(map(str, NEURON_COUNTS))} (the official sizes), "
            f"got {n_neurons}"
        )
    if n_layers not in LAYER_COUNTS:
        raise GraphnnError(
            f"nlayers must be one of {', '.join(map(str, LAYER_COUNTS))} (the official "
            f"depths), got {n_layers}"
        )
    base = base_url.rstrip("/")
    files = {}
    if layers:
        files[f"neuron{n_neurons}.tar.gz"] = f"{base}/dnn/neuron{n_neurons}.tar.gz"
    if images:
        files[f"sparse-images-{n_neurons}.tsv.gz"] = (
            f"{base}/mnist/sparse-images-{n_neurons}.tsv.gz"
        )
    if truth:
        name = f"neuron{n_neurons}-l{n_layers}-categories.tsv"
        files[name] = f"{base}/dnn/{name}"
    return files


def _read_manifest(folder):
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        m = json.loads(path.read_text())
        for name, entry in m.items():
            if not (isinstance(entry["size"], int) and isinstance(entry["sha256"], str)):
                raise TypeError(f"{name}: size or sha256 of the wrong type")
        return m
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise FormatError(f"{path}: bad download manifest ({type(e).__name__}: {e})") from None


def _digest(path, into=None):
    digest = into or hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest


def verify(path):
    """Check ``path`` against the ``download.json`` beside it, if it lists the file: same size
    and SHA-256 as when it was downloaded (a file changed or cut since is an error naming
    it). Files no download recorded pass unchecked."""
    path = Path(path)
    entry = _read_manifest(path.parent).get(path.name)
    if entry is None or not path.is_file():
        return
    size = path.stat().st_size
    if size != entry["size"]:
        raise FormatError(
            f"{path}: {size:,} bytes, but {entry['size']:,} were downloaded (see {MANIFEST}): "
            "cut or changed since; download it again"
        )
    if _digest(path).hexdigest() != entry["sha256"]:
        raise FormatError(
            f"{path}: its SHA-256 differs from the download's (see {MANIFEST}): changed since; "
            "download it again"
        )


def _fetch(url, target, progress, timeout):
    """Download ``url`` into ``target``, resuming its ``.part`` file; returns the SHA-256."""
    from tqdm import tqdm

    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is already whole: nothing left to send
            response = None
        else:
            raise GraphnnError(f"{url}: the server answered {e.code} {e.reason}") from None
    except (OSError, ValueError) as e:
        raise GraphnnError(f"{url}: cannot download ({e}); offline?") from None
    digest = hashlib.sha256()
    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0  # the server sends the whole file: start the part again
            else:
                _digest(part, digest)
            length = int(response.headers.get("Content-Length") or 0)
            with open(part, "ab" if resumed else "wb") as out, tqdm(
                total=have + length or None, initial=have, desc=target.name, unit="B",
                unit_scale=True, leave=False, disable=not progress,
            ) as bar:  # fmt: skip
                try:
                    for block in iter(lambda: response.read(_BLOCK), b""):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
                except OSError as e:
                    raise GraphnnError(
                        f"{url}: the download broke off ({e}); run again to resume it"
                    ) from None
            if length and part.stat().st_size != have + length:
                raise GraphnnError(f"{url}: the download broke off; run again to resume it")
    else:
        _digest(part, digest)
    os.replace(part, target)
    return digest.hexdigest()


def download(files, folder, *, progress=False, timeout=30.0):
    """Fetch ``files`` (``{name: url}``, see :func:`official_files`) into ``folder``: a file
    already there and matching its record is kept (checked, not fetched again); a partial one
    is resumed; each finished file's size and SHA-256 go into ``download.json``. Returns
    ``{name: "kept" | "downloaded"}``. A folder this call made is removed again if a failure
    leaves it empty (nothing to resume)."""
    folder = Path(folder)
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return _download(files, folder, progress, timeout)
    except BaseException:
        if made and not any(folder.iterdir()):
            folder.rmdir()
        raise


def _download(files, folder, progress, timeout):
    manifest = _read_manifest(folder)
    done = {}
    for name, url in files.items():
        target = folder / name
        if target.exists() and name in manifest:
            verify(target)
            done[name] = "kept"
            continue
        if target.exists():
            raise GraphnnError(
                f"{target} exists but no download of it is recorded in {MANIFEST}: move it "
                "away, or give another --out"
            )
        sha = _fetch(url, target, progress, timeout)
        manifest[name] = {"url": url, "size": target.stat().st_size, "sha256": sha}
        with atomic_write(folder / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=2)
        done[name] = "downloaded"
    return done
