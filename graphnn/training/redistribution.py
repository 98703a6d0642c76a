"""Dynamic sparse training: the weight redistribution algorithms of Eibensteiner (ICG TU Graz),
"Weight Redistribution Algorithms for Sparse Neural Networks", sections 2 and 3.1.

Every algorithm is a removal and a growth on each sparse layer ``W``, as masked matrix
operations of the model's backend (in SuiteSparse on the ``graphblas`` backend):

* removal keeps a selection of the stored entries, ``W(keep.V, replace=True) << W``, where
  ``keep`` is false at the ``k`` smallest by magnitude (or by the second-order cost);
* growth picks entries only in the structural complement ``~W.S`` of what was kept: the top-k
  of ``|X^T dZ|`` there (``complement_topk``) or uniformly at random, and adds them at zero,
  ``W(N.S) << 0``;
* the optimiser's state for ``W`` goes through the same two masked assignments, so a kept
  weight keeps its state and a regrown one starts from zero.

Local algorithms keep each layer's nonzero count; global ones keep the network's total.
"""

import math
import time

import numpy as np

from ..backends.topk import best, sample_absent
from ..entries import flat_keys
from ..errors import GraphnnError
from ._resources import peak_memory_mb
from .rewiring import host_backend, kept_positions, restructure

__all__ = ["ALGORITHMS", "Redistributor", "alpha_schedule"]

ALGORITHMS = ("none", "random", "gradient", "gradient-global", "loss", "woodfisher", "woodtaylor")
LOSS_NEURON_FRACTION = 0.3  # Redr-Loss grows at the top 30% of a layer's neurons


def alpha_schedule(epoch, epochs, alpha0):
    """Fraction to move after ``epoch`` (1-based): ``alpha0/2 (1 + cos(pi t / T_end))`` with
    ``T_end`` = 3/4 of the training epochs, and none after ``T_end``."""
    t_end = 0.75 * epochs
    if epoch > t_end or t_end <= 0:
        return 0.0
    return alpha0 / 2 * (1 + math.cos(math.pi * epoch / t_end))


def _smallest(scores, k):
    """A mask that is false at the ``k`` smallest scores (ties: lowest index first)."""
    keep = np.ones(scores.size, dtype=bool)
    keep[best(-scores, np.arange(scores.size), k)] = False
    return keep


def _grow_loss(XT, dZT, existing, k, n_out):
    """Ertl's loss-driven growth: the top 30% neurons by absolute loss, an equal share of ``k``
    each at their largest absent gradients (a share a neuron cannot take passes on)."""
    score = np.abs(dZT).sum(axis=1)
    order = np.argsort(-score, kind="stable")
    n_top = max(1, int(round(LOSS_NEURON_FRACTION * n_out)))
    rows_of = existing // n_out
    cols_of = existing % n_out
    chosen, remaining = [], k
    for rank, j in enumerate(order):
        if remaining <= 0:
            break
        share = -(-remaining // max(1, n_top - rank)) if rank < n_top else remaining
        g = np.abs(XT @ dZT[j]).astype(np.float64)
        g[rows_of[cols_of == j]] = -1.0
        take = min(share, int((g >= 0).sum()))
        if take:
            rows = np.argsort(-g, kind="stable")[:take]
            chosen.append(flat_keys(rows, np.full(rows.size, j), n_out))
            remaining -= take
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, np.int64)


