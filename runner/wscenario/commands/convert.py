"""``wscenario convert``: write the scenario that plays one side of a transcript.

The scenario goes to stdout, or to ``-o FILE``: written to a temporary file beside it and
renamed into place, so a reader never sees half a scenario; an existing FILE is kept unless
``--force``. Notes on values that look volatile are printed as YAML comments above their step.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from wscenario.cli import EXIT_OK
from wscenario.core.convert import convert, render_yaml
from wscenario.core.schema import schema_path
from wscenario.core.transcript import Header
from wscenario.engine.replay import read_records
from wscenario.errors import UsageError
from wscenario.report.output_file import write_atomic

SUFFIXES = (".jsonl", ".json", ".transcript")


def run(args: argparse.Namespace) -> int:
    """Run the ``convert`` command; returns the exit code."""
    path = Path(args.transcript)
    output = Path(args.output) if args.output else None
    if output is not None and output.exists() and not args.force:
        raise UsageError(f"{output} exists; add --force to overwrite it")
    records = read_records(path, warn=sys.stderr.write)
    _, header = next(records)
    assert isinstance(header, Header)  # the reader checks that the first line is one
    name = path.name.removesuffix(path.suffix) if path.suffix in SUFFIXES else path.name
    converted = convert(
        header,
        (record for _, record in records if not isinstance(record, Header)),
        side=args.side,
        name=_readable(name),
        loose=args.loose,
        profile=args.profile,
    )
    schema = schema_path().resolve()
    if output is not None:  # relative, so the file and the checkout can move together
        schema = Path(os.path.relpath(schema, output.resolve().parent))
    source, schema_line = _readable(path.name), _readable(schema.as_posix())
    text = render_yaml(converted, source=source, schema=schema_line)
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text.encode("utf-8"))
        steps = converted.data["steps"]
        count = len(steps) if isinstance(steps, list) else 0
        sys.stderr.write(f"wrote {output} ({count} steps)\n")
    return EXIT_OK


def _readable(file_name: str) -> str:
    """A file name as valid text: bytes that are not UTF-8 become U+FFFD."""
    return os.fsencode(file_name).decode("utf-8", "replace")
