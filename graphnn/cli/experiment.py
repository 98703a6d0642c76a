"""``graphnn experiment redistribution``: every redistribution algorithm at every density and
seed, with the neuron- and parameter-equivalent dense baselines of each density; a markdown table
(mean and standard deviation over the seeds) and plots like Figures 2 and 3 of the
weight-redistribution paper. Results are saved after every run, so ``--resume`` continues a
killed experiment where it stopped."""

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import GraphnnError
from ..io import atomic_write
from ..plotting import figure, save_figure
from ..training.data import DATASETS, load_dataset
from ..training.experiments import RunLog, mean_curve, select
from ..training.model import SparseMLP
from ..training.redistribution import ALGORITHMS
from ..training.trainer import TrainConfig, baseline_models, fit
from ._common import (
    SUCCESS,
    ArgumentParser,
    add_backend,
    add_data_dir,
    add_overwrite,
    add_seed,
    check_folder,
    finite,
    run,
    widths,
)
from .train import DEFAULT_LAYERS


def _parser(prog):
    p = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0].replace("``", "'"))
    sub = p.add_required_subparsers("experiment")
    r = sub.add_parser("redistribution", help="compare the redistribution algorithms")
    r.add_argument("--dataset", choices=DATASETS, default="digits")
    add_data_dir(r)
    r.add_argument("--limit", type=int, metavar="N", help="at most N training rows")
    r.add_argument("--layers", help="widths (default: the dataset's default for graphnn train)")
    r.add_argument("--densities", default="0.1,0.06,0.03")
    r.add_argument(
        "--algorithms", default="all", help=f"comma-separated, or all ({', '.join(ALGORITHMS)})"
    )
    r.add_argument("--epochs", type=int, default=20)
    r.add_argument("--batch-size", type=int, default=64)
    r.add_argument("--lr", type=finite, default=3e-3)
    add_seed(r)
    add_backend(r)
    add_overwrite(r)
    r.add_argument(
        "--damping", type=finite, default=1e-4, help="WoodFisher/WoodTaylor damping lambda"
    )
    r.add_argument("--seeds", type=int, default=1, metavar="K", help="seeds --seed .. --seed+K-1")
    r.add_argument(
        "--resume",
        action="store_true",
        help="continue the experiment in --out: the runs in its results.json are kept",
    )
    r.add_argument(
        "--out",
        type=Path,
        default=Path("experiment-redistribution"),
        metavar="DIR",
        help="where results.md, results.json and the PNGs go",
    )
    return p


BASELINES = ("dense-neuron-equivalent", "dense-parameter-equivalent")


