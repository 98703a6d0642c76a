"""``graphnn challenge``: run, generate and demo Sparse DNN Graph Challenge problems."""

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np

from challenge import io
from challenge.inference import compare_categories, infer

from ..errors import GraphnnError
from ..io import read_problem_manifest
from ._common import (
    CHECK_FAILED,
    SUCCESS,
    ArgumentParser,
    add_backend,
    add_json,
    add_overwrite,
    add_seed,
    byte_size,
    check_folder,
    check_outputs,
    claim_output,
    finite,
    run,
    widths_text,
)


def _parser(prog):
    parser = ArgumentParser(
        prog=prog,
        description="The MIT/IEEE Sparse DNN Graph Challenge: exact inference on the official "
        "files, problem generation, and a self-contained demo.",
    )
    sub = parser.add_required_subparsers("action")

    run = sub.add_parser(
        "run",
        help="run a problem and report the rate; check it with --truth",
        description="Exact inference: Z = Y W, bias on nonzeros of Z, ReLU, "
        "clamp at 32. Layers are streamed one at a time.",
    )
    src = run.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--network",
        type=Path,
        metavar="PATH",
        help="any network graphnn.load reads: neuron{N}.tar.gz or a directory of "
        "n{N}-l{k}.tsv/.mtx files (streamed one layer at a time), a .npz or a layer*.mtx "
        "directory; --neurons and --nlayers default to its own",
    )
    src.add_argument("--layers", type=Path, metavar="PATH", help=argparse.SUPPRESS)
    src.add_argument(
        "--problem",
        type=Path,
        metavar="DIR",
        help="a folder of 'challenge generate': its layers, images and truth, every file "
        "checked against the digests in its problem.json first",
    )
    src.add_argument(
        "--generated",
        type=int,
        metavar="SEED",
        help="regenerate the layers of 'challenge generate --seed SEED' on the fly",
    )
    run.add_argument(
        "--images",
        type=Path,
        metavar="PATH",
        help="sparse-images-{N}.tsv, .tsv.gz or LAGraph .mtx (required but with --problem)",
    )
    _size_args(run, required=False)
    _bias_arg(run)
    run.add_argument(
        "--images-count",
        type=int,
        metavar="K",
        help="images in the problem (default: a generated problem's problem.json, else the "
        "largest id in --truth); give it to check the first K images of a larger truth",
    )
    run.add_argument(
        "--truth",
        type=Path,
        metavar="PATH",
        help="truth categories (.tsv or .mtx); a mismatch exits 1",
    )
    add_backend(run)
    _engine_args(run)
    run.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the categories (1-based ids, ascending), only on success",
    )
    _report_args(run)
    add_overwrite(run)
    dist = run.add_mutually_exclusive_group()
    dist.add_argument(
        "--workers",
        type=int,
        metavar="K",
        help="partition the images over a local Dask cluster of K processes",
    )
    dist.add_argument(
        "--scheduler", metavar="ADDRESS", help="partition the images over an existing Dask cluster"
    )

    gen = sub.add_parser(
        "generate",
        help="write a problem built like the official one",
        description="Radix-2 RadiX-Net layers with B = 16 and a random row "
        "permutation per layer after the first cycle; digit images resized to "
        "sqrt(N) x sqrt(N) and thresholded; the truth computed exactly.",
    )
    _size_args(gen)
    gen.add_argument("--images", type=int, required=True, metavar="K", help="number of images")
    gen.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    add_seed(gen)
    add_overwrite(gen)
    _bias_arg(gen)
    _engine_args(gen)
    gen.add_argument(
        "--no-layers",
        action="store_true",
        help="write only images, truth and problem.json; 'challenge run --problem' "
        "regenerates the layers from the seed (65536 x 1920 layers would take 92 GB)",
    )
    gen.add_argument(
        "--images-format",
        choices=("tsv", "npz"),
        default="tsv",
        help="tsv: the official text format; npz: graphnn's binary CSR, read at disk speed "
        "(60,000 images of 65,536 pixels: 5.4 GB of text, 4.7 GB of npz)",
    )
    gen.add_argument(
        "--mnist",
        type=Path,
        metavar="DIR",
        help="MNIST IDX files (train-images-idx3-ubyte[.gz]) instead of the "
        "built-in scikit-learn digits",
    )

    dl = sub.add_parser(
        "download",
        help="fetch the official 2019 files (layers, images, truth), resumable and checked",
        description="Fetch the official Sparse DNN files of one size from the challenge's "
        "public URLs, with progress; an interrupted download resumes from its .part file. "
        "Each file's size and SHA-256 are recorded in download.json and checked by every "
        "later 'challenge run' that reads the file (none are published).",
        epilog="Example: graphnn challenge download --neurons 1024 --out official && graphnn "
        "challenge run --network official/neuron1024.tar.gz --images "
        "official/sparse-images-1024.tsv.gz --truth official/neuron1024-l120-categories.tsv",
    )
    dl.add_argument("--neurons", type=int, required=True, metavar="N",
                    help="1024, 4096, 16384 or 65536")  # fmt: skip
    dl.add_argument("--nlayers", type=int, default=120, metavar="L",
                    help="120, 480 or 1920: the truth depends on it (default 120)")  # fmt: skip
    dl.add_argument("--layers", action="store_true", help="the layers archive")
    dl.add_argument("--images", action="store_true", help="the images")
    dl.add_argument("--truth", action="store_true", help="the truth (for --nlayers)")
    dl.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    dl.add_argument(
        "--base-url", metavar="URL", help="a mirror of the challenge's tree (default: official)"
    )

    demo = sub.add_parser(
        "demo",
        help="generate (or take the official) problem, run, verify",
        description="Offline demo: a generated 1024 x 120 problem (truth by "
        "GraphBLAS), run with the fast kernel and verified; or the official "
        "files with --data.",
    )
    demo.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="directory with the official neuron1024.tar.gz, images and truth",
    )
    demo.add_argument("--images", type=int, default=3000, metavar="K", help="images to generate")
    demo.add_argument("--neurons", type=int, default=1024, metavar="N", help="neurons per layer")
    demo.add_argument("--nlayers", type=int, default=120, metavar="L", help="number of layers")
    add_seed(demo)
    _bias_arg(demo)
    add_backend(demo)
    _engine_args(demo)
    _report_args(demo)
    add_overwrite(demo)
    return parser


