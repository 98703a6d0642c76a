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
    layers and one for all layers pooled. Neurons of degree 0 (dead) are counted, in their own
    bar. Log-log axes only where a distribution's degrees span decades (its largest above
    :data:`HEAVY_SPREAD` times its median and above :data:`HEAVY_MAX`, as in R-MAT), linear
    otherwise. Returns the Figure (``ax`` draws the pooled distribution alone on a given
    axes)."""
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
    fig = _figure(3.6 * cols, 3.0 * rows)
    for k, (group, title) in enumerate(groups):
        _degree_panel(fig.add_subplot(rows, cols, k + 1), group, title, legend=k == 0)
    fig.tight_layout()
    return fig


# a degree distribution is drawn on log-log axes when it spans decades: its largest degree is
# above this many times its median, and above HEAVY_MAX
HEAVY_SPREAD, HEAVY_MAX = 8, 50


def degrees(layers):
    """``(out_degrees, in_degrees)`` of the neurons of ``layers`` (CSR), concatenated."""
    out_deg = np.concatenate([np.diff(W.indptr) for W in layers])
    in_deg = np.concatenate([np.bincount(W.indices, minlength=W.shape[1]) for W in layers])
    return out_deg, in_deg


def _heavy(deg):
    live = deg[deg > 0]
    top = int(live.max(initial=0))
    return top > HEAVY_MAX and top > HEAVY_SPREAD * np.median(live)


def _degree_panel(ax, layers, title, legend=True):
    out_deg, in_deg = degrees(layers)
    both = np.concatenate([out_deg, in_deg])
    top = int(both.max(initial=0))
    heavy = _heavy(out_deg) or _heavy(in_deg)
    for k, (deg, label) in enumerate(((out_deg, "out-degree"), (in_deg, "in-degree"))):
        colour = f"C{k}"
        dead = int((deg == 0).sum())
        label = f"{label} ({dead:,} dead)" if dead else label
        if heavy:  # bins widen with the degree: count per unit degree keeps the shape
            edges = np.unique(np.geomspace(1, top + 1, 30).astype(int)) - 0.5
            hist, _ = np.histogram(deg, bins=edges)
            ax.stairs(hist / np.diff(edges), edges, lw=1.4, color=colour, label=label)
            if dead:  # degree 0 has no place on a log axis: its own bar, left of degree 1
                ax.bar(0.3 + 0.1 * k, dead, width=0.08, color=colour, alpha=0.6)
        else:
            edges = np.arange(top + 2) - 0.5 if top < 60 else np.linspace(-0.5, top + 0.5, 41)
            ax.hist(deg, bins=edges, histtype="step", lw=1.4, color=colour, label=label)
            if dead and top >= 60:  # wide bins: degree 0 merged into the first, shown apart
                ax.bar(-0.02 * top * (1 + k), dead, width=0.015 * top, color=colour, alpha=0.6)
    if heavy:
        ax.set(xscale="log", yscale="log")
        ticks = [t for t in (1, 10, 100, 1000, 10000, 100000) if t <= top]
        ax.set_xticks([0.35, *ticks], ["0", *map(str, ticks)])
        ax.minorticks_off()
    else:
        ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("degree (0: dead neurons)", fontsize=9)
    ax.set_ylabel("neurons per unit degree" if heavy else "neurons", fontsize=9)
    if legend:
        ax.legend(fontsize=9)


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
        ax.tick_params(axis="x", labelsize=9, rotation=90 if values.size > 12 else 0)
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
    shares = [_pixel_shares(layers[k], pixels) for k in picks]
    # one colour scale for every panel, as the one colour bar says: down to the smallest share
    # a pixel of any panel can show (one edge in the largest pixel)
    norm = LogNorm(vmin=max(min(s[np.isfinite(s)].min(initial=1) for s in shares), 1e-6), vmax=1)
    for ax_k, k, share in zip(axes, picks, shares):
        W = layers[k]
        image = ax_k.imshow(share, cmap="viridis", norm=norm, interpolation="nearest",
                            aspect="auto", extent=(0, W.shape[1], W.shape[0], 0))  # fmt: skip
        ax_k.set_title(f"layer {k + 1}: {W.shape[0]}x{W.shape[1]}, {W.nnz:,} edges", fontsize=9)
        ax_k.set_xlabel("output neuron", fontsize=9)
        ax_k.set_ylabel("input neuron", fontsize=9)
        ax_k.tick_params(labelsize=9)
    fig.colorbar(image, ax=axes, label="share of possible edges", shrink=0.8)
    return fig


def _pixel_shares(W, pixels):
    """The share of stored edges in each pixel of ``W``'s adjacency drawn at most ``pixels``
    wide (nan where a pixel holds none)."""
    W = W.tocoo()
    ry, rx = min(pixels, W.shape[0]), min(pixels, W.shape[1])
    grid = np.zeros((ry, rx))
    np.add.at(grid, (W.row * ry // W.shape[0], W.col * rx // W.shape[1]), 1)
    cell = (W.shape[0] / ry) * (W.shape[1] / rx)
    return np.where(grid > 0, grid / cell, np.nan)


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
    # a few layers are categories (bars), many a series (lines); every count axis from zero
    bars = len(layers) <= SHORT_SERIES
    draw = _bars if bars else _lines
    draw(axes[0], k, [density], ["density"])
    if not bars and max(density) > 20 * max(min(density), 1e-12):
        axes[0].set_yscale("log")
    else:  # from zero: a flat line must look flat, not like noise on an offset axis
        axes[0].set_ylim(0, 1.15 * max(density))
    axes[0].set_ylabel("density")
    draw(axes[1], k, [mean_out], ["mean out-degree"])
    axes[1].set(ylabel="mean out-degree", ylim=(0, 1.15 * max(mean_out)))
    draw(axes[2], k, [dead_in, dead_out], ["inputs without out-edges", "outputs without in-edges"])
    axes[2].set(ylabel="dead neurons", ylim=(0, max(1, 1.15 * max(dead_in + dead_out))))
    axes[2].legend(fontsize=9)
    for ax in axes:
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle(f"{len(layers)} layers, {sum(W.nnz for W in layers):,} edges")
    fig.tight_layout()
    return fig


# up to this many layers the summary draws bars (a line through two points suggests a trend)
SHORT_SERIES = 8


def _bars(ax, k, series, labels):
    width = 0.8 / len(series)
    for i, (values, label) in enumerate(zip(series, labels)):
        ax.bar(k + (i - (len(series) - 1) / 2) * width, values, width=width, label=label)


def _lines(ax, k, series, labels):
    for values, label, marker in zip(series, labels, "os"):
        ax.plot(k, values, marker=marker, ms=3, label=label)
