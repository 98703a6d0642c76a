"""The network: a chain of sparse adjacency matrices W_1..W_L with biases and activations.

``W_l`` has shape ``(n_l, n_{l+1})``; ``W_l[i, j]`` is the edge from neuron ``i`` of layer ``l``
to neuron ``j`` of layer ``l + 1``. Features are row vectors, so one layer computes
``Y_{l+1} = f_l(Y_l @ W_l + b_l)``. Layers are held as canonical scipy CSR arrays (sorted
indices, no duplicates); backends convert them to their own format.

Structure and values are separate: a stored entry is an edge whatever its value, so a weight
that is exactly zero (regrown by dynamic sparse training, say) is still an edge and survives
every conversion and file format. Dense inputs (numpy arrays) have an edge at every nonzero.
"""

import numpy as np
import scipy.sparse as sp

from .activations import parse_activation
from .errors import DimensionMismatch, GraphnnError

__all__ = ["Network"]

_DTYPES = (np.float32, np.float64)


def _check_values(values, where, what="weight"):
    """Real, finite values (a NaN or infinite weight or bias is damage, not data)."""
    values = np.asarray(values)
    if values.dtype.kind not in "biuf":
        raise GraphnnError(f"{where}: {what}s must be real numbers, got {values.dtype}")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values.ravel()))
        raise GraphnnError(
            f"{where}: {bad.size} {what}(s) not finite (the first {values.ravel()[bad[0]]} at "
            f"position {bad[0]})"
        )


def _check_index(a, name, where):
    a = np.asarray(a)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise GraphnnError(
            f"{where}: {name} must be a 1-d array of integers, got {a.dtype} of shape {a.shape}"
        )
    return a


def check_sparse(W, where):
    """Check a scipy sparse matrix's arrays before any compiled routine reads them: ``indptr``
    of ``rows + 1`` non-decreasing offsets from 0 to the entry count, every index inside the
    shape, finite values. Vectorised: a few passes over the arrays."""
    rows, cols = W.shape
    if W.format in ("csr", "csc"):
        indptr = _check_index(W.indptr, "indptr", where)
        indices = _check_index(W.indices, "indices", where)
        major, minor = (rows, cols) if W.format == "csr" else (cols, rows)
        if indptr.size != major + 1:
            raise GraphnnError(f"{where}: indptr has {indptr.size} offsets, expected {major + 1}")
        if indptr[0] != 0 or indptr[-1] != indices.size or indices.size != np.size(W.data):
            raise GraphnnError(
                f"{where}: indptr runs {indptr[0]}..{indptr[-1]} over {indices.size} indices "
                f"and {np.size(W.data)} values (it must run 0..the entry count)"
            )
        step = np.diff(indptr)
        if (step < 0).any():
            raise GraphnnError(f"{where}: indptr decreases at offset {np.argmax(step < 0) + 1}")
        pairs = [("index", indices, minor)]
    elif W.format == "coo":
        row, col = (_check_index(a, n, where) for a, n in ((W.row, "row"), (W.col, "col")))
        if not row.size == col.size == np.size(W.data):
            raise GraphnnError(f"{where}: row, col and data lengths differ")
        pairs = [("row", row, rows), ("column", col, cols)]
    else:  # dok, lil, dia, bsr: built through scipy's own checks
        return check_sparse(W.tocoo(), where)
    for what, idx, bound in pairs:
        if idx.size and (idx.min() < 0 or idx.max() >= bound):
            k = int(np.argmax((idx < 0) | (idx >= bound)))
            raise GraphnnError(f"{where}: {what} {idx[k]} of entry {k} is outside 0..{bound - 1}")
    _check_values(W.data, where)


def _as_csr(W, dtype, where):
    """Canonical CSR copy of a scipy, graphblas, numpy or cupy matrix, checked first (see
    :func:`check_sparse`)."""
    if type(W).__module__.startswith("graphblas"):
        import graphblas as gb

        W = gb.io.to_scipy_sparse(W, format="csr")
    elif type(W).__module__.startswith("cupy"):
        W = W.get()
    if sp.issparse(W):
        if any(n < 0 for n in W.shape):
            raise DimensionMismatch(f"{where}: shape {W.shape} is negative")
        check_sparse(W, where)
        W = sp.csr_array(W, dtype=dtype, copy=True)
    else:
        A = np.asarray(W)
        if A.ndim != 2:
            raise DimensionMismatch(f"{where}: a layer must be 2-D, got {A.ndim}-D")
        _check_values(A, where)
        W = sp.csr_array(A.astype(dtype, copy=False))
    W.sum_duplicates()
    W.sort_indices()
    W.indptr = W.indptr.astype(np.int64, copy=False)
    W.indices = W.indices.astype(np.int64, copy=False)
    return W


