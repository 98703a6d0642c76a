"""The batch-tiled CPU training kernels against dense numpy, on the structures that break
tiled and unrolled code: empty rows, one entry, every entry, batches that are not a multiple
of the tile, both backward paths, one thread and two."""

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from graphnn import kernels
from graphnn.training import SparseMLP

from .conftest import random_sparse


def _structure(name, rng, dtype):
    """Empty rows and columns, rows of over 128 entries, a single entry, all, none."""
    if name == "random":
        return random_sparse(rng, (40, 30), 0.2, dtype, empty_rows=[0, 5], empty_cols=[2])
    if name == "long rows":
        return random_sparse(rng, (6, 400), 0.6, dtype, empty_rows=[1])
    if name == "one entry":
        return sp.csr_array(([1.5], ([3], [2])), shape=(6, 5), dtype=dtype)
    if name == "all entries":
        return sp.csr_array(rng.standard_normal((9, 7)).astype(dtype))
    return sp.csr_array((5, 4), dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 7, 64, 130])
@pytest.mark.parametrize("tiled", [False, True])
@pytest.mark.parametrize("name", ["random", "long rows", "one entry", "all entries", "none"])
def test_products_match_dense(dtype, batch, tiled, name):
    rng = np.random.default_rng(batch)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    W = _structure(name, rng, dtype)
    W.sort_indices()
    m, k = W.shape
    Wd = W.toarray()
    X = rng.standard_normal((m, batch)).astype(dtype)  # a layer's input, m features
    D = rng.standard_normal((k, batch)).astype(dtype)  # the operand of W @ D
    bias = rng.standard_normal(m).astype(dtype)
    wrap = kernels.Blocked.of if tiled else (lambda a: a)
    plain = (lambda r: r.plain()) if tiled else (lambda r: r)

    def product(**kw):
        return plain(kernels.rows_times_dense(wrap(D), W.indptr, W.indices, W.data, m, **kw))

    np.testing.assert_allclose(product(), Wd @ D, **tol)
    want = np.maximum(Wd @ D + bias[:, None], 0)
    np.testing.assert_allclose(product(bias=bias, relu=True), want, **tol)
    np.testing.assert_allclose(product(mask=X), (Wd @ D) * (X > 0), **tol)
    rows = np.repeat(np.arange(m), np.diff(W.indptr))
    want_dw = (X @ D.T)[rows, W.indices]
    np.testing.assert_allclose(kernels.sddmm(wrap(X), wrap(D), W.indptr, W.indices), want_dw, **tol)
    for relu in (False, True):
        dw, dx = kernels.backward(wrap(X), wrap(D), W.indptr, W.indices, W.data, True, relu)
        np.testing.assert_allclose(dw, want_dw, **tol)
        want_dx = (Wd @ D) * (X > 0) if relu else Wd @ D
        np.testing.assert_allclose(plain(dx), want_dx, **tol)
        if tiled:  # the bias gradient of the layer below: the row sums (in the pass or after)
            np.testing.assert_allclose(dx.row_sums, want_dx.sum(axis=1), **tol)
        if tiled and relu:  # and which rows are zero in the whole batch
            np.testing.assert_array_equal(dx.live, (want_dx != 0).any(axis=1))


