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
