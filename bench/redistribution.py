"""Cost of one redistribution step against one training epoch, 784-4096-4096-10 at density 0.1.

    python bench/redistribution.py [--samples 60000] [--batch-size 512] [--backends numba,graphblas]

An epoch is --samples random MNIST-shaped samples (60,000 by default) in batches of
--batch-size, forward, backward and Adam (numba); then one step of each of random (SET),
gradient (RigL) and gradient-global, with alpha 0.5, with the structural updates (masked
selection, top-k in the complement, union with zeros) on each of --backends, from the same
weights. Prints the seconds and the ratio to the epoch. Goal: each at most 10% of the epoch
(the paper's implementation saw +57%).
"""

import argparse
import time

import numpy as np

from graphnn.training import Adam, Dataset, SparseMLP
from graphnn.training.redistribution import Redistributor

SIZES = [784, 4096, 4096, 10]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--backends", default="numba,graphblas")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.random((args.samples, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, 10, args.samples)
    data = Dataset("synthetic", X, y, X[:0], y[:0], X[:0], y[:0], 10)
    model = SparseMLP(SIZES, density=args.density).build(0)
    opt = Adam(1e-3)
    model.loss_and_grads(X[:8], y[:8])  # compile the kernels outside the timing
    t0 = time.perf_counter()
    for start in range(0, args.samples, args.batch_size):
        _, grads, _ = model.loss_and_grads(
            X[start : start + args.batch_size], y[start : start + args.batch_size]
        )
        opt.step(model.layers_, grads, 1e-3)
    epoch = time.perf_counter() - t0
    print(
        f"{'-'.join(map(str, SIZES))} at density {args.density}: "
        f"{sum(L.nnz for L in model.layers_):,} weights"
    )
    print(f"  one epoch ({args.samples:,} samples, batch {args.batch_size}): {epoch:8.2f} s")
    state, opt_state = model.state_arrays(), opt.state_arrays()
    for backend in args.backends.split(","):
        for algorithm in ("random", "gradient", "gradient-global"):
            model.load_state_arrays(state).backend = backend  # the same weights each time
            opt.load_state_arrays(opt_state)
            red = Redistributor(algorithm, alpha=0.5)
            t = time.perf_counter()
            rec = red.step(model, opt, data, 1, 100, np.random.default_rng(1))
            sec = time.perf_counter() - t
            print(
                f"  {backend:<9} {algorithm:<16} step {sec:8.3f} s  = {100 * sec / epoch:5.2f}% "
                f"of the epoch ({sum(rec['added']):,} weights moved)"
            )


if __name__ == "__main__":
    main()
