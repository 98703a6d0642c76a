"""``graphnn topo``: generate, analyse, draw and convert sparse topologies."""

import json
import sys
from pathlib import Path

from ..errors import GraphnnError
from ..io import FORMATS, load, save
from ._common import (
    SUCCESS,
    ArgumentParser,
    add_overwrite,
    add_seed,
    check_folder,
    check_output,
    check_outputs,
    finite,
    floats,
    ints,
    run,
    widths,
    widths_text,
)


def _parser(prog):
    parser = ArgumentParser(
        prog=prog,
        description="Generate, analyse and draw sparse network "
        "topologies: chains of sparse adjacency matrices.",
    )
    sub = parser.add_required_subparsers("action")

    gen = sub.add_parser("generate", help="generate a topology and save it")
    fam = gen.add_required_subparsers("family")

    def family(name, help_text):
        p = fam.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--out",
            type=Path,
            required=True,
            metavar="PATH",
            help="where to write: FILE.npz, or a directory for --format mtx/tsv "
            "(a directory with --format npz gets DIR/network.npz)",
        )
        _format_arg(p)
        add_seed(p)
        add_overwrite(p)
        return p

    p = family("radixnet", "RadiX-Net (Robinett & Kepner): equal path counts by construction")
    p.add_argument(
        "--radices",
        required=True,
        help="radix list, e.g. 2,2,2; several lists separated by ';' (10,10;2,5)",
    )
    p.add_argument("--kron", help="Kronecker list B, one longer than the number of layers")
    p.add_argument(
        "--D",
        dest="D",
        type=int,
        help="use the sum of D cyclic shifts instead of the all-ones block",
    )
    p.add_argument("--trim", type=int, help="keep only the last TRIM input neurons")

    p = family(
        "kronecker",
        "challenge-style random Kronecker: kron(ones(B,B), radix layer), "
        "rows permuted after the first cycle (the network of 'challenge generate --seed')",
    )
    p.add_argument("--neurons", type=int, required=True, metavar="N")
    p.add_argument("--nlayers", type=int, required=True, metavar="L")
    p.add_argument("--block", type=int, default=16, metavar="B", help="Kronecker block")

    p = family("rmat", "stochastic Kronecker (R-MAT) layers with power-law degrees")
    p.add_argument(
        "--layers",
        required=True,
        help="widths, e.g. 1024-1024-1024 or 784-300-100 (the R-MAT "
        "grid is the next power of 2; edges outside are drawn again)",
    )
    p.add_argument("--density", type=finite, required=True)
    p.add_argument("--initiator", default="0.57,0.19,0.19,0.05", help="a,b,c,d probabilities")

    p = family("random", "Erdos-Renyi layers by density or SET epsilon")
    p.add_argument("--layers", required=True, help="widths, e.g. 784-300-100-10")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--density", type=finite, help="edge density of every layer")
    how.add_argument("--epsilon", type=finite, help="SET epsilon")

    p = family("erk", "Erdos-Renyi-Kernel: a total density allocated across the layers (RigL)")
    p.add_argument("--layers", required=True, help="widths, e.g. 784-300-100-10")
    p.add_argument("--density", type=finite, required=True, help="total edge density")

    p = family("ertl", "Ertl's partitioned equal fan-in layers")
    p.add_argument("--layers", required=True, help="widths, e.g. 784-300-100-10")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--fan-in", help="inputs per neuron: one value or one per layer")
    how.add_argument("--density", type=finite, help="fan-in = density x the layer's inputs")

    p = family("dense", "fully connected layers, the baseline")
    p.add_argument("--layers", required=True, help="widths, e.g. 784-300-100-10")

    an = sub.add_parser(
        "analyze",
        help="degrees, dead neurons and exact path counts",
        description="PATH: any network graphnn.load reads: a .npz (network, training export "
        "or checkpoint), a directory of layer*.mtx or of challenge n{N}-l{k}.tsv files, or "
        "neuron{N}.tar.gz.",
    )
    an.add_argument("path", type=Path, metavar="PATH")
    an.add_argument("--first", type=int, metavar="K", help="analyse layers 1..K only")
    an.add_argument("--json", action="store_true", help="print JSON")
    an.add_argument("--degree-plot", type=Path, metavar="FILE.png", help="degree histograms")
    an.add_argument("--path-plot", type=Path, metavar="FILE.png", help="path-count histogram")
    an.add_argument(
        "--summary-plot",
        type=Path,
        metavar="FILE.png",
        help="density, mean degree and dead neurons per layer (for deep networks)",
    )
    add_overwrite(an)

    dr = sub.add_parser(
        "draw",
        help="draw a network as a layered graph, or its adjacency when too large",
        description="Networks of at most 5,000 edges are drawn as layered graphs; larger ones "
        "as the adjacency matrix of each layer (at most 8 layers, evenly chosen), every pixel "
        "coloured by its share of stored edges.",
    )
    dr.add_argument("path", type=Path, metavar="PATH")
    dr.add_argument("--out", type=Path, required=True, metavar="FILE.png")
    dr.add_argument("--first", type=int, metavar="K", help="draw layers 1..K only")
    add_overwrite(dr)

    cv = sub.add_parser(
        "convert", help="the same as 'graphnn convert'", description="see graphnn convert --help"
    )
    cv.add_argument("path", type=Path, metavar="IN")
    cv.add_argument("out", type=Path, metavar="OUT")
    _format_arg(cv, default=None)
    cv.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    return parser


