import json

import numpy as np
import pytest

from graphnn import cli
from graphnn.errors import GraphnnError
from graphnn.training import Adam, SparseMLP, TrainConfig, fit, load_dataset
from graphnn.training.pruning import GradualPruner, prune_layers, retrain_model, zhu_gupta
from graphnn.training.trainer import read_checkpoint


def test_zhu_gupta_cubic_schedule():
    # s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3
    assert zhu_gupta(0, 0.9, n_prunes=10, every=200) == 0.0
    assert zhu_gupta(1000, 0.9, n_prunes=10, every=200) == pytest.approx(0.9 - 0.9 * 0.5**3)
    assert zhu_gupta(2000, 0.9, n_prunes=10, every=200) == pytest.approx(0.9)
    assert zhu_gupta(5000, 0.9, n_prunes=10, every=200) == pytest.approx(0.9)
    assert zhu_gupta(50, 0.9, initial=0.5, start=100) == 0.5


def test_prune_layers_keeps_the_largest_fraction():
    m = SparseMLP([20, 15, 5], topology="dense", density=1.0).build(0)
    dense = [L.weight.copy() for L in m.layers_]
    prune_layers(m, 0.8)
    for W, L in zip(dense, m.layers_):
        assert L.sparse and L.nnz == round(0.2 * W.size)
        kept = L.to_scipy().toarray() != 0
        assert np.abs(W[kept]).min() >= np.abs(W[~kept]).max()
        np.testing.assert_array_equal(L.to_scipy().toarray()[kept], W[kept])


def test_global_pruning_keeps_the_largest_weights_of_all_layers():
    m = SparseMLP([40, 30, 20, 5], topology="dense", density=1.0).build(0)
    dense = [L.weight.copy() for L in m.layers_]
    # brute force: one threshold over every weight of the net
    flat = np.sort(np.concatenate([np.abs(W).ravel() for W in dense]))[::-1]
    n_keep = round(0.25 * flat.size)
    threshold = flat[n_keep - 1]
    prune_layers(m, 0.75, scope="global")
    assert sum(L.nnz for L in m.layers_) == n_keep
    for W, L in zip(dense, m.layers_):
        kept = L.to_scipy().toarray() != 0
        np.testing.assert_array_equal(kept, np.abs(W) >= threshold)
    # under the fan-in initialisation the wide first layer has the smallest weights: it loses
    # more than the net's 75 %, the output layer less
    density = [L.nnz / W.size for W, L in zip(dense, m.layers_)]
    assert density[0] < 0.25 < density[2]
    with pytest.raises(GraphnnError, match="scope"):
        prune_layers(m, 0.5, scope="everything")


def test_gradual_pruner_reaches_target_and_carries_state():
    data = load_dataset("digits", seed=0, limit=500)
    m = SparseMLP([64, 50, 10], density=0.5).build(0)
    pruner = GradualPruner(0.9, n_prunes=4, every=5)
    fit(m, data, TrainConfig(epochs=3, batch_size=32), after_step=pruner)
    assert [h["step"] for h in pruner.history] == [5, 10, 15, 20]
    assert pruner.history[-1]["sparsity"] == pytest.approx(0.9)
    assert [L.nnz for L in m.layers_] == [round(0.1 * 64 * 50), round(0.1 * 50 * 10)]


def test_retrain_modes_use_initial_weights():
    m = SparseMLP([30, 20, 5], topology="dense", density=1.0).build(1)
    initial = {k: v.copy() for k, v in m.state_arrays().items()}
    for L in m.layers_:
        L.weight += np.random.default_rng(2).standard_normal(L.weight.shape) * 0.1
    prune_layers(m, 0.7)
    rewind = retrain_model(m, initial, "rewind", 0)
    signs = retrain_model(m, initial, "signconst", 0)
    fresh = retrain_model(m, initial, "random", 0)
    for k, (R, S, F, P) in enumerate(zip(rewind.layers_, signs.layers_, fresh.layers_, m.layers_)):
        W0 = initial[f"L{k}_weight"]
        rows, cols = P.rows(), P.indices
        np.testing.assert_array_equal(R.values, W0[rows, cols])
        np.testing.assert_array_equal(R.bias, initial[f"L{k}_bias"])
        np.testing.assert_array_equal(np.sign(S.values), np.sign(W0[rows, cols]))
        assert np.allclose(np.abs(S.values), np.std(W0))
        assert not np.array_equal(F.values, R.values)
        np.testing.assert_array_equal(R.indices, P.indices)


