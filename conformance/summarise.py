"""Summarise an Autobahn|Testsuite report and hold it to the expected-results allow-list.

Reads the ``index.json`` that ``wstest`` writes (agent -> case -> ``behavior`` and
``behaviorClose``), prints the verdict counts per agent, and compares every case with
``conformance/expected.yaml``: a case may do as badly as its allow-list entry says (each entry
gives its reason) and no worse; a case no entry names must be OK or INFORMATIONAL. A case
doing better than its entry is pointed out, so the list can be tightened.

Usage: ``python conformance/summarise.py INDEX.json --role server|client [--expected FILE]``.
Exit code: 0 when no case is worse than allowed, 1 when one is, 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BEHAVIOR_RANK = {"OK": 0, "INFORMATIONAL": 0, "NON-STRICT": 1, "UNIMPLEMENTED": 2, "FAILED": 3}
CLOSE_RANK = {"OK": 0, "INFORMATIONAL": 0, "NON-STRICT": 1, "WRONG CODE": 2, "UNCLEAN": 2}
WORST = 3
"""The rank of FAILED, and of any verdict this script does not know."""

DEFAULT_EXPECTED = Path(__file__).with_name("expected.yaml")


@dataclass(frozen=True)
class Allowance:
    """One allow-list entry: the cases it covers, the worst verdicts allowed, and why."""

    cases: tuple[str, ...]
    behavior: str
    behavior_close: str
    reason: str

    def covers(self, case: str) -> bool:
        """Whether ``case`` (``9.3.1``) matches one of the entry's patterns."""
        return any(fnmatch.fnmatchcase(case, pattern) for pattern in self.cases)


class InputError(Exception):
    """A report or the allow-list cannot be read."""


def load_allowances(path: Path, role: str) -> list[Allowance]:
    """The allow-list entries for ``role`` (``server`` or ``client``) in ``path``."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries = document.get(role, []) if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise InputError(f"{path}: '{role}' must be a list of entries")
        return [
            Allowance(
                cases=tuple(str(case) for case in entry["cases"]),
                behavior=str(entry.get("behavior", "OK")),
                behavior_close=str(entry.get("behaviorClose", "OK")),
                reason=str(entry["reason"]),
            )
            for entry in entries
        ]
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: {exc}") from exc


def load_index(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The report index: agent -> case -> verdicts."""
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from exc
    if not isinstance(index, dict) or not index:
        raise InputError(f"{path}: no agent in the report")
    return index


def case_key(case: str) -> tuple[int, ...]:
    """Sort key for case ids: ``9.10.1`` after ``9.2.1``."""
    return tuple(int(part) if part.isdigit() else 0 for part in case.split("."))


def judge(
    cases: Mapping[str, Mapping[str, Any]], allowances: Sequence[Allowance]
) -> tuple[list[str], list[str]]:
    """Lines for cases worse than allowed, and for cases better than their entry."""
    worse: list[str] = []
    better: list[str] = []
    for case in sorted(cases, key=case_key):
        verdicts = cases[case]
        behavior = str(verdicts.get("behavior"))
        close = str(verdicts.get("behaviorClose"))
        entry = next((a for a in allowances if a.covers(case)), None)
        allowed_behavior = entry.behavior if entry else "OK"
        allowed_close = entry.behavior_close if entry else "OK"
        got = (BEHAVIOR_RANK.get(behavior, WORST), CLOSE_RANK.get(close, WORST))
        limit = (BEHAVIOR_RANK.get(allowed_behavior, WORST), CLOSE_RANK.get(allowed_close, WORST))
        line = f"{case}: {behavior} / {close} (allowed: {allowed_behavior} / {allowed_close})"
        if got[0] > limit[0] or got[1] > limit[1]:
            worse.append(line)
        elif entry is not None and got < limit:
            better.append(line)
    return worse, better


def summarise(index_path: Path, expected_path: Path, role: str) -> int:
    """Print the counts and the verdict against the allow-list; the exit code."""
    try:
        index = load_index(index_path)
        allowances = load_allowances(expected_path, role)
    except InputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    failed = False
    for agent, cases in sorted(index.items()):
        behaviors = Counter(str(v.get("behavior")) for v in cases.values())
        closes = Counter(str(v.get("behaviorClose")) for v in cases.values())
        sys.stdout.write(f"{role} {agent}: {len(cases)} cases\n")
        sys.stdout.write(f"  behavior:      {_counts(behaviors)}\n")
        sys.stdout.write(f"  behaviorClose: {_counts(closes)}\n")
        worse, better = judge(cases, allowances)
        for line in better:
            sys.stdout.write(f"  better than the allow-list says: {line}\n")
        for line in worse:
            sys.stdout.write(f"  WORSE THAN ALLOWED: {line}\n")
        failed = failed or bool(worse)
        verdict = "FAIL" if worse else "PASS"
        sys.stdout.write(f"  {verdict}: {len(worse)} case(s) worse than the allow-list\n")
    return 1 if failed else 0


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{count} {name}" for name, count in counter.most_common())


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Hold an Autobahn report to the allow-list.")
    parser.add_argument("index", type=Path, help="the report's index.json")
    parser.add_argument("--role", choices=("server", "client"), required=True)
    parser.add_argument("--expected", type=Path, default=DEFAULT_EXPECTED)
    args = parser.parse_args(argv)
    return summarise(args.index, args.expected, args.role)


if __name__ == "__main__":
    sys.exit(main())
