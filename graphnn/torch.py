"""graphnn's truly sparse layers inside PyTorch models (``pip install 'graphnn[torch]'``).

:class:`SparseLinear` is an ``nn.Module`` whose weight is a sparse structure with one
``nn.Parameter`` of values (its stored entries, in CSR order); its forward and backward products
run graphnn's multi-threaded CPU kernels (``graphnn.kernels``) through a
``torch.autograd.Function``, the weight gradient taken at the edges only. :func:`to_torch` and
:func:`from_torch` convert between a :class:`graphnn.Network` and an ``nn.Sequential``,
losslessly (every edge, explicit zeros included).

    >>> import torch                                                    # doctest: +SKIP
    >>> from graphnn.torch import SparseLinear                          # doctest: +SKIP
    >>> model = torch.nn.Sequential(SparseLinear(784, 4096, density=0.03), torch.nn.ReLU(),
    ...                             torch.nn.Linear(4096, 10))          # doctest: +SKIP

On CPU tensors the products are graphnn's numba kernels on zero-copy numpy views; on CUDA
tensors they are the ``cupy`` backend's (cuSPARSE and graphnn's CUDA kernels) on zero-copy
DLPack views, through :class:`graphnn.training.layers.SparseLayer`, the layer graphnn's own
trainer runs (``backend=`` picks any backend on the CPU, ``reference`` for the executable
specification).

Start Python with ``OMP_WAIT_POLICY=PASSIVE`` for speed: PyTorch's OpenMP threads otherwise
spin for a while after each of its operations, on the cores the kernels need next (784-4096-
4096-10, batch 512, 2 cores, 2026-12-06: 3.35x / 6.64x / 9.25x ``nn.Linear``'s speed at
densities 0.1 / 0.03 / 0.01 instead of 2.97x / 5.05x / 6.40x).
"""

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from . import kernels
from .backends import get_backend
from .entries import csr_keys
from .errors import GraphnnError
from .network import Network, full_csr
from .training.layers import SparseLayer

__all__ = ["SparseLinear", "to_torch", "from_torch", "redistribute"]

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _structure(weight, in_features, out_features, density, topology, seed):
    """The CSR structure (and values, when ``weight`` gives them) of a new layer."""
    if weight is not None:
        if topology is not None or density is not None:
            raise GraphnnError("give weight, or density and topology, not both")
        if isinstance(weight, Network):
            weight = weight.layers[0]
        W = sp.csr_array(weight) if sp.issparse(weight) else full_csr(np.asarray(weight))
        if W.shape != (in_features, out_features):
            raise GraphnnError(
                f"weight has shape {W.shape}, expected (in_features, out_features) = "
                f"{(in_features, out_features)}"
            )
        return Network([W]).layers[0], True  # checked, canonical, explicit zeros kept
    from topologies import generate

    family = topology or "random"
    if density is None:
        raise GraphnnError("give density (the fraction of edges kept), or weight")
    net = generate(family, [in_features, out_features], density=density, seed=seed)
    return net.layers[0], False


