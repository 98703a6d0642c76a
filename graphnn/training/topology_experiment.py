"""Alford et al.'s topology experiment (Figure 9): RadiX-Net against random sparse layers of
the same shape, trained from scratch, in two sweeps of a factor ``k``:

* ``connections``: the widths stay (LeNet-300-100), every layer but the output keeps ``1/k`` of
  its connections (the dense output layer's stay: LeNet-300-100 at ``k = 100`` keeps 3,652 of
  266,200, about 1/73);
* ``width``: the first hidden layer is ``k`` times wider and the two layers beside it keep
  ``1/k`` of their possible connections, so every layer has the dense net's connection count.
  This is how their large RadiX-Net (``N = (10, 10)``, ``B = (8, 30, 1)``: 784-3000-100) is
  "ten times the size"; the other hidden layers keep their width.

``k = 1`` is the dense net. The output layer stays dense, as in the paper's RadiX-Nets. A
RadiX-Net of density ``1/k`` exists only where ``k**L`` divides the sparse widths (for
LeNet-300-100, ``k`` in 2, 5, 10); the random layers are run at every ``k``.

Reference: S. Alford, R. Robinett, L. Milechin, J. Kepner, "Training Behavior of Sparse Neural
Network Topologies", IEEE HPEC 2019.

From Python (the command line is ``graphnn experiment topology``)::

    from graphnn.training import TrainConfig, load_dataset
    from graphnn.training.experiments import RunLog
    from graphnn.training.topology_experiment import run_topology_experiment, topology_table

    sweeps = {"connections": [2, 10], "width": [10]}
    log = RunLog("exp-topology", {"note": "anything that must match on resume"})
    runs = run_topology_experiment(load_dataset("digits"), [64, 300, 100, 10], sweeps,
                                   seeds=[0], cfg=TrainConfig(epochs=20), log=log)
    print(topology_table(runs, sweeps))
"""

import dataclasses

import numpy as np

from topologies.erdos_renyi import dense, erdos_renyi_layer
from topologies.radixnet import radixnet_for_widths

from ..backends import DEFAULT
from ..errors import GraphnnError
from ..network import Network
from .experiments import (
    accuracy_band,
    describe,
    flag,
    paired_difference,
    sample_stats,
    select,
)
from .model import SparseMLP
from .trainer import fit

__all__ = [
    "PARTS",
    "COMPARED",
    "shape",
    "check_sweeps",
    "structure",
    "run_topology_experiment",
    "topology_table",
    "plot_topology",
]

PARTS = ("connections", "width")
COMPARED = ("radixnet", "random")  # the two families the experiment sets side by side


def shape(sizes, part, k):
    """The widths and the per-layer densities of sweep ``part`` at factor ``k``."""
    if part not in PARTS:
        raise GraphnnError(f"part {part!r} is not valid; choose from {', '.join(PARTS)}")
    if not isinstance(k, int | np.integer) or k < 1:
        raise GraphnnError(f"factor must be an integer of at least 1, got {k!r}")
    n = len(sizes) - 1
    if n < 2:
        raise GraphnnError(f"the topology experiment needs a hidden layer, got widths {sizes}")
    if part == "connections":
        return list(sizes), [1 / k] * (n - 1) + [1.0]
    wide = [sizes[0], sizes[1] * k, *sizes[2:]]
    return wide, [1 / k if i < 2 and i < n - 1 else 1.0 for i in range(n)]


def check_sweeps(sizes, sweeps):
    """A GraphnnError, before any training, if a sweep (``{part: factors}``) has a part or a
    factor :func:`shape` refuses."""
    for part, factors in sweeps.items():
        for k in factors:
            shape(sizes, part, k)


def structure(sizes, part, k, topology, seed):
    """The network of ``topology`` (``radixnet`` or ``random``) for sweep ``part`` at factor
    ``k`` (a GraphnnError where no RadiX-Net has that shape)."""
    wide, densities = shape(sizes, part, k)
    sparse = sum(d < 1 for d in densities)
    rng = np.random.default_rng([seed, 7])
    if topology == "radixnet":
        layers = radixnet_for_widths(wide[: sparse + 1], k)
    elif topology == "random":
        layers = [erdos_renyi_layer(a, b, d, seed=rng)
                  for a, b, d in zip(wide[:sparse], wide[1 : sparse + 1], densities)]  # fmt: skip
    else:
        raise GraphnnError(f"topology {topology!r} is not valid; choose from radixnet, random")
    layers += dense(wide[sparse:])
    return Network(layers, metadata={"family": topology, "part": part, "factor": k})


def _exists(sizes, part, k, topology):
    if topology == "random":
        return True
    try:
        structure(sizes, part, k, topology, 0)
    except GraphnnError:
        return False
    return True


