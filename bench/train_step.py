"""One training step (forward, backward, Adam) of 784-4096-4096-10, batch 512: graphnn's sparse
layers at densities 0.1 and 0.03 against PyTorch dense on the CPU, in the same process.

    python bench/train_step.py [--repeat 5] [--dtype float32]

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


def graphnn_step(density, dtype):
    from graphnn.training import Adam, SparseMLP

    model = SparseMLP(SIZES, density=density, dtype=dtype).build(0)
    opt = Adam(1e-3)
    rng = np.random.default_rng(0)
    X = rng.random((BATCH, SIZES[0]), dtype=np.float32).astype(dtype)
    y = rng.integers(0, SIZES[-1], BATCH)

    def step():
        _, grads, _ = model.loss_and_grads(X, y)
        opt.step(model.layers_, grads, 1e-3)

    return step


def torch_step(dtype):
    import torch

    torch.manual_seed(0)
    layers = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(getattr(torch, dtype))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    X = torch.rand(BATCH, SIZES[0], dtype=getattr(torch, dtype))
    y = torch.randint(0, SIZES[-1], (BATCH,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()

    return step


def make_step(which, dtype):
    return torch_step(dtype) if which == "torch" else graphnn_step(float(which), dtype)


def best(step, repeat):
    step()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        step()
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

    print(
        f"{'-'.join(map(str, SIZES))}, batch {BATCH}, {args.dtype}, "
        f"{torch.get_num_threads()} threads; best of {args.repeat}"
    )
    t_dense = best(torch_step(args.dtype), args.repeat)
    m_dense = child_memory("torch", args.dtype)
    print(f"  PyTorch dense       {t_dense:7.3f} s/step   peak +{m_dense:7.1f} MiB")
    for density in (0.1, 0.03):
        t = best(graphnn_step(density, args.dtype), args.repeat)
        m = child_memory(str(density), args.dtype)
        print(
            f"  graphnn density {density:<4} {t:7.3f} s/step   peak +{m:7.1f} MiB   "
            f"{t_dense / t:5.2f}x dense speed, {m / m_dense:5.2f}x dense memory"
        )


if __name__ == "__main__":
    main()