class SparseLinear(nn.Module):
    """``y = x W + b`` for a sparse ``W`` of shape ``(in_features, out_features)`` (graphnn's
    convention: ``W[i, j]`` is the edge from input ``i`` to output ``j``).

    Parameters
    ----------
    in_features, out_features : int
    weight : scipy sparse matrix, numpy array or one-layer Network, optional
        The structure and values (every stored entry is an edge, zeros included; every entry
        of a dense array is one).
    density : float, optional
        Without ``weight``: the fraction of edges, drawn by ``topology`` (a family of
        :func:`topologies.generate`, ``random`` by default) with ``seed``; values from Ertl's
        ``U(-1/k, 1/k)``, the bias from ``U(-1/sqrt(k), 1/sqrt(k))`` (``k`` the fan-in), as
        graphnn's trainer does.
    bias : bool
    dtype : torch.float32 or torch.float64
    backend : str, optional
        The products' backend: by default graphnn's numba kernels for CPU tensors and
        ``cupy`` for CUDA tensors (CuPy needed: ``pip install 'graphnn[gpu]'``); a name of
        :func:`graphnn.available_backends` runs that backend's products instead.

    Attributes
    ----------
    values : nn.Parameter of shape (nnz,)
        The stored weights, in the CSR order of :meth:`csr`.
    bias : nn.Parameter of shape (out_features,) or None

    Cost: forward ``nnz * batch`` multiply-adds, backward twice that (no dense weight or
    gradient is ever formed).
    """

    def __init__(self, in_features, out_features, *, weight=None, density=None, topology=None,
                 bias=True, dtype=torch.float32, seed=0, backend=None):  # fmt: skip
        super().__init__()
        self.backend = backend
        if dtype not in _DTYPES:
            raise GraphnnError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        W, given = _structure(weight, self.in_features, self.out_features, density, topology,
                              seed)  # fmt: skip
        rng = np.random.default_rng(seed)
        fan = np.maximum(np.bincount(W.indices, minlength=self.out_features), 1).astype(float)
        values = W.data if given else rng.uniform(-1, 1, W.nnz) / fan[W.indices]
        self.values = nn.Parameter(torch.tensor(values, dtype=dtype))
        b = rng.uniform(-1, 1, self.out_features) / np.sqrt(fan)
        self.bias = nn.Parameter(torch.tensor(b, dtype=dtype)) if bias else None
        self._set_structure(W.indptr, W.indices)

    def _set_structure(self, indptr, indices):
        """The CSR arrays and, for the forward product, their CSC order."""
        self._on_backend = {}  # backend name -> the structure as a SparseLayer there
        self.indptr = np.asarray(indptr, np.int64)
        self.indices = np.asarray(indices, np.int64)
        rows = np.repeat(np.arange(self.in_features), np.diff(self.indptr))
        self.to_csc = np.argsort(self.indices, kind="stable")
        self.csc_indices = rows[self.to_csc]
        self.csc_indptr = np.zeros(self.out_features + 1, np.int64)
        np.cumsum(np.bincount(self.indices, minlength=self.out_features),
                  out=self.csc_indptr[1:])  # fmt: skip

    @property
    def nnz(self):
        return int(self.indices.size)

    def csr(self):
        """The weight as a scipy ``csr_array`` of shape ``(in_features, out_features)`` (a copy;
        explicit zeros kept)."""
        values = self.values.detach().cpu().numpy().copy()
        shape = (self.in_features, self.out_features)
        return sp.csr_array((values, self.indices.copy(), self.indptr.copy()), shape=shape)

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            raise GraphnnError(f"input has {x.shape[-1]} features, expected {self.in_features}")
        lead = x.shape[:-1]
        x = x.reshape(-1, self.in_features)
        if self.backend is None and x.device.type == "cpu":
            y = _SparseProduct.apply(x, self.values, self.bias, self)
        else:
            be = get_backend(self.backend or "cupy")
            y = _BackendProduct.apply(x, self.values, self.bias, self, be)
        return y.reshape(*lead, self.out_features)

    def _layer_on(self, be):
        """The structure as a :class:`~graphnn.training.layers.SparseLayer` on the backend
        ``be`` (uploaded once per structure); its values and bias are set at each call."""
        if be.name not in self._on_backend:
            W = sp.csr_array((np.zeros(self.nnz), self.indices, self.indptr),
                             shape=(self.in_features, self.out_features))  # fmt: skip
            self._on_backend[be.name] = SparseLayer(W, np.zeros(self.out_features), backend=be)
        return self._on_backend[be.name]

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"nnz={self.nnz}, bias={self.bias is not None}")  # fmt: skip


