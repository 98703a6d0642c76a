"""The papers' pruning and topology experiments, end to end on the built-in digits."""

import json

import numpy as np
import pytest

from graphnn import cli
from graphnn.errors import GraphnnError
from topologies.radixnet import radixnet_for_widths


def test_radixnet_for_widths_is_alfords_lenet_radixnet():
    # N = (10, 10), B = (8, 3, 1), top 16 of the 800 inputs removed
    W1, W2 = radixnet_for_widths([784, 300, 100], 10)
    assert W1.shape == (784, 300) and W2.shape == (300, 100)
    assert W1.nnz == 784 * 30 and W2.nnz == 300 * 10  # density 1/10: fan-out 30 and 10
    assert set(np.diff(W1.indptr)) == {30} and set(np.diff(W2.indptr)) == {10}
    # every kept input reaches every output by the same number of paths, prod(B[1:-1]) = 3
    paths = (W1 @ W2).toarray()
    assert paths.min() == paths.max() == 3
    wide = radixnet_for_widths([784, 3000, 100], 10)  # their large net: same connections
    assert [W.nnz for W in wide] == [784 * 300, 300 * 100]
    with pytest.raises(GraphnnError, match="multiple of 20\\^2 = 400"):
        radixnet_for_widths([784, 300, 100], 20)


def test_topology_shapes_keep_neurons_or_connections():
    from graphnn.training.topology_experiment import structure

    sizes = [64, 300, 100, 10]
    dense = [64 * 300, 300 * 100, 100 * 10]
    for topo in ("random", "radixnet"):
        net = structure(sizes, "connections", 10, topo, seed=0)
        assert net.sizes == sizes
        assert [W.nnz for W in net.to_scipy()] == [64 * 30, 300 * 10, 1000]  # output dense
        net = structure(sizes, "width", 10, topo, seed=0)
        assert net.sizes == [64, 3000, 100, 10]
        assert [W.nnz for W in net.to_scipy()] == dense
    assert structure(sizes, "width", 100, "random", 0).sizes == [64, 30000, 100, 10]
    with pytest.raises(GraphnnError, match="no RadiX-Net"):
        structure(sizes, "width", 100, "radixnet", 0)
    a, b = (structure(sizes, "connections", 20, "random", s).to_scipy()[0] for s in (0, 0))
    assert (a != b).nnz == 0  # seeded


def test_cli_topology_experiment_runs_resumes_and_plots(tmp_path, capsys):
    out = tmp_path / "topo"
    base = ["experiment", "topology", "--epochs", "2", "--limit", "300", "--connections",
            "2,20", "--width", "10", "--out", str(out)]  # fmt: skip
    assert cli.main(base) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    got = {(r["part"], r["factor"], r["topology"]) for r in runs}
    assert got == {("dense", 1, "dense"), ("connections", 2, "random"),
                   ("connections", 2, "radixnet"), ("connections", 20, "random"),
                   ("width", 10, "random"), ("width", 10, "radixnet")}  # fmt: skip
    # no RadiX-Net of density 1/20 has width 300
    by = {(r["part"], r["factor"], r["topology"]): r for r in runs}
    dense = by["dense", 1, "dense"]["connections"]
    assert by["width", 10, "radixnet"]["connections"] == by["width", 10, "random"]["connections"]
    assert by["width", 10, "random"]["connections"] == dense
    assert by["width", 10, "random"]["sizes"] == [64, 3000, 100, 10]
    for r in runs:
        assert 0 <= r["test_accuracy"] <= 1 and len(r["epochs"]) == 2
    table = (out / "results.md").read_text()
    assert "| radixnet |" in table and "| random |" in table and "64-3000-100-10" in table
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    # resumed: nothing is trained again, the table is the same
    saved = (out / "results.json").read_text()
    assert cli.main([*base, "--resume"]) == 0
    assert (out / "results.json").read_text() == saved
    capsys.readouterr()
    assert cli.main([*base[:-2], "--width", "1", "--out", str(tmp_path / "x")]) == 2
    assert "above 1" in capsys.readouterr().err


