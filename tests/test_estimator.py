"""The scikit-learn estimator, the shared defaults, and plotting that leaves matplotlib alone."""

import numpy as np
import pytest
import scipy.sparse as sp
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


def test_check_estimator_pickle_joblib_and_parallel_grid_search(digits, tmp_path):
    import pickle

    import joblib
    from sklearn.exceptions import NotFittedError
    from sklearn.model_selection import GridSearchCV
    from sklearn.utils.estimator_checks import check_estimator

    assert "SparseMLPClassifier" in dir(graphnn)
    failed = [
        (r["check_name"], r["exception"])
        for r in check_estimator(graphnn.SparseMLPClassifier(), on_fail=None)
        if r["status"] == "failed"
    ]
    assert failed == []
    with pytest.raises(NotFittedError):
        graphnn.SparseMLPClassifier().predict(digits[0][:2])
    with pytest.raises(ValueError, match="continuous"):
        graphnn.SparseMLPClassifier().fit(digits[0][:20], np.linspace(0, 1, 20))
    X, y = digits
    clf = graphnn.SparseMLPClassifier((32,), max_iter=3, random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(X), expected)
    grid = GridSearchCV(
        graphnn.SparseMLPClassifier((32,), max_iter=3, random_state=0),
        {"density": [0.1, 0.5]},
        cv=2,
        n_jobs=2,
    ).fit(X, y)
    serial = GridSearchCV(grid.estimator, grid.param_grid, cv=2).fit(X, y)
    np.testing.assert_array_equal(
        grid.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )


def test_fitted_attributes_early_stopping_and_redistribution_settings(digits, capsys):
    from graphnn.training.trainer import early_stop

    X, y = digits
    clf = graphnn.SparseMLPClassifier(
        (64,), max_iter=40, early_stopping=True, n_iter_no_change=3, random_state=0, verbose=True
    ).fit(X, y)
    scores = clf.validation_scores_
    assert clf.n_iter_ == len(scores) == len(clf.loss_curve_) < 40
    assert clf.best_validation_score_ == max(scores)
    best, stop = early_stop([{"val_accuracy": s} for s in scores], 3, clf.tol)
    assert stop and clf.history_["best_epoch"] == best + 1 and clf.history_["stopped_early"]
    # the last three epochs each failed to beat the best before them
    assert all(s <= max(scores[: len(scores) - 3 + i]) + clf.tol for i, s in enumerate(scores[-3:]))
    out = capsys.readouterr().out
    assert out.count("epoch ") >= clf.n_iter_ and "early stop" in out
    plain = graphnn.SparseMLPClassifier((64,), max_iter=3, random_state=0).fit(X, y)
    assert plain.validation_scores_ is None and plain.n_iter_ == 3
    assert plain.loss_curve_[-1] < plain.loss_curve_[0]
    # the estimator's redistribution fraction and interval reach the trainer
    moved = graphnn.SparseMLPClassifier(
        (64,), max_iter=4, redistribution="random", redistribution_fraction=0.2,
        redistribution_interval=2, random_state=0,
    ).fit(X, y)  # fmt: skip
    steps = [e.get("redistribution") for e in moved.history_["epochs"]]
    assert [s is not None for s in steps] == [False, True, False, False]
    assert moved.history_["config"]["alpha"] == 0.2


