"""The ``pointly`` group: lazy commands, one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
import types

import click
import pytest

from pointly.cli import main as cli_main
from pointly.pointgen.base.errors import PointlyError


@pytest.fixture
def fake_command(monkeypatch):
    """Register a throw-away sub-command module ``pointly.cli._fake`` for the test."""
    mod = types.ModuleType("pointly.cli._fake")

    @click.command()
    @click.option("--fail", is_flag=True)
    def fake(fail: bool) -> None:
        if fail:
            raise PointlyError("segment 7 has no points", file="in.json", record="annotations[3]", fix="add a point")
        click.echo("ran")

    mod.fake = fake
    monkeypatch.setitem(sys.modules, "pointly.cli._fake", mod)
    monkeypatch.setitem(cli_main.COMMANDS, "fake", "_fake:fake")
    return fake


def test_user_error_is_one_line_exit_2(fake_command, capsys):
    assert cli_main.main(["fake", "--fail"]) == 2
    err = capsys.readouterr().err
    assert err == "pointly: error: in.json: annotations[3]: segment 7 has no points (add a point)\n"


def test_command_runs(fake_command, capsys):
    assert cli_main.main(["fake"]) == 0
    assert capsys.readouterr().out == "ran\n"


def test_unknown_command_and_bad_option_exit_2(capsys):
    assert cli_main.main(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_missing_command_modules_are_hidden_not_fatal(monkeypatch, capsys):
    monkeypatch.setitem(cli_main.COMMANDS, "ghost", "ghost_module_that_does_not_exist:ghost")
    assert cli_main.main(["--help"]) == 0
    assert "ghost" not in capsys.readouterr().out


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "pointly.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "pointly" in out.stdout


def test_error_message_never_spans_lines():
    e = PointlyError("bad\nvalue", file="f.json")
    assert "\n" not in e.one_line()


def test_click_usage_errors_are_one_line(fake_command, capsys):
    assert cli_main.main(["fake", "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("pointly: error: No such option") and "--no-such-option" in err
    assert "(see 'pointly fake --help')" in err
