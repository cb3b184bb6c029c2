"""``wscenario validate``: check scenario files without running them.

Each problem is printed as ``file:line:col: error: /pointer: message`` with a hint line, at
most ``--max-errors`` per file, then a summary. Exit code 0 when every file is valid, 2
otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wscenario.core.scenario_loader import find_scenario_files, inspect_scenario
from wscenario.errors import UsageError

EXIT_VALID = 0
EXIT_INVALID = 2


def run(args: argparse.Namespace) -> int:
    """Validate the files and folders in ``args.paths``; the exit code.

    Raises:
        UsageError: the paths hold no scenario file, or ``--max-errors`` is negative.
    """
    if args.max_errors < 0:
        raise UsageError("--max-errors must be 0 or more")
    paths = [Path(text) for text in args.paths]
    files = find_scenario_files(paths)
    if not files:
        shown = ", ".join(args.paths)
        raise UsageError(f"no scenario files (*.yaml, *.yml) in {shown}")
    out = sys.stdout
    valid = 0
    for path in files:
        diagnostics, scenario = inspect_scenario(path)
        for diagnostic in diagnostics[: args.max_errors]:
            out.write(diagnostic.render() + "\n")
        hidden = len(diagnostics) - args.max_errors
        if hidden > 0:
            out.write(f"... and {hidden} more {_plural(hidden, 'error')} in {path}\n")
        if scenario is not None:
            valid += 1
            if args.list:
                out.write(f"{path}: {scenario.side} {scenario.name}\n")
    invalid = len(files) - valid
    out.write(f"{valid} {_plural(valid, 'file')} valid, {invalid} invalid\n")
    return EXIT_VALID if invalid == 0 else EXIT_INVALID


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
