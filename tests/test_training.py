import gzip
import json

import numpy as np
import pytest
import scipy.sparse as sp

from graphnn import cli
from graphnn.datasets import read_idx
from graphnn.errors import FormatError, GraphnnError
from graphnn.training import data as data_mod
from graphnn.training.data import load_dataset
from graphnn.training.model import SparseMLP
from graphnn.training.optim import Adam
from graphnn.training.trainer import TrainConfig, fit


def _model(loss="softmax", sizes=(6, 5, 4, 3), dense_output=False, seed=1):
    return SparseMLP(
        list(sizes), density=0.5, loss=loss, dense_output=dense_output, dtype=np.float64
    ).build(seed)


def _numeric_grad(model, X, y, arr, i, h=1e-6):
    old = arr.flat[i]
    arr.flat[i] = old + h
    lp, _, _ = model.loss_and_grads(X, y)
    arr.flat[i] = old - h
    lm, _, _ = model.loss_and_grads(X, y)
    arr.flat[i] = old
    return (lp - lm) / (2 * h)


@pytest.mark.parametrize(
    "loss,sizes,dense_output",
    [
        ("softmax", (6, 5, 4, 3), False),
        ("sigmoid", (6, 5, 4, 1), True),
    ],
)
def test_gradients_match_finite_differences(loss, sizes, dense_output):
    m = _model(loss, sizes, dense_output)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9, sizes[0]))
    y = rng.integers(0, sizes[-1] if loss == "softmax" else 2, 9)
    _, grads, _ = m.loss_and_grads(X, y)
    for layer, (gw, gb) in zip(m.layers_, grads):
        w = layer.values if layer.sparse else layer.weight
        for i in range(w.size):
            assert gw.flat[i] == pytest.approx(_numeric_grad(m, X, y, w, i), abs=1e-7)
        for i in range(layer.bias.size):
            assert gb[i] == pytest.approx(_numeric_grad(m, X, y, layer.bias, i), abs=1e-7)


