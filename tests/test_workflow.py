"""The three jobs on one network, end to end through the command line: generate a topology,
train on that file, export, evaluate, analyse the export, convert it; a generated Kronecker
network run by the challenge from two formats against a plain scipy loop."""

import json

import numpy as np
import scipy.io
import scipy.sparse as sp

import graphnn
from challenge.generate import digit_images
from challenge.io import read_truth, write_images
from graphnn.cli import main as cli


def test_generate_train_export_evaluate_analyze_convert(tmp_path, capsys):
    topo, model = tmp_path / "topo.npz", tmp_path / "model.npz"
    assert cli(["topo", "generate", "ertl", "--layers", "64-128-10", "--density", "0.25",
                "--out", str(topo)]) == 0  # fmt: skip
    generated = graphnn.load(topo)
    rc = cli(["train", "--topology", str(topo), "--epochs", "3", "--out", str(model),
              "--metrics-out", str(tmp_path / "m.json")])  # fmt: skip
    assert rc == 0
    reported = json.loads((tmp_path / "m.json").read_text())["test_accuracy"]
    trained = graphnn.load(model)
    # trained on exactly the generated structure
    for G, T in zip(generated.layers, trained.layers):
        np.testing.assert_array_equal(G.indices, T.indices)
        np.testing.assert_array_equal(G.indptr, T.indptr)
    capsys.readouterr()
    assert cli(["evaluate", str(model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == reported
    assert cli(["topo", "analyze", str(model), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sizes"] == [64, 128, 10] and report["nnz"] == trained.nnz
    assert cli(["convert", str(model), str(tmp_path / "mtx"), "--format", "mtx"]) == 0
    W2 = sp.csr_array(scipy.io.mmread(tmp_path / "mtx" / "layer002.mtx"))
    np.testing.assert_array_equal(W2.toarray(), trained.layers[1].toarray())


def test_train_topology_of_the_wrong_width_says_so(tmp_path, capsys):
    topo = tmp_path / "t.npz"
    cli(["topo", "generate", "dense", "--layers", "100-10", "--out", str(topo)])
    capsys.readouterr()
    assert cli(["train", "--topology", str(topo)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "100-10" in err and "64 features" in err


def _naive(layers, Y, bias=-0.3):
    for W in layers:
        Z = sp.csr_array(Y @ W)
        Z.data[Z.data != 0] += bias
        np.clip(Z.data, 0, 32, out=Z.data)
        Z.eliminate_zeros()
        Y = Z
    return np.flatnonzero(np.asarray(Y.sum(axis=1)).ravel()) + 1


def test_kronecker_network_runs_in_the_challenge_from_npz_and_tsv(tmp_path, capsys):
    net_npz, net_tsv = tmp_path / "k.npz", tmp_path / "ktsv"
    assert cli(["topo", "generate", "kronecker", "--neurons", "1024", "--nlayers", "24",
                "--out", str(net_npz)]) == 0  # fmt: skip
    assert cli(["convert", str(net_npz), str(net_tsv), "--format", "tsv"]) == 0
    images = digit_images(400, 1024, seed=[1, 0])
    write_images(images, tmp_path / "img.tsv")
    expected = _naive(graphnn.load(net_npz).layers, images)
    assert 0 < expected.size < 400
    for source in (net_npz, net_tsv):
        out = tmp_path / f"cats-{source.name}.tsv"
        rc = cli(["challenge", "run", "--network", str(source), "--images",
                  str(tmp_path / "img.tsv"), "--out", str(out)])  # fmt: skip
        assert rc == 0
        np.testing.assert_array_equal(read_truth(out), expected)
    assert "1,024 neurons x 24 layers" in capsys.readouterr().out
