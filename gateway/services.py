"""What the routes work with: built once per app by create_app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from gateway.auth import TokenVerifier
from gateway.breaker import Breakers
from gateway.config_cache import ConfigCache
from gateway.data import DataAccess
from gateway.metrics import Metrics
from gateway.settings import Settings


@dataclass(frozen=True)
class Services:
    """Injected as one dependency: Litestar resolves two or more dependencies of a handler in an
    anyio task group, a task each on every request, which cost 0.3-0.45 ms of CPU per request in a
    measurement with five; `caller` depends on this one, so each is resolved alone."""

    settings: Settings
    http_client: aiohttp.ClientSession
    # Organizations' own endpoints, behind the SSRF guard.
    custom_http_client: aiohttp.ClientSession
    data_access: DataAccess
    verifier: TokenVerifier
    config_cache: ConfigCache
    breakers: Breakers
    metrics: Metrics
