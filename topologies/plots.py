"""PNG pictures of a chain: the layered graph of a small network, degree and path histograms.

Every function writes its file atomically and returns its path.
"""

import numpy as np
import scipy.sparse as sp

from graphnn.errors import GraphnnError
from graphnn.plotting import save_figure

__all__ = ["draw_network", "degree_histogram", "path_histogram"]

MAX_DRAWN_EDGES = 5000


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def draw_network(layers, path, *, title=None):
    """Draw the layers as columns of neurons joined by their edges (small networks only)."""
    layers = [sp.coo_array(W) for W in layers]
    edges = sum(W.nnz for W in layers)
    if edges > MAX_DRAWN_EDGES:
        raise GraphnnError(
            f"{edges:,} edges are too many to draw (at most {MAX_DRAWN_EDGES:,}); "
            "draw the first layers only"
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


def degree_histogram(layers, path):
    """In- and out-degree histograms of every layer, one panel per layer (up to 12)."""
    layers = [sp.csr_array(W) for W in layers][:12]
    cols = min(4, len(layers))
    rows = -(-len(layers) // cols)
    fig = _figure(3.2 * cols, 2.6 * rows)
    for k, W in enumerate(layers):
        ax = fig.add_subplot(rows, cols, k + 1)
        out_deg = np.diff(W.indptr)
        in_deg = np.bincount(W.indices, minlength=W.shape[1])
        top = int(max(out_deg.max(initial=0), in_deg.max(initial=0)))
        bins = np.arange(top + 2) - 0.5 if top < 60 else 40
        ax.hist(out_deg, bins=bins, alpha=0.6, label="out-degree")
        ax.hist(in_deg, bins=bins, alpha=0.6, label="in-degree")
        ax.set_title(f"layer {k + 1} ({W.shape[0]}x{W.shape[1]})", fontsize=9)
        ax.set_xlabel("degree", fontsize=8)
        if k == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def path_histogram(counts, path, *, title="paths between input/output pairs"):
    """Histogram of the path counts of every (input, output) pair, log-scaled counts."""
    counts = np.asarray(counts).ravel()
    fig = _figure(6, 3.5)
    ax = fig.add_subplot()
    zero = int((counts == 0).sum())
    pos = counts[counts > 0]
    if pos.size and pos.min() == pos.max():
        ax.bar([f"{pos[0]:.6g}"], [pos.size], color="tab:blue")
    elif pos.size:
        ax.hist(np.log10(pos), bins=50, color="tab:blue")
        ax.set_xlabel("log10(paths)")
    ax.set_ylabel("pairs")
    ax.set_title(f"{title}; {zero:,} unconnected pairs" if zero else title)
    return save_figure(fig, path)
