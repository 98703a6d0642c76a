"""Round trips through every format keep every edge, value, bias and activation."""

import io
import tarfile

import numpy as np
import pytest
import scipy.sparse as sp

import graphnn
from graphnn import FormatError, Network
from graphnn.io import atomic_write

from .conftest import random_sparse


def _random_net(dtype=np.float64):
    rng = np.random.default_rng(7)
    sizes = [10, 8, 6, 3]
    layers = [
        random_sparse(rng, (a, b), 0.3, dtype, empty_rows=[0], empty_cols=[1])
        for a, b in zip(sizes, sizes[1:])
    ]
    return Network(
        layers,
        biases=[0.5, rng.standard_normal(6), -0.25],
        activations=["relu:32", "identity", "softmax"],
        dtype=dtype,
        metadata={"source": "test", "seed": 7},
    )


@pytest.fixture
def official_layer1(shared_data):
    """Layer 1 of the official 1024-neuron challenge network."""
    with tarfile.open(shared_data / "neuron1024.tar.gz") as tar:
        raw = tar.extractfile("neuron1024/n1024-l1.tsv").read()
    r, c, v = np.loadtxt(io.BytesIO(raw), unpack=True)
    return sp.csr_array((v, (r.astype(int) - 1, c.astype(int) - 1)), shape=(1024, 1024))


def assert_same(a, b):
    assert a.sizes == b.sizes and a.dtype == b.dtype
    for Wa, Wb in zip(a.layers, b.layers):
        assert (Wa != Wb).nnz == 0 and Wa.nnz == Wb.nnz
    for ba, bb in zip(a.biases, b.biases):
        np.testing.assert_array_equal(ba, bb)
    assert [str(x) for x in a.activations] == [str(x) for x in b.activations]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_npz_round_trip(tmp_path, dtype):
    net = _random_net(dtype)
    graphnn.save_npz(net, tmp_path / "n.npz")
    back = graphnn.load(tmp_path / "n.npz")
    assert_same(net, back)
    assert back.metadata == {"source": "test", "seed": 7}


def test_mtx_round_trip(tmp_path):
    net = _random_net()
    graphnn.save_mtx(net, tmp_path / "mtx")
    assert sorted(p.name for p in (tmp_path / "mtx").iterdir()) == [
        "layer001.mtx",
        "layer002.mtx",
        "layer003.mtx",
        "network.json",
    ]
    assert_same(net, graphnn.load(tmp_path / "mtx"))


def test_networkx_round_trip():
    net = _random_net()
    G = net.to_networkx()
    assert G.number_of_edges() == sum(net.nnz)
    assert G.number_of_nodes() == sum(net.sizes)
    assert G.nodes[(1, 3)]["layer"] == 1
    back = Network.from_networkx(G)
    for Wa, Wb in zip(net.layers, back.layers):
        np.testing.assert_array_equal(Wa.toarray(), Wb.toarray())
    for ba, bb in zip(net.biases, back.biases):
        np.testing.assert_array_equal(np.broadcast_to(ba, bb.shape), bb)


def test_graphblas_round_trip():
    gb = pytest.importorskip("graphblas")
    net = _random_net()
    mats = net.to_graphblas()
    assert all(isinstance(M, gb.Matrix) for M in mats)
    assert [M.nvals for M in mats] == net.nnz
    back = Network(mats, biases=net.biases, activations=net.activations)
    assert_same(net, back)


def test_official_layer_round_trips(tmp_path, official_layer1):
    net = Network([official_layer1], biases=-0.3, activations="relu:32")
    assert net.nnz == [32 * 1024]
    graphnn.save_npz(net, tmp_path / "l1.npz")
    graphnn.save_mtx(net, tmp_path / "mtx")
    for back in (
        graphnn.load(tmp_path / "l1.npz"),
        graphnn.load(tmp_path / "mtx"),
        Network(net.to_graphblas(), biases=-0.3, activations="relu:32"),
        Network.from_networkx(net.to_networkx()),
    ):
        assert (back.layers[0] != official_layer1).nnz == 0
        assert set(np.unique(back.layers[0].data)) == {0.0625}


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_loading_garbage_names_the_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="bad.npz"):
        graphnn.load(bad)
    np.savez(tmp_path / "other.npz", x=np.ones(3))
    with pytest.raises(FormatError, match="neither a graphnn network nor a training checkpoint"):
        graphnn.load(tmp_path / "other.npz")
    with pytest.raises(graphnn.GraphnnError, match="no such file"):
        graphnn.load(tmp_path / "absent.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no network here"):
        graphnn.load(tmp_path / "empty")


def test_graphnn_save_beside_graphnn_load(tmp_path):
    import graphnn

    net = graphnn.Network([np.eye(3), np.ones((3, 2))], biases=0.25)
    for fmt, path in (("npz", tmp_path / "n.npz"), ("mtx", tmp_path / "m")):
        graphnn.save(net, path, fmt)
        back = graphnn.load(path)
        assert back.sizes == net.sizes and back.nnz == net.nnz
