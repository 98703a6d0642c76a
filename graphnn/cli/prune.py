"""``graphnn prune``: prune a trained checkpoint, then retrain the pruned structure."""

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
    add_overwrite,
    add_pruning_schedule,
    check_outputs,
    finite,
    run,
)


def _parser(prog):
    p = ArgumentParser(
        prog=prog,
        description="Magnitude pruning of a trained checkpoint (one-shot, or gradual with the "
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
        metavar="CHECKPOINT",
        help="a --checkpoint directory (or its checkpoint.npz) of graphnn train",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--sparsity", type=finite, help="fraction of edges removed")
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
    add_data_dir(p)
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
    ck = read_checkpoint(args.source)
    if not ck["initial"] and args.retrain != "random":
        raise GraphnnError(
            f"{args.source}: the checkpoint holds no initial weights; use --retrain random"
        )
    ident = ck["identity"]
    epochs = ck["epoch"] if args.epochs is None else args.epochs
    cfg = TrainConfig.from_mapping(ident, epochs=epochs).validate()
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731
    data = load_dataset(ident["dataset"], data_dir=args.data_dir,
                        seed=ident.get("split_seed", ident["seed"]),
                        limit=ident.get("limit"))  # fmt: skip
    model = SparseMLP.from_params(ident, args.backend).build(ident["seed"])
    model.load_state_arrays(ck["model"])
    rows = {"trained": (model.score(data.X_test, data.y_test), model.params)}
    mask = None
    if args.neurons is None and ck["initial"]:
        # Zhou et al.'s supermask from the trained weights: no training at all
        mask = supermask(model, ck["initial"], args.sparsity, ident["seed"])
    if args.neurons is not None:
        model = prune_neurons(model, args.neurons, by=args.by or "incoming")
        log(f"structured pruning: widths {'-'.join(map(str, model.sizes))}")
    elif args.method == "oneshot":
        prune_layers(model, args.sparsity, scope=args.scope)
    else:
        gradual_prune(model, data, cfg, args.sparsity, epochs=args.prune_epochs,
                      every=args.prune_every, scope=args.scope, log=log)  # fmt: skip
    rows["pruned"] = (model.score(data.X_test, data.y_test), model.params)
    if mask is not None:
        rows["supermask (no training)"] = (mask.score(data.X_test, data.y_test), mask.params)
    retrained = retrain_model(model, ck["initial"], args.retrain, ident["seed"])
    log(f"retraining ({args.retrain}) for {cfg.epochs} epochs")
    result = fit(retrained, data, dataclasses.replace(cfg, redistribution="none"), log=log)
    rows[f"retrained ({args.retrain})"] = (result["test_accuracy"], retrained.params)
    if args.out:  # with what evaluate needs to check it: dataset, split seed, accuracy
        meta = {
            "source": "graphnn prune",
            "dataset": ident["dataset"],
            "seed": ident.get("split_seed", ident["seed"]),  # the split evaluate must draw
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
