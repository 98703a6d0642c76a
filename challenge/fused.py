"""Exact challenge inference on dense activation tiles, one fused launch per layer (the GPU path).

The live rows of a batch are held dense and transposed (neurons x rows, rows contiguous), every
layer is resident on the device in CSC form, and one kernel per layer computes
``Z = Y W``, the bias on the nonzeros, ReLU and the clamp, together with each row's count of
nonzeros and of saturated entries. One small device-to-host copy per layer (which rows died,
which saturated) drives the same two exact shortcuts as :func:`challenge.inference.infer`:
dead rows are dropped (the tile is compacted), and saturated rows leave the tile while a row of
``ymax`` stays saturated through the next layer; where it would not, they rejoin as rows of
``ymax`` and go through that layer like any other.

Column classes (on by default), as in the CPU engine: at upload the identical columns of each
layer (same rows, same values, verified) are found, only one representative column of each
class is kept, the next layer's row indices are folded onto the representatives (so every term
and its order are unchanged, the results bit-identical), and the counts of nonzeros and of
saturated entries weigh each class by its size. An official 1024-neuron layer has 64 classes.

``array_module="cupy"`` runs the CUDA kernel of ``graphnn.backends.cuda_kernels``; ``"numpy"``
runs the same driver with a scipy implementation of the layer, so the bookkeeping is tested on
the CPU.
"""

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from graphnn.challenge_kernel import column_classes, csc_arrays, unsigned, value_bits
from graphnn.errors import GraphnnError
from graphnn.system import usable_cpus

from .result import InferenceResult, checked_layers

__all__ = ["DeviceNetwork", "infer_fused"]


def _host_layout(W, dtype, classes):
    """A layer as the kernel reads it, prepared on the host: ``(colptr, rowidx, values,
    uniform, cls, mult)``: CSC (rows ascending per column; uint16 row indices up to 65,536
    neurons) and the values in CSC order, or the one value of a layer whose weights are all
    equal. With ``classes``, the CSC holds the representative columns only; ``cls`` is the
    class of every column and ``mult`` the size of every class (both None where no two
    columns are alike)."""
    W = sp.csr_array(W)
    n = W.shape[0]
    uniform = W.nnz > 0 and bool((W.data == W.data[0]).all())
    cls = mult = None
    if classes:
        W = W if W.has_sorted_indices else W.sorted_indices()
        bits = value_bits(W.data.astype(dtype))  # the values as the kernel sees them
        rep = column_classes(unsigned(W.indptr), unsigned(W.indices), bits[:0] if uniform else bits,
                             n)  # fmt: skip
        firsts = np.flatnonzero(rep == np.arange(n))
        if firsts.size < n:
            cls = np.searchsorted(firsts, rep)
            mult = np.bincount(cls, minlength=firsts.size).astype(np.uint32)
            W = W[:, firsts]
    colptr, rowidx, order = csc_arrays(W, np.uint16 if n <= 2**16 else np.int32,
                                       with_order=not uniform)  # fmt: skip
    values = W.data[:1] if uniform else W.data[order]
    return colptr, rowidx, values.astype(dtype), uniform, cls, mult


def _folded(prepared, previous):
    """The prepared layer with its row indices moved onto the previous layer's class
    representatives (``previous``: that layer's ``cls``, None where it has none)."""
    if previous is None:
        return prepared
    colptr, rowidx, *rest = prepared
    return (colptr, previous[rowidx].astype(rowidx.dtype), *rest)


class _NumpyOps:
    """The layer contract in numpy/scipy: the executable specification of the CUDA kernel."""

    def __init__(self, dtype):
        self.xp, self.dtype = np, np.dtype(dtype)

    def upload(self, prepared, n):
        colptr, rowidx, values, uniform, _, mult = prepared
        data = np.full(rowidx.size, values[0]) if uniform else values
        # W^T: one row per neuron (per class representative)
        return sp.csr_array((data, rowidx, colptr), shape=(colptr.size - 1, n)), mult

    def free_bytes(self):
        return 2**31

    def dense_rows(self, Y, cap):
        A = np.zeros((Y.shape[1], cap), self.dtype)
        A[:, : Y.shape[0]] = Y.toarray().T
        return A

    def layer(self, A, B, W, count, bias, ymax):
        WT, mult = W
        Z = WT @ A[:, :count]
        nz = Z != 0
        Z[nz] += bias
        np.clip(Z, 0, ymax, out=Z)
        B[: Z.shape[0], :count] = Z
        if mult is None:
            return np.count_nonzero(Z, axis=0), np.count_nonzero(Z == ymax, axis=0)
        weight = mult.astype(np.int64)
        return weight @ (Z != 0), weight @ (Z == ymax)

    def classify(self, nnz, sat, n):
        """``(keep, keep on the host, saturated on the host)``: row positions in the tile."""
        keep = np.flatnonzero((nnz > 0) & (sat < n))
        return keep, keep, np.flatnonzero(sat == n)

    def compact(self, src, dst, keep):
        dst[:, : keep.size] = src[:, keep]

    def sync(self):
        pass


