"""``graphnn train``: train a sparse MLP from the command line."""

import json
import sys
from pathlib import Path

import numpy as np

from ..backends import get_backend
from ..errors import GraphnnError
from ..io import atomic_write
from ..plotting import figure, plot_layer_density, plot_training_curves, save_figure
from ..training.data import load_dataset
from ..training.model import TOPOLOGIES, SparseMLP
from ..training.redistribution import ALGORITHMS, Redistributor
from ..training.trainer import TrainConfig, baseline_models, fit
from ._common import (
    SUCCESS,
    ArgumentParser,
    add_backend,
    add_data_dir,
    add_dataset,
    add_early_stopping,
    add_overwrite,
    add_seed,
    check_outputs,
    claim_output,
    finite,
    ints,
    run,
    widths,
    widths_text,
)

DEFAULTS = TrainConfig()  # one source of defaults for the command line, fit and the estimator
DEFAULT_LAYERS = {"digits": "64-300-100-10", "higgs": "21-256-256-256-1"}


def _parser(prog):
    p = ArgumentParser(
        prog=prog,
        description="Train a sparse MLP: sparse forward and backward passes (no dense weight or "
        "mask anywhere), Ertl initialisation, Adam or SGD with state per nonzero.",
        epilog="Example: graphnn train --dataset digits --density 0.1 --epochs 20 "
        "--baselines --plot curves.png",
    )
    add_dataset(p)
    add_data_dir(p)
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="read only the first N rows of the training data (digits, HIGGS and a data file "
        "without X_test: of all the rows, before the test split is drawn)",
    )
    p.add_argument(
        "--layers",
        help="widths, e.g. 784-300-100-10 (default: 64-300-100-10 for "
        "digits, 784-300-100-10 for images, 21-256-256-256-1 for higgs)",
    )
    p.add_argument("--density", type=finite, default=0.1, help="edge density")
    p.add_argument(
        "--topology",
        default="random",
        metavar="FAMILY|PATH",
        help=f"a family ({', '.join(TOPOLOGIES)}; see graphnn topo generate --help), or any "
        "network file graphnn.load reads, whose structure is trained (its widths define the "
        "net)",
    )
    p.add_argument("--radices", help="RadiX-Net radix lists, e.g. 10,10 (topology radixnet)")
    p.add_argument("--kron", help="RadiX-Net Kronecker list, e.g. 8,3,1,1")
    p.add_argument(
        "--dense-output",
        action="store_true",
        help="a dense classifier layer after the family's layers (the family is drawn for the "
        "widths before it: a RadiX-Net ends at its last hidden layer, as in Alford et al.)",
    )
    p.add_argument("--init", choices=("ertl", "kaiming"), default="ertl")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--lr", type=finite, default=DEFAULTS.lr, help="learning rate")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="learning-rate schedule",
    )
    p.add_argument("--weight-decay", type=finite, default=0.0)
    p.add_argument("--augment", action="store_true", help="random affine image augmentation")
    add_early_stopping(p)
    add_seed(p)
    add_overwrite(p)
    p.add_argument(
        "--out",
        type=Path,
        metavar="FILE.npz",
        help="export the trained network (weights, biases, activations, settings, test "
        "accuracy); read it with graphnn evaluate, graphnn topo analyze, graphnn.load",
    )
    p.add_argument("--metrics-out", type=Path, metavar="FILE.json")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="loss and accuracy curves")
    p.add_argument("--checkpoint", type=Path, metavar="DIR", help="save a checkpoint every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint DIR")
    p.add_argument(
        "--redistribution",
        choices=ALGORITHMS,
        default="none",
        help="dynamic sparse training: move a fraction of the weights every "
        "--redistribute-every epochs (random = SET, gradient = RigL, "
        "gradient-global, loss = Ertl, woodfisher, woodtaylor; default none)",
    )
    p.add_argument("--redistribute-every", type=int, default=1, metavar="T")
    p.add_argument(
        "--alpha",
        "--redistribution-fraction",
        dest="alpha",
        type=finite,
        default=DEFAULTS.alpha,
        help="the redistribution fraction: the share of each layer's weights moved at the "
        "first redistribution, cosine-annealed to 0 at 3/4 of training (not a weight decay: "
        "that is --weight-decay)",
    )
    p.add_argument("--block-size", type=int, default=34, help="WoodFisher block size")
    p.add_argument(
        "--damping",
        type=finite,
        default=1e-4,
        help="WoodFisher damping lambda (WoodTaylor is sensitive to it)",
    )
    p.add_argument(
        "--baselines",
        action="store_true",
        help="also train the neuron- and parameter-equivalent dense nets",
    )
    add_backend(p)
    return p


