"""Files named inside a scenario: kept inside the scenario's folder, read safely and bounded.

A scenario may point at other files (``send: {binary: {file: frame.bin}}``, ``caPath``...).
Every such reference is relative to the folder holding the scenario, may not leave that
folder (neither by ``..`` nor by a symlink), and must name a regular file no larger than the
given limit. Files are opened first and checked on the open descriptor, so what is checked is
what is read, and a FIFO or device can neither hang nor flood the reader.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from wscenario.core.diagnostics import Diagnostic

if TYPE_CHECKING:
    from wscenario.core.source import SourceMap

_NOT_REGULAR_HINT = "refer to a regular file, not a folder, device, FIFO or socket"
_READ_CHUNK = 1024 * 1024


class FileReferenceError(Exception):
    """A file cannot be used: ``message`` says why, ``hint`` what to do.

    ``pointer`` is the JSON Pointer of the scenario value that names the file ("" when the
    file was not named by a scenario value).
    """

    def __init__(self, message: str, hint: str | None = None, *, pointer: str = "") -> None:
        self.message = message
        self.hint = hint
        self.pointer = pointer
        super().__init__(message)

    def to_diagnostic(self, source_map: SourceMap) -> Diagnostic:
        """The same problem, placed at the value that names the file."""
        return Diagnostic(
            source_map.value_position(self.pointer), self.message, self.pointer, self.hint
        )


def check_reference_path(base_dir: Path, ref: str, *, pointer: str = "") -> Path:
    """Resolve ``ref`` against ``base_dir`` and make sure it stays inside that folder.

    The file need not exist (a certificate may be created later); symlinks that do exist are
    followed before the check.

    Raises:
        FileReferenceError: ``ref`` is empty, holds a NUL byte, is absolute, or leaves the
            folder.
    """
    if not ref:
        raise FileReferenceError("file reference is empty", "name a file", pointer=pointer)
    if "\0" in ref:
        raise FileReferenceError(
            f"file reference contains a NUL byte: {ref!r}",
            "remove the NUL character from the path",
            pointer=pointer,
        )
    if Path(ref).is_absolute():
        raise FileReferenceError(
            f"file reference must be a relative path: {ref}",
            "write the path relative to the folder that holds the scenario",
            pointer=pointer,
        )
    root = Path(os.path.realpath(base_dir))
    target = Path(os.path.realpath(root / ref))  # a symlink loop stays unresolved here
    if not target.is_relative_to(root):
        raise FileReferenceError(
            f"file reference leaves the scenario's folder: {ref}",
            "copy the file into the scenario's folder (or a subfolder) and refer to it there",
            pointer=pointer,
        )
    return target


def resolve_reference(base_dir: Path, ref: str, *, pointer: str) -> Path:
    """The real path of an existing regular file named by ``ref``, inside ``base_dir``.

    Raises:
        FileReferenceError: as :func:`check_reference_path`, or the file is missing or is
            not a regular file.
    """
    target = check_reference_path(base_dir, ref, pointer=pointer)
    try:
        mode = target.stat().st_mode
    except OSError as exc:
        raise _open_error(ref, exc, pointer) from None
    if not stat.S_ISREG(mode):
        raise FileReferenceError(f"not a regular file: {ref}", _NOT_REGULAR_HINT, pointer=pointer)
    return target


def read_reference(base_dir: Path, ref: str, *, max_bytes: int, pointer: str) -> bytes:
    """The contents of the file named by ``ref``, checked as :func:`resolve_reference`.

    Raises:
        FileReferenceError: as :func:`resolve_reference`, or the file is over ``max_bytes``.
    """
    target = resolve_reference(base_dir, ref, pointer=pointer)
    return read_regular_file(target, max_bytes=max_bytes, name=ref, pointer=pointer)


def read_regular_file(
    path: Path, *, max_bytes: int, name: str | None = None, pointer: str = ""
) -> bytes:
    """Read a whole regular file of at most ``max_bytes`` bytes.

    The file is opened without blocking (a FIFO cannot hang) and checked with ``fstat`` on the
    open descriptor; at most ``max_bytes + 1`` bytes are read, so a file that grows while it
    is read is refused too. ``name`` is how messages show the file (default: ``path``).

    Raises:
        FileReferenceError: the file is missing, unreadable, not a regular file, or too large.
    """
    shown = str(path) if name is None else name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise _open_error(shown, exc, pointer) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileReferenceError(
                f"not a regular file: {shown}", _NOT_REGULAR_HINT, pointer=pointer
            )
        if info.st_size > max_bytes:
            raise _too_large(shown, info.st_size, max_bytes, pointer)
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            chunk = os.read(fd, min(_READ_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > max_bytes:
        raise _too_large(shown, total, max_bytes, pointer)
    return b"".join(chunks)


def _too_large(shown: str, size: int, max_bytes: int, pointer: str) -> FileReferenceError:
    return FileReferenceError(
        f"file is too large: {shown} ({size} bytes, the limit is {max_bytes})",
        "use a smaller file",
        pointer=pointer,
    )


def _open_error(shown: str, exc: OSError, pointer: str) -> FileReferenceError:
    if exc.errno == errno.ENOENT:
        return FileReferenceError(
            f"file not found: {shown}", "check the name and the folder", pointer=pointer
        )
    if exc.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
        return FileReferenceError(
            f"not a regular file: {shown}", _NOT_REGULAR_HINT, pointer=pointer
        )
    reason = (exc.strerror or "unknown error").lower()
    return FileReferenceError(f"cannot read {shown}: {reason}", None, pointer=pointer)