def _engine_args(p):
    p.add_argument(
        "--memory-limit",
        type=byte_size,
        metavar="SIZE",
        help="memory for the layer cache and the image batches of the numba backend, e.g. "
        "6G (default: half the memory available at the start)",
    )
    p.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        help="arithmetic of the numba (default float64) and cupy (default float32) kernels",
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="K",
        help="batches run at once by the numba backend (default: two for each CPU this process "
        "may use: fairer beside a busy process, as fast on a quiet one)",
    )
    p.add_argument(
        "--no-column-classes",
        dest="column_classes",
        action="store_false",
        help="compute every column of the numba backend's layers, even where columns are "
        "identical (by default each class of identical columns is summed once per row: same "
        "results bit for bit; this flag shows the shortcut's effect)",
    )
    p.add_argument(
        "--no-saturation-stop",
        dest="saturation_stop",
        action="store_false",
        help="take rows saturated at 32 in every neuron through every layer (by default they "
        "stop where a row of 32s provably stays one: same categories; shows the effect)",
    )


def _bias_arg(p):
    p.add_argument("--bias", type=finite, help="bias (default: the official value for N)")


def _report_args(p):
    add_json(p)
    p.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="rows still computed and rows saturated, per layer",
    )


def _size_args(p, required=True):
    p.add_argument(
        "--neurons",
        type=int,
        required=required,
        metavar="N",
        help="neurons per layer (1024, 4096, 16384, 65536 officially)",
    )
    p.add_argument(
        "--nlayers",
        type=int,
        required=required,
        metavar="L",
        help="number of layers to run (120, 480, 1920 officially)",
    )


def _bias(args):
    if args.bias is not None:
        return args.bias
    if args.neurons not in io.OFFICIAL_BIAS:
        raise GraphnnError(
            f"no official bias for --neurons {args.neurons} (official: "
            f"{', '.join(map(str, io.NEURON_COUNTS))}): give --bias"
        )
    return io.official_bias(args.neurons)


def _check_sizes(args):
    if args.neurons < 2:
        raise GraphnnError(f"--neurons must be at least 2, got {args.neurons}")
    if args.nlayers < 1:
        raise GraphnnError(f"--nlayers must be at least 1, got {args.nlayers}")


def _summary(result, valid, bias, args):
    import resource

    return {
        "images": result.n_images,
        "neurons": result.n_neurons,
        "layers": result.n_layers,
        "bias": bias,
        "edges": result.edges,
        "backend": args.backend,
        "dtype": args.dtype or ("float32" if args.backend == "cupy" else "float64"),
        "seconds": result.seconds,
        "read_seconds": result.read_seconds,
        "prepare_seconds": result.prepare_seconds,
        "edges_per_second": result.edges_per_second,
        "shortcuts": result.shortcuts(),
        "peak_memory_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "categories": int(result.categories.size),
        "valid": valid,
    }


