"""``graphnn prune``: prune a trained network (a training checkpoint or any network file), then
retrain the pruned structure."""

import dataclasses
import json
import sys
from pathlib import Path

from .. import io as gio
from ..errors import GraphnnError
from ..training.data import load_dataset
from ..training.model import SparseMLP
from ..training.pruning import (
    RETRAIN_MODES,
    gradual_prune,
    prune_layers,
    prune_neurons,
    retrain_model,
    supermask,
)
from ..training.trainer import TrainConfig, fit, read_checkpoint
from ._common import (
    SUCCESS,
    ArgumentParser,
    add_backend,
    add_data_dir,
    add_dataset,
    add_overwrite,
    add_pruning_schedule,
    check_outputs,
    finite,
    run,
    seed_int,
    widths_text,
)


def _parser(prog):
    p = ArgumentParser(
        prog=prog,
        description="Magnitude pruning of a trained network (one-shot, or gradual with the "
        "Zhu-Gupta cubic schedule), or structured pruning of whole hidden neurons (--neurons: "
        "the network really gets narrower), then retraining on the pruned structure.",
        epilog="Example: graphnn train --topology dense --checkpoint ck && graphnn prune "
        "--from ck --sparsity 0.9 --method gradual --retrain rewind",
    )
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        required=True,
        metavar="CHECKPOINT|NETWORK",
        help="a --checkpoint directory (or its checkpoint.npz) of graphnn train, or any trained "
        "network file graphnn.load reads (the export of graphnn train --out, ...): ReLU hidden "
        "layers, softmax or sigmoid output; a network holds no initial weights, so it "
        "retrains with --retrain random",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--sparsity",
        type=finite,
        metavar="S",
        help="the final sparsity: the fraction of each layer's possible (dense) edge count "
        "left out, so the layer keeps (1 - S) n_in n_out edges. Not a fraction of the edges "
        "there now: a net at density 0.1 pruned to 0.95 keeps half its edges; S must be above "
        "the network's own sparsity",
    )
    what.add_argument(
        "--neurons",
        type=finite,
        metavar="FRACTION",
        help="remove this fraction of every hidden layer's neurons, the weakest by the L2 norm "
        "of their --by weights (retrained from a fresh initialisation)",
    )
    p.add_argument(
        "--by",
        choices=("incoming", "outgoing"),
        help="which weights of a neuron measure it, with --neurons (default: incoming)",
    )
    p.add_argument(
        "--method",
        choices=("oneshot", "gradual"),
        default="oneshot",
        help="oneshot: prune once; gradual: prune every --prune-every steps along the "
        "Zhu-Gupta cubic schedule",
    )
    p.add_argument(
        "--retrain",
        choices=RETRAIN_MODES,
        default="random",
        help="random: fresh init; rewind: lottery-ticket initial weights; "
        "signconst: initial signs, one magnitude per layer",
    )
    p.add_argument("--epochs", type=int, help="retraining epochs (default: the checkpoint's)")
    add_pruning_schedule(p)
    add_dataset(p, default=None, what="the data to retrain on (default: the source's, from its "
                "settings or metadata)")  # fmt: skip
    add_data_dir(p)
    p.add_argument(
        "--seed",
        type=seed_int,
        help="seed of the data split and the retraining (default: the source's, else 0)",
    )
    add_backend(p)
    p.add_argument("--metrics-out", type=Path, metavar="FILE.json")
    p.add_argument("--out", type=Path, metavar="FILE.npz", help="save the retrained network")
    add_overwrite(p)
    return p


def main(argv, prog="graphnn prune"):
    return run(_parser(prog), argv, _main)


