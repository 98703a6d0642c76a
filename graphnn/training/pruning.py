"""Pruning: one-shot magnitude pruning, Zhu-Gupta gradual pruning, and retraining the pruned
structure from a fresh init, the lottery-ticket rewind, or sign-constant weights.

References: M. Zhu and S. Gupta, "To prune, or not to prune", 2017 (cubic schedule); J. Frankle
and M. Carbin, "The Lottery Ticket Hypothesis", ICLR 2019 (rewind); H. Zhou et al.,
"Deconstructing Lottery Tickets", NeurIPS 2019 (signed constant); S. Alford et al., "Training
Behavior of Sparse Neural Network Topologies", IEEE HPEC 2019 (pruning every 200 steps).
"""

import dataclasses

import numpy as np
import scipy.sparse as sp

from ..backends.topk import best
from ..entries import csr_keys, flat_keys
from ..errors import GraphnnError
from ..io.checkpoint import key, layer_values, sparse_layer
from .layers import DenseLayer, SparseLayer
from .model import SparseMLP
from .rewiring import host_backend, kept_positions, restructure
from .trainer import fit

__all__ = [
    "zhu_gupta",
    "prune_layers",
    "prune_neurons",
    "supermask",
    "GradualPruner",
    "gradual_prune",
    "retrain_model",
    "RETRAIN_MODES",
    "SCOPES",
    "PRUNE_EPOCHS",
]

RETRAIN_MODES = ("random", "rewind", "signconst")
PRUNE_EPOCHS = 10  # epochs of training while pruning gradually, by default


def zhu_gupta(step, final, *, initial=0.0, start=0, n_prunes=10, every=200):
    """Sparsity at ``step``: ``s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3``, held at ``s_i``
    before ``t0`` and at ``s_f`` after ``t0 + n dt``."""
    if step < start:
        return initial
    frac = min(1.0, (step - start) / (n_prunes * every))
    return final + (initial - final) * (1 - frac) ** 3


def _check_sparsity(s):
    if not 0 <= s < 1:
        raise GraphnnError(f"sparsity must be in [0, 1), got {s}")


SCOPES = ("layer", "global")


def _keep_counts(model, sparsity, scope, layers):
    """How many edges each of ``layers`` keeps: ``round((1 - sparsity) n_in n_out)`` in every
    layer (``layer``), or the edges among the ``(1 - sparsity)`` largest magnitudes of all of
    them together (``global``: a layer of small weights, such as a wide first layer under a
    fan-in initialisation, loses more)."""
    if scope == "layer":
        return {k: max(1, int(round((1 - sparsity) * model.layers_[k].n_in
                                    * model.layers_[k].n_out))) for k in layers}  # fmt: skip
    if scope != "global":
        raise GraphnnError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    mags, owner = [], []
    for k in layers:
        layer = model.layers_[k]
        w = np.abs(layer.backend.asnumpy(layer.values if layer.sparse else layer.weight)).ravel()
        mags.append(w)
        owner.append(np.full(w.size, k))
    mags, owner = np.concatenate(mags), np.concatenate(owner)
    possible = sum(model.layers_[k].n_in * model.layers_[k].n_out for k in layers)
    total = max(1, int(round((1 - sparsity) * possible)))
    top = best(mags, np.arange(mags.size), min(total, mags.size))
    counts = np.bincount(owner[top], minlength=max(layers) + 1)
    return {k: max(1, int(counts[k])) for k in layers}


def prune_layers(model, sparsity, optimizer=None, *, scope="layer"):
    """Keep the ``(1 - sparsity)`` fraction of the possible edges with the largest magnitudes:
    in every prunable layer (``scope="layer"``), or over all of them together
    (``scope="global"``): ``W(keep.S, replace=True) << W``. Dense layers become sparse; the
    dense output layer of a binary classifier is left alone."""
    _check_sparsity(sparsity)
    last = len(model.layers_) - 1
    layers = [k for k in range(last + 1) if not (k == last and model.dense_output)]
    keep_of = _keep_counts(model, sparsity, scope, layers)
    for k in layers:
        layer, keep_n = model.layers_[k], keep_of[k]
        host = layer.backend.asnumpy  # the selection is host work, also for a GPU model
        if not layer.sparse:
            W = host(layer.weight)
            flat = np.abs(W).ravel()
            keep = np.sort(best(flat, np.arange(flat.size), keep_n))
            rows, cols = np.divmod(keep, layer.n_out)
            pattern = sp.csr_array((W.ravel()[keep], (rows, cols)), shape=W.shape)
            model.layers_[k] = SparseLayer(pattern, host(layer.bias), backend=model.backend)
            if optimizer is not None:
                optimizer.state.pop((k, 0), None)  # its state had the dense shape
        elif keep_n < layer.nnz:
            keep = np.zeros(layer.nnz, dtype=bool)
            keep[best(np.abs(host(layer.values)), np.arange(layer.nnz), keep_n)] = True
            be = host_backend(model)
            kept = kept_positions(be, layer, keep)
            restructure(be, layer, optimizer, k, kept, np.empty(0, np.int64))
    return model


