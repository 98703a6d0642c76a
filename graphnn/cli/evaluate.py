"""``graphnn evaluate MODEL``: the test accuracy of a saved model."""

import json
from pathlib import Path

from ..errors import GraphnnError
from ._common import SUCCESS, ArgumentParser, add_data_dir, add_dataset, add_json, run


def _parser(prog):

    p = ArgumentParser(
        prog=prog,
        description="Test accuracy of a saved model: the export of 'graphnn train --out', a "
        "training checkpoint, or any network graphnn.load reads whose hidden layers are ReLU and "
        "whose output is softmax (or sigmoid with one output). On a training export it equals "
        "the run's reported test accuracy exactly.",
        epilog="Example: graphnn train --out model.npz && graphnn evaluate model.npz",
    )
    p.add_argument("model", type=Path, metavar="MODEL")
    add_dataset(p, default=None,
                what="the dataset (default: the one the model was trained on, from its "
                "metadata)")  # fmt: skip
    add_data_dir(p)
    p.add_argument(
        "--seed",
        type=int,
        help="seed of the dataset split (default: the training run's)",
    )
    p.add_argument(
        "--limit", type=int, metavar="N", help="as for graphnn train (default: the run's)"
    )
    add_json(p)
    p.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="the confusion matrix on the test set"
    )
    return p


def main(argv, prog="graphnn evaluate"):
    return run(_parser(prog), argv, _main)


def _main(args):
    from ..io import load
    from ..training.data import load_dataset
    from ..training.model import SparseMLP
    from ..training.trainer import auc_score

    net = load(args.model)
    model = SparseMLP.from_network(net)  # first: is it a trained classifier at all?
    meta = net.metadata
    training = meta.get("training", {})
    dataset = args.dataset or meta.get("dataset") or training.get("dataset")
    if dataset is None:
        raise GraphnnError(
            f"{args.model} does not say which dataset it was trained on: give --dataset"
        )
    seed = args.seed if args.seed is not None else meta.get("seed", training.get("seed", 0))
    limit = args.limit if args.limit is not None else meta.get("limit")
    column = args.label_column or meta.get("label_column", "label")
    data = load_dataset(dataset, data_dir=args.data_dir, seed=seed, limit=limit,
                        label_column=column)  # fmt: skip
    if net.sizes[0] != data.n_features:
        raise GraphnnError(
            f"{args.model} takes {net.sizes[0]} inputs but {dataset} has {data.n_features} features"
        )
    if args.plot is not None:
        from ..plotting import plot_confusion_matrix, save_figure
        from ._common import check_output

        check_output(args.plot, "--plot", inputs={args.model.resolve(): "MODEL"})
        ax = plot_confusion_matrix(data.y_test, model.predict(data.X_test))
        ax.set_title(f"{args.model.name} on {data.name}: {ax.get_title()}", fontsize=9)
        save_figure(ax.figure, args.plot)
    result = {
        "model": str(args.model),
        "dataset": data.name,
        "test_samples": int(len(data.y_test)),
        "test_accuracy": model.score(data.X_test, data.y_test),
        "test_auc": auc_score(model, data),
        "reported_test_accuracy": meta.get("test_accuracy"),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{args.model}: test accuracy {result['test_accuracy']:.4f}"
            + (f", AUC {result['test_auc']:.4f}" if result["test_auc"] is not None else "")
            + " on "
            f"{result['test_samples']:,} {data.name} test samples"
            + (
                f" (the training run reported {result['reported_test_accuracy']:.4f})"
                if result["reported_test_accuracy"] is not None
                else ""
            )
        )
    return SUCCESS