def _topology(args, data):
    """The family name, or the network at --topology PATH; and the widths to train."""
    from topologies import FAMILIES

    from ..io import load

    default = DEFAULT_LAYERS.get(data.name, f"{data.n_features}-300-100-{data.n_classes}")
    n_out = 1 if data.name == "higgs" else data.n_classes
    if args.topology in FAMILIES:
        sizes, where = widths(default if args.layers is None else args.layers), "--layers"
        topology = args.topology
    else:
        if not Path(args.topology).exists():
            raise GraphnnError(
                f"--topology {args.topology}: neither a family ({', '.join(FAMILIES)}) nor an "
                "existing network file"
            )
        if args.layers is not None:
            raise GraphnnError("--layers comes from the --topology file: leave it out")
        topology = load(args.topology)
        sizes, where = topology.sizes, f"--topology {args.topology}"
    if sizes[0] != data.n_features or sizes[-1] != n_out:
        raise GraphnnError(
            f"{where} has widths {widths_text(sizes)}, which do not fit {data.name}: the "
            f"first must be its {data.n_features} features and the last its {n_out} outputs"
        )
    return topology, sizes


def _plot(runs, path, args):
    sparse = "dense" if args.topology == "dense" else f"{args.topology}, density {args.density:g}"
    redist = "" if args.redistribution == "none" else f", {args.redistribution} redistribution"
    ran = len(runs["sparse"]["epochs"])
    kept = runs["sparse"].get("best_epoch")
    ran = f"{ran} epochs" + (f" (early stop: the weights of epoch {kept} kept)" if kept else "")
    title = f"{args.dataset}: {sparse}{redist}, {ran}, seed {args.seed}"
    if args.redistribution == "none":
        save_figure(plot_training_curves(runs, title=title), path)
        return
    fig, axes = figure(1, 3, figsize=(16, 4))  # and how the redistribution moved the density
    plot_training_curves(runs, title=title, axes=axes[:2])
    plot_layer_density(next(iter(runs.values())), ax=axes[2])
    fig.tight_layout()
    save_figure(fig, path)


def _ignored(args, topology):
    """``(flag, what it needs)`` of the options given that this run does not use."""
    checks = [
        ("--patience", args.patience != DEFAULTS.patience, not args.early_stopping,
         "--early-stopping"),
        ("--label-column", args.label_column is not None,
         not str(args.dataset).lower().endswith(".csv"), "a .csv --dataset"),
        ("--alpha/--redistribution-fraction", args.alpha != DEFAULTS.alpha,
         args.redistribution == "none", "--redistribution"),
        ("--redistribute-every", args.redistribute_every != DEFAULTS.redistribute_every,
         args.redistribution == "none", "--redistribution"),
        ("--radices/--kron", bool(args.radices or args.kron), topology != "radixnet",
         "--topology radixnet"),
    ]  # fmt: skip
    return [(flag, needs) for flag, given, unused, needs in checks if given and unused]


def main(argv, prog="graphnn train"):
    return run(_parser(prog), argv, _main)


