"""The one pooled HTTP client for providers and the JWKS endpoint: an `aiohttp.ClientSession`.

aiohttp's own API rather than httpx's: measured side by side (bench/results/gateway_load.md),
httpx's API over aiohttp costs more than 0.1 ms of CPU per call above a plain ClientSession, and
httpx's own transport more still.
"""

from __future__ import annotations

import aiohttp

from gateway.settings import Settings


def build_http_client(settings: Settings) -> aiohttp.ClientSession:
    """Open inside the event loop (the lifespan); `async with` or `await .close()` at shutdown."""
    connector = aiohttp.TCPConnector(limit=settings.max_connections, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(
        total=None,
        # Waiting for a pooled connection plus connecting.
        connect=settings.connect_timeout,
        # Between bytes of the answer: a non-streamed completion sends nothing until it is done.
        sock_read=settings.read_timeout,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        # The client serves every organization: a cookie one provider response sets (load-balancer
        # affinity, bot checks) must not ride along on the next organization's call.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Proxies come from <PROVIDER>_BASE_URL, never from the process environment.
        trust_env=False,
    )
