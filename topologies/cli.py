"""``graphnn topo``: generate, analyse and draw sparse topologies."""

import json
import sys
from pathlib import Path

from graphnn.cli import SUCCESS, ArgumentParser
from graphnn.errors import GraphnnError
from graphnn.network import Network

FORMATS = ("npz", "tsv", "mtx")


def _ints(text, name, sep=","):
    try:
        values = [int(v) for v in text.replace(" ", "").split(sep) if v]
    except ValueError:
        raise GraphnnError(f"{name} must be integers separated by '{sep}', got {text!r}") from None
    if not values:
        raise GraphnnError(f"{name} must not be empty")
    return values


def _floats(text, name):
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise GraphnnError(f"{name} must be numbers separated by ',', got {text!r}") from None


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
        p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
        p.add_argument(
            "--format",
            choices=FORMATS,
            default="npz",
            help="npz: native (DIR/network.npz); mtx: one Matrix Market file per "
            "layer; tsv: challenge layout n{N}-l{k}.tsv (square layers of one width)",
        )
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
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
        "rows permuted after the first cycle",
    )
    p.add_argument("--neurons", type=int, required=True, metavar="N")
    p.add_argument("--nlayers", type=int, required=True, metavar="L")
    p.add_argument("--block", type=int, default=16, metavar="B", help="Kronecker block (16)")

    p = family("rmat", "stochastic Kronecker (R-MAT) layers with power-law degrees")
    p.add_argument("--layers", required=True, help="widths (powers of 2), e.g. 1024-1024-1024")
    p.add_argument("--density", type=float, required=True)
    p.add_argument("--initiator", default="0.57,0.19,0.19,0.05", help="a,b,c,d probabilities")

    p = family("random", "Erdos-Renyi layers by density or SET epsilon; ERK allocation")
    p.add_argument("--layers", required=True, help="widths, e.g. 784-300-100-10")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--density", type=float, help="edge density of every layer (or total)")
    how.add_argument("--epsilon", type=float, help="SET epsilon")
    p.add_argument("--erk", action="store_true", help="ERK: allocate --density across layers")

    p = family("ertl", "Ertl's partitioned equal fan-in layers")
    p.add_argument("--layers", required=True, help="widths, e.g. 784-300-100-10")
    p.add_argument("--fan-in", required=True, help="inputs per neuron: one value or one per layer")

    p = family("dense", "fully connected layers, the baseline")
    p.add_argument("--layers", required=True, help="widths, e.g. 784-300-100-10")

    an = sub.add_parser(
        "analyze",
        help="degrees, dead neurons and exact path counts",
        description="PATH: a native .npz, a directory of layer*.mtx, a "
        "directory of challenge-layout n{N}-l{k}.tsv files, or neuron{N}.tar.gz.",
    )
    an.add_argument("path", type=Path, metavar="PATH")
    an.add_argument("--first", type=int, metavar="K", help="analyse layers 1..K only")
    an.add_argument("--json", action="store_true", help="print JSON")
    an.add_argument("--degree-plot", type=Path, metavar="FILE.png", help="degree histograms")
    an.add_argument("--path-plot", type=Path, metavar="FILE.png", help="path-count histogram")

    dr = sub.add_parser("draw", help="draw a small network as a layered PNG")
    dr.add_argument("path", type=Path, metavar="PATH")
    dr.add_argument("--out", type=Path, required=True, metavar="FILE.png")
    dr.add_argument("--first", type=int, metavar="K", help="draw layers 1..K only")
    return parser


def _sizes(text):
    return _ints(text.replace("x", "-"), "--layers", sep="-")


