"""The adversarial sweep: damaged inputs and user mistakes through the command line.

    python bench/adversarial.py [--data DIR]

Not a speed bench: each case must exit 2 with exactly one error line and no traceback (never
a crash: a segmentation fault is exit -11), and leave its inputs and earlier outputs
byte-identical. Fixtures (a trained model and checkpoint, damaged copies of them and of the
official files, folders with two layouts, another run's claim on an output) are made in a
temporary folder. Prints each failure and the count that pass; exits 1 when any fails.
``tests/test_hostile.py`` runs it.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _npz_with(source, target, **changes):
    """A copy of the npz ``source`` with some members replaced."""
    with np.load(source) as z:
        parts = {k: z[k] for k in z.files}
    parts.update(changes)
    np.savez_compressed(target, **parts)


def _hostile_fixtures(D):
    """The fixtures of the hostile-input classes, in the current folder (made after t.npz,
    m.npz and ck exist); returns the pid of a live process that claims ``claimed.npz``."""
    with np.load("m.npz") as z:
        indices, data = z["layer0_indices"].copy(), z["layer0_data"]
    indices[0] = 10**6
    _npz_with("m.npz", "index.npz", layer0_indices=indices)
    _npz_with("m.npz", "nanweight.npz", layer0_data=np.full_like(data, np.nan))
    _npz_with("m.npz", "sizes0d.npz", sizes=np.array(5))
    subprocess.run(G + ["convert", "t.npz", "mtxnet", "--format", "mtx"], capture_output=True)
    manifest = json.loads(open("mtxnet/network.json").read())
    manifest["n_layers"] = "2"
    os.makedirs("jsonbad", exist_ok=True)
    for name in os.listdir("mtxnet"):
        shutil.copy(f"mtxnet/{name}", f"jsonbad/{name}")
    open("jsonbad/network.json", "w").write(json.dumps(manifest))
    layer = "1\t1\t0.5\n2\t3\t0.25\n"
    for folder, files in {
        "twoformats": {"n8-l1.tsv": layer, "n8-l1.mtx": layer},
        "stray": {"n8-l1.tsv": layer, "n8-l3.tsv": layer},
        "emptylayer": {"n8-l1.tsv": layer, "n8-l2.tsv": ""},
        "twolayouts": {"n8-l1.tsv": layer, "neuron8/n8-l1.tsv": layer},
    }.items():
        for name, text in files.items():
            os.makedirs(os.path.dirname(f"{folder}/{name}"), exist_ok=True)
            open(f"{folder}/{name}", "w").write(text)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(".claimed.npz.claim", "w").write(str(sleeper.pid))
    return sleeper


G = [sys.executable, "-m", "graphnn.cli"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "graphchallenge"
    ap.add_argument("--data", default=str(default), help="the official 1024-neuron files")
    args = ap.parse_args()
    D = args.data
    os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    os.chdir(tempfile.mkdtemp(prefix="graphnn-adversarial-"))
    subprocess.run(
        G
        + [
            "topo",
            "generate",
            "ertl",
            "--layers",
            "64-100-10",
            "--density",
            "0.2",
            "--out",
            "t.npz",
        ],
        capture_output=True,
    )
    subprocess.run(
        G + ["train", "--epochs", "1", "--checkpoint", "ck", "--out", "m.npz"], capture_output=True
    )
    data = open("m.npz", "rb").read()
    open("trunc.npz", "wb").write(data[: len(data) // 2])
    b = bytearray(data)
    b[len(b) // 3] ^= 4
    open("flip.npz", "wb").write(bytes(b))
    ck = open("ck/checkpoint.npz", "rb").read()
    os.makedirs("ckbad", exist_ok=True)
    open("ckbad/checkpoint.npz", "wb").write(ck[: len(ck) - 100])
    open("empty.tsv", "w").close()
    img = open(f"{D}/sparse-images-1024_subset.tsv", "rb").read().splitlines(keepends=True)
    open("half.tsv", "wb").write(b"".join(img[: len(img) // 2]))
    open("stray.tsv", "wb").write(b"".join(img) + b"5000000\t3\t1\n")
    open("nan.tsv", "wb").write(b"".join(img[:10]) + b"5\t3\tnan\n")
    open("badline.tsv", "wb").write(b"".join(img[:10]) + b"5\t3\n")
    shutil.copy(f"{D}/neuron1024-l120-categories.tsv", "truth.tsv")
    tar = open(f"{D}/neuron1024.tar.gz", "rb").read()
    open("cut.tar.gz", "wb").write(tar[: len(tar) * 2 // 3])
    os.makedirs("idx", exist_ok=True)
    open("idx/train-images-idx3-ubyte", "wb").write(b"\x00\x00\x08\x03\x00")
    open("big.tsv", "w").write("1\t1\t1\n1000000000000\t2\t1\n")
    run = G + ["challenge", "run", "--network", f"{D}/neuron1024.tar.gz"]
    S = f"{D}/sparse-images-1024_subset.tsv"
    sleeper = _hostile_fixtures(D)
    analyze = G + ["topo", "analyze"]
    cases = [
        ("npz index past the width (was a segfault)", analyze + ["index.npz"]),
        ("npz index past the width, evaluate", G + ["evaluate", "index.npz"]),
        ("npz NaN weights", G + ["evaluate", "nanweight.npz"]),
        ("npz sizes 0-d", analyze + ["sizes0d.npz"]),
        ("network.json n_layers a string", analyze + ["jsonbad"]),
        ("two formats for one layer", analyze + ["twoformats"]),
        ("stray layer beyond a gap", analyze + ["stray"]),
        ("empty layer file", analyze + ["emptylayer"]),
        ("two layouts in one folder", analyze + ["twolayouts"]),
        (
            "output inside an input folder",
            G + ["convert", "ck", "ck/checkpoint.npz", "--overwrite"],
        ),
        ("output holds an input", G + ["convert", "m.npz", ".", "--format", "mtx", "--overwrite"]),
        ("a second writer", G + ["convert", "m.npz", "claimed.npz"]),
        (
            "threads 0 with workers",
            run + ["--images", "half.tsv", "--workers", "1", "--threads", "0"],
        ),
        ("npz truncated", G + ["evaluate", "trunc.npz"]),
        ("npz bit flip", G + ["topo", "analyze", "flip.npz"]),
        ("checkpoint truncated, resume", G + ["train", "--checkpoint", "ckbad", "--resume"]),
        ("checkpoint truncated, evaluate", G + ["evaluate", "ckbad"]),
        ("archive cut", G + ["challenge", "run", "--network", "cut.tar.gz", "--images", S]),
        ("empty images vs truth", run + ["--images", "empty.tsv", "--truth", "truth.tsv"]),
        (
            "half images vs truth",
            run + ["--images", "half.tsv", "--truth", "truth.tsv", "--images-count", "1200"],
        ),
        ("stray id", run + ["--images", "stray.tsv"]),
        ("nan pixel", run + ["--images", "nan.tsv"]),
        ("short line", run + ["--images", "badline.tsv"]),
        (
            "out == truth",
            run
            + [
                "--images",
                S,
                "--truth",
                "truth.tsv",
                "--images-count",
                "1200",
                "--out",
                "truth.tsv",
            ],
        ),
        ("out == images", run + ["--images", "half.tsv", "--out", "half.tsv"]),
        ("out folder missing", run + ["--images", "half.tsv", "--out", "nodir/c.tsv"]),
        ("plot folder missing", G + ["train", "--plot", "nodir/p.png"]),
        ("checkpoint of another run", G + ["train", "--checkpoint", "ck", "--lr", "0.01"]),
        ("resume without checkpoint", G + ["train", "--checkpoint", "nock", "--resume"]),
        ("export exists", G + ["train", "--out", "m.npz"]),
        ("corrupt idx in data dir", G + ["train", "--dataset", "mnist", "--data-dir", "idx"]),
        ("bias nan", run + ["--images", "half.tsv", "--bias", "nan"]),
        (
            "bias inf generate",
            G
            + [
                "challenge",
                "generate",
                "--neurons",
                "1024",
                "--nlayers",
                "2",
                "--images",
                "5",
                "--out",
                "g",
                "--bias",
                "inf",
            ],
        ),
        ("lr nan", G + ["train", "--lr", "nan"]),
        ("lr inf", G + ["train", "--lr", "inf"]),
        ("lr negative", G + ["train", "--lr", "-1"]),
        ("weight decay nan", G + ["train", "--weight-decay", "nan"]),
        (
            "epsilon nan",
            G
            + [
                "topo",
                "generate",
                "random",
                "--layers",
                "4-4",
                "--epsilon",
                "nan",
                "--out",
                "e.npz",
            ],
        ),
        ("layers 64--10", G + ["train", "--layers", "64--10"]),
        ("layers empty", G + ["train", "--layers", ""]),
        ("limit 0", G + ["train", "--limit", "0"]),
        ("limit negative", G + ["train", "--limit", "-5"]),
        ("prune epochs 0", G + ["prune", "--from", "ck", "--sparsity", "0.5", "--epochs", "0"]),
        ("sparsity 1.5", G + ["prune", "--from", "ck", "--sparsity", "1.5"]),
        ("alpha 2", G + ["train", "--redistribution", "random", "--alpha", "2"]),
        (
            "huge radices",
            G + ["topo", "generate", "radixnet", "--radices", "1000,1000,1000", "--out", "r.npz"],
        ),
        (
            "huge kron",
            G
            + [
                "topo",
                "generate",
                "radixnet",
                "--radices",
                "2,2",
                "--kron",
                "100000,100000,1",
                "--out",
                "r.npz",
            ],
        ),
        (
            "huge dense",
            G + ["topo", "generate", "dense", "--layers", "100000-100000", "--out", "d.npz"],
        ),
        ("image id 1e12", run + ["--images", "big.tsv"]),
        ("scheduler not an address", run + ["--images", "half.tsv", "--scheduler", "notanaddress"]),
        ("workers 0", run + ["--images", "half.tsv", "--workers", "0"]),
        ("unknown backend", G + ["train", "--backend", "torch"]),
        (
            "network of another width",
            G + ["challenge", "run", "--network", "t.npz", "--images", "half.tsv"],
        ),
        ("evaluate not a classifier", G + ["evaluate", f"{D}/neuron1024.tar.gz"]),
        ("train topology and layers", G + ["train", "--topology", "t.npz", "--layers", "64-10"]),
    ]
    passed = 0
    kept = ["truth.tsv", "half.tsv", "m.npz", "ck/checkpoint.npz", "mtxnet/network.json"]
    for name, argv in cases:
        before = {f: open(f, "rb").read() for f in kept}
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        after = {f: open(f, "rb").read() for f in before}
        lines = [l for l in r.stderr.splitlines() if "error" in l]
        ok = (
            r.returncode == 2
            and "Traceback" not in r.stderr
            and before == after
            and len(lines) == 1
        )
        passed += ok
        if not ok:
            print("FAIL", name, r.returncode, r.stderr[-300:])
    sleeper.kill()
    leftovers = [p for p in Path(".").rglob(".*.tmp")]
    if leftovers:
        print("FAIL temporaries left:", ", ".join(map(str, leftovers)))
    print(f"{passed}/{len(cases)} pass")
    sys.exit(0 if passed == len(cases) and not leftovers else 1)


if __name__ == "__main__":
    main()