class _BackendProduct(torch.autograd.Function):
    """``x W + b`` on a backend's arrays (CuPy for CUDA tensors, through DLPack without copies):
    :class:`~graphnn.training.layers.SparseLayer`'s forward and backward, the products graphnn's
    trainer runs on that backend."""

    @staticmethod
    def forward(ctx, x, values, bias, layer, be):
        if x.dtype != values.dtype or x.device != values.device:
            raise GraphnnError(
                f"input is {x.dtype} on {x.device}, the layer {values.dtype} on "
                f"{values.device}: make them agree"
            )
        L = _with_params(layer._layer_on(be), be, values, bias)
        XT = be.xp.ascontiguousarray(_to_backend(x, be).T)
        ZT = be.plain(L.forward(XT))
        ctx.save_for_backward(values, bias)
        ctx.layer, ctx.be, ctx.XT = layer, be, XT
        return _from_backend(be.xp.ascontiguousarray(ZT.T))

    @staticmethod
    def backward(ctx, dy):
        values, bias = ctx.saved_tensors
        be = ctx.be
        L = _with_params(ctx.layer._layer_on(be), be, values, bias)
        need_x, need_values, need_bias = ctx.needs_input_grad[:3]
        dZT = be.xp.ascontiguousarray(_to_backend(dy, be).T)
        (dvalues, dbias), dXT = L.backward(ctx.XT, dZT, need_input_grad=need_x)
        dx = _from_backend(be.xp.ascontiguousarray(be.plain(dXT).T)) if need_x else None
        dvalues = _from_backend(dvalues) if need_values else None
        dbias = _from_backend(dbias) if need_bias and bias is not None else None
        return dx, dvalues, dbias, None, None


def _with_params(L, be, values, bias):
    """The backend layer ``L`` holding ``values`` and ``bias`` (zeros without one), as views."""
    L.values = _to_backend(values, be)
    L.bias = L.backend.xp.zeros(L.n_out, L.values.dtype) if bias is None else _to_backend(bias, be)
    return L


def _to_backend(t, be):
    """The tensor ``t`` as an array of ``be`` (a view: numpy for CPU tensors, DLPack for CuPy)."""
    t = t.detach()
    if be.xp is np:
        if t.device.type != "cpu":
            raise GraphnnError(f"backend {be.name!r} runs on the CPU; got a tensor on {t.device}")
        return t.numpy()
    return be.xp.from_dlpack(t)


def _from_backend(a):
    return torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else (
        torch.from_dlpack(a))  # fmt: skip


def _host(t, dtype):
    if t.device.type != "cpu":
        raise GraphnnError(
            f"graphnn.torch runs on the CPU; got a tensor on {t.device} (move the model and "
            "inputs to the CPU)"
        )
    return t.detach().numpy().astype(dtype, copy=False)


class _SparseProduct(torch.autograd.Function):
    """``x W + b`` with graphnn's kernels (the bias added in the product's pass, not by a
    second pass over the output); gradients for ``x``, the stored values and ``b``."""

    @staticmethod
    def forward(ctx, x, values, bias, layer):
        dtype = _DTYPES.get(values.dtype)
        if dtype is None or x.dtype != values.dtype:
            raise GraphnnError(f"input is {x.dtype}, the layer {values.dtype}: make them agree")
        X = kernels.Blocked.of_rows(_host(x, dtype))  # x^T in batch tiles, no transpose
        v_csc = kernels.take(_host(values, dtype), layer.to_csc)
        b = None if bias is None else _host(bias, dtype)
        Z = kernels.rows_times_dense(X, layer.csc_indptr, layer.csc_indices, v_csc,
                                     layer.out_features, bias=b)  # fmt: skip
        ctx.save_for_backward(values)
        ctx.tiles, ctx.layer = X, layer
        return torch.from_numpy(Z.rows())

    @staticmethod
    def backward(ctx, dy):
        (values,) = ctx.saved_tensors
        layer, X = ctx.layer, ctx.tiles
        dtype = _DTYPES[values.dtype]
        dZ = kernels.Blocked.of_rows(_host(dy, dtype), X.width, find_live=True)
        need_x, need_values, need_bias = ctx.needs_input_grad[:3]
        dW, dX = kernels.backward(X, dZ, layer.indptr, layer.indices, _host(values, dtype),
                                  input_grad=need_x)  # fmt: skip
        dx = torch.from_numpy(dX.rows()) if need_x else None
        dvalues = torch.from_numpy(dW) if need_values else None
        dbias = torch.from_numpy(dZ.row_sums.astype(dtype)) if need_bias else None
        return dx, dvalues, dbias, None


