"""Liveness and readiness probes; neither needs a token."""

from __future__ import annotations

from litestar import get

from gateway.routes import Injected, error_responses
from gateway.services import Services

OK = {"status": "ok"}


@get("/health", summary="The process is serving")
async def health() -> dict[str, str]:
    return OK


@get(
    "/ready",
    summary="The database answers (503 otherwise); config_cache: off, ttl, listening or bypassed; "
    "breakers: each provider base URL's circuit breaker (closed, open, half_open)",
    responses=error_responses(503),
)
async def ready(services: Injected[Services]) -> dict[str, object]:
    await services.data_access.ping()
    return {**OK, "config_cache": services.config_cache.state, "breakers": services.breakers.states()}
