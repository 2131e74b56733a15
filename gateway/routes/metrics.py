"""GET /metrics: Prometheus text format, every worker's values; no token (it holds no secret)."""

from __future__ import annotations

import asyncio

from litestar import Response, get

from gateway.routes import Injected
from gateway.services import Services


@get("/metrics", summary="Prometheus metrics (llm_gateway_*) of every worker")
async def metrics(services: Injected[Services]) -> Response[bytes]:
    # A breaker turns half-open by time passing, not by a call: this worker's are read now.
    for target, state in services.breakers.states().items():
        services.metrics.set_breaker_state(target, state)
    # In a thread: with several workers it reads each one's files.
    body, content_type = await asyncio.to_thread(services.metrics.exposition)
    # Litestar adds the charset of a text/ media type itself; prometheus-client's names it already.
    return Response(body, media_type=content_type.removesuffix("; charset=utf-8"))
