"""The scikit-learn estimator, the shared defaults, and plotting that leaves matplotlib alone."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score

import graphnn
from graphnn.training import TrainConfig


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16, y[:600]


def test_clone_cross_val_and_probabilities(digits):
    X, y = digits
    clf = graphnn.SparseMLPClassifier((64,), density=0.3, max_iter=20, random_state=0)
    copy = clone(clf)
    assert copy.get_params(deep=True) == clf.get_params() and not hasattr(copy, "model_")
    scores = cross_val_score(clf, X, y, cv=2)
    assert scores.shape == (2,) and (scores > 0.3).all()  # ten classes: chance is 0.1
    clf.fit(X, y)
    proba = clf.predict_proba(X[:50])
    assert proba.shape == (50, 10) and np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(clf.predict(X[:50]), clf.classes_[proba.argmax(axis=1)])
    assert isinstance(clf.network_, graphnn.Network) and clf.network_.sizes == [64, 64, 10]
    # same seed, same model; set_params changes what the next fit does
    again = clone(clf).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X[:50]), proba)
    assert clf.set_params(max_iter=1) is clf and clf.get_params()["max_iter"] == 1


def test_labels_of_any_kind_and_bad_input(digits):
    X, y = digits
    names = np.array(["zero", "one"])[(y[:200] % 2)]
    clf = graphnn.SparseMLPClassifier((32,), max_iter=2, random_state=1).fit(X[:200], names)
    assert set(clf.predict(X[:20])) <= {"zero", "one"} and list(clf.classes_) == ["one", "zero"]
    with pytest.raises(ValueError, match="at least 2"):
        graphnn.SparseMLPClassifier(max_iter=1).fit(X[:10], np.zeros(10))
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:5, :10])


def test_python_and_command_line_share_defaults():
    from graphnn.cli.train import _parser

    args = _parser("graphnn train").parse_args([])
    cfg = TrainConfig()
    assert (args.epochs, args.batch_size, args.lr) == (cfg.epochs, cfg.batch_size, cfg.lr)
    clf = graphnn.SparseMLPClassifier()
    assert (clf.max_iter, clf.batch_size, clf.learning_rate_init) == (
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
    )


def test_plots_leave_the_matplotlib_backend_and_pyplot_alone(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    from graphnn.plotting import figure, save_figure
    from topologies import generate
    from topologies.plots import degree_histogram

    before, open_figures = matplotlib.get_backend(), plt.get_fignums()
    fig, ax = figure()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "a.png")
    degree_histogram(generate("random", [20, 30, 10], density=0.2, seed=0), tmp_path / "d.png")
    assert matplotlib.get_backend() == before and plt.get_fignums() == open_figures
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    _, given = figure(ax=ax)
    assert given is ax  # a caller's axes is drawn on, not replaced


def test_confusion_matrix_and_training_curves():
    from graphnn.plotting import figure, plot_confusion_matrix, plot_training_curves

    _, ax = figure()
    got = plot_confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], ax=ax)
    assert got is ax and got.get_title() == "accuracy 0.6667 on 6 samples"
    share = got.images[0].get_array()
    np.testing.assert_allclose(share[2], [1 / 3, 0, 2 / 3])  # rows: the true class's shares
    epochs = [
        {"epoch": e, "train_loss": 1.0 / e, "val_accuracy": 0.1 * e,
         "redistribution": {"removed": [3, 1]} if e in (2, 3) else None}
        for e in (1, 2, 3, 4)
    ]  # fmt: skip
    fig = plot_training_curves({"sparse": {"epochs": epochs}}, title="t")
    loss_ax = fig.axes[0]
    markers = [line for line in loss_ax.lines if line.get_marker() == "v"]
    assert len(markers) == 1 and list(markers[0].get_xdata()) == [2, 3]


def test_evaluate_plots_the_confusion_matrix(tmp_path, capsys):
    from graphnn import cli

    model = tmp_path / "m.npz"
    assert cli.main(["train", "--epochs", "2", "--limit", "400", "--out", str(model)]) == 0
    assert cli.main(["evaluate", str(model), "--plot", str(tmp_path / "cm.png")]) == 0
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["evaluate", str(model), "--plot", str(model)]) == 2  # never the input
    assert "is the input MODEL" in capsys.readouterr().err


def test_degree_and_path_plots_choose_their_axes():
    from topologies import generate
    from topologies.plots import plot_degree_histogram, plot_path_counts

    rmat = generate("rmat", [512, 512, 512], density=0.03, seed=0)
    axes = plot_degree_histogram(rmat).axes
    assert len(axes) == 2 and all(ax.get_xscale() == "log" for ax in axes)  # heavy tail
    deep = generate("random", [40] * 21, density=0.2, seed=0)  # 20 layers
    axes = plot_degree_histogram(deep).axes
    assert len(axes) == 4 and axes[-1].get_title() == "all 20 layers pooled"
    assert all(ax.get_xscale() == "linear" and ax.get_ylabel() == "neurons" for ax in axes)
    few = plot_path_counts(np.array([0, 2, 2, 4, 4, 4]))
    assert [t.get_text() for t in few.get_xticklabels()] == ["2", "4"]
    many = plot_path_counts(np.arange(1, 5000))
    assert many.get_xscale() == "log" and many.get_ylabel().endswith("per unit count")


def test_spy_and_layer_summary_and_draw_falls_back_to_adjacency(tmp_path, capsys):
    from graphnn import cli
    from topologies import generate
    from topologies.plots import plot_layer_summary, plot_spy

    net = generate("random", [300, 200, 200, 10], density=0.05, seed=0)
    fig = plot_spy(net)
    assert [ax.get_title() for ax in fig.axes[:3]][0].startswith("layer 1: 300x200")
    summary = plot_layer_summary(net)
    dead = summary.axes[2].lines[0].get_ydata()  # inputs without out-edges, per layer
    expected = [int((np.diff(W.indptr) == 0).sum()) for W in net.to_scipy()]
    assert list(dead) == expected and dead[-1] > 0  # 200 -> 10 at 5 %: many dead inputs
    path = tmp_path / "net.npz"
    graphnn.save_npz(net, path)
    assert cli.main(["topo", "draw", str(path), "--out", str(tmp_path / "a.png")]) == 0
    assert "adjacency" in capsys.readouterr().out  # 5,500 edges: not a layered graph
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_layer_density_follows_a_global_redistribution():
    from graphnn.plotting import plot_layer_density
    from graphnn.training import SparseMLP
    from graphnn.training.data import load_dataset
    from graphnn.training.trainer import fit

    data = load_dataset("digits", limit=300)
    cfg = TrainConfig(epochs=3, redistribution="gradient-global")
    metrics = fit(SparseMLP([64, 60, 10], density=0.1), data, cfg)
    ax = plot_layer_density(metrics)
    assert len(ax.lines) == 2
    first = ax.lines[0].get_ydata()
    np.testing.assert_allclose(first, [r["layer_nnz"][0] / (64 * 60) for r in metrics["epochs"]])
    totals = {sum(r["layer_nnz"]) for r in metrics["epochs"]}
    assert len(totals) == 1  # the network's total is kept; the layers' shares may move
