"""Figures through matplotlib's object API, and figures saved atomically.

Nothing here selects a matplotlib backend or touches pyplot's state: a figure is a plain
``matplotlib.figure.Figure`` (drawn by Agg when saved), so a notebook keeps its own backend and
its open figures. Plot functions take an optional ``ax=`` and return what they drew on; the
command line saves the figures to files.
"""

import io

from .io import atomic_write

__all__ = [
    "figure",
    "save_figure",
    "plot_training_curves",
    "plot_confusion_matrix",
    "plot_layer_density",
    "plot_challenge_rows",
]


def figure(nrows=1, ncols=1, *, figsize=None, dpi=100, squeeze=True, ax=None, **subplots):
    """``(fig, axes)``: a new Figure with a grid of axes (as ``pyplot.subplots`` would give,
    without pyplot; ``sharey=True`` and the like pass on), or, given ``ax``, that axes' figure
    and ``ax`` itself."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze, **subplots)


def save_figure(fig, path):
    """Write ``fig`` as a PNG to ``path`` atomically and return ``path``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    with atomic_write(path) as f:
        f.write(buf.getvalue())
    return path


def plot_training_curves(runs, *, title=None, axes=None):
    """Training loss, and training (dashed) and test (solid) accuracy per epoch of one or more
    runs (``{name: metrics}`` as :func:`graphnn.training.fit` returns them; validation
    accuracy stands in for test where a run recorded none), with each redistribution step
    marked on its run's curves and, for a run that stopped early, the epoch whose weights it
    kept (a dotted line). ``axes`` is a pair of axes to draw on; returns the Figure."""
    from matplotlib.ticker import MaxNLocator

    fig, (loss_ax, acc_ax) = figure(1, 2, figsize=(11, 4)) if axes is None else (
        axes[0].figure, axes
    )  # fmt: skip
    held_out = "test"
    for name, m in runs.items():
        epochs = m["epochs"]
        ep = [r["epoch"] for r in epochs]
        line = loss_ax.plot(ep, [r["train_loss"] for r in epochs], label=name)[0]
        colour = line.get_color()
        key = "test_accuracy" if epochs and epochs[0].get("test_accuracy") is not None else None
        if key is None:
            key, held_out = "val_accuracy", "validation"
        acc = [r[key] for r in epochs]
        acc_ax.plot(ep, acc, color=colour, label=f"{name}: {held_out}")
        acc_ax.plot(ep, [r["train_accuracy"] for r in epochs], "--", color=colour, lw=1,
                    label=f"{name}: train")  # fmt: skip
        if m.get("stopped_early") is not None:  # early stopping: the epoch whose weights it kept
            for ax in (loss_ax, acc_ax):
                ax.axvline(m["best_epoch"], color=colour, ls=":", lw=1)
            loss_ax.plot([], [], ":", color=colour, label=f"{name}: kept epoch {m['best_epoch']}")
        moved = [i for i, r in enumerate(epochs)  # steps that moved weights (dense: none)
                 if sum((r.get("redistribution") or {}).get("removed", [])) > 0]  # fmt: skip
        if moved:
            loss_ax.plot([ep[i] for i in moved], [epochs[i]["train_loss"] for i in moved], "v",
                         color=colour, ms=5)  # fmt: skip
            acc_ax.plot([ep[i] for i in moved], [acc[i] for i in moved], "v",
                        color=colour, ms=5, label=f"{name}: redistribution")  # fmt: skip
            loss_ax.lines[-1].set_label(f"{name}: redistribution step")
    loss_ax.set(xlabel="epoch", ylabel="training loss", yscale="log", title="training loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title=f"accuracy: {held_out} (solid), train "
               "(dashed)")  # fmt: skip
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    # the names on the loss panel, where the curves leave room; the accuracy panel's line
    # styles are in its title
    loss_ax.legend(fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(y_true, y_pred, *, labels=None, ax=None):
    """The confusion matrix (rows: true class, columns: predicted), each row normalised to
    the share of its class, with the counts written in the cells. Returns the Axes."""
    import numpy as np

    fig, ax = figure(figsize=(5.5, 4.8), ax=ax)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.unique(np.concatenate([y_true, y_pred])) if labels is None else np.asarray(labels)
    index = {v: i for i, v in enumerate(labels.tolist())}
    counts = np.zeros((labels.size, labels.size), np.int64)
    np.add.at(counts, ([index[v] for v in y_true.tolist()], [index[v] for v in y_pred.tolist()]), 1)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if labels.size <= 20:
        for i in range(labels.size):
            for j in range(labels.size):
                if counts[i, j]:
                    ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=9,
                            color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(labels.size), labels.tolist())
        ax.set_yticks(range(labels.size), labels.tolist())
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set(xlabel="predicted class", ylabel="true class",
           title=f"accuracy {accuracy:.4f} on {counts.sum():,} samples")  # fmt: skip
    fig.colorbar(image, ax=ax, label="share of the true class")
    return ax


def plot_layer_density(metrics, *, ax=None):
    """Density of every layer at the end of each epoch of one run (``fit``'s metrics): flat for
    the layer-wise algorithms, moving for the global ones (``gradient-global``, WoodFisher).
    Returns the Axes."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = figure(figsize=(6, 3.8), ax=ax)
    sizes = metrics["sizes"]
    possible = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    epochs = [r for r in metrics["epochs"] if "layer_nnz" in r]
    ep = [r["epoch"] for r in epochs]
    for k, total in enumerate(possible):
        density = [r["layer_nnz"][k] / total for r in epochs]
        ax.plot(ep, density, marker="o", ms=3, label=f"layer {k + 1} ({sizes[k]}x{sizes[k + 1]})")
    ax.set(xlabel="epoch", ylabel="density", yscale="log", title="density per layer")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return ax


def plot_challenge_rows(result, *, ax=None):
    """A challenge run (``challenge.inference.InferenceResult``) layer by layer: the rows still
    computed, and the rows that stopped saturated at ``ymax`` (categories, no longer computed),
    on a symmetric-log axis (the counts fall by orders of magnitude). Returns the Axes."""
    fig, ax = figure(figsize=(7, 3.8), ax=ax)
    layers = range(1, result.n_layers + 1)
    ax.plot(layers, result.live_rows, label="rows computed (live, unsaturated)")
    ax.plot(layers, result.saturated_rows, label="rows stopped, saturated (categories)")
    ax.set(xlabel="layer", ylabel="rows", yscale="symlog",
           title=f"{result.n_images:,} images, {result.n_neurons:,} neurons: "
                 f"{result.categories.size:,} categories")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return ax
