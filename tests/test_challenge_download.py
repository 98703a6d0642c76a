"""``challenge download`` against a local HTTP server serving fixture files (no internet):
fetching, resuming a partial file with a range request, the manifest's checks."""

import http.server
import threading

import numpy as np
import pytest

from graphnn.cli import main as cli


class _Ranged(http.server.SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=N-`` support; the ranges asked for are logged."""

    ranges = []

    def do_GET(self):
        wanted = self.headers.get("Range")
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        if wanted:
            start = int(wanted.split("=")[1].rstrip("-"))
            self.ranges.append(start)
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A local mirror of the challenge's tree for N = 1024 (small stand-in files)."""
    root = tmp_path / "mirror"
    (root / "dnn").mkdir(parents=True)
    (root / "mnist").mkdir()
    rng = np.random.default_rng(0)
    files = {
        "dnn/neuron1024.tar.gz": rng.bytes(300_000),
        "mnist/sparse-images-1024.tsv.gz": rng.bytes(50_000),
        "dnn/neuron1024-l120-categories.tsv": b"1\n5\n9\n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    handler = lambda *a, **k: _Ranged(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Ranged.ranges = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()


def test_download_fetches_resumes_and_records(server, tmp_path, capsys):
    url, files = server
    out = tmp_path / "official"
    out.mkdir()
    archive = files["dnn/neuron1024.tar.gz"]
    (out / "neuron1024.tar.gz.part").write_bytes(archive[:123_456])  # an interrupted download
    argv = ["challenge", "download", "--neurons", "1024", "--out", str(out), "--base-url", url]
    assert cli(argv) == 0, capsys.readouterr().err
    assert (out / "neuron1024.tar.gz").read_bytes() == archive
    assert _Ranged.ranges == [123_456]  # resumed where it stopped, not fetched again
    assert (out / "sparse-images-1024.tsv.gz").read_bytes() == files[
        "mnist/sparse-images-1024.tsv.gz"
    ]
    assert not list(out.glob("*.part"))
    import hashlib
    import json

    manifest = json.loads((out / "download.json").read_text())
    assert manifest["neuron1024.tar.gz"]["sha256"] == hashlib.sha256(archive).hexdigest()
    assert manifest["neuron1024-l120-categories.tsv"]["size"] == 6
    capsys.readouterr()
    assert cli(argv) == 0 and capsys.readouterr().out.count("kept") == 3  # checked, kept


def test_a_downloaded_file_changed_since_is_refused(server, tmp_path, capsys):
    url, _ = server
    out = tmp_path / "official"
    argv = ["challenge", "download", "--neurons", "1024", "--truth", "--out", str(out),
            "--base-url", url]  # fmt: skip
    assert cli(argv) == 0
    truth = out / "neuron1024-l120-categories.tsv"
    truth.write_bytes(b"1\n5\n8\n")  # same size, other bytes
    capsys.readouterr()
    assert cli(argv) == 2
    assert "SHA-256 differs" in capsys.readouterr().err
    images = tmp_path / "img.tsv"
    images.write_text("1\t1\t1\n")
    run = ["challenge", "run", "--generated", "0", "--neurons", "1024", "--nlayers", "1",
           "--images", str(images), "--truth", str(truth)]  # fmt: skip
    rc = cli(run)
    err = capsys.readouterr().err
    assert rc == 2 and "neuron1024-l120-categories.tsv" in err and "SHA-256" in err


def test_download_errors_are_one_line(server, tmp_path, capsys):
    url, _ = server
    argv = ["challenge", "download", "--neurons", "1024", "--out", str(tmp_path / "o")]
    assert cli([*argv, "--base-url", url + "/missing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "404" in err
    assert not (tmp_path / "o").exists()  # the folder it made is not left behind empty
    assert cli([*argv, "--nlayers", "100"]) == 2
    assert "--nlayers must be one of 120, 480, 1920" in capsys.readouterr().err
