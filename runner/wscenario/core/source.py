"""Safe YAML loading: JSON data plus a source map from JSON Pointers to file positions.

The YAML event stream is turned into JSON data by a small iterative builder, so no Python
object is ever constructed from a tag, and every key and value (scalars included) keeps the
place it was written. The builder refuses what a scenario never needs and what makes YAML
dangerous or surprising to load:

* anchors and aliases (billion laughs, self-containing lists), before anything is built;
* tags other than the JSON core ones (``!!python/...``, ``!!binary``, ``!!set``, ``!custom``);
* several documents in one file, and an empty file;
* duplicate keys and keys that are not strings (``on:`` loads as a bool, ``1:`` as an int);
* non-finite numbers (``.nan``, ``.inf``), text that is not UTF-8, control characters;
* nesting deeper than :data:`MAX_DEPTH` levels, and files over :data:`MAX_FILE_BYTES`.

YAML 1.1 implicit types are kept as YAML resolves them (``NO`` is false, ``0755`` is 493),
except timestamps, which stay text; :meth:`SourceMap.source_text` keeps the text as written so
the schema stage can hint ``quote this value: "NO"``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, cast

import yaml

from wscenario.core.diagnostics import Diagnostic, Position
from wscenario.core.files import FileReferenceError, read_regular_file
from wscenario.core.model import JSON

MAX_FILE_BYTES = 4 * 1024 * 1024
"""The largest YAML file :func:`load_yaml_file` reads by default."""

MAX_DEPTH = 64
"""The deepest nesting of mappings and lists a file may have."""

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CORE = "tag:yaml.org,2002:"
_YAML11_BOOL_WORDS = frozenset({"yes", "no", "on", "off", "y", "n"})
"""Plain words YAML 1.1 reads as booleans but YAML 1.2 reads as text; accepted as keys."""

_STR, _NULL, _BOOL, _INT, _FLOAT = (_CORE + t for t in ("str", "null", "bool", "int", "float"))
_MAP, _SEQ = _CORE + "map", _CORE + "seq"
_BOMS_REFUSED = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)
_UTF8_BOM = b"\xef\xbb\xbf"
_LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")
_NON_PRINTABLE: re.Pattern[str] = yaml.reader.Reader.NON_PRINTABLE
_NESTING_PROBLEM = "exceeded maximum nesting depth"  # libyaml's own limit (1000 levels)


class _Mark(Protocol):
    """Where a YAML event starts (0-based), from either parser."""

    line: int
    column: int


_Resolve = Callable[[type[yaml.Node], str, tuple[bool, bool]], str]


class _Entry(NamedTuple):
    key_line: int
    key_col: int
    line: int
    col: int
    plain: bool
    text: str | None


@dataclass(frozen=True)
class SourceMap:
    """Where each value of a loaded document was written, by RFC 6901 JSON Pointer."""

    path: str
    """The file as given, for display."""
    _entries: dict[str, _Entry] = field(repr=False, compare=False)

    def _entry(self, pointer: str) -> _Entry:
        while pointer not in self._entries:
            pointer = pointer.rpartition("/")[0]
        return self._entries[pointer]

    def value_position(self, pointer: str) -> Position:
        """Start of the value at ``pointer`` ("" is the root).

        For a pointer that does not exist: the value of its nearest existing ancestor.
        """
        entry = self._entry(pointer)
        return Position(self.path, entry.line, entry.col)

    def key_position(self, pointer: str) -> Position:
        """The mapping key whose value is at ``pointer`` (list items and root: the value)."""
        entry = self._entry(pointer)
        return Position(self.path, entry.key_line, entry.key_col)

    def is_plain_scalar(self, pointer: str) -> bool:
        """Whether the value at ``pointer`` is a scalar written without quotes."""
        return pointer in self._entries and self._entries[pointer].plain

    def source_text(self, pointer: str) -> str | None:
        """The scalar at ``pointer`` as written, before YAML gave it a type (None otherwise).

        Quoted scalars are given without their quotes and with escapes applied.
        """
        entry = self._entries.get(pointer)
        return None if entry is None else entry.text


@dataclass(frozen=True)
class Document:
    """One loaded YAML file: its JSON data and where each value came from."""

    path: Path
    data: JSON
    source_map: SourceMap


class SourceError(Exception):
    """The file cannot be loaded; ``diagnostics`` (never empty) say where and why."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...]) -> None:
        if not diagnostics:
            raise ValueError("a SourceError needs at least one diagnostic")
        self.diagnostics = diagnostics
        super().__init__(diagnostics[0].render())


