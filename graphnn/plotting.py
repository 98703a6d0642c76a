"""Figures through matplotlib's object API, and figures saved atomically.

Nothing here selects a matplotlib backend or touches pyplot's state: a figure is a plain
``matplotlib.figure.Figure`` (drawn by Agg when saved), so a notebook keeps its own backend and
its open figures. Plot functions take an optional ``ax=`` and return what they drew on; the
command line saves the figures to files.
"""

import io

from .io import atomic_write

__all__ = ["figure", "save_figure"]


def figure(nrows=1, ncols=1, *, figsize=None, dpi=100, squeeze=True, ax=None):
    """``(fig, axes)``: a new Figure with a grid of axes (as ``pyplot.subplots`` would give,
    without pyplot), or, given ``ax``, that axes' figure and ``ax`` itself."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def save_figure(fig, path):
    """Write ``fig`` as a PNG to ``path`` atomically and return ``path``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    with atomic_write(path) as f:
        f.write(buf.getvalue())
    return path
