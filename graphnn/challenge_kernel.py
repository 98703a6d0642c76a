"""The CPU kernel of the Sparse DNN Graph Challenge: a batch of rows through many layers in one
call.

One call takes a batch of activation rows (CSR) through a run of layers and returns the rows
still live, so a thread works on its batch from the first layer to the last without meeting the
other threads: there is no parallel region per layer to wait at, and a thread that a busy
neighbour slows simply takes fewer batches (``challenge.batched`` hands them out). Every row is
computed by the Gustavson rule in the order of its own entries, so the result does not depend on
how rows are batched or how many threads run.

Per row and layer: ``z = y W``; the bias is added where ``z != 0``; ReLU; clamp at ``ymax``.
A row that becomes empty stops (it is dead); a row with all ``N`` entries equal to ``ymax``
stops when ``collapse[layer]`` says that a row of ``ymax`` stays one through every later layer
(it is then a category whatever comes next).

Cost: one scatter-add per multiply (``nnz(y) * 32`` on the challenge networks) plus, for rows
that fill more than 1/8 of the columns, one scan of ``N`` columns; memory bound by the random
access to the ``N``-entry accumulator (L1 for N = 1024, L2 for N = 65,536). Where every weight
of a layer is the same power of two (1/16 in the challenge), the kernel adds the inputs and
scales the sum once, which is bit-identical to weighting each term (scaling by a power of two
is exact) and saves the weight loads.
"""

import threading

import numba as nb
import numpy as np

__all__ = [
    "LayerStack",
    "Workspace",
    "block_interleave",
    "csc_arrays",
    "relu_layer",
    "run_rows",
    "stays_saturated",
    "uniform_scale",
    "unsigned",
]

DEAD, SATURATED = 0, 1


def uniform_scale(data):
    """The common weight if every entry of ``data`` is the same power of two, else 0."""
    if data.size == 0:
        return 0.0
    w = float(data[0])
    if w <= 0 or not _all_equal(data):
        return 0.0
    mantissa, _ = np.frexp(w)
    return w if mantissa == 0.5 else 0.0


def value_bits(values):
    """The bit pattern of each value as uint64: values equal exactly when their patterns are
    (what :func:`column_classes` compares)."""
    return values.view(np.uint64 if values.itemsize == 8 else np.uint32).astype(np.uint64)


def unsigned(index):
    """The index array ``index`` viewed as unsigned (no copy): numba then indexes with it
    without the negative-index check (2x faster in :func:`column_classes`)."""
    return index.view(np.uint32 if index.itemsize == 4 else np.uint64)


@nb.njit(nogil=True, cache=True)
def _all_equal(data):
    """Whether every entry of ``data`` equals the first (one pass, no temporary; a layer's
    check took 0.18 ms as ``np.all(data == data[0])`` in the reading loop). Blocks of 512
    without an early exit inside are vectorised: 1.8x faster than a loop that exits at once."""
    first = data[0]
    for lo in range(0, data.size, 512):
        differ = False
        for q in range(lo, min(lo + 512, data.size)):
            differ |= data[q] != first
        if differ:
            return False
    return True