def redistribute(model, optimizer=None, *, fraction=0.3, algorithm="random", batch=None,
                 loss_fn=None, seed=None):  # fmt: skip
    """Move ``fraction`` of the edges of every :class:`SparseLinear` in ``model``: drop those
    of smallest magnitude, grow as many where there was none, at zero.

    ``algorithm``: ``random`` grows uniformly (SET, Mocanu et al. 2018); ``gradient`` grows
    where ``|x^T dL/dz|`` is largest (RigL, Evci et al. 2020), measured on ``batch = (inputs,
    targets)`` with ``loss_fn(model(inputs), targets)``. The optimiser's per-entry state
    (Adam's ``exp_avg`` and ``exp_avg_sq``, SGD's ``momentum_buffer``: every state tensor of a
    layer's ``values``) follows its edge; a grown edge starts at zero. ``values`` stays the
    same ``nn.Parameter`` object, so the optimiser needs no rebuilding. Call it every N steps
    (RigL: every 100, ``fraction`` annealed). Returns ``{layer: edges moved}``.
    """
    from .backends import get_backend
    from .backends.topk import best, sample_absent

    if algorithm not in ("random", "gradient"):
        raise GraphnnError(f"algorithm must be 'random' or 'gradient', got {algorithm!r}")
    if not 0 <= fraction <= 1:
        raise GraphnnError(f"fraction must be in [0, 1], got {fraction}")
    layers = [m for m in model.modules() if isinstance(m, SparseLinear)]
    signals = _signals(model, layers, batch, loss_fn) if algorithm == "gradient" else None
    rng = np.random.default_rng(seed)
    be, moved = get_backend("numba"), {}
    for n, layer in enumerate(layers):
        values = layer.values.detach().cpu().numpy()
        k = int(round(fraction * layer.nnz))
        if k == 0:
            continue
        keep = np.ones(layer.nnz, bool)
        keep[best(-np.abs(values).astype(np.float64), np.arange(layer.nnz), k)] = False
        rows = np.repeat(np.arange(layer.in_features), np.diff(layer.indptr))
        keys = csr_keys(layer.indptr, layer.indices, layer.out_features)
        kept = keys[keep]
        if signals is None:
            grown = sample_absent(layer.in_features, layer.out_features, kept, k, rng)
        else:
            shape = (layer.in_features, layer.out_features)
            A = sp.csr_array((values[keep], layer.indices[keep], _indptr(rows[keep], shape[0])),
                             shape=shape)  # fmt: skip
            grown = np.sort(be.complement_topk(*signals[n], A, k)[1])
        all_keys = np.concatenate([kept, grown])
        order = np.argsort(all_keys, kind="stable")
        origin = np.concatenate([np.flatnonzero(keep), np.full(grown.size, -1)])[order]
        new_keys = all_keys[order]
        new_rows = new_keys // layer.out_features
        _move(layer.values, origin, optimizer)
        layer._set_structure(_indptr(new_rows, layer.in_features), new_keys % layer.out_features)
        moved[n] = int(grown.size)
    return moved


def _indptr(rows, n_rows):
    out = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=out[1:])
    return out


def _move(param, origin, optimizer):
    """``param`` (and every optimiser state tensor of its shape) through ``origin``: new entry
    ``i`` is old entry ``origin[i]``, or zero where it is -1."""
    src = torch.from_numpy(np.flatnonzero(origin >= 0))
    old = torch.from_numpy(origin[origin >= 0])

    def remapped(t):
        new = torch.zeros(origin.size, dtype=t.dtype, device=t.device)
        new[src] = t.detach()[old]
        return new

    state = optimizer.state.get(param, {}) if optimizer is not None else {}
    for name, t in list(state.items()):
        if torch.is_tensor(t) and t.shape == param.shape:
            state[name] = remapped(t)
    param.data = remapped(param.data)
    if param.grad is not None:
        param.grad = None


