"""The safe YAML loader: data, source map, and one exact diagnostic per hazard."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wscenario.core import source
from wscenario.core.diagnostics import Diagnostic, Position
from wscenario.core.model import JSON
from wscenario.core.source import MAX_DEPTH, SourceError, load_yaml_file, parse_yaml

C_LOADER = getattr(yaml, "CSafeLoader", None)
LOADERS = [pytest.param(yaml.SafeLoader, id="python")]
if C_LOADER is not None:
    LOADERS.insert(0, pytest.param(C_LOADER, id="libyaml"))


@pytest.fixture(autouse=True, params=LOADERS)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    """Every test runs with libyaml's loader and with the pure-Python one."""
    monkeypatch.setattr(source, "_LOADER", request.param)
    loader_class: type = request.param
    return loader_class


Found = tuple[int, int, str, str, str | None]  # line, col, pointer, message, hint


def errors(text: bytes | str) -> list[Found]:
    raw = text.encode() if isinstance(text, str) else text
    with pytest.raises(SourceError) as caught:
        parse_yaml(raw, "s.yaml")
    found = []
    for d in caught.value.diagnostics:
        assert d.position.path == "s.yaml"
        assert d.severity == "error"
        found.append((d.position.line, d.position.col, d.pointer, d.message, d.hint))
    return found


def load(text: str) -> JSON:
    return parse_yaml(text.encode(), "s.yaml").data


ALIAS = "anchors and aliases are not supported"
ALIAS_HINT = "write the value out in full where it is used"
TAG_HINT = "remove the tag: only text, numbers, true/false, null, mappings and lists are allowed"
DEEP = f"nesting is too deep (more than {MAX_DEPTH} levels)"

