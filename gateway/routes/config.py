"""GET /functions/v1/llm-config: the configuration a run would use, as the run page shows it."""

from __future__ import annotations

import uuid

from litestar import get
from litestar.params import FromQuery

from gateway.auth import organization_of
from gateway.data import Caller, EffectiveConfig
from gateway.routes import Injected, error_responses
from gateway.services import Services


@get(
    "/functions/v1/llm-config",
    summary="The effective LLM configuration for the caller (no secrets)",
    responses=error_responses(400, 401, 403, 404, 503),
)
async def llm_config(
    caller: Injected[Caller],
    services: Injected[Services],
    processor_id: FromQuery[uuid.UUID | None] = None,
    organization_id: FromQuery[uuid.UUID | None] = None,
) -> EffectiveConfig:
    # The database's output contract holds no secret: it is the response as it stands.
    return await services.data_access.effective_config(caller, organization_of(caller, organization_id), processor_id)
