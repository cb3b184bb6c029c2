"""The redaction policy: defaults, rule names, and its form in a transcript header."""

from __future__ import annotations

from typing import Any

import pytest

from wscenario.core.redaction_policy import (
    DEFAULT_HEADERS,
    PolicyError,
    RedactionPolicy,
    RedactionRule,
    placeholder_name,
)


def test_defaults_cover_credential_headers() -> None:
    policy = RedactionPolicy()
    assert policy.enabled
    assert set(DEFAULT_HEADERS) == {"authorization", "cookie", "proxy-authorization", "set-cookie"}
    assert "token" in policy.query
    assert "x-amz-*" in policy.query


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Authorization", "authorization"),
        ("X-Amz-Signature", "x-amz-signature"),
        ("a b$c", "a_b_c"),
        ("", "_"),
    ],
)
def test_placeholder_names(name: str, expected: str) -> None:
    assert placeholder_name(name) == expected


def test_pointer_rules_are_named_after_the_last_token() -> None:
    assert RedactionRule.for_pointer("/auth/Token") == RedactionRule("token", pointer="/auth/Token")
    assert RedactionRule.for_pointer("/a~1b~0c").name == "a_b_c"


def test_regex_rules_are_named_after_their_group() -> None:
    assert RedactionRule.for_regex(r'"pw":"(?P<password>[^"]+)"').name == "password"
    assert RedactionRule.for_regex(r"secret=(\w+)").name == "regex"


def test_policy_round_trips_through_json() -> None:
    policy = RedactionPolicy(
        enabled=False,
        headers=("x-api-key",),
        query=(),
        subprotocols=False,
        rules=(RedactionRule.for_pointer("/token"), RedactionRule.for_regex("k=(\\w+)")),
    )
    assert RedactionPolicy.from_json(policy.to_json()) == policy


def good() -> dict[str, Any]:
    return RedactionPolicy().to_json()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "redaction must be an object"),
        ({"enabled": True}, "exactly the keys"),
        (good() | {"rules": {}}, "rules must be a list"),
        (good() | {"enabled": "yes"}, "enabled must be true or false"),
        (good() | {"headers": ["a", 1]}, "headers must be a list of strings"),
        (good() | {"query": "token"}, "query must be a list of strings"),
        (good() | {"rules": [{"name": "a", "pointer": 1}]}, "must be strings"),
        (good() | {"rules": [{"name": "a", "pointer": "/a", "x": 1}]}, "exactly the keys"),
        (good() | {"rules": [{"name": "a", "regex": "("}]}, "regex is invalid"),
        (good() | {"rules": ["a"]}, "redaction rule must be an object"),
    ],
)
def test_invalid_stored_policies(value: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        RedactionPolicy.from_json(value)


def test_rules_from_the_command_line_are_checked() -> None:
    with pytest.raises(PolicyError, match="must start with '/'"):
        RedactionRule.for_pointer("token")
    with pytest.raises(PolicyError, match="regex is invalid"):
        RedactionRule.for_regex("(")


def test_stored_pointer_rules_are_checked() -> None:
    with pytest.raises(PolicyError, match="must start with '/'"):
        RedactionPolicy.from_json(good() | {"rules": [{"name": "a", "pointer": "a"}]})
