"""Exact Sparse DNN Graph Challenge inference.

Per layer: ``Z = Y W``; the bias is added to the nonzero entries of Z only; ReLU; clamp at
``ymax`` (32). The categories are the 1-based ids of the images whose final row is nonzero.

Two exact shortcuts keep the work proportional to what can still change:

* a row that becomes empty stays empty, so it is dropped;
* rows saturated at ``ymax`` in every neuron are all bit-for-bit equal, so one representative
  row goes through each layer instead of all of them: while it maps back to a saturated row they
  stay saturated (on the official data this is every row that survives, from about layer 27);
  otherwise they rejoin the live rows with the representative's values.

Reference: Kepner et al., "Sparse Deep Neural Network Graph Challenge", IEEE HPEC 2019.
"""

import time

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from graphnn.backends import get_backend
from graphnn.errors import GraphnnError

from .result import InferenceResult, checked_layers, edges_per_second

__all__ = ["InferenceResult", "infer", "checked_layers", "edges_per_second", "compare_categories"]


def _saturated(be, Z, n_neurons, ymax):
    """Boolean per row: all ``n_neurons`` entries stored and equal to ``ymax``."""
    if ymax is None:
        return np.zeros(be.shape(Z)[0], dtype=bool)
    return be.row_counts(be.select(Z, "==", ymax)) == n_neurons


def infer(
    layers,
    images,
    bias,
    *,
    ymax=32.0,
    backend="numba",
    dtype=None,
    memory_limit=None,
    threads=None,
    progress=False,
    n_layers=None,
    column_classes=True,
    saturation_stop=True,
):
    """Run the challenge network ``layers`` on ``images`` and return an :class:`InferenceResult`.

    Parameters
    ----------
    layers : iterable of (N x N) sparse matrices, or a callable returning one
        Consumed one at a time, so a generator streams a network larger than memory; the time
        spent producing each layer is counted as reading, not inference. A callable (a fresh
        iterator per call) lets the ``numba`` backend re-read a network larger than its layer
        cache.
    images : (images x N) sparse matrix
    bias : float
        Added to every nonzero of ``Y W`` (the official value is -0.3 for N = 1024).
    ymax : float or None
        The clamp (32 in the challenge).
    backend : str
        ``numba`` (:mod:`challenge.batched`: memory-bounded batches of images, one thread per
        batch through every layer; the fastest measured on the CPU), ``graphblas``,
        ``reference`` (one backend operation per layer), or ``cupy`` (the fused dense-tile
        GPU kernel of :mod:`challenge.fused`).
    dtype : {"float32", "float64"}, optional
        Arithmetic of the ``numba`` kernel (default float64, as fast there as float32 and
        bit-identical to the reference) and the ``cupy`` kernel (default float32); the other
        backends compute in the images' type. Rows near the ReLU threshold can live in one
        precision and die in the other, so a truth is checked in the precision it was made in.
    memory_limit, threads : int, optional
        For ``numba``: see :func:`challenge.batched.infer_batched`.
    progress : bool
        Show a progress bar over layers on stderr.
    n_layers : int, optional
        The number of layers, for the progress bar when ``layers`` is a generator.
    column_classes : bool
        For ``numba`` and ``cupy``: compute each class of identical columns once per row
        (bit-identical; :func:`challenge.batched.infer_batched`'s ``classes``,
        :func:`challenge.fused.infer_fused`'s ``column_classes``).
    saturation_stop : bool
        For ``numba``: stop rows saturated in every neuron where that is exact
        (:func:`challenge.batched.infer_batched`'s ``saturation``); the categories are the
        same either way.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> W = sp.csr_array([[0.5, 0.0], [0.5, 1.0]])
    >>> Y0 = sp.csr_array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    >>> infer([W, W], Y0, bias=-0.1).categories
    array([1, 3])
    """
    backend = get_backend(backend).name if backend in ("scipy", "cpu") else backend
    if backend == "cupy":  # the fused dense-tile kernel, one launch per layer
        from .fused import infer_fused

        return infer_fused(
            layers() if callable(layers) else layers, images, bias, ymax=ymax,
            dtype=dtype or "float32", progress=progress, n_layers=n_layers,
            column_classes=column_classes,
        )  # fmt: skip
    if backend == "numba":
        from .batched import infer_batched

        return infer_batched(
            layers, images, bias, ymax=ymax, dtype=dtype or "float64",
            memory_limit=memory_limit, threads=threads, progress=progress, n_layers=n_layers,
            classes=column_classes, saturation=saturation_stop,
        )  # fmt: skip
    if callable(layers):
        layers = layers()
    be = get_backend(backend)
    images = sp.csr_array(images)
    n_images, n_neurons = images.shape
    live = np.flatnonzero(np.diff(images.indptr))  # image ids of the rows in Y
    Y = be.matrix(images[live])
    saturated = np.empty(0, dtype=np.int64)
    full = be.matrix(sp.csr_array(np.full((1, n_neurons), ymax or 0.0, dtype=images.dtype)))
    # compile or load the kernels now, so that the first layer's time is inference alone
    be.relu_layer(full, be.matrix(sp.identity(n_neurons, images.dtype, format="csr")), bias, ymax)
    result = InferenceResult(None, n_images, n_neurons, 0, 0, 0.0, input_rows=int(live.size))
    bar = tqdm(total=n_layers, desc="layers", unit="layer", disable=not progress, leave=False)
    for W in checked_layers(layers, n_neurons, result):
        t1 = time.perf_counter()
        Wb = be.matrix(W)
        if be.shape(Y)[0]:  # no product for an empty batch (undefined in cuSPARSE)
            Y = be.relu_layer(Y, Wb, bias, ymax)
        if saturated.size:
            rep = be.relu_layer(full, Wb, bias, ymax)
            if not _saturated(be, rep, n_neurons, ymax)[0]:
                if be.nnz(rep):
                    Y = be.vstack([Y, be.take_rows(rep, np.zeros(saturated.size, np.int64))])
                    live = np.concatenate([live, saturated])
                saturated = saturated[:0]
        now_saturated = _saturated(be, Y, n_neurons, ymax)
        keep = (be.row_counts(Y) > 0) & ~now_saturated
        if not keep.all():
            if now_saturated.any() and result.saturated_from is None:
                result.saturated_from = result.n_layers + 1
            saturated = np.concatenate([saturated, live[now_saturated]])
            live = live[keep]
            Y = be.take_rows(Y, np.flatnonzero(keep))
        result.seconds += time.perf_counter() - t1
        result.n_layers += 1
        result.live_rows.append(int(live.size))
        result.saturated_rows.append(int(saturated.size))
        bar.update()
        bar.set_postfix(live=live.size, saturated=saturated.size)
    bar.close()
    if result.n_layers == 0:
        raise GraphnnError("the network has no layers")
    result.categories = np.sort(np.concatenate([live, saturated])) + 1
    return result


def compare_categories(found, truth):
    """``(missing, extra)``: truth ids not found, and found ids not in the truth."""
    found, truth = np.asarray(found), np.asarray(truth)
    return np.setdiff1d(truth, found), np.setdiff1d(found, truth)
