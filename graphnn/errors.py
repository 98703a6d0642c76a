"""The exceptions graphnn raises, under one root.

A ``GraphnnError`` always carries a message meant for the user: the CLI prints it as one line
and exits 2, without a traceback.
"""

__all__ = ["GraphnnError", "DimensionMismatch", "FormatError", "BackendUnavailable"]


class GraphnnError(ValueError):
    """Root of every error graphnn raises for a user mistake or bad input."""


class DimensionMismatch(GraphnnError):
    """Shapes that must agree (consecutive layers, operands) do not."""


class FormatError(GraphnnError):
    """A file is malformed; the message names the file and, where known, the line."""


class BackendUnavailable(GraphnnError):
    """The requested backend cannot be used here (library or device missing)."""
