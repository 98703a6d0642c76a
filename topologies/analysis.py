"""Structure of a chain of sparse layers: degrees, dead neurons, and exact path counts.

The number of paths from input ``i`` to output ``o`` is entry ``(i, o)`` of the product of the
layers' 0/1 patterns. It is computed a block of inputs at a time (dense block times sparse
layer), so memory is ``block x widest layer`` however wide the network is.
"""

import math

import numpy as np
import scipy.sparse as sp

from graphnn import kernels
from graphnn.errors import GraphnnError

__all__ = ["layer_stats", "path_stats", "analyze"]

_RESCALE = 2.0**900  # float64 tops out near 2**1024: rescale long chains, keep the exponent


def _degree(counts):
    if not counts.size:
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": int(counts.min()), "mean": float(counts.mean()), "max": int(counts.max())}


def layer_stats(W):
    """Per-layer structure: ``nnz``, ``density``, in/out degree min/mean/max, dead neurons
    (inputs with no out-edge, outputs with no in-edge) and ``params`` (edges plus one bias per
    output neuron).

    >>> import numpy as np
    >>> s = layer_stats(np.array([[1, 0], [1, 0], [0, 0]]))
    >>> s["out_degree"], s["dead_inputs"], s["dead_outputs"]
    ({'min': 0, 'mean': 0.6666666666666666, 'max': 1}, 1, 1)
    """
    P = sp.csr_array(W)  # every stored entry is an edge, whatever its weight
    n_in, n_out = P.shape
    out_deg = np.diff(P.indptr)
    in_deg = np.bincount(P.indices, minlength=n_out)
    return {
        "shape": [n_in, n_out],
        "nnz": int(P.nnz),
        "density": P.nnz / (n_in * n_out) if n_in * n_out else 0.0,
        "in_degree": _degree(in_deg),
        "out_degree": _degree(out_deg),
        "dead_inputs": int((out_deg == 0).sum()),
        "dead_outputs": int((in_deg == 0).sum()),
        "params": int(P.nnz + n_out),
    }


def _pattern_csc(W):
    C = sp.csc_array(W, dtype=np.float64, copy=True)
    C.data[:] = 1.0  # the structure: a zero weight is still an edge
    return C


def path_stats(layers, *, block=256, keep_counts=1 << 24, progress=False):
    """Path counts between every input and every output of the chain ``layers``.

    Returns a dict: ``paths_min`` and ``paths_max`` over all (input, output) pairs (floats;
    ``None`` past float64's range, see the ``_log2`` keys), ``connected_fraction`` (pairs
    with at least one path), ``symmetric`` (every pair has the same count), ``exact`` (counts
    below 2**53, so float64 holds them exactly) and ``counts`` (the n_in x n_out matrix when it
    has at most ``keep_counts`` entries, else ``None``). Cost: one pass of ``block`` inputs
    through every layer per block; ``progress`` shows a bar over the inputs on stderr.

    >>> from topologies.radixnet import radixnet
    >>> s = path_stats(radixnet([2, 2, 2], kron=[1, 2, 2, 1]))
    >>> s["paths_min"], s["paths_max"], s["symmetric"]
    (4.0, 4.0, True)
    """
    pats = [_pattern_csc(W) for W in layers]
    if not pats:
        raise GraphnnError("no layers to analyse")
    n_in, n_out = pats[0].shape[0], pats[-1].shape[1]
    counts = np.empty((n_in, n_out)) if n_in * n_out <= keep_counts else None
    lo, hi = (math.inf, math.inf), (-math.inf, -math.inf)  # (log2, value) of min and max
    connected, rescaled = 0, False
    from tqdm import tqdm

    bar = tqdm(total=n_in, desc="path counts", unit="input", disable=not progress, leave=False)
    for start in range(0, n_in, block):
        stop = min(n_in, start + block)
        PT = np.zeros((n_in, stop - start))  # transposed block: inputs x block
        PT[np.arange(start, stop), np.arange(stop - start)] = 1.0
        shift = 0  # the block's counts are PT * 2**shift
        for C in pats:
            PT = kernels.spmm_t(PT, C)
            if PT.max(initial=0.0) > _RESCALE:
                PT /= _RESCALE
                shift += 900
        nz = PT[PT > 0]
        connected += nz.size
        rescaled |= shift > 0
        with np.errstate(over="ignore"):  # past float64's range: inf, with the log2 kept
            if nz.size:
                lo = min(lo, (math.log2(nz.min()) + shift, np.ldexp(nz.min(), shift)))
                hi = max(hi, (math.log2(nz.max()) + shift, np.ldexp(nz.max(), shift)))
            if counts is not None:
                counts[start:stop] = np.ldexp(PT.T, shift)
        bar.update(stop - start)
    bar.close()
    total = n_in * n_out
    if connected < total:
        lo = (-math.inf, 0.0)  # some pair has no path
    finite = lambda v: float(v) if math.isfinite(v) else None  # noqa: E731
    return {
        "paths_min": finite(lo[1]),
        "paths_max": finite(hi[1]) if connected else 0.0,
        "paths_min_log2": finite(lo[0]),
        "paths_max_log2": finite(hi[0]),
        "connected_fraction": connected / total if total else 0.0,
        "symmetric": bool(connected == total and lo[1] == hi[1] and lo[0] == hi[0]),
        "exact": bool(not rescaled and hi[0] < 53),
        "counts": counts,
    }


def analyze(layers, progress=False):
    """Everything above for a chain: ``(report, counts)``, a JSON-ready dict and the path
    count matrix (``None`` when too large to keep); ``progress`` shows the path counting."""
    layers = list(layers)
    per_layer = [layer_stats(W) for W in layers]
    paths = path_stats(layers, progress=progress)
    counts = paths.pop("counts")
    report = {
        "layers": len(layers),
        "sizes": [layers[0].shape[0]] + [W.shape[1] for W in layers],
        "nnz": [s["nnz"] for s in per_layer],
        "density": [s["density"] for s in per_layer],
        "params": sum(s["params"] for s in per_layer),
        **paths,
        "per_layer": per_layer,
    }
    return report, counts
