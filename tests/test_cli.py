"""The command line's own behaviour: version, help, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wscenario import __version__
from wscenario.cli import main

CHAT = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "valid" / "chat.jsonl"


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


def _failing(kind: str, folder: Path) -> list[str]:
    """A command line that stops with an expected error of ``kind``."""
    if kind == "invalid file":
        (folder / "bad.jsonl").write_text("not a transcript\n", encoding="utf-8")
        return ["replay", str(folder / "bad.jsonl"), "--against", "ws://127.0.0.1:9/"]
    if kind == "cannot run":
        return ["convert", str(CHAT), "--side", "client", "-o", str(folder / "no" / "a.yaml")]
    return ["run", str(folder / "nonexist.yaml")]


@pytest.mark.parametrize(
    ("kind", "code"), [("bad usage", 2), ("invalid file", 2), ("cannot run", 3)]
)
def test_debug_adds_a_traceback_and_keeps_the_exit_code(
    kind: str, code: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _failing(kind, tmp_path)
    assert main(argv) == code
    plain = capsys.readouterr().err
    assert plain.startswith(("wscenario: error: ", str(tmp_path)))
    for debug in (["--debug", *argv], [*argv, "--debug"]):
        assert main(debug) == code
        err = capsys.readouterr().err
        assert err.startswith("Traceback (most recent call last):")
        assert err.endswith(f"\n{plain}")
