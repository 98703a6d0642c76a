"""Alford et al.'s pruning experiment (Figure 7): train a dense net, prune it to each sparsity
one-shot and iteratively (Zhu-Gupta schedule, a prune every 200 steps), report the pruned net's
accuracy before retraining, then retrain the pruned structure (fresh initialisation; the
lottery-ticket rewind and sign-constant weights as options); with Zhou et al.'s supermask of
the trained dense net (no training at all) beside them.

References: S. Alford, R. Robinett, L. Milechin, J. Kepner, "Training Behavior of Sparse Neural
Network Topologies", IEEE HPEC 2019; M. Zhu and S. Gupta, "To prune, or not to prune", 2017;
H. Zhou et al., "Deconstructing Lottery Tickets: Zeros, Signs, and the Supermask", NeurIPS 2019.

From Python (the command line is ``graphnn experiment pruning``)::

    from graphnn.training import TrainConfig, load_dataset
    from graphnn.training.experiments import RunLog
    from graphnn.training.pruning_experiment import run_pruning_experiment, pruning_table

    data = load_dataset("digits")
    log = RunLog("exp-pruning", {"note": "anything that must match on resume"})
    runs = run_pruning_experiment(data, [64, 300, 100, 10], [0.5, 0.9], ["oneshot", "iterative"],
                                  ["random"], seeds=[0, 1], cfg=TrainConfig(epochs=20), log=log)
    print(pruning_table(runs, [0.5, 0.9], ["oneshot", "iterative"], ["random"]))
"""

import dataclasses

import numpy as np

from ..backends import DEFAULT
from ..errors import GraphnnError
from .experiments import mean_std, select
from .model import SparseMLP
from .pruning import (
    PRUNE_EPOCHS,
    RETRAIN_MODES,
    SCOPES,
    gradual_prune,
    prune_layers,
    retrain_model,
    supermask,
)
from .trainer import fit, read_checkpoint

__all__ = ["METHODS", "run_pruning_experiment", "pruning_table", "plot_pruning"]

METHODS = ("oneshot", "iterative", "supermask")


def _dense(sizes, loss, backend, dense_output):
    return SparseMLP(sizes, topology="dense", density=1.0, loss=loss, backend=backend,
                     dense_output=dense_output)  # fmt: skip


def _check(values, valid, name):
    if isinstance(values, str) or not all(v in valid for v in values) or not len(values):
        raise GraphnnError(f"{name} must be a non-empty list of {', '.join(valid)}; got {values!r}")
    return list(values)


def run_pruning_experiment(data, sizes, sparsities, methods, retrain, seeds, cfg, log, *,
                           prune_epochs=PRUNE_EPOCHS, prune_every=200, scope="layer",
                           dense_output=False, loss="softmax", backend=DEFAULT,
                           progress=None):  # fmt: skip
    """Every (method, sparsity, seed) not yet in ``log`` (a
    :class:`~graphnn.training.experiments.RunLog`, whose folder also holds the dense
    checkpoints); a run record is added after each. ``data`` is a
    :class:`~graphnn.training.Dataset`, ``cfg`` the :class:`~graphnn.training.TrainConfig` of
    every training run (its seed is replaced by each of ``seeds``). Returns the log's runs.

    The dense net of each seed is trained first (its checkpoint is kept in the log's folder,
    ``dense-seed<S>/``, so a resumed log does not train it again; a fresh log trains it
    afresh). Each pruned
    net starts from that trained net: ``oneshot`` prunes it once, ``iterative`` trains it
    ``prune_epochs`` more epochs along the Zhu-Gupta schedule (:func:`gradual_prune`),
    ``supermask`` keeps Zhou et al.'s large-final-same-sign mask (per layer). ``scope`` is
    :func:`prune_layers`'s: the same sparsity in every layer, or one magnitude threshold over
    all layers (``global``); with ``dense_output`` the output layer is never pruned (the
    sparsities are those of the other layers). The pruned accuracy is
    recorded, then (not for the supermask) the pruned structure is retrained for
    ``cfg.epochs`` epochs in every mode of ``retrain``. ``progress(label, total)`` is called
    before each run (``total``: the runs this call makes). Arguments are checked before any
    training.

    A record: ``method``, ``sparsity``, ``seed``, ``pruned_accuracy`` (test accuracy before
    retraining; the dense net's own for method ``dense``), ``params``, ``layer_nnz`` (edges
    per layer), ``retrained`` and ``curves`` (per retraining mode: test accuracy, validation
    accuracy per epoch), and for ``iterative`` the ``prunes`` made (step, sparsity)."""
    methods = _check(methods, METHODS, "methods")
    retrain = _check(retrain, RETRAIN_MODES, "retrain")
    if scope not in SCOPES:
        raise GraphnnError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    for s in sparsities:
        if not 0 < s < 1:
            raise GraphnnError(f"every sparsity must be in (0, 1), got {s!r}")
    for name, value in (("prune_epochs", prune_epochs), ("prune_every", prune_every)):
        if value < 1:
            raise GraphnnError(f"{name} must be at least 1, got {value}")
    folder = log.path.parent
    log.save()  # the settings, before the dense nets' checkpoints: a resume is checked against them
    total = sum(not log.done(method=m, sparsity=s, seed=seed)
                for seed in seeds for m in ("dense", *methods)
                for s in ((0.0,) if m == "dense" else sparsities))  # fmt: skip
    for seed in seeds:
        scfg = dataclasses.replace(cfg, seed=seed, redistribution="none")
        ck = folder / f"dense-seed{seed}"
        if progress and not log.done(method="dense", seed=seed):
            progress(f"dense, seed {seed}", total)
        dense = _dense(sizes, loss, backend, dense_output)
        metrics = fit(dense, data, scfg, checkpoint=ck, resume=log.resumed)
        if not log.done(method="dense", seed=seed):
            log.add({"method": "dense", "sparsity": 0.0, "seed": seed,
                     "pruned_accuracy": metrics["test_accuracy"], "retrained": {},
                     "params": metrics["params"], "layer_nnz": _nnz(dense),
                     "epochs": metrics["epochs"]})  # fmt: skip
        saved = read_checkpoint(ck)
        for method in methods:
            for s in sparsities:
                if log.done(method=method, sparsity=s, seed=seed):
                    continue
                if progress:
                    progress(f"{method} {s:g}, seed {seed}", total)
                model = _dense(sizes, loss, backend, dense_output).build(seed)
                model.load_state_arrays(saved["model"])
                if method == "supermask":
                    model = supermask(model, saved["initial"], s, seed)
                elif method == "oneshot":
                    prune_layers(model, s, scope=scope)
                else:
                    pruner = gradual_prune(model, data, scfg, s, epochs=prune_epochs,
                                           every=prune_every, scope=scope)  # fmt: skip
                record = {"method": method, "sparsity": s, "seed": seed,
                          "pruned_accuracy": model.score(data.X_test, data.y_test),
                          "params": model.params, "layer_nnz": _nnz(model), "retrained": {},
                          "curves": {}}  # fmt: skip
                if method == "iterative":
                    record["prunes"] = pruner.history
                for mode in retrain if method != "supermask" else ():
                    fresh = retrain_model(model, saved["initial"], mode, seed)
                    result = fit(fresh, data, scfg)
                    record["retrained"][mode] = result["test_accuracy"]
                    record["curves"][mode] = [e["val_accuracy"] for e in result["epochs"]]
                log.add(record)
    return log.runs


