"""URLs given on a command line (``run --url``, ``replay --against``): checked before use."""

from __future__ import annotations

from wscenario.core.urls import given_url_problem
from wscenario.core.valid_unicode import shown
from wscenario.errors import UsageError


def checked_url(url: str, option: str) -> str:
    """``url`` when it is a usable ws:// or wss:// URL; otherwise a usage error naming ``option``.

    Raises:
        UsageError: the check ``validate`` applies to ``client.url`` fails, the URL holds a
            template, or it is not valid Unicode.
    """
    problem = given_url_problem(url)
    if problem is not None:
        raise UsageError(f"{option} '{shown(url)}': {problem.message} ({problem.hint})")
    return url