# (input, expected diagnostics): the same with either loader.
ERROR_CASES: list[tuple[str, list[Found]]] = [
    ("", [(1, 1, "", "the file is empty", None)]),
    ("# nothing but a comment\n\n", [(1, 1, "", "the file is empty", None)]),
    ("---\n", [(1, 1, "", "the file is empty", None)]),
    ("--- # only a marker\n...\n", [(1, 1, "", "the file is empty", None)]),
    (
        "a: 1\n---\nb: 2\n",
        [(2, 1, "", "one document per file", "split it into several files")],
    ),
    ("a: &x 1\nb: 2\n", [(1, 4, "", ALIAS, ALIAS_HINT)]),
    ("a: 1\nb: *x\n", [(2, 4, "", ALIAS, ALIAS_HINT)]),
    ("a: &x [1, *x]\n", [(1, 4, "", ALIAS, ALIAS_HINT)]),
    ("- &m {a: 1}\n", [(1, 3, "", ALIAS, ALIAS_HINT)]),
    (
        "a: !!python/object/apply:os.system [echo hi]\n",
        [(1, 4, "", "unsupported tag !!python/object/apply:os.system", TAG_HINT)],
    ),
    (
        "a: !!python/name:os.system ''\n",
        [(1, 4, "", "unsupported tag !!python/name:os.system", TAG_HINT)],
    ),
    ("a: !!binary aGVsbG8=\n", [(1, 4, "", "unsupported tag !!binary", TAG_HINT)]),
    ("a: !!set {x, y}\n", [(1, 4, "", "unsupported tag !!set", TAG_HINT)]),
    ("a: !!timestamp 2001-12-14\n", [(1, 4, "", "unsupported tag !!timestamp", TAG_HINT)]),
    ("a: !secret text\n", [(1, 4, "", "unsupported tag !secret", TAG_HINT)]),
    ("a: !!str {b: 1}\n", [(1, 4, "", "unsupported tag !!str", TAG_HINT)]),
    ("a: !!map [1]\n", [(1, 4, "", "unsupported tag !!map", TAG_HINT)]),
    ("a: !!seq x\n", [(1, 4, "", "unsupported tag !!seq", TAG_HINT)]),
    (
        "a: !!int twelve\n",
        [(1, 4, "", 'not a valid !!int: "twelve"', "remove the tag, or fix the value")],
    ),
    (
        "a: !!bool maybe\n",
        [(1, 4, "", 'not a valid !!bool: "maybe"', "remove the tag, or fix the value")],
    ),
    (
        "name: x\nsteps: []\nname: y\n",
        [
            (
                3,
                1,
                "/name",
                "duplicate key 'name' (first defined at line 1)",
                "keep only one of them",
            )
        ],
    ),
    (
        "steps:\n  - send: a\n    send: b\n",
        [
            (
                3,
                5,
                "/steps/0/send",
                "duplicate key 'send' (first defined at line 2)",
                "keep only one of them",
            )
        ],
    ),
    (
        "{a/b: 1, 'a/b': 2}\n",
        [
            (
                1,
                10,
                "/a~1b",
                "duplicate key 'a/b' (first defined at line 1)",
                "keep only one of them",
            )
        ],
    ),
    ("true: open\n", [(1, 1, "/true", "keys must be strings", 'quote it: "true"')]),
    ("1: one\n", [(1, 1, "/1", "keys must be strings", 'quote it: "1"')]),
    ("null: x\n", [(1, 1, "/null", "keys must be strings", 'quote it: "null"')]),
    ("~: x\n", [(1, 1, "/~0", "keys must be strings", 'quote it: "~"')]),
    ("1.5: x\n", [(1, 1, "/1.5", "keys must be strings", 'quote it: "1.5"')]),
    (
        "a:\n  False: 1\n  2: 2\n",
        [
            (2, 3, "/a/False", "keys must be strings", 'quote it: "False"'),
            (3, 3, "/a/2", "keys must be strings", 'quote it: "2"'),
        ],
    ),
    ("? [a, b]\n: c\n", [(1, 3, "", "keys must be strings", "write the key as text")]),
    ("{{a: 1}: c}\n", [(1, 2, "", "keys must be strings", "write the key as text")]),
    (
        "a: .nan\n",
        [
            (
                1,
                4,
                "",
                "not a finite number: .nan",
                'JSON numbers are finite; quote it to keep it as text: ".nan"',
            )
        ],
    ),
    (
        "a: [.inf, -.Inf, 1.0e+400]\n",
        [
            (
                1,
                5,
                "",
                "not a finite number: .inf",
                'JSON numbers are finite; quote it to keep it as text: ".inf"',
            ),
            (
                1,
                11,
                "",
                "not a finite number: -.Inf",
                'JSON numbers are finite; quote it to keep it as text: "-.Inf"',
            ),
            (
                1,
                18,
                "",
                "not a finite number: 1.0e+400",
                'JSON numbers are finite; quote it to keep it as text: "1.0e+400"',
            ),
        ],
    ),
    (
        "mask: 0b_\n",
        [(1, 7, "", "cannot read this number: 0b_", 'quote it to keep it as text: "0b_"')],
    ),
    (
        "big: " + "9" * 5000 + "\n",
        [
            (
                1,
                6,
                "",
                "cannot read this number: " + "9" * 39 + "…",
                'quote it to keep it as text: "' + "9" * 39 + '…"',
            )
        ],
    ),
    (
        # problems are collected until one stops the loading
        "a: !!binary AA==\nb: .nan\nc: &x 1\nd: .inf\n",
        [
            (1, 4, "", "unsupported tag !!binary", TAG_HINT),
            (
                2,
                4,
                "",
                "not a finite number: .nan",
                'JSON numbers are finite; quote it to keep it as text: ".nan"',
            ),
            (3, 4, "", ALIAS, ALIAS_HINT),
        ],
    ),
    (
        "a: .nan\nb: [\n",
        [
            (
                1,
                4,
                "",
                "not a finite number: .nan",
                'JSON numbers are finite; quote it to keep it as text: ".nan"',
            ),
            (3, 1, "", "*", None),
        ],
    ),
    # encodings and characters
    (
        "a: \x00\n",
        [
            (
                1,
                4,
                "",
                "control character U+0000 is not allowed",
                "remove it, or write it as an escape in quotes",
            )
        ],
    ),
    (
        "a: 'line\u2028break'\r\n\x0c",
        [
            (
                3,
                1,
                "",
                "control character U+000C is not allowed",
                "remove it, or write it as an escape in quotes",
            )
        ],
    ),
    (
        "a: é\nb: x\x07y\n",
        [
            (
                2,
                5,
                "",
                "control character U+0007 is not allowed",
                "remove it, or write it as an escape in quotes",
            )
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERROR_CASES)
def test_refused_input_gives_exact_diagnostics(text: str, expected: list[Found]) -> None:
    found = errors(text)
    # a syntax error's wording is the parser's own; "*" stands for it
    assert len(found) == len(expected)
    for got, want in zip(found, expected, strict=True):
        if want[3] == "*":
            assert got[:3] == want[:3]
            assert got[3].startswith("invalid YAML: ")
        else:
            assert got == want


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a: \xff\n", (1, 4, "the file is not valid UTF-8: byte 0xff")),
        (b"a: 1\nb: \xc3\xa9\xc3\xa9\xc3(\n", (2, 6, "the file is not valid UTF-8: byte 0xc3")),
        (b"\xff", (1, 1, "the file is not valid UTF-8: byte 0xff")),
        (b"a: 1\r\n\x80", (2, 1, "the file is not valid UTF-8: byte 0x80")),
        (b"a: 1\rb: 2\r\nc: \xe9t\xe9", (3, 4, "the file is not valid UTF-8: byte 0xe9")),
        (b"\xff\xfea\x00:\x00 \x001\x00", (1, 1, "the file is UTF-16")),
        (b"\xfe\xff\x00a\x00:", (1, 1, "the file is UTF-16")),
        (b"\xff\xfe\x00\x00a\x00\x00\x00", (1, 1, "the file is UTF-32")),
        (b"\x00\x00\xfe\xff\x00\x00\x00a", (1, 1, "the file is UTF-32")),
    ],
)
def test_only_utf8_is_read(raw: bytes, expected: tuple[int, int, str]) -> None:
    line, col, message = expected
    assert errors(raw) == [(line, col, "", message, "save it as UTF-8")]


