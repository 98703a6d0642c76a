"""Training data: MNIST-family IDX files, HIGGS CSV, scikit-learn's bundled digits, and one's
own data in a ``.npz`` or ``.csv`` file.

Every loader returns a :class:`Dataset` of float32 features scaled to [0, 1] (images),
standardised on the training split (HIGGS) or as given (one's own file), integer labels, and
train/validation/test splits.
"""

import csv
import dataclasses
import gzip
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..datasets import builtin_digits, find_idx, read_idx
from ..errors import FormatError, GraphnnError

__all__ = ["Dataset", "DATASETS", "load_dataset", "is_data_file", "augment_affine"]

DATASETS = ("digits", "mnist", "fashion-mnist", "kmnist", "higgs")

# Where the IDX files are published, for the download into the cache when online.
_MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    "kmnist": "https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass
class Dataset:
    """Features (float32, samples x features) and integer labels for each split."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    image_shape: tuple | None = None  # (h, w) for image data, for augmentation
    limit: int | None = None  # the load_dataset limit that made it (the splits depend on it)
    split_seed: int | None = None  # the load_dataset seed that drew the splits
    classes: tuple | None = None  # a file's own labels, in the order of the integer labels

    @property
    def n_features(self):
        return self.X_train.shape[1]


def cache_dir():
    """The download cache: ``$GRAPHNN_CACHE`` or ``~/.cache/graphnn``."""
    return Path(os.environ.get("GRAPHNN_CACHE", Path.home() / ".cache" / "graphnn"))


# The MD5 of every published .gz file (torchvision's, checked against its source), so that a
# download cut short or altered is never cached or read.
_MD5 = {
    "mnist": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
    "fashion-mnist": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                      "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
    "kmnist": ("bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
               "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134"),
}  # fmt: skip


def _download(name, stem, target_dir):
    """Download ``stem.gz`` of ``name`` into ``target_dir`` with a progress bar, and keep it
    only if its MD5 is the published one."""
    import hashlib

    from tqdm import tqdm

    url = f"{_MIRRORS[name]}{stem}.gz"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{stem}.gz"
    chunks = []
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            size = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, desc=f"{name} {stem}", unit="B", unit_scale=True,
                      leave=False, disable=None) as bar:  # fmt: skip
                for chunk in iter(lambda: r.read(1 << 20), b""):
                    chunks.append(chunk)
                    bar.update(len(chunk))
    except OSError as e:
        raise GraphnnError(
            f"{name}: {stem} is not in the data directory and could not be downloaded ({e}); "
            f"offline? put the IDX files ({stem}.gz ...) in --data-dir"
        ) from None
    data = b"".join(chunks)
    expected = _MD5[name][(*_IDX_FILES["train"], *_IDX_FILES["test"]).index(stem)]
    got = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if got != expected:
        raise GraphnnError(
            f"{name}: the download of {url} is damaged or not the published file (MD5 {got}, "
            f"expected {expected}); nothing was cached: try again, or put the files in --data-dir"
        )
    tmp = target.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


# torchvision's folder for each dataset: ``root/MNIST/raw`` and so on
_TORCHVISION = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}


def _idx(name, data_dir, stem):
    """The IDX file ``stem`` of ``name``: in ``data_dir`` (flat, or torchvision's
    ``root/MNIST/raw`` layout), then the cache, then downloaded into the cache."""
    dirs = []
    if data_dir:
        root = Path(data_dir)
        dirs = [root, root / _TORCHVISION[name] / "raw", root / "raw"]
    dirs.append(cache_dir() / name)
    for d in dirs:
        try:
            path = find_idx(d, stem)
        except GraphnnError:  # not there: the next place
            continue
        return read_idx(path)  # there but damaged: an error, never a silent substitute
    return read_idx(_download(name, stem, cache_dir() / name))


def _check_labels(y, n_classes, where):
    if y.dtype.kind == "f" and not (np.isfinite(y) & (y == np.floor(y))).all():
        bad = y[~(np.isfinite(y) & (y == np.floor(y)))][0]
        raise FormatError(f"{where}: label {bad} is not a whole number")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        bad = y[(y < 0) | (y >= n_classes)][0]
        raise FormatError(f"{where}: label {bad} is out of range 0..{n_classes - 1}")
    return y.astype(np.int64)


def _split(X, y, fraction, rng):
    order = rng.permutation(len(y))
    n_val = int(round(fraction * len(y)))
    return X[order[n_val:]], y[order[n_val:]], X[order[:n_val]], y[order[:n_val]]


def _load_images(name, data_dir, val_fraction, rng, limit):
    train_x, train_y = (_idx(name, data_dir, s) for s in _IDX_FILES["train"])
    test_x, test_y = (_idx(name, data_dir, s) for s in _IDX_FILES["test"])
    for x, y, which in ((train_x, train_y, "train"), (test_x, test_y, "test")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise FormatError(f"{name} {which}: images {x.shape} and labels {y.shape} disagree")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            image = int(np.argmax(~np.isfinite(x.reshape(len(x), -1)).all(axis=1)))
            raise FormatError(f"{name} {which}: image {image} has a pixel that is not finite")
    shape = train_x.shape[1:]
    flat = lambda a: (a.reshape(len(a), -1) / 255.0).astype(np.float32)  # noqa: E731
    Xtr, ytr = flat(train_x)[:limit], _check_labels(train_y, 10, f"{name} train")[:limit]
    Xtr, ytr, Xva, yva = _split(Xtr, ytr, val_fraction, rng)
    return Dataset(
        name, Xtr, ytr, Xva, yva, flat(test_x), _check_labels(test_y, 10, name), 10, shape
    )


def _load_higgs(data_dir, val_fraction, rng, limit):
    d = Path(data_dir) if data_dir else cache_dir() / "higgs"
    for f in ("HIGGS.csv.gz", "HIGGS.csv", "higgs.csv.gz", "higgs.csv"):
        if (d / f).exists():
            path = d / f
            break
    else:
        raise GraphnnError(f"higgs: no HIGGS.csv(.gz) in {d}; put the UCI HIGGS file there")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        try:
            table = np.loadtxt(fh, delimiter=",", max_rows=limit, dtype=np.float64, ndmin=2)
        except ValueError as e:
            raise FormatError(f"{path}: {e}") from None
    if table.shape[1] < 22:
        raise FormatError(
            f"{path}: expected a label and 28 features per row, got {table.shape[1]} columns"
        )
    y = table[:, 0]
    if not np.isin(y, (0.0, 1.0)).all():
        raise FormatError(f"{path}: labels (first column) must be 0 or 1")
    features = table[:, 1:22]
    bad = ~(np.isfinite(features) & (np.abs(features) <= np.finfo(np.float32).max)).all(axis=1)
    if bad.any():
        raise FormatError(
            f"{path}: row {np.argmax(bad) + 1} has a feature that is not a finite float32 number"
        )
    X = table[:, 1:22].astype(np.float32)  # the last 7 features are functions of the first 21
    n_test = int(round(0.1 * len(y)))
    Xte, yte = X[:n_test], y[:n_test].astype(np.int64)
    Xtr, ytr, Xva, yva = _split(X[n_test:], y[n_test:].astype(np.int64), val_fraction, rng)
    mu, sd = Xtr.mean(axis=0), Xtr.std(axis=0) + 1e-6
    norm = lambda a: ((a - mu) / sd).astype(np.float32)  # noqa: E731
    return Dataset("higgs", norm(Xtr), ytr, norm(Xva), yva, norm(Xte), yte, 2)


def _load_digits(val_fraction, rng, limit):
    images, y = builtin_digits()
    X = images.reshape(len(images), -1).astype(np.float32)[:limit]
    y = y.astype(np.int64)[:limit]
    order = rng.permutation(len(y))
    n_test = int(round(0.2 * len(y)))
    Xte, yte = X[order[:n_test]], y[order[:n_test]]
    Xtr, ytr, Xva, yva = _split(X[order[n_test:]], y[order[n_test:]], val_fraction, rng)
    return Dataset("digits", Xtr, ytr, Xva, yva, Xte, yte, 10, (8, 8))


def is_data_file(name):
    """Whether ``name`` names one's own data file rather than a built-in dataset."""
    return str(name) not in DATASETS and str(name).lower().endswith(FILE_SUFFIXES)


