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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.ndimage
import scipy.sparse as sp

from graphnn.datasets import builtin_digits, find_idx, read_idx
from graphnn.errors import FormatError, GraphnnError
from graphnn.io import atomic_write
from topologies._validate import as_rng, positive_int
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


def digit_images(n_images, n_neurons, *, seed=None, mnist_dir=None):
    """``n_images`` binary images of sqrt(N) x sqrt(N) pixels as an (images x N) CSR of ones.

    Digits are drawn with replacement (seeded), shifted by up to 1/8 of the side, resized with
    bilinear interpolation and thresholded at 0.8 of full intensity (about 12% of pixels on
    for N = 1024, close to the official inputs).
    """
    n_images = positive_int(n_images, "images")
    side = _side(n_neurons)
    rng = as_rng(seed)
    if mnist_dir is None:
        source, _ = builtin_digits()
    else:
        source = read_idx(find_idx(mnist_dir, "train-images-idx3-ubyte")) / 255.0
    picks = rng.integers(len(source), size=n_images)
    max_shift = max(side // 8, 1)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n_images, 2))
    zoom = side / source.shape[1]
    # each distinct digit is resized and thresholded once; an image is then its digit's on
    # pixels translated by the integer shift (what shifting with order 0 does), clipped
    on_pixels = {}
    for pick in np.unique(picks):
        img = scipy.ndimage.zoom(source[pick], zoom, order=1)[:side, :side]
        y, x = np.nonzero(img > 0.8)
        on_pixels[pick] = (y, x, img.shape)
    cols, counts = [], np.zeros(n_images + 1, np.int64)
    for i, (pick, (dy, dx)) in enumerate(zip(picks, shifts)):
        y, x, (h, w) = on_pixels[pick]
        y, x = y + dy, x + dx
        keep = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        cols.append((y[keep] * w + x[keep]).astype(np.int32))  # row-major: sorted
        counts[i + 1] = cols[-1].size
    indices = np.concatenate(cols) if cols else np.empty(0, np.int32)
    # built as CSR directly: no row array, no COO sort (60,000 images at N = 65,536 hold
    # about 4e8 pixels)
    return sp.csr_array(
        (np.ones(indices.size), indices, np.cumsum(counts)), shape=(n_images, n_neurons)
    )


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
):
    """A generated problem with its truth (computed by exact inference)."""
    n_layers = positive_int(n_layers, "nlayers")
    bias = official_bias(n_neurons) if bias is None else float(bias)
    images = digit_images(n_images, n_neurons, seed=[seed, 0], mnist_dir=mnist_dir)
    layers = network_layers(n_neurons, n_layers, seed)
    truth = infer(
        layers, images, bias, backend=backend, progress=progress, n_layers=n_layers
    ).categories
    return Problem(n_neurons, n_layers, seed, bias, images, truth)


def problem_paths(directory, n_neurons, n_layers):
    """Where a problem's files go, in the official layout."""
    d = Path(directory)
    return {
        "layers": d / f"neuron{n_neurons}",
        "images": d / f"sparse-images-{n_neurons}.tsv",
        "truth": d / f"neuron{n_neurons}-l{n_layers}-categories.tsv",
        "manifest": d / "problem.json",
    }


def write_problem(problem, directory, progress=False):
    """Write ``problem`` in the official formats (layers, images, truth) plus ``problem.json``."""
    from tqdm import tqdm

    paths = problem_paths(directory, problem.n_neurons, problem.n_layers)
    paths["layers"].mkdir(parents=True, exist_ok=True)
    layers = tqdm(
        problem.layers(),
        total=problem.n_layers,
        desc="writing layers",
        unit="layer",
        disable=not progress,
        leave=False,
    )
    for k, W in enumerate(layers, start=1):
        write_layer(W, paths["layers"] / f"n{problem.n_neurons}-l{k}.tsv")
    write_images(problem.images, paths["images"])
    write_truth(problem.truth, paths["truth"])
    root = Path(directory)
    written = [paths["images"], paths["truth"]]
    written += [
        paths["layers"] / f"n{problem.n_neurons}-l{k}.tsv" for k in range(1, problem.n_layers + 1)
    ]
    manifest = {
        "neurons": problem.n_neurons,
        "layers": problem.n_layers,
        "images": problem.images.shape[0],
        "seed": problem.seed,
        "bias": problem.bias,
        "categories": int(problem.truth.size),
        "generator": "graphnn challenge generate",
        "sha256": {str(p.relative_to(root)): _sha256(p) for p in written},
    }
    with atomic_write(paths["manifest"], "w") as f:
        json.dump(manifest, f, indent=2)
    return paths


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_problem(directory):
    """The manifest of a problem written by :func:`write_problem`, after checking that every
    file it lists is there and unchanged (a mixed, partial or damaged problem is refused)."""
    directory = Path(directory)
    path = directory / "problem.json"
    if not path.exists():
        raise GraphnnError(f"{directory}: no problem.json (not a 'challenge generate' folder)")
    try:
        manifest = json.loads(path.read_text())
        digests = manifest["sha256"]
        for key in ("neurons", "layers", "images", "seed", "bias"):
            manifest[key]  # noqa: B018 (present)
    except (ValueError, KeyError, TypeError) as e:
        raise FormatError(f"{path}: bad problem manifest ({type(e).__name__}: {e})") from None
    for name, digest in digests.items():
        f = directory / name
        if not f.is_file():
            raise FormatError(f"{f}: missing from the problem (listed in {path.name})")
        if _sha256(f) != digest:
            raise FormatError(f"{f}: changed since it was generated (its digest differs)")
    return manifest
