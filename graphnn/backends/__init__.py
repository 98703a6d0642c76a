"""Backends: one small interface (:class:`Backend`) that inference, training, redistribution and
pruning are written against, implemented on several libraries.

=============  ================================================================================
backend        what runs
=============  ================================================================================
``numba``      scipy.sparse containers and graphnn's multi-threaded CPU kernels for the
               products (the default: measured fastest on the CPU)
``graphblas``  python-graphblas / SuiteSparse:GraphBLAS for sparse x sparse, select, apply and
               reduce; the numba kernels for the dense products
``cupy``       CuPy / cuSPARSE and graphnn's CUDA kernels on an NVIDIA GPU (imported lazily)
``reference``  numpy and scipy.sparse only: the executable specification the tests compare
               every backend against
=============  ================================================================================

``scipy`` and ``cpu``, the names of earlier releases, still mean ``numba``.
"""

import importlib

from ..errors import BackendUnavailable, GraphnnError
from ._base import Backend

__all__ = ["Backend", "BACKENDS", "DEFAULT", "get_backend", "available_backends"]

BACKENDS = {
    "numba": ("numba_backend", "NumbaBackend"),
    "graphblas": ("graphblas_backend", "GraphblasBackend"),
    "cupy": ("cupy_backend", "CupyBackend"),
    "reference": ("array_backend", "ReferenceBackend"),
}
DEFAULT = "numba"
_ALIASES = {"scipy": "numba", "cpu": "numba"}
_instances = {}


def get_backend(name=DEFAULT):
    """The backend called ``name`` (or ``name`` itself when it already is a :class:`Backend`).

    Raises ``BackendUnavailable`` when its library or device is missing.
    """
    if isinstance(name, Backend):
        return name
    name = _ALIASES.get(name, name)
    if name not in BACKENDS:
        raise GraphnnError(f"backend {name!r} is not valid; choose from {', '.join(BACKENDS)}")
    if name not in _instances:
        module, cls = BACKENDS[name]
        try:
            mod = importlib.import_module(f".{module}", __name__)
        except ImportError as e:
            raise BackendUnavailable(
                f"backend {name!r} needs {e.name or 'a missing package'} ({e})"
            ) from None
        _instances[name] = getattr(mod, cls)()
    return _instances[name]


def available_backends():
    """Names of the backends usable on this machine."""
    found = []
    for name in BACKENDS:
        try:
            get_backend(name)
        except BackendUnavailable:
            continue
        found.append(name)
    return found
