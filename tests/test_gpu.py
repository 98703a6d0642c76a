"""GPU paths: run where CuPy and an NVIDIA GPU are present, skipped elsewhere."""

import numpy as np
import pytest

from graphnn.backends import get_backend
from graphnn.errors import BackendUnavailable
from graphnn.training import SparseMLP, TrainConfig, fit, load_dataset

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu():
    try:
        return get_backend("cupy")
    except BackendUnavailable as e:
        pytest.skip(str(e))


def test_cupy_gradients_match_cpu(gpu):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 64)).astype(np.float32), rng.integers(0, 10, 64)
    cpu = SparseMLP([64, 300, 100, 10], density=0.1).build(1)
    dev = SparseMLP([64, 300, 100, 10], density=0.1, backend="cupy").build(1)
    lc, gc, _ = cpu.loss_and_grads(X, y)
    ld, gd, _ = dev.loss_and_grads(X, y)
    assert lc == pytest.approx(ld, rel=1e-5)
    for (a, b), (c, d) in zip(gc, gd):
        np.testing.assert_allclose(a, gpu.asnumpy(c), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(b, gpu.asnumpy(d), rtol=1e-4, atol=1e-6)


def test_cupy_training_with_redistribution(gpu):
    data = load_dataset("digits", seed=0)
    cfg = TrainConfig(epochs=10, batch_size=64, lr=3e-3, redistribution="gradient-global")
    m = SparseMLP([64, 300, 100, 10], density=0.1, backend="cupy")
    result = fit(m, data, cfg)
    assert result["test_accuracy"] > 0.85


def test_cupy_challenge_matches_cpu(gpu):
    from challenge.generate import generate_problem
    from challenge.inference import infer

    p = generate_problem(1024, 24, 500, seed=2)
    r = infer(p.layers(), p.images, p.bias, backend="cupy")
    np.testing.assert_array_equal(r.categories, p.truth)
