"""``graphnn experiment``: the source papers' experiments, one command each.

* ``redistribution``: every redistribution algorithm at every density and seed, with the
  neuron- and parameter-equivalent dense baselines of each density (Figures 2 and 3 of the
  weight-redistribution paper; :mod:`graphnn.training.redistribution_experiment`);
* ``pruning``: one-shot and iterative pruning of a trained dense net, retrained, with the
  supermask (Alford et al., Figure 7; :mod:`graphnn.training.pruning_experiment`);
* ``topology``: RadiX-Net against random sparse layers (Alford et al., Figure 9;
  :mod:`graphnn.training.topology_experiment`).

Each writes a markdown table (mean and standard deviation over the seeds) and figures. Results
are saved after every run, so ``--resume`` continues a killed experiment where it stopped."""

import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..errors import GraphnnError
from ..io import atomic_write
from ..training.data import load_dataset
from ..training.experiments import (
    RunLog,
    unconverged_note,
)
from ..training.pruning import RETRAIN_MODES
from ..training.pruning_experiment import (
    METHODS,
    plot_pruning,
    pruning_table,
    run_pruning_experiment,
)
from ..training.redistribution import ALGORITHMS
from ..training.redistribution_experiment import (
    plot_redistribution,
    redistribution_table,
    run_redistribution_experiment,
)
from ..training.topology_experiment import (
    PARTS,
    check_sweeps,
    plot_topology,
    run_topology_experiment,
    topology_table,
)
from ..training.trainer import TrainConfig
from ._common import (
    SUCCESS,
    ArgumentParser,
    add_backend,
    add_data_dir,
    add_dataset,
    add_early_stopping,
    add_overwrite,
    add_pruning_schedule,
    add_seed,
    check_folder,
    finite,
    floats,
    ints,
    run,
    widths,
)
from .train import DEFAULT_LAYERS


def _common(sp, name, epochs):
    """The arguments every experiment takes."""
    add_dataset(sp, what="digits: built in, offline, 64-300-100-10 (default); the papers' "
                "numbers are MNIST's, 784-300-100-10 (read from --data-dir)")  # fmt: skip
    add_data_dir(sp)
    sp.add_argument("--limit", type=int, metavar="N", help="at most N training rows")
    sp.add_argument("--layers", help="widths (default: the dataset's default for graphnn train)")
    sp.add_argument("--epochs", type=int, default=epochs, help="training epochs of every run")
    sp.add_argument("--batch-size", type=int, default=64)
    sp.add_argument("--lr", type=finite, default=3e-3)
    add_early_stopping(sp)
    add_seed(sp)
    sp.add_argument("--seeds", type=int, default=1, metavar="K", help="seeds --seed .. --seed+K-1")
    add_backend(sp)
    add_overwrite(sp)
    sp.add_argument(
        "--resume",
        action="store_true",
        help="continue the experiment in --out: the runs in its results.json are kept",
    )
    sp.add_argument(
        "--out",
        type=Path,
        default=Path(f"experiment-{name}"),
        metavar="DIR",
        help="where results.md, results.json and the PNGs go",
    )


