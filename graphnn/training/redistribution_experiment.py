"""The weight-redistribution paper's experiment (Figures 2 and 3): every redistribution
algorithm at every density and seed, with the neuron- and parameter-equivalent dense baselines
of each density; test accuracy per epoch and the loss each redistribution step added.

From Python (the command line is ``graphnn experiment redistribution``)::

    from graphnn.training import TrainConfig, load_dataset
    from graphnn.training.experiments import RunLog
    from graphnn.training.redistribution_experiment import (
        redistribution_table, run_redistribution_experiment)

    data = load_dataset("digits")
    log = RunLog("exp-redistribution", {"note": "anything that must match on resume"})
    runs = run_redistribution_experiment(data, [64, 300, 100, 10], [0.03, 0.1],
                                         ["none", "set"], seeds=[0, 1],
                                         cfg=TrainConfig(epochs=20), log=log)
    print(redistribution_table(runs, ["none", "set"], [0.03, 0.1]))
"""

import dataclasses

import numpy as np

from ..backends import DEFAULT
from ..errors import GraphnnError
from ..plotting import figure, save_figure
from .experiments import (
    accuracy_band,
    describe,
    flag,
    mean_curve,
    paired_difference,
    sample_stats,
    select,
)
from .model import SparseMLP
from .redistribution import ALGORITHMS
from .trainer import baseline_models, fit

__all__ = [
    "BASELINES",
    "run_redistribution_experiment",
    "redistribution_table",
    "plot_redistribution",
]

BASELINES = ("dense-neuron-equivalent", "dense-parameter-equivalent")


