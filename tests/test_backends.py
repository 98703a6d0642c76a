"""Every backend operation against a dense numpy reference, on small random cases."""

import numpy as np
import pytest
import scipy.sparse as sp

from graphnn import DimensionMismatch, GraphnnError, available_backends, get_backend
from graphnn.errors import BackendUnavailable

from .conftest import random_sparse

BACKENDS = [
    pytest.param(name, marks=[pytest.mark.gpu] if name == "cupy" else [])
    for name in ("numba", "graphblas", "reference", "cupy")
]

# (m, k, n, density): shapes include empty matrices and zero-sized dimensions
CASES = [
    (7, 5, 6, 0.4),
    (12, 9, 4, 0.2),
    (6, 6, 6, 0.0),
    (0, 4, 5, 0.5),
    (4, 0, 5, 0.5),
    (5, 4, 0, 0.5),
    (30, 25, 20, 0.1),
]


@pytest.fixture(params=BACKENDS)
def be(request):
    try:
        return get_backend(request.param)
    except BackendUnavailable as e:
        pytest.skip(str(e))


def _operands(seed, m, k, n, density):
    rng = np.random.default_rng(seed)
    A = random_sparse(rng, (m, k), density, empty_rows=[0, 2], empty_cols=[1])
    B = random_sparse(rng, (k, n), density, empty_rows=[1], empty_cols=[0, 3])
    return rng, A, B


def _dense(be, A):
    return be.to_scipy(A).toarray()


