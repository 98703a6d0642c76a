"""Shared parameter checks and seed handling for the generators."""

import numpy as np

from graphnn.errors import GraphnnError


def as_rng(seed):
    """A ``numpy.random.Generator`` from None, an int, a sequence of ints or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise GraphnnError(f"seed must be an integer or None, got {seed!r}") from None


def check_edges(edges, what):
    """Refuse, before allocating, a structure whose ``edges`` (12 bytes each as CSR) would not
    fit in the memory available now."""
    import os

    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if edges * 12 > free:
        raise GraphnnError(
            f"{what} would have {edges:,.0f} edges ({edges * 12 / 2**30:,.1f} GiB), more than "
            f"the {free / 2**30:,.1f} GiB of memory available: ask for smaller sizes"
        )


def positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise GraphnnError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
