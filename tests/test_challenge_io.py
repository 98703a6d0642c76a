"""Malformed challenge files give one clear error naming the file and line."""

import gzip
import io
import tarfile

import numpy as np
import pytest
import scipy.sparse as sp

from challenge.io import read_images, read_layers, read_truth, write_images, write_layer
from graphnn import cli
from graphnn.cli.challenge import main as challenge_main
from graphnn.errors import FormatError, GraphnnError
from topologies.kronecker import challenge_layer

N = 64


def _layer_dir(tmp_path, n_layers=3, bad=None):
    """Write layers 1..n; ``bad`` = (k, text) replaces layer k's contents."""
    d = tmp_path / f"neuron{N}"
    d.mkdir()
    for k in range(1, n_layers + 1):
        write_layer(challenge_layer(N, k, seed=1), d / f"n{N}-l{k}.tsv")
    if bad is not None:
        (d / f"n{N}-l{bad[0]}.tsv").write_text(bad[1])
    return d


GOOD = "1\t1\t6.25e-02\n2\t1\t6.25e-02\n"
CASES = {
    "columns": ("1\t1\t0.0625\n2\t1\n", r"n64-l2\.tsv: line 2: expected 3 columns, got 2"),
    "number": ("1\t1\t0.0625\n2\tx\t0.0625\n", r"n64-l2\.tsv: line 2: 'x' is not a number"),
    "zero-based": ("1\t1\t0.0625\n0\t1\t0.0625\n", r"line 2: row id 0 is out of range 1\.\.64"),
    "range": ("1\t65\t0.0625\n", r"line 1: column id 65 is out of range 1\.\.64"),
    "fraction": ("1.5\t1\t0.0625\n", r"line 1: row id 1\.5 is out of range"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_layer_line_is_named(tmp_path, case):
    text, message = CASES[case]
    d = _layer_dir(tmp_path, bad=(2, text))
    with pytest.raises(FormatError, match=message):
        read_layers(d, N, 3)


def test_missing_layer_is_named(tmp_path):
    d = _layer_dir(tmp_path, n_layers=3)
    (d / f"n{N}-l2.tsv").unlink()
    with pytest.raises(FormatError, match=r"layer 2 \(n64-l2\.tsv\) is missing"):
        read_layers(d, N, 3)
    with pytest.raises(FormatError, match=r"layer 2 .* is missing, and 1 more"):
        read_layers(tmp_path, N, 4)


def _tar(tmp_path, n_layers):
    path = tmp_path / f"neuron{N}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for k in range(n_layers, 0, -1):  # reverse order: members arrive out of order
            buf = io.BytesIO()
            write_layer(challenge_layer(N, k, seed=1), tmp_path / "tmp.tsv")
            data = (tmp_path / "tmp.tsv").read_bytes()
            info = tarfile.TarInfo(f"neuron{N}/n{N}-l{k}.tsv")
            info.size = len(data)
            buf.write(data)
            buf.seek(0)
            tar.addfile(info, buf)
    return path


def test_archive_read_directly_in_layer_order(tmp_path):
    layers = read_layers(_tar(tmp_path, 4), N, 4)
    for k, W in enumerate(layers, start=1):
        assert (W != challenge_layer(N, k, seed=1)).nnz == 0


def test_truncated_archive(tmp_path):
    path = _tar(tmp_path, 4)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError, match=r"neuron64\.tar\.gz: corrupt or truncated archive"):
        read_layers(path, N, 4)


def test_archive_missing_layer(tmp_path):
    with pytest.raises(FormatError, match=r"layer 5 \(n64-l5\.tsv\) is missing"):
        read_layers(_tar(tmp_path, 4), N, 5)


def test_images_and_truth_errors(tmp_path):
    p = tmp_path / "sparse-images-64.tsv"
    p.write_text("1\t3\t1\n2\t65\t1\n")
    with pytest.raises(FormatError, match=r"sparse-images-64\.tsv: line 2: pixel id 65"):
        read_images(p, N)
    g = tmp_path / "sparse-images-64.tsv.gz"
    g.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(FormatError, match="not a readable gzip"):
        read_images(g, N)
    t = tmp_path / "truth.tsv"
    t.write_text("3\n0\n")
    with pytest.raises(FormatError, match=r"truth\.tsv: line 2: image id 0"):
        read_truth(t)


def test_images_gz_round_trip(tmp_path):
    from challenge.generate import digit_images

    Y = digit_images(20, N, seed=2)
    write_images(Y, tmp_path / "img.tsv.gz")
    with gzip.open(tmp_path / "img.tsv.gz") as f:
        assert f.readline().count(b"\t") == 2
    assert (read_images(tmp_path / "img.tsv.gz", N) != Y).nnz == 0


@pytest.mark.parametrize("case", ["columns", "zero-based"])
def test_cli_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    d = _layer_dir(tmp_path, bad=(2, CASES[case][0]))
    images = tmp_path / "img.tsv"
    images.write_text("1\t1\t1\n1\t2\t1\n")
    out = tmp_path / "cats.tsv"
    rc = cli.main(
        [
            "challenge",
            "run",
            "--network",
            str(d),
            "--images",
            str(images),
            "--neurons",
            str(N),
            "--nlayers",
            "3",
            "--bias",
            "-0.2",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("graphnn challenge: error: ")
    assert "n64-l2.tsv: line 2" in err
    assert not out.exists()


def test_cli_usage_errors(tmp_path, capsys):
    assert cli.main(["challenge", "run", "--images", "x", "--neurons", "64", "--nlayers", "2"]) == 2
    err = capsys.readouterr().err
    assert "one of the arguments --network --problem --generated is required" in err
    images = tmp_path / "img.tsv"
    images.write_text("1\t1\t1\n")
    assert (
        cli.main(
            [
                "challenge",
                "run",
                "--generated",
                "1",
                "--images",
                str(images),
                "--neurons",
                "64",
                "--nlayers",
                "2",
            ]
        )
        == 2
    )
    assert "no official bias for --neurons 64" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "challenge",
                "run",
                "--network",
                str(tmp_path / "nope"),
                "--images",
                str(images),
                "--neurons",
                "64",
                "--nlayers",
                "2",
                "--bias",
                "0",
            ]
        )
        == 2
    )
    assert "nope: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        challenge_main(["run", "--network", "x", "--images", "y", "--neurons", "many"])
    assert e.value.code == 2


