"""Challenge problems built like the official ones, with their truth.

Layers are challenge-style random Kronecker RadiX-Net layers (radix 2 for the official sizes,
B = 16, weight 1/16, rows permuted after the first cycle; see ``topologies.kronecker``). Inputs
are digit images resized to sqrt(N) x sqrt(N) and thresholded, as MNIST is for the official
inputs: scikit-learn's bundled digits by default, MNIST IDX files when given.
"""

import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graphnn.datasets import builtin_digits, find_idx, read_idx
from graphnn.errors import FormatError, GraphnnError
from graphnn.io import atomic_folder, atomic_write, read_problem_manifest
from topologies import as_rng, positive_int
from topologies.kronecker import challenge_layers

from .inference import infer
from .io import official_bias, write_images, write_layer, write_truth

__all__ = [
    "Problem",
    "digit_images",
    "generate_problem",
    "write_problem",
    "read_problem",
    "problem_paths",
]


@dataclass
class Problem:
    """A generated problem; ``layers()`` regenerates the layers (a fresh iterator each call)."""

    n_neurons: int
    n_layers: int
    seed: int
    bias: float
    images: sp.csr_array
    truth: np.ndarray

    def layers(self):
        return network_layers(self.n_neurons, self.n_layers, self.seed)


def network_layers(n_neurons, n_layers, seed):
    """The layers of the generated network ``seed`` (a picklable, repeatable source)."""
    return challenge_layers(n_neurons, n_layers, seed=seed)


def layer_source(n_neurons, n_layers, seed):
    """A picklable zero-argument callable that yields the generated layers again."""
    return functools.partial(network_layers, n_neurons, n_layers, seed)


def _side(n_neurons):
    side = math.isqrt(n_neurons)
    if side * side != n_neurons:
        raise GraphnnError(
            f"generated images need --neurons to be a perfect square, got {n_neurons}"
        )
    return side


# Geometry of the default (offline) images, as fractions of the side, and the threshold range:
# chosen so that on the official 1024 x 120 network the images have the official statistics
# (about 102 pixels each, a wide spread of stroke weights, 1-6 % of images as categories;
# ``tests/test_challenge_generated.py`` checks them).
DIGIT_HEIGHT = (0.6, 0.8)
DIGIT_WIDTH = (0.36, 0.9)
DIGIT_THRESHOLD = (0.4, 0.85)


