"""Shared test fixtures."""

from __future__ import annotations

import os

import pytest
import trustme
from hypothesis import settings

# Property tests draw the same examples on every run, so a run (and its coverage) is
# reproducible; HYPOTHESIS_PROFILE=explore searches afresh.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def trustme_ca() -> trustme.CA:
    """A throwaway certificate authority for TLS tests (its certificates are made per test)."""
    return trustme.CA()
