"""Where training arrays live and which kernels run on them.

``cpu`` keeps numpy arrays and uses the numba kernels of ``graphnn.kernels`` (measured fastest
on the CPU). ``ArrayDevice(xp, xsp)`` is the same contract written once against an array module
and its sparse module: with CuPy and ``cupyx.scipy.sparse`` it is the GPU device (cuSPARSE SpMM
for the products, a gather for the masked product), and with numpy and ``scipy.sparse`` it is the
``reference`` device, which runs that exact code path on the CPU so it is tested without a GPU.
"""

import numpy as np
import scipy.sparse as sp

from .. import kernels
from ..backends import _cuda
from ..errors import BackendUnavailable, GraphnnError

__all__ = ["Device", "ArrayDevice", "get_device", "DEVICES"]

DEVICES = ("cpu", "reference", "cupy")
_SDDMM_CHUNK = 1 << 24  # entries of the gathered (nnz x batch) products formed at once


class Device:
    """The CPU: numpy arrays, numba kernels."""

    name = "cpu"
    xp = np

    def asarray(self, a, dtype=None):
        return np.asarray(a, dtype=dtype)

    def asnumpy(self, a):
        return np.asarray(a)

    def spmm(self, data, indices, indptr, shape, XT):
        """``M @ XT`` for ``M`` given by its CSR arrays and shape, ``XT`` dense (n x batch)."""
        M_as_csc_of_transpose = sp.csc_array((data, indices, indptr), shape=shape[::-1])
        return kernels.spmm_t(XT, M_as_csc_of_transpose)

    def sddmm(self, XT, dZT, indptr, indices, rows):
        """``(X^T dZ)`` at the CSR entries ``(rows, indices)``, in CSR order."""
        mask = sp.csr_array(
            (np.empty(indices.size, XT.dtype), indices, indptr), shape=(XT.shape[0], dZT.shape[0])
        )
        return kernels.sddmm(XT, dZT, mask)


class ArrayDevice(Device):
    """The contract on any numpy-like array module ``xp`` with a scipy-like sparse module."""

    def __init__(self, name, xp, xsp):
        self.name, self.xp, self.xsp = name, xp, xsp

    def asarray(self, a, dtype=None):
        return self.xp.asarray(a, dtype=dtype)

    def asnumpy(self, a):
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def spmm(self, data, indices, indptr, shape, XT):
        return self.xsp.csr_matrix((data, indices, indptr), shape=shape) @ XT

    def sddmm(self, XT, dZT, indptr, indices, rows):
        xp = self.xp
        out = xp.empty(indices.size, dtype=XT.dtype)
        step = max(1, _SDDMM_CHUNK // max(XT.shape[1], 1))
        for lo in range(0, indices.size, step):
            hi = min(indices.size, lo + step)
            out[lo:hi] = (XT[rows[lo:hi]] * dZT[indices[lo:hi]]).sum(axis=1)
        return out


class CupyDevice(ArrayDevice):
    """The GPU: the same contract with the hand-written kernels of ``backends._cuda`` for the
    two products (batch along the contiguous axis, no nnz x batch temporaries)."""

    _BLOCK = 128

    def __init__(self, cupy, csp):
        super().__init__("cupy", cupy, csp)

    def spmm(self, data, indices, indptr, shape, XT):
        xp = self.xp
        XT = xp.ascontiguousarray(XT, dtype=data.dtype)
        batch = XT.shape[1]
        out = xp.empty((shape[0], batch), dtype=data.dtype)
        if out.size:
            grid = (shape[0], -(-batch // self._BLOCK))
            _cuda.kernel("csr_dense", data.dtype)(
                grid, (self._BLOCK,), (indptr, indices, data, XT, out, np.int32(batch))
            )
        return out

    def sddmm(self, XT, dZT, indptr, indices, rows):
        xp = self.xp
        batch = XT.shape[1]
        smem = batch * XT.dtype.itemsize
        if smem > 48 * 1024:  # the row of XT must fit the default shared memory
            return super().sddmm(XT, dZT, indptr, indices, rows)
        XT, dZT = xp.ascontiguousarray(XT), xp.ascontiguousarray(dZT, dtype=XT.dtype)
        out = xp.empty(indices.size, dtype=XT.dtype)
        if out.size and batch:
            _cuda.kernel("sddmm", XT.dtype)(
                (XT.shape[0],),
                (256,),
                (indptr, indices, XT, dZT, out, np.int32(batch)),
                shared_mem=smem,
            )
        elif out.size:
            out.fill(0)
        return out


_devices = {"cpu": Device(), "reference": ArrayDevice("reference", np, sp)}


def get_device(name="cpu"):
    """The device called ``name``: ``cpu``, ``reference`` or ``cupy`` (imported on first use)."""
    if isinstance(name, Device):
        return name
    if name not in DEVICES:
        raise GraphnnError(f"device {name!r} is not valid; choose from {', '.join(DEVICES)}")
    if name == "cupy" and name not in _devices:
        try:
            import cupy
            import cupyx.scipy.sparse as csp

            cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # ImportError, or a CUDA error without a driver or device
            raise BackendUnavailable(
                f"device 'cupy' needs CuPy and an NVIDIA GPU ({type(e).__name__}: {e}); "
                "install with: pip install 'graphnn[gpu]'"
            ) from None
        _devices[name] = CupyDevice(cupy, csp)
    return _devices[name]
