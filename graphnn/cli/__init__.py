"""The ``graphnn`` command line: every front end lives in this package, one module per
subcommand, each imported only when it runs.

Exit codes: 0 success, 1 a check failed (e.g. categories differ from the truth), 2 a user mistake
(one line on stderr, no traceback), 130 interrupted.
"""

import argparse
import contextlib
import difflib
import importlib
import os
import signal
import sys
import threading

from .._version import __version__
from ..errors import GraphnnError
from ._common import (
    CHECK_FAILED,
    INTERRUPTED,
    SUCCESS,
    USAGE_ERROR,
    ArgumentParser,
    output_claims,
)

__all__ = ["main", "COMMANDS", "ArgumentParser", "SUCCESS", "CHECK_FAILED", "USAGE_ERROR"]

# name -> one-line summary; the module graphnn.cli.<name> has main(argv, prog) -> exit code
COMMANDS = {
    "topo": "generate, analyse and draw sparse topologies (RadiX-Net, Kronecker, ER/ERK, Ertl)",
    "challenge": "Sparse DNN Graph Challenge: run, verify, generate problems, demo",
    "train": "train a sparse MLP, with dynamic weight redistribution; export the network",
    "evaluate": "test accuracy of a saved model on a dataset",
    "convert": "convert a network between formats (npz, mtx, tsv; reads every format)",
    "prune": "prune a trained checkpoint (one-shot or gradual) and retrain the structure",
    "experiment": "the papers' experiments: redistribution, pruning, topology",
}


def _top_parser():
    lines = [f"  {name:<10} {summary}" for name, summary in COMMANDS.items()]
    parser = ArgumentParser(
        prog="graphnn",
        usage="graphnn [-h] [--version] COMMAND [ARGS ...]",
        description="Sparse neural networks as chains of GraphBLAS adjacency matrices.",
        epilog="commands:\n" + "\n".join(lines) + "\n\nRun 'graphnn COMMAND --help' for details.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"graphnn {__version__}")
    parser.add_argument(
        "command", nargs="?", metavar="COMMAND", help="one of: " + ", ".join(COMMANDS)
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _fail(prog, message, code=USAGE_ERROR):
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM unwinds the command like Ctrl-C, so that every atomic write removes its
    temporary file or folder (the default action would end the process where it stands);
    the handler before is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def main(argv=None):
    """Entry point of the ``graphnn`` console script; returns the exit code."""
    parser = _top_parser()
    ns = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if ns.command is None:
        parser.print_help()
        return SUCCESS
    if ns.command not in COMMANDS:
        guess = difflib.get_close_matches(ns.command, COMMANDS, n=1)
        hint = (
            f' - maybe you meant "{guess[0]}"' if guess else f"; choose from {', '.join(COMMANDS)}"
        )
        return _fail("graphnn", f'unknown command "{ns.command}"{hint}')
    prog = f"graphnn {ns.command}"
    try:
        with _terminate_as_interrupt(), output_claims():
            module = importlib.import_module(f"{__name__}.{ns.command}")
            return module.main(ns.args, prog=prog)
    except SystemExit as e:  # argparse's --help and usage errors
        return e.code
    except GraphnnError as e:
        return _fail(prog, str(e))
    except BrokenPipeError:  # the reader went away (| head): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SUCCESS
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        return _fail(prog, f"{e.strerror or e}{where}")
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", INTERRUPTED)
    except MemoryError:
        return _fail(prog, "out of memory: the sizes asked for do not fit this machine")


if __name__ == "__main__":
    sys.exit(main())
