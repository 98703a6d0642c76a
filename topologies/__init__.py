"""Sparse network topologies: one module per family of generators, analysis and plots, and
:func:`generate`, the one registry that builds any family as a :class:`graphnn.Network`."""

from .families import FAMILIES, generate

__all__ = ["FAMILIES", "generate"]
