"""Backends: one small interface (:class:`Backend`) implemented by several libraries.

``graphblas`` (python-graphblas on SuiteSparse, the CPU default), ``scipy`` (scipy.sparse) and
``cupy`` (cuSPARSE on an NVIDIA GPU, imported lazily).
"""

import importlib

from ..errors import BackendUnavailable, GraphnnError
from ._base import Backend

__all__ = ["Backend", "BACKENDS", "get_backend", "available_backends"]

BACKENDS = {
    "graphblas": ("graphblas_backend", "GraphblasBackend"),
    "scipy": ("scipy_backend", "ScipyBackend"),
    "cupy": ("cupy_backend", "CupyBackend"),
}
_instances = {}


def get_backend(name="graphblas"):
    """The backend called ``name`` (or ``name`` itself when it already is a :class:`Backend`).

    Raises ``BackendUnavailable`` when its library or device is missing.
    """
    if isinstance(name, Backend):
        return name
    if name not in BACKENDS:
        raise GraphnnError(f"backend {name!r} is not valid; choose from {', '.join(BACKENDS)}")
    if name not in _instances:
        module, cls = BACKENDS[name]
        try:
            mod = importlib.import_module(f".{module}", __name__)
        except ImportError as e:
            raise BackendUnavailable(
                f"backend {name!r} needs {e.name or 'a missing package'} ({e}); "
                f"available here: {', '.join(available_backends()) or 'none'}"
            ) from None
        _instances[name] = getattr(mod, cls)()
    return _instances[name]


def available_backends():
    """Names of the backends usable on this machine."""
    found = []
    for name in BACKENDS:
        if name in _instances:
            found.append(name)
            continue
        module, cls = BACKENDS[name]
        try:
            _instances[name] = getattr(importlib.import_module(f".{module}", __name__), cls)()
        except (ImportError, GraphnnError):
            continue
        found.append(name)
    return found