def load_yaml_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> Document:
    """Read and parse one YAML file (see :func:`parse_yaml`).

    Raises:
        SourceError: the file is missing, not a regular file, over ``max_bytes``, or invalid.
    """
    try:
        content = read_regular_file(path, max_bytes=max_bytes)
    except FileReferenceError as exc:
        position = Position(str(path), 1, 1)
        raise SourceError((Diagnostic(position, exc.message, hint=exc.hint),)) from None
    document = parse_yaml(content, str(path))
    return Document(path, document.data, document.source_map)


def parse_yaml(text: bytes, path: str) -> Document:
    """Parse one YAML document from UTF-8 ``text`` (a leading BOM is allowed).

    ``path`` is only used to show positions.

    Raises:
        SourceError: the text is not one valid, safe, JSON-like YAML document.
    """
    loader = _LOADER(_decode(text, path))
    builder = _Builder(path, loader)
    try:
        data = builder.build()
    except yaml.MarkedYAMLError as exc:
        raise SourceError((*builder.diagnostics, _syntax_diagnostic(exc, path))) from None
    finally:
        loader.dispose()
    if builder.diagnostics:
        raise SourceError(tuple(builder.diagnostics))
    return Document(Path(path), data, SourceMap(path, builder.entries))


def _decode(text: bytes, path: str) -> str:
    for bom, encoding in _BOMS_REFUSED:
        if text.startswith(bom):
            raise _error(path, 1, 1, f"the file is {encoding}", "save it as UTF-8")
    text = text.removeprefix(_UTF8_BOM)
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = text[: exc.start].decode("utf-8")
        line, col = _line_col(good, len(good))
        message = f"the file is not valid UTF-8: byte 0x{text[exc.start]:02x}"
        raise _error(path, line, col, message, "save it as UTF-8") from None
    bad = _NON_PRINTABLE.search(decoded)
    if bad is not None:
        line, col = _line_col(decoded, bad.start())
        message = f"control character U+{ord(bad.group()):04X} is not allowed"
        raise _error(path, line, col, message, "remove it, or write it as an escape in quotes")
    return decoded


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``text[offset]``, counting line breaks as YAML does.

    ``text[:offset]`` holds only printable characters, where ``splitlines`` and YAML agree
    (``\n``, ``\r\n``, ``\r``, NEL, U+2028, U+2029).
    """
    lines = text[:offset].splitlines(keepends=True)
    if not lines or lines[-1].endswith(_LINE_BREAKS):  # at the start of a line
        return len(lines) + 1, 1
    return len(lines), len(lines[-1]) + 1


def _error(path: str, line: int, col: int, message: str, hint: str | None = None) -> SourceError:
    return SourceError((Diagnostic(Position(path, line, col), message, hint=hint),))


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, path: str) -> Diagnostic:
    position = _position(path, exc.problem_mark)
    if exc.problem == _NESTING_PROBLEM:
        return _too_deep(position)
    problem = exc.problem or "invalid YAML"
    context = f" {exc.context}" if exc.context else ""
    return Diagnostic(position, f"invalid YAML: {problem}{context}")


def _position(path: str, mark: _Mark | None) -> Position:
    assert mark is not None  # both parsers mark every event and every problem
    return Position(path, mark.line + 1, mark.column + 1)


def _too_deep(position: Position) -> Diagnostic:
    return Diagnostic(
        position,
        f"nesting is too deep (more than {MAX_DEPTH} levels)",
        hint="flatten the structure",
    )


def _escape(key: str) -> str:
    """The key as one RFC 6901 reference token."""
    if "~" in key or "/" in key:
        return key.replace("~", "~0").replace("/", "~1")
    return key


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


class _Stop(Exception):
    """Building cannot go on; the reason is the builder's last diagnostic."""


