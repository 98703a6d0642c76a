"""graphnn challenge inference against a naive scipy loop, side by side in one process.

    python bench/challenge.py [--copies 10] [--repeat 3] [--backends numba,graphblas]

The official 1024-neuron, 120-layer network on the 1,200 official images replicated --copies
times (12,000 rows by default). The naive loop is the rule written directly in scipy:
``Z = Y @ W``; bias on the nonzeros; clip to [0, 32]; ``eliminate_zeros``. Prints each rate
(official formula: images * edges / inference seconds, best of --repeat), the ratio to naive,
and whether the categories are identical. Goal: graphnn at least 5x naive on 2 cores.
"""

import argparse
import sys
import time
from pathlib import Path

# This script shares its name with the challenge package: keep bench/ off the import path.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from challenge.inference import infer  # noqa: E402
from challenge.io import read_images, read_layers, read_truth  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "graphchallenge"
BIAS, YMAX = -0.3, 32.0


def naive(layers, Y):
    for W in layers:
        Z = Y @ W
        Z.data[Z.data != 0] += BIAS
        np.clip(Z.data, 0, YMAX, out=Z.data)
        Z.eliminate_zeros()
        Y = Z
    return np.flatnonzero(Y.sum(axis=1)) + 1


def best(fn, repeat):
    out, times = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default="numba,graphblas")
    args = ap.parse_args()
    if not (DATA / "neuron1024.tar.gz").exists():
        sys.exit(f"bench/challenge.py needs the official files in {DATA}")
    layers = read_layers(DATA / "neuron1024.tar.gz", 1024, 120)
    Y1 = read_images(DATA / "sparse-images-1024_subset.tsv", 1024)
    Y = sp.csr_array(sp.vstack([Y1] * args.copies))
    truth = read_truth(DATA / "neuron1024-l120-categories.tsv")
    truth = np.concatenate([truth[truth <= 1200] + 1200 * c for c in range(args.copies)])
    edges = sum(W.nnz for W in layers)
    rate = lambda sec: Y.shape[0] * edges / sec  # noqa: E731

    ref, t_naive = best(lambda: naive(layers, Y), args.repeat)
    print(
        f"{Y.shape[0]:,} images x 1024 neurons x 120 layers, {edges:,} edges; best of {args.repeat}"
    )
    print(
        f"  naive scipy      {t_naive:8.3f} s  {rate(t_naive):10.3e} edges/s  1.00x  "
        f"categories {'== truth' if np.array_equal(ref, truth) else '!= truth'}"
    )
    for backend in args.backends.split(","):
        runs = [infer(layers, Y, BIAS, backend=backend) for _ in range(args.repeat)]
        sec = min(r.seconds for r in runs)
        same = all(np.array_equal(r.categories, ref) for r in runs)
        print(
            f"  graphnn {backend:<9}{sec:8.3f} s  {rate(sec):10.3e} edges/s "
            f"{t_naive / sec:5.2f}x  categories {'identical' if same else 'DIFFERENT'}"
        )


if __name__ == "__main__":
    main()
