"""The model's few behaviours of its own."""

from __future__ import annotations

from pathlib import Path

from wscenario.core.diagnostics import Diagnostic, Position
from wscenario.core.model import ClientSpec, Scenario, ServerSpec


def test_side_follows_the_section() -> None:
    client = Scenario(path=Path("a.yaml"), name="a", steps=(), client=ClientSpec(url="ws://x/"))
    server = Scenario(path=Path("b.yaml"), name="b", steps=(), server=ServerSpec())
    assert (client.side, server.side) == ("client", "server")


def test_diagnostic_render_with_pointer_and_hint() -> None:
    diag = Diagnostic(Position("s.yaml", 14, 7), "unknown key 'txet'", "/steps/2", "did you mean?")
    assert diag.render() == (
        "s.yaml:14:7: error: /steps/2: unknown key 'txet'\n    hint: did you mean?"
    )


def test_diagnostic_render_plain() -> None:
    diag = Diagnostic(Position("s.yaml", 1, 1), "empty file")
    assert diag.render() == "s.yaml:1:1: error: empty file"