def test_gradients_match_dense_reference():
    m = _model(sizes=(12, 10, 8, 4))
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((16, 12)), rng.integers(0, 4, 16)
    Ws = [L.to_scipy().toarray() for L in m.layers_]
    masks = [W != 0 for W in Ws]
    acts, A = [], X
    for k, W in enumerate(Ws):
        acts.append(A)
        A = A @ W + m.layers_[k].bias
        if k < len(Ws) - 1:
            A = np.maximum(A, 0)
    P = np.exp(A - A.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    dZ = P.copy()
    dZ[np.arange(16), y] -= 1
    dZ /= 16
    ref = [None] * len(Ws)
    for k in range(len(Ws) - 1, -1, -1):
        ref[k] = np.where(masks[k], acts[k].T @ dZ, 0)
        dZ = (dZ @ Ws[k].T) * (acts[k] > 0)
    _, grads, _ = m.loss_and_grads(X, y)
    for layer, (gw, _), R in zip(m.layers_, grads, ref):
        G = sp.csr_array((gw, layer.indices, layer.indptr), shape=R.shape).toarray()
        np.testing.assert_allclose(G, R, atol=1e-12)


def test_sparse_layers_hold_no_dense_matrix():
    m = SparseMLP([784, 300, 100, 10], density=0.05).build(0)
    for layer in m.layers_:
        dense_size = layer.n_in * layer.n_out
        for name, value in vars(layer).items():
            if isinstance(value, np.ndarray):
                assert value.size < dense_size / 4, f"{name} has {value.size} entries"


def test_ertl_initialisation_bounds():
    m = SparseMLP([50, 40, 10], density=0.2, topology="ertl").build(3)
    L = m.layers_[0]
    fan = np.bincount(L.indices, minlength=40)
    assert (fan == 10).all()  # Ertl: equal fan-in
    assert (np.abs(L.values) <= 1 / fan[L.indices]).all()
    assert (np.abs(L.bias) <= 1 / np.sqrt(fan)).all()


def test_adam_step_and_reset():
    m = _model()
    opt = Adam(lr=0.1)
    layer = m.layers_[0]
    before = layer.values.copy()
    g = np.ones_like(layer.values)
    grads = [(g, np.zeros_like(layer.bias))] + [
        (np.zeros_like(L.values), np.zeros_like(L.bias)) for L in m.layers_[1:]
    ]
    opt.step(m.layers_, grads, 0.1)
    # first Adam step moves every parameter by lr * sign(g) (bias-corrected m / sqrt(v) = 1)
    np.testing.assert_allclose(before - layer.values, 0.1, rtol=1e-6)
    opt.reset(0, np.array([0, 2]))
    assert opt.state[(0, 0)]["m"][[0, 2]].tolist() == [0, 0]
    assert opt.state[(0, 0)]["m"][1] != 0


def test_digits_sparse_within_two_points_of_dense():
    data = load_dataset("digits", seed=0)
    cfg = TrainConfig(epochs=30, batch_size=64, lr=3e-3, seed=0)
    sparse = fit(SparseMLP([64, 300, 100, 10], density=0.1), data, cfg)
    dense = fit(SparseMLP([64, 300, 100, 10], topology="dense", density=1.0), data, cfg)
    assert sparse["test_accuracy"] > 0.9
    assert sparse["test_accuracy"] >= dense["test_accuracy"] - 0.02
    assert sparse["params"] < dense["params"] / 5


def test_resume_after_interruption_gives_identical_weights(tmp_path, monkeypatch):
    data = load_dataset("digits", seed=0, limit=400)
    cfg = TrainConfig(epochs=3, batch_size=32, seed=5)
    straight = SparseMLP([64, 40, 10], density=0.2).build(5)
    fit(straight, data, cfg)

    interrupted = SparseMLP([64, 40, 10], density=0.2).build(5)
    calls = {"n": 0}
    real = SparseMLP.loss_and_grads
    per_epoch = -(-len(data.y_train) // 32)

    def flaky(self, X, y):
        calls["n"] += 1
        if calls["n"] == 2 * per_epoch + per_epoch // 2:  # in the middle of epoch 3
            raise KeyboardInterrupt
        return real(self, X, y)

    monkeypatch.setattr(SparseMLP, "loss_and_grads", flaky)
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, data, cfg, checkpoint=tmp_path)
    monkeypatch.setattr(SparseMLP, "loss_and_grads", real)
    resumed = SparseMLP([64, 40, 10], density=0.2).build(5)
    metrics = fit(resumed, data, cfg, checkpoint=tmp_path, resume=True)
    assert [r["epoch"] for r in metrics["epochs"]] == [1, 2, 3]
    for a, b in zip(straight.layers_, resumed.layers_):
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.bias, b.bias)
    other = TrainConfig(epochs=3, batch_size=16, seed=5)
    with pytest.raises(GraphnnError, match="batch_size"):
        fit(SparseMLP([64, 40, 10], density=0.2), data, other, checkpoint=tmp_path, resume=True)


def _write_idx(path, array):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += np.array(array.shape, dtype=">u4").tobytes()
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def _fake_mnist(d, labels_train=None):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 50).astype(np.uint8) if labels_train is None else labels_train
    _write_idx(d / "train-images-idx3-ubyte.gz", imgs)
    _write_idx(d / "train-labels-idx1-ubyte.gz", labels)
    _write_idx(d / "t10k-images-idx3-ubyte", imgs[:20])
    _write_idx(d / "t10k-labels-idx1-ubyte", labels[:20])
    return imgs


def test_idx_datasets_load_from_data_dir(tmp_path):
    imgs = _fake_mnist(tmp_path)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), imgs)
    ds = load_dataset("kmnist", data_dir=tmp_path, val_fraction=0.2)
    assert ds.X_train.shape == (40, 784) and ds.X_val.shape == (10, 784)
    assert ds.X_test.shape == (20, 784) and 0 <= ds.X_train.min() and ds.X_train.max() <= 1