FILE_SUFFIXES = (".npz", ".csv")


def _load_file(path, label_column, val_fraction, rng, limit):
    if not path.is_file():
        raise GraphnnError(f"{path}: no such data file")
    if path.suffix.lower() == ".npz":
        X, y, X_test, y_test = _read_npz_data(path)
    else:
        X, y = _read_csv_data(path, label_column)
        X_test = y_test = None
    X, y = X[:limit], y[:limit]
    if len(y) < 2:
        raise FormatError(f"{path}: {len(y)} training row(s); at least 2 are needed")
    if X_test is not None and X_test.shape[1] != X.shape[1]:
        raise FormatError(f"{path}: X has {X.shape[1]} features but X_test has {X_test.shape[1]}")
    classes, labels = np.unique(
        np.concatenate([y, y_test]) if y_test is not None else y, return_inverse=True
    )
    if classes.size < 2:
        raise FormatError(f"{path}: every label is {classes[0]!r}; a classifier needs 2 classes")
    labels = labels.astype(np.int64)
    if X_test is None:
        order = rng.permutation(len(y))
        n_test = int(round(0.2 * len(y)))
        X_test, y_test = X[order[:n_test]], labels[order[:n_test]]
        X, y = X[order[n_test:]], labels[order[n_test:]]
    else:
        y, y_test = labels[: len(y)], labels[len(y) :]
    Xtr, ytr, Xva, yva = _split(X, y, val_fraction, rng)
    return Dataset(str(path), Xtr, ytr, Xva, yva, X_test, y_test, int(classes.size),
                   classes=tuple(classes.tolist()))  # fmt: skip


