"""The training loop: minibatches, metrics, atomic checkpoints with exact resume, baselines."""

import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..backends import get_backend
from ..errors import FormatError, GraphnnError
from ..io import NPZ_ERRORS, checkpoint
from ._resources import peak_memory_mb
from .data import augment_affine
from .model import SparseMLP
from .optim import learning_rate, make_optimizer
from .redistribution import Redistributor

__all__ = ["TrainConfig", "fit", "early_stop", "param_equivalent_sizes"]

CHECKPOINT = checkpoint.NAME


@dataclass
class TrainConfig:
    """How to train; everything that decides the result, so a checkpoint can be checked.

    The defaults are the command line's and the estimator's (one source): on the built-in
    digits they reach about 0.95 test accuracy with 64-300-100-10 at density 0.1."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    optimizer: str = "adam"
    schedule: str = "constant"
    weight_decay: float = 0.0
    seed: int = 0
    augment: bool = False
    redistribution: str = "none"
    redistribute_every: int = 1
    alpha: float = 0.5
    block_size: int = 34
    damping: float = 1e-4
    early_stopping: bool = False
    patience: int = 10
    tol: float = 1e-4

    @classmethod
    def from_mapping(cls, values, **overrides):
        """The config from the entries of ``values`` named like its fields (command-line
        arguments, a checkpoint's settings), then ``overrides``."""
        names = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in values.items() if k in names}, **overrides})

    def validate(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise GraphnnError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise GraphnnError(f"lr must be positive, got {self.lr}")
        if not self.weight_decay >= 0:
            raise GraphnnError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.patience < 1:
            raise GraphnnError(f"patience must be at least 1, got {self.patience}")
        if not self.tol >= 0:
            raise GraphnnError(f"tol must be >= 0, got {self.tol}")
        return self


def early_stop(history, patience, tol):
    """``(best, stop)`` for the validation accuracies of ``history``: the index of the best
    epoch, and whether the last ``patience`` epochs each failed to beat the best before them
    by more than ``tol`` (scikit-learn's ``n_iter_no_change`` and ``tol``)."""
    best, top, stale = None, -np.inf, 0
    for i, record in enumerate(history):
        score = record["val_accuracy"]
        stale = 0 if score > top + tol else stale + 1
        if score > top:
            best, top = i, score
    return best, stale >= patience


def _save_checkpoint(directory, model, optimizer, epoch, history, identity, initial, best):
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint.write(directory / CHECKPOINT, model.state_arrays(), initial,
                     optimizer.state_arrays(), epoch, history, identity, best)  # fmt: skip


def read_checkpoint(path):
    """A checkpoint's parts (:func:`graphnn.io.checkpoint.read`): ``identity`` (the settings),
    ``model``, ``initial`` (the weights at the start of training) and ``optim`` arrays,
    ``epoch`` and ``history``; a damaged checkpoint is refused, naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise GraphnnError(f"{path}: no such checkpoint")
    try:
        return checkpoint.read(path)
    except NPZ_ERRORS as e:
        if isinstance(e, GraphnnError):
            raise FormatError(_naming(path, e)) from None
        raise GraphnnError(f"{path}: not a readable graphnn training checkpoint ({e})") from None


def _naming(path, error):
    """An error's message, starting with ``path`` unless it names it already."""
    return str(error) if str(path) in str(error) else f"{path}: {error}"


def _load_checkpoint(directory, model, optimizer, identity):
    path = directory / CHECKPOINT
    if not path.exists():
        return 0, [], None, None
    saved = read_checkpoint(path)
    if saved["identity"] != identity:
        diff = sorted(
            k for k in set(saved["identity"]) | set(identity)
            if saved["identity"].get(k) != identity.get(k)
        )  # fmt: skip
        raise GraphnnError(
            f"{path}: the checkpoint was made with other settings ({', '.join(diff)}); "
            "resume with the same ones or use another --checkpoint directory"
        )
    n_layers = len(identity["sizes"]) - 1
    checkpoint.check_optimizer_state(
        saved["optim"], saved["model"], n_layers, optimizer.slots, path
    )
    model.load_state_arrays(saved["model"])
    optimizer.load_state_arrays(saved["optim"], get_backend(model.backend).asarray)
    return saved["epoch"], saved["history"], saved["initial"], saved["best"]


def _identity(model, data, cfg):
    ident = {k: v for k, v in asdict(cfg).items() if k != "epochs"}
    if not cfg.early_stopping:  # as checkpoints made before early stopping existed
        for name in ("early_stopping", "patience", "tol"):
            del ident[name]
    ident.update({k: v for k, v in model.get_params().items() if k != "backend"})
    ident["dataset"] = data.name
    if data.limit is not None:  # the rows, hence the splits, depend on it
        ident["limit"] = data.limit
    if data.split_seed not in (None, cfg.seed):  # splits drawn with another seed than training
        ident["split_seed"] = data.split_seed
    return ident


def fit(
    model, data, cfg, *, checkpoint=None, resume=False, progress=False, log=None, after_step=None
):
    """Train ``model`` (built or not) on ``data``; returns the metrics dict.

    Batches are shuffled by a generator seeded from ``(seed, epoch)`` alone, so a run resumed
    from the checkpoint of epoch ``e`` continues exactly as the uninterrupted run would have.
    ``after_step(step, model, optimizer)`` runs after every optimiser step (step counts from 1).

    With ``cfg.early_stopping``, training stops once the validation accuracy has not improved
    for ``cfg.patience`` epochs (:func:`early_stop`) and the model ends with the weights of its
    best epoch; the metrics say ``best_epoch`` and ``stopped_early``.
    """
    cfg.validate()
    if cfg.early_stopping and not len(data.y_val):
        raise GraphnnError("early stopping needs validation rows: the dataset has none")
    if not hasattr(model, "layers_"):
        model.build(cfg.seed)
    optimizer = make_optimizer(cfg.optimizer, cfg.lr, cfg.weight_decay)
    redist = Redistributor(
        cfg.redistribution,
        alpha=cfg.alpha,
        every=cfg.redistribute_every,
        block_size=cfg.block_size,
        damping=cfg.damping,
    )
    identity = _identity(model, data, cfg)
    start, history, best = 0, [], None
    initial = {k: v.copy() for k, v in model.state_arrays().items()}
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if resume:
            start, history, saved_initial, best = _load_checkpoint(
                checkpoint, model, optimizer, identity
            )
            initial = saved_initial or initial
            if log and start:
                log(f"resumed from {checkpoint / CHECKPOINT} after epoch {start}")
    n = len(data.y_train)
    dev = get_backend(model.backend)
    if log:
        for k, layer in enumerate(model.layers_):
            if layer.sparse and layer.dense_products:
                log(
                    f"layer {k + 1} ({layer.n_in} x {layer.n_out}, density "
                    f"{layer.nnz / (layer.n_in * layer.n_out):.3g}): BLAS products over a "
                    f"zero-filled copy of its weight (the {dev.name} backend's measured "
                    f"crossover is density {dev.dense_crossover})"
                    + ("" if layer.dense_backward else "; backward sparse: few outputs")
                )
    step = start * -(-n // cfg.batch_size)
    stopped = cfg.early_stopping and early_stop(history, cfg.patience, cfg.tol)[1]
    for epoch in range(start, cfg.epochs if not stopped else start):
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, 2, epoch])
        order = rng.permutation(n)
        lr = learning_rate(cfg.lr, epoch, cfg.epochs, cfg.schedule)
        total_loss = correct = seen = 0
        batches = range(0, n, cfg.batch_size)
        redist.begin_epoch(model, epoch + 1, cfg.epochs, len(batches))
        bar = tqdm(
            batches,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            disable=not progress,
            leave=False,
        )
        for b in bar:
            idx = order[b : b + cfg.batch_size]
            X = data.X_train[idx]
            if cfg.augment and data.image_shape is not None:
                X = augment_affine(X, data.image_shape, rng)
            loss, grads, ok = model.loss_and_grads(X, data.y_train[idx])
            optimizer.step(model.layers_, grads, lr)
            redist.observe(grads, dev.asnumpy)
            step += 1
            if after_step is not None:
                after_step(step, model, optimizer)
            total_loss += loss * len(idx)
            correct += ok
            seen += len(idx)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
        bar.close()
        record = {
            "epoch": epoch + 1,
            "train_loss": total_loss / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "val_accuracy": model.score(data.X_val, data.y_val) if len(data.y_val) else None,
            # for curves beside the tables' test accuracy; never a training or stopping signal
            "test_accuracy": model.score(data.X_test, data.y_test) if len(data.y_test) else None,
            "seconds": time.perf_counter() - t0,
            "peak_memory_mb": peak_memory_mb(),
            "lr": lr,
        }
        if redist.due(epoch + 1, cfg.epochs):
            record["redistribution"] = _redistribute(redist, model, optimizer, data, epoch, cfg)
        # the weights of each layer at the end of the epoch (global redistribution moves them)
        record["layer_nnz"] = [int(layer.nnz) for layer in model.layers_]
        history.append(record)
        if log:
            val = record["val_accuracy"]
            log(
                f"epoch {epoch + 1}/{cfg.epochs}: loss {record['train_loss']:.4f}, train acc "
                f"{record['train_accuracy']:.4f}"
                + (f", val acc {val:.4f}" if val is not None else "")
                + f", {record['seconds']:.2f} s"
                + _redistribution_summary(record.get("redistribution"))
            )
        if cfg.early_stopping:
            best_epoch, stopped = early_stop(history, cfg.patience, cfg.tol)
            if best_epoch == epoch:
                best = {k: v.copy() for k, v in model.state_arrays().items()}
            elif stopped or epoch + 1 == cfg.epochs:  # the run ends: with its best weights
                model.load_state_arrays(best)
            if log and stopped:
                log(
                    f"early stop: no validation gain over {cfg.tol:g} in {cfg.patience} "
                    f"epochs; keeping the weights of epoch {best_epoch + 1}"
                )
        if checkpoint is not None:
            _save_checkpoint(
                checkpoint, model, optimizer, epoch + 1, history, identity, initial, best
            )
        if stopped:
            break
    stop = {}
    if cfg.early_stopping:
        best_epoch, stopped = early_stop(history, cfg.patience, cfg.tol)
        stop = {"best_epoch": best_epoch + 1, "stopped_early": bool(stopped)}
    return {
        "dataset": data.name,
        "sizes": model.sizes,
        "topology": model.get_params()["topology"],
        "density": model.density,
        "config": asdict(cfg),
        "epochs": history,
        "test_accuracy": model.score(data.X_test, data.y_test),
        "test_auc": auc_score(model, data),
        "params": model.params,
        **stop,
    }


