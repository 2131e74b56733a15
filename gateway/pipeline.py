"""The one execution pipeline every wire shape calls: resolution, budget, the provider call and
its billing. Routes only translate their wire format to a `Call` and the outcome back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gateway import budget
from gateway.data import Caller, EffectiveConfig, UsageRecord
from gateway.providers import ChatMessage, CompletionRequest
from gateway.services import Services
from gateway.usage import BilledCompletion, complete_and_record


@dataclass(frozen=True)
class Call:
    organization_id: uuid.UUID
    messages: tuple[ChatMessage, ...]
    system: str | None = None
    processor_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    operation_id: str | None = None


@dataclass(frozen=True)
class CallOutcome:
    config: EffectiveConfig
    billed: BilledCompletion


async def execute(services: Services, caller: Caller, call: Call) -> CallOutcome:
    settings, data = services.settings, services.data_access
    resolved = await services.config_cache.resolve_call(
        data, caller, call.organization_id, call.processor_id, call.run_id
    )
    config = resolved.config
    # The system key also covers an organization key deleted since the configuration was read.
    api_key = resolved.org_api_key or settings.api_keys.get(config.provider, "")
    request = CompletionRequest(
        model=config.model, messages=call.messages, system=call.system, settings=config.settings
    )
    reservation_id = None
    if resolved.hard_budget:
        request, reservation_id = await budget.reserve(
            data,
            call.organization_id,
            call.processor_id,
            config.provider,
            request,
            settings.connect_timeout + settings.read_timeout,
        )
    row = UsageRecord(
        organization_id=call.organization_id,
        provider=config.provider,
        # The catalog's id, which the database prices; the provider may answer with a dated alias.
        model_name=config.model,
        user_id=caller.user_id if caller.role == "authenticated" else None,
        processor_id=call.processor_id,
        run_id=call.run_id,
        operation_id=call.operation_id,
        reservation_id=reservation_id,
    )
    billed = await complete_and_record(
        services.http_client, data, row, settings.base_urls.get(config.provider, ""), api_key, request
    )
    return CallOutcome(config, billed)
