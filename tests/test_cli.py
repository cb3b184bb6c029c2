"""The command line's own behaviour: version, help, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wscenario import __version__
from wscenario.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"wscenario {__version__}"


def test_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_python_dash_m_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "wscenario", "--help"], capture_output=True, text=True, check=True
    )
    assert "validate" in out.stdout