def full_csr(A):
    """A dense 2-D array as a CSR with an entry at every position, zeros included (a fully
    connected layer, whose structure is every edge)."""
    A = np.asarray(A)
    n_in, n_out = A.shape
    indptr = np.arange(n_in + 1, dtype=np.int64) * n_out
    indices = np.tile(np.arange(n_out, dtype=np.int64), n_in)
    return sp.csr_array((A.ravel().copy(), indices, indptr), shape=A.shape)


def _as_bias(b, width, dtype, where):
    try:
        b = np.asarray(b)
    except (TypeError, ValueError) as e:  # ragged nested lists
        raise GraphnnError(f"{where}: bias must be numbers ({e})") from None
    _check_values(b, where, "bias")
    b = b.astype(dtype)
    if b.ndim == 0:
        return b.copy()
    if b.shape != (width,):
        raise DimensionMismatch(
            f"{where}: bias must be a scalar or a vector of length {width}, got shape {b.shape}"
        )
    return b.copy()


def _per_layer(value, n, name):
    """Broadcast one value to every layer, or check a list has one entry per layer."""
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise DimensionMismatch(f"{name}: expected one entry per layer ({n}), got {len(value)}")
        return list(value)
    return [value] * n


class Network:
    """A chain of sparse layers with a bias and an activation per layer.

    Parameters
    ----------
    layers : sequence of matrices
        ``W_1..W_L`` as scipy sparse, python-graphblas ``Matrix``, numpy or CuPy arrays.
        Consecutive shapes must chain: ``W_l.shape[1] == W_{l+1}.shape[0]``.
    biases : scalar, vector, or one per layer
        A scalar applies to every neuron; a vector has the layer's output width.
    activations : str or one per layer
        ``"relu"``, ``"relu:<max>"``, ``"identity"``, ``"sigmoid"`` or ``"softmax"``.
    dtype : float32 or float64
    metadata : dict of JSON-serialisable values, kept through save/load.

    Examples
    --------
    >>> import numpy as np
    >>> net = Network([np.eye(2), np.ones((2, 3))], biases=0.5, activations="relu")
    >>> net.sizes
    [2, 2, 3]
    >>> net.nnz
    [2, 6]
    """

    def __init__(self, layers, biases=0.0, activations="relu", dtype=np.float64, metadata=None):
        dtype = np.dtype(dtype)
        if dtype.type not in _DTYPES:
            raise GraphnnError(f"dtype must be float32 or float64, got {dtype}")
        layers = list(layers)
        if not layers:
            raise GraphnnError("a network needs at least one layer")
        self.dtype = dtype
        self.layers = [_as_csr(W, dtype, f"layer {k + 1}") for k, W in enumerate(layers)]
        for k in range(1, len(self.layers)):
            prev, cur = self.layers[k - 1].shape, self.layers[k].shape
            if prev[1] != cur[0]:
                raise DimensionMismatch(
                    f"layer {k} has shape {prev} but layer {k + 1} has shape {cur}: "
                    f"layer {k + 1} must have {prev[1]} rows"
                )
        L = len(self.layers)
        self.biases = [
            _as_bias(b, W.shape[1], dtype, f"layer {k + 1}")
            for k, (W, b) in enumerate(zip(self.layers, _per_layer(biases, L, "biases")))
        ]
        self.activations = [parse_activation(a) for a in _per_layer(activations, L, "activations")]
        self.metadata = dict(metadata or {})

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        """The layers ``W_1..W_L`` in order."""
        return iter(self.layers)

    def __getitem__(self, k):
        """Layer ``W_{k+1}`` (0-based, as a list)."""
        return self.layers[k]

    def __repr__(self):
        return f"<Network {'-'.join(map(str, self.sizes))}, {sum(self.nnz)} edges, {self.dtype}>"

    @property
    def sizes(self):
        """The L + 1 layer widths ``[n_1, ..., n_{L+1}]``."""
        return [self.layers[0].shape[0]] + [W.shape[1] for W in self.layers]

    @property
    def nnz(self):
        """Edges per layer."""
        return [int(W.nnz) for W in self.layers]

    @property
    def density(self):
        """Fraction of possible edges present, per layer."""
        return [W.nnz / max(W.shape[0] * W.shape[1], 1) for W in self.layers]

    def forward(self, X, backend="numba"):
        """Dense inference: rows of ``X`` are samples; returns the last layer's output."""
        from .backends import get_backend

        be = get_backend(backend)
        Y = np.asarray(X, dtype=self.dtype)
        if Y.ndim != 2 or Y.shape[1] != self.sizes[0]:
            raise DimensionMismatch(
                f"input must have shape (samples, {self.sizes[0]}), got {Y.shape}"
            )
        for W, b, f in zip(self.layers, self.biases, self.activations):
            Y = f(be.asnumpy(be.spmm(be.asarray(Y), be.matrix(W))) + b)
        return Y

    # -- conversions -------------------------------------------------------------------------

    def to_scipy(self):
        """The layers as scipy CSR arrays (copies)."""
        return [W.copy() for W in self.layers]

    def to_graphblas(self):
        """The layers as python-graphblas ``Matrix`` objects."""
        import graphblas as gb

        return [gb.io.from_scipy_sparse(W) for W in self.layers]

    def to_networkx(self):
        """A ``networkx.DiGraph`` with nodes ``(layer, index)``.

        Layer 0 is the input. Each node has attributes ``layer`` and ``index``; nodes past the
        input also carry ``bias``; edges carry ``weight``; the graph attribute ``activations``
        is one comma-separated string (so ``networkx.write_graphml`` can store it).
        """
        import networkx as nx

        G = nx.DiGraph()
        for l, n in enumerate(self.sizes):
            bias = None if l == 0 else np.broadcast_to(self.biases[l - 1], (n,))
            for i in range(n):
                attrs = {"layer": l, "index": i}
                if bias is not None:
                    attrs["bias"] = float(bias[i])
                G.add_node((l, i), **attrs)
        for l, W in enumerate(self.layers):
            C = W.tocoo()
            G.add_weighted_edges_from(
                ((l, int(i)), (l + 1, int(j)), float(v)) for i, j, v in zip(C.row, C.col, C.data)
            )
        # one string, so that every networkx writer (GraphML, GEXF) can store it
        G.graph["activations"] = ",".join(str(a) for a in self.activations)
        return G

    @classmethod
    def from_networkx(cls, G, dtype=np.float64):
        """Inverse of :meth:`to_networkx`: nodes need ``layer`` and ``index`` attributes."""
        try:
            node_pos = {v: (int(d["layer"]), int(d["index"])) for v, d in G.nodes(data=True)}
        except KeyError as e:
            raise GraphnnError(
                f"every node needs 'layer' and 'index' attributes, missing {e}"
            ) from None
        if not node_pos:
            raise GraphnnError("the graph has no nodes")
        n_levels = max(l for l, _ in node_pos.values()) + 1
        sizes = [0] * n_levels
        for l, i in node_pos.values():
            sizes[l] = max(sizes[l], i + 1)
        coo = [([], [], []) for _ in range(n_levels - 1)]
        for u, v, w in G.edges(data="weight", default=1.0):
            (lu, iu), (lv, iv) = node_pos[u], node_pos[v]
            if lv != lu + 1:
                raise GraphnnError(f"edge {u!r} -> {v!r} does not join consecutive layers")
            rows, cols, vals = coo[lu]
            rows.append(iu)
            cols.append(iv)
            vals.append(w)
        biases = [np.zeros(n) for n in sizes[1:]]
        for v, d in G.nodes(data=True):
            l, i = node_pos[v]
            if l > 0 and "bias" in d:
                biases[l - 1][i] = d["bias"]
        layers = [
            sp.csr_array((vals, (rows, cols)), shape=(sizes[l], sizes[l + 1]))
            for l, (rows, cols, vals) in enumerate(coo)
        ]
        acts = G.graph.get("activations", "relu")
        if isinstance(acts, str) and "," in acts:
            acts = acts.split(",")
        return cls(layers, biases=biases, activations=acts, dtype=dtype)