def _parser(prog):
    p = ArgumentParser(
        prog=prog,
        description="Rerun the source papers' experiments: every run is saved as it ends "
        "(--resume continues a killed experiment), then a results.md table and PNG figures.",
    )
    sub = p.add_required_subparsers("experiment")
    r = sub.add_parser(
        "redistribution",
        help="compare the redistribution algorithms (weight-redistribution paper, Figs. 2-3)",
    )
    _common(r, "redistribution", 100)
    r.add_argument("--densities", default="0.1,0.06,0.03")
    r.add_argument(
        "--algorithms", default="all", help=f"comma-separated, or all ({', '.join(ALGORITHMS)})"
    )
    r.add_argument(
        "--damping", type=finite, default=1e-4, help="WoodFisher/WoodTaylor damping lambda"
    )
    pr = sub.add_parser(
        "pruning",
        help="prune a trained dense net one-shot and iteratively, then retrain (Alford et al., "
        "Fig. 7)",
        description="Train the dense net, prune it to every --sparsities one-shot and "
        "iteratively (Zhu-Gupta, a prune every --prune-every steps), record the pruned "
        "accuracy, then retrain the pruned structure (--retrain); Zhou et al.'s supermask of "
        "the trained net beside them.",
    )
    _common(pr, "pruning", 60)
    pr.add_argument(
        "--sparsities",
        default="0.5,0.75,0.9,0.95,0.99",
        metavar="S,...",
        help="fractions of the edges removed (the paper's by default)",
    )
    pr.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated of {', '.join(METHODS)}"
    )
    pr.add_argument(
        "--retrain",
        default="random",
        help=f"comma-separated retraining modes of {', '.join(RETRAIN_MODES)} (random: fresh "
        "init; rewind: lottery-ticket initial weights; signconst: initial signs, one "
        "magnitude per layer)",
    )
    add_pruning_schedule(pr)
    pr.add_argument(
        "--dense-output",
        action="store_true",
        help="never prune the output layer (as RadiX-Nets keep it dense); --sparsities are then "
        "the other layers'",
    )
    t = sub.add_parser(
        "topology",
        help="RadiX-Net against random sparse layers of the same shape (Alford et al., Fig. 9)",
        description="Train RadiX-Nets and random sparse nets of the same shape, and the dense "
        "net: with fixed neurons and 1/k of the connections (--connections), and with the "
        "first hidden layer k times wider at the dense net's connection count (--width). "
        "The output layer stays dense. RadiX-Nets run where one has the shape (for "
        "LeNet-300-100, k = 2, 5, 10).",
    )
    _common(t, "topology", 60)
    t.add_argument(
        "--connections", default="2,10,20,100", metavar="K,...",
        help="factors k of the fixed-neuron sweep (1/k of the connections); empty to skip",
    )  # fmt: skip
    t.add_argument(
        "--width", default="2,10,100", metavar="K,...",
        help="factors k of the fixed-connection sweep (k times wider); empty to skip",
    )  # fmt: skip
    return p


def main(argv, prog="graphnn experiment"):
    return run(_parser(prog), argv, _main)


def _choices(text, valid, flag):
    values = [v for v in text.replace(" ", "").split(",") if v]
    for v in values:
        if v not in valid:
            raise GraphnnError(f"{flag}: {v!r} is not valid; choose from {', '.join(valid)}")
    if not values:
        raise GraphnnError(f"{flag} must not be empty")
    return values


def _main(args):
    if args.seeds < 1:
        raise GraphnnError(f"--seeds must be at least 1, got {args.seeds}")
    if args.epochs < 1:
        raise GraphnnError(f"--epochs must be at least 1, got {args.epochs}")
    if not args.resume:
        check_folder(args.out, "--out", args.overwrite)
    if args.patience < 1:
        raise GraphnnError(f"--patience must be at least 1, got {args.patience}")
    plan = {"redistribution": _redistribution_plan, "pruning": _pruning_plan,
            "topology": _topology_plan}[args.experiment](args)  # fmt: skip
    data = load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed, limit=args.limit,
                        label_column=args.label_column or "label")  # fmt: skip
    default = DEFAULT_LAYERS.get(data.name, f"{data.n_features}-300-100-{data.n_classes}")
    sizes = widths(default if args.layers is None else args.layers)
    binary = data.name == "higgs"
    if sizes[0] != data.n_features or sizes[-1] != (1 if binary else data.n_classes):
        raise GraphnnError(
            f"--layers {'-'.join(map(str, sizes))} does not fit {data.name}: it needs "
            f"{data.n_features} inputs and {1 if binary else data.n_classes} outputs"
        )
    plan["check"](sizes)
    seeds = list(range(args.seed, args.seed + args.seeds))
    settings = {
        "dataset": data.name, "sizes": sizes, "epochs": args.epochs,
        "batch_size": args.batch_size, "lr": args.lr, "limit": args.limit,
        "split_seed": args.seed, **plan["settings"],
    }  # fmt: skip
    if args.early_stopping:  # as results made before early stopping existed otherwise
        settings.update(early_stopping=True, patience=args.patience)
    log = RunLog(args.out, settings, resume=args.resume)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      early_stopping=args.early_stopping, patience=args.patience)  # fmt: skip
    common = dict(loss="sigmoid" if binary else "softmax", backend=args.backend)
    args.title = _title(args, data, sizes, len(seeds))
    table, figures = plan["run"](data, sizes, seeds, cfg, log, common)
    note = unconverged_note(table)
    spread = "mean +- sample sd [95% t-interval] over the seeds" if len(seeds) > 1 else "one seed"
    with atomic_write(args.out / "results.md", "w") as f:
        f.write(f"# {args.title}: test accuracy\n\n{spread}\n\n{table}{note}")
    print(table + note)
    if note:
        print(
            f"warning: some runs had not converged after {args.epochs} epochs (cells marked "
            "\u2020): raise --epochs, or add --early-stopping with a larger --epochs",
            file=sys.stderr,
        )
    print(f"wrote {args.out}/results.md, results.json, {', '.join(figures)}")
    return SUCCESS