def test_cli_prune_oneshot_and_gradual(tmp_path, capsys):
    ck = tmp_path / "ck"
    assert (
        cli.main(
            [
                "train",
                "--topology",
                "dense",
                "--density",
                "1",
                "--epochs",
                "2",
                "--limit",
                "400",
                "--checkpoint",
                str(ck),
            ]
        )
        == 0
    )
    saved = read_checkpoint(ck)
    assert saved["initial"] and saved["epoch"] == 2
    for method in ("oneshot", "gradual"):
        out = tmp_path / f"{method}.json"
        rc = cli.main(
            [
                "prune",
                "--from",
                str(ck),
                "--sparsity",
                "0.9",
                "--method",
                method,
                "--retrain",
                "rewind",
                "--epochs",
                "1",
                "--prune-epochs",
                "1",
                "--metrics-out",
                str(out),
                "--out",
                str(tmp_path / f"{method}.npz"),
            ]
        )
        assert rc == 0
        m = json.loads(out.read_text())
        expected = round(0.1 * 64 * 300) + round(0.1 * 300 * 100) + round(0.1 * 100 * 10)
        assert m["params"]["pruned"] == expected + 300 + 100 + 10
    capsys.readouterr()
    assert cli.main(["prune", "--from", str(tmp_path / "nope"), "--sparsity", "0.5"]) == 2
    assert "nope: no such file or directory" in capsys.readouterr().err
    assert cli.main(["prune", "--from", str(ck), "--sparsity", "1.5"]) == 2


