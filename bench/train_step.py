"""One training step (forward, backward, Adam) of 784-4096-4096-10, batch 512: graphnn's sparse
layers at densities 0.1 and 0.03 against PyTorch dense on the same device, in the same process.

    python bench/train_step.py [--repeat 5] [--dtype float32] [--backend numba|graphblas|cupy]

With --backend cupy both run on the GPU (graphnn through CuPy/cuSPARSE, PyTorch on CUDA) and the
memory column is skipped (it measures host memory).

Times are the best of --repeat steps after a warm-up. Peak memory is measured for each model in
a fresh child process (Linux's resident high-water mark, reset before the model is built, minus
the resident memory at that point).
Goals: density 0.1 no slower than dense, 0.03 at least 3x faster; memory at 0.1 at most half of
dense.
"""

import argparse
import subprocess
import sys
import time

import numpy as np

SIZES = [784, 4096, 4096, 10]
BATCH = 512


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


def sync(backend):
    """Wait for the GPU, so that a timing covers the work and not only its launch."""
    if backend == "cupy":
        import cupy
        import torch

        cupy.cuda.Device().synchronize()
        torch.cuda.synchronize()


def graphnn_step(density, dtype, backend="numba"):
    from graphnn.training import Adam, SparseMLP

    model = SparseMLP(SIZES, density=density, dtype=dtype, backend=backend).build(0)
    opt = Adam(1e-3)
    rng = np.random.default_rng(0)
    X = rng.random((BATCH, SIZES[0]), dtype=np.float32).astype(dtype)
    y = rng.integers(0, SIZES[-1], BATCH)

    def step():
        _, grads, _ = model.loss_and_grads(X, y)
        opt.step(model.layers_, grads, 1e-3)

    return step


def torch_step(dtype, backend="numba"):
    import torch

    where = "cuda" if backend == "cupy" else "cpu"
    torch.manual_seed(0)
    layers = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(getattr(torch, dtype)).to(where)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    X = torch.rand(BATCH, SIZES[0], dtype=getattr(torch, dtype), device=where)
    y = torch.randint(0, SIZES[-1], (BATCH,), device=where)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()

    return step


def make_step(which, dtype):
    return torch_step(dtype) if which == "torch" else graphnn_step(float(which), dtype)


def best(step, repeat, backend="numba"):
    step()
    sync(backend)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        step()
        sync(backend)
        times.append(time.perf_counter() - t)
    return min(times)


def child_memory(which, dtype):
    """Peak memory of building and stepping one model, in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--memory-of", which, "--dtype", dtype],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--backend", default="numba", choices=["numba", "graphblas", "cupy"])
    ap.add_argument("--memory-of", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_of:
        import torch  # noqa: F401

        import graphnn.training  # noqa: F401  (imports and kernels load before the baseline)

        graphnn_step(0.001, args.dtype)()  # compile the kernels before the baseline
        reset_peak()
        before = _status_mb("VmRSS:")
        step = make_step(args.memory_of, args.dtype)
        step()
        step()
        print(_status_mb("VmHWM:") - before)
        return
    import torch

    gpu = args.backend == "cupy"
    where = "GPU" if gpu else f"{torch.get_num_threads()} threads"
    print(
        f"{'-'.join(map(str, SIZES))}, batch {BATCH}, {args.dtype}, {where}; best of {args.repeat}"
    )
    t_dense = best(torch_step(args.dtype, args.backend), args.repeat, args.backend)
    m_dense = None if gpu else child_memory("torch", args.dtype)
    mem = lambda m: "" if m is None else f"   peak +{m:7.1f} MiB"  # noqa: E731
    print(f"  PyTorch dense       {t_dense * 1e3:8.2f} ms/step{mem(m_dense)}")
    for density in (0.1, 0.03):
        t = best(graphnn_step(density, args.dtype, args.backend), args.repeat, args.backend)
        m = None if gpu else child_memory(str(density), args.dtype)
        ratio = "" if m is None else f", {m / m_dense:5.2f}x dense memory"
        print(
            f"  graphnn density {density:<4} {t * 1e3:8.2f} ms/step{mem(m)}   "
            f"{t_dense / t:5.2f}x dense speed{ratio}"
        )


if __name__ == "__main__":
    main()
