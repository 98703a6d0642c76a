"""Hostile input made in the tests: damaged network arrays, non-finite values, fields of the
wrong type. Each must give one error line naming the file (exit 2 on the command line), never
a crash of the interpreter, a traceback or an answer."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from graphnn import Network
from graphnn.cli import main as cli
from graphnn.errors import GraphnnError
from graphnn.io import load, save_npz


def _one_line(capsys, rc, *words, progress=False):
    """The error: exit 2, one line (after the run's progress lines when ``progress``)."""
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 or progress, err
    err = err.splitlines()[-1]
    assert err.startswith("graphnn"), err
    for w in words:
        assert w in err, err
    return err


@pytest.fixture
def npz(tmp_path):
    """A saved 6-5-4 network and a function writing a copy with some arrays replaced."""
    rng = np.random.default_rng(0)
    layers = [
        sp.random(6, 5, density=0.5, random_state=1),
        sp.random(5, 4, density=0.5, random_state=2),
    ]
    net = Network(layers, biases=[rng.standard_normal(5), rng.standard_normal(4)])
    path = tmp_path / "net.npz"
    save_npz(net, path)

    def damaged(**arrays):
        with np.load(path) as z:
            parts = {k: z[k] for k in z.files}
        parts.update(arrays)
        out = tmp_path / "damaged.npz"
        np.savez_compressed(out, **parts)
        return out

    damaged.net = net
    return damaged


def _indices(npz, bump):
    with np.load(npz()) as z:
        indices = z["layer0_indices"].copy()
    bump(indices)
    return indices


DAMAGE = {
    "index past the width": lambda f: {
        "layer0_indices": _indices(f, lambda a: a.__setitem__(0, 5))
    },
    "negative index": lambda f: {"layer0_indices": _indices(f, lambda a: a.__setitem__(-1, -1))},
    "indptr not monotone": lambda f: {"layer0_indptr": np.array([0, 3, 1, 5, 6, 8, 15])},
    "indptr past the data": lambda f: {"layer0_indptr": np.array([0, 3, 4, 5, 6, 8, 40])},
    "indptr too short": lambda f: {"layer0_indptr": np.array([0, 15])},
    "float indices": lambda f: {"layer0_indices": _indices(f, lambda a: None).astype(float)},
    "NaN weight": lambda f: {"layer1_data": np.full(10, np.nan)},
    "infinite bias": lambda f: {"bias1": np.array([1.0, np.inf, 0.0, 0.0])},
    "complex weights": lambda f: {"layer1_data": np.ones(10, complex)},
    "sizes 0-d": lambda f: {"sizes": np.array(6)},
    "sizes negative": lambda f: {"sizes": np.array([6, -5, 4])},
    "activations 0-d": lambda f: {"activations": np.array("relu")},
    "metadata a list": lambda f: {"metadata": np.array("[1, 2]")},
    "metadata not JSON": lambda f: {"metadata": np.array("{oops")},
    "dtype unknown": lambda f: {"dtype": np.array("int8")},
    "format_version text": lambda f: {"format_version": np.array("one")},
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_npz_is_refused_by_name(npz, case):
    with np.load(npz()) as z:  # the fixture's network really has these shapes
        assert z["layer0_indptr"].size == 7 and z["layer1_data"].size == 10
    path = npz(**DAMAGE[case](npz))
    with pytest.raises(GraphnnError, match="damaged.npz"):
        load(path)


@pytest.mark.parametrize("case", ["index past the width", "indptr not monotone", "NaN weight"])
@pytest.mark.parametrize(
    "argv",
    [["topo", "analyze", "{f}"], ["convert", "{f}", "{out}"], ["evaluate", "{f}"]],
)
def test_damaged_npz_on_the_command_line(npz, tmp_path, capsys, case, argv):
    path = npz(**DAMAGE[case](npz))
    argv = [a.format(f=path, out=tmp_path / "out.npz") for a in argv]
    _one_line(capsys, cli(argv), "damaged.npz")
    assert not (tmp_path / "out.npz").exists()


def test_a_damaged_index_never_crashes_the_interpreter(npz, tmp_path):
    """The case that used to end in a segmentation fault, in a child process so that a crash
    would show as its exit status."""
    path = npz(layer0_indices=_indices(npz, lambda a: a.__setitem__(0, 10**6)))
    argv = [sys.executable, "-m", "graphnn.cli", "topo", "analyze", str(path)]
    run = subprocess.run(argv, capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert "outside 0..4" in run.stderr


def test_network_refuses_damaged_arrays_before_scipy_reads_them():
    W = sp.csr_array((np.ones(2), np.array([0, 7]), np.array([0, 1, 2])), shape=(2, 3))
    with pytest.raises(GraphnnError, match="layer 1: index 7 of entry 1 is outside 0..2"):
        Network([W])
    C = sp.csc_array((np.ones(2), np.array([0, 1]), np.array([0, 2, 1, 2])), shape=(2, 3))
    with pytest.raises(GraphnnError, match="indptr decreases"):
        Network([C])
    with pytest.raises(GraphnnError, match="not finite"):
        Network([np.array([[1.0, np.nan]])])
    with pytest.raises(GraphnnError, match="bias"):
        Network([np.eye(2)], biases=[["a", "b"]])


MANIFEST_DAMAGE = {
    "n_layers a string": {"n_layers": "2"},
    "n_layers a float": {"n_layers": 2.5},
    "biases not numbers": {"biases": [["a"] * 5, [0] * 4]},
    "biases non-finite": {"biases": [[0] * 5, [float("nan")] * 4]},
    "activations a number": {"activations": 3},
    "metadata a list": {"metadata": [1]},
    "dtype a list": {"dtype": ["float32"]},
    "format_version a string": {"format_version": "1"},
}


@pytest.mark.parametrize("case", sorted(MANIFEST_DAMAGE))
@pytest.mark.parametrize("fmt", ["mtx", "tsv"])
def test_network_json_fields_are_typed(npz, tmp_path, capsys, case, fmt):
    net = npz.net if fmt == "mtx" else Network([np.eye(5)] * 2, biases=[np.zeros(5)] * 2)
    folder = tmp_path / fmt
    from graphnn.io import save

    save(net, folder, fmt)
    manifest = json.loads((folder / "network.json").read_text())
    manifest.update(MANIFEST_DAMAGE[case])
    (folder / "network.json").write_text(json.dumps(manifest))
    with pytest.raises(GraphnnError, match="network.json"):
        load(folder)
    _one_line(capsys, cli(["topo", "analyze", str(folder)]), "network.json")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A one-epoch training checkpoint, and a function writing a copy with members replaced
    or removed (``None``)."""
    folder = tmp_path_factory.mktemp("ck")
    assert cli(["train", "--epochs", "1", "--checkpoint", str(folder / "ck")]) == 0
    path = folder / "ck" / "checkpoint.npz"

    def damaged(name="bad", **members):
        with np.load(path) as z:
            parts = {k: z[k] for k in z.files}
        for key, value in members.items():
            key = key.replace("__", "/")
            if value is None:
                del parts[key]
            else:
                parts[key] = value
        out = folder / name / "checkpoint.npz"
        out.parent.mkdir(exist_ok=True)
        np.savez(out, **parts)
        return out

    return damaged


CHECKPOINT_DAMAGE = {
    "identity a list": {"identity": np.array("[1]")},
    "identity sizes text": {"identity": np.array('{"sizes": "64-10"}')},
    "history an object": {"history": np.array('{"a": 1}')},
    "epoch negative": {"epoch": np.array(-1)},
    "epoch a float": {"epoch": np.array(1.5)},
    "weights NaN": {"model__L0_values": None},  # replaced below with NaN of the right size
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_DAMAGE))
def test_damaged_checkpoint_is_refused_by_every_reader(checkpoint, capsys, case):
    members = dict(CHECKPOINT_DAMAGE[case])
    if case == "weights NaN":
        with np.load(checkpoint()) as z:
            members["model__L0_values"] = np.full_like(z["model/L0_values"], np.nan)
    path = checkpoint(case.replace(" ", "-"), **members)
    with pytest.raises(GraphnnError, match=case.replace(" ", "-")):
        load(path)
    _one_line(capsys, cli(["evaluate", str(path)]), str(path.parent))
    rc = cli(["train", "--epochs", "2", "--checkpoint", str(path.parent), "--resume"])
    _one_line(capsys, rc, str(path.parent), progress=True)


def test_resuming_refuses_missing_optimiser_state(checkpoint, capsys):
    path = checkpoint("no-state", optim__1_0_v=None)
    rc = cli(["train", "--epochs", "2", "--checkpoint", str(path.parent), "--resume"])
    _one_line(capsys, rc, "optim/1_0_v", "missing", progress=True)
    intact = checkpoint("intact")
    assert cli(["train", "--epochs", "2", "--checkpoint", str(intact.parent), "--resume"]) == 0


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    folder = tmp_path_factory.mktemp("problem") / "p"
    argv = ["challenge", "generate", "--neurons", "1024", "--nlayers", "2", "--images", "20"]
    assert cli([*argv, "--out", str(folder)]) == 0
    return folder


PROBLEM_DAMAGE = {
    "images a string": {"images": "20"},
    "layers a float": {"layers": 2.0},
    "neurons zero": {"neurons": 0},
    "bias a list": {"bias": [-0.3]},
    "sha256 a list": {"sha256": ["abc"]},
    "sha256 digest a number": {"sha256": {"images.tsv": 5}},
    "layer_files a string": {"layer_files": "yes"},
}


@pytest.mark.parametrize("case", sorted(PROBLEM_DAMAGE))
def test_problem_json_fields_are_typed(problem, tmp_path, capsys, case):
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(problem, copy)
    manifest = json.loads((copy / "problem.json").read_text())
    manifest.update(PROBLEM_DAMAGE[case])
    (copy / "problem.json").write_text(json.dumps(manifest))
    field = case.split()[0]
    rc = cli(["challenge", "run", "--problem", str(copy), "--out", str(tmp_path / "c.tsv")])
    _one_line(capsys, rc, "problem.json", field)
    assert not (tmp_path / "c.tsv").exists()


MTX_DAMAGE = {
    "complex field": ("complex", "1 1 1.0 2.0", "real numbers"),
    "integer beyond 64 bits": ("integer", "1 1 99999999999999999999999", "out of range"),
    "NaN value": ("real", "1 1 nan", "not finite"),
    "row past the shape": ("real", "3 1 1.0", "out of bounds"),
}


@pytest.mark.parametrize("case", sorted(MTX_DAMAGE))
def test_damaged_matrix_market_layer_names_the_file(tmp_path, capsys, case):
    field, entry, words = MTX_DAMAGE[case]
    folder = tmp_path / "net"
    folder.mkdir()
    text = f"%%MatrixMarket matrix coordinate {field} general\n2 2 1\n{entry}\n"
    (folder / "layer001.mtx").write_text(text)
    _one_line(capsys, cli(["topo", "analyze", str(folder)]), "layer001.mtx", words)


def _tree(folder):
    """Every file under ``folder`` with its bytes, and every temporary beside it."""
    files = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    return files, sorted(p.name for p in folder.parent.glob(f".{folder.name}*"))


@pytest.mark.parametrize("fmt", ["mtx", "tsv"])
def test_a_failed_overwrite_leaves_the_earlier_folder_exactly(npz, tmp_path, monkeypatch, fmt):
    from graphnn.io import _mtx, save, tsv

    earlier = Network([sp.random(8, 8, density=0.3, random_state=k) for k in range(3)])
    folder = tmp_path / "net"
    save(earlier, folder, fmt)
    before = _tree(folder)
    module, name = (_mtx.scipy.io, "mmwrite") if fmt == "mtx" else (tsv, "write_layer")
    real, calls = getattr(module, name), []

    def fail_on_the_second(*a, **k):  # a disk that fills half-way
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(module, name, fail_on_the_second)
    longer = Network([sp.random(8, 8, density=0.5, random_state=9 + k) for k in range(4)])
    with pytest.raises(OSError):
        save(longer, folder, fmt)
    assert _tree(folder) == before
    assert load(folder).nnz == earlier.nnz
    monkeypatch.setattr(module, name, real)
    shorter = Network([sp.random(8, 8, density=0.5, random_state=20)])
    save(shorter, folder, fmt)  # an overwrite with fewer layers leaves none of the earlier
    assert load(folder).nnz == shorter.nnz and _tree(folder)[1] == []


def test_a_folder_of_other_files_is_not_replaced(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"jpeg")
    net = tmp_path / "net.npz"
    save_npz(Network([np.eye(3)]), net)
    rc = cli(["convert", str(net), str(folder), "--format", "mtx", "--overwrite"])
    _one_line(capsys, rc, "holiday.jpg")
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"]


def test_sigterm_during_generate_leaves_no_temporary_and_the_earlier_problem(tmp_path):
    import signal
    import time

    out = tmp_path / "p"
    base = [sys.executable, "-m", "graphnn.cli", "challenge", "generate", "--neurons", "1024"]
    assert (
        subprocess.run([*base, "--nlayers", "2", "--images", "10", "--out", str(out)]).returncode
        == 0
    )
    before = _tree(out)
    run = subprocess.Popen([*base, "--nlayers", "480", "--images", "2000", "--out", str(out),
                            "--overwrite"], stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(4)  # into the writing
    run.send_signal(signal.SIGTERM)
    err = run.communicate(timeout=60)[1]
    assert run.returncode != 0 and "Traceback" not in err, err
    assert _tree(out) == before


@pytest.fixture
def live_pid():
    """The pid of another live process (a sleeping child)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child.pid
    child.kill()
    child.wait()


def _writers(tmp_path, problem):
    """Commands and the output each writes."""
    net = tmp_path / "net.npz"
    save_npz(Network([sp.random(64, 64, density=0.1, random_state=0)]), net)
    return {
        "challenge run": (["challenge", "run", "--problem", str(problem), "--out", "{out}"],
                          "c.tsv"),
        "challenge generate": (["challenge", "generate", "--neurons", "1024", "--nlayers", "1",
                                "--images", "5", "--out", "{out}"], "gen"),
        "topo generate": (["topo", "generate", "ertl", "--layers", "8-8", "--density", "0.5",
                           "--out", "{out}"], "t.npz"),
        "convert": (["convert", str(net), "{out}", "--format", "mtx"], "m"),
        "train": (["train", "--epochs", "1", "--limit", "200", "--checkpoint", "{out}"], "ck"),
    }  # fmt: skip


@pytest.mark.parametrize(
    "command", ["challenge run", "challenge generate", "topo generate", "convert", "train"]
)
def test_one_writer_per_output(tmp_path, capsys, problem, live_pid, command):
    argv, name = _writers(tmp_path, problem)[command]
    out = tmp_path / name
    argv = [a.format(out=out) for a in argv]
    (tmp_path / f".{name}.claim").write_text(str(live_pid))  # another run writes it now
    _one_line(capsys, cli(argv), f"pid {live_pid}")
    assert not out.exists()
    (tmp_path / f".{name}.claim").write_text("999999999")  # a killed run's claim: taken over
    assert cli(argv) == 0, capsys.readouterr().err
    assert out.exists() and not (tmp_path / f".{name}.claim").exists()


def test_outputs_never_lie_inside_an_input_folder(tmp_path, capsys, problem, checkpoint):
    import shutil

    prob = tmp_path / "prob"
    shutil.copytree(problem, prob)
    ck = checkpoint("inside").parent
    layer = prob / "neuron1024" / "n1024-l2.tsv"
    images = prob / "sparse-images-1024.tsv"
    before = {p: p.read_bytes() for p in [*prob.rglob("*.tsv"), ck / "checkpoint.npz"]}
    cases = [
        (["challenge", "run", "--problem", str(prob), "--out", str(layer), "--overwrite"],
         "lies inside"),
        (["challenge", "run", "--network", str(prob), "--images", str(images), "--out",
          str(layer), "--overwrite"], "--network"),
        (["convert", str(ck), str(ck / "checkpoint.npz"), "--overwrite"], "IN"),
        (["prune", "--from", str(ck), "--sparsity", "0.5", "--out", str(ck / "checkpoint.npz"),
          "--overwrite"], "--from"),
        (["train", "--epochs", "1", "--checkpoint", str(ck), "--resume", "--metrics-out",
          str(ck / "checkpoint.npz"), "--overwrite"], "--checkpoint"),
        (["convert", str(ck / "checkpoint.npz"), str(tmp_path), "--format", "mtx", "--overwrite"],
         "holds"),
    ]  # fmt: skip
    for argv, words in cases:
        _one_line(capsys, cli(argv), words, progress=argv[0] == "train")
    assert {p: p.read_bytes() for p in before} == before


def _challenge_folder(tmp_path, n_layers=3):
    from graphnn.io import save

    folder = tmp_path / "net"
    save(Network([sp.random(16, 16, density=0.3, random_state=k) for k in range(n_layers)]),
         folder, "tsv")  # fmt: skip
    (folder / "network.json").unlink()  # a bare challenge folder: its files say it all
    return folder


def _ambiguous(tmp_path, case):
    """A challenge folder or archive damaged by ``case``; the file names the error must give."""
    import tarfile

    folder = _challenge_folder(tmp_path)
    layer1 = (folder / "n16-l1.tsv").read_bytes()
    if case == "two formats for one layer":
        (folder / "n16-l1.mtx").write_text(
            "%%MatrixMarket matrix coordinate real general\n16 16 0\n"
        )
        return folder, ["n16-l1.mtx", "n16-l1.tsv"]
    if case == "two layouts":
        (folder / "neuron16").mkdir()
        (folder / "neuron16" / "n16-l1.tsv").write_bytes(layer1)
        return folder, ["n16-l1.tsv", "neuron16"]
    if case == "stray layer beyond a gap":
        (folder / "n16-l5.tsv").write_bytes(layer1)
        return folder, ["n16-l5.tsv", "layer 4"]
    if case == "empty layer file":
        (folder / "n16-l2.tsv").write_bytes(b"")
        return folder, ["n16-l2.tsv", "empty"]
    archive = tmp_path / "net.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for k in (1, 2, 3):
            tar.add(folder / f"n16-l{k}.tsv", f"neuron16/n16-l{k}.tsv")
        tar.add(folder / "n16-l2.tsv", "n16-l2.tsv")  # case: two members for one layer
    return archive, ["n16-l2.tsv", "layer 2"]


AMBIGUOUS = ["two formats for one layer", "two layouts", "stray layer beyond a gap",
             "empty layer file", "two archive members for one layer"]  # fmt: skip


@pytest.mark.parametrize("case", AMBIGUOUS)
def test_nothing_is_guessed(tmp_path, capsys, case):
    path, words = _ambiguous(tmp_path, case)
    with pytest.raises(GraphnnError) as e:
        load(path)
    assert all(w in str(e.value) for w in words), e.value
    _one_line(capsys, cli(["topo", "analyze", str(path)]), *words)


def test_a_manifest_fixes_the_layer_count(tmp_path, capsys, problem):
    import shutil

    folder = _challenge_folder(tmp_path)
    assert load(folder).sizes == [16] * 4  # three layers, no manifest: all three
    prob = tmp_path / "prob"
    shutil.copytree(problem, prob)
    extra = prob / "neuron1024" / "n1024-l3.tsv"
    extra.write_bytes((prob / "neuron1024" / "n1024-l2.tsv").read_bytes())
    rc = cli(["challenge", "run", "--problem", str(prob), "--out", str(tmp_path / "c.tsv")])
    _one_line(capsys, rc, "n1024-l3.tsv", "not part of the problem")
    with pytest.raises(GraphnnError, match="describes 2 layers"):
        load(prob)


def _official_run(shared_data, *flags):
    network = shared_data / "neuron1024.tar.gz"
    images = shared_data / "sparse-images-1024_subset.tsv"
    return ["challenge", "run", "--network", str(network), "--images", str(images),
            "--nlayers", "3", *flags]  # fmt: skip


@pytest.mark.parametrize(
    "flags,words",
    [(["--threads", "0"], "--threads"), (["--memory-limit", "1K"], "--memory-limit")],
)
def test_settings_are_checked_with_workers_too(shared_data, capsys, flags, words):
    pytest.importorskip("dask.distributed")
    _one_line(capsys, cli(_official_run(shared_data, "--workers", "1", *flags)), words)


def test_a_server_that_does_not_speak_dask_ends_in_bounded_time(shared_data, capsys, monkeypatch):
    import socket
    import threading
    import time

    pytest.importorskip("dask.distributed")
    import challenge.distributed

    monkeypatch.setattr(challenge.distributed, "CONNECT_SECONDS", 1.0)
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    t = time.perf_counter()
    rc = cli(_official_run(shared_data, "--scheduler", address))
    assert time.perf_counter() - t < 30
    _one_line(capsys, rc, "--scheduler", "cannot connect")
    server.close()


def test_inflated_and_declared_sizes_beyond_memory_are_refused(tmp_path, capsys, monkeypatch):
    import gzip

    import graphnn.system

    monkeypatch.setattr(graphnn.system, "available_memory", lambda: 64 << 20)  # 64 MiB here
    bomb = tmp_path / "images.tsv.gz"
    bomb.write_bytes(gzip.compress(b"1\t1\t1\n" * (12 << 20)))  # 200 kB, 72 MiB inflated
    from graphnn.io.tsv import read_images

    with pytest.raises(GraphnnError, match="images.tsv.gz: its .* pixels so far would take"):
        read_images(bomb, 1024)
    bomb.write_bytes(gzip.compress(b"1\t1\t1\n" + b" " * (80 << 20)))  # one endless line
    with pytest.raises(GraphnnError, match="images.tsv.gz: a line longer than 1 MiB"):
        read_images(bomb, 1024)
    huge = tmp_path / "net"
    huge.mkdir()
    (huge / "layer001.mtx").write_text(
        "%%MatrixMarket matrix coordinate real general\n1000000000000 2 1\n1 1 1.0\n"
    )
    _one_line(capsys, cli(["topo", "analyze", str(huge)]), "layer001.mtx", "declared shape")
    far = tmp_path / "far.tsv"
    far.write_text("1\t1\t1.0\n2000000000\t1\t1.0\n")
    with pytest.raises(GraphnnError, match="far.tsv: line 2: image id 2000000000"):
        read_images(far, 1024)


def test_datasets_refuse_non_finite_pixels_and_fractional_labels(tmp_path, capsys):
    import struct

    def idx(path, array, code):
        header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(
            f">{array.ndim}I", *array.shape
        )
        path.write_bytes(header + array.astype(array.dtype.newbyteorder(">")).tobytes())

    rng = np.random.default_rng(0)
    images = rng.random((20, 28, 28)).astype(np.float32)
    images[3, 5, 5] = np.nan
    for stem, x in (("train-images-idx3-ubyte", images), ("t10k-images-idx3-ubyte", images)):
        idx(tmp_path / stem, x, 0x0D)
    labels = rng.integers(0, 10, 20).astype(np.float32)
    for stem in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        idx(tmp_path / stem, labels, 0x0D)
    argv = ["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1"]
    _one_line(capsys, cli(argv), "image 3", "not finite", progress=True)
    images[3, 5, 5] = 0.5
    for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        idx(tmp_path / stem, images, 0x0D)
    labels[7] = 3.5
    for stem in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        idx(tmp_path / stem, labels, 0x0D)
    _one_line(capsys, cli(argv), "label 3.5", progress=True)


def test_the_adversarial_sweep_passes(shared_data):
    """``bench/adversarial.py``: every case through the command line in a child process."""
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "adversarial.py"
    argv = [sys.executable, str(script), "--data", str(shared_data)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:]


def test_generate_checks_its_engine_settings_before_the_work(tmp_path, capsys):
    argv = ["challenge", "generate", "--neurons", "65536", "--nlayers", "1920", "--images",
            "60000", "--no-layers", "--out", str(tmp_path / "p")]  # fmt: skip
    _one_line(capsys, cli([*argv, "--memory-limit", "1K"]), "--memory-limit", "1 MiB")
    _one_line(capsys, cli([*argv, "--threads", "0"]), "--threads")
    assert not (tmp_path / "p").exists()