def _colours(algorithms):
    """One colour per algorithm, the same in every figure; greys for the dense baselines."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    colours = {alg: cmap(i % 10) for i, alg in enumerate(ALGORITHMS)}
    colours.update({BASELINES[0]: "0.35", BASELINES[1]: "0.65"})
    return {alg: colours.get(alg, "black") for alg in algorithms}


def plot_redistribution(runs, algorithms, densities, out, title):
    """Write two figures into the folder ``out``. ``accuracy.png``: test accuracy per epoch,
    one panel per density on one y range;
    ``induced_loss.png``: the loss each redistribution step added, on a symmetric-log axis
    (a step may lower the loss). Bands and bars are 95% t-intervals of the mean over seeds."""
    from matplotlib.ticker import MaxNLocator

    names = [*algorithms, *BASELINES]
    colour = _colours(names)
    n = len(densities)
    seeds = len({r["seed"] for r in runs})
    spread = ": mean and 95% t-interval over the seeds" if seeds > 1 else ""
    fig, axes = figure(1, n, figsize=(5 * n, 4.2), squeeze=False, sharey=True)
    for ax, d in zip(axes[0], densities):
        for alg in names:
            group = select(runs, algorithm=alg, density=d)
            if not group:
                continue
            ep, mean, half = mean_curve(group, "test_accuracy")
            style = "--" if alg in BASELINES else "-"
            ax.plot(ep, mean, style, color=colour[alg], label=alg)
            ax.fill_between(ep, *accuracy_band(mean, half), color=colour[alg], alpha=0.15, lw=0)
        ax.set(title=f"density {d:g}", xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].set(ylabel="test accuracy", ylim=(0, 1.01))
    fig.suptitle(f"{title}\ntest accuracy per epoch{spread}")
    axes[0][0].legend(fontsize=9)
    fig.tight_layout()
    save_figure(fig, out / "accuracy.png")

    fig, axes = figure(1, n, figsize=(5 * n, 4.2), squeeze=False, sharey=True)
    largest = []
    for ax, d in zip(axes[0], densities):
        for alg in algorithms:
            group = select(runs, algorithm=alg, density=d)
            steps = [[s for s in (e.get("redistribution") for e in r["epochs"]) if s]
                     for r in group]  # fmt: skip
            if not group or not steps[0]:
                continue
            induced = np.array([[s["loss_after"] - s["loss_before"] for s in run] for run in steps])
            at = [s["epoch"] for s in steps[0]]
            stats = [sample_stats(column) for column in induced.T]
            mean = np.array([m for _, m, _, _ in stats])
            half = np.nan_to_num([h for *_, h in stats])
            largest.append(np.abs(mean).max(initial=0))
            ax.plot(at, mean, marker="o", ms=2.5, color=colour[alg], label=alg)
            ax.fill_between(at, mean - half, mean + half, color=colour[alg], alpha=0.15, lw=0)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set(title=f"density {d:g}", xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    # linear within a thousandth of the largest mean step, logarithmic beyond: three decades
    # stay readable, and a step that lowered the loss (negative) is drawn, not clipped
    top = max(largest, default=0)
    axes[0][0].set_yscale("symlog", linthresh=10 ** np.floor(np.log10(top)) / 1000 if top else 1e-6)
    axes[0][0].set_ylabel("loss after - loss before the step")
    fig.suptitle(f"{title}\nloss added by each redistribution step{spread}")
    if largest:
        axes[0][0].legend(fontsize=9)
    else:  # static training only: say so rather than leave empty axes
        for ax in axes[0]:
            ax.text(0.5, 0.5, "no redistribution steps", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    save_figure(fig, out / "induced_loss.png")


def redistribution_table(runs, algorithms, densities):
    """A markdown table: test accuracy per algorithm and density (mean +- sample sd [95%
    t-interval] over the seeds, the parameters), then each one's per-seed paired difference to
    static training (``none``), unconverged cells flagged."""
    head = "| algorithm | " + " | ".join(f"density {d:g}" for d in densities) + " |"
    rule = "|" + "---|" * (len(densities) + 1)
    lines, diffs = [head, rule], [head, rule]
    for alg in [*algorithms, *BASELINES]:
        cells, deltas = [], []
        for d in densities:
            group = select(runs, algorithm=alg, density=d)
            acc = [r["test_accuracy"] for r in group]
            extra = f", {'-'.join(map(str, group[0]['sizes']))}" if alg in BASELINES else ""
            cells.append(
                f"{describe(acc)}{flag(group)} ({group[0]['params']:,} params{extra})"
                if group
                else "-"
            )
            delta = paired_difference(group, select(runs, algorithm="none", density=d))
            deltas.append(describe(delta, signed=True) if delta.size else "-")
        lines.append(f"| {alg} | " + " | ".join(cells) + " |")
        if alg != "none":
            diffs.append(f"| {alg} | " + " | ".join(deltas) + " |")
    out = "\n".join(lines) + "\n"
    if len(diffs) > 2 and "none" in algorithms:
        out += (
            "\nDifference to static training (none), paired by seed: mean +- sd [95% "
            "t-interval]\n\n" + "\n".join(diffs) + "\n"
        )
    return out


def run_redistribution_experiment(data, sizes, densities, algorithms, seeds, cfg, log, *,
                                  damping=None, dense_output=False, loss="softmax",
                                  backend=DEFAULT, progress=None):  # fmt: skip
    """Every (algorithm, density, seed) not yet in ``log`` (a
    :class:`~graphnn.training.experiments.RunLog`), and the two dense baselines of each
    density and seed (:data:`BASELINES`, built from that density's sparse net by
    :func:`~graphnn.training.trainer.baseline_models`); a run record is added after each.
    ``data`` is a :class:`~graphnn.training.Dataset`, ``cfg`` the
    :class:`~graphnn.training.TrainConfig` of every run (its seed and redistribution replaced
    per run; ``damping`` replaces its damping when given). ``progress(label, total)`` is called
    before each run. Returns the log's runs.

    A record: ``algorithm``, ``density``, ``seed``, ``test_accuracy``, ``params``, ``sizes``
    and ``epochs`` (the trainer's per-epoch metrics, with each redistribution step's loss
    before and after)."""
    algorithms = list(algorithms)
    for alg in algorithms:
        if alg not in ALGORITHMS:
            raise GraphnnError(
                f"algorithm {alg!r} is not valid; choose from {', '.join(ALGORITHMS)}"
            )
    for d in densities:
        if not 0 < d <= 1:
            raise GraphnnError(f"every density must be in (0, 1], got {d!r}")
    todo = [(alg, d, s) for d in densities for s in seeds for alg in [*algorithms, *BASELINES]]
    todo = [(a, d, s) for a, d, s in todo if not log.done(algorithm=a, density=d, seed=s)]
    common = dict(loss=loss, backend=backend, dense_output=dense_output)
    extra = {} if damping is None else {"damping": damping}
    for alg, d, seed in todo:
        if progress is not None:
            progress(f"{alg}, density {d:g}, seed {seed}", len(todo))
        run_cfg = dataclasses.replace(
            cfg, seed=seed, redistribution="none" if alg in BASELINES else alg, **extra
        )
        if alg in BASELINES:  # built from this density's sparse net, this seed
            sparse = SparseMLP(sizes, density=d, **common).build(seed)
            model = baseline_models(sparse)[alg]
        else:
            model = SparseMLP(sizes, density=d, **common)
        metrics = fit(model, data, run_cfg)
        log.add({"algorithm": alg, "density": d, "seed": seed,
                 "test_accuracy": metrics["test_accuracy"], "params": model.params,
                 "sizes": model.sizes, "epochs": metrics["epochs"]})  # fmt: skip
    return log.runs
