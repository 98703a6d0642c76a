"""graphnn challenge inference against its peers, side by side in one process, quiet and busy.

    python bench/challenge.py [--copies 10] [--repeat 5] [--peers naive32,naive64,lagraph,graphblas]
    python bench/challenge.py --scale [--sizes 1024x1920:3000,65536x1920:1000] [--check K]
        [--interleave] [--shortcuts]

Official part: the official 1024-neuron, 120-layer network on the 1,200 official images
replicated --copies times (12,000 rows by default). Peers:

* ``naive32`` / ``naive64``: the rule written directly in scipy in float32 / float64
  (``Z = Y @ W``; bias on the nonzeros; clip to [0, 32]; ``eliminate_zeros``);
* ``lagraph``: the LAGraph ``LAGraph_dnn`` loop in python-graphblas (``mxm`` plus-times, bias
  on the stored entries, select > 0, min with 32), float32;
* ``graphblas``: graphnn's ``graphblas`` backend;
* graphnn's default (``numba``) CPU kernel in float64 (its default) and float32, always run.

Each is timed --repeat times (median printed; rate = images * edges / seconds, the official
formula) and its categories compared with the truth. Then naive32 and graphnn run again beside
a busy process (one spinning Python process: on this 2-core machine a fair share is 2/3 of the
cores, so 1.5x is what an ideally balanced program loses), and the slowdowns are printed.

--scale: generated challenge problems of the given NEURONSxLAYERS:IMAGES sizes (layers
regenerated from the seed, images from the default official-like source), graphnn against
naive32, which stops after --naive-budget seconds per size.
"""

import argparse
import statistics
import subprocess
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


def naive(layers, Y, dtype, bias=BIAS):
    """Found categories, inference seconds, seconds converting the network (every engine's
    conversion is timed apart from its inference)."""
    t = time.perf_counter()
    Y = Y.astype(dtype)
    layers = [W.astype(dtype) for W in layers]
    prepared = time.perf_counter() - t
    t = time.perf_counter()
    for W in layers:
        Z = Y @ W
        Z.data[Z.data != 0] += dtype(bias)
        np.clip(Z.data, 0, YMAX, out=Z.data)
        Z.eliminate_zeros()
        Y = Z
    return np.flatnonzero(np.diff(sp.csr_array(Y).indptr)) + 1, time.perf_counter() - t, prepared


def lagraph(layers, Y, bias=BIAS):
    import graphblas as gb

    def to_gb(M):
        M = sp.csr_array(M).astype(np.float32)
        return gb.Matrix.from_csr(M.indptr, M.indices, M.data, nrows=M.shape[0],
                                  ncols=M.shape[1])  # fmt: skip

    t = time.perf_counter()
    Ws = [to_gb(W) for W in layers]
    Yg = to_gb(Y)
    prepared = time.perf_counter() - t
    t = time.perf_counter()
    for W in Ws:
        Z = Yg.mxm(W, gb.semiring.plus_times).new()
        Z << Z.apply(gb.binary.plus, right=np.float32(bias))
        Z << gb.select.valuegt(Z, 0)
        Yg = Z.apply(gb.binary.min, right=np.float32(YMAX)).new()
    rows = Yg.reduce_rowwise(gb.monoid.plus).new()
    found = np.sort(rows.to_coo()[0]) + 1
    return found, time.perf_counter() - t, prepared


def graphnn(backend, dtype=None, column_classes=True, saturation_stop=True):
    def run(layers, Y):
        r = infer(layers, Y, BIAS, backend=backend, dtype=dtype, column_classes=column_classes,
                  saturation_stop=saturation_stop)  # fmt: skip
        return r.categories, r.seconds, r.prepare_seconds

    return run


