"""``graphnn convert IN OUT``: a network from any format graphnn reads into npz, mtx or tsv."""

from pathlib import Path

from ..errors import GraphnnError
from ..io import FORMATS, infer_format, load, save
from ._common import SUCCESS, ArgumentParser, apart, claim_output, run, widths_text


def _parser(prog):
    p = ArgumentParser(
        prog=prog,
        description="Convert a network between formats, losslessly (every edge, explicit zeros "
        "included, with biases, activations and metadata). IN is anything graphnn.load reads: "
        "a .npz (network, training export or checkpoint), a directory of layer*.mtx, a "
        "challenge directory of n{N}-l{k}.tsv/.mtx, or the official neuron{N}.tar.gz.",
        epilog="Example: graphnn convert neuron1024.tar.gz net1024.npz",
    )
    p.add_argument("path", type=Path, metavar="IN")
    p.add_argument("out", type=Path, metavar="OUT", help="FILE.npz, or a directory (mtx, tsv)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="npz: one native file; mtx: a directory of Matrix Market files plus network.json "
        "(scipy.io.mmread reads each); tsv: the challenge layout n{N}-l{k}.tsv (square layers "
        "of one width). Default: npz when OUT ends in .npz",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    return p


def convert(src, out, fmt, overwrite=False):
    fmt = infer_format(out, fmt)
    apart(out, "OUT", src, "IN")
    if out.resolve().parent.is_dir():
        claim_output(out, "OUT")
    if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
        raise GraphnnError(f"OUT {out} exists: give another path, or --overwrite to replace it")
    net = load(src)
    save(net, out, fmt)
    print(f"{src} -> {out} ({fmt}): widths {widths_text(net.sizes)}, {sum(net.nnz):,} edges")
    return SUCCESS


def main(argv, prog="graphnn convert"):
    return run(_parser(prog), argv, lambda a: convert(a.path, a.out, a.format, a.overwrite))
