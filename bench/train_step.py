"""Training steps and epochs of 784-4096-4096-10 (batch 512, Adam): graphnn's sparse layers
against PyTorch dense and PyTorch with torch.sparse CSR weights, side by side in one process,
and against what the machine's dense GEMM does on the same shapes.

    python bench/train_step.py [--repeat 5] [--densities 0.1,0.03,0.01] [--dtype float32]
                               [--backends numba,graphblas] [--busy] [--crossover]
    python bench/train_step.py --device gpu      # graphnn on CuPy against PyTorch on CUDA

Every model is built first; then --repeat rounds each time one epoch (16 steps over 8,192
samples) of every model in turn, so a disturbance on this shared machine hits all of them
alike; the medians are printed with the ratio to PyTorch dense. ``torch.sparse`` is the
sparse layer a PyTorch user has today: ``torch.sparse.mm`` with the transposed CSR weight
forward and for the input gradient, ``torch.sparse.sampled_addmm`` for the weight gradient at
the structure, Adam on the stored values (the same structure and arithmetic as graphnn).
``graphnn.torch`` is graphnn's structure as ``graphnn.torch.SparseLinear`` modules in a plain
PyTorch loop (PyTorch's ReLU, loss and Adam; goal: 2.5x / 5x ``torch`` at 0.1 / 0.03).
``gemm`` is the machine's limit: the three dense products of every layer of an epoch (forward,
input gradient, weight gradient) as bare ``torch.mm`` calls, timed in the same rounds. Each
model's rate is the multiply-adds of its three products (a sparse layer's at its edges, no
input gradient for the first layer) per second of its whole epoch, and its share of ``gemm``'s.
The header names the CPU, its widest vector ISA and its L2.
Peak memory: each model built and stepped in a fresh child process (Linux's resident
high-water mark, reset before the model is built, minus the resident memory at that point).
--busy repeats graphnn and PyTorch dense beside one spinning process; --crossover times one
step of graphnn against dense at growing densities (where dense BLAS wins on this machine).

Goals (issue): on any x86 CPU, quiet, median of 3: graphnn's rate at density 0.1 at least 30%
of gemm's, at 0.01 at least 15%; epochs 3x, 8x and 15x faster than PyTorch dense at 0.1, 0.03
and 0.01, at least 1.5x faster than torch.sparse at each; beside a busy process at most 1.5x
slower than quiet.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

SIZES = [784, 4096, 4096, 10]
BATCH = 512
SAMPLES = 8192


def _status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak():
    """Start a new peak: Linux resets the resident high-water mark on writing 5 here."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def data(dtype):
    rng = np.random.default_rng(0)
    X = rng.random((SAMPLES, SIZES[0]), dtype=np.float32).astype(dtype)
    return X, rng.integers(0, SIZES[-1], SAMPLES)


