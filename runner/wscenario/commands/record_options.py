"""``--record DIR`` and the redaction options, for every command that writes transcripts.

Only ``argparse`` is imported at module level: the parser is built at every start.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from wscenario.errors import UsageError

if TYPE_CHECKING:
    from wscenario.core.redaction_policy import RedactionPolicy
    from wscenario.engine.transcript_tap import Recording


def add_redaction_options(parser: argparse.ArgumentParser) -> None:
    """``--no-redact``, ``--redact-pointer POINTER`` and ``--redact-regex REGEX``."""
    parser.add_argument(
        "--no-redact",
        action="store_true",
        help="write secrets (credential headers, token query parameters...) as they are",
    )
    parser.add_argument(
        "--redact-pointer",
        action="append",
        default=[],
        metavar="POINTER",
        help="also redact this JSON Pointer in JSON text messages, e.g. /token (repeatable)",
    )
    parser.add_argument(
        "--redact-regex",
        action="append",
        default=[],
        metavar="REGEX",
        help="also redact group 1 (or the whole match) of REGEX in text messages (repeatable)",
    )


def add_record_options(parser: argparse.ArgumentParser) -> None:
    """``--record DIR`` and the redaction options."""
    parser.add_argument(
        "--record",
        metavar="DIR",
        help="write one transcript per connection into DIR (see docs/transcripts.md)",
    )
    add_redaction_options(parser)


def redaction_policy(args: argparse.Namespace) -> RedactionPolicy:
    """The redaction policy the options ask for.

    Raises:
        UsageError: a pointer or regex is invalid.
    """
    from wscenario.core.redaction_policy import PolicyError, RedactionPolicy, RedactionRule

    try:
        rules = tuple(RedactionRule.for_pointer(p) for p in args.redact_pointer) + tuple(
            RedactionRule.for_regex(r) for r in args.redact_regex
        )
    except PolicyError as exc:
        raise UsageError(str(exc)) from None
    return RedactionPolicy(enabled=not args.no_redact, rules=rules)


def recording_from_args(args: argparse.Namespace) -> Recording | None:
    """The recording ``--record`` asks for (``None`` without it); problems go to stderr.

    Raises:
        UsageError: a redaction rule is invalid.
    """
    policy = redaction_policy(args)
    if args.record is None:
        return None
    from pathlib import Path

    from wscenario.engine.transcript_tap import Recording

    def warn(message: str) -> None:
        sys.stderr.write(f"warning: {message}\n")

    return Recording(Path(args.record), policy, warn=warn)
