"""Graph Challenge rates on an NVIDIA GPU, for every official size that fits a time budget.

    python bench/challenge_gpu.py [--images 60000] [--budget 180] [--check-below 5e9]

For N in 1024, 4096, 16384, 65536 and L in 120, 480, 1920: a generated problem built like the
official one (layers regenerated from the seed on the host and streamed to the GPU one at a time;
digit images), run with ``--backend cupy``; prints edges/s by the official formula (inference
seconds only). Where the work (images x edges) is below --check-below, the categories are also
computed on the CPU (fused scipy kernel) and compared. A size is skipped once a smaller one of the
same N took longer than --budget seconds. Goal: 65536 x 1920 at 5.6e13 edges/s or more on one
H100, exact.
"""

import argparse
import sys
import time
from pathlib import Path

# This script's folder holds challenge.py: keep bench/ off the import path.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import numpy as np  # noqa: E402

from challenge.generate import digit_images, network_layers  # noqa: E402
from challenge.inference import infer  # noqa: E402
from challenge.io import official_bias  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=60000)
    ap.add_argument("--budget", type=float, default=180.0)
    ap.add_argument("--check-below", type=float, default=5e9)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for n in (1024, 4096, 16384, 65536):
        images = digit_images(args.images, n, seed=[args.seed, 0])
        for layers in (120, 480, 1920):
            t0 = time.perf_counter()
            r = infer(
                network_layers(n, layers, args.seed),
                images,
                official_bias(n),
                backend="cupy",
                n_layers=layers,
            )
            wall = time.perf_counter() - t0
            check = "unchecked"
            if args.images * r.edges < args.check_below:
                ref = infer(
                    network_layers(n, layers, args.seed), images, official_bias(n), backend="scipy"
                )
                check = "exact" if np.array_equal(ref.categories, r.categories) else "MISMATCH"
            print(
                f"N={n:>6} L={layers:>5}: {r.edges_per_second:10.3e} edges/s "
                f"(inference {r.seconds:8.3f} s, generation and upload {r.read_seconds:8.3f} s, "
                f"{r.categories.size} categories, {check})",
                flush=True,
            )
            if wall > args.budget:
                break


if __name__ == "__main__":
    main()