def test_cli_pruning_experiment_prunes_retrains_and_resumes(tmp_path, capsys):
    out = tmp_path / "prune"
    base = ["experiment", "pruning", "--epochs", "2", "--prune-epochs", "2", "--limit", "300",
            "--sparsities", "0.5,0.9", "--retrain", "random,rewind", "--out", str(out)]  # fmt: skip
    assert cli.main(base) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert {(r["method"], r["sparsity"]) for r in runs} == {("dense", 0.0)} | {
        (m, s) for m in ("oneshot", "iterative", "supermask") for s in (0.5, 0.9)
    }
    dense = next(r for r in runs if r["method"] == "dense")
    n_dense = 64 * 300 + 300 * 100 + 100 * 10
    assert dense["params"] == n_dense + 410
    for r in runs:
        # every layer keeps round((1 - s) n_in n_out) edges (the supermask at most), the biases
        kept = sum(round((1 - r["sparsity"]) * a * b)
                   for a, b in ((64, 300), (300, 100), (100, 10)))  # fmt: skip
        if r["method"] in ("oneshot", "iterative"):
            assert r["params"] == kept + 410
            assert set(r["retrained"]) == {"random", "rewind"}
            assert all(len(c) == 2 for c in r["curves"].values())
        if r["method"] == "supermask":
            assert r["retrained"] == {} and r["params"] <= kept + 410
    # the one-shot pruned net at 50 % is the trained dense net's largest half: recompute it
    from graphnn.training.data import load_dataset
    from graphnn.training.model import SparseMLP
    from graphnn.training.pruning import prune_layers
    from graphnn.training.trainer import read_checkpoint

    ck = read_checkpoint(out / "dense-seed0")
    model = SparseMLP([64, 300, 100, 10], topology="dense", density=1.0).build(0)
    model.load_state_arrays(ck["model"])
    data = load_dataset("digits", seed=0, limit=300)
    assert model.score(data.X_test, data.y_test) == dense["pruned_accuracy"]
    prune_layers(model, 0.5)
    one = next(r for r in runs if r["method"] == "oneshot" and r["sparsity"] == 0.5)
    assert model.score(data.X_test, data.y_test) == one["pruned_accuracy"]
    table = (out / "results.md").read_text()
    for row in ("| oneshot, pruned |", "| iterative, retrained (rewind) |", "| supermask"):
        assert row in table
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    # a killed experiment resumes with the dense net from its checkpoint, not trained again
    saved = json.loads((out / "results.json").read_text())
    saved["runs"] = saved["runs"][:3]
    (out / "results.json").write_text(json.dumps(saved))
    stamp = (out / "dense-seed0" / "checkpoint.npz").stat().st_mtime_ns
    assert cli.main([*base, "--resume"]) == 0
    again = json.loads((out / "results.json").read_text())["runs"]
    assert again[:3] == saved["runs"] and len(again) == len(runs)
    assert (out / "dense-seed0" / "checkpoint.npz").stat().st_mtime_ns == stamp
    capsys.readouterr()
    assert cli.main([*base[:-2], "--methods", "oneshot,magic", "--out", str(tmp_path / "y")]) == 2
    assert "'magic' is not valid" in capsys.readouterr().err
    # other retraining modes are other settings, not runs silently left out
    assert cli.main([*base[:-2], "--retrain", "random", "--out", str(out), "--resume"]) == 2
    assert "other settings (retrain)" in capsys.readouterr().err
    it = next(r for r in again if r["method"] == "iterative" and r["sparsity"] == 0.9)
    assert it["prunes"][-1]["sparsity"] == pytest.approx(0.9) and len(it["prunes"]) >= 1
    assert it["layer_nnz"] == [round(0.1 * a * b) for a, b in ((64, 300), (300, 100), (100, 10))]


def test_pruning_experiment_overwrite_trains_the_dense_net_afresh(tmp_path):
    from graphnn.training.trainer import read_checkpoint

    out = tmp_path / "prune"
    base = ["experiment", "pruning", "--epochs", "1", "--prune-epochs", "1", "--sparsities",
            "0.5", "--methods", "oneshot", "--out", str(out)]  # fmt: skip
    assert cli.main([*base, "--limit", "300"]) == 0
    assert read_checkpoint(out / "dense-seed0")["identity"]["limit"] == 300
    assert cli.main([*base, "--limit", "400", "--overwrite"]) == 0
    assert read_checkpoint(out / "dense-seed0")["identity"]["limit"] == 400
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert settings["limit"] == 400


def test_pruning_experiment_checkpoints_know_their_split_and_settings(tmp_path, capsys):
    out, m = tmp_path / "prune", tmp_path / "m.json"
    base = ["experiment", "pruning", "--epochs", "1", "--prune-epochs", "1", "--sparsities",
            "0.5", "--methods", "oneshot", "--limit", "300", "--out", str(out)]  # fmt: skip
    assert cli.main([*base, "--seeds", "2"]) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    dense1 = next(r for r in runs if r["method"] == "dense" and r["seed"] == 1)
    # seed 1's dense net was trained on the split of --seed 0: prune reads that split
    assert cli.main(["prune", "--from", str(out / "dense-seed1"), "--sparsity", "0.5",
                     "--epochs", "1", "--metrics-out", str(m)]) == 0  # fmt: skip
    assert json.loads(m.read_text())["test_accuracy"]["trained"] == dense1["pruned_accuracy"]
    # a run killed before its first result still left its settings: another --epochs is refused
    saved = json.loads((out / "results.json").read_text())
    saved["runs"] = []
    (out / "results.json").write_text(json.dumps(saved))
    capsys.readouterr()
    assert cli.main([*base[:3], "2", *base[4:], "--seeds", "2", "--resume"]) == 2
    assert "other settings (epochs)" in capsys.readouterr().err


