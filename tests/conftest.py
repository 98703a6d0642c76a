from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "graphchallenge"


@pytest.fixture
def shared_data():
    """The official Graph Challenge files in ../shared; skips where ../shared is absent."""
    if not (SHARED / "neuron1024.tar.gz").exists():
        pytest.skip(f"official challenge data not found at {SHARED}")
    return SHARED


def random_sparse(rng, shape, density, dtype=np.float64, empty_rows=(), empty_cols=()):
    """A random CSR with values away from zero, and the given rows and columns emptied."""
    A = sp.random_array(shape, density=density, format="lil", dtype=dtype, rng=rng)
    A = sp.csr_array(A)
    A.data = np.where(rng.random(A.nnz) < 0.5, -1, 1) * (0.5 + rng.random(A.nnz))
    A = A.astype(dtype).tolil()
    for i in empty_rows:
        if i < shape[0]:
            A[i, :] = 0
    for j in empty_cols:
        if j < shape[1]:
            A[:, j] = 0
    A = sp.csr_array(A)
    A.eliminate_zeros()
    return A