def _report(summary, as_json):
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    s = summary
    print(
        f"{s['images']:,} images x {s['neurons']:,} neurons x {s['layers']} layers "
        f"({s['edges']:,} edges), bias {s['bias']:g}"
    )
    print(
        f"read {s['read_seconds']:.3f} s; network prepared {s['prepare_seconds']:.3f} s; "
        f"inference {s['seconds']:.3f} s; "
        f"rate {s['edges_per_second']:.4g} edges/s (official formula)"
    )
    cut = s["shortcuts"]
    if cut is not None:
        since = cut["saturated_from_layer"]
        print(
            f"exact shortcuts: {cut['rows_dropped_dead']:,} rows dropped when they died, "
            f"{cut['rows_stopped_saturated']:,} stopped saturated"
            + (f" (from layer {since})" if since else "")
            + f"; rows computed through layer {cut['last_layer_computed']}: "
            f"{cut['row_edges_computed']:.4g} of {cut['row_edges_official']:.4g} row-edges, "
            f"{cut['edges_per_second_computed_layers']:.4g} edges/s over those layers"
        )
        classes = cut.get("column_classes")
        if classes:
            shared = sum(c < s["neurons"] for c in classes)
            print(
                f"column classes: {shared} of {len(classes)} cached layers share columns; "
                f"distinct columns per layer {min(classes):,}-{max(classes):,} of "
                f"{s['neurons']:,} (each summed once per row)"
            )
    verdict = {
        True: "valid (matches the truth)",
        False: "INVALID (differs from the truth)",
        None: "not checked (no truth given)",
    }[s["valid"]]
    print(f"{s['categories']:,} categories; {verdict}")


def _plot(result, path):
    from graphnn.plotting import plot_challenge_rows, save_figure

    save_figure(plot_challenge_rows(result).figure, path)


def _problem_images(args, truth):
    """``(count, exact)``: how many images the problem has, from --images-count or a
    generated problem's ``problem.json`` beside the images (exact), else at least the largest
    id in the truth (a lower bound), else unknown (None)."""
    if args.images_count is not None:
        if args.images_count < 1:
            raise GraphnnError(f"--images-count must be at least 1, got {args.images_count}")
        return args.images_count, True
    manifest = args.images.parent / "problem.json"
    if manifest.exists():
        return read_problem_manifest(manifest)["images"], True
    return (int(truth.max()) if truth is not None and truth.size else None), False


def _images_for(images, problem, path):
    """The images of the problem, refusing a file that holds fewer than it has (cut short)
    or ids beyond them (a stray id)."""
    n_images, exact = problem
    rows = images.shape[0]
    if n_images is None or not exact:
        present = int((np.diff(images.indptr) > 0).sum())
        if rows > 10 * max(present, 1000):
            raise GraphnnError(
                f"--images {path}: image ids run to {rows:,} but only {present:,} images have "
                "pixels: a damaged id? give --images-count if the numbering is meant"
            )
    if n_images is None:
        return images
    if rows < n_images:
        where = "the problem has" if exact else "the truth covers ids up to"
        raise GraphnnError(
            f"--images {path} holds {rows:,} images but {where} {n_images:,}: the file is cut "
            f"short, or give --images-count {rows} to check those only"
        )
    if not exact:
        return images
    if rows > n_images and images[n_images:].nnz:
        raise GraphnnError(
            f"--images {path} holds image ids beyond the problem's {n_images:,} images"
        )
    return images[:n_images]


def _check_truth(found, truth, n_images):
    """Whether the categories are the truth's, among the ``n_images`` images run."""
    if truth.size and truth.max() > n_images:
        print(f"note: checking the truth ids <= {n_images:,}, the images run", file=sys.stderr)
        truth = truth[truth <= n_images]
    missing, extra = compare_categories(found, truth)
    if not missing.size and not extra.size:
        return True
    print(
        f"categories differ from the truth: {missing.size} missing (first: "
        f"{missing[:10].tolist()}), {extra.size} extra (first: {extra[:10].tolist()})",
        file=sys.stderr,
    )
    return False