def run_topology_experiment(data, sizes, sweeps, seeds, cfg, log, *, loss="softmax",
                            backend=DEFAULT, progress=None):  # fmt: skip
    """Train every (part, factor, topology, seed) of ``sweeps`` (``{part: factors}``) not yet
    in ``log`` (a :class:`~graphnn.training.experiments.RunLog`), adding a run record after
    each, and the dense net (part ``dense``, factor 1) once per seed; returns the log's runs.
    ``data`` is a :class:`~graphnn.training.Dataset`, ``cfg`` the
    :class:`~graphnn.training.TrainConfig` of every run (its seed replaced by each of
    ``seeds``); every shape is checked before any training. A record: ``part``, ``factor``,
    ``topology``, ``seed``, ``test_accuracy``, ``params``, ``connections``, ``layer_nnz``,
    ``sizes`` and the per-epoch ``epochs``.
    ``progress(label, total)`` is called before each run (``total``: the runs this call
    makes). Shapes no RadiX-Net has are skipped (see :func:`structure`)."""
    check_sweeps(sizes, sweeps)
    todo = []
    for seed in seeds:
        todo.append(("dense", 1, "dense", seed))
        for part, factors in sweeps.items():
            for k in factors:
                todo += [
                    (part, k, topo, seed) for topo in COMPARED if _exists(sizes, part, k, topo)
                ]
    todo = [t for t in todo if not log.done(part=t[0], factor=t[1], topology=t[2], seed=t[3])]
    for part, k, topo, seed in todo:
        if progress:
            label = "dense" if topo == "dense" else f"{part} x{k}, {topo}"
            progress(f"{label}, seed {seed}", len(todo))
        if topo == "dense":
            model = SparseMLP(sizes, topology="dense", density=1.0, loss=loss, backend=backend)
        else:
            net = structure(sizes, part, k, topo, seed)
            model = SparseMLP(net.sizes, topology=net, loss=loss, backend=backend)
        metrics = fit(model, data, dataclasses.replace(cfg, seed=seed))
        log.add({"part": part, "factor": k, "topology": topo, "seed": seed,
                 "test_accuracy": metrics["test_accuracy"], "params": model.params,
                 "connections": int(sum(layer.nnz for layer in model.layers_)),
                 "layer_nnz": [int(layer.nnz) for layer in model.layers_],
                 "sizes": model.sizes, "epochs": metrics["epochs"]})  # fmt: skip
    return log.runs


def _stats(runs):
    """Mean test accuracy and the half-width of its 95% t-interval (0 for one run)."""
    _, mean, _, half = sample_stats([r["test_accuracy"] for r in runs])
    return mean, 0.0 if np.isnan(half) else half


def topology_table(runs, sweeps):
    """Markdown: test accuracy (mean +- sample sd [95% t-interval] over seeds) per topology
    and factor, one table per sweep, with the widths and connections of each column, then each
    cell's per-seed paired difference to the dense net; unconverged cells flagged."""
    dense = select(runs, topology="dense")
    out = []
    if dense:
        acc = [r["test_accuracy"] for r in dense]
        out.append(f"Dense {'-'.join(map(str, dense[0]['sizes']))}: {describe(acc)}"
                   f"{flag(dense)} ({dense[0]['connections']:,} connections)\n")  # fmt: skip
    for part, factors in sweeps.items():
        title = ("fixed neurons, 1/k of the connections of every layer but the (dense) output"
                 if part == "connections"
                 else "fixed connections, first hidden layer k times wider")  # fmt: skip
        cols = [k for k in factors if select(runs, part=part, factor=k)]
        out.append(f"### {part}: {title}\n")
        head = "| topology | " + " | ".join(f"k = {k}" for k in cols) + " |"
        rule = "|" + "---|" * (len(cols) + 1)
        out += [head, rule]
        diffs = [head, rule]
        for topo in COMPARED:
            cells, deltas = [], []
            for k in cols:
                group = select(runs, part=part, factor=k, topology=topo)
                acc = [r["test_accuracy"] for r in group]
                cells.append(describe(acc) + flag(group) if group else "-")
                delta = paired_difference(group, dense)
                deltas.append(describe(delta, signed=True) if delta.size else "-")
            out.append(f"| {topo} | " + " | ".join(cells) + " |")
            diffs.append(f"| {topo} | " + " | ".join(deltas) + " |")
        shapes = [select(runs, part=part, factor=k)[0] for k in cols]
        out.append(
            "| widths | " + " | ".join("-".join(map(str, r["sizes"])) for r in shapes) + " |"
        )
        out.append("| connections | " + " | ".join(f"{r['connections']:,}" for r in shapes) + " |")
        if dense:
            out += ["", "Difference to the dense net, paired by seed\n", *diffs]
        out.append("")
    return "\n".join(out) + "\n"


def plot_topology(runs, sweeps, path, title=None):
    """Test accuracy against the factor (log axis), one panel per sweep on one y range,
    RadiX-Net and random with error bars (95% t-intervals of the mean over seeds), the dense
    net as a reference line; ``title`` above; saved to ``path``."""
    from ..plotting import figure, save_figure

    n = len(sweeps)
    fig, axes = figure(1, n, figsize=(5.5 * n, 4.3), squeeze=False, sharey=True)
    dense = select(runs, topology="dense")
    for ax, (part, factors) in zip(axes[0], sweeps.items()):
        for topo, marker in zip(COMPARED, "os"):
            ks = [k for k in factors if select(runs, part=part, factor=k, topology=topo)]
            if not ks:
                continue
            stats = np.array([_stats(select(runs, part=part, factor=k, topology=topo)) for k in ks])
            low, high = accuracy_band(stats[:, 0], stats[:, 1])
            ax.errorbar(ks, stats[:, 0], yerr=[stats[:, 0] - low, high - stats[:, 0]],
                        marker=marker, capsize=3, label=topo)  # fmt: skip
        if dense:
            ax.axhline(_stats(dense)[0], color="0.4", ls="--", label="dense")
        panel, xlabel = (
            ("fixed neurons", "k (1/k of the connections; the output layer stays dense)")
            if part == "connections"
            else ("fixed connections", "k (first hidden layer k times wider)")
        )  # fmt: skip
        ax.set(xscale="log", xlabel=xlabel, title=panel)
        ax.set_xticks(factors, [str(k) for k in factors])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    axes[0][0].set_ylabel("test accuracy")
    seeds = len({r["seed"] for r in runs})
    spread = f"means and 95% t-intervals over {seeds} seeds" if seeds > 1 else "one seed"
    fig.suptitle(f"{title}\ntest accuracy: {spread}" if title else f"test accuracy: {spread}")
    fig.tight_layout()
    return save_figure(fig, path)
