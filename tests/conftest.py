"""Shared test fixtures."""

from __future__ import annotations

import pytest
import trustme


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def trustme_ca() -> trustme.CA:
    """A throwaway certificate authority for TLS tests (its certificates are made per test)."""
    return trustme.CA()