def _features(X, where):
    """``X`` as float32 samples x features, every value a finite float32 number."""
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise FormatError(f"{where} must be a 2-d array of numbers, got {X.dtype} {X.shape}")
    bad = ~(np.isfinite(X) & (np.abs(X) <= np.finfo(np.float32).max)).all(axis=1)
    if bad.any():
        raise FormatError(f"{where}: row {int(np.argmax(bad))} has a value that is not a finite "
                          "float32 number")  # fmt: skip
    return X.astype(np.float32)


def _read_npz_data(path):
    from ..io import NPZ_ERRORS

    try:
        with np.load(path, allow_pickle=False) as z:
            parts = {k: z[k] for k in ("X", "y", "X_test", "y_test") if k in z.files}
    except NPZ_ERRORS as e:
        why = "not a zip archive of arrays" if "pickle" in str(e) else str(e)
        raise FormatError(f"{path}: not a readable .npz file ({why})") from None
    missing = [k for k in ("X", "y") if k not in parts]
    if missing or ("X_test" in parts) != ("y_test" in parts):
        raise FormatError(
            f"{path}: a data file holds X and y, and optionally X_test with y_test; missing "
            f"{', '.join(missing or ['X_test' if 'y_test' in parts else 'y_test'])}"
        )
    out = []
    for x, y in (("X", "y"), ("X_test", "y_test")):
        if x not in parts:
            out += [None, None]
            continue
        X, labels = _features(parts[x], f"{path}: {x}"), parts[y]
        if labels.ndim != 1 or len(labels) != len(X):
            raise FormatError(f"{path}: {y} must hold one label per row of {x} ({len(X)}), "
                              f"got shape {labels.shape}")  # fmt: skip
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            raise FormatError(f"{path}: {y} has a label that is not finite")
        out += [X, labels]
    return tuple(out)


