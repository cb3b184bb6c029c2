"""Redaction: placeholders for secrets in handshakes and messages, and restoring them."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from wscenario.core.redaction import (
    PLACEHOLDER,
    Redactor,
    hide,
    looks_like_token,
    restore,
    secret_order,
    secret_variable,
    secrets_in,
)
from wscenario.core.redaction_policy import RedactionPolicy, RedactionRule

KEY = b"k" * 32


def expected(name: str, value: str, key: bytes = KEY) -> str:
    digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:8]
    return f"<redacted:{name}:{digest}>"


def redactor(*rules: RedactionRule, **policy: object) -> Redactor:
    return Redactor(KEY, RedactionPolicy(rules=rules, **policy))  # type: ignore[arg-type]


def test_placeholders_are_keyed_hmacs_of_the_value() -> None:
    r = redactor()
    first = r.placeholder("Authorization", "Bearer abc")
    assert first == expected("authorization", "Bearer abc")
    assert PLACEHOLDER.fullmatch(first)
    assert r.placeholder("authorization", "Bearer abc") == first
    assert r.placeholder("authorization", "Bearer abd") != first
    other_key = Redactor(b"other", RedactionPolicy()).placeholder("authorization", "Bearer abc")
    assert other_key != first


def test_credential_headers_are_redacted_whatever_their_case() -> None:
    headers = (
        ("Host", "example.test"),
        ("Authorization", "Bearer s3cret"),
        ("COOKIE", "sid=1"),
        ("Set-Cookie", "sid=2; HttpOnly"),
        ("Proxy-Authorization", "Basic eA=="),
    )
    redacted = redactor().headers(headers)
    assert redacted == (
        ("Host", "example.test"),
        ("Authorization", expected("authorization", "Bearer s3cret")),
        ("COOKIE", expected("cookie", "sid=1")),
        ("Set-Cookie", expected("set-cookie", "sid=2; HttpOnly")),
        ("Proxy-Authorization", expected("proxy-authorization", "Basic eA==")),
    )
    assert "s3cret" not in repr(redacted)


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("chat", False),
        ("graphql-transport-ws", False),
        ("v12.stomp", False),
        ("eyJhbGciOiJIUzI1NiJ9", True),
        ("abcdef0123456789", True),
        ("AbcdefghijklmnoP", True),
        ("abc123", False),
    ],
)
def test_token_like_subprotocols(value: str, token: bool) -> None:
    assert looks_like_token(value) is token


def test_subprotocol_header_keeps_names_and_redacts_tokens() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.e30.sig"
    headers = (("Sec-WebSocket-Protocol", f"graphql-ws, {token}"),)
    assert redactor().headers(headers) == (
        ("Sec-WebSocket-Protocol", f"graphql-ws, {expected('subprotocol', token)}"),
    )
    kept = redactor(subprotocols=False).headers(headers)
    assert kept == headers
    assert redactor(subprotocols=False).subprotocol(token) == token


def test_query_parameters_are_redacted_by_name_and_prefix() -> None:
    r = redactor()
    target = "/chat?room=1&token=abc&X-Amz-Signature=ff&flag&key=&Access_Token=z"
    assert r.target(target) == (
        f"/chat?room=1&token={expected('token', 'abc')}"
        f"&X-Amz-Signature={expected('x-amz-signature', 'ff')}&flag&key="
        f"&Access_Token={expected('access_token', 'z')}"
    )
    assert r.target("/chat") == "/chat"


def test_url_userinfo_and_query_are_redacted() -> None:
    r = redactor()
    url = "wss://ann:pw@example.test:8443/feed?token=t1#frag"
    assert r.url(url) == (
        f"wss://{expected('userinfo', 'ann:pw')}@example.test:8443/feed"
        f"?token={expected('token', 't1')}#frag"
    )
    assert r.url("ws://example.test/") == "ws://example.test/"
    assert r.url("ws://[::1/") == "ws://[::1/"


def test_disabled_policy_keeps_everything() -> None:
    r = redactor(RedactionRule.for_regex("(.+)"), enabled=False)
    headers = (("Authorization", "x"),)
    assert r.headers(headers) == headers
    assert r.target("/?token=1") == "/?token=1"
    assert r.url("ws://a:b@h/?token=1") == "ws://a:b@h/?token=1"
    assert r.subprotocol("eyJabc") == "eyJabc"
    assert r.text("secret") == "secret"


def test_pointer_rules_redact_json_values() -> None:
    r = redactor(
        RedactionRule.for_pointer("/auth/token"),
        RedactionRule.for_pointer("/list/1"),
        RedactionRule.for_pointer("/pin"),
    )
    message = json.dumps({"auth": {"token": "t0k"}, "list": ["a", "b"], "pin": 1234, "x": "ü"})
    redacted = json.loads(r.text(message))
    assert redacted == {
        "auth": {"token": expected("token", "t0k")},
        "list": ["a", expected("1", "b")],
        "pin": expected("pin", "1234"),
        "x": "ü",
    }


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[" * 100_000,
        '{"auth": 1}',
        '{"other": {"token": "x"}}',
        '{"auth": {"token2": "x"}}',
        '{"auth": ["x"]}',
        '{"auth": {"token": "<redacted:token:0123abcd>"}}',
    ],
)
def test_pointer_rules_leave_other_messages_byte_for_byte(message: str) -> None:
    r = redactor(RedactionRule.for_pointer("/auth/token"), RedactionRule.for_pointer("/auth/0x"))
    assert r.text(message) == message


def test_regex_rules_redact_group_one_or_the_whole_match() -> None:
    grouped = redactor(RedactionRule.for_regex(r'"secret":"([^"]*)"'))
    assert grouped.text('{"secret":"hush","n":1}') == (
        f'{{"secret":"{expected("regex", "hush")}","n":1}}'
    )
    assert grouped.text('{"secret":""}') == '{"secret":""}'
    whole = redactor(RedactionRule("pin", regex=r"\b\d{4}\b"))
    assert whole.text("pin 1234 ok") == f"pin {expected('pin', '1234')} ok"
    optional = redactor(RedactionRule("opt", regex=r"a(b)?"))
    assert optional.text("ac ab") == f"ac a{expected('opt', 'b')}"
    empty = redactor(RedactionRule("e", regex=r"x*"))
    assert empty.text("y") == "y"


def test_rules_do_not_redact_placeholders_again() -> None:
    r = redactor(
        RedactionRule.for_pointer("/token"),
        RedactionRule.for_regex(r'"token":"([^"]+)"'),
        RedactionRule("any", regex=r"<redacted:[^>]+>"),
    )
    once = r.text('{"token":"abc"}')
    assert once == f'{{"token":"{expected("token", "abc")}"}}'
    assert r.text(once) == once


def test_secret_variables() -> None:
    assert secret_variable("authorization") == "WSCENARIO_SECRET_AUTHORIZATION"
    assert secret_variable("x-amz-signature") == "WSCENARIO_SECRET_X_AMZ_SIGNATURE"


def name_of(placeholder: str) -> str:
    found = PLACEHOLDER.fullmatch(placeholder)
    assert found is not None, placeholder
    return found[1]


def test_each_distinct_value_under_a_name_gets_a_name_and_variable_of_its_own() -> None:
    r = redactor()
    first = r.placeholder("token", "abc")
    second = r.placeholder("Token", "xyz")
    third = r.placeholder("token", "123")
    assert [first, second, third] == [
        expected("token", "abc"),
        expected("token-2", "xyz"),
        expected("token-3", "123"),
    ]
    assert [secret_variable(name_of(p)) for p in (first, second, third)] == [
        "WSCENARIO_SECRET_TOKEN",
        "WSCENARIO_SECRET_TOKEN_2",
        "WSCENARIO_SECRET_TOKEN_3",
    ]
    assert r.placeholder("token", "xyz") == second  # an equal value keeps its placeholder
    assert r.placeholder("token", "abc") == first
    assert r.placeholder("cookie", "xyz") == expected("cookie", "xyz")  # names count apart


def test_a_query_value_and_a_message_value_under_one_name_each_come_back_from_their_own() -> None:
    r = redactor(RedactionRule.for_pointer("/token"), RedactionRule.for_regex(r"pin=(\d+)"))
    target = r.target("/feed?token=from-the-url")
    message = r.text('{"token":"from-the-body","note":"pin=1234 pin=9876 pin=1234"}')
    assert target == f"/feed?token={expected('token', 'from-the-url')}"
    assert json.loads(message) == {
        "token": expected("token-2", "from-the-body"),
        "note": (
            f"pin={expected('regex', '1234')} pin={expected('regex-2', '9876')} "
            f"pin={expected('regex', '1234')}"
        ),
    }
    assert (
        r.target("/again?token=from-the-url") == f"/again?token={expected('token', 'from-the-url')}"
    )
    env = {
        "WSCENARIO_SECRET_TOKEN": "from-the-url",
        "WSCENARIO_SECRET_TOKEN_2": "from-the-body",
        "WSCENARIO_SECRET_REGEX": "1234",
        "WSCENARIO_SECRET_REGEX_2": "9876",
    }
    assert restore(target, env) == "/feed?token=from-the-url"
    assert json.loads(restore(message, env)) == {
        "token": "from-the-body",
        "note": "pin=1234 pin=9876 pin=1234",
    }


def test_a_number_whose_variable_another_value_holds_is_skipped() -> None:
    r = redactor()
    assert r.placeholder("token_2", "held") == expected("token_2", "held")
    assert r.placeholder("token", "a") == expected("token", "a")
    assert r.placeholder("token", "b") == expected("token-3", "b")  # token-2 is TOKEN_2: held
    assert r.placeholder("token", "c") == expected("token-4", "c")
    assert r.placeholder("token_3", "d") == expected("token_3-2", "d")  # TOKEN_3 is b's
    assert r.placeholder("token-2", "e") == expected("token-2-2", "e")
    assert r.placeholder("x-amz-date", "1") == expected("x-amz-date", "1")
    assert r.placeholder("x_amz_date", "2") == expected("x_amz_date-2", "2")


def test_no_variable_is_asked_for_two_values() -> None:
    r = redactor()
    holders: dict[str, set[str]] = {}
    names = ["token", "token_2", "token-2", "token_3", "token-10", "token_1_0"]
    for n in range(600):
        value = f"v{n % 200}"
        placeholder = r.placeholder(names[n % len(names)], value)
        holders.setdefault(secret_variable(name_of(placeholder)), set()).add(value)
        assert r.placeholder(names[n % len(names)], value) == placeholder
    assert all(len(values) == 1 for values in holders.values())
    assert len(holders) >= 200


def test_each_redactor_numbers_its_own_values_under_one_key() -> None:
    one, other = redactor(), redactor()
    assert one.placeholder("token", "first") == expected("token", "first")
    assert one.placeholder("token", "second") == expected("token-2", "second")
    assert other.placeholder("token", "second") == expected("token", "second")
    shown = Redactor(KEY, RedactionPolicy(), numbered=False)
    assert shown.placeholder("token", "first") == expected("token", "first")
    assert shown.placeholder("token", "second") == expected("token", "second")


def test_secret_variables_sort_by_their_numbers() -> None:
    variables = ["X_TOKEN_10", "X_TOKEN", "X_TOKEN_2", "X_A1B", "X_A10B", "X_A2B", "X_TOKEN_3"]
    assert sorted(variables, key=secret_order) == [
        "X_A1B",
        "X_A2B",
        "X_A10B",
        "X_TOKEN",
        "X_TOKEN_2",
        "X_TOKEN_3",
        "X_TOKEN_10",
    ]


def test_restore_puts_secrets_back_and_reports_missing_names() -> None:
    r = redactor()
    text = f"{r.placeholder('authorization', 'a')} {r.placeholder('token', 't')} <redacted:x>"
    missing: set[str] = set()
    env = {"WSCENARIO_SECRET_AUTHORIZATION": "Bearer real"}
    restored = restore(text, env, missing)
    assert restored == f"Bearer real {r.placeholder('token', 't')} <redacted:x>"
    assert missing == {"token"}
    assert restore(text, env) == restored


def test_secrets_in_are_the_secret_variables_values_longest_first() -> None:
    env = {
        "WSCENARIO_SECRET_A": "short-but-fine",
        "WSCENARIO_SECRET_LONGER": "a much longer secret",
        "WSCENARIO_SECRET_TINY": "abc",  # would garble every text it is part of
        "PATH": "/usr/bin:/bin",
    }
    assert list(secrets_in(env).items()) == [
        ("a much longer secret", "<WSCENARIO_SECRET_LONGER>"),
        ("short-but-fine", "<WSCENARIO_SECRET_A>"),
    ]
    assert secrets_in({}) == {}


def test_hide_replaces_secrets_in_text_and_inside_json_values() -> None:
    secrets = secrets_in({"WSCENARIO_SECRET_TOKEN": "s3cret-value"})
    assert hide("Bearer s3cret-value!", secrets) == "Bearer <WSCENARIO_SECRET_TOKEN>!"
    nested = {"a": ["x s3cret-value", 1, None], "b": ("s3cret-value",), "c": b"s3cret-value"}
    assert hide(nested, secrets) == {
        "a": ["x <WSCENARIO_SECRET_TOKEN>", 1, None],
        "b": ("<WSCENARIO_SECRET_TOKEN>",),
        "c": b"s3cret-value",  # bytes are shown as hex or base64, never as this text
    }
    assert hide("nothing secret", secrets) == "nothing secret"


def test_hide_without_secrets_hands_back_the_same_value() -> None:
    nested = {"a": ["x s3cret-value", 1]}
    assert hide(nested, {}) is nested