def _colours(algorithms):
    """One colour per algorithm, the same in every figure; greys for the dense baselines."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    colours = {alg: cmap(i % 10) for i, alg in enumerate(ALGORITHMS)}
    colours.update({BASELINES[0]: "0.35", BASELINES[1]: "0.65"})
    return {alg: colours.get(alg, "black") for alg in algorithms}


def _plot(runs, algorithms, densities, out):
    from matplotlib.ticker import MaxNLocator

    names = [*algorithms, *BASELINES]
    colour = _colours(names)
    n = len(densities)
    fig, axes = figure(1, n, figsize=(5 * n, 4), squeeze=False)
    for ax, d in zip(axes[0], densities):
        for alg in names:
            group = select(runs, algorithm=alg, density=d)
            if not group:
                continue
            ep, mean, std = mean_curve(group, "val_accuracy")
            style = "--" if alg in BASELINES else "-"
            ax.plot(ep, mean, style, color=colour[alg], label=alg)
            ax.fill_between(ep, mean - std, mean + std, color=colour[alg], alpha=0.15, lw=0)
        ax.set(title=f"density {d:g}", xlabel="epoch", ylabel="validation accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    seeds = len({r["seed"] for r in runs})
    fig.suptitle(f"validation accuracy: mean and standard deviation over {seeds} seed"
                 f"{'s' * (seeds > 1)}")  # fmt: skip
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "accuracy.png")

    fig, axes = figure(1, n, figsize=(5 * n, 4), squeeze=False)
    for ax, d in zip(axes[0], densities):
        for alg in algorithms:
            group = select(runs, algorithm=alg, density=d)
            steps = [[s for s in (e.get("redistribution") for e in r["epochs"]) if s]
                     for r in group]  # fmt: skip
            if not group or not steps[0]:
                continue
            induced = np.array(
                [[max(s["loss_after"] - s["loss_before"], 1e-8) for s in run] for run in steps]
            )
            at = [s["epoch"] for s in steps[0]]
            mean, std = induced.mean(axis=0), induced.std(axis=0)
            # on a log axis a bar below zero has no end: the lower bar stops at the floor
            low = np.minimum(std, mean - 1e-8)
            ax.errorbar(at, mean, yerr=[low, std], marker="o", ms=3, capsize=2,
                        color=colour[alg], label=alg)  # fmt: skip
        ax.set(
            title=f"density {d:g}", xlabel="epoch", ylabel="induced loss (floor 1e-8)", yscale="log"
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle(f"loss added by each redistribution step: mean and standard deviation over "
                 f"{seeds} seed{'s' * (seeds > 1)}")  # fmt: skip
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "induced_loss.png")


def _table(runs, algorithms, densities):
    """Test accuracy, mean +- standard deviation over the seeds (and the parameters)."""
    head = "| algorithm | " + " | ".join(f"density {d:g}" for d in densities) + " |"
    lines = [head, "|" + "---|" * (len(densities) + 1)]
    for alg in [*algorithms, *BASELINES]:
        cells = []
        for d in densities:
            group = select(runs, algorithm=alg, density=d)
            acc = np.array([r["test_accuracy"] for r in group])
            extra = f", {'-'.join(map(str, group[0]['sizes']))}" if alg in BASELINES else ""
            cells.append(
                f"{acc.mean():.4f} +- {acc.std():.4f} ({group[0]['params']:,} params{extra})"
                if group
                else "-"
            )
        lines.append(f"| {alg} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv, prog="graphnn experiment"):
    return run(_parser(prog), argv, _main)


def _main(args):
    if args.seeds < 1:
        raise GraphnnError(f"--seeds must be at least 1, got {args.seeds}")
    if not args.resume:
        check_folder(args.out, "--out", args.overwrite)
    try:
        densities = [float(d) for d in args.densities.split(",")]
    except ValueError:
        raise GraphnnError(
            f"--densities must be numbers such as 0.1,0.03, got {args.densities!r}"
        ) from None
    algs = list(ALGORITHMS) if args.algorithms == "all" else args.algorithms.split(",")
    for a in algs:
        if a not in ALGORITHMS:
            raise GraphnnError(f"algorithm {a!r} is not valid; choose from {', '.join(ALGORITHMS)}")
    data = load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed, limit=args.limit)
    default = DEFAULT_LAYERS.get(data.name, f"{data.n_features}-300-100-{data.n_classes}")
    sizes = widths(default if args.layers is None else args.layers)
    binary = data.name == "higgs"
    seeds = list(range(args.seed, args.seed + args.seeds))
    settings = {
        "dataset": data.name, "sizes": sizes, "epochs": args.epochs,
        "batch_size": args.batch_size, "lr": args.lr, "damping": args.damping,
        "limit": args.limit,
    }  # fmt: skip
    log = RunLog(args.out, settings, resume=args.resume)
    todo = [(alg, d, s) for d in densities for s in seeds for alg in [*algs, *BASELINES]]
    todo = [(a, d, s) for a, d, s in todo if not log.done(algorithm=a, density=d, seed=s)]
    args.out.mkdir(parents=True, exist_ok=True)
    common = dict(loss="sigmoid" if binary else "softmax", dense_output=binary,
                  backend=args.backend)  # fmt: skip
    bar = tqdm(todo, desc="runs", unit="run", disable=not sys.stderr.isatty())
    for alg, d, seed in bar:
        bar.set_postfix_str(f"{alg}, density {d:g}, seed {seed}")
        cfg = TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
            redistribution="none" if alg in BASELINES else alg, damping=args.damping,
        )  # fmt: skip
        if alg in BASELINES:  # built from this density's sparse net, this seed
            sparse = SparseMLP(sizes, density=d, **common).build(seed)
            model = baseline_models(sparse)[alg]
        else:
            model = SparseMLP(sizes, density=d, **common)
        metrics = fit(model, data, cfg)
        log.add({"algorithm": alg, "density": d, "seed": seed,
                 "test_accuracy": metrics["test_accuracy"], "params": model.params,
                 "sizes": model.sizes, "epochs": metrics["epochs"]})  # fmt: skip
    runs = log.runs
    table = _table(runs, algs, densities)
    with atomic_write(args.out / "results.md", "w") as f:
        f.write(
            f"# Redistribution on {data.name}, {'-'.join(map(str, sizes))}, {args.epochs} "
            f"epochs, {len(seeds)} seed{'s' * (len(seeds) > 1)}: test accuracy\n\n{table}"
        )
    _plot(runs, algs, densities, args.out)
    print(table)
    print(f"wrote {args.out}/results.md, results.json, accuracy.png, induced_loss.png")
    return SUCCESS
