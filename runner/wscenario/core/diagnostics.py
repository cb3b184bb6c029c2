"""Diagnostics: one problem found in a scenario or transcript file, and how it is shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
        """``file:line:col: error: /pointer: message`` plus an indented hint line."""
        where = f"{self.pointer}: " if self.pointer else ""
        text = f"{self.position}: {self.severity}: {where}{self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text