def _nnz(model):
    return [int(layer.nnz) for layer in model.layers_]


def _accuracies(runs, method, sparsity, key):
    """The test accuracies over seeds of ``key`` (``pruned`` or a retraining mode)."""
    group = select(runs, method=method, sparsity=sparsity)
    acc = [r["pruned_accuracy"] if key == "pruned" else r["retrained"].get(key) for r in group]
    return np.array([a for a in acc if a is not None])


def _series(runs, sparsities, method, key):
    """(sparsities, means, stds) of ``key`` (``pruned`` or a retrain mode) over seeds."""
    xs, means, stds = [], [], []
    for s in sparsities:
        acc = _accuracies(runs, method, s, key)
        if acc.size:
            xs.append(s)
            means.append(acc.mean())
            stds.append(acc.std())
    return np.array(xs), np.array(means), np.array(stds)


def _lines(methods, retrain):
    """(method, key, label) of every curve: the pruned accuracy of each method, then each
    method's retrained accuracy in every mode."""
    out = [(m, "pruned", f"{m}, pruned" if m != "supermask" else "supermask (no training)")
           for m in methods]  # fmt: skip
    out += [(m, mode, f"{m}, retrained ({mode})") for m in methods if m != "supermask"
            for mode in retrain]  # fmt: skip
    return out


def pruning_table(runs, sparsities, methods, retrain):
    """Markdown: test accuracy (mean +- std over seeds) per curve and sparsity, the dense net's
    accuracy first."""
    dense = np.array([r["pruned_accuracy"] for r in select(runs, method="dense")])
    lines = [f"Dense: {mean_std(dense)}\n"] if dense.size else []
    lines.append("| | " + " | ".join(f"{s:.0%}" for s in sparsities) + " |")
    lines.append("|" + "---|" * (len(sparsities) + 1))
    for method, key, label in _lines(methods, retrain):
        cell = {s: mean_std(acc) for s in sparsities
                if (acc := _accuracies(runs, method, s, key)).size}  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cell.get(s, "-") for s in sparsities) + " |")
    return "\n".join(lines) + "\n"


def plot_pruning(runs, sparsities, methods, retrain, path):
    """Test accuracy against sparsity per curve (seed error bars; the x axis is ``1 -
    sparsity`` on a log scale, labelled as sparsity), the dense net as a reference line: one
    colour per method, dashed with open markers before retraining, one line style per
    retraining mode."""
    from ..plotting import figure, save_figure

    fig, ax = figure(figsize=(7, 4.5))
    colour = {m: f"C{i}" for i, m in enumerate(METHODS)}  # one colour per method
    style = {"pruned": "--", "random": "-", "rewind": "-.", "signconst": ":"}
    for method, key, label in _lines(methods, retrain):
        xs, means, stds = _series(runs, sparsities, method, key)
        if xs.size:
            ax.errorbar(1 - xs, means, yerr=stds, ls=style[key], color=colour[method],
                        marker="o", ms=4, capsize=3, label=label,
                        mfc="white" if key == "pruned" else None)  # fmt: skip
    dense = [r["pruned_accuracy"] for r in select(runs, method="dense")]
    if dense:
        ax.axhline(np.mean(dense), color="0.3", ls=":", label="dense")
    ticks = sorted({1 - s for s in sparsities})
    ax.set_xlim(ticks[-1] * 1.25, ticks[0] / 1.25)  # high sparsity on the right
    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{1 - t:.0%}" for t in ticks])
    ax.minorticks_off()
    ax.set(xlabel="sparsity", ylabel="test accuracy", title="pruning: accuracy against sparsity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
