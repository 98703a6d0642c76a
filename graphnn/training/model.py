"""A trainable sparse MLP: a chain of sparse (or dense) layers with ReLU between them.

The structure is a :class:`graphnn.Network`: drawn by :func:`topologies.generate` from a family
name, given as a network, or read from any file :func:`graphnn.load` reads. Weights start as
Ertl's uniform initialisation, ``U(-1/k, 1/k)`` for the weights and ``U(-1/sqrt(k), 1/sqrt(k))``
for the biases of a neuron with fan-in ``k`` (Kaiming normal as an option). A trained model
exports to a :class:`~graphnn.Network` (:meth:`SparseMLP.to_network`) and is rebuilt from one
(:meth:`SparseMLP.from_network`) with the same predictions, bit for bit.
"""

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from topologies import FAMILIES

from ..backends import DEFAULT, get_backend
from ..errors import GraphnnError
from ..io.checkpoint import key, sparse_layer
from ..network import Network, full_csr
from .layers import DenseLayer, SparseLayer

__all__ = ["SparseMLP", "TOPOLOGIES", "build_topology"]

INITS = ("ertl", "kaiming")
LOSSES = ("softmax", "sigmoid")


TOPOLOGIES = FAMILIES


def build_topology(sizes, topology, density, *, radices=None, kron=None, seed=None):
    """The structure for widths ``sizes``: a family of :func:`topologies.generate`, a
    :class:`~graphnn.Network`, or the path of any network file; as a list of CSR layers."""
    if isinstance(topology, Network) or (
        isinstance(topology, str | Path) and str(topology) not in TOPOLOGIES
    ):
        net = topology if isinstance(topology, Network) else _load_structure(topology)
        if net.sizes != list(sizes):
            raise GraphnnError(
                f"the topology {topology if not isinstance(topology, Network) else 'network'} "
                f"has widths {'-'.join(map(str, net.sizes))} but the model has "
                f"{'-'.join(map(str, sizes))}"
            )
        return net.to_scipy()
    from topologies import generate

    params = {"radices": radices, "kron": kron} if topology == "radixnet" else {}
    if topology not in ("dense", "radixnet", "kronecker"):
        params["density"] = density
    return generate(topology, sizes, seed=seed, **params).to_scipy()


def _load_structure(path):
    from ..io import load

    if not Path(path).exists():
        raise GraphnnError(
            f"topology {str(path)!r} is neither a family ({', '.join(TOPOLOGIES)}) nor an "
            "existing network file"
        )
    return load(path)


def _fan_in(pattern):
    return np.maximum(np.bincount(sp.csr_array(pattern).indices, minlength=pattern.shape[1]), 1)


