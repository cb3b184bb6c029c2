"""Atomic report files: all or nothing, and a clear error where writing is impossible."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wscenario.errors import CannotRun
from wscenario.report.output_file import write_atomic


def test_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.xml"
    target.write_bytes(b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.xml"]


def test_missing_folder_cannot_run(tmp_path: Path) -> None:
    with pytest.raises(CannotRun, match=r"cannot write .*missing.*out\.xml"):
        write_atomic(tmp_path / "missing" / "out.xml", b"x")


def test_target_is_a_folder_cannot_run_and_cleans_up(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(CannotRun, match="cannot write"):
        write_atomic(tmp_path / "taken", b"x")
    assert os.listdir(tmp_path) == ["taken"]
