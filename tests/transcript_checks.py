"""Checks every test that writes a transcript applies: the schema, line by line, and the reader."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from wscenario.core.transcript import Record
from wscenario.engine.transcript_io import open_transcript

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "transcript.schema.json"


@cache
def transcript_validator() -> jsonschema.Draft202012Validator:
    """A validator for one transcript line."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def schema_errors(line: bytes) -> list[str]:
    """What the schema finds wrong with one line (empty: valid)."""
    instance: Any = json.loads(line)
    return [error.message for error in transcript_validator().iter_errors(instance)]


def checked_transcript(path: Path, *, complete: bool = True) -> list[Record]:
    """The records of ``path``, after checking every line against the schema."""
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        assert schema_errors(line) == [], f"{path.name} line {number}"
    transcript = open_transcript(path)
    records = list(transcript)
    assert transcript.complete is complete
    if complete:
        assert transcript.warnings == []
    return records
