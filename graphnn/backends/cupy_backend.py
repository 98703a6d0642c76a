"""CuPy backend (cuSPARSE and hand-written kernels on an NVIDIA GPU), imported only when used.

The body is :class:`~graphnn.backends.array_backend.ArrayBackend` on CuPy and
``cupyx.scipy.sparse``, the same code the ``reference`` backend runs on the CPU; this class adds
the kernels of ``cuda_kernels`` for the masked product and training's two products. The Graph
Challenge runs its own fused kernel (:mod:`challenge.fused`).
"""

import numpy as np

from ..errors import BackendUnavailable
from . import cuda_kernels
from .array_backend import ArrayBackend

_BLOCK = 128  # threads along the batch in csr_dense
_SMEM = 48 * 1024  # the default shared memory per block: sddmm keeps one row of X there


def import_cupy():
    """``(cupy, cupyx.scipy.sparse)``, or BackendUnavailable saying why not."""
    try:
        import cupy
        import cupyx.scipy.sparse as csp

        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # ImportError, or a CUDA error when no driver or device is present
        raise BackendUnavailable(
            f"backend 'cupy' needs CuPy and an NVIDIA GPU ({type(e).__name__}: {e}); "
            "install with: pip install 'graphnn[gpu]'"
        ) from None
    return cupy, csp


class CupyBackend(ArrayBackend):
    def __init__(self):
        super().__init__("cupy", *import_cupy())

    def sddmm(self, XT, dZT, indptr, indices, rows):
        xp = self.xp
        inner = XT.shape[1]
        if inner * XT.dtype.itemsize > _SMEM:  # a row of X^T does not fit shared memory
            return super().sddmm(XT, dZT, indptr, indices, rows)
        out = xp.empty(indices.size, dtype=XT.dtype)
        if out.size == 0:
            return out
        if inner == 0:
            out.fill(0)
            return out
        cuda_kernels.kernel("sddmm", XT.dtype)(
            (XT.shape[0],),
            (256,),
            (xp.asarray(indptr, xp.int32), xp.asarray(indices, xp.int32),
             xp.ascontiguousarray(XT), xp.ascontiguousarray(dZT, dtype=XT.dtype), out,
             np.int32(inner)),
            shared_mem=inner * XT.dtype.itemsize,
        )  # fmt: skip
        return out

    def csr_times_dense(
        self, data, indices, indptr, shape, D, order=None, bias=None, relu=False, mask=None
    ):
        xp = self.xp
        if order is not None:
            data = data[order]
        D = xp.ascontiguousarray(D, dtype=data.dtype)
        batch = D.shape[1]
        out = xp.empty((shape[0], batch), dtype=data.dtype)
        if out.size:
            grid = (shape[0], -(-batch // _BLOCK))
            cuda_kernels.kernel("csr_dense", data.dtype)(
                grid, (_BLOCK,), (indptr, indices, data, D, out, np.int32(batch))
            )
        return self.finish(out, bias, relu, mask)
