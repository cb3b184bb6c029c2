"""The URL checks shared by ``validate`` (``client.url``) and command-line URLs."""

from __future__ import annotations

import pytest

from wscenario.core.urls import URL_HINT, USERINFO_HINT, given_url_problem, url_host, url_problem


@pytest.mark.parametrize(
    "url", ["ws://127.0.0.1:8765/chat?room=1", "wss://example.test/", "ws://h"]
)
def test_usable_urls_have_no_problem(url: str) -> None:
    assert url_problem(url) is None
    assert given_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "message", "hint"),
    [
        ("http://h/", "url must start with ws:// or wss://, not 'http://h/'", URL_HINT),
        ("ws://h:99999/", "invalid url: port out of range 0-65535", URL_HINT),
        ("ws://[::1/", "invalid url: invalid ipv6 url", URL_HINT),
        ("ws:///path", "url has no host", URL_HINT),
        ("ws://u:p@h/", "url must not hold user:password@", USERINFO_HINT),
    ],
)
def test_unusable_urls_say_why(url: str, message: str, hint: str) -> None:
    problem = url_problem(url)
    assert problem is not None
    assert (problem.message, problem.hint) == (message, hint)
    assert given_url_problem(url) == problem


def test_a_given_url_may_not_hold_a_template() -> None:
    problem = given_url_problem("ws://h/{{ path }}")
    assert problem is not None
    assert "template" in problem.message
    assert url_problem("ws://h/{{ path }}") is None


def test_a_given_url_must_be_valid_unicode() -> None:
    problem = given_url_problem("ws://h/\udcff")
    assert problem is not None
    assert problem.message == "url is not valid UTF-8"


@pytest.mark.parametrize(
    ("host", "written"),
    [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]"), ("example.org", "example.org")],
)
def test_url_host_brackets_ipv6(host: str, written: str) -> None:
    assert url_host(host) == written
