"""Pictures of a chain: the layered graph of a small network, degree and path histograms.

``plot_*`` draw with matplotlib's object API (no backend or pyplot state is touched) and return
the Figure or Axes; the other functions save them atomically to a path and return it.
"""

import numpy as np
import scipy.sparse as sp

from graphnn.errors import GraphnnError
from graphnn.plotting import save_figure

__all__ = [
    "draw_network",
    "degree_histogram",
    "path_histogram",
    "plot_degree_histogram",
    "plot_path_counts",
    "plot_spy",
    "plot_layer_summary",
]

MAX_DRAWN_EDGES = 5000


def _figure(width, height, layout=None):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout=layout)


def draw_network(layers, path, *, title=None):
    """Draw the layers as columns of neurons joined by their edges (small networks only)."""
    layers = [sp.coo_array(W) for W in layers]
    edges = sum(W.nnz for W in layers)
    if edges > MAX_DRAWN_EDGES:
        raise GraphnnError(
            f"{edges:,} edges are too many to draw as a graph (at most {MAX_DRAWN_EDGES:,}): "
            "plot_spy draws the adjacency of layers of any size"
        )
    sizes = [layers[0].shape[0]] + [W.shape[1] for W in layers]
    fig = _figure(1.2 + 1.6 * len(sizes), 1.0 + 0.25 * min(max(sizes), 40))
    ax = fig.add_subplot()
    ys = [np.linspace(1, 0, n) if n > 1 else np.array([0.5]) for n in sizes]
    for l, W in enumerate(layers):
        for i, j in zip(W.row, W.col):
            ax.plot([l, l + 1], [ys[l][i], ys[l + 1][j]], color="0.55", lw=0.5, zorder=1)
    for l, y in enumerate(ys):
        ax.scatter(
            np.full(y.size, l),
            y,
            s=max(4, 120 / max(1, y.size / 8)),
            zorder=2,
            color="tab:blue" if 0 < l < len(ys) - 1 else "tab:orange",
        )
    ax.set_xticks(range(len(sizes)), [f"{n}" for n in sizes])
    ax.set_yticks([])
    ax.set_xlabel("layer width")
    ax.set_title(title or f"{len(layers)} layers, {edges} edges")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return save_figure(fig, path)


