import subprocess
import sys

import pytest

import graphnn
from graphnn import cli


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"graphnn {graphnn.__version__}"


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("topo", "challenge", "train", "prune", "experiment"):
        assert f"  {name} " in out


def test_missing_and_unknown_commands_are_one_line_usage_errors(capsys):
    assert cli.main([]) == cli.USAGE_ERROR
    assert cli.main(["trian"]) == cli.USAGE_ERROR
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "graphnn: error: missing command; choose from topo, challenge, train, prune, experiment "
        "(see graphnn --help)",
        'graphnn: error: unknown command "trian" - maybe you meant "train"',
    ]


def test_unlanded_command_says_so(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "train", ("graphnn.not_landed_yet", "x", "issue #99"))
    assert cli.main(["train", "--epochs", "3"]) == cli.NOT_IMPLEMENTED
    assert capsys.readouterr().err == (
        "graphnn train: error: not implemented yet: it lands with issue #99\n"
    )


def test_user_errors_are_one_line_without_traceback(monkeypatch, tmp_path, capsys):
    import types

    def main(argv, prog):
        graphnn.load(tmp_path / "missing.npz")

    fake = types.ModuleType("fake_cmd")
    fake.main = main
    monkeypatch.setitem(sys.modules, "fake_cmd", fake)
    monkeypatch.setitem(cli.COMMANDS, "topo", ("fake_cmd", "x", "y"))
    assert cli.main(["topo"]) == cli.USAGE_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.npz: no such file" in err


def test_console_script_bad_argument():
    proc = subprocess.run(
        [sys.executable, "-m", "graphnn.cli", "--frobnicate"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "--frobnicate" in proc.stderr and "Traceback" not in proc.stderr
