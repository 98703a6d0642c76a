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


def test_cupy_pruning_and_export_match_cpu(gpu):
    """Pruning a GPU model keeps it on the GPU and picks the CPU's edges; its export equals
    the CPU model's."""
    from graphnn.training.pruning import prune_layers

    for sizes, topology in (([64, 100, 10], "dense"), ([64, 300, 100, 10], "random")):
        cpu = SparseMLP(sizes, density=0.2, topology=topology).build(3)
        dev = SparseMLP(sizes, density=0.2, topology=topology, backend="cupy").build(3)
        prune_layers(cpu, 0.9)
        prune_layers(dev, 0.9)
        assert all(L.backend.name == "cupy" for L in dev.layers_)
        a, b = cpu.to_network(), dev.to_network()
        for Wa, Wb in zip(a.layers, b.layers):
            np.testing.assert_array_equal(Wa.indices, Wb.indices)
            np.testing.assert_array_equal(Wa.data, Wb.data)
    base = __import__("graphnn.training.trainer", fromlist=["baseline_models"]).baseline_models
    assert all(m.backend == "cupy" for m in base(dev).values())