def plot_degree_histogram(layers, *, ax=None, panels=8):
    """Degree distributions of every layer: in- and out-degree as step histograms, one panel
    per layer up to ``panels`` layers, else one panel each for the first, middle and last
    layers and one for all layers pooled. Log-log axes where the degrees are heavy-tailed
    (largest over median above 8, as in R-MAT), linear otherwise. Returns the Figure (``ax``
    draws the pooled distribution alone on a given axes)."""
    layers = [sp.csr_array(W) for W in layers]
    if ax is not None:
        _degree_panel(ax, layers, "all layers")
        return ax.figure
    if len(layers) <= panels:
        groups = [([W], f"layer {k + 1} ({W.shape[0]}x{W.shape[1]})") for k, W in
                  enumerate(layers)]  # fmt: skip
    else:
        mid = len(layers) // 2
        groups = [([layers[0]], "layer 1"), ([layers[mid]], f"layer {mid + 1}"),
                  ([layers[-1]], f"layer {len(layers)}"),
                  (layers, f"all {len(layers)} layers pooled")]  # fmt: skip
    cols = min(4, len(groups))
    rows = -(-len(groups) // cols)
    fig = _figure(3.4 * cols, 2.8 * rows)
    for k, (group, title) in enumerate(groups):
        _degree_panel(fig.add_subplot(rows, cols, k + 1), group, title, legend=k == 0)
    fig.tight_layout()
    return fig


def _degree_panel(ax, layers, title, legend=True):
    out_deg = np.concatenate([np.diff(W.indptr) for W in layers])
    in_deg = np.concatenate([np.bincount(W.indices, minlength=W.shape[1]) for W in layers])
    both = np.concatenate([out_deg, in_deg])
    top = int(both.max(initial=0))
    heavy = top > 8 * max(np.median(both), 1)
    if heavy:
        bins = np.unique(np.geomspace(1, top + 1, 30).astype(int)) - 0.5
    else:
        bins = np.arange(top + 2) - 0.5 if top < 60 else 40
    for deg, label in ((out_deg, "out-degree"), (in_deg, "in-degree")):
        if heavy:  # bins widen with the degree: count per unit degree keeps the shape
            hist, edges = np.histogram(deg, bins=bins)
            ax.stairs(hist / np.diff(edges), edges, lw=1.4, label=label)
        else:
            ax.hist(deg, bins=bins, histtype="step", lw=1.4, label=label)
    if heavy:
        ax.set(xscale="log", yscale="log")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("degree", fontsize=8)
    ax.set_ylabel("neurons per unit degree" if heavy else "neurons", fontsize=8)
    if legend:
        ax.legend(fontsize=7)


def degree_histogram(layers, path):
    """:func:`plot_degree_histogram` saved to ``path``."""
    return save_figure(plot_degree_histogram(layers), path)


def plot_path_counts(counts, *, ax=None, title="paths between input/output pairs"):
    """Histogram of the path counts of every (input, output) pair. Integer counts up to 60
    distinct values get a bar each; wider ranges get logarithmic bins that start at whole
    numbers (no empty bins between consecutive small integers), on a log axis. Returns the
    Axes."""
    counts = np.asarray(counts).ravel()
    if ax is None:
        ax = _figure(6, 3.5).add_subplot()
    zero = int((counts == 0).sum())
    pos = counts[counts > 0]
    values = np.unique(pos)
    if 0 < values.size <= 60:
        shares = [int((pos == v).sum()) for v in values]
        ax.bar([f"{v:.6g}" for v in values], shares, color="tab:blue")
        ax.tick_params(axis="x", labelsize=7, rotation=90 if values.size > 12 else 0)
        ax.set(xlabel="paths", ylabel="input/output pairs")
    elif pos.size:
        edges = np.unique(np.floor(np.geomspace(pos.min(), pos.max() + 1, 40)))
        hist, _ = np.histogram(pos, bins=edges)
        ax.stairs(hist / np.diff(edges), edges, fill=True, color="tab:blue")
        ax.set(xscale="log", yscale="log", xlabel="paths (log scale)",
               ylabel="input/output pairs per unit count")  # fmt: skip
    ax.set_title(f"{title}; {zero:,} unconnected pairs" if zero else title)
    return ax


def path_histogram(counts, path, *, title="paths between input/output pairs"):
    """:func:`plot_path_counts` saved to ``path``."""
    return save_figure(plot_path_counts(counts, title=title).figure, path)


def plot_spy(layers, *, pixels=400, panels=8, ax=None):
    """The adjacency matrix of each layer as an image (rows: inputs, columns: outputs), every
    block of entries that shares a pixel shown by its share of stored edges on a log colour
    scale, so layers of any size are drawn (up to ``panels`` layers, evenly chosen). ``ax``
    draws the first layer alone on a given axes. Returns the Figure."""
    from matplotlib.colors import LogNorm

    layers = [sp.csr_array(W) for W in layers]
    picks = np.unique(np.linspace(0, len(layers) - 1, min(panels, len(layers))).astype(int))
    if ax is None:
        cols = min(4, picks.size)
        rows = -(-picks.size // cols)
        fig = _figure(3.4 * cols + 1, 3.2 * rows + 0.4, layout="constrained")
        axes = [fig.add_subplot(rows, cols, k + 1) for k in range(picks.size)]
    else:
        fig, axes, picks = ax.figure, [ax], picks[:1]
    for ax_k, k in zip(axes, picks):
        W = layers[k].tocoo()
        ry, rx = min(pixels, W.shape[0]), min(pixels, W.shape[1])
        grid = np.zeros((ry, rx))
        np.add.at(grid, (W.row * ry // W.shape[0], W.col * rx // W.shape[1]), 1)
        cell = (W.shape[0] / ry) * (W.shape[1] / rx)
        share = np.where(grid > 0, grid / cell, np.nan)
        image = ax_k.imshow(share, cmap="viridis", norm=LogNorm(vmin=max(1 / cell, 1e-6), vmax=1),
                            interpolation="nearest", aspect="auto",
                            extent=(0, W.shape[1], W.shape[0], 0))  # fmt: skip
        ax_k.set_title(f"layer {k + 1}: {W.shape[0]}x{W.shape[1]}, {W.nnz:,} edges", fontsize=8)
        ax_k.set_xlabel("output neuron", fontsize=8)
        ax_k.set_ylabel("input neuron", fontsize=8)
        ax_k.tick_params(labelsize=7)
    fig.colorbar(image, ax=axes, label="share of possible edges", shrink=0.8)
    return fig


def plot_layer_summary(layers, *, axes=None):
    """Per layer: density, mean degree, and dead neurons (inputs with no out-edge, outputs with
    no in-edge), for networks too deep to draw. ``axes`` is a triple to draw on; returns the
    Figure."""
    from matplotlib.ticker import MaxNLocator

    layers = [sp.csr_array(W) for W in layers]
    k = np.arange(1, len(layers) + 1)
    density = [W.nnz / max(W.shape[0] * W.shape[1], 1) for W in layers]
    mean_out = [W.nnz / max(W.shape[0], 1) for W in layers]
    dead_in = [int((np.diff(W.indptr) == 0).sum()) for W in layers]
    dead_out = [int((np.bincount(W.indices, minlength=W.shape[1]) == 0).sum()) for W in layers]
    if axes is None:
        fig = _figure(12, 3.4)
        axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    fig = axes[0].figure
    axes[0].plot(k, density, marker="o", ms=3)
    if max(density) > 20 * max(min(density), 1e-12):
        axes[0].set_yscale("log")
    else:  # from zero: a flat line must look flat, not like noise on an offset axis
        axes[0].set_ylim(0, 1.15 * max(density))
    axes[0].set_ylabel("density")
    axes[1].plot(k, mean_out, marker="o", ms=3)
    axes[1].set(ylabel="mean out-degree", ylim=(0, 1.15 * max(mean_out)))
    axes[2].plot(k, dead_in, marker="o", ms=3, label="inputs without out-edges")
    axes[2].plot(k, dead_out, marker="s", ms=3, label="outputs without in-edges")
    axes[2].set(ylabel="dead neurons")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle(f"{len(layers)} layers, {sum(W.nnz for W in layers):,} edges")
    fig.tight_layout()
    return fig
