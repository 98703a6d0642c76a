import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import graphnn
from graphnn import cli
from graphnn.errors import GraphnnError
from topologies.analysis import layer_stats, path_stats
from topologies.erdos_renyi import dense, erdos_renyi, erk_densities, set_density
from topologies.ertl import ertl_layer
from topologies.kronecker import challenge_layers, rmat_layer
from topologies.pruned import from_weights
from topologies.radixnet import radixnet


def brute_paths(layers):
    P = np.eye(layers[0].shape[0])
    for W in layers:
        P = P @ (sp.csr_array(W).toarray() != 0)
    return P


def test_radixnet_222_product_is_all_ones():
    W = radixnet([2, 2, 2], kron=[1, 1, 1, 1])
    np.testing.assert_array_equal((W[0] @ W[1] @ W[2]).toarray(), np.ones((8, 8)))


def test_radixnet_kron_1221_has_four_paths_everywhere():
    W = radixnet([2, 2, 2], kron=[1, 2, 2, 1])
    assert [W[0].shape[0]] + [w.shape[1] for w in W] == [8, 16, 16, 8]
    s = path_stats(W)
    assert s["paths_min"] == s["paths_max"] == 4 and s["symmetric"] and s["exact"]


radix_lists = st.lists(st.integers(2, 4), min_size=1, max_size=3)


@settings(max_examples=40, deadline=None)
@given(first=radix_lists, extra=st.lists(st.integers(2, 3), max_size=2), data=st.data())
def test_radixnet_equal_paths_property(first, extra, data):
    """paths_min == paths_max == prod(B[1:-1]) * product of the later radix lists."""
    n = math.prod(first)
    lists = [first]
    if extra and n % math.prod(extra) == 0:
        lists.append(extra)
    n_layers = sum(map(len, lists))
    kron = data.draw(st.lists(st.integers(1, 3), min_size=n_layers + 1, max_size=n_layers + 1))
    predicted = math.prod(kron[1:-1]) * math.prod(math.prod(g) for g in lists[1:])
    W = radixnet(lists, kron)
    s = path_stats(W)
    assert s["paths_min"] == s["paths_max"] == predicted
    np.testing.assert_array_equal(brute_paths(W), predicted)


def test_radixnet_trim_keeps_equal_paths_for_kept_inputs():
    W = radixnet([10, 10], kron=[8, 3, 1], trim=784)
    assert [w.shape for w in W] == [(784, 300), (300, 100)]
    assert abs(W[0].nnz / (784 * 300) - 0.1) < 1e-12
    s = path_stats(W)
    assert s["paths_min"] == s["paths_max"] == 3
    fan_in = np.asarray((W[0] != 0).sum(axis=0)).ravel()
    assert fan_in.min() < fan_in.max()  # trimming makes the first fan-in unequal


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        ({"radices": [2, 1]}, "every radix must be >= 2"),
        ({"radices": [[2, 2], [3, 2], [2]]}, "must multiply to the width n=4"),
        ({"radices": [[2, 2], [3]]}, "must divide the width n=4"),
        ({"radices": [2, 2], "kron": [1, 1]}, "kron needs 3 entries"),
    ],
)
def test_radixnet_invalid_specs(kwargs, msg):
    with pytest.raises(GraphnnError, match=msg):
        radixnet(**kwargs)


def test_random_kronecker_1024_matches_official_properties():
    layers = list(challenge_layers(1024, 12, seed=7))
    s = path_stats(layers[:6])
    assert s["paths_min"] == s["paths_max"] == 16**5
    for W in layers:
        st_ = layer_stats(W)
        assert st_["in_degree"] == {"min": 32, "mean": 32.0, "max": 32}
        assert st_["out_degree"] == {"min": 32, "mean": 32.0, "max": 32}
    assert path_stats(layers[5:11])["connected_fraction"] == 1.0  # any 6 consecutive layers
    assert any((a != b).nnz for a, b in zip(layers[6:], layers[:6]))  # permuted after cycle 1