class GradualPruner:
    """An ``after_step`` hook: prune to the Zhu-Gupta sparsity every ``every`` steps (by
    :func:`prune_layers` with ``scope``)."""

    def __init__(self, final, *, n_prunes, every=200, initial=0.0, scope="layer"):
        _check_sparsity(final)
        for name, value in (("n_prunes", n_prunes), ("every", every)):
            if value < 1:
                raise GraphnnError(f"{name} must be at least 1, got {value}")
        self.final, self.n_prunes, self.every, self.initial = final, n_prunes, every, initial
        self.scope = scope
        self.history = []

    def __call__(self, step, model, optimizer):
        if step % self.every == 0 and step <= self.n_prunes * self.every:
            s = zhu_gupta(
                step, self.final, initial=self.initial, n_prunes=self.n_prunes, every=self.every
            )
            prune_layers(model, s, optimizer, scope=self.scope)
            self.history.append({"step": step, "sparsity": s})


def gradual_prune(model, data, cfg, sparsity, *, epochs=PRUNE_EPOCHS, every=200, scope="layer",
                  log=None):  # fmt: skip
    """Train ``model`` for ``epochs`` more epochs while pruning it along the Zhu-Gupta schedule
    to ``sparsity`` (every ``every`` steps over the first three quarters of the steps; on data
    too small for that, every quarter of them: the steps taken are in the returned
    :class:`GradualPruner`'s ``every`` and ``history``), then prune it to exactly
    ``sparsity``. The optimiser starts fresh."""
    for name, value in (("epochs", epochs), ("every", every)):
        if value < 1:
            raise GraphnnError(f"{name} must be at least 1, got {value}")
    steps = epochs * -(-len(data.y_train) // cfg.batch_size)
    every = min(every, max(1, steps // 4))
    pruner = GradualPruner(
        sparsity, n_prunes=max(1, int(0.75 * steps) // every), every=every, scope=scope
    )
    if log:
        log(f"gradual pruning to {sparsity:g} over {epochs} epochs, every {every} steps")
    fit(model, data, dataclasses.replace(cfg, epochs=epochs, redistribution="none"),
        after_step=pruner, log=log)  # fmt: skip
    prune_layers(model, sparsity, scope=scope)
    return pruner


def _lookup(initial, k, layer_shape, rows, cols):
    """Initial weights of layer ``k`` at ``(rows, cols)``; NaN where the initial structure had
    no edge there."""
    W0 = sparse_layer(initial, k, layer_shape)
    if W0 is None:
        return initial[key(k, "weight")][rows, cols].astype(np.float64)
    keys0 = csr_keys(W0.indptr, W0.indices, layer_shape[1])
    keys = flat_keys(rows, cols, layer_shape[1])
    pos = np.searchsorted(keys0, keys).clip(max=max(keys0.size - 1, 0))
    found = keys0.size > 0
    out = np.full(keys.size, np.nan)
    if found:
        hit = keys0[pos] == keys
        out[hit] = W0.data[pos[hit]]
    return out


def retrain_model(pruned, initial, mode, seed):
    """A fresh model on ``pruned``'s structure, weights by ``mode``:

    * ``random``: a fresh draw of the model's initialisation on the pruned pattern;
    * ``rewind``: the initial weights at the kept edges (a fresh draw where the initial
      structure had none), the initial biases;
    * ``signconst``: the initial weights' signs times one magnitude per layer, the standard
      deviation of that layer's initial weights.
    """
    if mode not in RETRAIN_MODES:
        raise GraphnnError(f"retrain {mode!r} is not valid; choose from {', '.join(RETRAIN_MODES)}")
    rng = np.random.default_rng([seed, 4])
    fresh = SparseMLP(**pruned.get_params())
    fresh.layers_ = []
    for k, layer in enumerate(pruned.layers_):
        pattern = layer.to_scipy()
        W, b = fresh.initial_values(pattern, rng)
        if mode != "random":
            W = sp.csr_array(W)
            rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
            w0 = _lookup(initial, k, W.shape, rows, W.indices)
            have = ~np.isnan(w0)
            if mode == "rewind":
                W.data[have] = w0[have]
            else:
                every0 = layer_values(initial, k)
                scale = float(np.std(every0)) if every0 is not None and every0.size else 1.0
                signs = np.where(have, np.sign(np.nan_to_num(w0)), np.sign(W.data))
                W.data[:] = (np.where(signs == 0, 1, signs) * scale).astype(W.dtype)
            b = initial[key(k, "bias")].astype(fresh.dtype).copy()
        if layer.sparse:
            fresh.layers_.append(SparseLayer(W, b, backend=fresh.backend))
        else:
            fresh.layers_.append(DenseLayer(sp.csr_array(W).toarray(), b, backend=fresh.backend))
    return fresh


def prune_neurons(model, fraction, *, by="incoming", norm=2):
    """Structured pruning: remove ``fraction`` of the neurons of every hidden layer, those
    whose ``by`` (``incoming`` or ``outgoing``) weights have the smallest ``norm`` (1 or 2), and
    return a new, narrower built model: the neurons are physically gone (their column in the
    layer before, their row in the layer after and their bias), so the exported network is
    smaller and its products cheaper. A removed neuron's constant output ``relu(bias)`` goes
    with it. Ties keep the lower index; at least one neuron per layer stays.

    >>> from graphnn.training import SparseMLP
    >>> m = SparseMLP([20, 10, 8, 3], density=0.5).build(0)
    >>> prune_neurons(m, 0.5).sizes
    [20, 5, 4, 3]
    """
    from ..network import Network

    if not 0 <= fraction < 1:
        raise GraphnnError(f"fraction must be in [0, 1), got {fraction}")
    if by not in ("incoming", "outgoing"):
        raise GraphnnError(f"by must be 'incoming' or 'outgoing', got {by!r}")
    if norm not in (1, 2):
        raise GraphnnError(f"norm must be 1 or 2, got {norm}")
    net = model.to_network()
    layers = [sp.csr_array(W) for W in net.layers]
    biases = [np.broadcast_to(b, (W.shape[1],)).copy() for W, b in zip(layers, net.biases)]
    for h in range(len(layers) - 1):  # hidden layer h: columns of layer h, rows of layer h + 1
        W = layers[h] if by == "incoming" else layers[h + 1]
        mags = abs(W.data) ** norm
        if by == "incoming":
            score = np.bincount(W.indices, weights=mags, minlength=W.shape[1])
        else:
            score = np.add.reduceat(mags, W.indptr[:-1]) if W.nnz else np.zeros(W.shape[0])
            score[np.diff(W.indptr) == 0] = 0
        n = score.size
        keep = np.sort(np.argsort(-score, kind="stable")[: max(1, n - int(round(fraction * n)))])
        layers[h] = sp.csr_array(layers[h][:, keep])
        layers[h + 1] = sp.csr_array(layers[h + 1][keep, :])
        biases[h] = biases[h][keep]
    pruned = Network(layers, biases=biases, activations=net.activations, dtype=net.dtype,
                     metadata=net.metadata)  # fmt: skip
    return SparseMLP.from_network(pruned, backend=model.backend)


def supermask(model, initial, sparsity, seed=0):
    """Zhou et al.'s supermask ("large final, same sign"): in every layer keep the
    ``1 - sparsity`` fraction of edges whose trained weight is largest among those that kept
    their initial sign, give them the initial sign times one magnitude per layer (the standard
    deviation of its initial weights) and zero biases; no training (a ``dense_output`` model's
    output layer keeps every edge). Returns a built model.

    Reference: H. Zhou, J. Lan, R. Liu, J. Yosinski, "Deconstructing Lottery Tickets: Zeros,
    Signs, and the Supermask", NeurIPS 2019.
    """
    _check_sparsity(sparsity)
    fresh = SparseMLP(**model.get_params())
    fresh.layers_ = []
    for k, layer in enumerate(model.layers_):
        W = layer.to_scipy()
        rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
        w0 = np.nan_to_num(_lookup(initial, k, W.shape, rows, W.indices))
        score = np.where(np.sign(W.data) == np.sign(w0), np.abs(W.data), 0.0)
        if k == len(model.layers_) - 1 and model.dense_output:
            keep = np.ones(W.nnz, bool)  # a dense output layer keeps every edge
        else:
            keep = np.zeros(W.nnz, bool)
            n_keep = int(round((1 - sparsity) * W.nnz))
            keep[np.argsort(-score, kind="stable")[:n_keep]] = True
            keep &= score > 0
        every0 = layer_values(initial, k)
        scale = float(np.std(every0)) if every0 is not None and every0.size else 1.0
        M = sp.csr_array(
            ((np.sign(w0[keep]) * scale).astype(W.dtype), W.indices[keep],
             np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=W.shape[0]))])),
            shape=W.shape,
        )  # fmt: skip
        # a mask is sparse whatever the trained layer was
        fresh.layers_.append(SparseLayer(M, np.zeros(W.shape[1], W.dtype), backend=fresh.backend))
    return fresh