def test_tiles_round_trip_with_zero_padding_and_row_sums():
    X = np.random.default_rng(0).standard_normal((11, 70)).astype(np.float32)
    B = kernels.Blocked.of(X, 32)
    assert B.tiles.shape == (3, 11, 32) and B.shape == (11, 70)
    assert not B.tiles[2, :, 6:].any()  # the padding of the last tile
    np.testing.assert_array_equal(B.plain(), X)
    np.testing.assert_allclose(B.row_sums, X.astype(np.float64).sum(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(B.retiled(16).plain(), X)
    assert B.retiled(32) is B


def test_tile_width_from_the_l2(monkeypatch):
    monkeypatch.setattr(kernels, "l2_bytes", lambda: 2 << 20)
    assert kernels.tile_width(4096, 512, 4) == 64  # 1 MiB tile: half the L2
    assert kernels.tile_width(4096, 512, 8) == 32
    assert kernels.tile_width(300_000, 128, 4) == 128  # beyond the L2: 512-byte rows
    assert kernels.tile_width(4096, 7, 4) == 8  # never much wider than the batch
    monkeypatch.setattr(kernels, "l2_bytes", lambda: 512 << 10)
    assert kernels.tile_width(4096, 512, 4) == 128


@pytest.mark.parametrize("input_grad", [False, True])
def test_two_threads_give_the_same_bits_as_one(input_grad):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one CPU: nothing to compare")
    rng = np.random.default_rng(5)
    W = random_sparse(rng, (300, 200), 0.3, np.float32)
    X = kernels.Blocked.of(rng.standard_normal((300, 100)).astype(np.float32))
    D = rng.standard_normal((200, 100)).astype(np.float32)
    D[rng.random(200) < 0.4] = 0  # rows the backward products leave out
    D = kernels.Blocked.of(D, X.width)
    D.live = (D.plain() != 0).any(axis=1)
    before, out = numba.get_num_threads(), []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            dw, dx = kernels.backward(X, D, W.indptr, W.indices, W.data, input_grad, True)
            y = kernels.rows_times_dense(D, W.indptr, W.indices, W.data, 300, relu=True)
            dx = (dx.tiles, dx.row_sums) if input_grad else ()
            out.append((dw, *dx, y.tiles, y.row_sums))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*out):
        assert np.array_equal(a, b)


def test_entries_reading_zero_gradient_rows_are_left_out_and_change_nothing(monkeypatch):
    """At density 0.05 the 64 x 10 output layer has 32 edges, so most of the last hidden
    layer's output gradient rows are zero in the whole batch: the backward products leave the
    entries that read them out, and loss and gradients stay the reference backend's."""
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((70, 30)), rng.integers(0, 10, 70)
    fast = SparseMLP([30, 64, 64, 10], density=0.05, dtype=np.float64).build(2)
    spec = SparseMLP.from_network(fast.to_network(), backend="reference")
    left_out = []

    def spy(M, D):
        M2, kept = reading(M, D)
        if kept is not None:
            left_out.append(kept.size - np.count_nonzero(kept))
        return M2, kept

    reading = kernels._reading_live_rows
    monkeypatch.setattr(kernels, "_reading_live_rows", spy)
    a, b = fast.loss_and_grads(X, y), spec.loss_and_grads(X, y)
    assert left_out and max(left_out) > 0
    assert a[0] == pytest.approx(b[0], rel=1e-12)
    for (gw, gb), (rw, rb) in zip(a[1], b[1]):
        np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-12)


def test_a_batch_major_operand_knows_its_zero_features():
    X = np.random.default_rng(1).standard_normal((70, 9)).astype(np.float32)
    X[:, [2, 5]] = 0
    X[69, 5] = np.nan
    B = kernels.Blocked.of_rows(X, 32, find_live=True)
    np.testing.assert_array_equal(B.plain(), X.T)
    np.testing.assert_array_equal(B.live, [True, True, False, True, True, True, True, True, True])
    assert kernels.Blocked.of_rows(X, 32).live is None


def test_the_weight_gradient_alone_leaves_out_zero_rows_too():
    """``sddmm`` (no values) with an operand that knows its zero rows."""
    rng = np.random.default_rng(4)
    W = random_sparse(rng, (50, 40), 0.3, np.float64)
    X = kernels.Blocked.of(rng.standard_normal((50, 20)))
    D = rng.standard_normal((40, 20))
    D[::2] = 0  # half the rows
    Dt = kernels.Blocked.of(D, X.width)
    Dt.live = (D != 0).any(axis=1)
    rows = np.repeat(np.arange(50), np.diff(W.indptr))
    want = (X.plain() @ D.T)[rows, W.indices]
    np.testing.assert_allclose(kernels.sddmm(X, Dt, W.indptr, W.indices), want, rtol=1e-12,
                               atol=1e-12)  # fmt: skip


