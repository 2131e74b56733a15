"""DataAccess over Supabase's REST API (PostgREST), with `SUPABASE_URL` + `SUPABASE_SERVICE_ROLE_KEY`.

Uses postgrest-py's async client, the same one `supabase.AsyncClient.postgrest` builds, without
the auth, realtime and storage clients the gateway never uses. Service-role calls carry the
service-role key; calls as a signed-in user carry the user's token as `Authorization: Bearer`
with the project key as `apikey`, as supabase-js does, so PostgREST runs them as that user.
Every method is one HTTP request, hence one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from datetime import datetime
from typing import Any, Protocol, TypeVar

import httpx
from httpx_aiohttp import HttpxAiohttpClient
from postgrest import APIError, APIResponse, AsyncPostgrestClient, ReturnMethod
from postgrest.base_request_builder import RequestConfig

from gateway.data.errors import database_error, unavailable
from gateway.data.types import (
    RUN_NOT_FOUND,
    BudgetReservation,
    Caller,
    EffectiveConfig,
    KeyInfo,
    ModelChoice,
    ResolvedCall,
    UsageRecord,
)
from gateway.errors import AuthError, GatewayError, NotFoundError

_SQLSTATE = re.compile(r"[0-9A-Z]{5}")
# PostgREST's own codes: PGRST000-003 it cannot reach the database; PGRST3xx the token is bad.
_UNREACHABLE = frozenset({"PGRST000", "PGRST001", "PGRST002", "PGRST003"})


class _Request(Protocol):
    request: RequestConfig[httpx.AsyncClient]

    async def execute(self) -> APIResponse: ...


_R = TypeVar("_R", bound=_Request)


class PostgrestDataAccess:
    """Build with `await PostgrestDataAccess.connect(url, key)`; `await close()` at shutdown."""

    def __init__(self, rest: AsyncPostgrestClient) -> None:
        """`rest` must authenticate as the service role by default (its own headers)."""
        self._rest = rest

    @classmethod
    async def connect(
        cls, supabase_url: str, service_role_key: str, *, http_timeout: httpx.Timeout | None = None
    ) -> PostgrestDataAccess:
        # aiohttp under httpx's API: measured ~1.8 ms of client CPU per call here against ~3.1 ms
        # with httpx's own transport (most of the rest is postgrest-py and httpx's models).
        http = HttpxAiohttpClient(timeout=http_timeout or httpx.Timeout(10.0, connect=3.0))
        rest = AsyncPostgrestClient(
            f"{supabase_url.rstrip('/')}/rest/v1",
            headers={"apikey": service_role_key, "Authorization": f"Bearer {service_role_key}"},
            http_client=http,
            # postgrest-py would retry failed GETs for seconds; fail fast and let the caller decide.
            retry_enabled=False,
        )
        return cls(rest)

    async def close(self) -> None:
        await self._rest.aclose()

    async def ping(self) -> None:
        # A one-row read through PostgREST reaches the database (its root page may not).
        await _execute(self._rest.from_("llm_global_settings").select("id").limit(1))

    async def effective_config(
        self, caller: Caller, organization_id: uuid.UUID, processor_id: uuid.UUID | None, model: str | None = None
    ) -> EffectiveConfig:
        """A signed-in caller's organization comes from its token (the database's check);
        `organization_id` is used for the service role only."""
        function, params = (
            "get_effective_llm_config",
            {} if processor_id is None else {"p_processor_id": str(processor_id)},
        )
        if model is not None:
            function, params = "get_llm_config_for_model", {"p_model": model}
        if caller.role == "service_role":
            function, params = f"{function}_for_org", {"p_organization_id": str(organization_id), **params}
        request = self._rest.rpc(function, params)
        data = await _execute(_as(caller, request))
        if not isinstance(data, dict):
            raise _unexpected_shape("get_effective_llm_config")
        return EffectiveConfig.from_json(data)

    async def resolve_call(
        self,
        caller: Caller,
        organization_id: uuid.UUID,
        processor_id: uuid.UUID | None,
        run_id: uuid.UUID | None,
        model: str | None = None,
    ) -> ResolvedCall:
        # PostgREST runs one function per request, as one role: the run and the budgets are read
        # beside the resolution (concurrently, so no later), the keys after it.
        config, run_of_organization, hard_budget = await asyncio.gather(
            self.effective_config(caller, organization_id, processor_id, model),
            self._is_run_of(organization_id, run_id),
            self._has_hard_budget(organization_id, processor_id),
        )
        if not run_of_organization:
            raise NotFoundError(RUN_NOT_FOUND)
        providers = sorted({t.provider for t in config.targets if t.api_key_source == "organization"})
        keys = await asyncio.gather(*(self.org_api_key(organization_id, provider) for provider in providers))
        return ResolvedCall(config, {p: k for p, k in zip(providers, keys, strict=True) if k is not None}, hard_budget)

    async def _is_run_of(self, organization_id: uuid.UUID, run_id: uuid.UUID | None) -> bool:
        if run_id is None:
            return True
        request = (
            self._rest.from_("runs").select("id").eq("id", str(run_id)).eq("organization_id", str(organization_id))
        )
        return bool(await _execute(request))

    async def _has_hard_budget(self, organization_id: uuid.UUID, processor_id: uuid.UUID | None) -> bool:
        request = (
            self._rest.from_("llm_budgets")
            .select("processor_id")
            .eq("organization_id", str(organization_id))
            .eq("hard", "true")
        )
        budgets = await _execute(request)
        scopes = {None, str(processor_id)} if processor_id is not None else {None}
        return isinstance(budgets, list) and any(b.get("processor_id") in scopes for b in budgets)

    async def list_models(self, caller: Caller, organization_id: uuid.UUID) -> list[ModelChoice]:
        if caller.role == "service_role":
            request = self._rest.rpc("list_llm_models_for_org", {"p_organization_id": str(organization_id)})
        else:
            request = self._rest.rpc("list_llm_models", {})
        data = await _execute(_as(caller, request))
        if not isinstance(data, list):
            raise _unexpected_shape("list_llm_models")
        return [ModelChoice(row["id"], row["owned_by"], row["display_name"]) for row in data]

    async def reserve_budget(self, reservation: BudgetReservation) -> uuid.UUID | None:
        r = reservation
        params: dict[str, Any] = {
            "p_organization_id": str(r.organization_id),
            "p_processor_id": None if r.processor_id is None else str(r.processor_id),
            "p_provider": r.provider,
            "p_model": r.model,
            "p_max_input_tokens": r.max_input_tokens,
            "p_max_output_tokens": r.max_output_tokens,
            "p_seconds": r.seconds,
        }
        data = await _execute(self._rest.rpc("reserve_llm_budget", params))
        if data is not None and not isinstance(data, str):
            raise _unexpected_shape("reserve_llm_budget")
        return None if data is None else uuid.UUID(data)

    async def org_api_key(self, organization_id: uuid.UUID, provider: str) -> str | None:
        data = await _execute(
            self._rest.rpc("get_org_api_key", {"p_organization_id": str(organization_id), "p_provider": provider})
        )
        if data is not None and not isinstance(data, str):
            raise _unexpected_shape("get_org_api_key")
        return data

    async def record_usage(self, record: UsageRecord) -> float | None:
        # Shielded: a caller going away must not abort the write of a call already made.
        return await asyncio.shield(self._insert_usage(record))

    async def _insert_usage(self, record: UsageRecord) -> float | None:
        row = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in dataclasses.asdict(record).items()}
        request = (
            self._rest.from_("llm_usage_logs")
            .insert(row, returning=ReturnMethod.representation)
            .select("estimated_cost")
        )
        data = await _execute(request)
        if not (isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict)):
            raise _unexpected_shape("llm_usage_logs insert")
        cost = data[0].get("estimated_cost")
        return None if cost is None else float(cost)

    async def store_key(self, caller: Caller, organization_id: uuid.UUID, provider: str, api_key: str) -> None:
        params = {"p_organization_id": str(organization_id), "p_provider": provider, "p_api_key": api_key}
        await _execute(_as(caller, self._rest.rpc("store_org_api_key", params)), secret=api_key)

    async def delete_key(self, caller: Caller, organization_id: uuid.UUID, provider: str) -> bool:
        params = {"p_organization_id": str(organization_id), "p_provider": provider}
        data = await _execute(_as(caller, self._rest.rpc("delete_org_api_key", params)))
        if not isinstance(data, bool):
            raise _unexpected_shape("delete_org_api_key")
        return data

    async def list_keys(self, caller: Caller, organization_id: uuid.UUID) -> list[KeyInfo]:
        params = {"p_organization_id": str(organization_id)}
        data = await _execute(_as(caller, self._rest.rpc("list_org_api_keys", params)))
        if not isinstance(data, list):
            raise _unexpected_shape("list_org_api_keys")
        return [KeyInfo(row["provider"], row["key_hint"], datetime.fromisoformat(row["updated_at"])) for row in data]


def _as(caller: Caller, request: _R) -> _R:
    # Each builder owns a copy of the client's headers; this swaps the bearer for this request only.
    request.request.headers["Authorization"] = f"Bearer {caller.token}"
    return request


async def _execute(request: _Request, *, secret: str | None = None) -> Any:
    try:
        response = await request.execute()
    except APIError as exc:
        error = _mapped(exc, secret)
        if secret is None:
            raise error from exc
        raise error from None  # the original error holds the request's parameters
    except httpx.TransportError as exc:  # refused, reset, timed out
        raise unavailable() from exc
    return response.data


def _mapped(exc: APIError, secret: str | None) -> GatewayError:
    code = exc.code or ""
    if code in _UNREACHABLE:
        return unavailable()
    if code.startswith("PGRST3"):
        return AuthError("the database API rejected the token")
    if _SQLSTATE.fullmatch(code):
        return database_error(code, exc.message, exc.hint, secret=secret)
    # A body that is not PostgREST's: postgrest-py reports the HTTP status as the code.
    if code.startswith("5"):
        return unavailable()
    if code == "401":
        return AuthError("the database API rejected the token")
    return GatewayError(f"unexpected database API error ({code or 'no code'})")


def _unexpected_shape(what: str) -> GatewayError:
    return GatewayError(f"unexpected response shape from {what}")
