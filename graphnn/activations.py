"""Activation functions of a layer, named by short specs such as ``"relu"`` or ``"relu:32"``.

``relu:C`` is ReLU clamped at the maximum C (the Graph Challenge uses ``relu:32``).
"""

from dataclasses import dataclass

import numpy as np

from .errors import GraphnnError

__all__ = ["Activation", "parse_activation", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "relu:<max>", "identity", "sigmoid", "softmax")


@dataclass(frozen=True)
class Activation:
    """An activation: ``kind`` is one of relu, identity, sigmoid, softmax; ``cap`` clamps relu."""

    kind: str
    cap: float | None = None

    def __str__(self):
        return self.kind if self.cap is None else f"{self.kind}:{self.cap:g}"

    def __call__(self, Z):
        """Apply to a dense batch ``Z`` (rows are samples); returns a new array."""
        if self.kind == "relu":
            return np.clip(Z, 0, self.cap)
        if self.kind == "identity":
            return np.array(Z, copy=True)
        if self.kind == "sigmoid":
            # Split by sign so neither branch overflows exp.
            out = np.empty_like(Z)
            pos = Z >= 0
            out[pos] = 1.0 / (1.0 + np.exp(-Z[pos]))
            ez = np.exp(Z[~pos])
            out[~pos] = ez / (1.0 + ez)
            return out
        shifted = np.exp(Z - Z.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


def parse_activation(spec):
    """Return the :class:`Activation` for ``spec`` (a string or an Activation).

    >>> parse_activation("relu:32")
    Activation(kind='relu', cap=32.0)
    """
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise GraphnnError(f"activation must be a string such as 'relu', got {spec!r}")
    kind, sep, arg = spec.strip().lower().partition(":")
    if kind not in ("relu", "identity", "sigmoid", "softmax") or (sep and kind != "relu"):
        raise GraphnnError(
            f"activation {spec!r} is not valid; choose from {', '.join(ACTIVATIONS)}"
        )
    if not sep:
        return Activation(kind)
    try:
        cap = float(arg)
    except ValueError:
        raise GraphnnError(f"activation {spec!r}: the clamp after ':' must be a number") from None
    if not cap > 0:
        raise GraphnnError(f"activation {spec!r}: the clamp must be positive")
    return Activation("relu", cap)
