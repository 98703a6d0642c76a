"""Every format pair of load/convert keeps every edge (explicit zeros included), value, bias,
activation and the metadata; every format is readable everywhere."""

import itertools
import tarfile

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

import graphnn
from graphnn import FormatError, Network
from graphnn.cli import main as cli

FORMATS = ("npz", "mtx", "tsv")


def _square_net(dtype):
    """Square layers (every format holds them), with explicit zeros and awkward values."""
    rng = np.random.default_rng(3)
    layers = []
    for _ in range(3):
        W = sp.random_array((12, 12), density=0.3, format="csr", rng=rng, dtype=np.float64)
        W.data = rng.standard_normal(W.nnz) * 10.0 ** rng.integers(-8, 8, W.nnz)
        W.data[::5] = 0.0  # explicit zeros: edges whose weight is exactly zero
        layers.append(W.astype(dtype))
    return Network(
        layers,
        biases=[-0.3, rng.standard_normal(12), 0.1],
        activations=["relu:32", "relu", "sigmoid"],
        dtype=dtype,
        metadata={"note": "round trip", "n": 3},
    )


def _same(a, b):
    assert a.sizes == b.sizes and a.dtype == b.dtype and a.metadata == b.metadata
    for Wa, Wb in zip(a.layers, b.layers):
        # identical structure, zeros included, and bit-identical values
        np.testing.assert_array_equal(Wa.indptr, Wb.indptr)
        np.testing.assert_array_equal(Wa.indices, Wb.indices)
        np.testing.assert_array_equal(Wa.data, Wb.data)
    for ba, bb in zip(a.biases, b.biases):
        np.testing.assert_array_equal(ba, bb)
    assert [str(x) for x in a.activations] == [str(x) for x in b.activations]


def _path(tmp_path, fmt, name):
    return tmp_path / (f"{name}.npz" if fmt == "npz" else name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("src,dst", list(itertools.product(FORMATS, FORMATS)))
def test_every_format_pair_is_lossless(tmp_path, src, dst, dtype):
    net = _square_net(dtype)
    assert sum(int((W.data == 0).sum()) for W in net.layers) > 0
    a = _path(tmp_path, src, "a")
    graphnn.io.save(net, a, src)
    _same(net, graphnn.load(a))
    b = _path(tmp_path, dst, "b")
    assert cli(["convert", str(a), str(b), "--format", dst]) == 0
    _same(net, graphnn.load(b))


def test_mtx_files_are_plain_matrix_market(tmp_path):
    net = _square_net(np.float64)
    graphnn.io.save(net, tmp_path / "m", "mtx")
    W = sp.csr_array(scipy.io.mmread(tmp_path / "m" / "layer002.mtx"))
    assert W.nnz == net.layers[1].nnz  # explicit zeros are entries there too
    np.testing.assert_array_equal(W.toarray(), net.layers[1].toarray())


def test_mtx_layers_in_numeric_order_and_stale_files_refused(tmp_path):
    layers = [sp.csr_array(np.eye(2) * (k + 1)) for k in range(11)]
    d = tmp_path / "n"
    d.mkdir()
    for k, W in enumerate(layers, start=1):  # layer2 sorts after layer10 by name
        scipy.io.mmwrite(d / f"layer{k}.mtx", W)
    net = graphnn.load(d)
    assert [W[0, 0] for W in net.layers] == list(range(1, 12))
    graphnn.io.save(Network(layers[:3]), tmp_path / "m", "mtx")
    scipy.io.mmwrite(tmp_path / "m" / "layer004.mtx", layers[0])  # left from a longer network
    with pytest.raises(FormatError, match="describes 3 layers but there are 4"):
        graphnn.load(tmp_path / "m")
    (tmp_path / "m" / "layer002.mtx").unlink()
    with pytest.raises(FormatError, match="layer 2 is missing"):
        graphnn.load(tmp_path / "m")


def test_tsv_refuses_non_square_networks(tmp_path):
    with pytest.raises(graphnn.GraphnnError, match="square layers of one width"):
        graphnn.io.save(Network([np.ones((3, 2))]), tmp_path / "t", "tsv")


def test_convert_never_replaces_unasked(tmp_path, capsys):
    net = _square_net(np.float64)
    graphnn.io.save(net, tmp_path / "a.npz")
    graphnn.io.save(net, tmp_path / "b.npz")
    assert cli(["convert", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 2
    assert "exists" in capsys.readouterr().err
    assert cli(["convert", str(tmp_path / "a.npz"), str(tmp_path / "a.npz"), "--overwrite"]) == 2
    assert cli(["convert", str(tmp_path / "a.npz"), str(tmp_path / "c")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err


def test_official_archive_loads_as_a_network(shared_data, tmp_path):
    net = graphnn.load(shared_data / "neuron1024.tar.gz")
    assert net.sizes == [1024] * 121 and net.nnz == [32 * 1024] * 120
    assert float(net.biases[0]) == -0.3 and str(net.activations[0]) == "relu:32"
    assert all(set(np.unique(W.data)) == {0.0625} for W in net.layers[:3])
    # and a layer directory extracted from it
    with tarfile.open(shared_data / "neuron1024.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    d = graphnn.load(tmp_path / "neuron1024")
    for Wa, Wb in zip(net.layers, d.layers):
        assert (Wa != Wb).nnz == 0


def test_checkpoint_and_export_load_as_networks(tmp_path, capsys):
    out, ck = tmp_path / "model.npz", tmp_path / "ck"
    rc = cli(["train", "--epochs", "2", "--density", "0.2", "--out", str(out),
              "--checkpoint", str(ck), "--metrics-out", str(tmp_path / "m.json")])  # fmt: skip
    assert rc == 0
    import json

    acc = json.loads((tmp_path / "m.json").read_text())["test_accuracy"]
    exported, from_ck = graphnn.load(out), graphnn.load(ck)
    assert exported.sizes == from_ck.sizes == [64, 300, 100, 10]
    assert exported.metadata["test_accuracy"] == acc
    for Wa, Wb in zip(exported.layers, from_ck.layers):  # the checkpoint of the last epoch
        np.testing.assert_array_equal(Wa.data, Wb.data)
    capsys.readouterr()
    assert cli(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == acc
    assert cli(["evaluate", str(ck), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == acc


@pytest.mark.parametrize("where", [0.1, 0.5, 0.97])
def test_a_flipped_bit_in_the_official_archive_is_a_corrupt_archive(shared_data, tmp_path, where):
    """The gzip checksum is verified to the end, even where tarfile would stop quietly."""
    data = bytearray((shared_data / "neuron1024.tar.gz").read_bytes())
    data[int(where * len(data))] ^= 0x10
    bad = tmp_path / "neuron1024.tar.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="corrupt or truncated archive"):
        graphnn.load(bad)
    bad.write_bytes(bytes(data[: len(data) // 2]))  # cut in the middle
    with pytest.raises(FormatError, match="corrupt or truncated archive"):
        graphnn.load(bad)


@pytest.mark.parametrize("fmt", ["mtx", "tsv"])
def test_saving_over_a_longer_network_leaves_no_stale_layers(tmp_path, fmt):
    long, short = Network([np.eye(4)] * 3), Network([np.eye(4) * 2] * 2)
    graphnn.io.save(long, tmp_path / "d", fmt)
    graphnn.io.save(short, tmp_path / "d", fmt)
    back = graphnn.load(tmp_path / "d")
    assert len(back) == 2 and back.layers[0][0, 0] == 2