class SparseMLP:
    """A sparse multi-layer perceptron.

    Parameters
    ----------
    sizes : list of int
        Widths, input first, e.g. ``[784, 300, 100, 10]``.
    density : float in (0, 1]
        Fraction of possible edges (total for ``erk``; per layer otherwise).
    topology : family name, Network, or path
        ``random``, ``erk``, ``ertl``, ``radixnet``, ``kronecker``, ``rmat``, ``dense`` (see
        :func:`topologies.generate`); a :class:`~graphnn.Network` or the path of any file
        :func:`graphnn.load` reads, whose structure is used (its widths must be ``sizes``).
    init : {"ertl", "kaiming"}
    loss : {"softmax", "sigmoid"}
        Softmax cross-entropy over the classes, or sigmoid binary cross-entropy (one output).
    dense_output : bool
        Keep the last layer dense (the paper's binary classifier; the RadiX-Net experiments'
        classifier layer): a family's structure is drawn for the widths before it.
    radices, kron : RadiX-Net parameters for ``topology="radixnet"``.
    dtype : float32 or float64
    """

    def __init__(
        self,
        sizes,
        *,
        density=0.1,
        topology="random",
        init="ertl",
        loss="softmax",
        dense_output=False,
        radices=None,
        kron=None,
        dtype=np.float32,
        backend=DEFAULT,
    ):
        self.sizes = list(sizes)
        self.density = density
        self.topology = topology
        self.init = init
        self.loss = loss
        self.dense_output = dense_output
        self.radices = radices
        self.kron = kron
        self.dtype = np.dtype(dtype)
        self.backend = backend

    _param_names = (
        "sizes",
        "density",
        "topology",
        "init",
        "loss",
        "dense_output",
        "radices",
        "kron",
        "dtype",
        "backend",
    )

    @classmethod
    def from_params(cls, params, backend=DEFAULT):
        """The model that :meth:`get_params` described (a training checkpoint's ``identity``
        holds them; other keys are ignored), on ``backend``."""
        names = [n for n in cls._param_names if n != "backend"]
        return cls(**{n: params.get(n) for n in names}, backend=backend)

    def get_params(self):
        """The constructor's parameters, JSON-ready (as scikit-learn's ``get_params``)."""
        params = {name: getattr(self, name) for name in self._param_names}
        params["dtype"] = self.dtype.name
        if not isinstance(self.backend, str):
            params["backend"] = self.backend.name
        if isinstance(self.topology, Network):
            params["topology"] = repr(self.topology)
        elif isinstance(self.topology, Path):
            params["topology"] = str(self.topology)
        return params

    @classmethod
    def from_network(cls, net, *, backend=DEFAULT):
        """A built model holding ``net``'s structure, weights and biases: the inverse of
        :meth:`to_network`. Layers listed in ``net.metadata["dense_layers"]`` stay dense.

        The last activation gives the loss (``softmax``, or ``sigmoid`` with one output);
        the others must be ReLU.
        """
        acts = [str(a) for a in net.activations]
        if any(a != "relu" for a in acts[:-1]) or acts[-1] not in LOSSES:
            raise GraphnnError(
                f"not a trained classifier: an MLP has ReLU hidden layers and a softmax or "
                f"sigmoid output, this network has activations {', '.join(acts)}"
            )
        dense = set(net.metadata.get("dense_layers", []))
        model = cls(
            net.sizes,
            density=float(sum(net.nnz) / sum(a * b for a, b in zip(net.sizes, net.sizes[1:]))),
            topology=net,
            loss=acts[-1],
            dense_output=len(net) - 1 in dense,
            dtype=net.dtype,
            backend=backend,
        )
        model.layers_ = []
        for k, (W, b) in enumerate(zip(net.layers, net.biases)):
            bias = np.broadcast_to(b, (W.shape[1],)).astype(net.dtype)
            if k in dense:
                model.layers_.append(DenseLayer(W.toarray(), bias, backend=backend))
            else:
                model.layers_.append(SparseLayer(W, bias, backend=backend))
        return model

    def build(self, seed=0):
        """Draw the topology and the initial weights; returns ``self``."""
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise GraphnnError(f"layers must be at least two positive widths, got {self.sizes}")
        if self.init not in INITS:
            raise GraphnnError(f"init {self.init!r} is not valid; choose from {', '.join(INITS)}")
        if self.loss not in LOSSES:
            raise GraphnnError(f"loss {self.loss!r} is not valid; choose from {', '.join(LOSSES)}")
        if self.loss == "sigmoid" and self.sizes[-1] != 1:
            raise GraphnnError(f"the sigmoid loss needs one output, got {self.sizes[-1]}")
        rng = np.random.default_rng([seed, 0])
        family = isinstance(self.topology, str) and self.topology in TOPOLOGIES
        # a family with a dense output layer draws the layers before it (a RadiX-Net has no
        # classifier layer); a given structure keeps its own and has its last layer filled
        drawn = self.sizes[:-1] if self.dense_output and family else self.sizes
        patterns = build_topology(
            drawn, self.topology, self.density, radices=self.radices, kron=self.kron, seed=rng
        )
        if self.dense_output:
            full = sp.csr_array(np.ones((self.sizes[-2], self.sizes[-1])))
            patterns = (
                patterns[:-1] + [full] if len(drawn) == len(self.sizes) else [*patterns, full]
            )
        self.layers_ = []
        for k, P in enumerate(patterns):
            W, b = self.initial_values(P, rng)
            last = k == len(patterns) - 1
            if self.topology == "dense" or (last and self.dense_output):
                self.layers_.append(DenseLayer(W.toarray(), b, backend=self.backend))
            else:
                self.layers_.append(SparseLayer(W, b, backend=self.backend))
        return self

    def initial_values(self, pattern, rng):
        """Initial weights on ``pattern`` (CSR) and biases, by this model's ``init``."""
        P = sp.csr_array(pattern, dtype=self.dtype)
        P.sort_indices()
        fan = _fan_in(P).astype(np.float64)
        cols = P.indices
        if self.init == "ertl":
            w = rng.uniform(-1, 1, P.nnz) / fan[cols]
            b = rng.uniform(-1, 1, P.shape[1]) / np.sqrt(fan)
        else:
            w = rng.standard_normal(P.nnz) * np.sqrt(2.0 / fan[cols])
            b = np.zeros(P.shape[1])
        W = sp.csr_array((w.astype(self.dtype), P.indices, P.indptr), shape=P.shape)
        return W, b.astype(self.dtype)

    @property
    def params(self):
        """Stored parameters: nonzero weights plus biases."""
        return sum(layer.nnz + layer.bias.size for layer in self.layers_)

    def _check_built(self):
        if not hasattr(self, "layers_"):
            raise GraphnnError("the model has no weights yet: call build() first")

    def forward(self, X):
        """Logits (classes x batch) and the activations each layer saw (features x batch)."""
        self._check_built()
        X = np.asarray(X, dtype=self.dtype)
        dev = get_backend(self.backend)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise GraphnnError(f"inputs must have shape (samples, {self.sizes[0]}), got {X.shape}")
        A = dev.prepare(dev.asarray(np.ascontiguousarray(X.T)), rows=max(self.sizes))
        seen = []
        for k, layer in enumerate(self.layers_):
            seen.append(A)
            A = layer.forward(A, relu=k < len(self.layers_) - 1)
        return dev.plain(A), seen

    def loss_and_grads(self, X, y):
        """Mean loss, per-layer gradients, and the number of correct predictions."""
        loss, grads, correct, _ = self.backprop(X, y, want_signals=False)
        return loss, grads, correct

    def _output_loss(self, logits, y):
        """Mean loss, correct count, and the loss gradient at the logits."""
        n = logits.shape[1]
        xp = get_backend(self.backend).xp
        y = xp.asarray(y)
        if self.loss == "softmax":
            z = logits - logits.max(axis=0, keepdims=True)
            p = xp.exp(z)
            p /= p.sum(axis=0, keepdims=True)
            loss = float(-xp.log(xp.maximum(p[y, xp.arange(n)], 1e-30)).mean())
            correct = int((logits.argmax(axis=0) == y).sum())
            dZ = p
            dZ[y, xp.arange(n)] -= 1
        else:
            z = logits[0]
            loss = float((xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))).mean())
            correct = int(((z > 0) == (y == 1)).sum())
            dZ = (1 / (1 + xp.exp(-z)) - y)[None, :].astype(self.dtype)
        dZ /= n
        return loss, correct, dZ

    def backprop(self, X, y, want_grads=True, want_signals=True):
        """Loss, gradients (or None), correct count, and per layer the pair
        ``(X^T, dZ^T)``: what the layer saw and the loss gradient at its pre-activations
        (or None without ``want_signals``)."""
        logits, seen = self.forward(X)
        loss, correct, dZ = self._output_loss(logits, y)
        dev = get_backend(self.backend)
        grads = [None] * len(self.layers_)
        signals = [None] * len(self.layers_)
        for k in range(len(self.layers_) - 1, -1, -1):
            layer = self.layers_[k]
            dZ = dev.prepare(dZ, like=seen[k])
            if want_signals:
                signals[k] = (dev.plain(seen[k]), dev.plain(dZ))
            # below the first layer the input is a ReLU's output: its derivative is input > 0
            if want_grads:
                grads[k], dA = layer.backward(seen[k], dZ, need_input_grad=k > 0, relu=k > 0)
            elif k > 0:
                dA = layer.input_grad(dZ, mask=seen[k])
            if k > 0:
                dZ = dA
        return loss, grads if want_grads else None, correct, signals if want_signals else None

    def evaluate_loss(self, X, y):
        """Mean loss on ``(X, y)``, forward only."""
        return self._output_loss(self.forward(X)[0], y)[0]

    def predict(self, X, batch_size=4096):
        """Class labels (0/1 for the sigmoid loss)."""
        out = []
        for start in range(0, len(X), batch_size):
            logits, _ = self.forward(X[start : start + batch_size])
            labels = logits.argmax(axis=0) if self.loss == "softmax" else (logits[0] > 0)
            out.append(get_backend(self.backend).asnumpy(labels))
        return np.concatenate(out).astype(np.int64) if out else np.empty(0, np.int64)

    def predict_proba(self, X, batch_size=4096):
        """Class probabilities, samples x classes (softmax; for the sigmoid loss the two
        columns ``1 - p, p``)."""
        be = get_backend(self.backend)
        out = []
        for start in range(0, len(X), batch_size):
            logits = be.asnumpy(self.forward(X[start : start + batch_size])[0]).T
            if self.loss == "softmax":
                e = np.exp(logits - logits.max(axis=1, keepdims=True))
                out.append(e / e.sum(axis=1, keepdims=True))
            else:
                p = 1 / (1 + np.exp(-logits[:, 0]))
                out.append(np.stack([1 - p, p], axis=1))
        return np.concatenate(out) if out else np.empty((0, self.sizes[-1]))

    def score(self, X, y):
        """Accuracy on ``(X, y)``."""
        return float((self.predict(X) == y).mean()) if len(y) else float("nan")

    def to_network(self, metadata=None):
        """The trained chain as a :class:`graphnn.Network`, losslessly: every edge (a weight
        that is exactly zero included), the biases, the activations, and in ``metadata`` the
        model's parameters and which layers are dense (``dense_layers``)."""
        self._check_built()
        acts = ["relu"] * (len(self.layers_) - 1)
        acts.append("softmax" if self.loss == "softmax" else "sigmoid")
        layers, dense = [], []
        for k, layer in enumerate(self.layers_):
            if layer.sparse:
                layers.append(layer.to_scipy())
            else:
                layers.append(full_csr(layer.backend.asnumpy(layer.weight)))
                dense.append(k)
        meta = {"model": {k: v for k, v in self.get_params().items() if k != "backend"}}
        meta.update(metadata or {}, dense_layers=dense)
        return Network(
            layers,
            biases=[layer.backend.asnumpy(layer.bias) for layer in self.layers_],
            activations=acts,
            dtype=self.dtype,
            metadata=meta,
        )

    def state_arrays(self):
        """Every array needed to restore the weights exactly (host numpy arrays)."""
        out = {}
        for k, layer in enumerate(self.layers_):
            host = layer.backend.asnumpy
            if layer.sparse:
                out[key(k, "indptr")], out[key(k, "indices")] = layer.indptr, layer.indices
                out[key(k, "values")] = host(layer.values)
            else:
                out[key(k, "weight")] = host(layer.weight)
            out[key(k, "bias")] = host(layer.bias)
        return out

    def to_backend(self, backend):
        """Move every layer to ``backend`` (a name of ``graphnn.backends``); returns self."""
        self._check_built()
        self.layers_ = [layer.to_backend(backend) for layer in self.layers_]
        self.backend = backend
        return self

    def load_state_arrays(self, arrays):
        self._check_built()
        for k, layer in enumerate(self.layers_):
            if layer.sparse:
                layer.set_structure(sparse_layer(arrays, k, (layer.n_in, layer.n_out)))
            else:
                layer.weight[...] = layer.backend.asarray(arrays[key(k, "weight")])
            layer.bias[...] = layer.backend.asarray(arrays[key(k, "bias")])
        return self