def test_a_utf8_bom_is_skipped_and_positions_ignore_it() -> None:
    document = parse_yaml(b"\xef\xbb\xbfa: 1\nb: x\n", "s.yaml")
    assert document.data == {"a": 1, "b": "x"}
    assert document.source_map.key_position("/a") == Position("s.yaml", 1, 1)
    assert document.source_map.value_position("/b") == Position("s.yaml", 2, 4)


def test_syntax_errors_point_at_the_problem(loader: type) -> None:
    found = errors("name: x\nsteps:\n  - send: a\n   bad: [\n")
    problem = {
        yaml.SafeLoader: "expected <block end>, but found '<block mapping start>'",
        C_LOADER: "did not find expected '-' indicator",
    }[loader]
    assert found == [(4, 4, "", f"invalid YAML: {problem} while parsing a block collection", None)]


def test_syntax_error_without_context() -> None:
    found = errors("a: 'unterminated\n")
    assert len(found) == 1
    assert found[0][:2] == (2, 1)
    assert found[0][3].startswith("invalid YAML: found unexpected end of stream")


def test_a_mapping_value_in_a_plain_scalar(loader: type) -> None:
    context = {yaml.SafeLoader: "here", C_LOADER: "in this context"}[loader]
    assert errors("a: b: c\n") == [
        (1, 5, "", f"invalid YAML: mapping values are not allowed {context}", None)
    ]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def block_mappings(depth: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "x\n"


def test_nesting_up_to_the_limit_loads() -> None:
    data = load(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 1):
        assert isinstance(data, list)
        data = data[0]
    assert data == []
    assert isinstance(load(block_mappings(MAX_DEPTH)), dict)


def test_nesting_over_the_limit_is_refused() -> None:
    assert errors(nested(MAX_DEPTH + 1)) == [(1, MAX_DEPTH + 1, "", DEEP, "flatten the structure")]
    assert errors(block_mappings(MAX_DEPTH + 1)) == [
        (MAX_DEPTH + 1, 2 * MAX_DEPTH + 1, "", DEEP, "flatten the structure")
    ]


@pytest.mark.parametrize("depth", [1000, 10_000, 100_000])
def test_very_deep_nesting_stops_early(loader: type, depth: int) -> None:
    [(line, col, _, message, hint)] = errors(nested(depth))
    assert (message, hint) == (DEEP, "flatten the structure")
    # libyaml refuses more than 1000 levels while it scans ahead; the builder stops at the limit
    assert (line, col) == ((1, 1001) if loader is C_LOADER and depth > 1000 else (1, MAX_DEPTH + 1))


def test_billion_laughs_is_refused_at_the_first_anchor() -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=False):
        levels.append(f"{name}: &{name} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    # refused at the first anchor: nothing after it is read
    assert errors("\n".join(levels) + "\n") == [(1, 4, "", ALIAS, ALIAS_HINT)]


def test_yaml_types_are_kept_and_the_text_as_written_too() -> None:
    text = (
        "no_: NO\nmode: 0755\nversion: 1.10\non_: on\nday: 2001-12-14\n"
        "stamp: 2001-12-14t21:59:43.10-05:00\n"
        "nothing: ~\nempty:\nhex: 0x1F\nsexa: 1:30\nquoted: 'NO'\ndouble: \"0755\"\n"
        "bang: ! 12\nstr: !!str 12\nint: !!int '12'\nfloat: !!float 1\nbool: !!bool yes\n"
        "null: !!null ''\nmerge: <<\nvalue: =\nmap: !!map {x: 1}\nseq: !!seq [1]\n"
    ).replace("null: !!null", "nul: !!null")
    document = parse_yaml(text.encode(), "s.yaml")
    assert document.data == {
        "no_": False,
        "mode": 493,
        "version": 1.1,
        "on_": True,
        "day": "2001-12-14",
        "stamp": "2001-12-14t21:59:43.10-05:00",
        "nothing": None,
        "empty": None,
        "hex": 31,
        "sexa": 90,
        "quoted": "NO",
        "double": "0755",
        "bang": "12",
        "str": "12",
        "int": 12,
        "float": 1.0,
        "bool": True,
        "nul": None,
        "merge": "<<",
        "value": "=",
        "map": {"x": 1},
        "seq": [1],
    }
    assert isinstance(document.data, dict)
    assert isinstance(document.data["float"], float)
    smap = document.source_map
    written = {"/no_": "NO", "/mode": "0755", "/version": "1.10", "/on_": "on", "/quoted": "NO"}
    for pointer, as_written in written.items():
        assert smap.source_text(pointer) == as_written
    assert smap.is_plain_scalar("/no_")
    assert smap.is_plain_scalar("/empty")
    assert not smap.is_plain_scalar("/quoted")
    assert not smap.is_plain_scalar("/double")
    assert not smap.is_plain_scalar("/map")
    assert not smap.is_plain_scalar("/missing")
    assert smap.source_text("/map") is None
    assert smap.source_text("/missing") is None


def test_a_scalar_document_loads() -> None:
    document = parse_yaml(b"hello\n", "s.yaml")
    assert document.data == "hello"
    assert document.source_map.source_text("") == "hello"
    assert parse_yaml(b"~\n", "s.yaml").data is None
    assert parse_yaml(b"''\n", "s.yaml").data == ""


SCENARIO = """\
name: chat
steps:
  - send: hello
  - expect:
      text: "hi"
      timeout: 2
  - {send: {json: {a/b: 1, m~n: [x, y]}}}
"""


def test_source_map_positions() -> None:
    document = parse_yaml(SCENARIO.encode(), "dir/chat.yaml")
    assert document.path == Path("dir/chat.yaml")
    smap = document.source_map
    assert smap.path == "dir/chat.yaml"

    def at(line: int, col: int) -> Position:
        return Position("dir/chat.yaml", line, col)

    # pointer: (key position, value position)
    cases = {
        "": (at(1, 1), at(1, 1)),
        "/name": (at(1, 1), at(1, 7)),
        "/steps": (at(2, 1), at(3, 3)),
        "/steps/0": (at(3, 5), at(3, 5)),
        "/steps/0/send": (at(3, 5), at(3, 11)),
        "/steps/1/expect": (at(4, 5), at(5, 7)),
        "/steps/1/expect/text": (at(5, 7), at(5, 13)),
        "/steps/1/expect/timeout": (at(6, 7), at(6, 16)),
        "/steps/2": (at(7, 5), at(7, 5)),
        "/steps/2/send/json/a~1b": (at(7, 20), at(7, 25)),
        "/steps/2/send/json/m~0n/1": (at(7, 37), at(7, 37)),
    }
    for pointer, (key, value) in cases.items():
        assert (smap.key_position(pointer), smap.value_position(pointer)) == (key, value), pointer
    # a pointer that does not exist: its nearest existing ancestor
    assert smap.value_position("/steps/1/expect/txet") == at(5, 7)
    assert smap.key_position("/steps/1/expect/txet") == at(4, 5)
    assert smap.value_position("/steps/9/send") == at(3, 3)
    assert smap.value_position("/nothing/at/all") == at(1, 1)
    assert smap.value_position("not a pointer") == at(1, 1)


def test_source_error_needs_diagnostics() -> None:
    with pytest.raises(ValueError, match="at least one diagnostic"):
        SourceError(())
    diagnostic = Diagnostic(Position("s.yaml", 2, 3), "the file is empty")
    error = SourceError((diagnostic,))
    assert error.diagnostics == (diagnostic,)
    assert str(error) == "s.yaml:2:3: error: the file is empty"


# -- files ---------------------------------------------------------------------------------


def test_load_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(SCENARIO.encode())
    document = load_yaml_file(path)
    assert document.path == path
    assert document.data == parse_yaml(SCENARIO.encode(), str(path)).data
    assert document.source_map.value_position("/name") == Position(str(path), 1, 7)


def file_errors(path: Path, max_bytes: int = source.MAX_FILE_BYTES) -> list[Found]:
    with pytest.raises(SourceError) as caught:
        load_yaml_file(path, max_bytes=max_bytes)
    return [
        (d.position.line, d.position.col, d.pointer, d.message, d.hint)
        for d in caught.value.diagnostics
    ]


NOT_REGULAR = "refer to a regular file, not a folder, device, FIFO or socket"


def test_load_yaml_file_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert file_errors(missing) == [
        (1, 1, "", f"file not found: {missing}", "check the name and the folder")
    ]
    assert file_errors(tmp_path) == [(1, 1, "", f"not a regular file: {tmp_path}", NOT_REGULAR)]
    for device in (Path("/dev/null"), Path("/dev/zero")):
        assert file_errors(device) == [(1, 1, "", f"not a regular file: {device}", NOT_REGULAR)]
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * 100 + b"\n")
    assert file_errors(big, max_bytes=100) == [
        (1, 1, "", f"file is too large: {big} (104 bytes, the limit is 100)", "use a smaller file")
    ]
    assert load_yaml_file(big, max_bytes=104).data == {"a": "x" * 100}


