"""The CPU batch kernel (challenge.batched) against the reference layer loop."""

import numpy as np
import pytest
import scipy.sparse as sp

from challenge.batched import infer_batched
from challenge.inference import infer
from graphnn.challenge_kernel import LayerStack, block_interleave, uniform_scale
from graphnn.errors import GraphnnError


def _network(n, n_layers, density, seed, uniform=None):
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(n_layers):
        W = sp.random_array((n, n), density=density, rng=rng, format="csr")
        if uniform:
            W.data[:] = uniform
        else:
            W.data = rng.normal(0.3, 0.5, W.nnz)  # negative weights too: cancellations
        layers.append(sp.csr_array(W))
    return layers


def _images(rows, n, seed, values=False):
    rng = np.random.default_rng(seed)
    Y = sp.random_array((rows, n), density=0.2, rng=rng, format="csr")
    Y.data[:] = rng.integers(1, 4, Y.nnz) if values else 1.0
    return sp.csr_array(Y)


# random weights of both signs; one power-of-two weight everywhere (the scaled path), where
# rows die, saturate and (seed 1) rejoin as rows of ymax
@pytest.mark.parametrize(("uniform", "density", "bias"), [(None, 0.08, -0.2), (0.5, 0.15, -1.5)])
@pytest.mark.parametrize("seed", [0, 1])
def test_same_as_the_reference_loop(uniform, density, bias, seed):
    layers = _network(64, 10, density, seed, uniform)
    Y = _images(300, 64, seed, values=uniform is not None)
    ref = infer(layers, Y, bias, ymax=4.0, backend="reference")
    assert 0 < ref.categories.size < 300
    for threads, batch_rows, interleave in [(1, None, False), (2, 7, True), (3, 1, False)]:
        got = infer_batched(layers, Y, bias, ymax=4.0, dtype="float64", threads=threads,
                            batch_rows=batch_rows, interleave=interleave)  # fmt: skip
        np.testing.assert_array_equal(got.categories, ref.categories)
        assert got.edges == ref.edges and got.n_layers == 10
        assert got.live_rows[-1] + got.saturated_rows[-1] == ref.categories.size


def test_float32_matches_a_float32_scipy_loop():
    layers = _network(80, 8, 0.1, 3)
    Y = _images(200, 80, 3)
    Z = Y.astype(np.float32)
    for W in layers:
        Z = Z @ W.astype(np.float32)
        Z.data[Z.data != 0] += np.float32(-0.1)
        np.clip(Z.data, 0, 8, out=Z.data)
        Z.eliminate_zeros()
    expected = np.flatnonzero(np.diff(sp.csr_array(Z).indptr)) + 1
    got = infer_batched(layers, Y, -0.1, ymax=8.0, dtype="float32")
    np.testing.assert_array_equal(got.categories, expected)


def test_saturated_rows_stop_only_when_every_later_layer_keeps_them():
    up = sp.csr_array(np.full((2, 2), 40.0))
    ident = sp.csr_array(np.eye(2))
    Y = sp.csr_array([[1.0, 1.0], [0.001, 0.0]])
    r = infer_batched([up, ident, ident], Y, 0.0, dtype="float64")
    assert r.saturated_rows == [1, 1, 1] and r.saturated_from == 1  # collapsed at once
    r = infer_batched([up, ident, sp.csr_array(np.eye(2) * 0.5)], Y, 0.0, dtype="float64")
    assert r.saturated_rows == [0, 0, 0] and r.live_rows == [2, 2, 2]
    np.testing.assert_array_equal(r.categories, [1, 2])


def test_a_network_larger_than_the_cache_is_re_read_in_chunks():
    layers = _network(208, 6, 0.5, 4, uniform=1 / 64)  # 170 kB per layer
    Y = _images(50, 208, 4)
    ref = infer(layers, Y, -0.05, ymax=2.0, backend="reference")
    calls = []

    def source():
        calls.append(1)
        return iter(layers)

    for interleave in (False, True):  # the chunks read again are relabelled like the cache
        calls.clear()
        got = infer_batched(source, Y, -0.05, ymax=2.0, dtype="float64", memory_limit=1 << 20,
                            interleave=interleave)  # fmt: skip
        np.testing.assert_array_equal(got.categories, ref.categories)
        assert len(calls) == 2 and got.live_rows == ref.live_rows  # read twice: all, the rest
    with pytest.raises(GraphnnError, match="read only once"):
        infer_batched(iter(layers), Y, -0.05, ymax=2.0, memory_limit=1 << 20)


