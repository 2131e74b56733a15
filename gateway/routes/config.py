"""GET /functions/v1/llm-config: the configuration a run would use, as the run page shows it."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec
from litestar import get
from litestar.params import FromQuery

from gateway.auth import organization_of
from gateway.data import Caller, DataAccess
from gateway.routes import Injected, error_responses


class LlmConfigResponse(msgspec.Struct):
    provider: str
    model: str
    display_name: str
    settings: dict[str, Any]
    capabilities: dict[str, Any]
    profile: str | None
    source: Literal["processor", "organization", "global"]
    api_key_source: Literal["organization", "system"]


@get(
    "/functions/v1/llm-config",
    summary="The effective LLM configuration for the caller (no secrets)",
    responses=error_responses(400, 401, 403, 404, 503),
)
async def llm_config(
    caller: Injected[Caller],
    data_access: Injected[DataAccess],
    processor_id: FromQuery[uuid.UUID | None] = None,
    organization_id: FromQuery[uuid.UUID | None] = None,
) -> LlmConfigResponse:
    config = await data_access.effective_config(caller, organization_of(caller, organization_id), processor_id)
    return LlmConfigResponse(
        provider=config.provider,
        model=config.model,
        display_name=config.display_name,
        settings=config.settings,
        capabilities=config.capabilities,
        profile=config.profile,
        source=config.source,
        api_key_source=config.api_key_source,
    )
