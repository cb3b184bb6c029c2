"""Golden cases: each ``fixtures/invalid/<case>.yaml`` validates to exactly ``<case>.expected``.

The files are copied to a temporary folder (keeping their paths relative to the repository
root, as the expected output shows them), where a symlink leaving the folder is added.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wscenario.cli import main

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "fixtures" / "invalid").glob("*.yaml"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "fixtures" / "invalid", tmp_path / "fixtures" / "invalid")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"outside the scenario's folder")
    (tmp_path / "fixtures" / "invalid" / "outside.bin").symlink_to(secret)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_case_has_an_expected_output() -> None:
    assert len(CASES) >= 25
    missing = [case.name for case in CASES if not case.with_suffix(".expected").is_file()]
    assert missing == []


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_golden(case: Path, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = case.with_suffix(".expected").read_text(encoding="utf-8")
    code = main(["validate", f"fixtures/invalid/{case.name}"])
    out = capsys.readouterr().out
    assert out == expected
    assert code == (0 if expected.endswith(", 0 invalid\n") else 2)