def test_bad_labels_and_offline_message(tmp_path, monkeypatch):
    _fake_mnist(tmp_path, labels_train=np.full(50, 12, np.uint8))
    with pytest.raises(FormatError, match="label 12 is out of range 0..9"):
        load_dataset("mnist", data_dir=tmp_path)
    monkeypatch.setenv("GRAPHNN_CACHE", str(tmp_path / "cache"))

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(data_mod.urllib.request, "urlopen", offline)
    with pytest.raises(GraphnnError, match="offline\\? put the IDX files"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "empty")


def test_higgs_first_21_features(tmp_path):
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.integers(0, 2, 200), rng.standard_normal((200, 28))])
    np.savetxt(tmp_path / "HIGGS.csv", rows, delimiter=",", fmt="%.6f")
    ds = load_dataset("higgs", data_dir=tmp_path, limit=150)
    assert ds.n_features == 21 and ds.n_classes == 2
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 150
    bad = rows.copy()
    bad[3, 0] = 2
    np.savetxt(tmp_path / "HIGGS.csv", bad, delimiter=",", fmt="%.6f")
    with pytest.raises(FormatError, match="must be 0 or 1"):
        load_dataset("higgs", data_dir=tmp_path)
    bad = rows.copy()
    bad[7, 5] = np.inf
    np.savetxt(tmp_path / "HIGGS.csv", bad, delimiter=",", fmt="%.6f")
    with pytest.raises(FormatError, match="row 8 has a feature that is not a finite float32"):
        load_dataset("higgs", data_dir=tmp_path)


def test_cli_train_metrics_and_errors(tmp_path, capsys):
    out = tmp_path / "m.json"
    rc = cli.main(
        [
            "train",
            "--epochs",
            "2",
            "--limit",
            "300",
            "--metrics-out",
            str(out),
            "--plot",
            str(tmp_path / "c.png"),
            "--checkpoint",
            str(tmp_path / "ck"),
        ]
    )
    assert rc == 0
    m = json.loads(out.read_text())
    assert [r["epoch"] for r in m["epochs"]] == [1, 2]
    for key in ("train_loss", "train_accuracy", "val_accuracy", "seconds", "peak_memory_mb"):
        assert key in m["epochs"][0]
    assert 0 <= m["test_accuracy"] <= 1 and m["params"] > 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "ck" / "checkpoint.npz").exists()
    capsys.readouterr()
    assert cli.main(["train", "--layers", "784-10"]) == 2
    assert "do not fit digits" in capsys.readouterr().err
    assert cli.main(["train", "--resume"]) == 2
    assert "--resume needs --checkpoint" in capsys.readouterr().err
    assert cli.main(["train", "--density", "0"]) == 2


def test_reference_device_runs_the_gpu_code_path_identically():
    """The 'reference' device is the CuPy device's code (array module + sparse module) on
    numpy/scipy: the same gradients and training as the numba CPU path."""
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((32, 64)).astype(np.float32), rng.integers(0, 10, 32)
    cpu = SparseMLP([64, 40, 10], density=0.2).build(2)
    ref = SparseMLP([64, 40, 10], density=0.2, backend="reference").build(2)
    lc, gc, _ = cpu.loss_and_grads(X, y)
    lr_, gr, _ = ref.loss_and_grads(X, y)
    assert lc == pytest.approx(lr_, rel=1e-5)
    for (a, b), (c, d) in zip(gc, gr):
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b, d, rtol=1e-4, atol=1e-6)
    data = load_dataset("digits", seed=0, limit=500)
    cfg = TrainConfig(epochs=4, batch_size=32, redistribution="gradient-global", seed=1)
    a = fit(SparseMLP([64, 40, 10], density=0.2), data, cfg)
    b = fit(SparseMLP([64, 40, 10], density=0.2, backend="reference"), data, cfg)
    assert abs(a["test_accuracy"] - b["test_accuracy"]) < 0.05
    assert a["params"] == b["params"]


def test_same_seed_same_weights_whatever_the_thread_count():
    # the kernels split their rows over the threads; each output is still computed by one
    # range in a fixed order, so 1 and 2 threads give the same bits
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one CPU: nothing to compare")
    data = load_dataset("digits", limit=600)
    weights = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            model = SparseMLP([64, 300, 100, 10], density=0.2)
            fit(model, data, TrainConfig(epochs=2, batch_size=64, seed=3))
            weights.append([layer.to_scipy() for layer in model.layers_])
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*weights):
        assert np.array_equal(a.data, b.data) and np.array_equal(a.indices, b.indices)


