"""The fields graphnn reads back from its own files (npz members, ``network.json``, checkpoint
members, ``problem.json``), each checked for type and range here, so that a field of the wrong
type is one error naming the file and the field, never a traceback from deep inside.

Each checker takes the raw value (a JSON value or an npz member) and ``where``, the file and
field as the message should name them, and returns the value as plain Python.
"""

import json
import math
import zipfile
import zlib

import numpy as np
import scipy.sparse as sp

from ..errors import FormatError

# What reading a damaged or foreign .npz can raise (numpy's zip reader and its parsers)
NPZ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def member(z, name, path):
    """The npz member ``name`` of the archive ``z`` read from ``path``."""
    if name not in z.files:
        raise FormatError(f"{path}: member {name!r} is missing")
    return z[name]


def _scalar(value):
    """A 0-d array's item; anything else as it is."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def integer(value, where, low=0):
    """An integer (not a bool, not a float) of at least ``low``."""
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise FormatError(f"{where} must be an integer, got {value!r}")
    if value < low:
        raise FormatError(f"{where} must be at least {low}, got {value}")
    return int(value)


def number(value, where):
    """A finite real number."""
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise FormatError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise FormatError(f"{where} must be finite, got {value}")
    return value


def text(value, where):
    """A string."""
    value = _scalar(value)
    if not isinstance(value, str):
        raise FormatError(f"{where} must be a string, got {value!r}")
    return value


def sequence(value, where):
    """A list (a JSON array or a 1-d npz member) as a Python list."""
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise FormatError(f"{where} must be a list, got an array of shape {value.shape}")
        return value.tolist()
    if not isinstance(value, list):
        raise FormatError(f"{where} must be a list, got {value!r}")
    return value


def integers(value, where, low=0):
    """A list of integers of at least ``low``."""
    return [integer(v, f"{where}[{k}]", low) for k, v in enumerate(sequence(value, where))]


def index_array(value, where):
    """A 1-d array of integers (CSR ``indices`` or ``indptr``: never cast from floats)."""
    if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype.kind not in "iu":
        shape = getattr(value, "shape", None)
        raise FormatError(
            f"{where} must be a 1-d array of integers, got {getattr(value, 'dtype', type(value))}"
            f" of shape {shape}"
        )
    return value


def texts(value, where):
    """A list of strings."""
    return [text(v, f"{where}[{k}]") for k, v in enumerate(sequence(value, where))]


def mapping(value, where):
    """A JSON object."""
    if not isinstance(value, dict):
        raise FormatError(f"{where} must be a JSON object, got {value!r}")
    return value


def json_text(value, where):
    """The JSON value held in a string member."""
    try:
        return json.loads(text(value, where))
    except ValueError as e:
        raise FormatError(f"{where} is not valid JSON ({e})") from None


def json_object(value, where):
    """The JSON object held in a string member."""
    return mapping(json_text(value, where), where)


def biases(value, where):
    """A bias for every layer or one for all: a number, or a list of numbers and lists of
    numbers."""
    if not isinstance(value, list):
        return number(value, where)
    out = []
    for k, b in enumerate(value):
        if isinstance(b, list):
            out.append([number(v, f"{where}[{k}][{j}]") for j, v in enumerate(b)])
        else:
            out.append(number(b, f"{where}[{k}]"))
    return out


def activations(value, where):
    """One activation name for every layer, or a list of them."""
    return text(value, where) if not isinstance(value, list) else texts(value, where)


def csr_members(field, prefix, names, shape, path):
    """A CSR array from the members ``prefix + name`` for (values, indices, indptr), the index
    members checked to be integers (scipy would cast floats); the rest is checked by
    :class:`~graphnn.Network`."""
    data, indices, indptr = (field(prefix + name) for name in names)
    for name, a in zip(names[1:], (indices, indptr)):
        index_array(a, f"{path}: {prefix + name}")
    return sp.csr_array((data, indices, indptr), shape=tuple(shape))
