"""The command line's own behaviour: version, help, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_an_unreadable_file_is_one_diagnostic_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"
    code = main(["replay", str(missing), "--against", "ws://127.0.0.1:9/"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == f"{missing}:1:1: error: cannot read transcript {missing}: file not found\n"