class _CupyOps(_NumpyOps):
    """The layer contract on the GPU: one ``challenge_layer`` launch per layer."""

    def __init__(self, dtype):
        from graphnn.backends import cuda_kernels
        from graphnn.backends.cupy_backend import import_cupy

        self.xp, self.dtype, self._cuda = import_cupy()[0], np.dtype(dtype), cuda_kernels
        self._counts = None

    def upload(self, prepared, n):
        cp = self.xp
        colptr, rowidx, values, uniform, _, mult = prepared
        index = "unsigned short" if rowidx.dtype == np.uint16 else "int"
        classed = mult is not None
        return {
            "colptr": cp.asarray(colptr, cp.int32),
            "rowidx": cp.asarray(rowidx),
            "val": cp.asarray(values),
            "uval": values[0] if uniform else self.dtype.type(0),
            "cols": colptr.size - 1,
            "mult": cp.asarray(mult if classed else np.ones(1, np.uint32)),
            "kernel": self._cuda.kernel("challenge_layer", self.dtype, index, uniform, classed),
        }

    def free_bytes(self):
        return self.xp.cuda.Device().mem_info[0]

    def dense_rows(self, Y, cap):
        cp = self.xp
        A = cp.zeros((Y.shape[1], cap), self.dtype)
        if Y.nnz:
            rows = np.repeat(np.arange(Y.shape[0]), np.diff(Y.indptr))
            A[cp.asarray(Y.indices), cp.asarray(rows)] = cp.asarray(Y.data, self.dtype)
        return A

    def layer(self, A, B, W, count, bias, ymax):
        cp = self.xp
        if self._counts is None or self._counts[0].size < count:
            self._counts = (cp.empty(A.shape[1], cp.uint32), cp.empty(A.shape[1], cp.uint32))
        nnz, sat = self._counts[0][:count], self._counts[1][:count]
        nnz.fill(0)
        sat.fill(0)
        cols = W["cols"]
        grid = (-(-cols // self._cuda.CHALLENGE_COLS), -(-count // 32))
        t = self.dtype.type
        W["kernel"](
            grid,
            (32, 8),
            (A, B, W["colptr"], W["rowidx"], W["val"], t(W["uval"]), W["mult"], np.int32(cols),
             np.int64(A.shape[1]), np.int32(count), t(bias), t(ymax), nnz, sat),
        )  # fmt: skip
        return nnz, sat

    def classify(self, nnz, sat, n):
        cp = self.xp
        keep = cp.flatnonzero((nnz > 0) & (sat < n))
        return keep, cp.asnumpy(keep), cp.asnumpy(cp.flatnonzero(sat == n))

    def sync(self):
        self.xp.cuda.Device().synchronize()


class DeviceNetwork:
    """A network's layers on the device in the fused kernel's layout, uploaded once for any
    number of :func:`infer_fused` calls (a benchmark's repeats, image batches of a stream).

    The host work per layer (the column classes and the CSC transpose, in numba without the
    GIL) runs on a thread pool while the next layer is read or generated; the uploads stay in
    order. Attributes: ``layers`` (device), ``n_neurons``, ``edges``, ``layer_edges``,
    ``upload_seconds`` (reading, preparing and uploading), ``array_module``, ``dtype``,
    ``class_counts`` (the distinct columns of each layer; None with ``classes=False``).

    >>> net = DeviceNetwork([sp.identity(3, format="csr")] * 2, 3, array_module="numpy")
    >>> net.edges, net.layer_edges
    (6, [3, 3])
    """

    def __init__(
        self, layers, n_neurons, *, array_module="cupy", dtype="float32", threads=None,
        classes=True,
    ):  # fmt: skip
        if array_module not in ("cupy", "numpy"):
            raise GraphnnError(f"array_module {array_module!r} is not valid; choose cupy or numpy")
        self.array_module, self.n_neurons = array_module, int(n_neurons)
        self.ops = (_CupyOps if array_module == "cupy" else _NumpyOps)(dtype)
        self.dtype = self.ops.dtype
        stats = InferenceResult(None, 0, self.n_neurons, 0, 0, 0.0)
        t0 = time.perf_counter()
        workers = threads or min(8, usable_cpus())
        self.layers, pending, counts, previous = [], deque(), [], None

        def upload(prepared):
            nonlocal previous
            self.layers.append(self.ops.upload(_folded(prepared, previous), n_neurons))
            counts.append(prepared[0].size - 1)
            previous = prepared[4]

        with ThreadPoolExecutor(workers) as pool:
            for W in checked_layers(layers, self.n_neurons, stats):
                pending.append(pool.submit(_host_layout, W, self.dtype, classes))
                if len(pending) > 2 * workers:  # a bounded window of prepared layers
                    upload(pending.popleft().result())
            while pending:
                upload(pending.popleft().result())
        self.class_counts = counts if classes else None
        if not self.layers:
            raise GraphnnError("the network has no layers")
        self.ops.sync()
        self.upload_seconds = time.perf_counter() - t0
        self.edges, self.layer_edges = stats.edges, stats.layer_edges


def infer_fused(
    layers,
    images,
    bias,
    *,
    ymax=32.0,
    array_module="cupy",
    dtype="float32",
    max_rows=None,
    progress=False,
    n_layers=None,
    column_classes=True,
):
    """:func:`challenge.inference.infer` on dense activation tiles; same result, same fields.

    Parameters
    ----------
    layers, images, bias, ymax, progress, n_layers
        As for :func:`challenge.inference.infer`; ``layers`` may also be a
        :class:`DeviceNetwork` already uploaded (then ``array_module`` and ``dtype`` are its
        own). Every layer is uploaded before the clock starts (reading, preparing and
        uploading are ``read_seconds``; 0 for a DeviceNetwork given).
    array_module : {"cupy", "numpy"}
        ``cupy``: the CUDA kernel; ``numpy``: the reference implementation of the same steps.
    dtype : {"float32", "float64"}
        Arithmetic of the activations and weights. The official problems are exact in float32
        (checked against the truth by ``bench/gpu_check.sh``).
    max_rows : int, optional
        Rows per batch; by default three tiles (two buffers and a compaction) fit in 3/8 of the
        free device memory.
    column_classes : bool
        Compute each class of identical columns once (see the module); the results are the
        same without. ``result.column_classes`` lists each layer's classes (None: off). A
        :class:`DeviceNetwork` given keeps the choice it was uploaded with.

    Examples
    --------
    >>> W = sp.csr_array([[0.5, 0.0], [0.5, 1.0]])
    >>> Y0 = sp.csr_array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    >>> infer_fused([W, W], Y0, bias=-0.1, array_module="numpy").categories
    array([1, 3])
    """
    from tqdm import tqdm

    images = sp.csr_array(images)
    n_images, n = images.shape
    ymax = np.inf if ymax is None else float(ymax)
    result = InferenceResult(None, n_images, n, 0, 0, 0.0)
    given = isinstance(layers, DeviceNetwork)
    net = (
        layers
        if given
        else DeviceNetwork(
            layers, n, array_module=array_module, dtype=dtype, classes=column_classes
        )
    )
    if net.n_neurons != n:
        raise GraphnnError(
            f"the network has {net.n_neurons} neurons but the images have {n} pixels"
        )
    ops, resident = net.ops, net.layers
    result.read_seconds = 0.0 if given else net.upload_seconds
    result.edges, result.layer_edges = net.edges, list(net.layer_edges)
    result.n_layers = len(resident)
    result.column_classes = None if net.class_counts is None else list(net.class_counts)
    live_ids = np.flatnonzero(np.diff(images.indptr))
    result.input_rows = int(live_ids.size)
    per_batch = max_rows or max(1024, ops.free_bytes() // (8 * n * ops.dtype.itemsize))
    stays = [None] * len(resident)  # does a row of ymax stay saturated through layer l?
    result.live_rows = [0] * len(resident)
    result.saturated_rows = [0] * len(resident)
    found = []
    bar = tqdm(total=len(resident) * max(1, -(-live_ids.size // per_batch)), desc="layers",
               unit="layer", disable=not progress, leave=False)  # fmt: skip
    for lo in range(0, max(live_ids.size, 1), per_batch):
        ids = live_ids[lo : lo + per_batch]
        ops.sync()
        t = time.perf_counter()
        found.append(_run_batch(ops, resident, images[ids], ids, bias, ymax, stays, result, bar))
        ops.sync()
        result.seconds += time.perf_counter() - t
    bar.close()
    result.categories = np.sort(np.concatenate(found)) + 1
    return result


def _run_batch(ops, layers, Y, live, bias, ymax, stays, result, bar):
    """The ids (0-based) of the rows of ``Y`` whose last layer's output is nonzero."""
    n, cap = Y.shape[1], max(Y.shape[0], 1)
    A, B = ops.dense_rows(Y, cap), ops.xp.empty((n, cap), ops.dtype)
    saturated = live[:0]
    count = live.size
    for k, W in enumerate(layers):
        if saturated.size:
            if stays[k] is None:
                stays[k] = _stays_saturated(ops, W, n, bias, ymax)
            if not stays[k]:  # they rejoin as rows of ymax
                A[:, count : count + saturated.size] = ymax
                live, saturated = np.concatenate([live, saturated]), saturated[:0]
                count = live.size
        if count:
            nnz, sat = ops.layer(A, B, W, count, bias, ymax)
            keep, keep_host, now_saturated = ops.classify(nnz, sat, n)
            if now_saturated.size:
                if result.saturated_from is None or k + 1 < result.saturated_from:
                    result.saturated_from = k + 1
                saturated = np.concatenate([saturated, live[now_saturated]])
            if keep.size == count:
                A, B = B, A
            else:
                ops.compact(B, A, keep)
                live = live[keep_host]
            count = live.size
        result.live_rows[k] += int(count)
        result.saturated_rows[k] += int(saturated.size)
        bar.update()
    return np.concatenate([live, saturated])


def _stays_saturated(ops, W, n, bias, ymax):
    full = ops.xp.full((n, 1), ymax, ops.dtype)
    out = ops.xp.empty_like(full)
    _, sat = ops.layer(full, out, W, 1, bias, ymax)
    return int(sat[0]) == n
