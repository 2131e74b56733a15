"""The pooled HTTP clients, `aiohttp.ClientSession`s: one for the catalog's providers and the JWKS
endpoint, one behind the SSRF guard for organizations' own endpoints.

aiohttp's own API rather than httpx's: measured side by side (bench/results/gateway_load.md),
httpx's API over aiohttp costs more than 0.1 ms of CPU per call above a plain ClientSession, and
httpx's own transport more still.
"""

from __future__ import annotations

import aiohttp

from gateway.outbound_guard import build_guarded_connector, guard_middleware
from gateway.settings import Settings


def build_http_client(settings: Settings) -> aiohttp.ClientSession:
    """Open inside the event loop (the lifespan); `async with` or `await .close()` at shutdown."""
    connector = aiohttp.TCPConnector(limit=settings.max_connections, limit_per_host=0)
    return _session(settings, connector)


def build_custom_provider_client(settings: Settings) -> aiohttp.ClientSession:
    """The client for organizations' own endpoints, a URL a tenant chose: its connector connects
    only to addresses the SSRF guard vetted, and its middleware vets IP literals and refuses
    redirects (gateway/outbound_guard.py). Kept apart from the catalog providers' client, whose
    base URLs the operator sets (local fakes and proxies included)."""
    allowed = settings.custom_provider_allowed_networks
    connector = build_guarded_connector(allowed, limit=settings.max_connections)
    return _session(settings, connector, middlewares=(guard_middleware(allowed),))


def _session(
    settings: Settings, connector: aiohttp.TCPConnector, middlewares: tuple[aiohttp.ClientMiddlewareType, ...] = ()
) -> aiohttp.ClientSession:
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
        middlewares=middlewares,
    )
