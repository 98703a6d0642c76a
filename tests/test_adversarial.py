"""Bad input and faults: a non-zero exit, one line naming the parameter or file, no traceback,
and no input or earlier output changed."""

import json
import os
import stat

import pytest

from graphnn.cli import main as cli
from graphnn.io import atomic_write


def _one_line_error(capsys, rc, expected_rc, *words):
    err = capsys.readouterr().err
    assert rc == expected_rc, err
    assert err.count("\n") == 1 and "Traceback" not in err
    for w in words:
        assert w in err
    return err


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["train", "--lr", "nan"], "--lr"),
        (["train", "--weight-decay", "inf"], "--weight-decay"),
        (["train", "--density", "nan"], "--density"),
        (["challenge", "run", "--network", "x", "--images", "y", "--bias", "nan"], "--bias"),
        (["topo", "generate", "random", "--layers", "4-4", "--epsilon", "inf", "--out", "a.npz"],
         "--epsilon"),
    ],
)  # fmt: skip
def test_non_finite_numbers_are_refused(capsys, argv, flag):
    _one_line_error(capsys, cli(argv), 2, flag, "finite")


def test_outputs_never_replace_inputs_or_earlier_outputs(shared_data, tmp_path, capsys):
    truth = tmp_path / "truth.tsv"
    truth.write_bytes((shared_data / "neuron1024-l120-categories.tsv").read_bytes())
    before = truth.read_bytes()
    run = ["challenge", "run", "--network", str(shared_data / "neuron1024.tar.gz"), "--images",
           str(shared_data / "sparse-images-1024_subset.tsv"), "--truth", str(truth)]  # fmt: skip
    _one_line_error(capsys, cli([*run, "--out", str(truth)]), 2, "is the input --truth")
    assert truth.read_bytes() == before
    _one_line_error(capsys, cli([*run, "--out", str(tmp_path / "no" / "c.tsv")]), 2, "not exist")
    earlier = tmp_path / "cats.tsv"
    earlier.write_text("earlier run\n")
    _one_line_error(capsys, cli([*run, "--out", str(earlier)]), 2, "exists", "--overwrite")
    assert earlier.read_text() == "earlier run\n"