def busy():
    """A spinning neighbour process."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(fn, layers, Y, repeat):
    """Found categories, median inference seconds, the runs' seconds and the median seconds
    of inference and network conversion together."""
    found, times, whole = None, [], []
    for _ in range(repeat):
        found, sec, prepared = fn(layers, Y)
        times.append(sec)
        whole.append(sec + prepared)
    return found, statistics.median(times), times, statistics.median(whole)


def on_off(engine, name, categories, *args):
    """``(on, off, same)``: median inference seconds of ``engine(*args, name=flag)`` with the
    flag on and off, alternately 3 times each, and whether every run found ``categories``."""
    sec, same = {True: [], False: []}, True
    for flag in (False, True) * 3:
        result = engine(*args, **{name: flag})
        sec[flag].append(result.seconds)
        same = same and np.array_equal(result.categories, categories)
    return statistics.median(sec[True]), statistics.median(sec[False]), same


def official(args):
    if not (DATA / "neuron1024.tar.gz").exists():
        sys.exit(f"bench/challenge.py needs the official files in {DATA}")
    layers = read_layers(DATA / "neuron1024.tar.gz", 1024, 120)
    Y1 = read_images(DATA / "sparse-images-1024_subset.tsv", 1024)
    Y = sp.csr_array(sp.vstack([Y1] * args.copies))
    truth = read_truth(DATA / "neuron1024-l120-categories.tsv")
    truth = np.concatenate([truth[truth <= 1200] + 1200 * c for c in range(args.copies)])
    edges = sum(W.nnz for W in layers)
    peers = {
        "naive32": lambda L, Y: naive(L, Y, np.float32),
        "naive64": lambda L, Y: naive(L, Y, np.float64),
        "lagraph": lagraph,
        "graphblas": graphnn("graphblas"),
    }
    chosen = [p for p in args.peers.split(",") if p]
    unknown = set(chosen) - set(peers)
    if unknown:
        sys.exit(f"--peers: unknown {', '.join(sorted(unknown))}; choose from {', '.join(peers)}")
    runs = [(p, peers[p]) for p in chosen] + [
        ("graphnn", graphnn("numba")),
        ("graphnn f32", graphnn("numba", "float32")),
        # each shortcut off: its effect, in the same run
        ("no col classes", graphnn("numba", column_classes=False)),
        ("no sat. stop", graphnn("numba", saturation_stop=False)),
    ]
    graphnn("numba")(layers, Y1)  # compile and warm the kernels outside the clock
    graphnn("numba", "float32")(layers, Y1)
    print(f"{Y.shape[0]:,} images x 1024 neurons x 120 layers, {edges:,} edges; "
          f"median of {args.repeat}")  # fmt: skip
    print(
        "  inference (the rate's seconds); then with the network's conversion (scipy's astype, "
        "graphblas matrices, graphnn's classes and saturation tests), timed apart"
    )
    quiet, whole = {}, {}
    for name, fn in runs:
        found, sec, times, whole[name] = measure(fn, layers, Y, args.repeat)
        quiet[name] = sec
        ok = "== truth" if np.array_equal(found, truth) else "!= TRUTH"
        base = quiet.get("naive32")
        ratio = f"{base / sec:6.2f}x naive32" if base else ""
        both = f"; with conversion {whole[name]:.3f} s" + (
            f" {whole['naive32'] / whole[name]:5.2f}x" if base else ""
        )
        print(f"  {name:<14}{sec:8.3f} s  {Y.shape[0] * edges / sec:10.3e} edges/s  "
              f"{ratio}  {ok}{both}  (runs {', '.join(f'{t:.3f}' for t in times)})")  # fmt: skip
    print("beside one busy process:")
    neighbour = busy()
    try:
        time.sleep(0.5)
        for name, fn in runs:
            if name not in ("naive32", "graphnn"):
                continue
            found, sec, times, both = measure(fn, layers, Y, args.repeat)
            ok = "== truth" if np.array_equal(found, truth) else "!= TRUTH"
            print(f"  {name:<14}{sec:8.3f} s  {sec / quiet[name]:5.2f}x its quiet time  {ok}; "
                  f"with conversion {both / whole[name]:5.2f}x  "
                  f"(runs {', '.join(f'{t:.3f}' for t in times)})")  # fmt: skip
    finally:
        neighbour.kill()


def scale(args):
    import resource

    from challenge.generate import digit_images, layer_source
    from challenge.io import official_bias

    infer([sp.identity(64, format="csr")], sp.identity(64, format="csr"), -0.3)  # compile
    for spec in args.sizes.split(","):
        shape, count = spec.split(":")
        n, n_layers = map(int, shape.split("x"))
        count = int(count)
        t = time.perf_counter()
        images = digit_images(count, n, seed=0)
        t_images = time.perf_counter() - t
        source = layer_source(n, n_layers, 0)  # regenerated from the seed, never all in memory
        bias = official_bias(n)
        t = time.perf_counter()
        r = infer(source, images, bias, progress=sys.stderr.isatty())
        wall = time.perf_counter() - t
        cut = r.shortcuts()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"{n}x{n_layers}, {count:,} images ({images.nnz / count:.0f} px, made in "
              f"{t_images:.1f} s): {wall:.1f} s in all (layers generated {r.read_seconds:.1f} s,"
              f" prepared {r.prepare_seconds:.1f} s, inference {r.seconds:.1f} s), peak memory "
              f"{peak:.2f} GiB so far; "
              f"{r.categories.size:,} categories; rate {r.edges_per_second:.3e} edges/s "
              f"(official formula); rows computed through layer {cut['last_layer_computed']}, "
              f"{cut['rows_stopped_saturated']:,} stopped saturated from layer "
              f"{cut['saturated_from_layer']}, {cut['row_edges_computed']:.3e} row-edges "
              f"computed ({cut['row_edges_computed_per_second']:.3e}/s)", flush=True)  # fmt: skip
        if args.shortcuts:  # column classes on and off, alternately, 3 runs each
            on, off, same = on_off(infer, "column_classes", r.categories, source, images, bias)
            print(f"  column classes on: inference {on:.2f} s, off {off:.2f} s (median of 3, "
                  f"alternating; {off / on:.2f}x), categories "
                  f"{'identical' if same else 'DIFFERENT'}", flush=True)  # fmt: skip
        if args.interleave and n % 16 == 0:  # both neuron orders, alternately, 3 runs each
            from challenge.batched import infer_batched

            on, off, same = on_off(infer_batched, "interleave", r.categories, source, images, bias)
            print(
                f"  block_interleave on: inference {on:.2f} s, off {off:.2f} s (median of 3, "
                f"alternating; {off / on:.2f}x; the default with column classes), categories "
                f"{'identical' if same else 'DIFFERENT'}",
                flush=True,
            )
        if args.check:  # the reference layer loop on the first images: an independent result
            k = min(args.check, count)
            ref = infer(source, images[:k], bias, backend="reference")
            mine = r.categories[r.categories <= k]
            same = "identical" if np.array_equal(ref.categories, mine) else "DIFFERENT"
            print(f"  reference loop on the first {k:,} images: {ref.categories.size} "
                  f"categories, {same} ({ref.seconds:.1f} s)", flush=True)  # fmt: skip
        if args.naive_budget <= 0:
            continue
        found, sec, done = naive_budget(source(), images, bias, args.naive_budget)
        if done == n_layers:
            same = "identical" if np.array_equal(found, r.categories) else "DIFFERENT"
            print(f"  naive32 {sec:.3f} s: graphnn {sec / r.seconds:.2f}x faster, {same}")
        else:
            print(f"  naive32 stopped after {done} layers ({sec:.1f} s, the budget)")


def naive_budget(layers, Y, bias, budget):
    """naive32 layer by layer, stopping once ``budget`` seconds are spent."""
    Y = Y.astype(np.float32)
    t, done = time.perf_counter(), 0
    for W in layers:
        Z = Y @ W.astype(np.float32)
        Z.data[Z.data != 0] += np.float32(bias)
        np.clip(Z.data, 0, YMAX, out=Z.data)
        Z.eliminate_zeros()
        Y, done = Z, done + 1
        if time.perf_counter() - t > budget:
            break
    return np.flatnonzero(np.diff(sp.csr_array(Y).indptr)) + 1, time.perf_counter() - t, done


def _depth(r):
    """The last layer (1-based) after which rows were still computed."""
    live = np.flatnonzero(np.asarray(r.live_rows) > 0)
    return int(live[-1]) + 1 if live.size else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--peers", default="naive32,naive64,lagraph,graphblas")
    ap.add_argument("--scale", action="store_true", help="generated problems of --sizes")
    ap.add_argument("--sizes", default="1024x1920:3000,4096x480:2000,16384x120:1000,65536x120:300")
    ap.add_argument("--naive-budget", type=float, default=60.0, help="seconds per size")
    ap.add_argument("--check", type=int, default=0, help="images checked by the reference loop")
    ap.add_argument(
        "--shortcuts",
        action="store_true",
        help="with --scale: also run with column classes off (and on again), alternately",
    )
    ap.add_argument(
        "--interleave",
        action="store_true",
        help="with --scale: also run with the other neuron order (block_interleave on or off, "
        "whichever is not the default) and print both",
    )
    args = ap.parse_args()
    scale(args) if args.scale else official(args)


if __name__ == "__main__":
    main()