def test_images_are_not_all_read_as_one_layer_width(tmp_path):
    """Images narrower than the network are rejected against the layer shape."""
    from challenge.inference import infer
    from graphnn.errors import DimensionMismatch

    Y = read_images_from_text(tmp_path, "1\t1\t1\n", 32)
    with pytest.raises(DimensionMismatch, match="expected \\(32, 32\\)"):
        infer([challenge_layer(N, 1)], Y, -0.2)


def read_images_from_text(tmp_path, text, n):
    p = tmp_path / "img.tsv"
    p.write_text(text)
    return read_images(p, n)


def test_bias_applies_to_nonzeros_only_end_to_end():
    import scipy.sparse as sp

    from challenge.inference import infer

    W = sp.csr_array(np.array([[1.0, 0.0], [-1.0, 0.0]]))
    Y0 = sp.csr_array(np.array([[1.0, 1.0]]))
    # Y W = [0, 0]: a positive bias must not be added to the cancelled entry
    assert infer([W], Y0, bias=0.5).categories.size == 0


def test_archive_of_another_width_says_so(tmp_path):
    with pytest.raises(FormatError, match="holds layers of 64 neurons, not 32: check --neurons"):
        read_layers(_tar(tmp_path, 2), 32, 2)


def test_parser_gives_pythons_doubles_bit_for_bit():
    from graphnn.io.tsv import parse_table

    rng = np.random.default_rng(0)
    values = rng.standard_normal(3000) * 10.0 ** rng.integers(-30, 30, 3000)
    tokens = [repr(float(v)) for v in values]
    tokens += [
        "6.250000e-02",
        "1",
        "-0.0",
        ".5",
        "5.",
        "1e22",
        "1e23",
        "+3",
        "1.5E+2",
        "123456789012345678901234",
        "0.1000000000000000055511151231257827",
    ]
    raw = "".join(f"{i + 1}\t{t}\t{t}\n" for i, t in enumerate(tokens)).encode()
    table = parse_table(raw, "x.tsv", 3)
    expected = np.array([float(t) for t in tokens])
    assert table[:, 1].tobytes() == expected.tobytes()  # identical bits, signs of zero too
    np.testing.assert_array_equal(table[:, 0], np.arange(1, len(tokens) + 1))