def test_official_network_analysis_via_cli(shared_data, capsys):
    rc = cli.main(
        ["topo", "analyze", str(shared_data / "neuron1024.tar.gz"), "--first", "6", "--json"]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layers"] == 6 and report["sizes"] == [1024] * 7
    assert report["nnz"] == [32768] * 6
    assert report["paths_min"] == report["paths_max"] == 16**5
    assert report["connected_fraction"] == 1.0 and report["symmetric"] is True


def test_path_stats_match_brute_force_with_dead_neurons():
    rng = np.random.default_rng(3)
    layers = erdos_renyi([12, 9, 7, 5], density=0.25, seed=rng)
    P = brute_paths(layers)
    s = path_stats(layers, block=4)
    np.testing.assert_array_equal(s["counts"], P)
    assert s["paths_max"] == P.max()
    assert s["paths_min"] == P.min()
    assert s["connected_fraction"] == (P > 0).mean()
    assert s["symmetric"] == (P.min() == P.max())


def test_path_stats_rescale_long_chains():
    layers = dense([4] * 601)  # 4**599 = 2**1198 paths: past float64, kept as an exponent
    s = path_stats(layers)
    assert s["paths_max"] is None and s["paths_max_log2"] == pytest.approx(1198)
    assert s["symmetric"] and not s["exact"]


def test_layer_stats_hand_case():
    s = layer_stats(np.array([[1, 1, 0], [0, 0, 0], [1, 0, 0]]))
    assert s["nnz"] == 3 and s["dead_inputs"] == 1 and s["dead_outputs"] == 1
    assert s["in_degree"] == {"min": 0, "mean": 1.0, "max": 2}
    assert s["params"] == 3 + 3


def test_erdos_renyi_exact_counts_and_seed():
    a = erdos_renyi([50, 40, 10], density=0.1, seed=1)
    b = erdos_renyi([50, 40, 10], density=0.1, seed=1)
    assert [w.nnz for w in a] == [200, 40]
    assert all((x != y).nnz == 0 for x, y in zip(a, b))
    eps = erdos_renyi([100, 50], epsilon=5, seed=0)
    assert eps[0].nnz == round(set_density(100, 50, 5) * 5000) == 750
    with pytest.raises(GraphnnError, match=r"density must be in \(0, 1\]"):
        erdos_renyi([4, 4], density=1.5)
    with pytest.raises(GraphnnError, match=r"density must be in \(0, 1\]"):
        erdos_renyi([4, 4], density=0)


def test_erk_keeps_the_total_and_caps_dense_layers():
    sizes = [784, 300, 100, 10]
    d = erk_densities(sizes, 0.1)
    params = [a * b for a, b in zip(sizes, sizes[1:])]
    assert sum(x * p for x, p in zip(d, params)) == pytest.approx(0.1 * sum(params))
    assert d[-1] == 1.0
    raw = [(a + b) / (a * b) for a, b in zip(sizes, sizes[1:])]
    assert d[0] / raw[0] == pytest.approx(d[1] / raw[1])  # one epsilon for the sparse layers


def test_ertl_one_input_per_partition():
    W = ertl_layer(100, 30, 7, seed=2)
    bounds = np.linspace(0, 100, 8).astype(int)
    C = sp.csc_array(W)
    for j in range(30):
        rows = np.sort(C.indices[C.indptr[j] : C.indptr[j + 1]])
        assert rows.size == 7
        assert np.array_equal(np.searchsorted(bounds, rows, side="right") - 1, np.arange(7))


def test_from_weights_keeps_the_largest():
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((20, 10)), rng.standard_normal((10, 5))]
    masks = from_weights(Ws, 0.2)
    for W, M in zip(Ws, masks):
        kept = np.abs(W)[M.toarray() > 0]
        dropped = np.abs(W)[M.toarray() == 0]
        assert kept.size == round(0.2 * W.size) and kept.min() >= dropped.max()
    g = from_weights(Ws, 0.2, scope="global")
    assert sum(m.nnz for m in g) == round(0.2 * 250)


