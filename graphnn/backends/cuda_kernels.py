"""CUDA kernels (CuPy ``RawKernel`` sources), compiled on first use and cached by CuPy.

One place for the hand-written GPU kernels: the sparse-times-dense product with the batch as the
contiguous axis (training's forward and input gradient), the SDDMM weight gradient at a
structure's edges, and the fused Graph Challenge layer on dense activation tiles.
"""

import functools

import numpy as np

_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

# out[r, b] = sum_p val[p] * D[idx[p], b] over the CSR row r: one thread per (r, b), so a warp
# reads 32 consecutive batch entries of one row of D (coalesced); val/idx are warp-uniform.
_CSR_DENSE = r"""
extern "C" __global__ void csr_dense(const int* __restrict__ indptr,
                                     const int* __restrict__ idx,
                                     const T* __restrict__ val,
                                     const T* __restrict__ D, T* __restrict__ out,
                                     int batch)
{
    const int r = blockIdx.x;
    const int b = blockIdx.y * blockDim.x + threadIdx.x;
    if (b >= batch) return;
    T s = 0;
    for (int p = indptr[r]; p < indptr[r + 1]; ++p)
        s += val[p] * D[(long long)idx[p] * batch + b];
    out[(long long)r * batch + b] = s;
}
"""

# out[p] = <XT[i, :], dZT[idx[p], :]> for every entry p of CSR row i: one block per row i keeps
# XT[i, :] in shared memory, one warp per entry reduces over the batch with shuffles.
_SDDMM = r"""
extern "C" __global__ void sddmm(const int* __restrict__ indptr,
                                 const int* __restrict__ idx,
                                 const T* __restrict__ XT, const T* __restrict__ dZT,
                                 T* __restrict__ out, int batch)
{
    extern __shared__ unsigned char smem[];
    T* x = reinterpret_cast<T*>(smem);
    const int i = blockIdx.x;
    for (int b = threadIdx.x; b < batch; b += blockDim.x) x[b] = XT[(long long)i * batch + b];
    __syncthreads();
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int p = indptr[i] + (threadIdx.x >> 5); p < indptr[i + 1]; p += warps) {
        const T* d = dZT + (long long)idx[p] * batch;
        T s = 0;
        for (int b = lane; b < batch; b += 32) s += x[b] * d[b];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
        if (lane == 0) out[p] = s;
    }
}
"""

# One Graph Challenge layer on dense, transposed activations (neurons x rows, row stride `cap`):
# Z[j, r] = sum over column j of W of W[i, j] * Y[i, r]; the bias goes on nonzeros only; ReLU;
# clamp at ymax (with column classes, j runs over the class representatives, each counted
# MULT(j) times: the size of its class). Thread (x, y) of a block takes row
# r = 32 * blockIdx.y + x and the columns j = COLS * blockIdx.x + y, + 8, ...; the per-row
# counts of nonzeros and of saturated entries are reduced in the block and added once per block.
# Consecutive blocks share a row slab, so it stays in L2 while every column tile reads it.
_CHALLENGE_LAYER = r"""
#define COLS 64
extern "C" __global__ void challenge_layer(const T* __restrict__ Y, T* __restrict__ Z,
                                           const int* __restrict__ colptr,
                                           const IDX* __restrict__ rowidx,
                                           const T* __restrict__ val, T uval,
                                           const unsigned int* __restrict__ mult,
                                           int n, long long cap, int count, T bias, T ymax,
                                           unsigned int* __restrict__ nnz,
                                           unsigned int* __restrict__ sat)
{
    __shared__ unsigned int s_nnz[8][32], s_sat[8][32];
    const int r = (int)(blockIdx.y * 32 + threadIdx.x);
    unsigned int my_nnz = 0, my_sat = 0;
    if (r < count) {
        const int j1 = min((int)(blockIdx.x + 1) * COLS, n);
        for (int j = (int)(blockIdx.x * COLS + threadIdx.y); j < j1; j += 8) {
            T s = 0;
            for (int p = colptr[j]; p < colptr[j + 1]; ++p)
                s += VAL(p) * Y[(long long)rowidx[p] * cap + r];
            if (s != 0) {
                s += bias;
                s = s > 0 ? (s < ymax ? s : ymax) : 0;
            }
            Z[(long long)j * cap + r] = s;
            my_nnz += s != 0 ? MULT(j) : 0u;
            my_sat += s == ymax ? MULT(j) : 0u;
        }
    }
    s_nnz[threadIdx.y][threadIdx.x] = my_nnz;
    s_sat[threadIdx.y][threadIdx.x] = my_sat;
    __syncthreads();
    if (threadIdx.y == 0 && r < count) {
        unsigned int a = 0, b = 0;
        for (int k = 0; k < 8; ++k) { a += s_nnz[k][threadIdx.x]; b += s_sat[k][threadIdx.x]; }
        if (a) atomicAdd(&nnz[r], a);
        if (b) atomicAdd(&sat[r], b);
    }
}
"""
CHALLENGE_COLS = 64


def ctype(dtype):
    """The CUDA type for a numpy float dtype (float32 or float64)."""
    return _CTYPE[np.dtype(dtype)]


@functools.cache
def kernel(name, dtype, index="int", uniform=False, classed=False):
    """The compiled kernel ``name`` for values of ``dtype``; for ``challenge_layer`` also the
    index type of the weights, whether every weight of a layer is one scalar ``uval``, and
    whether its columns are class representatives counted ``mult[j]`` times."""
    import cupy

    source = {"csr_dense": _CSR_DENSE, "sddmm": _SDDMM, "challenge_layer": _CHALLENGE_LAYER}[name]
    header = f"#define T {ctype(dtype)}\n#define IDX {index}\n"
    header += "#define VAL(p) uval\n" if uniform else "#define VAL(p) val[p]\n"
    header += "#define MULT(j) mult[j]\n" if classed else "#define MULT(j) 1u\n"
    return cupy.RawKernel(header + source, name)