_ALIAS_HINT = "write the value out in full where it is used"
_JSON_SCALARS = (_NULL, _BOOL, _INT, _FLOAT)
_TEXT_TAGS = (_STR, "!")  # "!" is the YAML non-specific tag: text
_CONSTRUCTORS: dict[str, Callable[[yaml.SafeLoader, yaml.ScalarNode], JSON]] = {
    _NULL: yaml.SafeLoader.construct_yaml_null,
    _BOOL: yaml.SafeLoader.construct_yaml_bool,
    _INT: yaml.SafeLoader.construct_yaml_int,
    _FLOAT: yaml.SafeLoader.construct_yaml_float,
}


@dataclass(slots=True)
class _Frame:
    """A mapping or list being filled."""

    pointer: str
    value: dict[str, JSON] | list[JSON]
    expect_key: bool
    key: str = ""
    key_pointer: str = ""
    key_line: int = 0
    key_col: int = 0
    key_lines: dict[str, int] = field(default_factory=dict)


class _Builder:
    """Turns YAML events into JSON data and source-map entries, without recursion."""

    def __init__(self, path: str, loader: yaml.SafeLoader) -> None:
        self.path = path
        self.loader = loader
        self.next_event = cast(Callable[[], yaml.Event], loader.get_event)
        self.resolve_tag = cast(_Resolve, loader.resolve)
        self.plain_tags: dict[str, str] = {}
        self.diagnostics: list[Diagnostic] = []
        self.entries: dict[str, _Entry] = {}
        self.stack: list[_Frame] = []
        self.root: JSON = None

    def build(self) -> JSON:
        """The document's data; problems are collected in ``diagnostics``.

        Raises:
            SourceError: a problem that stops building (the diagnostics so far, and it).
            yaml.MarkedYAMLError: the text is not valid YAML.
        """
        try:
            self._build()
        except _Stop:
            raise SourceError(tuple(self.diagnostics)) from None
        return self.root

    def _build(self) -> None:
        get = self.next_event
        get()  # the stream start
        event = get()
        if isinstance(event, yaml.StreamEndEvent):
            self._stop_empty()
        handlers: dict[type[yaml.Event], Callable[[Any], None]] = {
            yaml.ScalarEvent: self._scalar,
            yaml.MappingStartEvent: self._start,
            yaml.SequenceStartEvent: self._start,
            yaml.MappingEndEvent: self._end,
            yaml.SequenceEndEvent: self._end,
        }
        while type(event := get()) is not yaml.DocumentEndEvent:
            handlers.get(type(event), self._alias)(event)
        if self.root is None and self.entries[""].text == "":
            self._stop_empty()
        event = get()
        if not isinstance(event, yaml.StreamEndEvent):
            self._stop(event.start_mark, "one document per file", "split it into several files")

    def _end(self, event: yaml.CollectionEndEvent) -> None:
        self.stack.pop()

    def _alias(self, event: yaml.AliasEvent) -> None:
        self._stop(event.start_mark, "anchors and aliases are not supported", _ALIAS_HINT)

    def _stop_empty(self) -> None:
        self.diagnostics.append(Diagnostic(Position(self.path, 1, 1), "the file is empty"))
        raise _Stop

    def _report(
        self, mark: _Mark | None, message: str, hint: str | None, pointer: str = ""
    ) -> None:
        self.diagnostics.append(Diagnostic(_position(self.path, mark), message, pointer, hint))

    def _stop(self, mark: _Mark | None, message: str, hint: str | None = None) -> None:
        self._report(mark, message, hint)
        raise _Stop

    def _node_mark(self, event: yaml.NodeEvent) -> _Mark:
        """Where a node starts; nodes with an anchor are refused."""
        mark = event.start_mark
        assert mark is not None  # both parsers mark every event
        if event.anchor is not None:
            self._stop(mark, "anchors and aliases are not supported", _ALIAS_HINT)
        return mark

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        mark = self._node_mark(event)
        text = event.value
        # quoted and untagged: text, without asking the resolver
        value = text if event.style and event.tag is None else self._resolve(event, mark)
        if self.stack and self.stack[-1].expect_key:
            self._key(mark, value, text)
        else:
            self._add(mark, value, not event.style, text)

    def _start(self, event: yaml.CollectionStartEvent) -> None:
        mark = self._node_mark(event)
        mapping = isinstance(event, yaml.MappingStartEvent)
        if event.tag not in (None, "!", _MAP if mapping else _SEQ):
            self._report(mark, *_unsupported_tag(event.tag))
        if len(self.stack) >= MAX_DEPTH:
            self.diagnostics.append(_too_deep(_position(self.path, mark)))
            raise _Stop
        if self.stack and self.stack[-1].expect_key:
            self._stop(mark, "keys must be strings", "write the key as text")
        value: dict[str, JSON] | list[JSON] = {} if mapping else []
        pointer = self._add(mark, value, False, None)
        self.stack.append(_Frame(pointer, value, mapping))

    def _key(self, mark: _Mark, value: JSON, text: str) -> None:
        frame = self.stack[-1]
        if isinstance(value, bool) and text.lower() in _YAML11_BOOL_WORDS:
            value = text  # YAML 1.2 reads these as text: `on:` is the key "on"
        key = value if isinstance(value, str) else text
        pointer = f"{frame.pointer}/{_escape(key)}"
        if not isinstance(value, str):
            self._report(mark, "keys must be strings", f"quote it: {_quoted(text)}", pointer)
        elif key in frame.key_lines:
            message = f"duplicate key '{key}' (first defined at line {frame.key_lines[key]})"
            self._report(mark, message, "keep only one of them", pointer)
        else:
            frame.key_lines[key] = mark.line + 1
        frame.key, frame.key_pointer = key, pointer
        frame.key_line, frame.key_col = mark.line + 1, mark.column + 1
        frame.expect_key = False

    def _add(self, mark: _Mark, value: JSON, plain: bool, text: str | None) -> str:
        """Put a value in its place; its pointer."""
        line, col = mark.line + 1, mark.column + 1
        if not self.stack:
            self.root = value
            self.entries[""] = _Entry(line, col, line, col, plain, text)
            return ""
        frame = self.stack[-1]
        container = frame.value
        if isinstance(container, list):
            pointer = f"{frame.pointer}/{len(container)}"
            container.append(value)
            self.entries[pointer] = _Entry(line, col, line, col, plain, text)
        else:
            pointer = frame.key_pointer
            container[frame.key] = value
            self.entries[pointer] = _Entry(frame.key_line, frame.key_col, line, col, plain, text)
            frame.expect_key = True
        return pointer

    def _resolve(self, event: yaml.ScalarEvent, mark: _Mark) -> JSON:
        text = event.value
        tag = event.tag
        if tag is None:  # a plain scalar: its type depends on its text only
            tag = self.plain_tags.get(text)
            if tag is None:
                tag = self.plain_tags[text] = self.resolve_tag(yaml.ScalarNode, text, (True, False))
        elif tag in _JSON_SCALARS:
            implicit = self.resolve_tag(yaml.ScalarNode, text, (True, False))
            if implicit != tag and (tag, implicit) != (_FLOAT, _INT):
                message = f"not a valid {_show_tag(tag)}: {_quoted(text)}"
                self._report(mark, message, "remove the tag, or fix the value")
                return text
        elif tag not in _TEXT_TAGS:
            self._report(mark, *_unsupported_tag(tag))
            return text
        construct = _CONSTRUCTORS.get(tag)
        if construct is None:  # text, timestamps (JSON has no dates), merge keys, "! 12"
            return text
        try:
            value = construct(self.loader, yaml.ScalarNode(tag, text))
        except ValueError:  # "0b_", or more digits than Python converts
            shown = _shorten(text)
            hint = f"quote it to keep it as text: {_quoted(shown)}"
            self._report(mark, f"cannot read this number: {shown}", hint)
            return text
        if isinstance(value, float) and not math.isfinite(value):
            hint = f"JSON numbers are finite; quote it to keep it as text: {_quoted(text)}"
            self._report(mark, f"not a finite number: {text}", hint)
        return value


def _unsupported_tag(tag: str | None) -> tuple[str, str]:
    return (
        f"unsupported tag {_show_tag(tag or '')}",
        "remove the tag: only text, numbers, true/false, null, mappings and lists are allowed",
    )


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)