def test_a_nan_row_is_not_taken_for_zero():
    W = sp.csr_array(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]]))
    D = kernels.Blocked.of(np.array([[np.nan, 1.0], [0.0, 0.0]]))
    mask = kernels.Blocked.of(np.ones((3, 2)), D.width)
    dx = kernels.rows_times_dense(D, W.indptr, W.indices, W.data, 3, mask=mask)
    np.testing.assert_array_equal(dx.live, [True, False, False])


def test_layers_above_the_crossover_take_blas_and_give_the_same_gradients():
    """A layer at density 0.6 runs dense products on the numba backend (the reference backend
    stays sparse): same loss and gradients, the weight gradient still only at the edges."""
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((33, 20)), rng.integers(0, 3, 33)
    fast = SparseMLP([20, 16, 12, 3], density=0.6, dtype=np.float64).build(4)
    spec = SparseMLP.from_network(fast.to_network(), backend="reference")
    assert all(layer.dense_products for layer in fast.layers_)
    assert not any(layer.dense_products for layer in spec.layers_)
    a, b = fast.loss_and_grads(X, y), spec.loss_and_grads(X, y)
    assert a[0] == pytest.approx(b[0], rel=1e-12)
    for (gw, gb), (rw, rb), layer in zip(a[1], b[1], fast.layers_):
        assert gw.shape == (layer.nnz,)
        np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-12)


def test_complete_layers_and_few_outputs_give_the_reference_gradients():
    """Complete layers (every edge: the dense weight is a view of the values) and a
    10-output layer (dense forward, sparse one-pass backward) give the reference's loss and
    gradients."""
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((40, 24)), rng.integers(0, 10, 40)
    fast = SparseMLP([24, 20, 10], density=1.0, dtype=np.float64).build(1)
    spec = SparseMLP.from_network(fast.to_network(), backend="reference")
    assert [layer.nnz for layer in fast.layers_] == [24 * 20, 20 * 10]
    assert [(layer.dense_products, layer.dense_backward) for layer in fast.layers_] == [
        (True, True),
        (True, False),
    ]
    a, b = fast.loss_and_grads(X, y), spec.loss_and_grads(X, y)
    assert a[0] == pytest.approx(b[0], rel=1e-12)
    for (gw, gb), (rw, rb) in zip(a[1], b[1]):
        np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-12)


def test_spare_arrays_are_reused_only_when_nothing_else_holds_them():
    """A large kernel output is handed out again once dropped, never while an array, a view or
    a Blocked still holds it."""
    spares = kernels._Spares()
    shape = (2, spares.SMALLEST // 8 + 1)
    a = spares.empty(shape, np.float32)
    b = spares.empty(shape, np.float32)
    assert a is not b
    view = a[0]
    del a
    c = spares.empty(shape, np.float32)
    assert c is not view.base and c is not b
    del view, c
    kept = {id(x) for x in spares._arrays}
    assert id(spares.empty(shape, np.float32)) in kept
    held = kernels.Blocked(spares.empty((1, 4, shape[1]), np.float32), shape[1])
    assert spares.empty((1, 4, shape[1]), np.float32) is not held.tiles
    assert spares.empty((3,), np.float32).size == 3  # small: never kept


def test_an_empty_batch_gives_a_zero_weight_gradient():
    """No pass runs over an empty batch: the weight gradient is zero, not uninitialised."""
    W = sp.random_array((5, 4), density=0.5, format="csr", rng=0, dtype=np.float32)
    dw, dx = kernels.backward(
        np.zeros((5, 0), np.float32), np.zeros((4, 0), np.float32), W.indptr, W.indices, W.data
    )
    assert np.array_equal(dw, np.zeros(W.nnz, np.float32)) and dx.shape == (5, 0)