def test_rmat_exact_edges_power_law_and_seed():
    a = rmat_layer(256, 256, 0.05, seed=4)
    b = rmat_layer(256, 256, 0.05, seed=4)
    assert a.nnz == round(0.05 * 256 * 256) and (a != b).nnz == 0
    deg = np.diff(a.indptr)
    assert deg.max() > 4 * deg.mean()  # skewed, unlike Erdos-Renyi
    # any width: edges drawn on the 128 x 64 grid, those outside the 100 rows drawn again
    odd = rmat_layer(100, 64, 0.1, seed=0)
    assert odd.shape == (100, 64) and odd.nnz == 640
    with pytest.raises(GraphnnError, match="input width"):
        rmat_layer(0, 64, 0.1)


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["radixnet", "--radices", "2,1"], "every radix must be >= 2"),
        (["radixnet", "--radices", "2,2;3,2;2"], "must multiply to the width n=4"),
        (["radixnet", "--radices", "2,2,2", "--kron", "1,2"], "kron needs 4 entries"),
        (["random", "--layers", "10-5", "--density", "1.5"], r"density must be in \(0, 1\]"),
        (["radixnet", "--radices", "2,x"], "--radices must be integers"),
    ],
)
def test_cli_invalid_specs_one_line_exit_2(tmp_path, capsys, argv, msg):
    rc = cli.main(["topo", "generate", *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert __import__("re").search(msg, err)


@pytest.mark.parametrize("fmt", ["npz", "mtx", "tsv"])
def test_cli_generate_analyze_draw_round_trip(tmp_path, capsys, fmt):
    out = tmp_path / "net"
    assert (
        cli.main(
            [
                "topo",
                "generate",
                "kronecker",
                "--neurons",
                "64",
                "--nlayers",
                "4",
                "--seed",
                "1",
                "--out",
                str(out),
                "--format",
                fmt,
            ]
        )
        == 0
    )
    path = out / "network.npz" if fmt == "npz" else out
    capsys.readouterr()
    assert cli.main(["topo", "analyze", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sizes"] == [64] * 5 and report["connected_fraction"] == 1.0
    # n = 64/16 = 4: radices (2, 2), so 4 layers are two whole cycles, each 16 * ones (row
    # permutations do not change that): 16 * 64 * 16 paths
    assert report["paths_min"] == report["paths_max"] == 16 * 64 * 16
    png = tmp_path / "net.png"
    assert cli.main(["topo", "analyze", str(path), "--degree-plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_draw_small_as_graph_and_large_as_adjacency(tmp_path, capsys):
    cli.main(
        [
            "topo",
            "generate",
            "radixnet",
            "--radices",
            "2,2,2",
            "--kron",
            "1,2,2,1",
            "--out",
            str(tmp_path),
        ]
    )
    assert (
        cli.main(["topo", "draw", str(tmp_path / "network.npz"), "--out", str(tmp_path / "d.png")])
        == 0
    )
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    cli.main(["topo", "generate", "dense", "--layers", "100-100", "--out", str(tmp_path / "b")])
    assert (
        cli.main(
            ["topo", "draw", str(tmp_path / "b" / "network.npz"), "--out", str(tmp_path / "e.png")]
        )
        == 0
    )
    assert "the adjacency of each layer" in capsys.readouterr().out  # 10,000 edges
    from topologies.plots import draw_network

    with pytest.raises(GraphnnError, match="plot_spy draws the adjacency"):
        draw_network(graphnn.load(tmp_path / "b" / "network.npz"), tmp_path / "f.png")


@pytest.mark.parametrize("n,radix,place", [(64, 2, 1), (64, 2, 8), (27, 3, 9), (4, 2, 2)])
def test_direct_kron_equals_scipys(n, radix, place):
    import scipy.sparse as sp

    from topologies.kronecker import _kron_ones
    from topologies.radixnet import radix_layer

    R = radix_layer(n, radix, place)
    expected = sp.csr_array(sp.kron(np.full((16, 16), 1 / 16), R.toarray()))
    expected.eliminate_zeros()  # scipy stores the zeros of its dense blocks
    got = _kron_ones(R, 16, 1 / 16)
    assert got.has_sorted_indices and got.nnz == expected.nnz
    np.testing.assert_array_equal(got.toarray(), expected.toarray())
