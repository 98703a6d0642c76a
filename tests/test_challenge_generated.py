"""Generated problems against a brute-force dense reference, on every backend and over Dask."""

import json

import numpy as np
import pytest

from challenge.generate import digit_images, generate_problem, layer_source, write_problem
from challenge.inference import infer
from challenge.io import read_images, read_layers, read_truth
from graphnn.cli.challenge import main as challenge_main
from graphnn.errors import BackendUnavailable

N, L, K, SEED = 64, 12, 150, 5


def dense_reference(layers, Y0, bias, ymax=32.0):
    """The challenge rule written out on dense arrays, row by row."""
    Y = Y0.toarray()
    for W in layers:
        Z = Y @ W.toarray()
        Z = np.where(Z != 0, Z + bias, 0.0)
        Y = np.minimum(np.maximum(Z, 0), ymax)
    return np.flatnonzero(Y.sum(axis=1)) + 1


@pytest.fixture(scope="module")
def problem():
    return generate_problem(N, L, K, seed=SEED, bias=-0.2)


def test_generated_truth_matches_dense_reference(problem):
    ref = dense_reference(problem.layers(), problem.images, problem.bias)
    np.testing.assert_array_equal(problem.truth, ref)
    assert 0 < ref.size < K  # some images survive and some die: the check can fail


@pytest.mark.parametrize(
    "backend", ["scipy", "graphblas", pytest.param("cupy", marks=pytest.mark.gpu)]
)
def test_every_backend_agrees(problem, backend):
    try:
        r = infer(problem.layers(), problem.images, problem.bias, backend=backend)
    except BackendUnavailable as e:
        pytest.skip(str(e))
    np.testing.assert_array_equal(r.categories, problem.truth)


def test_dask_local_cluster_agrees(problem):
    pytest.importorskip("dask.distributed")
    from challenge.distributed import infer_distributed

    r = infer_distributed(layer_source(N, L, SEED), problem.images, problem.bias, workers=2)
    np.testing.assert_array_equal(r.categories, problem.truth)
    assert r.edges == sum(W.nnz for W in problem.layers())


def test_same_seed_same_problem():
    a = generate_problem(N, 8, 40, seed=3, bias=-0.2)
    b = generate_problem(N, 8, 40, seed=3, bias=-0.2)
    c = generate_problem(N, 8, 40, seed=4, bias=-0.2)
    assert (a.images != b.images).nnz == 0
    assert all((x != y).nnz == 0 for x, y in zip(a.layers(), b.layers()))
    assert any((x != y).nnz for x, y in zip(a.layers(), c.layers()))


def test_images_are_binary_and_sized(problem):
    Y = digit_images(10, 1024, seed=1)
    assert Y.shape == (10, 1024) and set(np.unique(Y.data)) == {1.0}
    assert 0.03 < Y.nnz / Y.shape[0] / 1024 < 0.3


def test_written_problem_reads_back_and_runs(problem, tmp_path, capsys):
    paths = write_problem(problem, tmp_path / "problem")
    layers = read_layers(paths["layers"], N, L)
    assert all((a != b).nnz == 0 for a, b in zip(layers, problem.layers()))
    assert (read_images(paths["images"], N) != problem.images).nnz == 0
    np.testing.assert_array_equal(read_truth(paths["truth"]), problem.truth)
    out = tmp_path / "cats.tsv"
    args = [
        "run",
        "--network",
        str(tmp_path / "problem"),
        "--images",
        str(paths["images"]),
        "--neurons",
        str(N),
        "--nlayers",
        str(L),
        "--bias",
        "-0.2",
        "--truth",
        str(paths["truth"]),
        "--out",
        str(out),
        "--json",
        "--plot",
        str(tmp_path / "rows.png"),
    ]
    assert challenge_main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["valid"] is True and summary["categories"] == problem.truth.size
    assert summary["edges"] == sum(W.nnz for W in layers)
    assert summary["edges_per_second"] == pytest.approx(K * summary["edges"] / summary["seconds"])
    # the network's conversion (classes, saturation tests) is timed apart from the inference
    assert summary["prepare_seconds"] > 0 and summary["seconds"] > 0
    np.testing.assert_array_equal(np.loadtxt(out, dtype=int, ndmin=1), problem.truth)
    assert (tmp_path / "rows.png").read_bytes()[:4] == b"\x89PNG"
    # the same layers regenerated from the seed instead of read; the earlier output is kept
    # unless --overwrite is given
    gen = ["run", "--generated", str(SEED), *args[3:]]
    from graphnn.cli import main as cli

    assert cli(["challenge", *gen]) == 2
    assert "exists" in capsys.readouterr().err
    assert challenge_main([*gen, "--overwrite"]) == 0