@pytest.mark.parametrize(
    ("name", "folder"), [("fashion-mnist", "FashionMNIST"), ("mnist", "MNIST")]
)
def test_torchvision_layout_is_found(tmp_path, monkeypatch, name, folder):
    monkeypatch.setenv("GRAPHNN_CACHE", str(tmp_path / "cache"))  # not a stale cache
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    imgs = _fake_mnist(raw)
    ds = load_dataset(name, data_dir=tmp_path, val_fraction=0)
    np.testing.assert_allclose(ds.X_test, imgs[:20].reshape(20, -1) / 255.0, rtol=1e-6)


def test_networks_go_through_graphml(tmp_path):
    import networkx as nx

    from graphnn import Network
    from topologies import generate

    net = generate("random", [6, 5, 3], density=0.5, seed=1)
    nx.write_graphml(net.to_networkx(), tmp_path / "n.graphml")
    back = Network.from_networkx(nx.read_graphml(tmp_path / "n.graphml"))
    assert back.sizes == net.sizes and [str(a) for a in back.activations] == [
        str(a) for a in net.activations
    ]
    for a, b in zip(back.layers, net.layers):
        assert (a != b).nnz == 0


def test_binary_problems_report_auc(tmp_path, capsys):
    # a separable two-class CSV in the HIGGS layout: the AUC is high and matches sklearn's
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    features = rng.standard_normal((600, 28)) + y[:, None] * 1.5
    np.savetxt(tmp_path / "HIGGS.csv", np.column_stack([y, features]), delimiter=",", fmt="%.5f")
    data = load_dataset("higgs", data_dir=tmp_path)
    model = SparseMLP([21, 32, 1], density=0.5, loss="sigmoid", dense_output=True)
    metrics = fit(model, data, TrainConfig(epochs=5, batch_size=32))
    expected = roc_auc_score(data.y_test, model.predict_proba(data.X_test)[:, 1])
    assert metrics["test_auc"] == pytest.approx(expected) and metrics["test_auc"] > 0.9
    digits = fit(SparseMLP([64, 20, 10]), load_dataset("digits", limit=200), TrainConfig(epochs=1))
    assert digits["test_auc"] is None


def test_downloads_are_checked_against_the_published_md5(tmp_path, monkeypatch):
    import hashlib
    import io

    monkeypatch.setenv("GRAPHNN_CACHE", str(tmp_path / "cache"))
    files = {}
    for stem, array in (
        ("train-images-idx3-ubyte", np.zeros((30, 28, 28), np.uint8)),
        ("train-labels-idx1-ubyte", np.arange(30, dtype=np.uint8) % 10),
        ("t10k-images-idx3-ubyte", np.ones((10, 28, 28), np.uint8)),
        ("t10k-labels-idx1-ubyte", np.arange(10, dtype=np.uint8)),
    ):
        _write_idx(tmp_path / f"{stem}.gz", array)
        files[stem] = (tmp_path / f"{stem}.gz").read_bytes()

    class Response(io.BytesIO):
        headers = {}

    def urlopen(url, timeout):
        return Response(files[url.rsplit("/", 1)[1][:-3]])

    monkeypatch.setattr(data_mod.urllib.request, "urlopen", urlopen)
    # the fake files are not MNIST: refused, and nothing is cached
    with pytest.raises(GraphnnError, match="damaged or not the published file"):
        load_dataset("mnist")
    assert not list((tmp_path / "cache").rglob("*.gz"))
    # with their own checksums they are cached and read
    stems = (*data_mod._IDX_FILES["train"], *data_mod._IDX_FILES["test"])
    sums = tuple(hashlib.md5(files[s]).hexdigest() for s in stems)
    monkeypatch.setitem(data_mod._MD5, "mnist", sums)
    ds = load_dataset("mnist", val_fraction=0)
    assert ds.X_train.shape == (30, 784) and len(list((tmp_path / "cache").rglob("*.gz"))) == 4