class _BlockFisher:
    """Block-diagonal inverse empirical Fisher of one layer's weights (WoodFisher):
    ``F = 1/N sum g g^T + lambda I``, its inverse built by Sherman-Morrison one gradient at a
    time from ``F_0^-1 = I / lambda``, in blocks of ``c`` consecutive weights."""

    def __init__(self, size, block, damping, n_grads, dtype):
        self.size, self.c, self.n = size, block, n_grads
        nb = -(-size // block)
        self.inv = np.broadcast_to(np.eye(block, dtype=dtype) / damping, (nb, block, block)).copy()
        self.grad_sum = np.zeros(nb * block, dtype)

    def _blocks(self, v):
        out = np.zeros(self.inv.shape[0] * self.c, self.inv.dtype)
        out[: self.size] = v
        return out.reshape(-1, self.c)

    def observe(self, g):
        if g.size != self.size:
            return  # the structure changed since this Fisher began: ignore stale gradients
        gb = self._blocks(g)
        Fg = np.einsum("bij,bj->bi", self.inv, gb)
        denom = self.n + np.einsum("bi,bi->b", gb, Fg)
        self.inv -= np.einsum("bi,bj->bij", Fg, Fg / denom[:, None])
        self.grad_sum[: self.size] += g

    def diag(self):
        return np.einsum("bii->bi", self.inv).ravel()[: self.size]

    def inv_times(self, v):
        """``F^-1 v`` blockwise, for a vector over the layer's weights."""
        return np.einsum("bij,bj->bi", self.inv, self._blocks(v)).ravel()[: self.size]


class Redistributor:
    """Moves a fraction of the active weights after every ``every`` epochs.

    Parameters
    ----------
    algorithm : one of :data:`ALGORITHMS`
    alpha : float
        Initial fraction ``alpha_0`` of the active weights moved, cosine-annealed to zero at
        3/4 of training.
    every : int
        Epochs between redistributions (``T``).
    block_size, damping : WoodFisher/WoodTaylor block size ``c`` and damping ``lambda``.
    growth_samples : int
        Training samples whose gradients drive growth and measure the induced loss.
    """

    def __init__(
        self,
        algorithm="none",
        *,
        alpha=0.5,
        every=1,
        block_size=34,
        damping=1e-4,
        growth_samples=1024,
    ):
        if algorithm not in ALGORITHMS:
            raise GraphnnError(
                f"redistribution {algorithm!r} is not valid; choose from {', '.join(ALGORITHMS)}"
            )
        if not 0 <= alpha <= 1:
            raise GraphnnError(f"alpha must be in [0, 1], got {alpha}")
        for name, v in (
            ("redistribute_every", every),
            ("block_size", block_size),
            ("growth_samples", growth_samples),
        ):
            if v < 1:
                raise GraphnnError(f"{name} must be at least 1, got {v}")
        if damping <= 0:
            raise GraphnnError(f"damping must be positive, got {damping}")
        self.algorithm, self.alpha, self.every = algorithm, alpha, every
        self.block_size, self.damping, self.growth_samples = block_size, damping, growth_samples
        self._fisher = None

    @property
    def second_order(self):
        return self.algorithm in ("woodfisher", "woodtaylor")

    def due(self, epoch, epochs):
        """Whether to redistribute after ``epoch`` (1-based)."""
        return (
            self.algorithm != "none"
            and epoch % self.every == 0
            and alpha_schedule(epoch, epochs, self.alpha) > 0
        )

    def begin_epoch(self, model, epoch, epochs, steps):
        """Start collecting the epoch's gradients when a second-order step follows it."""
        self._fisher = None
        if self.second_order and self.due(epoch, epochs):
            self._fisher = {
                k: _BlockFisher(L.nnz, self.block_size, self.damping, steps, L.values.dtype)
                for k, L in enumerate(model.layers_)
                if L.sparse
            }

    def observe(self, grads, to_host=np.asarray):
        """Feed one step's gradients to the inverse Fisher (second-order algorithms only);
        ``to_host`` brings device arrays to numpy."""
        if self._fisher:
            for k, F in self._fisher.items():
                F.observe(to_host(grads[k][0]))

    def step(self, model, optimizer, data, epoch, epochs, rng):
        """Redistribute after ``epoch``; returns the record for the metrics."""
        t0 = time.perf_counter()
        alpha = alpha_schedule(epoch, epochs, self.alpha)
        n = min(self.growth_samples, len(data.y_train))
        idx = rng.choice(len(data.y_train), size=n, replace=False)
        X, y = data.X_train[idx], data.y_train[idx]
        sparse = [k for k, L in enumerate(model.layers_) if L.sparse]
        if self.algorithm in ("gradient", "gradient-global", "loss"):
            loss_before, _, _, signals = model.backprop(X, y, want_grads=False)
        else:
            loss_before, signals = model.evaluate_loss(X, y), None
        counts = {k: int(round(alpha * model.layers_[k].nnz)) for k in sparse}
        if self.second_order:
            keep = self._remove_second_order(model, sparse, sum(counts.values()))
        else:
            keep = {k: _smallest(np.abs(model.layers_[k].values), counts[k]) for k in sparse}
        removed = {k: int((~keep[k]).sum()) for k in sparse}
        be = host_backend(model)
        kept = {k: kept_positions(be, model.layers_[k], keep[k]) for k in sparse}
        # induced loss: right after removal (regrown weights start at zero, so growth adds none)
        saved = {k: model.layers_[k].values.copy() for k in sparse}
        for k in sparse:
            model.layers_[k].values[~keep[k]] = 0
        loss_after = model.evaluate_loss(X, y)
        for k in sparse:
            model.layers_[k].values[...] = saved[k]
        grown = self._grow(be, model, sparse, removed, kept, signals, rng)
        for k in sparse:
            restructure(be, model.layers_[k], optimizer, k, kept[k], grown[k])
        self._fisher = None
        return {
            "epoch": epoch,
            "alpha": alpha,
            "loss_before": loss_before,
            "loss_after": loss_after,
            "removed": [removed[k] for k in sparse],
            "added": [int(grown[k].size) for k in sparse],
            "seconds": time.perf_counter() - t0,
            "peak_memory_mb": peak_memory_mb(),
        }

    def _grow(self, be, model, sparse, removed, kept, signals, rng):
        """Flat keys to add at zero, per layer: ``removed[k]`` of them in ``~kept[k].S`` (local
        algorithms), or the total over the network (global ones)."""
        L = model.layers_
        a = self.algorithm
        if a == "random":
            return {
                k: sample_absent(L[k].n_in, L[k].n_out, be.entry_keys(kept[k]), removed[k], rng)
                for k in sparse
            }
        if a == "gradient":
            return {
                k: np.sort(be.complement_topk(*signals[k], kept[k], removed[k])[1]) for k in sparse
            }
        if a == "loss":
            return {
                k: _grow_loss(*signals[k], be.entry_keys(kept[k]), removed[k], L[k].n_out)
                for k in sparse
            }
        total = sum(removed.values())
        if a == "gradient-global":
            return self._grow_global(be, sparse, kept, signals, total)
        return self._grow_proportional(be, L, sparse, kept, total, rng)

    @staticmethod
    def _grow_global(be, sparse, kept, signals, total):
        """Growth at the network's ``total`` largest absent gradients, one layer at a time,
        keeping a running top-k (ties to the earlier layer, then the smaller key)."""
        best_s = np.empty(0)
        best_l, best_k = np.empty(0, np.int64), np.empty(0, np.int64)
        for k in sparse:
            floor = best_s.min() if best_s.size == total and total else -1.0
            s, keys = be.complement_topk(*signals[k], kept[k], total, floor)
            best_s = np.concatenate([best_s, s.astype(np.float64)])
            best_l = np.concatenate([best_l, np.full(keys.size, k)])
            best_k = np.concatenate([best_k, keys])
            # one tie-break key: layer first, then position
            pick = best(best_s, best_l * (1 << 40) + best_k, total)
            best_s, best_l, best_k = best_s[pick], best_l[pick], best_k[pick]
        return {k: np.sort(best_k[best_l == k]) for k in sparse}

    @staticmethod
    def _grow_proportional(be, L, sparse, kept, total, rng):
        """Random growth with ``total`` split in proportion to the layers' sizes."""
        existing = {k: be.entry_keys(kept[k]) for k in sparse}
        room = {k: L[k].n_in * L[k].n_out - existing[k].size for k in sparse}
        share = {k: 0 for k in sparse}
        left = total
        while left > 0 and any(room[k] > share[k] for k in sparse):
            open_ = [k for k in sparse if room[k] > share[k]]
            sizes = np.array([L[k].n_in * L[k].n_out for k in open_], dtype=float)
            quota = np.floor(left * sizes / sizes.sum()).astype(int)
            quota[np.argsort(-(left * sizes / sizes.sum() - quota))[: left - quota.sum()]] += 1
            for k, q in zip(open_, quota):
                give = min(int(q), room[k] - share[k])
                share[k] += give
                left -= give
        return {k: sample_absent(L[k].n_in, L[k].n_out, existing[k], share[k], rng) for k in sparse}

    def _remove_second_order(self, model, sparse, total):
        """Remove the ``total`` weights of least quadratic cost across the network and apply
        the optimal update to the rest of their blocks (WoodFisher, WoodTaylor)."""
        if self._fisher is None:
            raise GraphnnError("a second-order step needs the gradients of the epoch before it")
        costs, where = [], []
        taylor = self.algorithm == "woodtaylor"
        for k in sparse:
            F, w = self._fisher[k], model.layers_[k].values.astype(np.float64)
            d = F.diag().astype(np.float64)
            if taylor:
                g = (F.grad_sum[: F.size] / F.n).astype(np.float64)
                Fg = F.inv_times(g).astype(np.float64)
                gFg = np.add.reduceat(
                    np.pad(g * Fg, (0, F.inv.shape[0] * F.c - F.size)),
                    np.arange(0, F.inv.shape[0] * F.c, F.c),
                )
                cost = 0.5 * (w - Fg) ** 2 / d - 0.5 * gFg[np.arange(F.size) // F.c]
            else:
                cost = w**2 / (2 * d)
            costs.append(cost)
            where.append(np.full(cost.size, k))
        cost, layer = np.concatenate(costs), np.concatenate(where)
        pos = np.concatenate([np.arange(c.size) for c in costs])
        order = np.lexsort((pos, layer, cost))[:total]
        removed = {k: np.sort(pos[order][layer[order] == k]) for k in sparse}
        keep = {}
        for k in sparse:
            self._optimal_update(model.layers_[k], self._fisher[k], removed[k], taylor)
            keep[k] = np.ones(model.layers_[k].nnz, dtype=bool)
            keep[k][removed[k]] = False
        return keep

    @staticmethod
    def _optimal_update(layer, F, removed, taylor):
        if removed.size == 0:
            return
        w = layer.values
        c = F.c
        b, i = removed // c, removed % c
        d = F.inv[b, i, i]
        lam = w[removed].astype(np.float64)
        delta = np.zeros((F.inv.shape[0], c))
        if taylor:
            g = F.grad_sum[: F.size] / F.n
            Fg = F.inv_times(g)
            lam = lam - Fg[removed]
            touched = np.unique(b)
            full = np.zeros(F.inv.shape[0] * c)
            full[: F.size] = Fg
            delta[touched] -= full.reshape(-1, c)[touched]
        np.add.at(delta, b, -(lam / d)[:, None] * F.inv[b, :, i])
        w += delta.ravel()[: F.size].astype(w.dtype)
        w[removed] = 0
