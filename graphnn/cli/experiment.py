"""``graphnn experiment redistribution``: every redistribution algorithm at every density, with
the neuron- and parameter-equivalent dense baselines; a markdown table and plots like Figures 2
and 3 of the weight-redistribution paper."""

import json
import sys
from pathlib import Path

from ..errors import GraphnnError
from ..io import atomic_write
from ..plotting import figure, save_figure
from ..training.data import DATASETS, load_dataset
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
    r.add_argument(
        "--out",
        type=Path,
        default=Path("experiment-redistribution"),
        metavar="DIR",
        help="where results.md, results.json and the PNGs go",
    )
    return p


def _plot(results, densities, baselines, out):
    n = len(densities)
    fig, axes = figure(1, n, figsize=(5 * n, 4), squeeze=False)
    for ax, d in zip(axes[0], densities):
        for alg, m in results[d].items():
            ax.plot(
                [r["epoch"] for r in m["epochs"]],
                [r["val_accuracy"] for r in m["epochs"]],
                label=alg,
            )
        for name, m in baselines.items():
            ax.plot(
                [r["epoch"] for r in m["epochs"]],
                [r["val_accuracy"] for r in m["epochs"]],
                "--",
                color="0.4" if "neuron" in name else "0.7",
                label=name,
            )
        ax.set(title=f"density {d:g}", xlabel="epoch", ylabel="validation accuracy")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "accuracy.png")

    fig, axes = figure(1, n, figsize=(5 * n, 4), squeeze=False)
    for ax, d in zip(axes[0], densities):
        for alg, m in results[d].items():
            steps = [r["redistribution"] for r in m["epochs"] if "redistribution" in r]
            if steps:
                induced = [max(s["loss_after"] - s["loss_before"], 1e-8) for s in steps]
                ax.plot([s["epoch"] for s in steps], induced, marker="o", ms=3, label=alg)
        ax.set(
            title=f"density {d:g}", xlabel="epoch", ylabel="induced loss (floor 1e-8)", yscale="log"
        )
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "induced_loss.png")


def _table(results, densities, baselines):
    head = "| algorithm | " + " | ".join(f"density {d:g}" for d in densities) + " |"
    lines = [head, "|" + "---|" * (len(densities) + 1)]
    algs = list(next(iter(results.values())))
    for alg in algs:
        cells = [f"{results[d][alg]['test_accuracy']:.4f}" for d in densities]
        lines.append(f"| {alg} | " + " | ".join(cells) + " |")
    for name, m in baselines.items():
        cell = f"{m['test_accuracy']:.4f} ({'-'.join(map(str, m['sizes']))})"
        lines.append(f"| {name} | " + " | ".join([cell] * len(densities)) + " |")
    return "\n".join(lines) + "\n"


def main(argv, prog="graphnn experiment"):
    return run(_parser(prog), argv, _main)


def _main(args):
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
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    results = {}
    for d in densities:
        results[d] = {}
        for alg in algs:
            log(f"density {d:g}, {alg}")
            cfg = TrainConfig(
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                seed=args.seed,
                redistribution=alg,
                damping=args.damping,
            )
            model = SparseMLP(
                sizes, density=d, loss="sigmoid" if binary else "softmax", dense_output=binary,
                backend=args.backend,
            )  # fmt: skip
            results[d][alg] = fit(model, data, cfg)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    reference = SparseMLP(
        sizes, density=max(densities), loss="sigmoid" if binary else "softmax",
        dense_output=binary, backend=args.backend,
    ).build(args.seed)  # fmt: skip
    baselines = {name: fit(m, data, cfg) for name, m in baseline_models(reference).items()}
    args.out.mkdir(parents=True, exist_ok=True)
    table = _table(results, densities, baselines)
    with atomic_write(args.out / "results.md", "w") as f:
        f.write(
            f"# Redistribution on {data.name}, {'-'.join(map(str, sizes))}, "
            f"{args.epochs} epochs: test accuracy\n\n{table}"
        )
    with atomic_write(args.out / "results.json", "w") as f:
        json.dump(
            {"results": {str(d): r for d, r in results.items()}, "baselines": baselines},
            f,
            indent=2,
        )
    _plot(results, densities, baselines, args.out)
    print(table)
    print(f"wrote {args.out}/results.md, results.json, accuracy.png, induced_loss.png")
    return SUCCESS
