"""Templates: parsing, names, rendering of text and JSON values, and suggestions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wscenario.core.model import JSON
from wscenario.core.templating import (
    TemplateError,
    render_text,
    render_value,
    suggest,
    template_names,
)

VARIABLES: dict[str, JSON] = {
    "name": "ada",
    "n": 3,
    "flag": True,
    "nothing": None,
    "items": [1, "two"],
    "obj": {"k": "é"},
}
ENV = {"TOKEN": "s3cret"}

# Text that holds no "{{": rendering leaves it untouched.
plain_text = st.text().filter(lambda s: "{{" not in s)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | plain_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("no templates", ()),
        ("{{name}}", ("name",)),
        ("hi {{ name }}, {{  n }} {{name}}", ("name", "n")),
        ("{{ env.TOKEN }}/{{_x9}}", ("env.TOKEN", "_x9")),
        ("single { brace } and }} stray", ()),
    ],
)
def test_template_names_in_order_of_first_use(text: str, names: tuple[str, ...]) -> None:
    assert template_names(text) == names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello {{ name", "unclosed '{{' at offset 6"),
        ("{{ }}", "invalid template '{{ }}': expected {{ name }} or {{ env.NAME }}"),
        ("{{ 9lives }}", "invalid template '{{ 9lives }}'"),
        ("{{ a b }}", "invalid template '{{ a b }}'"),
        ("{{ env. }}", "invalid template '{{ env. }}'"),
        ("{{ os.PATH }}", "invalid template '{{ os.PATH }}'"),
    ],
)
def test_bad_syntax_is_reported_without_a_name(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        template_names(text)
    assert str(caught.value).startswith(message)
    assert caught.value.message == str(caught.value)
    assert caught.value.name is None


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("hi {{ name }}", "hi ada"),
        ("n={{n}} flag={{flag}} none={{nothing}}", "n=3 flag=true none=null"),
        ("{{ items }}|{{ obj }}", '[1,"two"]|{"k":"é"}'),
        ("Bearer {{ env.TOKEN }}", "Bearer s3cret"),
        ("{{name}}{{name}}", "adaada"),
        ('{"n":{{ n }}}', '{"n":3}'),
        ("{{{{ name }}}}", "{{ada}}"),
    ],
)
def test_render_text(text: str, rendered: str) -> None:
    assert render_text(text, VARIABLES, ENV) == rendered


def test_undefined_variable_names_it_and_suggests_a_close_one() -> None:
    with pytest.raises(TemplateError) as caught:
        render_text("{{ nam }}", VARIABLES, ENV)
    assert caught.value.name == "nam"
    assert str(caught.value) == "undefined variable 'nam'; did you mean 'name'?"


def test_undefined_variable_without_a_close_one() -> None:
    with pytest.raises(TemplateError, match=r"^undefined variable 'zzzzzz'$"):
        render_text("{{ zzzzzz }}", VARIABLES, ENV)


@pytest.mark.parametrize("template", ["{{ env.BAD }}", "x {{ env.BAD }}"])
def test_an_environment_variable_that_is_not_utf8_is_a_template_error(template: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render_value(template, VARIABLES, {"BAD": "a\udcffb"})
    assert caught.value.name == "env.BAD"
    assert str(caught.value) == "environment variable BAD is not valid UTF-8"


def test_unset_environment_variable() -> None:
    with pytest.raises(TemplateError) as caught:
        render_value("{{ env.MISSING }}", VARIABLES, ENV)
    assert caught.value.name == "env.MISSING"
    assert str(caught.value) == "environment variable 'MISSING' is not set"


def test_render_value_keeps_the_type_of_a_lone_template() -> None:
    value: JSON = {
        "count": "{{ n }}",
        "spaced": "{{n}}",
        "text": "n is {{ n }}",
        "padded": " {{ n }}",
        "list": ["{{ items }}", "{{ flag }}", "{{ nothing }}", 7],
        "{{ name }}": "{{ env.TOKEN }}",
    }
    assert render_value(value, VARIABLES, ENV) == {
        "count": 3,
        "spaced": 3,
        "text": "n is 3",
        "padded": " 3",
        "list": [[1, "two"], True, None, 7],
        "{{ name }}": "s3cret",
    }


@given(json_values)
def test_render_value_without_templates_is_identity(value: JSON) -> None:
    assert render_value(value, {}, {}) == value


@given(plain_text, st.text())
def test_rendered_string_variable_appears_verbatim(prefix: str, inserted: str) -> None:
    assert render_text(prefix + "{{ v }}", {"v": inserted}, {}) == prefix + inserted


def test_suggest() -> None:
    assert suggest("tokn", ["token", "name"]) == "did you mean 'token'?"
    assert suggest("xyz", ["token", "name"]) is None
    assert suggest("a", []) is None