def test_block_interleave_relabels_layers_and_rows_alike():
    new = block_interleave(32, 4)  # neuron b * 8 + x becomes x * 4 + b
    assert sorted(new) == list(range(32)) and new[8 * 2 + 5] == 5 * 4 + 2
    old = np.argsort(new)
    rng = np.random.default_rng(3)
    for uniform in (0.25, None):
        W = sp.random_array((32, 32), density=0.2, rng=rng, format="csr")
        W.data = np.full(W.nnz, uniform) if uniform else rng.normal(size=W.nnz)
        stack = LayerStack(32, np.float64, new)
        stack.append(sp.csr_array(W))
        ptr, idx, val, voff, scale = stack.arrays()[:5]
        data = np.full(idx.size, scale[0]) if scale[0] else val[voff[0] + np.arange(idx.size)]
        got = sp.csr_array((data, idx.astype(np.int64), ptr[0].astype(np.int64)), shape=(32, 32))
        want = W[old][:, old]  # W'[new(i), new(j)] = W[i, j]
        assert abs(got - want).max() == 0 and got.nnz == W.nnz
    with pytest.raises(ValueError, match="blocks"):
        block_interleave(30)


def test_interleaved_neurons_give_the_same_rows_on_a_challenge_network():
    from challenge.generate import generate_problem

    p = generate_problem(4096, 24, 300, seed=3)
    runs = [infer_batched(list(p.layers()), p.images, p.bias, interleave=flag)
            for flag in (False, True)]  # fmt: skip
    for r in runs:
        np.testing.assert_array_equal(r.categories, p.truth)
    assert runs[0].live_rows == runs[1].live_rows
    assert runs[0].saturated_rows == runs[1].saturated_rows


def test_parameters_are_checked():
    Y = _images(5, 4, 0)
    with pytest.raises(GraphnnError, match="dtype"):
        infer_batched([sp.identity(4, format="csr")], Y, 0.0, dtype="int32")
    with pytest.raises(GraphnnError, match="memory_limit"):
        infer_batched([sp.identity(4, format="csr")], Y, 0.0, memory_limit=10)
    with pytest.raises(GraphnnError, match="threads"):
        infer_batched([sp.identity(4, format="csr")], Y, 0.0, threads=0)
    with pytest.raises(GraphnnError, match="no layers"):
        infer_batched([], Y, 0.0)
    with pytest.raises(GraphnnError, match="multiple of 16"):
        infer_batched([sp.identity(4, format="csr")], Y, 0.0, interleave=True)


def test_uniform_scale_only_for_one_power_of_two():
    assert uniform_scale(np.full(5, 1 / 16)) == 1 / 16
    assert uniform_scale(np.full(5, 0.3)) == 0
    assert uniform_scale(np.array([0.5, 0.25])) == 0
    assert uniform_scale(np.full(3, -0.5)) == 0
    assert uniform_scale(np.empty(0)) == 0


def test_saturation_test_by_in_degree_is_the_kernel_loop():
    # uniform layers are tested by in-degree; the result must be the kernel's own arithmetic
    from graphnn.challenge_kernel import _stays, stays_saturated

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 30))
        W = sp.random_array((n, n), density=rng.uniform(0.05, 0.6), rng=rng, format="csr")
        if W.nnz == 0:
            continue
        W.data[:] = 2.0 ** rng.integers(-6, 2)
        for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
            ymax, bias = float(rng.choice([32.0, 1.0, 0.3, 7.7])), float(rng.uniform(-3, 1))
            loop = _stays(W.indptr, W.indices, np.empty(0, dtype), dtype.type(W.data[0]),
                          dtype.type(bias), dtype.type(ymax))  # fmt: skip
            assert stays_saturated(W, dtype, bias, ymax) == loop


def test_saturation_test_sums_in_the_relabelled_kernels_order():
    # a saturated row through a relabelled layer of varied weights: the test is the kernel's run
    from graphnn.challenge_kernel import Workspace, run_rows, stays_saturated

    rng = np.random.default_rng(1)
    n, new = 32, block_interleave(32)
    agree = 0
    for _ in range(300):
        W = sp.random_array((n, n), density=0.6, rng=rng, format="csr")
        W.data = rng.uniform(0.01, 0.2, W.nnz)
        ymax = 1.0
        bias = float(-np.sort(np.asarray(W.sum(axis=0)).ravel())[0] + 1 + rng.normal(0, 1e-15))
        stack = LayerStack(n, np.float64, new)
        stack.append(sp.csr_array(W))
        full = sp.csr_array(np.full((1, n), ymax))
        ws = Workspace(np.float64)
        # a saturated row as the kernel emits it: every new label, in order (the dense scan)
        ws.load(full.indptr, full.indices, full.data, np.arange(1), np.arange(1))
        fates = np.full(1, -1, np.int64), np.full(1, -1, np.int8)
        ws.bufs, which, count = run_rows(ws.bufs, 1, *stack.arrays(), 0, 1, 0,
                                         np.ones(1, np.bool_), np.float64(bias),
                                         np.float64(ymax), *fates)  # fmt: skip
        kernel_says = fates[1][0] == 1  # SATURATED: all n entries reached ymax
        assert stays_saturated(sp.csr_array(W), np.float64, bias, ymax, new) == kernel_says
        agree += kernel_says
    assert 0 < agree < 300  # both outcomes were tested