@pytest.mark.parametrize("block", [64, 1 << 26])
def test_images_read_in_blocks_equal_the_line_by_line_reading(tmp_path, block):
    """The compiled block reader against Python's own parsing of each line: values with
    exponents, long mantissas and CRLF ends, rows out of order, duplicates summed; an error
    names its line in whatever block it falls."""
    rng = np.random.default_rng(3)
    lines = []
    for k in range(300):
        v = rng.choice(["1", "0.5", "-2.25e-3", "0.12345678901234567", "7", "3.0"])
        end = "\r\n" if k % 7 == 0 else "\n"
        lines.append(f"{rng.integers(1, 40)}\t{rng.integers(1, 65)}\t{v}{end}")
    text = "".join(lines)
    want = np.zeros((39 + 1, 64))
    for line in lines:
        r, c, v = line.split()
        want[int(r) - 1, int(c) - 1] += float(v)
    path = tmp_path / "img.tsv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    Y = read_images(path, 64, block=block)
    n = int(max(int(line.split()[0]) for line in lines))
    np.testing.assert_array_equal(Y.toarray(), want[:n])
    ordered = "".join(sorted(lines, key=lambda s: int(s.split()[0])))
    path.write_bytes(gzip.compress(ordered.encode()))
    np.testing.assert_array_equal(read_images(path, 64, block=block).toarray(), want[:n])
    bad = tmp_path / "bad.tsv"
    bad.write_text(text + "3\t4\n" + text)
    with pytest.raises(GraphnnError, match="bad.tsv: line 301: expected 3 columns, got 2"):
        read_images(bad, 64, block=block)
    bad.write_text(text + "3\t65\t1\n")
    with pytest.raises(GraphnnError, match="line 301: pixel id 65 is out of range 1..64"):
        read_images(bad, 64, block=block)


def test_images_written_in_blocks_as_python_formats_them(tmp_path):
    from graphnn.io.tsv import format_triples

    Y = sp.random(50, 64, density=0.2, random_state=1, format="csr")
    Y.data[:] = np.round(Y.data * 100) - 30  # integers, negative ones too
    Y.data[::9] = 0.375  # and some that only %g writes
    write_images(Y, tmp_path / "img.tsv", chunk=37)
    rows = np.repeat(np.arange(50), np.diff(Y.indptr))
    assert (tmp_path / "img.tsv").read_bytes() == format_triples(rows, Y.indices, Y.data, "%g")


def test_a_problem_with_npz_images_runs_as_its_tsv_twin(tmp_path, capsys):
    import json

    from graphnn.cli import main as run_cli

    base = ["challenge", "generate", "--neurons", "1024", "--nlayers", "3", "--images", "40"]
    assert run_cli([*base, "--out", str(tmp_path / "t")]) == 0
    assert run_cli([*base, "--out", str(tmp_path / "n"), "--images-format", "npz"]) == 0
    tsv = read_images(tmp_path / "t" / "sparse-images-1024.tsv", 1024)
    npz = read_images(tmp_path / "n" / "sparse-images-1024.npz", 1024)
    assert (tsv != npz).nnz == 0 and tsv.shape == npz.shape
    capsys.readouterr()
    assert run_cli(["challenge", "run", "--problem", str(tmp_path / "n"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True
    with np.load(tmp_path / "n" / "sparse-images-1024.npz") as z:
        parts = {k: z[k] for k in z.files}
    parts["indices"][0] = 5000
    np.savez(tmp_path / "bad.npz", **parts)
    with pytest.raises(GraphnnError, match="bad.npz: index 5000 of entry 0 is outside 0..1023"):
        read_images(tmp_path / "bad.npz", 1024)
