"""The exceptions wscenario raises, and the exit code each one means.

::

    WScenarioError                 exit_code
    ├── UsageError                 2  bad command line (unknown --var, bad --listen...)
    ├── ScenarioLoadError          2  a scenario or transcript file is invalid (.diagnostics)
    └── CannotRun                  3  port in use, I/O error, unreachable where not expected

A failed scenario is not an exception: runs return results, and the command turns them into
exit code 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from wscenario.core.diagnostics import Diagnostic


class WScenarioError(Exception):
    """Base class; ``exit_code`` is what the command line exits with."""

    exit_code = 3


class UsageError(WScenarioError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2


class ScenarioLoadError(WScenarioError):
    """A file is not a valid scenario (or transcript); ``diagnostics`` say where and why."""

    exit_code = 2

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0].render() if self.diagnostics else "invalid file"
        super().__init__(first)


class CannotRun(WScenarioError):
    """Something outside the scenario prevents running it (port in use, I/O error...)."""

    exit_code = 3
