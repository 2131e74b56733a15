"""What the provider adapter tests share: the fake providers on 127.0.0.1, and aiohttp clients
shaped like the gateway's. Used with `pytest_plugins = ["tests.py.test_provider_harness"]`."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import pytest_asyncio

from tests.fakes.providers import FakeProviders

API_KEY = "sk-test-0123456789abcdefghijklmnopqrstuv"


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    with FakeProviders() as servers:
        yield servers


@pytest.fixture(scope="session")
def tls() -> ssl.SSLContext:
    # Building a CA bundle per client costs ~0.1 s; the fakes are plain HTTP anyway.
    return ssl.create_default_context()


def session(tls: ssl.SSLContext, sock_read: float = 5.0) -> aiohttp.ClientSession:
    """A client with the gateway's kind of timeouts: none in all, `sock_read` between bytes."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=tls), timeout=aiohttp.ClientTimeout(total=None, sock_read=sock_read)
    )


@pytest_asyncio.fixture
async def client(tls: ssl.SSLContext) -> AsyncIterator[aiohttp.ClientSession]:
    async with session(tls) as shared:
        yield shared
