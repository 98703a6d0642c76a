"""The fused dense-tile driver (the GPU path's bookkeeping) on the CPU, against the truth and the
sparse inference, with its numpy implementation of the layer kernel."""

import numpy as np
import pytest
import scipy.sparse as sp

from challenge.fused import DeviceNetwork, infer_fused
from challenge.generate import generate_problem
from challenge.inference import infer
from challenge.io import read_images, read_layers, read_truth
from graphnn.errors import DimensionMismatch, GraphnnError


@pytest.fixture(scope="module")
def official(request):
    from .conftest import SHARED

    if not (SHARED / "neuron1024.tar.gz").exists():
        pytest.skip(f"official challenge data not found at {SHARED}")
    truth = read_truth(SHARED / "neuron1024-l120-categories.tsv")
    return (
        read_layers(SHARED / "neuron1024.tar.gz", 1024, 120),
        read_images(SHARED / "sparse-images-1024_subset.tsv", 1024),
        truth[truth <= 1200],
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("max_rows", [None, 250])
def test_official_truth_exact(official, dtype, max_rows):
    layers, images, truth = official
    r = infer_fused(layers, images, -0.3, array_module="numpy", dtype=dtype, max_rows=max_rows)
    np.testing.assert_array_equal(r.categories, truth)
    assert r.edges == 120 * 32 * 1024 and r.n_layers == 120
    # kron(ones(16, 16), R): at most 64 distinct columns of 1024, as the CPU engine finds them
    assert max(r.column_classes) == 64
    assert r.column_classes == infer(layers, images[:10], -0.3).column_classes
    # every survivor is saturated from layer 10 on: the representative shortcut was taken
    assert r.saturated_from == 10 and r.saturated_rows[-1] == truth.size


def test_csc_arrays_is_scipys_transpose():
    from graphnn.challenge_kernel import csc_arrays

    rng = np.random.default_rng(0)
    cases = [sp.random_array((300, 200), density=0.05, format="csr", rng=rng),
             sp.csr_array((5, 7)),  # no entries
             sp.csr_array(np.array([[0, 2.0, 0], [0, 0, 0], [1.0, 3.0, 0]]))]  # fmt: skip
    for A in cases:
        C = A.tocsc()
        C.sort_indices()
        for dtype in (np.uint16, np.int32):
            colptr, rowidx, order = csc_arrays(A, dtype)
            np.testing.assert_array_equal(colptr, C.indptr)
            np.testing.assert_array_equal(rowidx, C.indices)
            assert rowidx.dtype == dtype
            np.testing.assert_array_equal(A.data[order], C.data)
        assert csc_arrays(A, with_order=False)[2] is None
    with pytest.raises(ValueError, match="uint16"):
        csc_arrays(sp.csr_array((70000, 3)), np.uint16)


def test_a_device_network_is_uploaded_once_and_reused():
    p = generate_problem(1024, 12, 300, seed=4)
    layers = list(p.layers())
    net = DeviceNetwork(layers, 1024, array_module="numpy", dtype="float64", threads=2)
    assert net.layer_edges == [W.nnz for W in layers] and net.edges == sum(net.layer_edges)
    fresh = infer_fused(layers, p.images, p.bias, array_module="numpy", dtype="float64")
    for half in (p.images[:150], p.images[150:]):
        r = infer_fused(net, half, p.bias)
        assert r.read_seconds == 0 and r.edges == fresh.edges
    both = np.concatenate([infer_fused(net, p.images[:150], p.bias).categories,
                           infer_fused(net, p.images[150:], p.bias).categories + 150])  # fmt: skip
    np.testing.assert_array_equal(both, fresh.categories)
    np.testing.assert_array_equal(fresh.categories, p.truth)
    with pytest.raises(GraphnnError, match="1024 neurons"):
        infer_fused(net, sp.csr_array((3, 4)), p.bias)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("classes", [True, False])
def test_same_rows_as_sparse_inference(seed, classes):
    p = generate_problem(1024, 24, 400, seed=seed)
    r = infer_fused(list(p.layers()), p.images, p.bias, array_module="numpy", dtype="float64",
                    column_classes=classes)  # fmt: skip
    s = infer(p.layers(), p.images, p.bias, column_classes=classes)
    np.testing.assert_array_equal(r.categories, p.truth)
    assert r.live_rows == s.live_rows and r.saturated_rows == s.saturated_rows
    assert r.saturated_from == s.saturated_from
    assert r.column_classes == s.column_classes  # the CPU engine's classes, layer by layer


def test_column_classes_are_exact_and_split_by_one_differing_weight():
    """Columns 0 and 2 share rows and values; column 3 has column 1's rows with one weight
    changed, so it is a class of its own; the classed and plain tiles give the same values
    layer by layer (the output of each layer read back from every neuron)."""
    W = sp.csr_array(np.array([[0.5, 0.25, 0.5, 0.25],
                               [0.0, 0.75, 0.0, 0.75],
                               [0.25, 0.0, 0.25, 0.0],
                               [0.0, 0.5, 0.0, 0.625]]))  # fmt: skip
    Y = sp.csr_array(np.random.default_rng(0).random((50, 4)))
    on = infer_fused([W, W, W], Y, -0.1, array_module="numpy", dtype="float64")
    off = infer_fused([W, W, W], Y, -0.1, array_module="numpy", dtype="float64",
                      column_classes=False)  # fmt: skip
    assert on.column_classes == [3, 3, 3] and off.column_classes is None
    np.testing.assert_array_equal(on.categories, off.categories)
    assert on.live_rows == off.live_rows and on.saturated_rows == off.saturated_rows
    A = Y.toarray()
    for _ in range(3):
        Z = A @ W.toarray()
        A = np.clip(np.where(Z != 0, Z - 0.1, 0), 0, 32)
    np.testing.assert_array_equal(on.categories, np.flatnonzero(A.any(axis=1)) + 1)
    plain = sp.random_array((64, 64), density=0.2, format="csr", rng=np.random.default_rng(1))
    r = infer_fused([plain], sp.csr_array(np.ones((3, 64))), -0.1, array_module="numpy")
    assert r.column_classes == [64]  # no two columns alike: the plain layer


def test_saturated_rows_rejoin_when_the_representative_unsaturates():
    # layer 1 saturates row 1 (all 32); layer 2 keeps a full row full; layer 3 halves it:
    # the saturated row must come back as a live row of 16s and survive
    W_up = sp.csr_array(np.full((2, 2), 40.0))
    W_id = sp.csr_array(np.eye(2))
    W_half = sp.csr_array(np.eye(2) * 0.5)
    Y = sp.csr_array([[1.0, 1.0], [0.001, 0.0]])
    r = infer_fused([W_up, W_id, W_half, W_id], Y, 0.0, array_module="numpy")
    s = infer([W_up, W_id, W_half, W_id], Y, 0.0, backend="reference")
    np.testing.assert_array_equal(r.categories, [1, 2])
    assert r.saturated_rows == s.saturated_rows == [1, 1, 0, 0]
    assert r.live_rows == s.live_rows == [1, 1, 2, 2]
    # the CPU kernel never lets a row leave while a later layer would change a row of ymax
    b = infer([W_up, W_id, W_half, W_id], Y, 0.0)
    np.testing.assert_array_equal(b.categories, [1, 2])
    assert b.saturated_rows == [0, 0, 0, 0] and b.live_rows == [2, 2, 2, 2]


def test_no_live_images_and_bad_layers():
    Y = sp.csr_array((3, 4))
    r = infer_fused([sp.identity(4, format="csr")], Y, -0.3, array_module="numpy")
    assert r.categories.size == 0 and r.live_rows == [0]
    with pytest.raises(DimensionMismatch, match="layer 2 has shape"):
        infer_fused([sp.identity(4), sp.identity(3)], Y, -0.3, array_module="numpy")
    with pytest.raises(GraphnnError, match="no layers"):
        infer_fused([], Y, -0.3, array_module="numpy")
    with pytest.raises(GraphnnError, match="array_module"):
        infer_fused([sp.identity(4)], Y, -0.3, array_module="torch")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_kernel_matches_the_numpy_layer(dtype):
    pytest.importorskip("cupy")
    from graphnn.backends import get_backend
    from graphnn.errors import BackendUnavailable

    try:
        get_backend("cupy")
    except BackendUnavailable as e:
        pytest.skip(str(e))
    for seed in (0, 1):
        p = generate_problem(1024, 24, 400, seed=seed)
        layers = list(p.layers())
        gpu = infer_fused(layers, p.images, p.bias, dtype=dtype, max_rows=150)
        cpu = infer_fused(layers, p.images, p.bias, array_module="numpy", dtype=dtype)
        plain = infer_fused(layers, p.images, p.bias, dtype=dtype, column_classes=False)
        np.testing.assert_array_equal(gpu.categories, p.truth)
        np.testing.assert_array_equal(plain.categories, p.truth)
        assert gpu.live_rows == cpu.live_rows == plain.live_rows
        assert gpu.saturated_rows == cpu.saturated_rows == plain.saturated_rows
        assert gpu.column_classes == cpu.column_classes
    W_up, W_id = sp.csr_array(np.full((2, 2), 40.0)), sp.csr_array(np.eye(2))
    Y = sp.csr_array([[1.0, 1.0], [0.001, 0.0]])
    r = infer_fused([W_up, W_id, sp.csr_array(np.eye(2) * 0.5), W_id], Y, 0.0, dtype=dtype)
    np.testing.assert_array_equal(r.categories, [1, 2])
    assert r.saturated_rows == [1, 1, 0, 0]
