"""What every ``graphnn`` subcommand shares: the parser class, exit codes and the one
vocabulary of arguments (``--layers`` = widths, ``--network`` = a network path, ``--out`` =
the main output, ``--data-dir``, ``--seed``, ``--backend``, ``--json``)."""

import argparse
import contextlib
import contextvars
import math
import os
import re
from pathlib import Path

from ..errors import GraphnnError
from ..io import claim

SUCCESS, CHECK_FAILED, USAGE_ERROR, INTERRUPTED = 0, 1, 2, 130


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Show each option's default where it has one, keep descriptions as written."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, argparse.SUPPRESS)
            and "%(default)" not in text
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr and exit code 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def add_required_subparsers(self, dest):
        """Required subcommands stored in ``dest``, parsed by this class too."""
        sub = self.add_subparsers(dest=dest, metavar=dest.upper(), parser_class=ArgumentParser)
        sub.required = True
        return sub


def finite(text):
    """An argparse type: a float that is finite (``nan`` and ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def byte_size(text):
    """A size in bytes: ``8G``, ``512M``, ``1.5GiB``, ``300k`` or a plain number of bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 8G, 512M or 1.5G)")
    value = float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive size: {text!r}")
    return int(value)


def _flags(parser):
    """``{dest: --flag}`` for every option of ``parser`` and its subcommands."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.update(_flags(sub))
        long = [o for o in action.option_strings if o.startswith("--")]
        if long:
            found.setdefault(action.dest, long[0])
    return found


def run(parser, argv, action):
    """Parse ``argv`` and call ``action(args)``; a library error that starts with a parameter
    name (``alpha must be ...``) is reported with that parameter's flag (``--alpha ...``)."""
    args = parser.parse_args(argv)
    try:
        return action(args)
    except GraphnnError as e:
        message = str(e)
        m = re.match(r"(\w+)\b", message)
        flags = _flags(parser)
        if m and m.group(1) in flags:
            raise type(e)(flags[m.group(1)] + message[m.end() :]) from None
        raise


def widths_text(sizes):
    """Layer widths as the messages write them, ``784-300-100-10``, a run of four or more equal
    widths shortened to ``1024(x121)`` (a deep challenge network is one line, not 5,000
    characters)."""
    parts, k = [], 0
    while k < len(sizes):
        run = 1
        while k + run < len(sizes) and sizes[k + run] == sizes[k]:
            run += 1
        parts += [f"{sizes[k]}(x{run})"] if run >= 4 else [str(sizes[k])] * run
        k += run
    return "-".join(parts)


def widths(text, flag="--layers"):
    """Layer widths from ``784-300-100-10`` (also ``x`` or ``,`` between them)."""
    parts = text.replace("x", "-").replace(",", "-").split("-")
    try:
        values = [int(v) for v in parts]
    except ValueError:
        raise GraphnnError(f"{flag} must be widths such as 784-300-100-10, got {text!r}") from None
    if len(values) < 2 or min(values) < 1:
        raise GraphnnError(f"{flag} needs at least two positive widths, got {text!r}")
    return values


def ints(text, flag, sep=","):
    """Integers separated by ``sep``."""
    try:
        values = [int(v) for v in text.replace(" ", "").split(sep) if v]
    except ValueError:
        raise GraphnnError(f"{flag} must be integers separated by '{sep}', got {text!r}") from None
    if not values:
        raise GraphnnError(f"{flag} must not be empty")
    return values


def floats(text, flag):
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise GraphnnError(f"{flag} must be numbers separated by ',', got {text!r}") from None


def seed_int(text):
    """A seed: an integer >= 0 (numpy's generators take no negative seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is >= 0, got {value}")
    return value


def add_seed(p):
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (an integer >= 0)")


def add_early_stopping(p):
    from ..training.trainer import TrainConfig

    p.add_argument(
        "--early-stopping",
        action="store_true",
        help="stop a run once its validation accuracy has not improved for --patience epochs, "
        "and keep the weights of its best epoch (--epochs is then the most it trains)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=TrainConfig.patience,
        metavar="E",
        help="epochs without a validation gain before an early stop (default %(default)s)",
    )


def add_json(p, what="the results"):
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def add_overwrite(p):
    p.add_argument(
        "--overwrite", action="store_true", help="replace output files that exist already"
    )


_CLAIMS = contextvars.ContextVar("claims", default=None)


@contextlib.contextmanager
def output_claims():
    """The span of one command: the outputs it claims (:func:`claim_output`) are released at
    its end."""
    with contextlib.ExitStack() as stack:
        reset = _CLAIMS.set(stack)
        try:
            yield
        finally:
            _CLAIMS.reset(reset)


def claim_output(path, flag):
    """Claim ``path`` (the value of ``flag``) for this command until it ends: a second run
    writing the same path fails at once, naming this one's pid."""
    stack = _CLAIMS.get()
    if stack is not None:
        try:
            stack.enter_context(claim(path))
        except GraphnnError as e:
            raise GraphnnError(f"{flag} {e}") from None


