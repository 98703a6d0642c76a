"""Parts of the GPU check (``bench/gpu_check.sh`` runs each one time-boxed and isolated).

    python bench/gpu_check.py ops                      # every cupy operation against scipy
    python bench/gpu_check.py official --data DIR      # official 1024 x 120, 1,200 and 60,000 rows
    python bench/gpu_check.py generated --sizes 4096x120,16384x480 [--images 60000]

Each part prints one line per check and appends JSON records to --json (one object per line):
``{"part", "case", "ok", ...figures}``. A check that fails prints ``FAIL`` and the part exits 1
after the remaining checks have run.
"""

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

# This script's folder holds challenge.py: keep bench/ off the import path.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

_failed = []


def record(args, part, case, ok, **figures):
    line = {"part": part, "case": case, "ok": bool(ok), **figures}
    figs = "  ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )
    print(f"{'ok  ' if ok else 'FAIL'} {part}/{case}  {figs}", flush=True)
    if not ok:
        _failed.append(case)
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(line) + "\n")


def guarded(args, part, case, fn):
    """Run one check; an exception is a failure of that check only."""
    try:
        fn()
    except Exception as e:
        traceback.print_exc()
        record(args, part, case, False, error=f"{type(e).__name__}: {e}"[:300])


def _random(rng, shape, density, dtype=np.float64):
    A = sp.random_array(shape, density=density, format="csr", dtype=dtype, rng=rng)
    A.data = (np.where(rng.random(A.nnz) < 0.5, -1, 1) * (0.5 + rng.random(A.nnz))).astype(dtype)
    return A


def _op_cases(A, B, X, Xk, mask, m):
    """(name, function of a backend) for every operation, on these operands."""
    return [
        ("spgemm", lambda be: be.to_scipy(be.spgemm(be.matrix(A), be.matrix(B)))),
        ("spmm", lambda be: be.asnumpy(be.spmm(be.asarray(X), be.matrix(B)))),
        (
            "masked_product",
            lambda be: be.to_scipy(
                be.masked_product(be.asarray(X), be.asarray(Xk), be.matrix(mask))
            ),
        ),
        ("select", lambda be: be.to_scipy(be.select(be.matrix(A), ">", 0))),
        ("apply", lambda be: be.to_scipy(be.apply(be.matrix(A), "min", 0.7))),
        ("reduce0", lambda be: be.reduce(be.matrix(A), axis=0)),
        ("reduce1", lambda be: be.reduce(be.matrix(A), axis=1)),
        ("row_counts", lambda be: be.row_counts(be.matrix(A))),
        ("take_rows", lambda be: be.to_scipy(be.take_rows(be.matrix(A), np.arange(m)[::-1]))),
        ("take_no_rows", lambda be: be.to_scipy(be.take_rows(be.matrix(A), []))),
        (
            "relu_layer",
            lambda be: be.to_scipy(be.relu_layer(be.matrix(A), be.matrix(B), -0.1, 1.0)),
        ),
    ]


def part_ops(args):
    from graphnn.backends import get_backend

    gpu, cpu = get_backend(args.backend), get_backend("reference")
    rng = np.random.default_rng(0)
    shapes = [(40, 30, 20), (0, 30, 20), (40, 0, 20), (40, 30, 0), (1, 1, 1)]
    for m, k, n in shapes:
        case = f"{m}x{k}x{n}"
        A, B = _random(rng, (m, k), 0.2), _random(rng, (k, n), 0.2)
        X = rng.standard_normal((m, k))
        mask = _random(rng, (m, n), 0.3)
        Xk = rng.standard_normal((k, n))

        def check(name, got, want, case=case):
            got = got.toarray() if sp.issparse(got) else np.asarray(got)
            want = want.toarray() if sp.issparse(want) else np.asarray(want)
            ok = got.shape == want.shape and np.allclose(got, want, rtol=1e-10, atol=1e-12)
            record(args, "ops", f"{name}[{case}]", ok)

        for name, fn in _op_cases(A, B, X, Xk, mask, m):
            guarded(
                args,
                "ops",
                f"{name}[{case}]",
                lambda fn=fn, name=name: check(name, fn(gpu), fn(cpu)),
            )

    def big():
        # more than 2**31 intermediate products: 70,000 rows of 32 entries into 1,024-entry rows
        n_rows, k = 70_000, 1024
        cols = rng.integers(0, k, (n_rows, 32))
        A = sp.csr_array(
            (np.ones(n_rows * 32), cols.ravel(), np.arange(0, n_rows * 32 + 1, 32)),
            shape=(n_rows, k),
        )
        A.sum_duplicates()
        B = _random(rng, (k, k), 1.0)
        products = int(np.diff(B.indptr)[A.indices].sum())
        t = time.perf_counter()
        C = gpu.spgemm(gpu.matrix(A), gpu.matrix(B))
        if hasattr(gpu, "cp"):
            gpu.cp.cuda.Device().synchronize()
        sec = time.perf_counter() - t
        sample = rng.choice(n_rows, 500, replace=False)
        got = gpu.to_scipy(gpu.take_rows(C, sample)).toarray()
        want = (A[sample] @ B).toarray()
        ok = np.allclose(got, want, rtol=1e-10, atol=1e-9) and np.abs(got).sum() > 0
        record(args, "ops", "spgemm_over_2^31_products", ok, products=products, seconds=sec)

    guarded(args, "ops", "spgemm_over_2^31_products", big)


