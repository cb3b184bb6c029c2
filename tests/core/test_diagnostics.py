"""How a diagnostic is shown: where, what, a hint; nothing from the file acts on the terminal."""

from __future__ import annotations

from wscenario.core.diagnostics import Diagnostic, Position
from wscenario.core.printable import printable


def test_render_with_and_without_pointer_and_hint() -> None:
    where = Position("s.yaml", 3, 5)
    assert Diagnostic(where, "bad").render() == "s.yaml:3:5: error: bad"
    shown = Diagnostic(where, "bad", "/steps/0", "fix it", "warning").render()
    assert shown == "s.yaml:3:5: warning: /steps/0: bad\n    hint: fix it"


def test_what_came_from_the_file_is_escaped() -> None:
    where = Position("evil\x1b]0;x\x07.yaml", 1, 1)
    key = "sen\x1b[31md\u202e"
    shown = Diagnostic(where, f"unknown key '{key}'", f"/steps/0/{key}", f"not '{key}'\n").render()
    assert "\x1b" not in shown
    assert shown == (
        "evil\\x1b]0;x\\x07.yaml:1:1: error: /steps/0/sen\\x1b[31md\\u202e: "
        "unknown key 'sen\\x1b[31md\\u202e'\n    hint: not 'sen\\x1b[31md\\u202e'\\n"
    )


def test_printable_leaves_plain_text_alone() -> None:
    assert printable("plain text, ünïcode ✓") == "plain text, ünïcode ✓"
    assert printable("a\tb\r\n") == "a\\tb\\r\\n"
    assert printable("\U000e0001") == "\\U000e0001"
