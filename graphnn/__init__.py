"""graphnn: sparse neural networks as chains of GraphBLAS adjacency matrices."""

from ._version import __version__
from .activations import Activation, parse_activation
from .backends import available_backends, get_backend
from .errors import BackendUnavailable, DimensionMismatch, FormatError, GraphnnError
from .io import load, load_mtx, load_npz, save, save_mtx, save_npz
from .network import Network

__all__ = [
    "__version__",
    "Activation",
    "parse_activation",
    "Network",
    "get_backend",
    "available_backends",
    "load",
    "save",
    "load_npz",
    "load_mtx",
    "save_npz",
    "save_mtx",
    "GraphnnError",
    "DimensionMismatch",
    "FormatError",
    "BackendUnavailable",
    "SparseMLPClassifier",
]


def __getattr__(name):
    # the estimator imports scikit-learn and the training stack: only when asked for
    if name == "SparseMLPClassifier":
        from .estimator import SparseMLPClassifier

        return SparseMLPClassifier
    raise AttributeError(f"module 'graphnn' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