def test_early_stopping_keeps_the_best_weights_and_resumes(tmp_path):
    from graphnn.training import SparseMLP
    from graphnn.training.data import load_dataset
    from graphnn.training.trainer import fit

    data = load_dataset("digits", seed=0, limit=400)
    cfg = TrainConfig(epochs=30, lr=3e-2, early_stopping=True, patience=2, seed=0)
    model = SparseMLP([64, 32, 10], density=0.3)
    metrics = fit(model, data, cfg, checkpoint=tmp_path / "ck")
    vals = [e["val_accuracy"] for e in metrics["epochs"]]
    assert metrics["stopped_early"] and len(vals) < 30
    assert model.score(data.X_val, data.y_val) == max(vals) == vals[metrics["best_epoch"] - 1]
    # resuming a stopped run trains no further and ends with the same weights
    again = SparseMLP([64, 32, 10], density=0.3)
    resumed = fit(again, data, cfg, checkpoint=tmp_path / "ck", resume=True)
    assert len(resumed["epochs"]) == len(vals) and resumed["best_epoch"] == metrics["best_epoch"]
    np.testing.assert_array_equal(again.predict_proba(data.X_val), model.predict_proba(data.X_val))
    with pytest.raises(graphnn.GraphnnError, match="validation rows"):
        empty = data.__class__(**{**vars(data), "X_val": data.X_val[:0], "y_val": data.y_val[:0]})
        fit(SparseMLP([64, 32, 10]), empty, cfg)


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
        {"epoch": e, "train_loss": 1.0 / e, "val_accuracy": 0.1 * e, "train_accuracy": 0.2 * e,
         "test_accuracy": 0.15 * e,
         "redistribution": {"removed": [3, 1]} if e in (2, 3) else None}
        for e in (1, 2, 3, 4)
    ]  # fmt: skip
    fig = plot_training_curves({"sparse": {"epochs": epochs}}, title="t")
    loss_ax, acc_ax = fig.axes
    markers = [line for line in loss_ax.lines if line.get_marker() == "v"]
    assert len(markers) == 1 and list(markers[0].get_xdata()) == [2, 3]
    # training and test accuracy, both drawn (not validation)
    curves = {line.get_label(): list(line.get_ydata()) for line in acc_ax.lines}
    np.testing.assert_allclose(curves["sparse: test"], [0.15, 0.3, 0.45, 0.6])
    np.testing.assert_allclose(curves["sparse: train"], [0.2, 0.4, 0.6, 0.8])


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
    # dead neurons are counted: a bar of their own, left of degree 1, and in the legend
    W = rmat.to_scipy()[0]
    dead_out = int((np.diff(W.indptr) == 0).sum())
    assert dead_out > 0
    bars = [p.get_height() for p in axes[0].patches if type(p).__name__ == "Rectangle"]
    assert dead_out in bars and all(p.get_x() < 1 for p in axes[0].patches
                                    if type(p).__name__ == "Rectangle")  # fmt: skip
    assert f"({dead_out:,} dead)" in axes[0].get_legend().get_texts()[0].get_text()
    # a dense output layer's two narrow distributions stay on linear axes
    narrow = generate("random", [64, 300, 10], density=0.1, seed=0).to_scipy()
    narrow[-1] = sp.csr_array(np.ones((300, 10)))
    axes = plot_degree_histogram(narrow).axes
    assert axes[1].get_xscale() == "linear" and axes[1].get_ylim()[0] == 0
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
    # one colour norm for every panel, as the one colour bar says
    norms = {id(ax.images[0].norm) for ax in fig.axes if ax.images}
    assert len(norms) == 1 and len(fig.axes) == 4  # three panels and the bar
    summary = plot_layer_summary(net)
    expected = [int((np.diff(W.indptr) == 0).sum()) for W in net.to_scipy()]
    # three layers: bars (inputs without out-edges first), counts from zero
    dead = [p.get_height() for p in summary.axes[2].patches][:3]
    assert dead == expected and dead[-1] > 0  # 200 -> 10 at 5 %: many dead inputs
    assert all(ax.get_ylim()[0] == 0 for ax in summary.axes)
    full = plot_layer_summary(generate("dense", [20] * 4))
    assert full.axes[2].get_ylim() == (0, 1)  # no dead neurons: never a negative count
    deep = plot_layer_summary(generate("random", [40] * 21, density=0.2, seed=0))
    assert len(deep.axes[2].lines) == 2  # twenty layers: a series
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