def _signals(model, layers, batch, loss_fn):
    """Per layer ``(x^T, dz^T)`` (features x batch, numpy) of one forward and backward pass."""
    if batch is None or loss_fn is None:
        raise GraphnnError("algorithm 'gradient' needs batch=(inputs, targets) and loss_fn")
    seen, hooks = {}, []

    def capture(n):
        def hook(module, args, out):  # the input now, the output's gradient in the backward
            seen[n] = [args[0].detach()]
            out.register_hook(lambda grad: seen[n].append(grad.detach()))

        return hook

    for n, layer in enumerate(layers):
        hooks.append(layer.register_forward_hook(capture(n)))
    try:
        inputs, targets = batch
        model.zero_grad()
        loss_fn(model(inputs), targets).backward()
        model.zero_grad()
    finally:
        for h in hooks:
            h.remove()
    flat = lambda t: np.ascontiguousarray(t.reshape(-1, t.shape[-1]).cpu().numpy().T)  # noqa: E731
    return {n: (flat(x), flat(dz)) for n, (x, dz) in seen.items()}


def _activation_module(act):
    if act.kind == "relu":
        return nn.ReLU() if act.cap is None else nn.Hardtanh(0.0, float(act.cap))
    return {"identity": nn.Identity, "sigmoid": nn.Sigmoid}.get(act.kind, lambda: nn.Softmax(-1))()


def to_torch(network, dense=False):
    """An ``nn.Sequential`` computing ``network.forward``: per layer a :class:`SparseLinear`
    (or, with ``dense``, an ``nn.Linear`` with zeros off the edges, for deployment and ONNX
    export) and its activation (``relu:c`` as ``nn.Hardtanh(0, c)``)."""
    modules = []
    dtype = {np.dtype(np.float32): torch.float32}.get(network.dtype, torch.float64)
    for W, b, act in zip(network.layers, network.biases, network.activations):
        bias = np.broadcast_to(b, (W.shape[1],)).astype(network.dtype)
        if dense:
            layer = nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(W.toarray().T.copy()))
                layer.bias.copy_(torch.from_numpy(bias.copy()))
        else:
            layer = SparseLinear(W.shape[0], W.shape[1], weight=W, dtype=dtype)
            with torch.no_grad():
                layer.bias.copy_(torch.from_numpy(bias.copy()))
        modules += [layer, _activation_module(act)]
    return nn.Sequential(*modules)


def _activation_of(module):
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.Hardtanh) and module.min_val == 0:
        return f"relu:{module.max_val:g}"
    for cls, name in ((nn.Identity, "identity"), (nn.Sigmoid, "sigmoid"), (nn.Softmax, "softmax")):
        if isinstance(module, cls):
            return name
    return None


def from_torch(module):
    """The :class:`graphnn.Network` of an ``nn.Sequential`` of :class:`SparseLinear` or
    ``nn.Linear`` layers, each followed by at most one activation (ReLU, ``Hardtanh(0, c)``,
    Identity, Sigmoid, Softmax; none means identity): every edge of a sparse layer, explicit
    zeros included, and every entry of a dense one."""
    layers, biases, acts = [], [], []
    for m in module.children() if isinstance(module, nn.Sequential) else [module]:
        if isinstance(m, SparseLinear | nn.Linear):
            if isinstance(m, SparseLinear):
                W = m.csr()
            else:
                W = full_csr(m.weight.detach().cpu().numpy().T)
            layers.append(W)
            b = m.bias.detach().cpu().numpy() if m.bias is not None else np.zeros(W.shape[1])
            biases.append(b)
            acts.append("identity")
        else:
            name = _activation_of(m)
            if name is None or not layers or acts[-1] != "identity":
                raise GraphnnError(
                    f"from_torch reads linear layers each followed by at most one activation "
                    f"(ReLU, Hardtanh(0, c), Identity, Sigmoid, Softmax); got {type(m).__name__}"
                )
            acts[-1] = name
    if not layers:
        raise GraphnnError("from_torch found no SparseLinear or nn.Linear layer")
    dtype = np.float32 if layers[0].dtype == np.float32 else np.float64
    return Network(layers, biases=biases, activations=acts, dtype=dtype)
