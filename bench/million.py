"""Truly sparse training at a million hidden neurons: 784-300000-300000-300000-10, SET's
Erdos-Renyi topology with epsilon 20, Adam, float32, on this machine: one whole epoch.

    python bench/million.py [--hidden 300000] [--depth 3] [--epsilon 20] [--samples 60000]
                            [--batch 128]

Builds the network (reports the time and the stored weights), then trains one pass over
--samples inputs of 784 features (scikit-learn's digits stretched to 28 x 28, drawn with
replacement; this machine is offline, so not MNIST itself, but the same shape and count) and
prints the measured time of that pass (by default MNIST's 60,000 samples: a real epoch, not an
extrapolation; SET's truly sparse implementation reports 49 minutes per epoch for this network
on a 16 GB laptop, Liu et al. 2021), the loss before and after, and the process's peak
resident memory. A line of progress goes to stderr every 50 steps.

Measured 2026-12-06 (2 cores, AVX-512, a quiet hour, load 1.1): 658.3 s (11.0 min) for the
60,000 samples, peak 3.30 GiB (2026-12-05, earlier kernels: 804.6 s, peak 2.99 GiB).

Batch 128 measured fastest here, with the earlier kernels (2,048 samples: 128 17.3 min/epoch
pace, 64 18.2, 256 18.3, 512 20.5): the activations of a 300,000-wide layer are read from memory
whatever the batch, and smaller batches pay the per-step gather and Adam more often.
"""

import argparse
import resource
import sys
import time

import numpy as np


def inputs(samples, seed=0):
    """``samples`` 784-feature images: the 8 x 8 digits stretched to 28 x 28, tiled."""
    from scipy.ndimage import zoom

    from graphnn.datasets import builtin_digits

    images, labels = builtin_digits()
    big = np.stack([zoom(img, 3.5, order=1) for img in images]).reshape(len(images), -1)
    pick = np.random.default_rng(seed).integers(len(images), size=samples)
    return big[pick].astype(np.float32), labels[pick]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=300_000)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--epsilon", type=float, default=20.0)
    ap.add_argument("--samples", type=int, default=60_000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam's rate (1e-3 diverges here)")
    args = ap.parse_args()

    from graphnn.training import Adam, SparseMLP
    from topologies import generate

    sizes = [784] + [args.hidden] * args.depth + [10]
    t = time.perf_counter()
    net = generate("random", sizes, epsilon=args.epsilon, seed=0)
    model = SparseMLP(sizes, topology=net).build(0)
    built = time.perf_counter() - t
    weights = sum(layer.nnz for layer in model.layers_)
    print(f"{'-'.join(map(str, sizes))}, epsilon {args.epsilon:g}: {weights:,} weights "
          f"({', '.join(f'{layer.nnz:,}' for layer in model.layers_)}), built in {built:.1f} s",
          flush=True)  # fmt: skip
    X, y = inputs(args.samples)
    opt = Adam(args.lr)
    losses = []
    t = time.perf_counter()
    steps = -(-args.samples // args.batch)
    for s, lo in enumerate(range(0, args.samples, args.batch), 1):
        loss, grads, _ = model.loss_and_grads(X[lo : lo + args.batch], y[lo : lo + args.batch])
        opt.step(model.layers_, grads, args.lr)
        losses.append(float(loss))
        if s % 50 == 0 or s == steps:
            spent = time.perf_counter() - t
            left = spent / s * (steps - s)
            print(f"  step {s}/{steps}: {spent:.0f} s, about {left:.0f} s left, loss "
                  f"{np.mean(losses[-50:]):.3f}", file=sys.stderr, flush=True)  # fmt: skip
    sec = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    per_k = sec / args.samples * 1000
    print(f"trained on {args.samples:,} samples (batch {args.batch}) in {sec:.1f} s "
          f"({sec / 60:.1f} min, measured): {per_k:.2f} s per 1,000 samples; loss "
          f"{np.mean(losses[:5]):.3f} -> {np.mean(losses[-5:]):.3f}; peak memory {peak:.2f} "
          "GiB")  # fmt: skip


if __name__ == "__main__":
    main()
