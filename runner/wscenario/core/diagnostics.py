"""Diagnostics: one problem found in a scenario or transcript file, and how it is shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wscenario.core.printable import printable

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Position:
    """A place in a source file; ``line`` and ``col`` are 1-based."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem, with where it is, the JSON Pointer of the offending value, and a hint."""

    position: Position
    message: str
    pointer: str = ""
    hint: str | None = None
    severity: Severity = "error"

    def render(self) -> str:
        """``file:line:col: error: /pointer: message`` plus an indented hint line.

        What came from the file (its name, keys, values) is shown with control characters
        escaped, so a hostile file cannot act on the terminal.
        """
        where = f"{self.pointer}: " if self.pointer else ""
        text = printable(f"{self.position}: {self.severity}: {where}{self.message}")
        if self.hint:
            text += f"\n    hint: {printable(self.hint)}"
        return text
