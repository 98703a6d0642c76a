"""Optimisers with state per stored parameter, and learning-rate schedules.

State arrays are aligned with the parameter arrays (for a sparse layer: one entry per nonzero),
so redistribution can reset or carry over the state of chosen entries.
"""

import math

import numpy as np

from ..errors import GraphnnError

__all__ = ["Adam", "SGD", "OPTIMIZERS", "make_optimizer", "learning_rate"]


def _module(a):
    """numpy, or cupy for a CuPy array (without importing CuPy otherwise)."""
    if type(a).__module__.startswith("cupy"):
        import cupy

        return cupy
    return np


def _fused(*arrays):
    """Whether the one-pass CPU kernel can update these arrays: numpy, contiguous, one dtype."""
    return all(
        type(a) is np.ndarray and a.flags.c_contiguous and a.dtype == arrays[0].dtype
        for a in arrays
    ) and arrays[0].dtype in (np.float32, np.float64)


class _Optimizer:
    slots = ()

    def __init__(self, lr, weight_decay):
        if lr <= 0:
            raise GraphnnError(f"learning rate must be positive, got {lr}")
        if weight_decay < 0:
            raise GraphnnError(f"weight decay must be >= 0, got {weight_decay}")
        self.lr = lr
        self.weight_decay = weight_decay
        self.state = {}  # (layer, param) -> {slot: array}
        self.t = 0

    def _slots(self, key, p):
        st = self.state.get(key)
        if st is None or st[self.slots[0]].shape != p.shape:
            st = self.state[key] = {s: _module(p).zeros_like(p) for s in self.slots}
        return st

    def step(self, layers, grads, lr):
        """Update every layer's parameters in place from ``grads`` (one tuple per layer)."""
        self.t += 1
        for i, (layer, layer_grads) in enumerate(zip(layers, grads)):
            for j, (p, g) in enumerate(zip(layer.params, layer_grads)):
                if self.weight_decay and j == 0:
                    g = g + self.weight_decay * p
                self._update(p, g, self._slots((i, j), p), lr)

    def reset(self, layer, entries):
        """Zero the state of ``entries`` (indices into the layer's weight array)."""
        st = self.state.get((layer, 0))
        if st is not None:
            for arr in st.values():
                arr[_module(arr).asarray(entries)] = 0

    def remap(self, layer, origin):
        """The layer's entries were restructured: new entry ``i`` is old entry ``origin[i]``, or
        new (``origin[i] < 0``) with its state zeroed."""
        st = self.state.get((layer, 0))
        if st is not None:
            for name, arr in st.items():
                xp = _module(arr)
                o = xp.asarray(origin)
                new = xp.zeros(o.size, arr.dtype)
                new[o >= 0] = arr[o[o >= 0]]
                st[name] = new

    def state_arrays(self):
        """The state as host numpy arrays."""
        out = {"t": np.array(self.t)}
        for (i, j), st in self.state.items():
            for name, arr in st.items():
                out[f"{i}_{j}_{name}"] = arr.get() if hasattr(arr, "get") else arr
        return out

    def load_state_arrays(self, arrays, asarray=np.array):
        """Restore :meth:`state_arrays`; ``asarray`` places each array (on a device)."""
        self.t = int(arrays["t"])
        self.state = {}
        for key, arr in arrays.items():
            if key == "t":
                continue
            i, j, name = key.split("_", 2)
            self.state.setdefault((int(i), int(j)), {})[name] = asarray(np.array(arr))

    def to(self, asarray):
        """Move the state with ``asarray`` (a device's), e.g. to the host and back."""
        self.load_state_arrays(self.state_arrays(), asarray)


class Adam(_Optimizer):
    """Adam (Kingma and Ba, 2015); weight decay is L2, added to the gradient."""

    slots = ("m", "v")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.betas, self.eps = betas, eps

    def _update(self, p, g, st, lr):
        b1, b2 = self.betas
        m, v = st["m"], st["v"]
        step = lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        if _fused(p, g, m, v):
            from ..kernels import adam_update

            adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), b1, b2, step,
                        self.eps)  # fmt: skip
            return
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        p -= (step * m / (_module(v).sqrt(v) + self.eps)).astype(p.dtype, copy=False)


class SGD(_Optimizer):
    """Stochastic gradient descent with (heavy-ball) momentum."""

    slots = ("momentum",)

    def __init__(self, lr=0.01, momentum=0.9, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = momentum

    def _update(self, p, g, st, lr):
        buf = st["momentum"]
        buf *= self.momentum
        buf += g
        p -= (lr * buf).astype(p.dtype, copy=False)


OPTIMIZERS = ("adam", "sgd")


def make_optimizer(name, lr, weight_decay=0.0):
    if name == "adam":
        return Adam(lr, weight_decay=weight_decay)
    if name == "sgd":
        return SGD(lr, weight_decay=weight_decay)
    raise GraphnnError(f"optimizer {name!r} is not valid; choose from {', '.join(OPTIMIZERS)}")


def learning_rate(lr, epoch, epochs, schedule="constant"):
    """The rate for ``epoch`` (0-based): ``constant``, or ``cosine`` annealing to zero."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return 0.5 * lr * (1 + math.cos(math.pi * epoch / max(epochs, 1)))
    raise GraphnnError(f"schedule {schedule!r} is not valid; choose from 'constant', 'cosine'")
