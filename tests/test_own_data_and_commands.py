"""One's own data (.npz, .csv), pruning an exported network, a RadiX-Net with a dense
classifier layer, and R-MAT at any width: the research workflow beyond the built-in data."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

import graphnn
from graphnn import cli
from graphnn.errors import FormatError
from graphnn.training.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def test_npz_data_trains_and_evaluates_like_the_same_rows(tmp_path, digits, capsys):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])[y]  # fmt: skip
    path = tmp_path / "own.npz"
    np.savez(path, X=X[:1200], y=names[:1200], X_test=X[1200:], y_test=names[1200:])
    data = load_dataset(str(path), seed=3)
    # the given test part is the test split, labels numbered in sorted order
    assert data.classes == tuple(sorted(set(names)))
    np.testing.assert_array_equal(data.X_test, X[1200:])
    np.testing.assert_array_equal(np.array(data.classes)[data.y_test], names[1200:])
    assert len(data.y_train) + len(data.y_val) == 1200 and data.n_classes == 10
    model, metrics = tmp_path / "m.npz", tmp_path / "m.json"
    args = ["train", "--dataset", str(path), "--epochs", "8", "--out", str(model),
            "--metrics-out", str(metrics)]  # fmt: skip
    assert cli.main(args) == 0
    acc = json.loads(metrics.read_text())["test_accuracy"]
    assert acc > 0.7  # ten classes: chance is 0.1
    capsys.readouterr()
    assert cli.main(["evaluate", str(model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == acc  # the same rows again


def test_csv_data_with_a_named_label_column(tmp_path, digits):
    X, y = digits
    path = tmp_path / "own.csv"
    header = ",".join([f"f{i}" for i in range(32)] + ["digit"] + [f"g{i}" for i in range(32)])
    lines = [header] + [
        ",".join([*map(repr, map(float, x[:32])), str(label), *map(repr, map(float, x[32:]))])
        for x, label in zip(X[:500], y[:500])
    ]
    path.write_text("\n".join(lines) + "\n")
    data = load_dataset(str(path), label_column="digit", seed=0)
    rows = np.vstack([data.X_train, data.X_val, data.X_test])
    assert rows.shape == (500, 64) and data.n_classes == 10
    # every row is one of the file's rows, the label column taken out
    index = {x.tobytes(): int(label) for x, label in zip(X[:500], y[:500])}
    got = np.concatenate([data.y_train, data.y_val, data.y_test])
    assert [index[r.tobytes()] for r in rows] == list(np.array(data.classes)[got])
    assert len(data.y_test) == 100  # no test part: a seeded fifth
    out = tmp_path / "m.json"
    args = ["train", "--dataset", str(path), "--label-column", "digit", "--epochs", "3",
            "--metrics-out", str(out)]  # fmt: skip
    assert cli.main(args) == 0
    with pytest.raises(FormatError, match=r"own\.csv: no column named 'label'.*--label-column"):
        load_dataset(str(path))
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,0\n3,x,1\n")
    with pytest.raises(FormatError, match=r"bad\.csv: line 3: 'x' is not a number"):
        load_dataset(str(bad))
    short = tmp_path / "short.csv"
    short.write_text("a,b,label\n1,2,0\n3,1\n")
    with pytest.raises(FormatError, match=r"short\.csv: line 3: 2 fields, the header has 3"):
        load_dataset(str(short))


def test_damaged_data_files_are_refused_naming_the_file(tmp_path, capsys):
    cases = {
        "nolabels.npz": dict(X=np.zeros((5, 3))),
        "rows.npz": dict(X=np.zeros((5, 3)), y=np.zeros(4)),
        "nan.npz": dict(X=np.array([[0.0, np.nan]] * 4), y=np.arange(4)),
        "one.npz": dict(X=np.zeros((5, 3)), y=np.zeros(5)),
        "test.npz": dict(X=np.zeros((5, 3)), y=np.arange(5), X_test=np.zeros((2, 3))),
    }
    messages = {"nolabels.npz": "missing y", "rows.npz": "one label per row",
                "nan.npz": "row 0 has a value that is not a finite",
                "one.npz": "needs 2 classes", "test.npz": "missing y_test"}  # fmt: skip
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        assert cli.main(["train", "--dataset", str(tmp_path / name), "--epochs", "1"]) == 2
        err = capsys.readouterr().err
        assert name in err and messages[name] in err and "Traceback" not in err
    assert cli.main(["train", "--dataset", "mnist.txt"]) == 2
    assert "neither a dataset" in capsys.readouterr().err
    assert cli.main(["train", "--dataset", str(tmp_path / "absent.npz")]) == 2
    assert "no such data file" in capsys.readouterr().err


def test_prune_from_an_exported_network_and_sparsity_of_the_dense_count(tmp_path, capsys):
    model, pruned, metrics = tmp_path / "m.npz", tmp_path / "p.npz", tmp_path / "p.json"
    assert cli.main(["train", "--epochs", "3", "--density", "0.1", "--out", str(model)]) == 0
    args = ["prune", "--from", str(model), "--sparsity", "0.95", "--epochs", "2", "--out",
            str(pruned), "--metrics-out", str(metrics)]  # fmt: skip
    assert cli.main(args) == 0
    net, out = graphnn.load(model), graphnn.load(pruned)
    # 0.95 of the possible edges left out: each layer keeps 5 % of n_in x n_out, half its edges
    assert out.nnz == [round(0.05 * a * b) for a, b in zip(net.sizes, net.sizes[1:])]
    assert sum(out.nnz) < 0.6 * sum(net.nnz)
    # the export's own settings: the pruned net is evaluated on the same split
    capsys.readouterr()
    assert cli.main(["evaluate", str(pruned), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["test_accuracy"]
    assert got == json.loads(metrics.read_text())["test_accuracy"]["retrained (random)"]
    # a sparsity the network has already removes nothing: said, not done silently
    assert cli.main(["prune", "--from", str(model), "--sparsity", "0.5"]) == 2
    assert "removes nothing: the network's prunable layers have sparsity 0.9" in (
        capsys.readouterr().err
    )
    assert cli.main(["prune", "--from", str(model), "--sparsity", "0.95", "--retrain",
                     "rewind"]) == 2  # fmt: skip
    assert "no initial weights" in capsys.readouterr().err


def test_radixnet_with_a_dense_output_layer_from_the_command_line(tmp_path, capsys):
    base = ["train", "--topology", "radixnet", "--radices", "10,10", "--kron", "8,3,1",
            "--epochs", "2"]  # fmt: skip
    assert cli.main(base) == 2
    assert "or add --dense-output" in capsys.readouterr().err
    out = tmp_path / "r.npz"
    assert cli.main([*base, "--dense-output", "--out", str(out)]) == 0
    net = graphnn.load(out)
    from topologies import generate

    radix = generate("radixnet", [64, 300, 100], radices=[[10, 10]], kron=[8, 3, 1])
    assert net.sizes == [*radix.sizes, 10] == [64, 300, 100, 10]
    assert net.nnz[:2] == radix.nnz and net.nnz[2] == 100 * 10  # the classifier layer: full
    for W, R in zip(net.to_scipy(), radix.to_scipy()):  # the RadiX-Net's own structure
        np.testing.assert_array_equal(_edges(W), _edges(R))


def _edges(W):
    P = W.copy()
    P.data[:] = 1
    return P.toarray().astype(bool)


def test_rmat_at_widths_that_are_not_powers_of_two(capsys, tmp_path):
    from topologies import generate

    net = generate("rmat", [784, 300, 100], density=0.05, seed=0)
    assert net.sizes == [784, 300, 100]
    assert net.nnz == [round(0.05 * 784 * 300), round(0.05 * 300 * 100)]
    W = net.to_scipy()[0]
    out_deg = np.diff(W.indptr)
    assert out_deg.max() > 4 * out_deg.mean()  # still R-MAT's heavy tail
    # the initiator's top-left weight: low indices (both halves' first quadrant) get more edges
    assert out_deg[:392].sum() > 1.5 * out_deg[392:].sum()
    again = generate("rmat", [784, 300, 100], density=0.05, seed=0)
    assert [(A != B).nnz for A, B in zip(net.to_scipy(), again.to_scipy())] == [0, 0]
    assert cli.main(["topo", "generate", "rmat", "--layers", "784-300-100", "--density", "0.05",
                     "--out", str(tmp_path / "r.npz")]) == 0  # fmt: skip


def test_review_findings_empty_labels_nan_lines_parameter_names_and_ignored_flags(
    tmp_path, digits, capsys
):
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b,label\n1,2,x\n3,4,\n")
    with pytest.raises(FormatError, match=r"empty\.csv: line 3: the 'label' cell is empty"):
        load_dataset(str(empty))
    nan = tmp_path / "nan.csv"
    nan.write_text("a,b,label\n1,2,x\n3,nan,y\n")
    with pytest.raises(FormatError, match=r"nan\.csv: line 3: a value that is not a finite"):
        load_dataset(str(nan))
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(FormatError, match=r"text\.npz: not a readable \.npz file \(not a zip"):
        load_dataset(str(text))
    # the estimator's errors name its own parameters
    X, y = digits
    with pytest.raises(ValueError, match="'redistribution_fraction' parameter"):
        graphnn.SparseMLPClassifier(redistribution_fraction=1.5).fit(X[:50], y[:50])
    with pytest.warns(Warning, match="raise max_iter"):
        graphnn.SparseMLPClassifier((32,), max_iter=3, random_state=0).fit(X, y)
    # options that do nothing in this run are named; dead hidden neurons are counted
    capsys.readouterr()
    assert cli.main(["train", "--epochs", "1", "--patience", "3", "--radices", "10,10"]) == 0
    err = capsys.readouterr().err
    assert "--patience is ignored without --early-stopping" in err
    assert "--radices/--kron is ignored without --topology radixnet" in err
    assert cli.main(["train", "--topology", "radixnet", "--radices", "10,10", "--kron", "8,3,1",
                     "--dense-output", "--epochs", "1"]) == 0  # fmt: skip
    assert "81 of the 300 neurons of hidden layer 1 have no input edge" in capsys.readouterr().err
