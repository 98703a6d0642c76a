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
from .experiments import (
    accuracy_band,
    describe,
    flag,
    paired_difference,
    sample_stats,
    select,
)
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


def _results(runs, method, sparsity, key):
    """Per seed, ``{"seed", "test_accuracy", "curve"}`` of ``key`` (``pruned`` or a retraining
    mode; the curve, of the retraining's validation accuracy, is empty for ``pruned``)."""
    out = []
    for r in select(runs, method=method, sparsity=sparsity):
        acc = r["pruned_accuracy"] if key == "pruned" else r["retrained"].get(key)
        if acc is not None:
            curve = [] if key == "pruned" else r["curves"].get(key, [])
            out.append({"seed": r["seed"], "test_accuracy": acc, "curve": curve})
    return out


def _accuracies(runs, method, sparsity, key):
    """The test accuracies over seeds of ``key`` (``pruned`` or a retraining mode)."""
    return np.array([r["test_accuracy"] for r in _results(runs, method, sparsity, key)])


def _series(runs, sparsities, method, key):
    """(sparsities, means, 95% t-interval half-widths) of ``key`` over seeds."""
    xs, means, halves = [], [], []
    for s in sparsities:
        acc = _accuracies(runs, method, s, key)
        if acc.size:
            _, mean, _, half = sample_stats(acc)
            xs.append(s)
            means.append(mean)
            halves.append(0.0 if np.isnan(half) else half)
    return np.array(xs), np.array(means), np.array(halves)


def _lines(methods, retrain):
    """(method, key, label) of every curve: the pruned accuracy of each method, then each
    method's retrained accuracy in every mode."""
    out = [(m, "pruned", f"{m}, pruned" if m != "supermask" else "supermask (no training)")
           for m in methods]  # fmt: skip
    out += [(m, mode, f"{m}, retrained ({mode})") for m in methods if m != "supermask"
            for mode in retrain]  # fmt: skip
    return out


def pruning_table(runs, sparsities, methods, retrain):
    """Markdown: test accuracy (mean +- sample sd [95% t-interval] over seeds) per curve and
    sparsity, the dense net's accuracy first, then each cell's per-seed paired difference to
    the dense net; retrained cells whose training had not converged are flagged."""
    dense = select(runs, method="dense")
    lines = []
    if dense:
        acc = [r["pruned_accuracy"] for r in dense]
        lines.append(f"Dense: {describe(acc)}{flag(dense)}\n")
    head = "| | " + " | ".join(f"{s:.0%}" for s in sparsities) + " |"
    rule = "|" + "---|" * (len(sparsities) + 1)
    lines += [head, rule]
    diffs = [head, rule]
    baseline = [{"seed": r["seed"], "test_accuracy": r["pruned_accuracy"]} for r in dense]
    for method, key, label in _lines(methods, retrain):
        cells, deltas = {}, {}
        for s in sparsities:
            results = _results(runs, method, s, key)
            if results:
                acc = [r["test_accuracy"] for r in results]
                cells[s] = describe(acc) + flag(results, lambda r: r["curve"])
                delta = paired_difference(results, baseline)
                if delta.size:
                    deltas[s] = describe(delta, signed=True)
        lines.append(f"| {label} | " + " | ".join(cells.get(s, "-") for s in sparsities) + " |")
        diffs.append(f"| {label} | " + " | ".join(deltas.get(s, "-") for s in sparsities) + " |")
    out = "\n".join(lines) + "\n"
    if dense:
        out += "\nDifference to the dense net, paired by seed\n\n" + "\n".join(diffs) + "\n"
    return out


def plot_pruning(runs, sparsities, methods, retrain, path, title=None):
    """Test accuracy against sparsity per curve (error bars: 95% t-intervals of the mean over
    seeds; ``title`` above the plot's own; the x axis is ``1 -
    sparsity`` on a log scale, labelled as sparsity), the dense net as a reference line: one
    colour per method, dashed with open markers before retraining, one line style per
    retraining mode."""
    from ..plotting import figure, save_figure

    fig, ax = figure(figsize=(7, 4.5))
    colour = {m: f"C{i}" for i, m in enumerate(METHODS)}  # one colour per method
    style = {"pruned": "--", "random": "-", "rewind": "-.", "signconst": ":"}
    for method, key, label in _lines(methods, retrain):
        xs, means, halves = _series(runs, sparsities, method, key)
        if xs.size:
            low, high = accuracy_band(means, halves)
            ax.errorbar(1 - xs, means, yerr=[means - low, high - means], ls=style[key],
                        color=colour[method], marker="o", ms=4, capsize=3, label=label,
                        mfc="white" if key == "pruned" else None)  # fmt: skip
    dense = [r["pruned_accuracy"] for r in select(runs, method="dense")]
    if dense:
        ax.axhline(np.mean(dense), color="0.3", ls=":", label="dense")
    ticks = sorted({1 - s for s in sparsities})
    ax.set_xlim(ticks[-1] * 1.25, ticks[0] / 1.25)  # high sparsity on the right
    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{1 - t:.0%}" for t in ticks])
    ax.minorticks_off()
    seeds = len({r["seed"] for r in runs})
    what = "test accuracy against sparsity" + (
        f": means and 95% t-intervals over {seeds} seeds" if seeds > 1 else ""
    )
    ax.set(xlabel="sparsity", ylabel="test accuracy", title=f"{title}\n{what}" if title else what)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