def _format_arg(p, default="npz"):
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=default,
        help="npz: one native file; mtx: a directory of Matrix Market files, one per layer; "
        "tsv: the challenge layout n{N}-l{k}.tsv (square layers of one width)"
        + ("" if default else "; default: npz when OUT ends in .npz"),
    )


def _family_params(a):
    """The arguments of ``topologies.generate`` from a family's flags."""
    if a.family == "radixnet":
        return {
            "radices": [ints(g, "--radices") for g in a.radices.split(";")],
            "kron": ints(a.kron, "--kron") if a.kron else None,
            "D": a.D,
            "trim": a.trim,
        }
    if a.family == "kronecker":
        if a.neurons < 2 or a.nlayers < 1:
            raise GraphnnError(
                f"--neurons must be at least 2 and --nlayers at least 1, got {a.neurons} and "
                f"{a.nlayers}"
            )
        return {"sizes": [a.neurons] * (a.nlayers + 1), "block": a.block}
    params = {"sizes": widths(a.layers)}
    if a.family in ("random", "erk", "rmat", "ertl"):
        params["density"] = a.density
    if a.family == "random":
        params["epsilon"] = a.epsilon
    if a.family == "rmat":
        params["initiator"] = floats(a.initiator, "--initiator")
    if a.family == "ertl" and a.fan_in is not None:
        fans = ints(a.fan_in, "--fan-in")
        params["fan_in"] = fans if len(fans) > 1 else fans[0]
    return params


def _output_path(out, fmt):
    """``out`` itself, or ``out/network.npz`` for a directory given with --format npz."""
    if fmt == "npz" and not str(out).lower().endswith(".npz"):
        return out / "network.npz"
    return out


def load_layers(path, first=None):
    """The network at ``path`` (any format ``graphnn.load`` reads), cut to its first layers."""
    if first is not None and first < 1:
        raise GraphnnError(f"--first must be at least 1, got {first}")
    layers = load(path).layers
    return layers[:first] if first else layers


def cmd_generate(a):
    from topologies import generate

    where = _output_path(a.out, a.format)
    if a.format == "npz":
        if where != a.out:  # --out DIR: the folder is ours to make
            a.out.mkdir(parents=True, exist_ok=True)
        check_output(where, "--out", a.overwrite)
    else:
        check_folder(a.out, "--out", a.overwrite)
    net = generate(a.family, seed=a.seed, progress=sys.stderr.isatty(), **_family_params(a))
    net.metadata["command"] = " ".join(["graphnn", *sys.argv[1:]])
    where.parent.mkdir(parents=True, exist_ok=True)
    save(net, where, a.format)
    print(
        f"{a.family}: widths {widths_text(net.sizes)}, {sum(net.nnz):,} edges in "
        f"{len(net)} layers -> {where}"
    )
    return SUCCESS