def _main(args):
    from ..training.trainer import CHECKPOINT, read_checkpoint

    if args.resume and args.checkpoint is None:
        raise GraphnnError("--resume needs --checkpoint DIR")
    if args.checkpoint is not None:
        if args.checkpoint.resolve().parent.is_dir():
            claim_output(args.checkpoint, "--checkpoint")
        exists = (args.checkpoint / CHECKPOINT).exists()
        if args.resume and not exists:
            raise GraphnnError(f"--resume: {args.checkpoint} holds no {CHECKPOINT} to resume")
        if args.resume:
            read_checkpoint(args.checkpoint)  # a damaged checkpoint fails now, not after the data
        if exists and not args.resume and not args.overwrite:
            raise GraphnnError(
                f"--checkpoint {args.checkpoint} holds a run already: --resume to continue it, "
                "--overwrite to start afresh there, or another folder"
            )
    check_outputs(args, ["--out", "--metrics-out", "--plot"], inputs=["--topology", "--checkpoint"])
    # every setting is checked before the (possibly long) dataset load
    if args.limit is not None and args.limit < 1:
        raise GraphnnError(f"--limit must be at least 1, got {args.limit}")
    TrainConfig.from_mapping(vars(args)).validate()
    Redistributor(args.redistribution, alpha=args.alpha, every=args.redistribute_every,
                  block_size=args.block_size, damping=args.damping)  # fmt: skip
    if not 0 < args.density <= 1:
        raise GraphnnError(f"--density must be in (0, 1], got {args.density}")
    if args.out is not None and not str(args.out).endswith(".npz"):
        raise GraphnnError(f"--out {args.out}: the export is a .npz file")
    data = load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed, limit=args.limit,
                        label_column=args.label_column or "label")  # fmt: skip
    topology, sizes = _topology(args, data)
    density = 1.0 if topology == "dense" else args.density
    if not isinstance(topology, str):  # a network file: its own density
        density = sum(topology.nnz) / sum(a * b for a, b in zip(sizes, sizes[1:]))
    binary = data.name == "higgs"
    model = SparseMLP(
        sizes,
        density=density,
        topology=topology,
        init=args.init,
        loss="sigmoid" if binary else "softmax",
        dense_output=binary or args.dense_output,
        radices=[ints(g, "--radices") for g in args.radices.split(";")] if args.radices else None,
        kron=ints(args.kron, "--kron") if args.kron else None,
        backend=get_backend(args.backend).name,
    )
    cfg = TrainConfig.from_mapping(vars(args))
    try:
        model.build(cfg.seed)
    except GraphnnError as e:
        if args.topology == "radixnet" and not model.dense_output and "widths" in str(e):
            hint = "the RadiX-Net then ends at the last hidden layer, a dense layer after it"
            raise GraphnnError(f"{e}, or add --dense-output ({hint})") from None
        raise
    progress = sys.stderr.isatty()
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    log(
        f"{data.name}: {len(data.y_train):,} train / {len(data.y_val):,} validation / "
        f"{len(data.y_test):,} test; {args.topology} {widths_text(sizes)} at density "
        f"{density:.4g}" + (", the output layer dense" if model.dense_output else "")
    )
    for flag, needs in _ignored(args, topology):
        log(f"warning: {flag} is ignored without {needs}")
    for k, layer in enumerate(model.layers_[:-1]):
        fed = np.bincount(layer.indices, minlength=layer.n_out) if layer.sparse else None
        if fed is not None and (dead := int((fed == 0).sum())):
            log(f"warning: {dead} of the {layer.n_out} neurons of hidden layer {k + 1} have no "
                "input edge (the structure leaves them out; a RadiX-Net trimmed to the "
                "dataset's inputs does)")  # fmt: skip
    runs = {
        "sparse": fit(
            model,
            data,
            cfg,
            checkpoint=args.checkpoint,
            resume=args.resume,
            progress=progress,
            log=log,
        )
    }
    if args.baselines:
        for name, base in baseline_models(model).items():
            log(f"{name}: {widths_text(base.sizes)}")
            runs[name] = fit(base, data, cfg, progress=progress, log=log)
    metrics = dict(runs["sparse"])
    if args.baselines:
        metrics["baselines"] = {k: v for k, v in runs.items() if k != "sparse"}
    if args.metrics_out:
        with atomic_write(args.metrics_out, "w") as f:
            json.dump(metrics, f, indent=2)
    if args.out:
        from ..io import save_npz

        meta = {
            "source": "graphnn train",
            # a data file by its absolute path: evaluate and prune find it from any folder
            "dataset": str(Path(data.name).resolve()) if data.classes else data.name,
            "limit": args.limit,
            "seed": args.seed,
            **({"label_column": args.label_column} if args.label_column else {}),
            **({"classes": list(data.classes)} if data.classes else {}),
            "test_accuracy": metrics["test_accuracy"],
            "training": metrics["config"],
        }
        save_npz(model.to_network(meta), args.out)
        log(f"exported the trained network to {args.out}")
    if args.plot:
        _plot(runs, args.plot, args)
    auc = any(m.get("test_auc") is not None for m in runs.values())
    print(f"{'model':<28} {'widths':<22} {'params':>10} {'test acc':>9}"
          + (f" {'test AUC':>9}" if auc else "") + f" {'seconds':>8}")  # fmt: skip
    for name, m in runs.items():
        secs = sum(r["seconds"] for r in m["epochs"])
        print(
            f"{name:<28} {'-'.join(map(str, m['sizes'])):<22} {m['params']:>10,} "
            f"{m['test_accuracy']:>9.4f}"
            + (f" {m['test_auc']:>9.4f}" if auc else "")
            + f" {secs:>8.1f}"
        )
    return SUCCESS
