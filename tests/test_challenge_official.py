"""The official 1024-neuron, 120-layer network on the first 1,200 official images."""

import numpy as np
import pytest

from challenge.inference import infer
from challenge.io import iter_layers, read_images, read_layers, read_truth
from graphnn.errors import BackendUnavailable
from topologies.radixnet import radixnet

CPU_AND_GPU = ["scipy", "graphblas", pytest.param("cupy", marks=pytest.mark.gpu)]


@pytest.fixture(scope="module")
def official(request):
    from .conftest import SHARED

    if not (SHARED / "neuron1024.tar.gz").exists():
        pytest.skip(f"official challenge data not found at {SHARED}")
    layers = read_layers(SHARED / "neuron1024.tar.gz", 1024, 120)
    truth = read_truth(SHARED / "neuron1024-l120-categories.tsv")
    return SHARED, layers, truth[truth <= 1200]


def test_truth_files_agree(official):
    data, _, subset_truth = official
    assert subset_truth.size == 19
    np.testing.assert_array_equal(
        read_truth(data / "neuron1024-l120-categories_subset.mtx"), subset_truth
    )


@pytest.mark.parametrize(
    "images", ["sparse-images-1024_subset.tsv", "sparse-images-1024_subset.mtx"]
)
@pytest.mark.parametrize("backend", CPU_AND_GPU)
def test_official_subset_gives_official_truth(official, backend, images):
    data, layers, truth = official
    Y0 = read_images(data / images, 1024)
    assert Y0.shape == (1200, 1024)
    try:
        result = infer(layers, Y0, bias=-0.3, backend=backend)
    except BackendUnavailable as e:
        pytest.skip(str(e))
    np.testing.assert_array_equal(result.categories, truth)
    assert result.edges == 120 * 32 * 1024


def test_official_layers_are_the_radixnet_and_its_permutations(official):
    _, layers, _ = official
    radix = radixnet([2] * 6, kron=[16] * 7)
    for k in range(6):
        assert (layers[k] != radix[k] / 16).nnz == 0
    for k in range(6, 120):
        rows = {
            tuple(layers[k].indices[a:b])
            for a, b in zip(layers[k].indptr[:-1], layers[k].indptr[1:])
        }
        base = layers[k % 6]
        assert rows == {tuple(base.indices[a:b]) for a, b in zip(base.indptr[:-1], base.indptr[1:])}


def test_streaming_from_directory_equals_archive(official, tmp_path):
    from challenge.io import write_layer

    _, layers, _ = official
    (tmp_path / "neuron1024").mkdir()
    for k, W in enumerate(layers[:3], start=1):
        write_layer(W, tmp_path / "neuron1024" / f"n1024-l{k}.tsv")
    for a, b in zip(iter_layers(tmp_path, 1024, 3), layers):
        assert (a != b).nnz == 0


def test_column_classes_on_the_official_network(official):
    from challenge.batched import infer_batched

    data, layers, truth = official
    Y0 = read_images(data / "sparse-images-1024_subset.tsv", 1024)
    on, off = (infer_batched(layers, Y0, -0.3, classes=flag) for flag in (True, False))
    np.testing.assert_array_equal(on.categories, truth)
    np.testing.assert_array_equal(off.categories, truth)
    assert on.live_rows == off.live_rows and on.saturated_rows == off.saturated_rows
    # kron(ones(16, 16), R) with rows permuted: 64 distinct columns in 100 layers, 32 in the
    # 20 whose radix-2 layer R repeats its columns (counted on the official files)
    assert sorted(on.column_classes) == [32] * 20 + [64] * 100


def test_saturation_stop_can_be_turned_off_with_the_same_categories(official):
    data, layers, truth = official
    Y0 = read_images(data / "sparse-images-1024_subset.tsv", 1024)
    on = infer(layers, Y0, bias=-0.3)
    off = infer(layers, Y0, bias=-0.3, saturation_stop=False)
    np.testing.assert_array_equal(off.categories, truth)
    assert on.saturated_rows[-1] == truth.size and off.saturated_rows[-1] == 0
    # without the stop every category row is computed through all 120 layers
    assert off.live_rows[-1] == truth.size and off.shortcuts()["last_layer_computed"] == 120
