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
    for name in ("topo", "challenge", "train", "evaluate", "convert", "prune", "experiment"):
        assert f"  {name} " in out


def test_no_command_prints_help_and_unknown_is_a_one_line_error(capsys):
    assert cli.main([]) == cli.SUCCESS
    assert "commands:" in capsys.readouterr().out
    assert cli.main(["trian"]) == cli.USAGE_ERROR
    err = capsys.readouterr().err.splitlines()
    assert err == ['graphnn: error: unknown command "trian" - maybe you meant "train"']


def test_every_command_has_help(capsys):
    for name in cli.COMMANDS:
        assert cli.main([name, "--help"]) == 0
        assert f"usage: graphnn {name}" in capsys.readouterr().out


def test_user_errors_are_one_line_without_traceback(monkeypatch, tmp_path, capsys):
    import types

    def main(argv, prog):
        graphnn.load(tmp_path / "missing.npz")

    fake = types.ModuleType("graphnn.cli.topo")
    fake.main = main
    monkeypatch.setitem(sys.modules, "graphnn.cli.topo", fake)
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