def auc_score(model, data):
    """The area under the ROC curve on the test split of a two-class problem (as HIGGS results
    are reported), else None."""
    if data.n_classes != 2 or len(np.unique(data.y_test)) != 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(data.y_test, model.predict_proba(data.X_test)[:, 1]))


def _redistribution_summary(r):
    if r is None:
        return ""
    return (
        f"; moved {sum(r['added']):,} weights (alpha {r['alpha']:.3f}, loss "
        f"{r['loss_before']:.4f} -> {r['loss_after']:.4f} on removal) in {r['seconds']:.2f} s"
    )


def _redistribute(redist, model, optimizer, data, epoch, cfg):
    """One redistribution step, on the host: a model on a device (the GPU) moves to the host
    and back (structural updates are host work; the transfer is O(nonzeros))."""
    backend = model.backend
    on_device = get_backend(backend).xp is not np
    if on_device:
        model.to_backend("numba")
        optimizer.to(np.asarray)
    record = redist.step(
        model, optimizer, data, epoch + 1, cfg.epochs, np.random.default_rng([cfg.seed, 3, epoch])
    )
    if on_device:
        model.to_backend(backend)
        optimizer.to(get_backend(backend).asarray)
    return record


def _dense_params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def param_equivalent_sizes(sizes, params):
    """Widths with the hidden layers shrunk in proportion until the dense net's parameter
    count just reaches ``params`` (the sparse net's).

    >>> param_equivalent_sizes([784, 256, 256, 10], 27000)
    [784, 33, 33, 10]
    """
    hidden = sizes[1:-1]
    if not hidden:
        return list(sizes)
    top = max(hidden)
    for h in range(1, top + 1):
        cand = [sizes[0]] + [max(1, round(w * h / top)) for w in hidden] + [sizes[-1]]
        if _dense_params(cand) >= params:
            return cand
    return list(sizes)


def baseline_models(model):
    """The neuron-equivalent and parameter-equivalent dense models of a sparse ``model``."""
    common = dict(loss=model.loss, init=model.init, dtype=model.dtype, backend=model.backend)
    neuron = SparseMLP(model.sizes, topology="dense", density=1.0, **common)
    param = SparseMLP(
        param_equivalent_sizes(model.sizes, model.params), topology="dense", density=1.0, **common
    )
    return {"dense-neuron-equivalent": neuron, "dense-parameter-equivalent": param}