def test_pruning_experiment_can_keep_the_output_layer_dense(tmp_path):
    out = tmp_path / "prune"
    assert cli.main(["experiment", "pruning", "--epochs", "1", "--prune-epochs", "1",
                     "--sparsities", "0.9", "--limit", "300", "--dense-output",
                     "--out", str(out)]) == 0  # fmt: skip
    runs = json.loads((out / "results.json").read_text())["runs"]
    for r in runs:
        if r["method"] in ("oneshot", "iterative"):
            assert r["layer_nnz"] == [round(0.1 * 64 * 300), round(0.1 * 300 * 100), 100 * 10]
        if r["method"] == "supermask":
            assert r["layer_nnz"][2] == 1000


def test_experiment_arguments_are_checked_before_training(tmp_path, capsys):
    from graphnn.training.experiments import RunLog
    from graphnn.training.pruning_experiment import run_pruning_experiment
    from graphnn.training.topology_experiment import run_topology_experiment
    from graphnn.training.trainer import TrainConfig

    data, cfg = None, TrainConfig(epochs=1)  # nothing may be trained or even read
    log = RunLog(tmp_path / "x", {})
    with pytest.raises(GraphnnError, match="methods"):
        run_pruning_experiment(data, [64, 10, 10], [0.5], "oneshot", ["random"], [0], cfg, log)
    with pytest.raises(GraphnnError, match="sparsity"):
        run_pruning_experiment(data, [64, 10, 10], [1.5], ["oneshot"], ["random"], [0], cfg, log)
    with pytest.raises(GraphnnError, match="part"):
        run_topology_experiment(data, [64, 10, 10], {"depth": [2]}, [0], cfg, log)
    assert not (tmp_path / "x").exists()
    for argv in (["topology", "--layers", "64-10"], ["pruning", "--layers", "64-300-3"],
                 ["topology", "--seed", "-1"], ["pruning", "--limit", "0"]):  # fmt: skip
        assert cli.main(["experiment", *argv, "--out", str(tmp_path / "y")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert not (tmp_path / "y").exists()


def test_statistics_are_sample_statistics_with_t_intervals_and_paired_differences():
    from graphnn.training.experiments import (
        describe,
        paired_difference,
        sample_stats,
        still_rising,
    )

    n, mean, sd, half = sample_stats([0.90, 0.92, 0.95])
    assert n == 3 and mean == pytest.approx(0.923333, abs=1e-6)
    assert sd == pytest.approx(0.025166, abs=1e-6)  # ddof=1: sqrt(0.0012667 / 2)
    assert half == pytest.approx(4.302653 * 0.025166 / 3**0.5, rel=1e-4)  # t(0.975, 2 dof)
    assert describe([0.90, 0.92, 0.95]) == "0.9233 +- 0.0252 [0.8608, 0.9858]"
    assert describe([0.9]) == "0.9000"  # one run: no spread claimed
    runs = [{"seed": s, "test_accuracy": a} for s, a in ((0, 0.8), (1, 0.9), (2, 0.7))]
    base = [{"seed": s, "test_accuracy": a} for s, a in ((0, 0.75), (1, 0.8))]
    np.testing.assert_allclose(paired_difference(runs, base), [0.05, 0.1])  # seed 2: no pair
    assert still_rising([0.1, 0.5, 0.7, 0.8, 0.9])  # the last fifth beats all before it
    assert not still_rising([0.1, 0.9, 0.9, 0.905, 0.9])  # within one point: converged
    assert not still_rising([0.1, 0.95, 0.9, 0.9, 0.9])


def test_experiments_and_train_stop_early_on_request(tmp_path, capsys):
    from graphnn.cli.train import _parser

    args = _parser("graphnn train").parse_args(["--redistribution-fraction", "0.2"])
    assert args.alpha == 0.2  # the same setting as --alpha, by its unambiguous name
    out = tmp_path / "exp"
    base = ["experiment", "redistribution", "--densities", "0.3", "--algorithms", "none",
            "--epochs", "40", "--limit", "300", "--early-stopping", "--patience", "2",
            "--out", str(out)]  # fmt: skip
    assert cli.main(base) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert any(len(r["epochs"]) < 40 for r in runs)  # stopped: two epochs without a gain
    for r in runs:
        vals = [e["val_accuracy"] for e in r["epochs"]]
        if len(vals) < 40:
            assert max(vals[-2:]) <= max(vals[:-2]) + 1e-4
    assert "40 epochs at most, early stopping" in (out / "results.md").read_text()