def _main(args):
    check_outputs(args, ["--out", "--metrics-out"], inputs={"--from": args.source})
    amount, flag = (args.sparsity, "--sparsity")
    if args.neurons is not None:
        amount, flag = args.neurons, "--neurons"
    if not 0 <= amount < 1:
        raise GraphnnError(f"{flag} must be in [0, 1), got {amount}")
    if args.neurons is None and args.by is not None:
        raise GraphnnError("--by measures neurons: it goes with --neurons, not --sparsity")
    if args.neurons is not None and args.method != "oneshot":
        raise GraphnnError("--method is for --sparsity; --neurons removes neurons at once")
    if args.neurons is not None and args.retrain != "random":
        raise GraphnnError(
            "--neurons retrains from a fresh initialisation (--retrain random): the initial "
            "weights of removed neurons have no place in the narrower network"
        )
    model, initial, ident, epochs = _source(args)
    if not initial and args.retrain != "random":
        raise GraphnnError(
            f"{args.source}: it holds no initial weights (only a training checkpoint does); "
            "use --retrain random"
        )
    epochs = epochs if args.epochs is None else args.epochs
    cfg = TrainConfig.from_mapping(ident, epochs=epochs).validate()
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    if args.sparsity is not None:
        _check_sparsity_above(model, args.sparsity, args.scope)
    data = load_dataset(ident["dataset"], data_dir=args.data_dir, seed=ident["split_seed"],
                        limit=ident.get("limit"),
                        label_column=ident.get("label_column", "label"))  # fmt: skip
    if model.sizes[0] != data.n_features:
        raise GraphnnError(
            f"--from {args.source} takes {model.sizes[0]} inputs but {data.name} has "
            f"{data.n_features} features: give the --dataset it was trained on"
        )
    rows = {"trained": (model.score(data.X_test, data.y_test), model.params)}
    mask = None
    if args.neurons is None and initial:
        # Zhou et al.'s supermask from the trained weights: no training at all
        mask = supermask(model, initial, args.sparsity, ident["seed"])
    if args.neurons is not None:
        model = prune_neurons(model, args.neurons, by=args.by or "incoming")
        log(f"structured pruning: widths {widths_text(model.sizes)}")
    elif args.method == "oneshot":
        prune_layers(model, args.sparsity, scope=args.scope)
    else:
        gradual_prune(model, data, cfg, args.sparsity, epochs=args.prune_epochs,
                      every=args.prune_every, scope=args.scope, log=log)  # fmt: skip
    rows["pruned"] = (model.score(data.X_test, data.y_test), model.params)
    if mask is not None:
        rows["supermask (no training)"] = (mask.score(data.X_test, data.y_test), mask.params)
    retrained = retrain_model(model, initial, args.retrain, ident["seed"])
    log(f"retraining ({args.retrain}) for {cfg.epochs} epochs")
    result = fit(retrained, data, dataclasses.replace(cfg, redistribution="none"), log=log)
    rows[f"retrained ({args.retrain})"] = (result["test_accuracy"], retrained.params)
    if args.out:  # with what evaluate needs to check it: dataset, split seed, accuracy
        meta = {
            "source": "graphnn prune",
            "dataset": ident["dataset"],
            "seed": ident["split_seed"],  # the split evaluate must draw
            "test_accuracy": result["test_accuracy"],
            "training": result["config"],
        }
        gio.save_npz(retrained.to_network(meta), args.out)
    if args.metrics_out:
        with gio.atomic_write(args.metrics_out, "w") as f:
            json.dump(
                {
                    "sparsity": args.sparsity,
                    "neurons": args.neurons,
                    "sizes": retrained.sizes,
                    "method": "neurons" if args.neurons is not None else args.method,
                    "scope": args.scope,
                    "retrain": args.retrain,
                    "test_accuracy": {k: v[0] for k, v in rows.items()},
                    "params": {k: v[1] for k, v in rows.items()},
                    "retraining": result,
                },
                f,
                indent=2,
            )
    print(f"{'model':<24} {'params':>10} {'test acc':>9}")
    for name, (acc, params) in rows.items():
        print(f"{name:<24} {params:>10,} {acc:>9.4f}")
    return SUCCESS


def _source(args):
    """``(model, initial, settings, epochs)`` of --from: the trained model, its initial
    weights (``{}`` for a network file), the settings it was trained with (``dataset``,
    ``split_seed``, ``seed``, ``limit`` and the training config's fields; --dataset and --seed
    override) and its epochs."""
    from ..io.checkpoint import is_checkpoint

    source = args.source
    if source.is_dir() or is_checkpoint(source):
        ck = read_checkpoint(source)
        ident = dict(ck["identity"])
        ident.setdefault("split_seed", ident["seed"])
        model = SparseMLP.from_params(ident, args.backend).build(ident["seed"])
        model.load_state_arrays(ck["model"])
        initial, epochs = ck["initial"], ck["epoch"]
    else:
        net = gio.load(source)
        model = SparseMLP.from_network(net, backend=args.backend)
        meta = net.metadata
        training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
        ident = {**training, "dataset": meta.get("dataset") or training.get("dataset")}
        seed = meta.get("seed", training.get("seed", 0))
        ident.update(seed=seed, split_seed=seed, limit=meta.get("limit"))
        if meta.get("label_column"):
            ident["label_column"] = meta["label_column"]
        initial, epochs = {}, training.get("epochs", TrainConfig.epochs)
    if args.dataset is not None:
        ident["dataset"] = args.dataset
    if args.label_column is not None:
        ident["label_column"] = args.label_column
    if args.seed is not None:
        ident.update(seed=args.seed, split_seed=args.seed)
    if not ident.get("dataset"):
        raise GraphnnError(f"--from {source} does not say which data it was trained on: give "
                           "--dataset")  # fmt: skip
    return model, initial, ident, epochs


def _check_sparsity_above(model, sparsity, scope):
    """A user error when pruning to ``sparsity`` would remove no edge: the network is that
    sparse already (``--sparsity`` counts the possible edges, not those there now)."""
    layers = [k for k in range(len(model.layers_))
              if not (k == len(model.layers_) - 1 and model.dense_output)]  # fmt: skip
    possible = sum(model.layers_[k].n_in * model.layers_[k].n_out for k in layers)
    present = sum(model.layers_[k].nnz for k in layers)
    if round((1 - sparsity) * possible) >= present:
        raise GraphnnError(
            f"--sparsity {sparsity:g} removes nothing: the network's prunable layers have "
            f"sparsity {1 - present / possible:.4g} already (--sparsity is the final fraction "
            "of the possible edges left out, not a fraction of the edges there now)"
        )