def test_truth_mismatch_exits_1_and_names_ids(problem, tmp_path, capsys):
    paths = write_problem(problem, tmp_path)
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("".join(f"{i}\n" for i in problem.truth[1:]) + f"{K}\n")
    out = tmp_path / "cats.tsv"
    rc = challenge_main(
        [
            "run",
            "--generated",
            str(SEED),
            "--images",
            str(paths["images"]),
            "--neurons",
            str(N),
            "--nlayers",
            str(L),
            "--bias",
            "-0.2",
            "--truth",
            str(wrong),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert f"first: [{problem.truth[0]}]" in err
    assert not out.exists()


def test_dask_existing_scheduler_agrees(problem):
    distributed = pytest.importorskip("dask.distributed")
    from challenge.distributed import infer_distributed

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        r = infer_distributed(
            layer_source(N, L, SEED),
            problem.images,
            problem.bias,
            scheduler=cluster.scheduler_address,
        )
    np.testing.assert_array_equal(r.categories, problem.truth)


def test_dask_failures_are_errors_in_bounded_time(problem, capsys, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    from challenge.distributed import infer_distributed
    from graphnn.cli import main as cli
    from graphnn.errors import GraphnnError

    # a scheduler without workers: an error after worker_timeout, not a hang
    with distributed.LocalCluster(n_workers=0, dashboard_address=None) as cluster:
        t = __import__("time").perf_counter()
        with pytest.raises(GraphnnError, match="no worker joined within 2 s"):
            infer_distributed(
                layer_source(N, L, SEED), problem.images, problem.bias,
                scheduler=cluster.scheduler_address, worker_timeout=2,
            )  # fmt: skip
        assert __import__("time").perf_counter() - t < 30
    # a malformed address: one line, exit 2
    from challenge.io import write_images

    write_images(problem.images, tmp_path / "img.tsv")
    rc = cli(["challenge", "run", "--generated", "0", "--neurons", str(N), "--nlayers", "2",
              "--bias", "-0.2", "--images", str(tmp_path / "img.tsv"),
              "--scheduler", "notanaddress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "--scheduler notanaddress: cannot connect" in err


def test_default_images_have_the_official_statistics(shared_data):
    # on the official network: about 102 pixels per image and 1-6 % of images as categories
    # (official: 102.3 pixels, 3.0 % of 60,000 and 1.6 % of the first 1,200)
    layers = read_layers(shared_data / "neuron1024.tar.gz", 1024, 120)
    Y = digit_images(3000, 1024, seed=7)
    pixels = Y.nnz / Y.shape[0]
    share = infer(layers, Y, -0.3).categories.size / Y.shape[0]
    assert 0.75 * 102 < pixels < 1.25 * 102 and 0.01 < share < 0.06, (pixels, share)
    # laid out like the official images: column-major, so x = index // 32 varies less than y
    # within a digit taller than wide
    cols = Y.indices
    assert np.ptp(cols // 32) <= 31 and np.std(cols % 32) > np.std(cols // 32)


def test_generated_layers_are_the_official_construction(shared_data):
    from topologies.kronecker import challenge_layers

    official = read_layers(shared_data / "neuron1024.tar.gz", 1024, 12)
    generated = list(challenge_layers(1024, 12, seed=0))
    for k in range(6):  # the first cycle is the same matrix
        assert (official[k] != generated[k]).nnz == 0
    for k in range(6, 12):  # later layers: row permutations of their cycle position's base
        base_rows = {tuple(r.indices) for r in (official[k - 6][[i]] for i in range(1024))}
        for W in (official[k], generated[k]):
            assert {tuple(W[[i]].indices) for i in range(1024)} == base_rows
            assert (W.sum(axis=0) == official[k - 6].sum(axis=0)).all()
    # the gather used for the permutation is scipy's own row indexing
    rng = np.random.default_rng([0, 7])
    expected = generated[0][rng.permutation(1024)]
    assert (generated[6] != expected).nnz == 0
    assert not generated[6].data.flags.writeable  # values shared between permuted layers


def test_problem_without_layer_files_runs_from_its_seed(tmp_path, capsys):
    out = tmp_path / "p"
    rc = challenge_main(
        ["generate", "--neurons", "64", "--nlayers", "12", "--images", "120", "--bias", "-0.2",
         "--seed", "5", "--out", str(out), "--no-layers"]
    )  # fmt: skip
    assert rc == 0
    assert not (out / "neuron64").exists()
    manifest = json.loads((out / "problem.json").read_text())
    assert manifest["layer_files"] is False and set(manifest["sha256"]) == {
        "sparse-images-64.tsv",
        "neuron64-l12-categories.tsv",
    }
    capsys.readouterr()
    assert challenge_main(["run", "--problem", str(out), "--json", "--memory-limit", "4M"]) == 0
    summary = json.loads(capsys.readouterr().out)
    truth = read_truth(out / "neuron64-l12-categories.tsv")
    assert summary["valid"] is True and summary["categories"] == truth.size
    cut = summary["shortcuts"]
    assert cut["row_edges_official"] == 120 * summary["edges"]
    assert 0 < cut["row_edges_computed"] < cut["row_edges_official"]
    assert cut["rows_dropped_dead"] + cut["rows_stopped_saturated"] <= 120
    # the images changed after generation: refused, with the file named
    images = out / "sparse-images-64.tsv"
    images.write_text(images.read_text().replace("\t1\n", "\t2\n", 1))
    from graphnn.cli import main as cli

    assert cli(["challenge", "run", "--problem", str(out)]) == 2
    assert "sparse-images-64.tsv: changed since" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["lots", "0", "-2G"])
def test_memory_limit_must_be_a_size(value, tmp_path, capsys):
    from graphnn.cli import main as cli

    rc = cli(["challenge", "run", "--generated", "1", "--neurons", "64", "--nlayers", "2",
              "--images", str(tmp_path / "x.tsv"), f"--memory-limit={value}"])  # fmt: skip
    assert rc == 2 and "--memory-limit" in capsys.readouterr().err


def test_an_edited_manifest_is_refused(tmp_path, capsys):
    from graphnn.cli import main as cli

    out = tmp_path / "p"
    assert challenge_main(["generate", "--neurons", "64", "--nlayers", "6", "--images", "30",
                           "--bias", "-0.2", "--out", str(out), "--no-layers"]) == 0  # fmt: skip
    manifest = out / "problem.json"
    manifest.write_text(manifest.read_text().replace('"seed": 0', '"seed": 5'))
    capsys.readouterr()
    assert cli(["challenge", "run", "--problem", str(out)]) == 2
    assert "were edited after generation" in capsys.readouterr().err