def test_checkpoints_are_resumed_or_replaced_only_when_asked(tmp_path, capsys):
    ck = tmp_path / "ck"
    assert cli(["train", "--epochs", "1", "--checkpoint", str(ck)]) == 0
    saved = (ck / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    rc = cli(["train", "--epochs", "1", "--lr", "0.01", "--checkpoint", str(ck)])
    _one_line_error(capsys, rc, 2, "--resume", "--overwrite")
    assert (ck / "checkpoint.npz").read_bytes() == saved
    rc = cli(["train", "--epochs", "1", "--checkpoint", str(tmp_path / "empty"), "--resume"])
    _one_line_error(capsys, rc, 2, "--resume", "no checkpoint.npz")


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f.bin") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o644


def test_settings_are_checked_before_the_data_loads(capsys):
    for argv, flag in [(["--lr", "-1"], "--lr"), (["--limit", "0"], "--limit"),
                       (["--epochs", "0"], "--epochs"), (["--alpha", "2"], "--alpha")]:  # fmt: skip
        err = _one_line_error(capsys, cli(["train", *argv]), 2, flag)
        assert "digits:" not in err  # the dataset summary was never printed


def test_a_damaged_checkpoint_is_one_line(tmp_path, capsys):
    ck = tmp_path / "ck"
    assert cli(["train", "--epochs", "1", "--checkpoint", str(ck)]) == 0
    data = bytearray((ck / "checkpoint.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (ck / "checkpoint.npz").write_bytes(bytes(data))
    capsys.readouterr()
    rc = cli(["train", "--epochs", "2", "--checkpoint", str(ck), "--resume"])
    _one_line_error(capsys, rc, 2, "checkpoint.npz")
    _one_line_error(capsys, cli(["evaluate", str(ck)]), 2, "checkpoint.npz")


def test_images_cut_short_or_with_a_stray_id_never_validate(shared_data, tmp_path, capsys):
    net, truth = shared_data / "neuron1024.tar.gz", shared_data / "neuron1024-l120-categories.tsv"
    subset = shared_data / "sparse-images-1024_subset.tsv"
    run = ["challenge", "run", "--network", str(net), "--truth", str(truth)]
    # the official subset against the full truth: only when asked to check those images
    _one_line_error(capsys, cli([*run, "--images", str(subset)]), 2, "--images-count 1200")
    assert cli([*run, "--images", str(subset), "--images-count", "1200"]) == 0
    capsys.readouterr()
    # a stray image id inflates the image count (and the rate): refused
    stray = tmp_path / "stray.tsv"
    stray.write_bytes(subset.read_bytes() + b"5000000\t1\t1\n")
    rc = cli(["challenge", "run", "--network", str(net), "--images", str(stray)])
    _one_line_error(capsys, rc, 2, "5,000,000", "--images-count")


def test_a_generated_problem_knows_its_image_count(tmp_path, capsys):
    out = tmp_path / "p"
    assert cli(["challenge", "generate", "--neurons", "1024", "--nlayers", "12", "--images",
                "300", "--out", str(out)]) == 0  # fmt: skip
    images = out / "sparse-images-1024.tsv"
    lines = images.read_bytes().splitlines(keepends=True)
    images.write_bytes(b"".join(lines[: len(lines) // 2]))  # cut at a line boundary
    capsys.readouterr()
    rc = cli(["challenge", "run", "--network", str(out / "neuron1024"), "--images", str(images),
              "--truth", str(out / "neuron1024-l12-categories.tsv")])  # fmt: skip
    # the digests in problem.json see the cut first; without them, the count it records does
    _one_line_error(capsys, rc, 2, "sparse-images-1024.tsv", "changed since it was generated")
    manifest = json.loads((out / "problem.json").read_text())
    del manifest["sha256"]["sparse-images-1024.tsv"]
    (out / "problem.json").write_text(json.dumps(manifest))
    rc = cli(["challenge", "run", "--network", str(out / "neuron1024"), "--images", str(images),
              "--truth", str(out / "neuron1024-l12-categories.tsv")])  # fmt: skip
    _one_line_error(capsys, rc, 2, "the problem has 300", "cut short")


def test_temporary_files_of_killed_runs_are_cleaned(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".f.bin.{dead}.abc123.tmp"
    stale.write_bytes(b"half")
    live = tmp_path / f".f.bin.{os.getpid()}.zzz.tmp"  # a write in progress: kept
    live.write_bytes(b"mine")
    with atomic_write(tmp_path / "f.bin") as f:
        f.write(b"x")
    assert not stale.exists() and live.exists()
    assert (tmp_path / "f.bin").read_bytes() == b"x"


def test_a_problem_folder_is_checked_file_by_file(tmp_path, capsys):
    out = tmp_path / "p"
    assert cli(["challenge", "generate", "--neurons", "1024", "--nlayers", "8", "--images",
                "200", "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    assert cli(["challenge", "run", "--problem", str(out), "--json"]) == 0
    assert '"valid": true' in capsys.readouterr().out
    layer = out / "neuron1024" / "n1024-l5.tsv"
    other = out / "neuron1024" / "n1024-l6.tsv"
    saved = layer.read_bytes()
    layer.write_bytes(other.read_bytes())  # a mixed problem: one layer from elsewhere
    _one_line_error(capsys, cli(["challenge", "run", "--problem", str(out)]), 2, "n1024-l5.tsv",
                    "changed since it was generated")  # fmt: skip
    layer.unlink()  # a partial problem
    _one_line_error(capsys, cli(["challenge", "run", "--problem", str(out)]), 2, "missing")
    layer.write_bytes(saved)
    assert cli(["challenge", "run", "--problem", str(out)]) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["radixnet", "--radices", "1000,1000,1000"],
        ["dense", "--layers", "100000-100000-100000"],
        ["random", "--layers", "1000000-1000000", "--density", "0.5"],
    ],
)
def test_sizes_beyond_memory_are_refused_before_allocating(tmp_path, capsys, argv):
    rc = cli(["topo", "generate", *argv, "--out", str(tmp_path / "n.npz")])
    _one_line_error(capsys, rc, 2, "GiB of memory available")
    assert not (tmp_path / "n.npz").exists()


def test_damaged_dataset_files_are_errors_not_substitutes(tmp_path, monkeypatch, capsys):
    import gzip

    monkeypatch.setenv("GRAPHNN_CACHE", str(tmp_path / "cache"))
    d = tmp_path / "mnist"
    d.mkdir()
    (d / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 5)  # truncated
    rc = cli(["train", "--dataset", "mnist", "--data-dir", str(d), "--epochs", "1"])
    _one_line_error(capsys, rc, 2, "train-images-idx3-ubyte")
    h = tmp_path / "higgs"
    h.mkdir()
    row = ["1"] + ["0.5"] * 28
    with gzip.open(h / "HIGGS.csv.gz", "wt") as f:
        f.write(",".join(row) + "\n" + ",".join(row[:5] + ["1e300"] + row[6:]) + "\n")
    rc = cli(["train", "--dataset", "higgs", "--data-dir", str(h), "--epochs", "1"])
    _one_line_error(capsys, rc, 2, "row 2", "float32")


def test_a_generated_problems_layers_are_checked_also_without_problem(tmp_path, capsys):
    out = tmp_path / "p"
    assert cli(["challenge", "generate", "--neurons", "1024", "--nlayers", "6", "--images",
                "100", "--out", str(out)]) == 0  # fmt: skip
    layers = out / "neuron1024"
    (layers / "n1024-l3.tsv").write_bytes((layers / "n1024-l4.tsv").read_bytes())
    capsys.readouterr()
    rc = cli(["challenge", "run", "--network", str(layers), "--images",
              str(out / "sparse-images-1024.tsv")])  # fmt: skip
    _one_line_error(capsys, rc, 2, "n1024-l3.tsv", "changed since it was generated")
