"""The ``graphnn`` command: a table of subcommands, each imported only when it runs.

Exit codes: 0 success, 1 a check failed (e.g. categories differ from the truth), 2 a user mistake
(one line on stderr, no traceback), 3 the subcommand has not been implemented yet, 130 interrupted.
"""

import argparse
import difflib
import importlib
import sys

from ._version import __version__
from .errors import GraphnnError

SUCCESS, CHECK_FAILED, USAGE_ERROR, NOT_IMPLEMENTED, INTERRUPTED = 0, 1, 2, 3, 130

# name -> (module with main(argv, prog) -> int, one-line summary, the issue that delivers it)
COMMANDS = {
    "topo": (
        "topologies.cli",
        "generate, analyse and draw sparse topologies (RadiX-Net, Kronecker, ER/ERK, Ertl)",
        "the Topologies issue (#4)",
    ),
    "challenge": (
        "challenge.cli",
        "Sparse DNN Graph Challenge: run, verify, generate problems, demo",
        "the Graph Challenge issue (#5)",
    ),
    "train": (
        "graphnn.training.cli",
        "train a sparse MLP, with dynamic weight redistribution",
        "the Sparse MLP training issue (#6)",
    ),
    "prune": (
        "graphnn.training.prune_cli",
        "prune a trained checkpoint (one-shot or gradual) and retrain the structure",
        "the dynamic sparse training issue (#7)",
    ),
    "experiment": (
        "graphnn.training.experiment",
        "run the redistribution comparison: every algorithm at every density",
        "the dynamic sparse training issue (#7)",
    ),
}


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr and exit code 2."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def add_required_subparsers(self, dest):
        """Required subcommands stored in ``dest``, parsed by this class too."""
        sub = self.add_subparsers(dest=dest, metavar=dest.upper(), parser_class=ArgumentParser)
        sub.required = True
        return sub


def _top_parser():
    lines = [f"  {name:<10} {summary}" for name, (_, summary, _) in COMMANDS.items()]
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


def _load(name):
    """The command's module, or None when its implementation has not landed."""
    module = COMMANDS[name][0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        parents = {module.rsplit(".", k)[0] for k in range(module.count(".") + 1)}
        if e.name in parents:
            return None
        raise


def main(argv=None):
    """Entry point of the ``graphnn`` console script; returns the exit code."""
    parser = _top_parser()
    ns = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if ns.command is None:
        return _fail(
            "graphnn", f"missing command; choose from {', '.join(COMMANDS)} (see graphnn --help)"
        )
    if ns.command not in COMMANDS:
        guess = difflib.get_close_matches(ns.command, COMMANDS, n=1)
        hint = (
            f' - maybe you meant "{guess[0]}"' if guess else f"; choose from {', '.join(COMMANDS)}"
        )
        return _fail("graphnn", f'unknown command "{ns.command}"{hint}')
    prog = f"graphnn {ns.command}"
    module = _load(ns.command)
    if module is None:
        return _fail(
            prog, f"not implemented yet: it lands with {COMMANDS[ns.command][2]}", NOT_IMPLEMENTED
        )
    try:
        return module.main(ns.args, prog=prog)
    except SystemExit as e:  # argparse's --help and usage errors
        return e.code
    except GraphnnError as e:
        return _fail(prog, str(e))
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        return _fail(prog, f"{e.strerror or e}{where}")
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
