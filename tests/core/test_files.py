"""File references stay inside the scenario's folder and read only small regular files."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from wscenario.core.diagnostics import Diagnostic, Position
from wscenario.core.files import (
    FileReferenceError,
    check_reference_path,
    read_reference,
    read_regular_file,
    resolve_reference,
)
from wscenario.core.source import parse_yaml

NOT_REGULAR = "refer to a regular file, not a folder, device, FIFO or socket"
LEAVES_HINT = "copy the file into the scenario's folder (or a subfolder) and refer to it there"
MISSING_HINT = "check the name and the folder"


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    """A scenario folder with a data file and a subfolder, next to a secret outside it."""
    base = tmp_path / "scenario"
    (base / "data").mkdir(parents=True)
    (base / "data" / "frame.bin").write_bytes(b"\x00\xff" * 4)
    (tmp_path / "secret.txt").write_text("outside")
    return base


def refused(call: object, *args: object, **kwargs: object) -> tuple[str, str | None, str]:
    assert callable(call)
    with pytest.raises(FileReferenceError) as caught:
        call(*args, **kwargs)
    error = caught.value
    assert str(error) == error.message
    return error.message, error.hint, error.pointer


@pytest.mark.parametrize(
    ("ref", "message", "hint"),
    [
        ("", "file reference is empty", "name a file"),
        (
            "data/a\0b",
            "file reference contains a NUL byte: 'data/a\\x00b'",
            "remove the NUL character from the path",
        ),
        (
            "/etc/passwd",
            "file reference must be a relative path: /etc/passwd",
            "write the path relative to the folder that holds the scenario",
        ),
        (
            "../secret.txt",
            "file reference leaves the scenario's folder: ../secret.txt",
            LEAVES_HINT,
        ),
        (
            "data/../../secret.txt",
            "file reference leaves the scenario's folder: data/../../secret.txt",
            LEAVES_HINT,
        ),
        ("..", "file reference leaves the scenario's folder: ..", LEAVES_HINT),
    ],
)
def test_paths_that_are_refused(scenario_dir: Path, ref: str, message: str, hint: str) -> None:
    for call in (check_reference_path, resolve_reference):
        assert refused(call, scenario_dir, ref, pointer="/steps/0/send/binary/file") == (
            message,
            hint,
            "/steps/0/send/binary/file",
        )
    assert refused(read_reference, scenario_dir, ref, max_bytes=100, pointer="/tls/caPath") == (
        message,
        hint,
        "/tls/caPath",
    )


def test_a_path_inside_need_not_exist_to_be_checked(scenario_dir: Path) -> None:
    real = Path(os.path.realpath(scenario_dir))
    assert check_reference_path(scenario_dir, "tls/ca.pem") == real / "tls" / "ca.pem"
    assert check_reference_path(scenario_dir, "data/../data/frame.bin") == (
        real / "data" / "frame.bin"
    )
    assert check_reference_path(scenario_dir, "~/x") == real / "~" / "x"  # no home expansion


def test_a_symlink_that_leaves_the_folder_is_refused(scenario_dir: Path) -> None:
    (scenario_dir / "out").symlink_to(scenario_dir.parent)
    (scenario_dir / "secret.txt").symlink_to(scenario_dir.parent / "secret.txt")
    for ref in ("out/secret.txt", "secret.txt", "out/not-yet-there.pem"):
        message = f"file reference leaves the scenario's folder: {ref}"
        assert refused(check_reference_path, scenario_dir, ref) == (message, LEAVES_HINT, "")
        assert refused(read_reference, scenario_dir, ref, max_bytes=100, pointer="/p") == (
            message,
            LEAVES_HINT,
            "/p",
        )


def test_symlinks_inside_the_folder_are_followed(scenario_dir: Path, tmp_path: Path) -> None:
    (scenario_dir / "alias.bin").symlink_to(scenario_dir / "data" / "frame.bin")
    real = Path(os.path.realpath(scenario_dir)) / "data" / "frame.bin"
    assert resolve_reference(scenario_dir, "alias.bin", pointer="") == real
    assert read_reference(scenario_dir, "alias.bin", max_bytes=8, pointer="") == b"\x00\xff" * 4
    # the scenario folder itself may be reached through a symlink
    (tmp_path / "via").symlink_to(scenario_dir)
    assert read_reference(tmp_path / "via", "data/frame.bin", max_bytes=8, pointer="") == (
        b"\x00\xff" * 4
    )


def test_missing_and_non_regular_files(scenario_dir: Path) -> None:
    assert refused(resolve_reference, scenario_dir, "data/nope.bin", pointer="/x") == (
        "file not found: data/nope.bin",
        MISSING_HINT,
        "/x",
    )
    assert refused(resolve_reference, scenario_dir, "data", pointer="/x") == (
        "not a regular file: data",
        NOT_REGULAR,
        "/x",
    )
    os.mkfifo(scenario_dir / "pipe")
    assert refused(read_reference, scenario_dir, "pipe", max_bytes=10, pointer="/x") == (
        "not a regular file: pipe",
        NOT_REGULAR,
        "/x",
    )
    (scenario_dir / "loop").symlink_to(scenario_dir / "loop")
    assert refused(resolve_reference, scenario_dir, "loop", pointer="/x") == (
        "cannot read loop: too many levels of symbolic links",
        None,
        "/x",
    )


def test_read_reference_keeps_to_the_size_limit(scenario_dir: Path) -> None:
    assert read_reference(scenario_dir, "data/frame.bin", max_bytes=8, pointer="") == (
        b"\x00\xff" * 4
    )
    assert refused(read_reference, scenario_dir, "data/frame.bin", max_bytes=7, pointer="/b") == (
        "file is too large: data/frame.bin (8 bytes, the limit is 7)",
        "use a smaller file",
        "/b",
    )
    (scenario_dir / "empty").write_bytes(b"")
    assert read_reference(scenario_dir, "empty", max_bytes=0, pointer="") == b""


def test_read_regular_file_reads_big_files_in_chunks(tmp_path: Path) -> None:
    content = bytes(range(256)) * (10 * 1024)  # 2.5 MiB
    path = tmp_path / "big.bin"
    path.write_bytes(content)
    assert read_regular_file(path, max_bytes=len(content)) == content
    assert refused(read_regular_file, path, max_bytes=len(content) - 1) == (
        f"file is too large: {path} ({len(content)} bytes, the limit is {len(content) - 1})",
        "use a smaller file",
        "",
    )


def test_read_regular_file_stops_at_the_limit_when_the_size_lies() -> None:
    # /proc files are regular files that report a size of 0 but have content
    status = Path("/proc/self/status")
    assert os.stat(status).st_size == 0
    assert read_regular_file(status, max_bytes=1 << 20).startswith(b"Name:")
    assert refused(read_regular_file, status, max_bytes=10, name="status") == (
        "file is too large: status (11 bytes, the limit is 10)",
        "use a smaller file",
        "",
    )


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_read_regular_file_refuses_devices(device: str) -> None:
    assert refused(read_regular_file, Path(device), max_bytes=10) == (
        f"not a regular file: {device}",
        NOT_REGULAR,
        "",
    )


def test_read_regular_file_refuses_sockets_and_directories(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert refused(read_regular_file, path, max_bytes=10) == (
            f"not a regular file: {path}",
            NOT_REGULAR,
            "",
        )
    assert refused(read_regular_file, tmp_path, max_bytes=10, name="here") == (
        "not a regular file: here",
        NOT_REGULAR,
        "",
    )


def test_an_error_becomes_a_diagnostic_at_the_value(scenario_dir: Path) -> None:
    document = parse_yaml(b"steps:\n  - send:\n      binary: {file: ../secret.txt}\n", "s.yaml")
    pointer = "/steps/0/send/binary/file"
    with pytest.raises(FileReferenceError) as caught:
        read_reference(scenario_dir, "../secret.txt", max_bytes=100, pointer=pointer)
    assert caught.value.to_diagnostic(document.source_map) == Diagnostic(
        Position("s.yaml", 3, 22),
        "file reference leaves the scenario's folder: ../secret.txt",
        pointer,
        LEAVES_HINT,
    )