def digit_images(n_images, n_neurons, *, seed=None, mnist_dir=None, chunk=512):
    """``n_images`` binary images of sqrt(N) x sqrt(N) pixels as an (images x N) CSR of ones,
    laid out like the official inputs (column-major: pixel ``x * side + y``).

    Default: scikit-learn's bundled 8 x 8 digits drawn with replacement (seeded), each
    stretched by bilinear interpolation to a random height in ``DIGIT_HEIGHT`` and width in
    ``DIGIT_WIDTH`` of the side, shifted by up to 1/16 of the side, and thresholded at a random
    level in ``DIGIT_THRESHOLD`` (thin and bold strokes, as in MNIST handwriting). With
    ``mnist_dir``, MNIST training digits resized to the whole side and thresholded at 0.5.

    Cost: ``O(images * N)`` in vectorised chunks of ``chunk`` images (60,000 images of
    N = 65,536 pixels in about half a minute on 2 cores).
    """
    n_images = positive_int(n_images, "images")
    side = _side(n_neurons)
    rng = as_rng(seed)
    if mnist_dir is None:
        source, _ = builtin_digits()
    else:
        source = read_idx(find_idx(mnist_dir, "train-images-idx3-ubyte")) / 255.0
    source = source.astype(np.float32)
    picks = rng.integers(len(source), size=n_images)
    if mnist_dir is None:
        heights = rng.uniform(*DIGIT_HEIGHT, n_images) * side
        widths = rng.uniform(*DIGIT_WIDTH, n_images) * side
        thresholds = rng.uniform(*DIGIT_THRESHOLD, n_images)
        shift = max(side // 16, 1)
        shifts = rng.integers(-shift, shift + 1, size=(n_images, 2))
    else:
        heights = widths = np.full(n_images, float(side))
        thresholds = np.full(n_images, 0.5)
        shifts = np.zeros((n_images, 2), np.int64)
    tops = (side - heights) / 2 + shifts[:, 0]
    lefts = (side - widths) / 2 + shifts[:, 1]
    indices, counts = [], [np.zeros(1, np.int64)]
    for lo in range(0, n_images, chunk):
        sl = slice(lo, lo + chunk)
        Ry = _resampler(tops[sl], heights[sl], side, source.shape[1])
        Rx = _resampler(lefts[sl], widths[sl], side, source.shape[2])
        # (images, x, y): the transposed image, so that row-major order is column-major
        img = Rx @ source[picks[sl]].transpose(0, 2, 1) @ Ry.transpose(0, 2, 1)
        on = img.reshape(img.shape[0], -1) > thresholds[sl, None]
        indices.append(np.nonzero(on)[1].astype(np.int32))  # sorted within each row
        counts.append(on.sum(axis=1))
    indices = np.concatenate(indices)
    # built as CSR directly: no row array, no COO sort (60,000 images at N = 65,536 hold
    # about 4e8 pixels)
    return sp.csr_array(
        (np.ones(indices.size, np.float32), indices, np.cumsum(np.concatenate(counts))),
        shape=(n_images, n_neurons),
    )


def _resampler(starts, lengths, side, size):
    """Per image, the (side x size) bilinear interpolation matrix that stretches ``size``
    source pixels over output pixels ``[start, start + length)`` (zero elsewhere)."""
    out = np.arange(side, dtype=np.float32)[None, :]
    u = (out - starts[:, None] + 0.5) * (size / lengths[:, None]) - 0.5
    inside = (out >= np.floor(starts[:, None])) & (out < starts[:, None] + lengths[:, None])
    u = np.clip(u, 0, size - 1)
    low = np.minimum(np.floor(u).astype(np.int64), size - 2)
    frac = (u - low).astype(np.float32)
    cols = np.arange(size)[None, None, :]
    R = (cols == low[..., None]) * (1 - frac)[..., None] + (cols == low[..., None] + 1) * (
        frac[..., None]
    )
    return (R * inside[..., None]).astype(np.float32)


def generate_problem(
    n_neurons,
    n_layers,
    n_images,
    *,
    seed=0,
    bias=None,
    mnist_dir=None,
    backend="numba",
    progress=False,
    dtype=None,
    memory_limit=None,
    threads=None,
):
    """A generated problem with its truth (computed by exact inference, with ``dtype``,
    ``memory_limit`` and ``threads`` as :func:`~challenge.inference.infer` takes them; the
    memory limit bounds the engine, the images themselves take about 8 bytes a pixel)."""
    n_layers = positive_int(n_layers, "nlayers")
    bias = official_bias(n_neurons) if bias is None else float(bias)
    images = digit_images(n_images, n_neurons, seed=[seed, 0], mnist_dir=mnist_dir)
    layers = layer_source(n_neurons, n_layers, seed)
    truth = infer(
        layers, images, bias, backend=backend, progress=progress, n_layers=n_layers,
        dtype=dtype, memory_limit=memory_limit, threads=threads,
    ).categories  # fmt: skip
    return Problem(n_neurons, n_layers, seed, bias, images, truth)


IMAGE_FORMATS = ("tsv", "npz")


def problem_paths(directory, n_neurons, n_layers, images_format="tsv"):
    """Where a problem's files go, in the official layout (the images as ``.npz`` when
    ``images_format`` says so: read at disk speed, 4.7 GB for 60,000 images of 65,536)."""
    d = Path(directory)
    return {
        "layers": d / f"neuron{n_neurons}",
        "images": d / f"sparse-images-{n_neurons}.{images_format}",
        "truth": d / f"neuron{n_neurons}-l{n_layers}-categories.tsv",
        "manifest": d / "problem.json",
    }


_PROBLEM_FILE = re.compile(
    r"^(neuron\d+|sparse-images-\d+\.(tsv|npz)|neuron\d+-l\d+-categories\.tsv|problem\.json)$"
)


def write_problem(problem, directory, progress=False, layers=True, images_format="tsv"):
    """Write ``problem`` in the official formats (layers, images, truth) plus ``problem.json``,
    as a whole: into a temporary folder that takes the place of ``directory`` at the end (an
    earlier problem there stays intact until then; a folder holding other files is refused).

    ``layers=False`` writes no layer files: a reader regenerates them from the manifest's seed
    (``challenge run --problem`` does).
    """
    from tqdm import tqdm

    with atomic_folder(directory, lambda p: _PROBLEM_FILE.match(p.name)) as tmp:
        if images_format not in IMAGE_FORMATS:
            raise GraphnnError(
                f"images_format must be one of {IMAGE_FORMATS}, got {images_format!r}"
            )
        paths = problem_paths(tmp, problem.n_neurons, problem.n_layers, images_format)
        written = [paths["images"], paths["truth"]]
        if layers:
            paths["layers"].mkdir()
            bar = tqdm(
                problem.layers(),
                total=problem.n_layers,
                desc="writing layers",
                unit="layer",
                disable=not progress,
                leave=False,
            )
            for k, W in enumerate(bar, start=1):
                write_layer(W, paths["layers"] / f"n{problem.n_neurons}-l{k}.tsv")
                written.append(paths["layers"] / f"n{problem.n_neurons}-l{k}.tsv")
        write_images(problem.images, paths["images"])
        write_truth(problem.truth, paths["truth"])
        manifest = {
            "neurons": problem.n_neurons,
            "layers": problem.n_layers,
            "images": problem.images.shape[0],
            "seed": problem.seed,
            "bias": problem.bias,
            "categories": int(problem.truth.size),
            "layer_files": bool(layers),
            "images_format": images_format,
            "generator": "graphnn challenge generate",
            "sha256": {str(p.relative_to(tmp)): _sha256(p) for p in written},
        }
        manifest["settings_sha256"] = _settings_digest(manifest)
        with atomic_write(paths["manifest"], "w") as f:
            json.dump(manifest, f, indent=2)
    return problem_paths(directory, problem.n_neurons, problem.n_layers, images_format)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


_SETTINGS = ("neurons", "layers", "images", "seed", "bias", "layer_files")


def _settings_digest(manifest):
    """A digest of the settings that define the problem (an edited seed is another network)."""
    settings = {key: manifest.get(key) for key in _SETTINGS}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def read_problem(directory):
    """The manifest of a problem written by :func:`write_problem`, after checking that every
    file it lists is there and unchanged (a mixed, partial or damaged problem is refused)."""
    directory = Path(directory)
    path = directory / "problem.json"
    if not path.exists():
        raise GraphnnError(f"{directory}: no problem.json (not a 'challenge generate' folder)")
    manifest = read_problem_manifest(path)
    digests = manifest["sha256"]
    recorded = manifest.get("settings_sha256")  # absent in problems written before it existed
    if recorded is not None and recorded != _settings_digest(manifest):
        raise FormatError(
            f"{path}: its settings ({', '.join(_SETTINGS)}) were edited after generation: "
            "generate the problem again instead"
        )
    for name, digest in digests.items():
        f = directory / name
        if not f.is_file():
            raise FormatError(f"{f}: missing from the problem (listed in {path.name})")
        if _sha256(f) != digest:
            raise FormatError(f"{f}: changed since it was generated (its digest differs)")
    layers = problem_paths(directory, manifest["neurons"], manifest["layers"])["layers"]
    if layers.is_dir():  # its layer count is the manifest's: no file beyond it is read
        stray = [
            p for p in sorted(layers.iterdir()) if str(p.relative_to(directory)) not in digests
        ]
        if stray:
            raise FormatError(
                f"{stray[0]}: not part of the problem ({path.name} lists its "
                f"{manifest['layers'] if manifest['layer_files'] else 'no'} layer files): "
                "remove it or generate the problem again"
            )
    return manifest