def test_load_yaml_file_does_not_hang_on_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert file_errors(fifo) == [(1, 1, "", f"not a regular file: {fifo}", NOT_REGULAR)]


def test_load_yaml_file_refuses_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert file_errors(path) == [(1, 1, "", f"not a regular file: {path}", NOT_REGULAR)]


def test_load_yaml_file_reports_a_syntax_error_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: 1\na: 2\n")
    with pytest.raises(SourceError) as caught:
        load_yaml_file(path)
    headline = f"{path}:2:1: error: /a: duplicate key 'a' (first defined at line 1)"
    assert [d.render() for d in caught.value.diagnostics] == [
        f"{headline}\n    hint: keep only one of them"
    ]


# -- properties ----------------------------------------------------------------------------

# PyYAML's emitter writes NEL and the Unicode line/paragraph separators as line breaks,
# which YAML then folds: a known emitter limitation, not a loading question.
CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x85\u2028\u2029")
TEXT = st.text(CHARACTERS, max_size=20)
KEYS = st.text(CHARACTERS, max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


def pointers(value: JSON, prefix: str = "") -> Iterator[tuple[str, JSON]]:
    yield prefix, value
    if isinstance(value, dict):
        for key, item in sorted(value.items()):  # safe_dump sorts keys
            yield from pointers(item, f"{prefix}/{key.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from pointers(item, f"{prefix}/{index}")


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=5))
def test_safe_dump_round_trips_and_every_value_has_a_place(data: dict[str, JSON]) -> None:
    for flow in (False, None):
        text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
        document = parse_yaml(text.encode(), "p.yaml")
        assert document.data == data
        smap = document.source_map
        last = Position("p.yaml", 0, 0)
        for pointer, value in pointers(data):
            position = smap.value_position(pointer)
            assert position.line >= 1
            assert position.col >= 1
            assert smap.key_position(pointer) <= position
            is_collection = isinstance(value, (dict, list))
            # the exact pointer is known: scalars keep their text, collections have none
            assert (smap.source_text(pointer) is None) == is_collection
            if not is_collection and pointer:
                assert position > last  # values are met in document order
                last = position
            if isinstance(value, float):
                assert math.isfinite(value)


@pytest.mark.parametrize("word", ["on", "off", "yes", "No", "Y", "n"])
def test_yaml11_boolean_words_are_text_keys(word: str) -> None:
    # YAML 1.2 reads these as text, and `on:` is how a rule is written
    doc = parse_yaml(f"{word}: 1\n".encode(), "s.yaml")
    assert doc.data == {word: 1}
    assert doc.source_map.key_position(f"/{word}") == Position("s.yaml", 1, 1)