def _generate_layers(a):
    from . import erdos_renyi, ertl, kronecker, radixnet

    if a.family == "radixnet":
        lists = [_ints(g, "--radices") for g in a.radices.split(";")]
        kron = _ints(a.kron, "--kron") if a.kron else None
        return radixnet.radixnet(lists, kron, D=a.D, trim=a.trim)
    if a.family == "kronecker":
        if a.nlayers < 1:
            raise GraphnnError(f"--nlayers must be at least 1, got {a.nlayers}")
        return list(kronecker.challenge_layers(a.neurons, a.nlayers, block=a.block, seed=a.seed))
    if a.family == "rmat":
        init = _floats(a.initiator, "--initiator")
        return kronecker.rmat(_sizes(a.layers), a.density, initiator=init, seed=a.seed)
    if a.family == "random":
        return erdos_renyi.erdos_renyi(
            _sizes(a.layers), density=a.density, epsilon=a.epsilon, erk=a.erk, seed=a.seed
        )
    if a.family == "ertl":
        fans = _ints(a.fan_in, "--fan-in")
        return ertl.ertl(_sizes(a.layers), fans if len(fans) > 1 else fans[0], seed=a.seed)
    return erdos_renyi.dense(_sizes(a.layers))


def save_layers(layers, out, fmt, metadata):
    """Save as a Network (ReLU, zero bias) in ``fmt``; returns the path written."""
    import graphnn

    net = Network(layers, metadata=metadata)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "npz":
        graphnn.save_npz(net, out / "network.npz")
        return out / "network.npz"
    if fmt == "mtx":
        graphnn.save_mtx(net, out)
        return out
    from challenge.io import write_layer

    n = net.sizes[0]
    if any(s != n for s in net.sizes):
        raise GraphnnError(
            f"--format tsv is the challenge layout, for square layers of one width; these have "
            f"widths {net.sizes}: use npz or mtx"
        )
    for k, W in enumerate(net.layers, start=1):
        write_layer(W, out / f"n{n}-l{k}.tsv")
    return out


def load_layers(path, first=None):
    """The layers saved at ``path`` (npz, .mtx directory, challenge TSV directory or archive)."""
    import graphnn
    from challenge import io as cio

    path = Path(path)
    if not path.exists():
        raise GraphnnError(f"{path}: no such file or directory")
    if first is not None and first < 1:
        raise GraphnnError(f"--first must be at least 1, got {first}")
    if path.suffix == ".npz" or (path.is_dir() and any(path.glob("layer*.mtx"))):
        layers = graphnn.load(path).layers
        return layers[:first] if first else layers
    n_neurons, n_layers = cio.discover(path)
    return cio.read_layers(path, n_neurons, min(n_layers, first or n_layers))


def cmd_generate(a):
    layers = _generate_layers(a)
    meta = {"family": a.family, "seed": a.seed, "command": " ".join(sys.argv[1:])}
    where = save_layers(layers, a.out, a.format, meta)
    sizes = [layers[0].shape[0]] + [W.shape[1] for W in layers]
    print(
        f"{a.family}: widths {'-'.join(map(str, sizes))}, {sum(W.nnz for W in layers):,} "
        f"edges in {len(layers)} layers -> {where}"
    )
    return SUCCESS


def _fmt_paths(r):
    if r["paths_max"] is None:
        return f"2^{r['paths_min_log2']:.1f} .. 2^{r['paths_max_log2']:.1f}"
    return f"{r['paths_min']:.6g} .. {r['paths_max']:.6g}"


def cmd_analyze(a):
    from .analysis import analyze

    layers = load_layers(a.path, a.first)
    report, counts = analyze(layers)
    per_layer = report["per_layer"]
    if a.degree_plot:
        from .plots import degree_histogram

        degree_histogram(layers, a.degree_plot)
    if a.path_plot:
        if counts is None:
            raise GraphnnError("too many input/output pairs to plot; use --first or fewer inputs")
        from .plots import path_histogram

        path_histogram(counts, a.path_plot)
    if a.json:
        print(json.dumps(report, indent=2))
        return SUCCESS
    print(
        f"{len(layers)} layers, widths {'-'.join(map(str, report['sizes']))}, "
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
    from .plots import draw_network

    layers = load_layers(a.path, a.first)
    draw_network(layers, a.out, title=f"{a.path.name}: {len(layers)} layers")
    print(f"wrote {a.out}")
    return SUCCESS


def main(argv, prog="graphnn topo"):
    args = _parser(prog).parse_args(argv)
    return {"generate": cmd_generate, "analyze": cmd_analyze, "draw": cmd_draw}[args.action](args)