def _network_source(args):
    """A zero-argument callable yielding the layers of --network, and fill in --neurons and
    --nlayers from the network when they were not given."""
    from graphnn.io import discover, load

    path = args.network
    if not path.exists():
        raise GraphnnError(f"--network {path}: no such file or directory")
    if path.is_dir() and (path.parent / "problem.json").exists() and args.problem is None:
        from challenge.generate import read_problem

        read_problem(path.parent)  # a generated problem's layers: unchanged and complete?
    try:
        n_neurons, n_layers = discover(path)  # the challenge layouts: streamed
        layers = None
    except GraphnnError:
        net = load(path)
        n_neurons, n_layers, layers = net.sizes[0], len(net), net.layers
        if any(s != n_neurons for s in net.sizes):
            raise GraphnnError(
                f"--network {path}: widths {widths_text(net.sizes)}; the challenge "
                "needs square layers of one width"
            ) from None
    if args.neurons is None:
        args.neurons = n_neurons
    elif args.neurons != n_neurons:
        raise GraphnnError(
            f"--neurons {args.neurons} but --network {path} has {n_neurons} neurons per layer"
        )
    if args.nlayers is None:
        args.nlayers = n_layers
    elif args.nlayers > n_layers:
        raise GraphnnError(f"--nlayers {args.nlayers} but --network {path} has {n_layers} layers")
    if layers is not None:
        return lambda: iter(layers[: args.nlayers])
    # an absolute path: Dask workers may run in another working directory
    return functools.partial(io.iter_layers, path.resolve(), args.neurons, args.nlayers)


def _layer_source(args):
    if args.generated is not None:
        if args.neurons is None or args.nlayers is None:
            raise GraphnnError("--generated needs --neurons and --nlayers")
        from challenge.generate import layer_source

        return layer_source(args.neurons, args.nlayers, args.generated)
    return _network_source(args)


def _execute(source, images, bias, args, progress):
    if args.threads is not None and args.threads < 1:
        raise GraphnnError(f"--threads must be at least 1, got {args.threads}")
    if getattr(args, "workers", None) is not None or getattr(args, "scheduler", None) is not None:
        from challenge.distributed import infer_distributed

        return infer_distributed(
            source,
            images,
            bias,
            backend=args.backend,
            workers=args.workers,
            scheduler=args.scheduler,
            dtype=args.dtype,
            memory_limit=args.memory_limit,
            threads=args.threads,
        )
    return infer(
        source, images, bias, backend=args.backend, dtype=args.dtype,
        memory_limit=args.memory_limit, threads=args.threads, progress=progress,
        n_layers=args.nlayers, column_classes=args.column_classes,
        saturation_stop=args.saturation_stop,
    )  # fmt: skip


def _from_problem(args):
    """Fill in what a --problem folder says: network, images, truth, sizes, bias."""
    from challenge.generate import problem_paths, read_problem

    m = read_problem(args.problem)
    paths = problem_paths(args.problem, m["neurons"], m["layers"], m["images_format"])
    for name in ("neurons", "nlayers"):
        given = getattr(args, name)
        have = m["neurons" if name == "neurons" else "layers"]
        if given is not None and given != have:
            raise GraphnnError(f"--{name} {given} but --problem {args.problem} has {have}")
    args.neurons, args.nlayers = m["neurons"], m["layers"]
    if m.get("layer_files", True):
        args.network = paths["layers"]
    else:  # written without layer files: regenerate them from the seed
        args.generated = int(m["seed"])
    args.images = args.images or paths["images"]
    args.truth = args.truth or paths["truth"]
    args.bias = m["bias"] if args.bias is None else args.bias
    args.images_count = m["images"] if args.images_count is None else args.images_count


def cmd_run(args):
    if args.problem is not None:
        _from_problem(args)
    if args.images is None:
        raise GraphnnError("--images is required (but with --problem)")
    from challenge.download import verify

    for flag in ("--images", "--truth", "--network"):
        path = getattr(args, flag[2:])
        if path is not None and not path.exists():
            raise GraphnnError(f"{flag} {path}: no such file")
        if path is not None:
            verify(path)  # a downloaded file: unchanged since?
    if args.layers is not None:
        print("note: --layers is deprecated, use --network", file=sys.stderr)
        args.network = args.layers
    check_outputs(
        args, ["--out", "--plot"], inputs=["--network", "--problem", "--images", "--truth"]
    )
    source = _layer_source(args)
    _check_sizes(args)
    bias = _bias(args)
    truth = io.read_truth(args.truth) if args.truth is not None else None
    images = io.read_images(args.images, args.neurons)
    images = _images_for(images, _problem_images(args, truth), args.images)
    result = _execute(source, images, bias, args, sys.stderr.isatty())
    if result.n_layers < args.nlayers:
        raise GraphnnError(f"--network {args.network}: only {result.n_layers} layers found")
    valid = None if truth is None else _check_truth(result.categories, truth, images.shape[0])
    if args.out is not None and valid is not False:
        io.write_truth(result.categories, args.out)
    if args.plot is not None and result.live_rows:
        _plot(result, args.plot)
    _report(_summary(result, valid, bias, args), args.json)
    return CHECK_FAILED if valid is False else SUCCESS


