"""Sparse network topologies: one module per family of generators, analysis and plots, and
:func:`generate`, the one registry that builds any family as a :class:`graphnn.Network`.
:func:`as_rng` is where every seed is normalised (the challenge's generator uses it too), and
:func:`positive_int` the check of a count."""

from ._validate import as_rng, positive_int
from .families import FAMILIES, generate

__all__ = ["FAMILIES", "generate", "as_rng", "positive_int"]