def apart(path, flag, other, label):
    """Refuse an output ``path`` that is ``other`` (an input or an earlier output, ``label``
    its flag), lies inside it (a folder) or holds it: writing it could change the other."""
    p, o = Path(path).resolve(), Path(other).resolve()
    if p == o:
        raise GraphnnError(f"{flag} {path} is the input {label}: give another path")
    if o in p.parents:
        raise GraphnnError(f"{flag} {path} lies inside {label} {other}: give a path outside it")
    if p in o.parents:
        raise GraphnnError(f"{flag} {path} holds {label} {other}: give another path")


def check_output(path, flag, overwrite=False, inputs=None):
    """Before any work: ``path`` (the value of ``flag``) is none of ``inputs`` (``{path:
    label}``), nor inside one or holding one; its folder exists and is writable; it does not
    exist yet (unless ``overwrite``); then it is claimed for this command
    (:func:`claim_output`)."""
    path = Path(path)
    for taken, label in (inputs or {}).items():
        apart(path, flag, taken, label)
    folder = path.resolve().parent
    if not folder.is_dir():
        raise GraphnnError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise GraphnnError(f"{flag} {path}: the folder {folder} is not writable")
    claim_output(path, flag)
    if path.exists() and not overwrite:
        raise GraphnnError(f"{flag} {path} exists: give another path, or --overwrite")


def check_folder(path, flag, overwrite=False):
    """Before any work: the output folder ``path`` is new or empty (unless ``overwrite``), so
    that no earlier run's files are mixed with this one's; then it is claimed for this
    command (:func:`claim_output`)."""
    path = Path(path)
    if path.parent.is_dir():
        claim_output(path, flag)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise GraphnnError(f"{flag} {path} is not empty: give another folder, or --overwrite")


def check_outputs(args, flags, inputs=()):
    """:func:`check_output` for the output ``flags`` of ``args``, against its ``inputs``
    (flags, ``PATH`` for the positional ``path``, or ``{flag: path}`` where the flag's
    destination has another name) and one another."""

    def value(flag):
        return getattr(args, flag.lstrip("-").replace("-", "_").lower(), None)

    given = inputs if isinstance(inputs, dict) else {f: value(f) for f in inputs}
    taken = {Path(v).resolve(): f for f, v in given.items() if v is not None}
    for flag in flags:
        if value(flag) is not None:
            check_output(value(flag), flag, getattr(args, "overwrite", False), taken)
            taken[Path(value(flag)).resolve()] = flag


def add_backend(p):
    from ..backends import BACKENDS, DEFAULT

    p.add_argument(
        "--backend",
        choices=[*BACKENDS, "scipy"],
        default=DEFAULT,
        help="numba: graphnn's multi-threaded CPU kernels (measured fastest on the CPU); "
        "graphblas: SuiteSparse:GraphBLAS; cupy: an NVIDIA GPU; reference: plain numpy/scipy, "
        "the specification (slow); scipy: an old name for numba",
    )


def at_least_one(text):
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_pruning_schedule(p):
    """The gradual-pruning flags of ``prune`` and ``experiment pruning``: ``--prune-epochs``,
    ``--prune-every`` and ``--scope``."""
    from ..training.pruning import PRUNE_EPOCHS, SCOPES

    p.add_argument(
        "--prune-epochs",
        type=at_least_one,
        default=PRUNE_EPOCHS,
        help="epochs of training while pruning gradually (iteratively)",
    )
    p.add_argument("--prune-every", type=at_least_one, default=200, help="steps between prunes")
    p.add_argument(
        "--scope",
        choices=SCOPES,
        default="layer",
        help="layer: every layer keeps the same fraction of its edges; global: one magnitude "
        "threshold over all layers (layers of small weights lose more)",
    )


def dataset(text):
    """A --dataset value: a built-in dataset's name, or the path of a .npz or .csv file."""
    from ..training.data import DATASETS, is_data_file

    if text in DATASETS or is_data_file(text):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is neither a dataset ({', '.join(DATASETS)}) nor a .npz or .csv file"
    )


def add_dataset(p, default="digits", what=None):
    """``--dataset NAME|PATH`` and ``--label-column``."""
    from ..training.data import DATASETS

    p.add_argument(
        "--dataset",
        type=dataset,
        default=default,
        metavar="NAME|FILE",
        help=(what or "the data")
        + f": {', '.join(DATASETS)} (digits is built in and offline), or one's own file: a .npz "
        "holding X and y (and optionally X_test, y_test; else 20%% of the rows are the test "
        "split), or a .csv with a header row and a --label-column; features are used as given",
    )
    p.add_argument(
        "--label-column",
        default=None,
        metavar="NAME",
        help="the .csv column that holds the labels (default: label)",
    )


def add_data_dir(p):
    p.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the dataset files are (else the cache, downloaded when online)",
    )