def cmd_generate(args):
    from challenge.batched import check_settings
    from challenge.generate import generate_problem, write_problem

    _check_sizes(args)
    _bias(args)
    check_settings(args.dtype or "float64", args.memory_limit, args.threads)  # before the work
    check_folder(args.out, "--out", args.overwrite)
    progress = sys.stderr.isatty()
    problem = generate_problem(
        args.neurons,
        args.nlayers,
        args.images,
        seed=args.seed,
        bias=args.bias,
        mnist_dir=args.mnist,
        progress=progress,
        dtype=args.dtype,
        memory_limit=args.memory_limit,
        threads=args.threads,
    )
    if progress:
        print(f"{problem.truth.size:,} categories; writing {args.out} ...", file=sys.stderr)
    paths = write_problem(
        problem, args.out, progress=progress, layers=not args.no_layers,
        images_format=args.images_format,
    )  # fmt: skip
    print(
        f"wrote {args.images:,} images x {args.neurons:,} neurons x {args.nlayers} layers "
        f"to {args.out} ({problem.truth.size:,} categories in {paths['truth'].name})"
    )
    print(f"run it: graphnn challenge run --problem {args.out}")
    return SUCCESS


def _official_files(data, n_neurons, n_layers):
    layers = data / f"neuron{n_neurons}.tar.gz"
    if not layers.exists():
        layers = data / f"neuron{n_neurons}"
    images = next(
        (
            data / f"sparse-images-{n_neurons}{s}"
            for s in (".tsv.gz", ".tsv", "_subset.tsv", "_subset.mtx")
            if (data / f"sparse-images-{n_neurons}{s}").exists()
        ),
        None,
    )
    truth = data / f"neuron{n_neurons}-l{n_layers}-categories.tsv"
    for what, p in (("layers", layers), ("images", images), ("truth", truth)):
        if p is None or not p.exists():
            raise GraphnnError(f"--data {data}: no official {what} file for N={n_neurons} there")
    return layers, images, truth


def cmd_demo(args):
    check_outputs(args, ["--plot"])
    _check_sizes(args)
    progress = sys.stderr.isatty()
    if args.data is not None:
        layers, images_path, truth_path = _official_files(args.data, args.neurons, args.nlayers)
        images = io.read_images(images_path, args.neurons)
        truth = io.read_truth(truth_path)
        bias = io.official_bias(args.neurons)
        source = functools.partial(io.iter_layers, layers, args.neurons, args.nlayers)
        print(f"official problem from {args.data} ({images.shape[0]:,} images)", file=sys.stderr)
    else:
        from challenge.generate import generate_problem

        print(
            f"generating {args.images:,} images x {args.neurons} neurons x {args.nlayers} "
            "layers (truth by GraphBLAS) ...",
            file=sys.stderr,
        )
        problem = generate_problem(
            args.neurons,
            args.nlayers,
            args.images,
            seed=args.seed,
            bias=_bias(args),
            backend="graphblas",
            progress=progress,
        )
        images, truth, bias, source = problem.images, problem.truth, problem.bias, problem.layers
    result = _execute(source, images, bias, args, progress)
    valid = _check_truth(result.categories, truth, images.shape[0])
    if args.plot is not None:
        _plot(result, args.plot)
    _report(_summary(result, valid, bias, args), args.json)
    return SUCCESS if valid else CHECK_FAILED


def cmd_download(args):
    from challenge.download import OFFICIAL_URL, download, official_files

    some = args.layers or args.images or args.truth  # none named: all three
    files = official_files(
        args.neurons, args.nlayers, layers=args.layers or not some,
        images=args.images or not some, truth=args.truth or not some,
        base_url=args.base_url or OFFICIAL_URL,
    )  # fmt: skip
    if args.out.resolve().parent.is_dir():
        claim_output(args.out, "--out")
    done = download(files, args.out, progress=sys.stderr.isatty())
    for name, what in done.items():
        print(f"{what:>10}  {args.out / name}")
    return SUCCESS


def main(argv, prog="graphnn challenge"):
    actions = {"run": cmd_run, "generate": cmd_generate, "demo": cmd_demo, "download": cmd_download}
    return run(_parser(prog), argv, lambda args: actions[args.action](args))
