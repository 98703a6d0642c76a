"""graphnn.torch: SparseLinear's gradients (gradcheck, and against a dense masked nn.Linear),
lossless round trips Network -> torch -> Network with explicit zeros, the dense export."""

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from graphnn import Network  # noqa: E402
from graphnn.torch import SparseLinear, from_torch, to_torch  # noqa: E402


def _weight(shape, density, seed, zeros=0):
    W = sp.random(*shape, density=density, random_state=seed, format="csr")
    W.data -= 0.5
    W.data[:zeros] = 0.0  # explicit zeros: edges whose weight is exactly zero
    return W


BACKENDS = [None, "reference"]  # graphnn's CPU kernels; the backend path (CUDA's) on numpy


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_in_float64(backend):
    layer = SparseLinear(7, 5, weight=_weight((7, 5), 0.5, 0, zeros=2), dtype=torch.float64,
                         backend=backend)  # fmt: skip
    x = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    values = layer.values.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)

    def call(x, values, bias):
        return torch.func.functional_call(layer, {"values": values, "bias": bias}, (x,))

    assert torch.autograd.gradcheck(call, (x, values, bias))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch", [1, 9, 130])
@pytest.mark.parametrize("used", [30, 10])
def test_gradients_equal_a_dense_masked_linear(batch, used, backend):
    """Also where the loss reads 10 of the 30 outputs: the products then leave out the entries
    that read the 20 zero output-gradient rows."""
    W = _weight((40, 30), 0.2, 1, zeros=3)
    sparse = SparseLinear(40, 30, weight=W, dtype=torch.float64, backend=backend)
    dense = torch.tensor(W.toarray(), requires_grad=True)
    mask = torch.tensor((W != 0).toarray() | _structure(W))
    x = torch.randn(batch, 40, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    b = sparse.bias.detach().clone().requires_grad_(True)
    (sparse(x)[:, :used] ** 2).sum().backward()
    ((x2 @ (dense * mask) + b)[:, :used] ** 2).sum().backward()
    rows = np.repeat(np.arange(40), np.diff(W.indptr))
    np.testing.assert_allclose(sparse.values.grad.numpy(), dense.grad.numpy()[rows, W.indices],
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse.bias.grad.numpy(), b.grad.numpy(), rtol=1e-10)


def _structure(W):
    S = np.zeros(W.shape, bool)
    S[np.repeat(np.arange(W.shape[0]), np.diff(W.indptr)), W.indices] = True
    return S


def test_round_trip_is_lossless_and_the_dense_export_computes_the_same():
    layers = [_weight((12, 9), 0.4, 2, zeros=2), _weight((9, 5), 0.5, 3, zeros=1)]
    net = Network(layers, biases=[np.linspace(-1, 1, 9), 0.25], activations=["relu:3", "softmax"])
    back = from_torch(to_torch(net))
    assert back.nnz == net.nnz  # the explicit zeros survive
    for a, b in zip(net.layers, back.layers):
        assert (a.indptr == b.indptr).all() and (a.indices == b.indices).all()
        assert np.array_equal(a.data, b.data)
    assert [str(a) for a in back.activations] == ["relu:3", "softmax"]
    np.testing.assert_array_equal(back.biases[1], np.full(5, 0.25))
    x = np.random.default_rng(0).standard_normal((6, 12))
    want = net.forward(x)
    for dense in (False, True):
        got = to_torch(net, dense=dense)(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_a_sparse_layer_trains_inside_a_mixed_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(SparseLinear(64, 100, density=0.2, seed=1), torch.nn.ReLU(),
                                torch.nn.Linear(100, 10))  # fmt: skip
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = torch.tensor(X / 16, dtype=torch.float32), torch.tensor(y)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    structure = model[0].indices.copy()
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
    accuracy = (model(X).argmax(1) == y).float().mean().item()
    assert accuracy > 0.9 and np.array_equal(model[0].indices, structure)
    assert model[0].values.shape == (model[0].nnz,)


def _trained(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(SparseLinear(20, 16, density=0.3, seed=seed), torch.nn.ReLU(),
                                SparseLinear(16, 4, density=0.5, seed=seed + 1))  # fmt: skip
    x, y = torch.randn(64, 20), torch.randint(0, 4, (64,))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, opt, x, y


def _edges(layer):
    rows = np.repeat(np.arange(layer.in_features), np.diff(layer.indptr))
    return dict(zip(zip(rows.tolist(), layer.indices.tolist()), range(layer.nnz)))


@pytest.mark.parametrize("algorithm", ["random", "gradient"])
def test_redistribution_keeps_each_optimiser_entry_with_its_edge(algorithm):
    from graphnn.torch import redistribute

    model, opt, x, y = _trained()
    before = []
    for layer in (model[0], model[2]):
        st = opt.state[layer.values]
        before.append((_edges(layer), layer.values.detach().clone(), st["exp_avg"].clone(),
                       st["exp_avg_sq"].clone(), layer.nnz))  # fmt: skip
    loss = torch.nn.functional.cross_entropy
    moved = redistribute(model, opt, fraction=0.25, algorithm=algorithm, batch=(x, y),
                         loss_fn=loss, seed=3)  # fmt: skip
    for layer, (edges, values, m, v, nnz) in zip((model[0], model[2]), before):
        assert layer.nnz == nnz and layer.values.shape == (nnz,)
        st = opt.state[layer.values]
        now = _edges(layer)
        k = round(0.25 * nnz)
        by_size = sorted(edges, key=lambda e: abs(values[edges[e]].item()))
        kept = set(by_size[k:])  # the smallest magnitudes go
        assert kept <= set(now) and len(now) == nnz
        for e, i in now.items():
            if e in kept:  # the same weight and state at the same edge
                j = edges[e]
                assert layer.values[i] == values[j] and st["exp_avg"][i] == m[j]
                assert st["exp_avg_sq"][i] == v[j]
            else:  # grown (perhaps where an edge was just dropped): at zero, fresh state
                assert layer.values[i] == 0 and st["exp_avg"][i] == 0 and st["exp_avg_sq"][i] == 0
    assert sum(moved.values()) == round(0.25 * before[0][4]) + round(0.25 * before[1][4])
    opt.step()  # the optimiser goes on with the same parameter objects


def test_gradient_growth_takes_the_largest_absent_gradients():
    from graphnn.torch import redistribute

    model, opt, x, y = _trained(1)
    layer = model[0]
    old = set(_edges(layer))
    W = torch.zeros(20, 16, requires_grad=True)  # the dense gradient, brute force
    with torch.no_grad():
        for (r, c), i in _edges(layer).items():
            W[r, c] = layer.values[i]
    h = torch.relu(x @ W + layer.bias)
    torch.nn.functional.cross_entropy(model[2](h), y).backward()
    redistribute(model, None, fraction=0.2, algorithm="gradient", batch=(x, y),
                 loss_fn=torch.nn.functional.cross_entropy)  # fmt: skip
    grown = set(_edges(layer)) - old
    g = W.grad.abs().numpy()
    absent = sorted((g[r, c], (r, c)) for r in range(20) for c in range(16) if (r, c) not in old)
    want = {e for _, e in absent[-len(grown) :]}
    assert grown == want


def test_training_through_to_torch_matches_graphnn_train():
    """Digits, the default 64-300-100-10 at density 0.1, the same initial network and
    settings (Adam 3e-3, batch 64, 30 epochs): test accuracy within 1 point, over two seeds."""
    from graphnn.torch import to_torch
    from graphnn.training import SparseMLP
    from graphnn.training.data import load_dataset
    from graphnn.training.trainer import TrainConfig, fit

    data = load_dataset("digits", seed=0)
    X, y = torch.tensor(data.X_train), torch.tensor(data.y_train)
    gaps = []
    for seed in (0, 1):
        cfg = TrainConfig(seed=seed)
        ours = SparseMLP([64, 300, 100, 10], density=0.1, dtype="float32").build(seed)
        model = to_torch(ours.to_network())[:-1]  # logits: the loss applies the softmax
        fit(ours, data, cfg)
        opt = torch.optim.Adam(model.parameters(), cfg.lr)
        g = torch.Generator().manual_seed(seed)
        for _ in range(cfg.epochs):
            perm = torch.randperm(len(y), generator=g)
            for s in range(0, len(y), cfg.batch_size):
                batch = perm[s : s + cfg.batch_size]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
                opt.step()
        theirs = model(torch.tensor(data.X_test)).argmax(1).numpy()
        gaps.append(
            (theirs == data.y_test).mean() - (ours.predict(data.X_test) == data.y_test).mean()
        )
    assert abs(np.mean(gaps)) <= 0.01, gaps


def test_a_layer_without_bias_and_a_frozen_input_on_the_backend_path():
    W = _weight((12, 6), 0.4, 3)
    plain = SparseLinear(12, 6, weight=W, bias=False, dtype=torch.float64)
    ref = SparseLinear(12, 6, weight=W, bias=False, dtype=torch.float64, backend="reference")
    x = torch.randn(5, 12, dtype=torch.float64)  # no gradient wanted for x
    for layer in (plain, ref):
        (layer(x) ** 2).sum().backward()
    np.testing.assert_allclose(ref.values.grad.numpy(), plain.values.grad.numpy(), rtol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for PyTorch")
def test_cuda_tensors_run_the_cupy_products_and_agree_with_the_cpu():
    pytest.importorskip("cupy", reason="CuPy is not installed")
    W = _weight((300, 200), 0.05, 4, zeros=5)
    cpu = SparseLinear(300, 200, weight=W, dtype=torch.float64)
    gpu = SparseLinear(300, 200, weight=W, dtype=torch.float64).cuda()
    x = torch.randn(64, 300, dtype=torch.float64)
    xg = x.cuda().requires_grad_(True)
    x.requires_grad_(True)
    (cpu(x) ** 2).sum().backward()
    (gpu(xg) ** 2).sum().backward()
    for a, b in ((cpu.values.grad, gpu.values.grad), (cpu.bias.grad, gpu.bias.grad),
                 (x.grad, xg.grad)):  # fmt: skip
        np.testing.assert_allclose(b.cpu().numpy(), a.numpy(), rtol=1e-9, atol=1e-12)
