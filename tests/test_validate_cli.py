"""``wscenario validate``: output, --max-errors, --list, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from wscenario.cli import main

VALID = Path(__file__).resolve().parents[1] / "fixtures" / "valid"
BAD = 'wscenario: 1\nclient: {url: "ws://h/"}\nsteps:\n' + "  - sned: 1\n" * 5


def test_valid_folder_with_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--list", str(VALID)]) == 0
    assert capsys.readouterr().out == (
        f"{VALID / 'client_full.yaml'}: client login and echo\n"
        f"{VALID / 'server_full.yaml'}: server server_full\n"
        "2 files valid, 0 invalid\n"
    )


def test_max_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    assert main(["validate", "--max-errors", "2", str(bad), str(VALID / "client_full.yaml")]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "error:" in line] == [
        f"{bad}:8:5: error: /steps/4/sned: unknown key 'sned'",
        f"{bad}:4:5: error: /steps/0/sned: unknown key 'sned'",
    ]
    assert lines[-2:] == [f"... and 3 more errors in {bad}", "1 file valid, 1 invalid"]


def test_one_more_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    assert main(["validate", "--max-errors", "4", str(bad)]) == 2
    assert capsys.readouterr().out.splitlines()[-2] == f"... and 1 more error in {bad}"


def test_no_scenarios_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"wscenario: error: no scenario files (*.yaml, *.yml) in {tmp_path}\n"
    )


def test_negative_max_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--max-errors", "-1", str(VALID)]) == 2
    assert "--max-errors must be 0 or more" in capsys.readouterr().err