def test_cli_experiment_writes_table_and_plots(tmp_path):
    out = tmp_path / "exp"
    assert (
        cli.main(
            [
                "experiment",
                "redistribution",
                "--densities",
                "0.1",
                "--algorithms",
                "none,random",
                "--epochs",
                "2",
                "--limit",
                "300",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = (out / "results.md").read_text()
    for row in (
        "| none |",
        "| random |",
        "| dense-neuron-equivalent |",
        "| dense-parameter-equivalent |",
    ):
        assert row in table
    for png in ("accuracy.png", "induced_loss.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_cli_experiment_seeds_baselines_per_density_and_resume(tmp_path, capsys):
    import json

    out = tmp_path / "exp"
    base = ["experiment", "redistribution", "--densities", "0.2,0.05", "--algorithms",
            "none,random", "--epochs", "2", "--limit", "300", "--out", str(out)]  # fmt: skip
    assert cli.main([*base, "--seeds", "2"]) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 2 * 2 * (2 + 2)  # densities x seeds x (algorithms + baselines)
    for d in (0.2, 0.05):
        sparse = [r for r in runs if r["density"] == d and r["algorithm"] == "none"]
        param = [
            r for r in runs if r["density"] == d and r["algorithm"] == "dense-parameter-equivalent"
        ]
        assert {r["seed"] for r in sparse} == {0, 1}
        # the parameter-equivalent net of each density: slightly more parameters, within 10 %
        assert sparse[0]["params"] <= param[0]["params"] <= 1.1 * sparse[0]["params"]
    table = (out / "results.md").read_text()
    assert "2 seeds" in table and "sample sd [95% t-interval]" in table
    # each cell: mean +- sample sd [95% t-interval] of the two seeds' test accuracies
    from scipy.stats import t

    cell = [r for r in runs if r["density"] == 0.2 and r["algorithm"] == "random"]
    acc = sorted(r["test_accuracy"] for r in cell)
    sd = abs(acc[1] - acc[0]) / np.sqrt(2)
    half = t.ppf(0.975, 1) * sd / np.sqrt(2)
    assert f"{np.mean(acc):.4f} +- {sd:.4f} [{np.mean(acc) - half:.4f}" in table
    # the paired difference to static training, seed by seed
    none = {r["seed"]: r["test_accuracy"] for r in runs
            if r["density"] == 0.2 and r["algorithm"] == "none"}  # fmt: skip
    delta = [r["test_accuracy"] - none[r["seed"]] for r in cell]
    assert "Difference to static training (none), paired by seed" in table
    assert f"| random | {np.mean(delta):+.4f} +- {np.std(delta, ddof=1):.4f}" in table
    # two epochs: still climbing, flagged in the table and warned about
    assert "\u2020" in table and "accuracy still rose" in table
    assert "had not converged after 2 epochs" in capsys.readouterr().err
    # a killed experiment: drop the last runs, resume, and only those are run again
    saved = json.loads((out / "results.json").read_text())
    kept = saved["runs"][:5]
    saved["runs"] = kept
    (out / "results.json").write_text(json.dumps(saved))
    assert cli.main([*base, "--seeds", "2", "--resume"]) == 0
    again = json.loads((out / "results.json").read_text())["runs"]
    assert len(again) == 16 and again[:5] == kept
    # other settings cannot be resumed into the same folder
    capsys.readouterr()
    assert cli.main([*base[:-2], "--epochs", "3", "--out", str(out), "--resume"]) == 2
    assert "other settings (epochs)" in capsys.readouterr().err


def test_optimizer_state_follows_pruning():
    m = SparseMLP([10, 8, 3], density=0.8).build(0)
    opt = Adam(0.01)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 10)), rng.integers(0, 3, 16)
    _, grads, _ = m.loss_and_grads(X, y)
    opt.step(m.layers_, grads, 0.01)
    keys_before = m.layers_[0].rows() * 8 + m.layers_[0].indices
    state = dict(zip(keys_before.tolist(), opt.state[(0, 0)]["v"].tolist()))
    prune_layers(m, 0.5, opt)
    keys_after = m.layers_[0].rows() * 8 + m.layers_[0].indices
    np.testing.assert_array_equal(opt.state[(0, 0)]["v"], [state[k] for k in keys_after.tolist()])


def test_structured_pruning_removes_neurons_physically(tmp_path):
    from graphnn import load, save_npz
    from graphnn.training.data import load_dataset
    from graphnn.training.pruning import prune_neurons
    from graphnn.training.trainer import TrainConfig, fit

    data = load_dataset("digits", limit=600)
    model = SparseMLP([64, 80, 40, 10], density=0.4)
    fit(model, data, TrainConfig(epochs=6, seed=2))
    same = prune_neurons(model, 0.0)
    np.testing.assert_array_equal(same.predict(data.X_test), model.predict(data.X_test))
    for by in ("incoming", "outgoing"):
        small = prune_neurons(model, 0.5, by=by)
        assert small.sizes == [64, 40, 20, 10]
        assert sum(layer.nnz for layer in small.layers_) < sum(l.nnz for l in model.layers_)
        # the kept neurons are the strongest: their incoming (or outgoing) norms are the top half
        W = model.layers_[0].to_scipy() if by == "incoming" else model.layers_[1].to_scipy()
        norms = np.sqrt(np.asarray((W.multiply(W)).sum(axis=0 if by == "incoming" else 1)))
        kept = np.sort(norms.ravel())[-40:]
        W2 = small.layers_[0].to_scipy() if by == "incoming" else small.layers_[1].to_scipy()
        mine = np.sqrt(np.asarray((W2.multiply(W2)).sum(axis=0 if by == "incoming" else 1)))
        if by == "incoming":
            np.testing.assert_allclose(np.sort(mine.ravel()), kept, rtol=1e-5)
        # exported and read back: the same (smaller) network and the same accuracy
        path = tmp_path / f"{by}.npz"
        save_npz(small.to_network(), path)
        back = SparseMLP.from_network(load(path))
        assert back.sizes == small.sizes
        assert back.score(data.X_test, data.y_test) == small.score(data.X_test, data.y_test)
    from graphnn.errors import GraphnnError

    with pytest.raises(GraphnnError, match="fraction"):
        prune_neurons(model, 1.0)


def test_cli_structured_pruning_exports_a_narrower_network(tmp_path, capsys):
    import json

    ck, out = tmp_path / "ck", tmp_path / "small.npz"
    assert cli.main(["train", "--topology", "dense", "--density", "1", "--epochs", "2",
                     "--checkpoint", str(ck)]) == 0  # fmt: skip
    m = tmp_path / "m.json"
    assert cli.main(["prune", "--from", str(ck), "--neurons", "0.5", "--epochs", "2",
                     "--out", str(out), "--metrics-out", str(m)]) == 0  # fmt: skip
    metrics = json.loads(m.read_text())
    assert metrics["sizes"] == [64, 150, 50, 10] and metrics["method"] == "neurons"
    capsys.readouterr()
    assert cli.main(["topo", "analyze", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sizes"] == [64, 150, 50, 10]
    assert cli.main(["evaluate", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_accuracy"] == result["reported_test_accuracy"]
    assert cli.main(["prune", "--from", str(ck), "--neurons", "0.5", "--retrain", "rewind"]) == 2
    assert "fresh initialisation" in capsys.readouterr().err


def test_cli_prune_reads_the_rows_the_checkpoint_was_trained_on(tmp_path, capsys):
    ck, m = tmp_path / "ck", tmp_path / "m.json"
    argv = ["train", "--topology", "dense", "--density", "1", "--epochs", "1", "--limit", "300",
            "--checkpoint", str(ck), "--metrics-out", str(m)]  # fmt: skip
    assert cli.main(argv) == 0
    trained = json.loads(m.read_text())["test_accuracy"]
    p = tmp_path / "p.json"
    assert cli.main(["prune", "--from", str(ck), "--sparsity", "0.5", "--epochs", "1",
                     "--metrics-out", str(p)]) == 0  # fmt: skip
    assert json.loads(p.read_text())["test_accuracy"]["trained"] == trained
    capsys.readouterr()
    for bad, says in ((["--sparsity", "0.5", "--by", "outgoing"], "--by"),
                      (["--neurons", "0.5", "--method", "gradual"], "--method"),
                      (["--sparsity", "0.5", "--method", "gradual", "--prune-every", "0"],
                       "--prune-every")):  # fmt: skip
        assert cli.main(["prune", "--from", str(ck), *bad]) == 2
        assert says in capsys.readouterr().err


def test_cli_prune_reports_the_supermask(tmp_path, capsys):
    ck = tmp_path / "ck"
    assert cli.main(["train", "--topology", "dense", "--density", "1", "--epochs", "2",
                     "--checkpoint", str(ck)]) == 0  # fmt: skip
    capsys.readouterr()
    assert cli.main(["prune", "--from", str(ck), "--sparsity", "0.8", "--epochs", "1"]) == 0
    rows = {
        line[:24].strip(): line.split()[-1] for line in capsys.readouterr().out.splitlines()[1:]
    }
    assert set(rows) == {"trained", "pruned", "supermask (no training)", "retrained (random)"}
    assert 0 <= float(rows["supermask (no training)"]) <= 1


def test_supermask_keeps_large_weights_that_kept_their_sign():
    from graphnn.training.pruning import supermask

    model = SparseMLP([6, 5, 3], density=1.0).build(0)
    initial = {k: v.copy() for k, v in model.state_arrays().items()}
    rng = np.random.default_rng(1)
    for layer in model.layers_:  # "training": new weights, some with flipped signs
        layer.values[:] = rng.standard_normal(layer.values.size).astype(layer.values.dtype)
    mask = supermask(model, initial, 0.5, seed=0)
    for k, (trained, masked) in enumerate(zip(model.layers_, mask.layers_)):
        W, M = trained.to_scipy(), masked.to_scipy()
        W0 = SparseMLP([6, 5, 3], density=1.0).build(0).layers_[k].to_scipy()
        same = np.sign(W.toarray()) == np.sign(W0.toarray())
        score = np.where(same, np.abs(W.toarray()), 0).ravel()
        expected = np.sort(np.argsort(-score, kind="stable")[: round(0.5 * W.nnz)])
        expected = expected[score[expected] > 0]
        got = np.flatnonzero(M.toarray().ravel())
        np.testing.assert_array_equal(got, expected)
        scale = np.std(W0.data)
        np.testing.assert_allclose(
            M.toarray().ravel()[got], np.sign(W0.toarray().ravel()[got]) * scale, rtol=1e-6
        )
        assert not np.any(masked.backend.asnumpy(masked.bias))


def test_run_log_resumes_only_the_same_settings(tmp_path):
    from graphnn.errors import GraphnnError
    from graphnn.training.experiments import RunLog, select

    log = RunLog(tmp_path, {"epochs": 2, "sizes": [4, 2]})
    log.add({"algorithm": "a", "seed": 0, "epochs": []})
    log.add({"algorithm": "b", "seed": 0, "epochs": []})
    again = RunLog(tmp_path, {"epochs": 2, "sizes": [4, 2]}, resume=True)
    assert again.done(algorithm="a", seed=0) and not again.done(algorithm="a", seed=1)
    assert [r["algorithm"] for r in select(again.runs, seed=0)] == ["a", "b"]
    assert RunLog(tmp_path, {"epochs": 2, "sizes": [4, 2]}).runs == []  # a fresh start
    with pytest.raises(GraphnnError, match=r"other settings \(epochs\)"):
        RunLog(tmp_path, {"epochs": 3, "sizes": [4, 2]}, resume=True)