def test_a_source_that_changes_between_reads_is_an_error():
    layers = _network(200, 6, 0.5, 4, uniform=1 / 64)
    Y = _images(50, 200, 4)
    reads = []

    def shrinking():
        reads.append(1)
        return iter(layers if len(reads) == 1 else layers[:3])

    with pytest.raises(GraphnnError, match="fewer layers when read again"):
        infer_batched(shrinking, Y, -0.05, ymax=2.0, dtype="float64", memory_limit=1 << 20)


def _run(stack, Y, ymax=np.inf, bias=-0.05):
    from graphnn.challenge_kernel import Workspace, run_rows

    ws = Workspace(np.float64)
    rows = np.arange(Y.shape[0])
    count = ws.load(Y.indptr, Y.indices, Y.data, rows, rows, stack.relabel)
    fates = np.full(Y.shape[0], -1, np.int64), np.full(Y.shape[0], -1, np.int8)
    ws.bufs, which, count = run_rows(ws.bufs, count, *stack.arrays(), 0, len(stack), 0,
                                     np.zeros(len(stack), np.bool_), np.float64(bias),
                                     np.float64(ymax), *fates)  # fmt: skip
    return ws.rows(which, count), fates


@pytest.mark.parametrize("relabel, runs", [(False, False), (True, False), (False, True)])
def test_column_classes_write_the_plain_kernels_rows_bit_for_bit(relabel, runs):
    # layers whose columns come in classes (copies at scattered places) with varied weights:
    # the class kernel must write every row, entry order included, as the plain kernel does
    rng = np.random.default_rng(5)
    n = 64
    layers = []
    for _ in range(6):
        R = sp.random_array((n, 8), density=0.3, rng=rng, format="csc")
        R.data = rng.uniform(0.05, 0.4, R.nnz)
        # every column a copy of one of 8: scattered, or in runs of 8 (a class's columns
        # consecutive, as in a relabelled challenge layer: written class by class)
        copies = np.repeat(rng.permutation(8), 8) if runs else rng.integers(0, 8, n)
        W = sp.csr_array(R[:, copies])
        layers.append(W)
    new = block_interleave(n) if relabel else None
    plain, classed = LayerStack(n, np.float64, new), LayerStack(n, np.float64, new, True)
    for W in layers:
        plain.append(W)
        classed.append(W)
    stacked = classed.arrays()
    assert all(c <= 8 for c in classed.class_counts)
    assert (
        stacked[6][3, :, n] == 1
    ).all() == runs  # every class a run of columns and classed.nnz < plain.nnz / 4
    for density in (0.02, 0.1, 0.6):  # the sparse path, both, the dense path
        Y = sp.random_array((40, n), density=density, rng=rng, format="csr")
        Y.data = rng.uniform(0, 1, Y.nnz)
        (a, fa), (b, fb) = _run(plain, Y), _run(classed, Y)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)  # ptr, indices, values, ids: same bits
        np.testing.assert_array_equal(fa[0], fb[0])


def test_column_classes_are_exact_groups():
    from graphnn.challenge_kernel import column_classes

    W = np.zeros((5, 5))  # a square layer, as the kernel's are
    W[:3] = [[1.0, 0, 1, 1, 0], [2, 3, 2, 2, 3], [5, 0, 5, 5.5, 0]]
    W = sp.csr_array(W)
    bits = W.data.view(np.uint64).copy()
    rep = column_classes(W.indptr.astype(np.uint64), W.indices.astype(np.uint32), bits, 5)
    # columns 0 and 2 are equal; 3 differs from them by one weight; 1 and 4 are equal
    assert list(rep) == [0, 1, 0, 3, 1]
    # a network without shared columns is stored as the plain one
    rng = np.random.default_rng(0)
    M = sp.random_array((30, 30), density=0.3, rng=rng, format="csr")
    M.data = rng.uniform(0.1, 1, M.nnz)
    plain, classed = LayerStack(30, np.float64), LayerStack(30, np.float64, classes=True)
    plain.append(M)
    classed.append(M)
    stacked = classed.arrays()  # the filled layers are stacked (and counted) here
    assert classed.class_counts == [30]
    for x, y in zip(plain.arrays()[:6], stacked[:6]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("n, nlayers, images", [(4096, 24, 300), (16384, 12, 120)])
def test_column_classes_on_generated_challenge_problems(n, nlayers, images):
    from challenge.generate import generate_problem

    p = generate_problem(n, nlayers, images, seed=7)
    layers = list(p.layers())
    on, off = (infer_batched(layers, p.images, p.bias, classes=flag) for flag in (True, False))
    np.testing.assert_array_equal(on.categories, p.truth)
    np.testing.assert_array_equal(on.categories, off.categories)
    assert on.live_rows == off.live_rows and on.saturated_rows == off.saturated_rows
    # kron(ones(16, 16), R): at most n / 16 distinct columns (fewer where R repeats one)
    assert len(on.column_classes) == nlayers and max(on.column_classes) == n // 16
    assert off.column_classes is None