def graphnn_epoch(density, dtype, backend="numba"):
    from graphnn.training import Adam, SparseMLP

    model = SparseMLP(SIZES, density=density, dtype=dtype, backend=backend).build(0)
    opt = Adam(1e-3)
    X, y = data(dtype)

    def epoch(steps=SAMPLES // BATCH):
        for s in range(steps):
            sl = slice(s * BATCH, (s + 1) * BATCH)
            _, grads, _ = model.loss_and_grads(X[sl], y[sl])
            opt.step(model.layers_, grads, 1e-3)
        if backend == "cupy":  # wait for the GPU: time the work, not its launch
            import cupy

            cupy.cuda.Device().synchronize()

    return epoch


def torch_epoch(dtype, device="cpu"):
    import torch

    torch.manual_seed(0)
    layers = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(getattr(torch, dtype)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    X, y = data(dtype)
    X, y = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch(steps=SAMPLES // BATCH):
        for s in range(steps):
            sl = slice(s * BATCH, (s + 1) * BATCH)
            opt.zero_grad()
            loss_fn(model(X[sl]), y[sl]).backward()
            opt.step()
        if device != "cpu":
            torch.cuda.synchronize()

    return epoch


def graphnn_torch_epoch(density, dtype):
    """graphnn's sparse layers as ``graphnn.torch.SparseLinear`` modules in a plain PyTorch loop
    (the same structure as graphnn's model, PyTorch's ReLU, loss and Adam)."""
    import torch

    from graphnn.torch import to_torch
    from graphnn.training import SparseMLP

    net = SparseMLP(SIZES, density=density, dtype=dtype).build(0).to_network()
    model = to_torch(net)[:-1]  # logits: CrossEntropyLoss applies the softmax
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    X, y = data(dtype)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch(steps=SAMPLES // BATCH):
        for s in range(steps):
            sl = slice(s * BATCH, (s + 1) * BATCH)
            opt.zero_grad()
            loss_fn(model(X[sl]), y[sl]).backward()
            opt.step()

    return epoch


def torch_sparse_epoch(density, dtype):
    """The same sparse structure as graphnn's, trained with torch.sparse CSR products."""
    import warnings

    import torch

    from graphnn.training import SparseMLP

    warnings.filterwarnings("ignore", message=".*(beta|invariant).*")
    tdtype = getattr(torch, dtype)
    built = SparseMLP(SIZES, density=density, dtype=dtype).build(0)
    params = []
    for layer in built.layers_:
        W = layer.to_scipy()
        pattern = torch.sparse_csr_tensor(
            torch.from_numpy(W.indptr.astype(np.int64)),
            torch.from_numpy(W.indices.astype(np.int64)),
            torch.from_numpy(W.data.astype(dtype)),
            size=W.shape,
        )
        to_csc = torch.from_numpy(layer.to_csc)
        WT = W.T.tocsr()
        WT.sort_indices()
        params.append(
            {
                "W": pattern,  # n_in x n_out, values in CSR order (the parameter)
                "WT_ptr": torch.from_numpy(WT.indptr.astype(np.int64)),
                "WT_idx": torch.from_numpy(WT.indices.astype(np.int64)),
                "to_csc": to_csc,
                "b": torch.from_numpy(np.asarray(layer.backend.asnumpy(layer.bias))).to(tdtype),
                "state": [torch.zeros(W.nnz, dtype=tdtype), torch.zeros(W.nnz, dtype=tdtype)],
                "bstate": [torch.zeros(W.shape[1], dtype=tdtype)] * 2,
            }
        )
    X, y = data(dtype)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    t = [0]

    def adam(p, g, st, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        m, v = st
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        step = lr * (1 - b2 ** t[0]) ** 0.5 / (1 - b1 ** t[0])
        p.addcdiv_(m, v.sqrt().add_(eps), value=-step)

    def step(Xb, yb):
        t[0] += 1
        acts = [Xb.T.contiguous()]  # features x batch
        for i, p in enumerate(params):
            WT = torch.sparse_csr_tensor(
                p["WT_ptr"], p["WT_idx"], p["W"].values()[p["to_csc"]], size=p["W"].shape[::-1]
            )
            Z = torch.sparse.mm(WT, acts[-1]) + p["b"][:, None]
            acts.append(Z.clamp_min(0) if i < len(params) - 1 else Z)
        logits = acts[-1].T
        prob = torch.softmax(logits, dim=1)
        prob[torch.arange(len(yb)), yb] -= 1
        dZ = (prob / len(yb)).T.contiguous()
        for i in reversed(range(len(params))):
            p = params[i]
            gW = torch.sparse.sampled_addmm(p["W"], acts[i], dZ.T.contiguous(), beta=0.0)
            gb = dZ.sum(dim=1)
            if i:
                dZ = torch.sparse.mm(p["W"], dZ) * (acts[i] > 0)
            adam(p["W"].values(), gW.values(), p["state"])
            adam(p["b"], gb, p["bstate"])

    def epoch(steps=SAMPLES // BATCH):
        for s in range(steps):
            sl = slice(s * BATCH, (s + 1) * BATCH)
            step(X[sl], y[sl])

    return epoch


def gemm_epoch(dtype):
    """The dense products of one epoch of PyTorch dense, as bare ``torch.mm`` calls."""
    import torch

    tdtype = getattr(torch, dtype)
    g = torch.Generator().manual_seed(0)
    shapes = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        X, W = torch.rand(BATCH, a, generator=g), torch.rand(a, b, generator=g)
        dZ = torch.rand(BATCH, b, generator=g)
        shapes.append([t.to(tdtype) for t in (X, W, dZ)])

    def epoch(steps=SAMPLES // BATCH):
        for _ in range(steps):
            for X, W, dZ in shapes:
                torch.mm(X, W)  # forward
                torch.mm(dZ, W.T)  # input gradient
                torch.mm(X.T, dZ)  # weight gradient

    return epoch


def multiply_adds(name):
    """Multiply-adds per epoch of a model's three products (``gemm`` counts as dense)."""
    _, _, density = name.partition(":")
    if not density:
        nnz = [a * b for a, b in zip(SIZES[:-1], SIZES[1:])]
    else:
        from graphnn.training import SparseMLP

        nnz = [layer.nnz for layer in SparseMLP(SIZES, density=float(density)).build(0).layers_]
    return (3 * sum(nnz) - nnz[0]) * SAMPLES


def cpu_line():
    """The CPU's model, its widest vector ISA and its L2, from /proc/cpuinfo and sysfs."""
    from graphnn.kernels import l2_bytes

    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{model}, {isa}, L2 {l2_bytes() >> 10} KiB a core"


def kernel_vectors(dtype):
    """What the forward and the one-pass backward kernels' loops compile to on this machine: the
    packed multiply-adds by register width, read from a fresh (uncached) compilation's
    assembly."""
    import re

    import numba

    from graphnn import kernels

    T = kernels.tile_width(4096, BATCH, np.dtype(dtype).itemsize)
    D = kernels.Blocked.of(np.ones((8, BATCH), dtype), T)
    tiles = D.tiles.shape[0]
    ptr, idx, one = np.array([0, 1], np.uint64), np.zeros(1, np.uint32), np.ones(1, dtype)
    bits = {"x": 128, "y": 256, "z": 512}
    found = []
    for name, dots, epilogue in (
        ("forward", False, kernels.PLUS_BIAS),
        ("backward", True, kernels.WHERE_POSITIVE),
    ):
        kernel = kernels._rows_kernel(T, 4, True, dots, epilogue, dots)
        fresh = numba.njit(nogil=True, fastmath=True)(kernel.py_func)
        R = np.ones((tiles, 1 if dots else 0, T), dtype)
        out = np.empty((tiles, 1, T), dtype)
        sums, nonzero = np.zeros((tiles, int(dots))), np.zeros((tiles, int(dots)), np.bool_)
        fresh(0, 1, 0, 1, D.tiles, ptr, idx, one, R, one, BATCH, out, sums, nonzero, one.copy())
        asm = "".join(fresh.inspect_asm().values())
        counts = {w: len(re.findall(rf"vfmadd\w+p[sd]\s+[^\n]*%{w}mm", asm)) for w in "xyz"}
        widths = ", ".join(f"{n} on {bits[w]}-bit" for w, n in counts.items() if n)
        found.append(f"{name} {widths or 'none'}")
    return "; ".join(found)


def child_memory(which, dtype):
    """Peak memory of building and stepping one model, in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-of", which, "--dtype", dtype],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def make(which, dtype, device="cpu"):
    """``gemm``, ``torch``, ``torch.sparse:D``, ``graphnn.torch:D``, ``graphnn:D`` or
    ``graphnn-BACKEND:D``."""
    name, _, density = which.partition(":")
    if name == "gemm":
        return gemm_epoch(dtype)
    if name == "torch":
        return torch_epoch(dtype, device)
    if name == "torch.sparse":
        return torch_sparse_epoch(float(density), dtype)
    if name == "graphnn.torch":
        return graphnn_torch_epoch(float(density), dtype)
    backend = name.partition("-")[2] or ("cupy" if device != "cpu" else "numba")
    return graphnn_epoch(float(density), dtype, backend)


def rounds(epochs, repeat, steps=SAMPLES // BATCH):
    """Median seconds per call of every epoch function, timed in interleaved rounds."""
    for fn in epochs.values():
        fn(1)  # warm: compile, allocate
    times = {name: [] for name in epochs}
    for _ in range(repeat):
        for name, fn in epochs.items():
            t = time.perf_counter()
            fn(steps)
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--densities", default="0.1,0.03,0.01")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--backends", default="numba,graphblas")
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--busy", action="store_true")
    ap.add_argument("--crossover", action="store_true")
    ap.add_argument("--memory-of", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_of:
        import torch  # noqa: F401

        import graphnn.training  # noqa: F401  (imports and kernels load before the baseline)

        graphnn_epoch(0.001, args.dtype)(1)  # compile the kernels before the baseline
        reset_peak()
        before = _status_mb("VmRSS:")
        make(args.memory_of, args.dtype)(2)
        print(_status_mb("VmHWM:") - before)
        return
    import torch

    gpu = args.device == "gpu"
    densities = [float(d) for d in args.densities.split(",")]
    where = "GPU" if gpu else f"{torch.get_num_threads()} threads"
    print(f"{'-'.join(map(str, SIZES))}, batch {BATCH}, {args.dtype}, {where}; one epoch = "
          f"{SAMPLES // BATCH} steps; median of {args.repeat} interleaved rounds")  # fmt: skip
    if not gpu:
        print(f"{cpu_line()}; {time.strftime('%Y-%m-%d')}, load {os.getloadavg()[0]:.2f}")
        print(f"graphnn's kernels, packed multiply-adds: {kernel_vectors(args.dtype)}")
    names = [] if gpu else ["gemm"]
    names.append("torch")
    for d in densities:
        if gpu:
            names.append(f"graphnn-cupy:{d}")
            continue
        names += [f"graphnn-{b}:{d}" for b in args.backends.split(",")]
        names.append(f"graphnn.torch:{d}")
        names.append(f"torch.sparse:{d}")
    epochs = {n: make(n, args.dtype, "cuda" if gpu else "cpu") for n in names}
    med = rounds(epochs, args.repeat)
    dense_memory = None if gpu else child_memory("torch", args.dtype)
    rate = {name: multiply_adds(name) / med[name] / 1e9 for name in names}
    if not gpu:
        print(f"  {'gemm':<22}{med['gemm']:8.3f} s/epoch {rate['gemm']:8.1f} GFMA/s: the "
              f"dense products alone, the machine's limit")  # fmt: skip
    for name in names[1:] if not gpu else names:
        share = f" {rate[name] / rate['gemm']:4.0%} of gemm" if not gpu else ""
        mem = ""
        if not gpu:
            m = dense_memory if name == "torch" else child_memory(name, args.dtype)
            mem = f"  peak +{m:7.1f} MiB ({m / dense_memory:4.2f}x dense)"
        print(f"  {name:<22}{med[name]:8.3f} s/epoch {med[name] * 1e3 * BATCH / SAMPLES:8.1f} "
              f"ms/step {rate[name]:6.1f} GFMA/s{share}  {med['torch'] / med[name]:6.2f}x "
              f"dense speed{mem}")  # fmt: skip
    for d in densities:
        ours = med.get(f"graphnn-numba:{d}")
        if ours and not gpu:
            print(f"  density {d}: graphnn {med[f'torch.sparse:{d}'] / ours:4.2f}x torch.sparse's"
                  " speed")  # fmt: skip
    if args.busy and not gpu:
        pick = {n: epochs[n] for n in names if n == "torch" or n.startswith("graphnn-numba")}
        neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            busy = rounds(pick, args.repeat)
        finally:
            neighbour.kill()
        print("beside one busy process:")
        for name in pick:
            print(f"  {name:<22}{busy[name]:8.3f} s/epoch  {busy[name] / med[name]:5.2f}x its "
                  f"quiet time")  # fmt: skip
    if args.crossover and not gpu:
        print("one epoch against PyTorch dense as the density grows (the crossover):")
        for d in (0.1, 0.2, 0.3, 0.5):
            pair = {"torch": epochs["torch"], "graphnn": graphnn_epoch(d, args.dtype)}
            r = rounds(pair, max(2, args.repeat // 2), steps=4)
            print(f"  density {d:<4} graphnn {r['graphnn'] * 1e3 / 4:7.1f} ms/step, dense "
                  f"{r['torch'] * 1e3 / 4:7.1f}: {r['torch'] / r['graphnn']:5.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