def _title(args, data, sizes, seeds):
    """What every figure and table of the experiment is titled with."""
    epochs = f"{args.epochs} epochs" + (" at most, early stopping" if args.early_stopping else "")
    return (
        f"{args.experiment.capitalize()} on {data.name}, {'-'.join(map(str, sizes))}, {epochs}, "
        f"{seeds} seed{'s' * (seeds > 1)}"
    )


def _bar():
    """Progress over the runs, with an ETA: a bar on a terminal, else a line per run on stderr
    (for logs). Returns ``(bar, label)``: ``label(text, total)`` names the run that starts
    (of ``total``) and counts the one before as done."""
    tty = sys.stderr.isatty()
    bar = tqdm(desc="runs", unit="run", disable=not tty)
    started, t0 = [], time.monotonic()

    def label(text, total):
        if started:
            bar.update()
        bar.total = total
        started.append(text)
        bar.set_postfix_str(text)
        if not tty:
            done, spent = len(started) - 1, time.monotonic() - t0
            eta = f", ETA {tqdm.format_interval(spent / done * (total - done))}" if done else ""
            print(f"run {len(started)}/{total}: {text}{eta}", file=sys.stderr, flush=True)

    return bar, label


def _redistribution_plan(args):
    densities = floats(args.densities, "--densities")
    algs = list(ALGORITHMS) if args.algorithms == "all" else _choices(
        args.algorithms, ALGORITHMS, "--algorithms"
    )  # fmt: skip

    def go(data, sizes, seeds, cfg, log, common):
        bar, label = _bar()
        run_redistribution_experiment(data, sizes, densities, algs, seeds, cfg, log,
                                      damping=args.damping,
                                      dense_output=common["loss"] == "sigmoid", progress=label,
                                      **common)  # fmt: skip
        bar.close()
        plot_redistribution(log.runs, algs, densities, args.out, args.title)
        return redistribution_table(log.runs, algs, densities), [
            "accuracy.png",
            "induced_loss.png",
        ]

    return {"settings": {"damping": args.damping}, "run": go, "check": lambda sizes: None}


def _pruning_plan(args):
    sparsities = floats(args.sparsities, "--sparsities")
    for s in sparsities:
        if not 0 < s < 1:
            raise GraphnnError(f"--sparsities must be in (0, 1), got {s:g}")
    methods = _choices(args.methods, METHODS, "--methods")
    retrain = _choices(args.retrain, RETRAIN_MODES, "--retrain")

    def go(data, sizes, seeds, cfg, log, common):
        binary = common["loss"] == "sigmoid"  # HIGGS: its one-output layer stays dense
        bar, label = _bar()
        run_pruning_experiment(data, sizes, sparsities, methods, retrain, seeds, cfg, log,
                               prune_epochs=args.prune_epochs, prune_every=args.prune_every,
                               scope=args.scope, dense_output=args.dense_output or binary,
                               progress=label, **common)  # fmt: skip
        bar.close()
        plot_pruning(log.runs, sparsities, methods, retrain, args.out / "accuracy.png",
                     args.title)  # fmt: skip
        return pruning_table(log.runs, sparsities, methods, retrain), ["accuracy.png"]

    settings = {"prune_epochs": args.prune_epochs, "prune_every": args.prune_every,
                "scope": args.scope, "retrain": retrain,
                "dense_output": args.dense_output}  # fmt: skip
    return {"settings": settings, "run": go, "check": lambda sizes: None}


def _topology_plan(args):
    sweeps = {}
    for part in PARTS:
        text = getattr(args, part)
        if text.strip():
            sweeps[part] = ints(text, f"--{part}")
            if any(k <= 1 for k in sweeps[part]):
                raise GraphnnError(f"--{part}: every factor must be above 1 (1 is the dense net)")
    if not sweeps:
        raise GraphnnError("--connections and --width are both empty: nothing to run")

    def go(data, sizes, seeds, cfg, log, common):
        bar, label = _bar()
        run_topology_experiment(data, sizes, sweeps, seeds, cfg, log, progress=label, **common)
        bar.close()
        plot_topology(log.runs, sweeps, args.out / "accuracy.png", args.title)
        return topology_table(log.runs, sweeps), ["accuracy.png"]

    return {"settings": {}, "run": go, "check": lambda sizes: check_sweeps(sizes, sweeps)}