def _read_csv_data(path, label_column):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise FormatError(f"{path}: empty file; a header row naming the columns comes first")
        header = [h.strip() for h in header]
        if label_column not in header:
            raise FormatError(
                f"{path}: no column named {label_column!r} for the labels (the header has "
                f"{', '.join(header[:8])}{', ...' if len(header) > 8 else ''}); name it with "
                "--label-column"
            )
        at = header.index(label_column)
        rows, labels = [], []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise FormatError(f"{path}: line {line}: {len(row)} fields, the header has "
                                  f"{len(header)}")  # fmt: skip
            labels.append(row[at].strip())
            if not labels[-1]:
                raise FormatError(f"{path}: line {line}: the {label_column!r} cell is empty")
            try:
                rows.append([float(v) for k, v in enumerate(row) if k != at])
            except ValueError:
                bad = next(v for k, v in enumerate(row) if k != at and not _is_number(v))
                raise FormatError(f"{path}: line {line}: {bad!r} is not a number") from None
            if not all(abs(v) <= _FLOAT32_MAX for v in rows[-1]):  # nan and inf fail too
                raise FormatError(
                    f"{path}: line {line}: a value that is not a finite float32 number"
                )
    X = _features(np.array(rows, dtype=np.float64).reshape(len(rows), len(header) - 1), str(path))
    y = np.array(labels)
    try:  # numeric labels sort as numbers (2 before 10)
        y = y.astype(np.int64) if all(v.lstrip("-").isdigit() for v in labels) else y
    except ValueError:
        pass
    return X, y


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_dataset(name, *, data_dir=None, val_fraction=0.1, seed=0, limit=None,
                 label_column="label"):  # fmt: skip
    """Load ``name`` (one of :data:`DATASETS`, or the path of a ``.npz`` or ``.csv`` file)
    with its train/validation/test splits.

    ``digits`` (scikit-learn's 1,797 8 x 8 images) works offline and is the default; the IDX
    datasets are read from ``data_dir`` or the cache, and downloaded into the cache when online;
    ``higgs`` reads ``HIGGS.csv(.gz)``, the first 21 features, at most ``limit`` rows.

    One's own data: a ``.npz`` holds ``X`` (samples x features) and ``y`` (labels of any
    kind), and optionally ``X_test`` and ``y_test``; a ``.csv`` has a header row, one sample
    per line, the labels in the column named ``label_column`` and numbers in all the others.
    Without a test part, a seeded 20% of the rows is the test split. Features are used as given
    (scale them to about [0, 1], or standardise them); labels are numbered in sorted order
    (``Dataset.classes`` keeps them).
    """
    if name not in DATASETS and not is_data_file(name):
        raise GraphnnError(
            f"dataset {str(name)!r} is not valid; choose from {', '.join(DATASETS)}, or give "
            "the path of a .npz (X, y, optional X_test, y_test) or .csv file"
        )
    if not 0 <= val_fraction < 1:
        raise GraphnnError(f"validation fraction must be in [0, 1), got {val_fraction}")
    if limit is not None and (not isinstance(limit, int | np.integer) or limit < 1):
        raise GraphnnError(f"limit must be a positive number of rows, got {limit!r}")
    rng = np.random.default_rng([seed, 1])
    if is_data_file(name):
        data = _load_file(Path(name), label_column, val_fraction, rng, limit)
    elif name == "digits":
        data = _load_digits(val_fraction, rng, limit)
    elif name == "higgs":
        data = _load_higgs(data_dir, val_fraction, rng, limit)
    else:
        data = _load_images(name, data_dir, val_fraction, rng, limit)
    return dataclasses.replace(data, limit=limit, split_seed=seed)


def augment_affine(X, image_shape, rng, *, max_degrees=10.0, max_shift=0.1, max_scale=0.1):
    """Random affine copies of flattened images: rotation, translation and scaling."""
    from scipy.ndimage import affine_transform

    h, w = image_shape
    out = np.empty_like(X)
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    angles = np.deg2rad(rng.uniform(-max_degrees, max_degrees, len(X)))
    scales = 1 + rng.uniform(-max_scale, max_scale, len(X))
    shifts = rng.uniform(-max_shift, max_shift, (len(X), 2)) * (h, w)
    for i, img in enumerate(X.reshape(-1, h, w)):
        c, s = np.cos(angles[i]) / scales[i], np.sin(angles[i]) / scales[i]
        M = np.array([[c, -s], [s, c]])
        offset = centre - M @ (centre + shifts[i])
        out[i] = affine_transform(img, M, offset=offset, order=1, cval=0.0).ravel()
    return out