@pytest.mark.parametrize("case", CASES)
def test_spgemm_matches_dense(be, case):
    _, A, B = _operands(1, *case)
    C = be.spgemm(be.matrix(A), be.matrix(B))
    assert be.shape(C) == (case[0], case[2])
    np.testing.assert_allclose(_dense(be, C), A.toarray() @ B.toarray(), atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_spmm_matches_dense(be, case, dtype):
    rng, _, W = _operands(2, *case)
    W = W.astype(dtype)
    X = rng.standard_normal((case[0], case[1])).astype(dtype)
    Z = be.asnumpy(be.spmm(be.asarray(X), be.matrix(W)))
    assert Z.shape == (case[0], case[2]) and Z.dtype == dtype
    np.testing.assert_allclose(Z, X @ W.toarray(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_masked_product_only_at_mask_edges(be, case):
    m, k, n, density = case
    rng, _, _ = _operands(3, *case)
    mask = random_sparse(rng, (m, n), max(density, 0.3), empty_rows=[1], empty_cols=[2])
    A = rng.standard_normal((m, k))
    B = rng.standard_normal((k, n))
    G = be.to_scipy(be.masked_product(be.asarray(A), be.asarray(B), be.matrix(mask)))
    expected = np.where(mask.toarray() != 0, A @ B, 0.0)
    np.testing.assert_allclose(G.toarray(), expected, atol=1e-12)
    # the structure is exactly the mask's, even where the product is zero
    assert G.nnz == mask.nnz
    assert np.array_equal(np.sort(G.indices), np.sort(mask.indices))


@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "==", "!="])
def test_select_matches_dense(be, op):
    rng, A, _ = _operands(4, 20, 15, 10, 0.3)
    A.data[::3] = 1.0
    S = be.to_scipy(be.select(be.matrix(A), op, 1.0))
    D = A.toarray()
    keep = {
        ">": D > 1,
        ">=": D >= 1,
        "<": D < 1,
        "<=": D <= 1,
        "==": D == 1,
        "!=": D != 1,
    }[op] & (D != 0)
    np.testing.assert_array_equal(S.toarray(), np.where(keep, D, 0))
    assert S.nnz == keep.sum()


@pytest.mark.parametrize(
    "op,fn", [("plus", np.add), ("times", np.multiply), ("min", np.minimum), ("max", np.maximum)]
)
def test_apply_touches_stored_entries_only(be, op, fn):
    _, A, _ = _operands(5, 9, 8, 3, 0.4)
    R = be.to_scipy(be.apply(be.matrix(A), op, 0.25))
    D = A.toarray()
    np.testing.assert_allclose(R.toarray(), np.where(D != 0, fn(D, 0.25), 0))
    assert R.nnz == A.nnz


@pytest.mark.parametrize("case", CASES)
def test_reduce_matches_dense(be, case):
    _, A, _ = _operands(6, *case)
    M = be.matrix(A)
    D = A.toarray()
    assert be.reduce(M) == pytest.approx(D.sum())
    np.testing.assert_allclose(be.reduce(M, axis=0), D.sum(axis=0))
    np.testing.assert_allclose(be.reduce(M, axis=1), D.sum(axis=1))


def test_mismatched_shapes_are_rejected(be):
    rng, A, B = _operands(7, 4, 5, 6, 0.5)
    with pytest.raises(DimensionMismatch, match=r"\(4, 5\) by \(4, 5\)"):
        be.spgemm(be.matrix(A), be.matrix(A))
    with pytest.raises(DimensionMismatch, match="spmm"):
        be.spmm(be.asarray(np.ones((3, 4))), be.matrix(B))
    with pytest.raises(DimensionMismatch, match="mask has"):
        be.masked_product(be.asarray(np.ones((4, 5))), be.asarray(np.ones((5, 6))), be.matrix(A))


def test_bad_op_names_list_valid_choices(be):
    _, A, _ = _operands(8, 4, 5, 6, 0.5)
    with pytest.raises(GraphnnError, match="choose from"):
        be.select(be.matrix(A), "=>", 0)
    with pytest.raises(GraphnnError, match="'plus'"):
        be.apply(be.matrix(A), "add", 1)


def test_unknown_backend_names_the_choices():
    with pytest.raises(GraphnnError, match="numba, graphblas, cupy, reference"):
        get_backend("torch")
    assert get_backend("scipy") is get_backend("numba")  # the old names still work
    assert get_backend("cpu") is get_backend("numba")


def test_cpu_backends_always_available():
    assert {"numba", "graphblas", "reference"} <= set(available_backends())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_training_products_match_dense(be, case, dtype):
    """csr_times_dense (forward, input gradient) and sddmm (weight gradient at the edges)."""
    m, k, n, density = case
    rng, _, W = _operands(11, *case)
    W = sp.csr_array(W, dtype=dtype)
    W.sort_indices()
    D = rng.standard_normal((n, 7)).astype(dtype)
    arr = lambda a, t=None: be.asarray(np.ascontiguousarray(a), dtype=t)  # noqa: E731
    got = be.asnumpy(
        be.csr_times_dense(arr(W.data), arr(W.indices, np.int32), arr(W.indptr, np.int32),
                           W.shape, arr(D))
    )  # fmt: skip
    assert got.shape == (k, 7) and got.dtype == dtype
    np.testing.assert_allclose(got, W.toarray() @ D, rtol=1e-5, atol=1e-5)
    XT = rng.standard_normal((k, 9)).astype(dtype)
    dZT = rng.standard_normal((n, 9)).astype(dtype)
    rows = np.repeat(np.arange(k), np.diff(W.indptr)).astype(np.int32)
    vals = be.asnumpy(
        be.sddmm(arr(XT), arr(dZT), arr(W.indptr, np.int32), arr(W.indices, np.int32),
                 arr(rows))
    )  # fmt: skip
    np.testing.assert_allclose(vals, (XT @ dZT.T)[rows, W.indices], rtol=1e-5, atol=1e-5)


def test_spgemm_splits_rows_to_bound_the_products(monkeypatch):
    """The GPU's guard against cuSPARSE's int32 product count, run on the CPU."""
    from graphnn.backends import array_backend

    be = get_backend("reference")
    rng, A, B = _operands(12, 60, 40, 30, 0.3)
    products = int(np.diff(B.indptr)[A.indices].sum())
    monkeypatch.setattr(array_backend, "MAX_PRODUCTS", products // 7)
    C = be.to_scipy(be.spgemm(be.matrix(A), be.matrix(B)))
    np.testing.assert_allclose(C.toarray(), A.toarray() @ B.toarray(), atol=1e-12)


def test_row_counts_take_rows_vstack(be):
    _, A, B = _operands(9, 8, 6, 5, 0.4)
    M = be.matrix(A)
    np.testing.assert_array_equal(be.row_counts(M), (A.toarray() != 0).sum(axis=1))
    rows = np.array([3, 0, 3, 7])
    np.testing.assert_array_equal(_dense(be, be.take_rows(M, rows)), A.toarray()[rows])
    S = be.vstack([M, be.take_rows(M, [1])])
    np.testing.assert_array_equal(_dense(be, S), np.vstack([A.toarray(), A.toarray()[[1]]]))


@pytest.mark.parametrize("ymax", [None, 1.0])
@pytest.mark.parametrize("case", CASES)
def test_relu_layer_matches_challenge_rule(be, case, ymax):
    """Z = Y W; bias on nonzeros of Z only (a cancelled entry gets none); ReLU; clamp."""
    rng, Y, W = _operands(10, *case)
    if Y.nnz and W.nnz:
        Y.data = np.abs(Y.data)
        # make one product entry cancel exactly to zero: it must not receive the bias
        W = W.tolil()
        W[:, :] = 0
        W[0, 0], W[1, 0] = 1.0, -1.0
        W = W.tocsr()
        Y = Y.tolil()
        Y[3, 0], Y[3, 1] = 2.0, 2.0
        Y = Y.tocsr()
        W = (W + random_sparse(rng, W.shape, case[3], empty_cols=[0])).tocsr()
    Z = Y.toarray() @ W.toarray()
    expected = np.where(Z != 0, Z + 0.25, 0)
    expected = np.clip(expected, 0, np.inf if ymax is None else ymax)
    got = _dense(be, be.relu_layer(be.matrix(Y), be.matrix(W), 0.25, ymax))
    np.testing.assert_allclose(got, expected, atol=1e-12)
    if case[0] > 3 and case[2] > 0 and Y.nnz and W.nnz:
        assert got[3, 0] == 0  # cancelled: no bias


def test_structural_updates_match_brute_force(be):
    """keep (W(M.V) << W), add_zeros (W(N.S) << 0) and the top-k of |X^T dZ| in ~W.S."""
    rng, A, _ = _operands(13, 30, 20, 10, 0.3)
    mask = rng.random(A.nnz) < 0.5
    K = be.keep(be.matrix(A), mask)
    D = A.toarray()
    rows, cols = A.nonzero()
    order = np.lexsort((cols, rows))
    expected = np.zeros_like(D)
    kept_rc = (rows[order][mask], cols[order][mask])
    expected[kept_rc] = D[kept_rc]
    np.testing.assert_array_equal(_dense(be, K), expected)
    keys = be.entry_keys(K)
    np.testing.assert_array_equal(keys, np.sort(kept_rc[0] * 20 + kept_rc[1]))
    XT, dZT = rng.standard_normal((30, 6)), rng.standard_normal((20, 6))
    scores, top = be.complement_topk(XT, dZT, K, 15)
    G = np.abs(XT @ dZT.T).ravel()
    G[keys] = -1
    brute = np.argsort(-G, kind="stable")[:15]
    np.testing.assert_array_equal(np.sort(top), np.sort(brute))
    np.testing.assert_allclose(np.sort(scores), np.sort(G[brute]))
    Z = be.to_scipy(be.add_zeros(K, np.sort(top)))
    assert Z.nnz == keys.size + 15  # the zeros are entries: edges of the structure
    np.testing.assert_array_equal(Z.toarray(), expected)
    with pytest.raises(GraphnnError, match="already an entry"):
        be.add_zeros(K, keys[:1])