def block_interleave(n, blocks=16):
    """New neuron labels that put the ``blocks`` copies of a Kronecker-structured layer side by
    side: neuron ``b * (n / blocks) + x`` becomes ``x * blocks + b`` (uint32, one per neuron).

    A challenge layer is ``kron(ones(B, B), R)`` with rows permuted, so each row's 32 outputs
    are the same two offsets in each of the ``B = 16`` blocks, 32 cache lines of the
    accumulator apart; relabelled, they are two runs of 16 columns. The network computes the
    same function of relabelled neurons (images relabelled alike; a category is any nonzero
    of the last layer), so the categories are unchanged; only the order in which a row's sums
    are accumulated changes, as it does between any two batchings of the sparse path.
    """
    if n % blocks:
        raise ValueError(f"{n} neurons do not split into {blocks} blocks")
    c = np.arange(n, dtype=np.int64)
    return ((c % (n // blocks)) * blocks + c // (n // blocks)).astype(np.uint32)


class LayerStack:
    """Layers in the kernel's form: one CSR ``indptr`` row per layer (``layers x (N + 1)``,
    offsets into one ``indices`` array), each layer's uniform power-of-two weight (0 where the
    weights differ) and, for the other layers only, their values in the arithmetic ``dtype``
    (``values[voff[l] + q]`` is the value of entry ``q`` of layer ``l``). Buffers grow by
    doubling, so appending layer after layer copies each byte about once.

    ``relabel`` (the new label of each neuron, as :func:`block_interleave` gives) stores every
    layer relabelled, ``W'[new(i), new(j)] = W[i, j]``; the rows fed to it must be relabelled
    alike (:meth:`Workspace.load`'s ``label``)."""

    def __init__(self, n_neurons, dtype, relabel=None, classes=False):
        self.n, self.dtype = n_neurons, np.dtype(dtype)
        self.relabel = relabel  # new label of each neuron, or None
        self.classes = classes
        self._prepared = {}  # classes: layer -> its arrays, filled on any thread
        self._class_of = np.full(0, -1, np.int64)  # classes: a layer's block of class arrays
        self._cls = np.empty((5, 0, n_neurons + 1), np.uint32)
        self.class_counts = []  # classes: distinct columns of each layer (n: none shared)
        self._pending_bytes, self._class_bytes = {}, 0  # classes: the bytes kept, kept up to date
        self._lock = threading.Lock()
        if relabel is not None:
            self._old = np.argsort(relabel).astype(np.int64)  # old label of each new one
        self._ptr = np.zeros((0, n_neurons + 1), np.uint64)
        self._idx = np.empty(0, np.uint32)
        self._val = np.empty(0, self.dtype)
        self._scale, self._voff = [], []
        self.layers = self.nnz = self.nval = 0

    def __len__(self):
        return self.layers

    @property
    def nbytes(self):
        if self.classes:  # filled layers as they are kept, the others at most their full size
            return self._class_bytes
        return 8 * self.layers * (self.n + 1) + 4 * self.nnz + self.dtype.itemsize * self.nval

    def bytes_for(self, W, scale):
        """What :attr:`nbytes` grows by when ``W`` (whose :func:`uniform_scale` is ``scale``)
        is added: no values where its weights are one ``scale``."""
        return 8 * (self.n + 1) + W.nnz * (4 + (0 if scale else self.dtype.itemsize))

    def append(self, W):
        """Add the scipy CSR layer ``W``."""
        self.fill(W, self.reserve(W))

    def has_room(self, W, scale):
        """Whether :meth:`reserve` can place ``W`` (whose :func:`uniform_scale` is ``scale``)
        without growing a buffer."""
        if self.classes:  # each layer is filled into arrays of its own
            return True
        return (self._ptr.shape[0] > self.layers and self._idx.size >= self.nnz + W.nnz
                and (scale or self._val.size >= self.nval + W.nnz))  # fmt: skip

    def reserve(self, W, scale=None):
        """Place the scipy CSR layer ``W`` at the end of the stack and return where it goes;
        :meth:`fill` then writes it, on any thread. Layers reserved together are filled in
        disjoint places, so threads can relabel them while the next layer is read; the caller
        waits for the fills before a reserve that grows a buffer (:meth:`has_room`) and before
        :meth:`arrays`. ``scale`` is ``uniform_scale(W.data)`` if the caller has it."""
        scale = uniform_scale(W.data) if scale is None else scale
        if self.classes:  # filled into its own arrays, stacked by arrays()
            with self._lock:
                self._prepared[self.layers] = None
                self._pending_bytes[self.layers] = self.bytes_for(W, scale)
                self._class_bytes += self._pending_bytes[self.layers]
            self.layers += 1
            return (self.layers - 1, 0, 0, scale)
        self._ptr = _room(self._ptr, self.layers + 1)
        self._idx = _room(self._idx, self.nnz + W.nnz)
        slot = (self.layers, self.nnz, self.nval, scale)
        self._voff.append(self.nval - self.nnz)
        if not scale:  # a uniform layer needs no values: its scale stands for them
            self._val = _room(self._val, self.nval + W.nnz)
            self.nval += W.nnz
        self._scale.append(scale)
        self.layers += 1
        self.nnz += W.nnz
        return slot

    def fill(self, W, slot):
        """Write ``W`` where :meth:`reserve` placed it (relabelled; every row's columns
        ascending, the order the kernel's sparse path emits new columns in)."""
        if self.classes:
            arrays = self._classed(W, slot[3])
            with self._lock:
                self._prepared[slot[0]] = arrays
                self._class_bytes += _bytes(arrays) - self._pending_bytes.pop(slot[0])
            return
        layer, start, vstart, scale = slot
        ptr, idx = self._ptr[layer], self._idx[start : start + W.nnz]
        if self.relabel is None:
            if not W.has_sorted_indices:
                W = W.sorted_indices()
            ptr[:] = W.indptr
            idx[:] = W.indices
            data = W.data
        else:
            order = np.empty(0 if scale else W.nnz, np.int64)
            _relabelled(W.indptr.astype(np.int64, copy=False), W.indices, self._old,
                        self.relabel, ptr, idx, order, np.empty(0, np.bool_))  # fmt: skip
            data = None if scale else W.data[order]
        ptr += np.uint64(start)
        if not scale:
            self._val[vstart : vstart + W.nnz] = data

    def arrays(self):
        """``(indptr, indices, values, value offsets, scale, class block of each layer, class
        arrays)`` for :func:`run_rows` (views)."""
        if self.classes:
            self._stack_prepared()
        return (
            self._ptr[: self.layers],
            self._idx[: self.nnz],
            self._val[: self.nval],
            np.array(self._voff, np.int64),
            np.array(self._scale, self.dtype),
            self._class_of[: self.layers] if self.classes else np.full(self.layers, -1, np.int64),
            self._cls,
        )

    def _classed(self, W, scale):
        """Layer ``W`` relabelled and grouped by identical columns (:func:`column_classes`):
        ``(indptr, indices, values or None, scale, class arrays or None)``, the indices and
        values those of the representative columns only. The classes are found on ``W`` as
        given and only the representatives' entries are relabelled and sorted (a sixteenth of
        a challenge layer's)."""
        n = self.n
        ptr, idx = unsigned(W.indptr), unsigned(W.indices)
        data = None if scale else W.data.astype(self.dtype, copy=False)
        bits = np.empty(0, np.uint64) if scale else value_bits(data)  # one weight: rows decide
        old = self._old if self.relabel is not None else np.arange(n, dtype=np.int64)
        new = self.relabel if self.relabel is not None else old
        cptr, cidx, order, cls, count = _class_layer(ptr, idx, bits, old, new)
        values = None if scale else data[order]
        return cptr, cidx, values, scale, None if count == n else cls, count

    def _stack_prepared(self):
        """Move the filled layers' own arrays into the stacked buffers, in layer order."""
        todo = sorted(self._prepared)
        if not todo:
            return
        if any(self._prepared[k] is None for k in todo):
            raise RuntimeError("a reserved layer was not filled")
        prepared = [self._prepared.pop(k) for k in todo]
        # every buffer sized once for all of them: no doubling copies
        self._ptr = _room(self._ptr, self.layers)
        self._idx = _room(self._idx, self.nnz + sum(a[1].size for a in prepared))
        self._val = _room(self._val, self.nval + sum(a[2].size for a in prepared
                                                     if a[2] is not None))  # fmt: skip
        self._class_of = np.concatenate([self._class_of, np.full(len(todo), -1, np.int64)])
        blocks = []
        for k, (ptr, idx, data, scale, cls, count) in zip(todo, prepared):
            self._ptr[k] = ptr + np.uint64(self.nnz)
            self._idx[self.nnz : self.nnz + idx.size] = idx
            self._voff.append(self.nval - self.nnz)
            if data is not None:
                self._val[self.nval : self.nval + data.size] = data
                self.nval += data.size
            self._scale.append(scale)
            self.nnz += idx.size
            self.class_counts.append(count)
            if cls is not None:
                self._class_of[k] = self._cls.shape[1] + len(blocks)
                blocks.append(cls)
        if blocks:
            self._cls = np.concatenate([self._cls, np.stack(blocks, axis=1)], axis=1)


def _bytes(arrays):
    if isinstance(arrays, np.ndarray):
        return arrays.nbytes
    return sum(a.nbytes for a in arrays[:3] + arrays[4:5] if a is not None)


@nb.njit(nogil=True, cache=True)
def column_classes(ptr, idx, bits, n):
    """The representative of every column of the CSR layer ``(ptr, idx)`` (rows ascending,
    ``n`` columns) with values of bit patterns ``bits`` (uint64; empty: all one value): the
    smallest column with
    exactly the same rows and the same values. Columns are grouped by a hash of their entries
    taken in row order, then every entry is checked against its representative's (a collision
    leaves a column in a class of its own: never a wrong merge). Cost: O(nnz + n), no sort."""
    prime = np.uint64(1099511628211)
    valued = bits.size > 0
    h = np.full(n, np.uint64(14695981039346656037))
    count = np.zeros(n, np.int64)
    for i in range(n):
        for q in range(ptr[i], ptr[i + 1]):
            j = idx[q]
            h[j] = ((h[j] ^ np.uint64(i)) * prime ^ (bits[q] if valued else np.uint64(0))) * prime
            count[j] += 1
    # open addressing: the first (smallest) column of each hash becomes the representative
    size = 1
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    table = np.full(size, -1, np.int64)
    rep = np.empty(n, np.int64)
    for j in range(n):
        slot = (h[j] ^ (h[j] >> np.uint64(29))) & mask
        while True:
            r = table[slot]
            if r < 0:
                table[slot] = j
                rep[j] = j
                break
            if h[r] == h[j] and count[r] == count[j]:
                rep[j] = r
                break
            slot = (slot + np.uint64(1)) & mask
    # verify: every entry of a member is its representative's entry in the same row
    mark = np.full(n, -1, np.int64)
    value = np.zeros(n, np.uint64)
    for i in range(n):
        for q in range(ptr[i], ptr[i + 1]):
            mark[idx[q]] = i
            if valued:
                value[idx[q]] = bits[q]
        for q in range(ptr[i], ptr[i + 1]):
            j = idx[q]
            r = rep[j]
            if r != j and (mark[r] != i or (valued and value[r] != bits[q])):
                rep[j] = j  # a hash collision: its own class
    return rep  # a representative is never split off: it stays its own


@nb.njit(nogil=True, cache=True)
def _class_layer(ptr, idx, bits, old, new):
    """:meth:`LayerStack._classed` in one call (a thread that returns from a call waits for
    the GIL): ``(cptr, cidx, order, cls, count)``, the representatives' entries relabelled
    (:func:`_representative_rows`), the class arrays of :func:`run_rows` and the number of
    classes. ``cls`` rows: representative of every column, the members' CSR (pointers,
    members), each row's whole length, the representatives ascending; the last column holds
    whether every class is a run of consecutive columns from its representative (row 3: the
    relabelled challenge layers, whose dense path then writes class by class) and the number
    of classes (row 4)."""
    n = old.size
    rep = column_classes(ptr, idx, bits, n)
    cptr, cidx, order, rowlen, rep = _representative_rows(ptr, idx, rep, old, new)
    mptr, members = _members(rep)
    cls = np.zeros((5, n + 1), np.uint32)
    cls[1, :] = mptr
    cls[2, :] = members
    cls[3, :] = rowlen
    count = 0
    runs = True
    for j in range(n):
        cls[0, j] = rep[j]
        if rep[j] == j:
            cls[4, count] = j
            count += 1
        owner = rep[members[j]]
        runs = runs and members[j] == owner + j - mptr[owner]
    cls[3, n] = runs
    cls[4, n] = count
    return cptr, cidx, order, cls, count


@nb.njit(nogil=True, cache=True)
def _representative_rows(indptr, indices, rep, old, new):
    """The layer ``(indptr, indices)`` of classes ``rep`` (:func:`column_classes`) relabelled
    (``old``/``new`` as :func:`_relabelled`'s), keeping the entries of representative columns
    only: ``(ptr, idx, order, rowlen, rep)``, the kept entries' CSR (each row's columns
    ascending), their positions in ``indices``, each new row's whole length and the
    representative of every new column, the smallest new label of its class."""
    n = old.size
    low = np.full(n, n, np.int64)  # by old representative: its class's smallest new label
    for j in range(n):
        low[rep[j]] = min(low[rep[j]], new[j])
    keep = np.empty(n, np.bool_)  # old column j is its class's new representative
    new_rep = np.empty(n, np.int64)
    for j in range(n):
        keep[j] = new[j] == low[rep[j]]
        new_rep[new[j]] = low[rep[j]]
    ptr = np.zeros(n + 1, np.uint64)
    idx = np.empty(indices.size, np.uint32)  # room for all: only the pages written are touched
    order = np.empty(indices.size, np.int64)
    m = _relabelled(indptr, indices, old, new, ptr, idx, order, keep)
    rowlen = np.zeros(n + 1, np.uint32)
    for i in range(n):
        rowlen[i] = indptr[old[i] + 1] - indptr[old[i]]
    return ptr, idx[:m].copy(), order[:m].copy(), rowlen, new_rep


@nb.njit(nogil=True, cache=True)
def _members(rep):
    """The members of every class of ``rep`` ascending, CSR over the representatives:
    ``(mptr, members)`` (``n + 1`` each, the last member slot unused)."""
    n = rep.size
    mptr = np.zeros(n + 1, np.uint32)
    for j in range(n):
        mptr[rep[j] + 1] += 1
    for j in range(n):
        mptr[j + 1] += mptr[j]
    fill = mptr[:-1].copy()
    members = np.zeros(n + 1, np.uint32)
    for j in range(n):
        members[fill[rep[j]]] = j
        fill[rep[j]] += 1
    return mptr, members


@nb.njit(nogil=True, cache=True)
def _relabelled(indptr, indices, old, new, ptr, idx, order, keep):
    """Row ``i`` of the relabelled layer is old row ``old[i]`` with its columns renamed by
    ``new``, in ascending order: its CSR ``ptr`` and ``idx`` (and, when ``order`` has room, the
    old position of each entry), of the entries whose old column ``keep`` marks (``keep``
    empty: all). Returns the entries written."""
    keep_order = order.size > 0
    every = keep.size == 0
    ptr[0] = 0
    m = 0
    for i in range(old.size):
        r = old[i]
        start = m
        for p in range(indptr[r], indptr[r + 1]):
            if not every and not keep[indices[p]]:
                continue
            # insertion into the row so far: each row's columns ascending (a few dozen entries)
            j = new[indices[p]]
            t = m
            while t > start and idx[t - 1] > j:
                idx[t] = idx[t - 1]
                if keep_order:
                    order[t] = order[t - 1]
                t -= 1
            idx[t] = j
            if keep_order:
                order[t] = p
            m += 1
        ptr[i + 1] = m
    return m


def _room(a, size):
    """``a`` with room for ``size`` rows: itself, or a copy with twice the capacity."""
    if a.shape[0] >= size:
        return a
    b = np.empty((max(size, 2 * a.shape[0]),) + a.shape[1:], a.dtype)
    b[: a.shape[0]] = a
    return b


def csc_arrays(W, index_dtype=np.int32, *, with_order=True):
    """The CSC arrays ``(colptr, rowidx, order)`` of the scipy CSR ``W`` in one counting pass:
    ``colptr`` int64, ``rowidx`` of ``index_dtype`` (rows ascending in every column) and
    ``order``, the CSR position of each CSC entry (``W.data[order]`` are the CSC values; None
    without ``with_order``, for layers whose values are all one). The fused GPU kernel's upload
    layout."""
    n_rows, n_cols = W.shape
    if n_rows > np.iinfo(index_dtype).max + 1:
        raise ValueError(f"{n_rows} rows do not fit {np.dtype(index_dtype).name} indices")
    indptr = W.indptr.astype(np.int64, copy=False)
    order = np.empty(W.nnz if with_order else 0, np.int64)
    colptr, rowidx = _transpose(indptr, W.indices, n_cols, np.empty(W.nnz, index_dtype), order)
    return colptr, rowidx, order if with_order else None


@nb.njit(nogil=True, cache=True)
def _transpose(indptr, indices, n_cols, rowidx, order):
    colptr = np.zeros(n_cols + 1, np.int64)
    for p in range(indices.size):
        colptr[indices[p] + 1] += 1
    for j in range(n_cols):
        colptr[j + 1] += colptr[j]
    fill = colptr[:-1].copy()
    keep_order = order.size > 0
    for i in range(indptr.size - 1):
        for p in range(indptr[i], indptr[i + 1]):
            q = fill[indices[p]]
            rowidx[q] = i
            if keep_order:
                order[q] = p
            fill[indices[p]] = q + 1
    return colptr, rowidx


def relu_layer(Y, W, bias, ymax=None):
    """One layer on every row of the scipy CSR ``Y``: ``Z = Y W``, the bias on the nonzeros,
    ReLU, clamp at ``ymax``; a scipy CSR with sorted indices (rows that die are empty)."""
    import scipy.sparse as sp

    dtype = np.result_type(Y.dtype, W.dtype)
    ymax = np.inf if ymax is None else ymax
    W = sp.csr_array(W)
    n = max(W.shape)  # the kernel's layers are square: pad with empty rows or columns
    ptr = np.concatenate([W.indptr, np.full(n - W.shape[0], W.nnz, W.indptr.dtype)])
    stack = LayerStack(n, dtype)
    stack.append(sp.csr_array((W.data, W.indices, ptr), shape=(n, n)))
    ws = Workspace(dtype)
    rows = np.arange(Y.shape[0])
    count = ws.load(Y.indptr, Y.indices, Y.data, rows, rows)
    fates = np.zeros(Y.shape[0], np.int64), np.zeros(Y.shape[0], np.int8)
    ws.bufs, which, count = run_rows(
        ws.bufs, count, *stack.arrays(), 0, 1, 0, np.zeros(1, np.bool_), dtype.type(bias),
        dtype.type(ymax), *fates,
    )  # fmt: skip
    ptr, idx, val, ids = ws.rows(which, count)
    sizes = np.zeros(Y.shape[0] + 1, np.int64)
    sizes[ids + 1] = np.diff(ptr.astype(np.int64))
    Z = sp.csr_array((val, idx.astype(np.int32), np.cumsum(sizes)), shape=(Y.shape[0], W.shape[1]))
    Z.sort_indices()
    return Z


def stays_saturated(W, dtype, bias, ymax, relabel=None, scale=None):
    """Whether a row of ``ymax`` is one again after the scipy CSR layer ``W``: the kernel's
    arithmetic in the kernel's order (bit for bit what :func:`run_rows` computes), without
    converting the layer. ``relabel`` is the :class:`LayerStack`'s: a row then sums its terms
    in the new order of the neurons (it matters only where the weights differ). ``scale`` is
    ``uniform_scale(W.data)`` if the caller has it."""
    dtype = np.dtype(dtype)
    if not np.isfinite(ymax) or W.shape[0] != W.shape[1]:
        return False
    scale = uniform_scale(W.data) if scale is None else scale
    if scale:
        # every term is ymax, so a column's sum depends only on its in-degree (the order of
        # equal terms cannot change the partial sums): one sum per distinct in-degree
        one = np.zeros(1, dtype)  # the kernel's arithmetic type
        return _stays_uniform(unsigned(W.indices), W.shape[0], one, dtype.type(ymax),
                              dtype.type(scale), dtype.type(bias))  # fmt: skip
    if relabel is not None:
        old = np.argsort(relabel)
        W = W[old][:, old]  # W'[new(i), new(j)] = W[i, j]: rows in the kernel's order
    data = W.data.astype(dtype)
    return _stays(W.indptr, W.indices, data, dtype.type(scale), dtype.type(bias),
                  dtype.type(ymax))  # fmt: skip


@nb.njit(nogil=True, cache=True)
def _stays_uniform(indices, n, z, ymax, scale, bias):
    """:func:`stays_saturated` of a layer of one weight ``scale``: each distinct in-degree's
    sum of ``ymax`` terms, in the type of the one-element ``z``."""
    degrees = np.zeros(n, np.int64)
    for j in indices:
        degrees[j] += 1
    seen = np.zeros(indices.size + 1, np.bool_)
    for j in range(n):
        d = degrees[j]
        if seen[d]:
            continue
        seen[d] = True
        z[0] = 0
        for _ in range(d):
            z[0] += ymax
        if z[0] == 0:
            return False
        z[0] *= scale
        z[0] += bias
        if z[0] < ymax:
            return False
    return True


@nb.njit(nogil=True, cache=True)
def _stays(indptr, indices, data, scale, bias, ymax):
    n = indptr.size - 1
    acc = np.zeros(n, data.dtype)
    for k in range(n):
        for q in range(indptr[k], indptr[k + 1]):
            if scale != 0:
                acc[indices[q]] += ymax
            else:
                acc[indices[q]] += ymax * data[q]
    for j in range(n):
        z = acc[j]
        if z == 0:
            return False
        if scale != 0:
            z *= scale
        if z + bias < ymax:
            return False
    return True


class Workspace:
    """Row buffers for :func:`run_rows`, kept between calls (one per thread)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.bufs = (
            np.zeros(1, np.uint64), np.empty(0, np.uint32), np.empty(0, self.dtype),
            np.empty(0, np.int64), np.zeros(1, np.uint64), np.empty(0, np.uint32),
            np.empty(0, self.dtype), np.empty(0, np.int64),
        )  # fmt: skip

    def load(self, indptr, indices, data, rows, ids, label=None):
        """Copy rows ``rows`` of the CSR ``(indptr, indices, data)`` into the input set, as the
        rows of images ``ids``, their columns renamed by ``label`` if given (a
        :class:`LayerStack`'s ``relabel``); returns their number."""
        nnz = int((indptr[rows + 1] - indptr[rows]).sum())
        b = list(self.bufs)
        for i, need in ((0, rows.size + 1), (1, nnz), (2, nnz), (3, rows.size)):
            if b[i].size < need:
                b[i] = np.empty(need + need // 2, b[i].dtype)
        label = np.empty(0, np.uint32) if label is None else label
        _gather(indptr, indices, data, rows, label, b[0], b[1], b[2])
        b[3][: rows.size] = ids
        self.bufs = tuple(b)
        return rows.size

    def rows(self, which, count):
        """Copies of the first ``count`` rows of set ``which``: ``(ptr, idx, val, ids)``."""
        ptr, idx, val, ids = self.bufs[4 * which : 4 * which + 4]
        end = int(ptr[count])
        return ptr[: count + 1].copy(), idx[:end].copy(), val[:end].copy(), ids[:count].copy()


@nb.njit(nogil=True, cache=True)
def _gather(indptr, indices, data, rows, label, ptr, idx, val):
    m = 0
    ptr[0] = 0
    relabel = label.size > 0
    for r in range(rows.size):
        i = rows[r]
        for p in range(indptr[i], indptr[i + 1]):
            idx[m] = label[indices[p]] if relabel else indices[p]
            val[m] = data[p]
            m += 1
        ptr[r + 1] = m


@nb.njit(nogil=True, cache=True)
def _grow(a, need):
    b = np.empty(max(np.int64(need), 2 * a.size), a.dtype)
    b[: a.size] = a
    return b


@nb.njit(nogil=True, cache=True, inline="always")
def _emit(z, j, scale, bias, ymax, o_idx, o_val, m):
    """Write output ``j`` of a row if its value survives; returns ``(m, saturated)``."""
    if scale != 0:
        z *= scale
    z += bias
    if z > 0:
        sat = z >= ymax
        o_idx[m] = j
        o_val[m] = ymax if sat else z
        return m + np.uint64(1), sat
    return m, False


@nb.njit(nogil=True, cache=True, inline="always")
def _accumulate(lo, hi, idx, val, wptr, lidx, lval, voff, scale, acc):
    """The dense path's sums: every input entry's row of the layer added into ``acc``
    (weighted, or scaled once later where the layer's weights are all ``scale``)."""
    one = np.uint64(1)
    if scale != 0:
        for p in range(lo, hi):
            v = val[p]
            k = idx[p]
            for q in range(wptr[k], wptr[k + one]):
                acc[lidx[q]] += v
    else:
        for p in range(lo, hi):
            v = val[p]
            k = idx[p]
            for q in range(wptr[k], wptr[k + one]):
                acc[lidx[q]] += v * lval[np.int64(q) + voff]


@nb.njit(nogil=True, cache=True)
def _row(lo, hi, idx, val, wptr, lidx, lval, voff, scale, bias, ymax, acc, stamp, tag,
         touched, o_idx, o_val, m):  # fmt: skip
    """One row through one layer: its outputs from ``o_idx[m]`` on; returns ``(m, saturated
    entries)``."""
    one = np.uint64(1)
    n = np.uint64(acc.size)
    bound = np.uint64(0)
    for p in range(lo, hi):
        k = idx[p]
        bound += wptr[k + one] - wptr[k]
    nsat = 0
    if bound * np.uint64(8) > n:
        # dense enough: accumulate without tracking columns, then scan them in order
        _accumulate(lo, hi, idx, val, wptr, lidx, lval, voff, scale, acc)
        for j in range(n):
            z = acc[j]
            if z != 0:
                acc[j] = 0
                m, sat = _emit(z, j, scale, bias, ymax, o_idx, o_val, m)
                nsat += sat
        return m, nsat
    cnt = np.uint64(0)
    for p in range(lo, hi):
        v = val[p]
        k = idx[p]
        for q in range(wptr[k], wptr[k + one]):
            j = lidx[q]
            if stamp[j] != tag:
                stamp[j] = tag
                touched[cnt] = j
                cnt += one
            if scale != 0:
                acc[j] += v
            else:
                acc[j] += v * lval[np.int64(q) + voff]
    for t in range(cnt):
        j = touched[t]
        z = acc[j]
        acc[j] = 0
        if z != 0:
            m, sat = _emit(z, j, scale, bias, ymax, o_idx, o_val, m)
            nsat += sat
    return m, nsat


@nb.njit(nogil=True, cache=True)
def _row_classes(lo, hi, idx, val, wptr, lidx, lval, voff, scale, bias, ymax, acc, stamp, tag,
                 touched, step, group, o_idx, o_val, m, rep, mptr, members, rowlen,
                 firsts):  # fmt: skip
    """:func:`_row` on a layer stored by column classes: the sums are taken for the
    representative columns only (``lidx``), and every member ``j`` is written with its class's
    sum ``acc[rep[j]]``, in the order :func:`_row` would write it on the whole layer: ascending
    on the dense path; on the sparse path in order of first touch, the columns first touched by
    one input entry ascending (a layer's rows are stored ascending; a class's members are
    first touched together, as they share their rows). Bit-identical to :func:`_row`."""
    one = np.uint64(1)
    n = np.uint64(acc.size)
    bound = np.uint64(0)
    for p in range(lo, hi):
        bound += np.uint64(rowlen[idx[p]])  # the whole layer's row: the same choice as _row
    nsat = 0
    if bound * np.uint64(8) > n:
        _accumulate(lo, hi, idx, val, wptr, lidx, lval, voff, scale, acc)
        if rowlen[n]:  # classes are runs from their representatives: class by class
            for x in range(firsts[n]):
                r = firsts[x]
                z = acc[r]
                if z != 0:
                    acc[r] = 0
                    size = mptr[r + one] - mptr[r]
                    # what _emit writes for each member, computed once
                    if scale != 0:
                        z *= scale
                    z += bias
                    if z > 0:
                        sat = z >= ymax
                        v = ymax if sat else z
                        for j in range(r, r + size):
                            o_idx[m] = j
                            o_val[m] = v
                            m += one
                        nsat += size * sat
            return m, nsat
        for j in range(n):
            z = acc[rep[j]]
            if z != 0:
                m, sat = _emit(z, j, scale, bias, ymax, o_idx, o_val, m)
                nsat += sat
        for j in range(n):
            acc[j] = 0
        return m, nsat
    cnt = 0
    for p in range(lo, hi):
        v = val[p]
        k = idx[p]
        for q in range(wptr[k], wptr[k + one]):
            r = lidx[q]
            if stamp[r] != tag:
                stamp[r] = tag
                touched[cnt] = r
                step[cnt] = p
                cnt += 1
            if scale != 0:
                acc[r] += v
            else:
                acc[r] += v * lval[np.int64(q) + voff]
    t = 0
    while t < cnt:
        u = t + 1
        while u < cnt and step[u] == step[t]:
            u += 1
        g = 0
        ordered = True
        for x in range(t, u):
            r = touched[x]
            for e in range(mptr[r], mptr[r + 1]):
                group[g] = members[e]
                ordered = ordered and (g == 0 or group[g - 1] < group[g])
                g += 1
        if not ordered:  # classes whose members interleave
            group[:g].sort()
        for x in range(g):
            j = group[x]
            z = acc[rep[j]]
            if z != 0:
                m, sat = _emit(z, j, scale, bias, ymax, o_idx, o_val, m)
                nsat += sat
        for x in range(t, u):
            acc[touched[x]] = 0
        t = u
    return m, nsat


@nb.njit(nogil=True, cache=True)
def run_rows(
    bufs, rows, lptr, lidx, lval, lvoff, lscale, lclass, cls, first, last, offset, collapse, bias,
    ymax, fate_layer, fate_kind,
):  # fmt: skip
    """The first ``rows`` rows of ``bufs`` through layers ``first..last-1`` of a stack whose
    layer ``i`` is layer ``i + offset`` of the network (``collapse`` and the fates count in the
    network's layers).

    ``bufs`` is two sets of row buffers ``(ptr, idx, val, ids, ptr, idx, val, ids)`` (CSR with
    uint64 ``ptr``, uint32 ``idx``, int64 image ids) whose first set holds the input rows;
    the layers are :meth:`LayerStack.arrays` ``(lptr, lidx, lval, lvoff, lscale, lclass,
    cls)`` (a layer with ``lclass >= 0`` is stored by column classes: ``cls[:, lclass]`` holds
    each column's representative, the members of each class, the whole rows' lengths (and
    whether every class is a run of columns), and the representatives; see
    :func:`_row_classes`). Layers write
    alternately into the second and the first set, growing a buffer when it is short, so a
    caller that keeps the returned buffers allocates nothing in the next call (fresh pages
    cost more than the arithmetic here). Returns ``(bufs, which, rows)``: the live rows after
    the last layer are the first ``rows`` rows of set ``which`` (0 or 1). Rows that stop are
    recorded by id: ``fate_layer[id]`` the 0-based layer after which they stopped,
    ``fate_kind[id]`` ``DEAD`` or ``SATURATED``. Indices are unsigned so that numba emits no
    negative-index wraparound (2.5x faster).
    """
    ptr, idx, val, ids, o_ptr, o_idx, o_val, o_ids = bufs
    n = lptr.shape[1] - 1
    un = np.uint64(n)
    one = np.uint64(1)
    acc = np.zeros(n, val.dtype)
    stamp = np.zeros(n, np.uint64)  # stamp[j] == tag: column j already touched by this row
    touched = np.empty(n, np.uint32)
    step = np.empty(n, np.int64)
    group = np.empty(n, np.uint32)
    tag = np.uint64(0)
    which = 0
    if o_ptr.size < rows + 1:
        o_ptr = np.empty(ptr.size, np.uint64)
        o_ids = np.empty(ids.size, np.int64)
    for i in range(first, last):
        layer = i + offset
        wptr = lptr[i]
        scale = lscale[i]
        voff = lvoff[i]
        c = lclass[i]
        kept = 0
        m = np.uint64(0)
        o_ptr[0] = 0
        for r in range(rows):
            if np.int64(m + un) > o_idx.size:
                o_idx = _grow(o_idx, m + un)
                o_val = _grow(o_val, m + un)
            start = m
            tag += one
            if c >= 0:
                m, nsat = _row_classes(ptr[r], ptr[r + 1], idx, val, wptr, lidx, lval, voff,
                                       scale, bias, ymax, acc, stamp, tag, touched, step, group,
                                       o_idx, o_val, m, cls[0, c], cls[1, c], cls[2, c],
                                       cls[3, c], cls[4, c])  # fmt: skip
            else:
                m, nsat = _row(ptr[r], ptr[r + 1], idx, val, wptr, lidx, lval, voff, scale,
                               bias, ymax, acc, stamp, tag, touched, o_idx, o_val, m)  # fmt: skip
            if m == start:
                fate_layer[ids[r]] = layer
                fate_kind[ids[r]] = DEAD
            elif nsat == n and collapse[layer]:
                fate_layer[ids[r]] = layer
                fate_kind[ids[r]] = SATURATED
                m = start
            else:
                o_ids[kept] = ids[r]
                kept += 1
                o_ptr[kept] = m
        # the outputs become the next layer's inputs; the old inputs become scratch
        ptr, idx, val, ids, o_ptr, o_idx, o_val, o_ids = (
            o_ptr, o_idx, o_val, o_ids, ptr, idx, val, ids,
        )  # fmt: skip
        which = 1 - which
        rows = kept
        if rows == 0:
            break
    if which == 0:
        return (ptr, idx, val, ids, o_ptr, o_idx, o_val, o_ids), which, rows
    return (o_ptr, o_idx, o_val, o_ids, ptr, idx, val, ids), which, rows
