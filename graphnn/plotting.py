"""Matplotlib without a display, and figures saved atomically."""

import io

from .io import atomic_write

__all__ = ["pyplot", "save_figure"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path):
    """Write ``fig`` as a PNG to ``path`` atomically, close it, and return ``path``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    pyplot().close(fig)
    with atomic_write(path) as f:
        f.write(buf.getvalue())
    return path