def _fmt_paths(r):
    if r["paths_max"] is None:
        return f"2^{r['paths_min_log2']:.1f} .. 2^{r['paths_max_log2']:.1f}"
    return f"{r['paths_min']:.6g} .. {r['paths_max']:.6g}"


def cmd_analyze(a):
    check_outputs(a, ["--degree-plot", "--path-plot", "--summary-plot"], inputs=["PATH"])
    from topologies.analysis import analyze

    layers = load_layers(a.path, a.first)
    report, counts = analyze(layers, progress=sys.stderr.isatty())
    per_layer = report["per_layer"]
    if a.degree_plot:
        from topologies.plots import degree_histogram

        degree_histogram(layers, a.degree_plot)
    if a.path_plot:
        if counts is None:
            raise GraphnnError("too many input/output pairs to plot; use --first or fewer inputs")
        from topologies.plots import path_histogram

        path_histogram(counts, a.path_plot)
    if a.summary_plot:
        from graphnn.plotting import save_figure
        from topologies.plots import plot_layer_summary

        save_figure(plot_layer_summary(layers), a.summary_plot)
    if a.json:
        print(json.dumps(report, indent=2))
        return SUCCESS
    print(
        f"{len(layers)} layers, widths {widths_text(report['sizes'])}, "
        f"{sum(report['nnz']):,} edges, {report['params']:,} parameters"
    )
    print(
        f"{'layer':>5} {'shape':>13} {'nnz':>10} {'density':>8} {'in-degree':>16} "
        f"{'out-degree':>16} {'dead in/out':>11}"
    )
    for k, s in enumerate(per_layer, start=1):
        deg = lambda d: f"{d['min']}/{d['mean']:.1f}/{d['max']}"  # noqa: E731
        print(
            f"{k:>5} {s['shape'][0]:>6}x{s['shape'][1]:<6} {s['nnz']:>10,} "
            f"{s['density']:>8.4f} {deg(s['in_degree']):>16} {deg(s['out_degree']):>16} "
            f"{s['dead_inputs']:>5}/{s['dead_outputs']:<5}"
        )
    print(
        f"paths per input/output pair: {_fmt_paths(report)}"
        f"{'' if report['exact'] else ' (float64, not exact)'}; connected pairs "
        f"{report['connected_fraction']:.4%}; all pairs equal: {report['symmetric']}"
    )
    return SUCCESS


def cmd_draw(a):
    check_outputs(a, ["--out"], inputs=["PATH"])
    from topologies.plots import MAX_DRAWN_EDGES, draw_network, plot_spy

    layers = load_layers(a.path, a.first)
    if sum(W.nnz for W in layers) <= MAX_DRAWN_EDGES:
        draw_network(layers, a.out, title=f"{a.path.name}: {len(layers)} layers")
        print(f"wrote {a.out}")
        return SUCCESS
    from graphnn.plotting import save_figure

    fig = plot_spy(layers)
    fig.suptitle(f"{a.path.name}: {len(layers)} layers (adjacency: too many edges for a graph)")
    save_figure(fig, a.out)
    print(f"wrote {a.out} (the adjacency of each layer: more than {MAX_DRAWN_EDGES:,} edges)")
    return SUCCESS


def cmd_convert(a):
    from .convert import convert

    return convert(a.path, a.out, a.format, a.overwrite)


def main(argv, prog="graphnn topo"):
    actions = {"generate": cmd_generate, "analyze": cmd_analyze, "draw": cmd_draw}
    actions["convert"] = cmd_convert
    return run(_parser(prog), argv, lambda args: actions[args.action](args))
