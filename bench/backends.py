"""Time each backend operation against dense numpy, side by side in one process.

    python bench/backends.py [--dtype float32|float64] [--repeat 3]

Rows: a dense batch (512 x 4096) times a sparse 4096 x 4096 weight at densities 0.1 and 0.03;
the masked product giving the gradient X^T dZ only at that weight's edges; a sparse 12,000 x 1,024
activation (the 1,200 official challenge images replicated 10 times, when ../shared is present)
times a 1,024 x 1,024 weight with 32 entries per column (official layer 1). Besides the backends,
the table shows the kernels they were chosen over (SuiteSparse mxm, scipy's own product), so the
choice is visible. Each cell is the best of --repeat runs; the ratio is to the fastest in its row.
"""

import argparse
import io
import operator
import tarfile
import time
from pathlib import Path

import graphblas as gb
import numpy as np
import scipy.sparse as sp
from graphblas import semiring

from graphnn import available_backends, get_backend

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "graphchallenge"


def best_of(repeat, fn, *args, warmup=True):
    """Best wall time of ``fn(*args)`` over ``repeat`` runs."""
    if warmup:
        fn(*args)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return min(times)


def gb_mxm(Xg, Wg):
    return semiring.plus_times(Xg @ Wg).new()


def dense_gather(A, B, idx):
    return (A @ B)[idx]


def gb_masked(A, BT, mask):
    """``C(M.S) << plus_times(A @ B)`` with B given transposed: SuiteSparse's dot-product form
    (a saxpy form with dense operands takes over 20 s here)."""
    C = gb.Matrix(mask.dtype, mask.nrows, mask.ncols)
    C(mask.S) << semiring.plus_times(A @ BT.T)
    return C


def challenge_operands(rng, dtype):
    if (DATA / "neuron1024.tar.gz").exists():
        r, c, _ = np.loadtxt(DATA / "sparse-images-1024_subset.tsv", unpack=True, dtype=np.int64)
        Y1 = sp.csr_array((np.ones(r.size, dtype), (r - 1, c - 1)), shape=(1200, 1024))
        Y = sp.csr_array(sp.vstack([Y1] * 10))
        with tarfile.open(DATA / "neuron1024.tar.gz") as tar:
            raw = tar.extractfile("neuron1024/n1024-l1.tsv").read()
        r, c, v = np.loadtxt(io.BytesIO(raw), unpack=True)
        ij = (r.astype(int) - 1, c.astype(int) - 1)
        W = sp.csr_array((v.astype(dtype), ij), shape=(1024, 1024))
        return Y, W, "official images x10, official layer 1"
    Y = sp.random_array((12000, 1024), density=0.2, format="csr", dtype=dtype, rng=rng)
    Y.data[:] = 1
    rows = np.concatenate([rng.choice(1024, 32, replace=False) for _ in range(1024)])
    W = sp.csr_array((np.full(rows.size, 1 / 16, dtype), (rows, np.repeat(np.arange(1024), 32))))
    return Y, W, "random (../shared absent)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    names = available_backends()
    rows = []  # (operation, {column: seconds})

    for density in (0.1, 0.03):
        W = sp.random_array((4096, 4096), density=density, format="csr", dtype=dtype, rng=rng)
        X = rng.standard_normal((512, 4096)).astype(dtype)
        dZ = rng.standard_normal((512, 4096)).astype(dtype)
        Wd = W.toarray()
        Wg = gb.io.from_scipy_sparse(W)
        row = {"numpy dense": best_of(args.repeat, np.matmul, X, Wd)}
        for name in names:
            be = get_backend(name)
            row[name] = best_of(args.repeat, be.spmm, be.asarray(X), be.matrix(W))
        row["SuiteSparse mxm"] = best_of(args.repeat, gb_mxm, gb.Matrix.from_dense(X), Wg)
        row["scipy X @ W"] = best_of(args.repeat, operator.matmul, X, W)
        rows.append((f"dense 512x4096 @ sparse 4096x4096, density {density}", row))

        XT = np.ascontiguousarray(X.T)
        row = {"numpy dense": best_of(args.repeat, dense_gather, XT, dZ, W.nonzero())}
        for name in names:
            be = get_backend(name)
            Ab, Bb, Mb = be.asarray(XT), be.asarray(dZ), be.matrix(W)
            row[name] = best_of(args.repeat, be.masked_product, Ab, Bb, Mb)
        Ag, BTg = gb.Matrix.from_dense(XT), gb.Matrix.from_dense(np.ascontiguousarray(dZ.T))
        row["SuiteSparse mxm"] = best_of(args.repeat, gb_masked, Ag, BTg, Wg)
        rows.append((f"masked X^T dZ at the edges, density {density}", row))

    Y, W, source = challenge_operands(rng, np.float64)
    row = {"numpy dense": best_of(args.repeat, np.matmul, Y.toarray(), W.toarray())}
    for name in names:
        be = get_backend(name)
        row[name] = best_of(args.repeat, be.spgemm, be.matrix(Y), be.matrix(W))
    rows.append((f"sparse 12000x1024 @ 1024x1024 (32/col), {source}", row))

    print(f"dtype {dtype} (the sparse x sparse row is float64); best of {args.repeat}, seconds")
    for op, row in rows:
        fastest = min(row.values())
        print(f"\n{op}")
        for col, sec in row.items():
            print(f"  {col:<18} {sec:9.4f} s   {sec / fastest:7.2f}x the fastest")


if __name__ == "__main__":
    main()