def _infer(args, dtype, layers, n):
    """``(run(Y, bias), upload seconds)``: the fused kernel in ``dtype`` on the network uploaded
    once (``--backend numpy-fused``: its CPU implementation), or a CPU backend."""
    from challenge.fused import DeviceNetwork, infer_fused
    from challenge.inference import infer

    if args.backend in ("cupy", "numpy-fused"):
        module = "cupy" if args.backend == "cupy" else "numpy"
        net = DeviceNetwork(layers, n, array_module=module, dtype=dtype,
                            classes=not args.no_column_classes)  # fmt: skip
        return (lambda Y, b: infer_fused(net, Y, b)), net.upload_seconds
    return (lambda Y, b: infer(layers, Y, b, backend=args.backend)), 0.0


def _run_challenge(args, part, case, layers, Y, bias, truth=None, sample=None, dtype="float32"):
    from challenge.inference import infer

    run, upload = _infer(args, dtype, layers, Y.shape[1])
    run(Y, bias)  # warm-up: kernels, handles
    runs = [run(Y, bias) for _ in range(args.repeat)]
    sec = float(np.median([x.seconds for x in runs]))
    r = runs[0]
    figures = dict(
        dtype=dtype,
        rows=Y.shape[0],
        edges=r.edges,
        seconds=sec,
        rate=Y.shape[0] * r.edges / sec,
        upload_seconds=upload,
        saturated_from=r.saturated_from,
    )
    if truth is not None:
        ok = all(np.array_equal(x.categories, truth) for x in runs)
        record(args, part, case, ok, check="truth", categories=int(r.categories.size), **figures)
        return
    t = time.perf_counter()
    ref = infer(layers, Y[sample], bias, backend="numba")  # float64 on the CPU
    cpu_sec = time.perf_counter() - t
    ok = np.array_equal(np.intersect1d(r.categories - 1, sample), sample[ref.categories - 1])
    record(args, part, case, ok, check=f"cpu sample of {sample.size}",
           categories=int(r.categories.size), cpu_sample_seconds=cpu_sec, **figures)  # fmt: skip


def part_official(args):
    from challenge.inference import infer
    from challenge.io import read_images, read_layers, read_truth

    data = Path(args.data)
    layers = read_layers(data / "neuron1024.tar.gz", 1024, 120)
    Y1 = read_images(data / "sparse-images-1024_subset.tsv", 1024)
    truth = read_truth(data / "neuron1024-l120-categories.tsv")
    truth = truth[truth <= 1200]
    for copies in (1, 50):
        Y = sp.csr_array(sp.vstack([Y1] * copies))
        tc = np.concatenate([truth + 1200 * c for c in range(copies)])
        for dtype in ("float32", "float64"):
            case = f"1024x120_{Y.shape[0]}_{dtype}"
            guarded(args, "official", case, lambda c=case, Y=Y, tc=tc, d=dtype: _run_challenge(
                args, "official", c, layers, Y, -0.3, truth=tc, dtype=d))  # fmt: skip

        def cpu(Y=Y, tc=tc, case=f"1024x120_{Y.shape[0]}_cpu_numba"):
            r = infer(layers, Y, -0.3, backend="numba")
            record(args, "official", case, np.array_equal(r.categories, tc), seconds=r.seconds,
                   rate=r.edges_per_second)  # fmt: skip

        guarded(args, "official", f"1024x120_{Y.shape[0]}_cpu_numba", cpu)


def part_generated(args):
    from challenge.generate import digit_images, network_layers
    from challenge.io import official_bias

    rng = np.random.default_rng(1)
    for size in args.sizes.split(","):
        n, n_layers = map(int, size.split("x"))
        case = f"{size}_{args.images}"

        def one(n=n, n_layers=n_layers, case=case):
            t = time.perf_counter()
            base = digit_images(min(args.images, args.base_images), n, seed=[0, 0])
            Y = sp.csr_array(sp.vstack([base] * -(-args.images // base.shape[0]))[: args.images])
            layers = list(network_layers(n, n_layers, 0))
            print(f"     (host preparation {time.perf_counter() - t:.1f} s)", flush=True)
            sample = np.sort(rng.choice(base.shape[0], min(200, base.shape[0]), replace=False))
            _run_challenge(args, "generated", case, layers, Y, official_bias(n), sample=sample)

        guarded(args, "generated", case, one)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part", choices=["ops", "official", "generated"])
    ap.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "graphchallenge"),
    )
    ap.add_argument("--sizes", default="4096x120")
    ap.add_argument("--images", type=int, default=60000)
    ap.add_argument("--base-images", type=int, default=3000, help="distinct images, replicated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument(
        "--backend",
        default="cupy",
        help="cupy (the fused kernel); numpy-fused (its CPU implementation) or a CPU backend "
        "such as numba: a dry run of this script on the CPU",
    )
    ap.add_argument(
        "--no-column-classes",
        action="store_true",
        help="compute every column of the fused kernel's layers (by default each class of "
        "identical columns once): the shortcut's effect, same results",
    )
    args = ap.parse_args()
    {"ops": part_ops, "official": part_official, "generated": part_generated}[args.part](args)
    sys.exit(1 if _failed else 0)


if __name__ == "__main__":
    main()
