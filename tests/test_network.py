import numpy as np
import pytest
import scipy.sparse as sp

from graphnn import DimensionMismatch, GraphnnError, Network, parse_activation

from .conftest import random_sparse


def _net(seed=0, sizes=(6, 5, 4, 3), dtype=np.float64):
    rng = np.random.default_rng(seed)
    layers = [random_sparse(rng, (a, b), 0.5, dtype) for a, b in zip(sizes, sizes[1:])]
    biases = [rng.standard_normal(b) for b in sizes[1:]]
    return Network(layers, biases=biases, activations=["relu", "sigmoid", "softmax"], dtype=dtype)


def test_sizes_nnz_density():
    W1 = sp.csr_array(np.array([[1.0, 0, 2], [0, 0, 3]]))
    W2 = sp.csr_array(np.ones((3, 1)))
    net = Network([W1, W2])
    assert net.sizes == [2, 3, 1]
    assert net.nnz == [3, 3]
    assert net.density == [0.5, 1.0]
    assert len(net) == 2


def test_mismatched_layer_shapes_name_the_layers():
    with pytest.raises(DimensionMismatch, match="layer 2 must have 4 rows"):
        Network([np.ones((3, 4)), np.ones((5, 2))])


def test_bias_vector_must_match_width():
    with pytest.raises(DimensionMismatch, match="length 4"):
        Network([np.ones((3, 4))], biases=[np.zeros(3)])
    with pytest.raises(DimensionMismatch, match="one entry per layer"):
        Network([np.ones((3, 4)), np.ones((4, 2))], biases=[0.0])


def test_explicit_zeros_are_edges_and_duplicates_are_summed():
    W = sp.coo_array(([1.0, 2.0, 0.0], ([0, 0, 1], [1, 1, 0])), shape=(2, 2))
    net = Network([W])
    assert net.nnz == [2]  # the zero weight at (1, 0) is still an edge
    assert net.layers[0][0, 1] == 3.0
    assert net.layers[0].indices.tolist() == [1, 0] and net.layers[0].data.tolist() == [3.0, 0.0]
    # a dense input has an edge at every nonzero
    assert Network([np.array([[0.0, 1.0]])]).nnz == [1]


def test_rejects_bad_dtype_and_empty_chain():
    with pytest.raises(GraphnnError, match="float32 or float64"):
        Network([np.ones((2, 2))], dtype=np.int32)
    with pytest.raises(GraphnnError, match="at least one layer"):
        Network([])


@pytest.mark.parametrize("backend", ["graphblas", "scipy"])
def test_forward_matches_dense_numpy(backend):
    net = _net()
    X = np.random.default_rng(1).standard_normal((8, 6))
    Y = X
    for W, b, name in zip(net.layers, net.biases, ["relu", "sigmoid", "softmax"]):
        Z = Y @ W.toarray() + b
        if name == "relu":
            Y = np.maximum(Z, 0)
        elif name == "sigmoid":
            Y = 1 / (1 + np.exp(-Z))
        else:
            E = np.exp(Z - Z.max(axis=1, keepdims=True))
            Y = E / E.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(net.forward(X, backend=backend), Y, rtol=1e-10)


def test_forward_rejects_wrong_width():
    with pytest.raises(DimensionMismatch, match=r"\(samples, 6\)"):
        _net().forward(np.ones((2, 5)))


def test_activations():
    Z = np.array([[-2.0, 0.5, 40.0]])
    np.testing.assert_array_equal(parse_activation("relu:32")(Z), [[0, 0.5, 32]])
    np.testing.assert_array_equal(parse_activation("relu")(Z), [[0, 0.5, 40]])
    np.testing.assert_array_equal(parse_activation("identity")(Z), Z)
    big = parse_activation("sigmoid")(np.array([[-1000.0, 0.0, 1000.0]]))
    np.testing.assert_allclose(big, [[0, 0.5, 1]])
    assert str(parse_activation("RELU:32")) == "relu:32"
    for bad, msg in [
        ("tanh", "choose from"),
        ("relu:x", "number"),
        ("relu:-1", "positive"),
        ("sigmoid:3", "choose from"),
    ]:
        with pytest.raises(GraphnnError, match=msg):
            parse_activation(bad)
