"""The database contract the gateway needs, independent of how it reaches the database.

Every method maps database errors to the gateway's exceptions the same way in every adapter:
SQLSTATE 42501 → ForbiddenError, PT404 → NotFoundError, 22023/22P02/22004 → BadRequest,
PT402 → BudgetExceeded, PT503 → ConfigError, connection failure or timeout → DatabaseUnavailable.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

# Another organization's run and one that does not exist are the same answer: nothing leaks.
RUN_NOT_FOUND = "run not found"


@dataclass(frozen=True)
class Caller:
    """A verified token's identity. The database sees exactly these claims."""

    role: Literal["authenticated", "service_role"]
    claims: dict[str, Any]
    # The raw token, forwarded as-is by adapters that speak to PostgREST.
    token: str = field(repr=False)

    @property
    def user_id(self) -> uuid.UUID | None:
        sub = self.claims.get("sub")
        return uuid.UUID(sub) if isinstance(sub, str) else None

    @property
    def organization_id(self) -> uuid.UUID | None:
        """app_metadata.organization_id (never user_metadata); membership is the database's check."""
        app_metadata = self.claims.get("app_metadata")
        value = app_metadata.get("organization_id") if isinstance(app_metadata, dict) else None
        try:
            return uuid.UUID(value) if isinstance(value, str) else None
        except ValueError:
            return None


@dataclass(frozen=True)
class LlmTarget:
    """A provider and model to call, with the settings and key source to call it with."""

    provider: str
    model: str
    display_name: str
    settings: dict[str, Any]
    capabilities: dict[str, Any]
    profile: str | None
    api_key_source: Literal["organization", "system"]
    # An organization's custom provider's endpoint (provider "custom:<name>"); None for the catalog's.
    base_url: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class EffectiveConfig(LlmTarget):
    """Output of get_effective_llm_config / get_effective_llm_config_for_org: the primary target,
    where its configuration came from, and the targets to try after it, in order."""

    source: Literal["processor", "organization", "global"]
    fallbacks: tuple[LlmTarget, ...] = ()

    @classmethod
    def from_json(cls, config: dict[str, Any]) -> EffectiveConfig:
        fallbacks = tuple(LlmTarget(**target) for target in config.get("fallbacks") or ())
        return cls(**{**config, "fallbacks": fallbacks})

    @property
    def targets(self) -> tuple[LlmTarget, ...]:
        return (self, *self.fallbacks)


@dataclass(frozen=True)
class ResolvedCall:
    """What a provider call needs from the database, read in one go before it is made."""

    config: EffectiveConfig
    # The organization's keys, by provider, of the targets whose api_key_source is "organization".
    org_api_keys: dict[str, str] = field(repr=False)
    # Whether a hard budget applies (the organization's, or the processor's): reserve first.
    hard_budget: bool


@dataclass(frozen=True)
class ModelChoice:
    """One model a caller may name: processor/<id>, profile/<name> or <provider>/<model_name>."""

    id: str
    owned_by: str
    display_name: str


@dataclass(frozen=True)
class KeyInfo:
    provider: str
    key_hint: str
    updated_at: datetime


@dataclass(frozen=True)
class UsageRecord:
    """One llm_usage_logs row; estimated_cost is left to the database trigger."""

    organization_id: uuid.UUID
    provider: str
    model_name: str
    user_id: uuid.UUID | None = None
    processor_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    operation_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    response_time_ms: int | None = None
    error_message: str | None = None
    # The budget reservation the row settles, when a hard budget applied.
    reservation_id: uuid.UUID | None = None
    # The request this call was an attempt of, and which attempt (1, 2, ...).
    request_id: uuid.UUID | None = None
    attempt: int | None = None
    # The token counts are an estimate: a stream ended before the provider reported its usage.
    usage_estimated: bool = False


@dataclass(frozen=True)
class BudgetReservation:
    """A call's worst case, to reserve against the hard budgets it falls under."""

    organization_id: uuid.UUID
    processor_id: uuid.UUID | None
    provider: str
    model: str
    max_input_tokens: int
    max_output_tokens: int
    # How long the reservation holds if its usage row never comes (the gateway died).
    seconds: int


class DataAccess(Protocol):
    async def effective_config(
        self, caller: Caller, organization_id: uuid.UUID, processor_id: uuid.UUID | None
    ) -> EffectiveConfig:
        """Resolve as the caller: a signed-in user through get_effective_llm_config (the database
        checks organization and membership), the service role through get_effective_llm_config_for_org."""
        ...

    async def resolve_call(
        self,
        caller: Caller,
        organization_id: uuid.UUID,
        processor_id: uuid.UUID | None,
        run_id: uuid.UUID | None,
        model: str | None = None,
    ) -> ResolvedCall:
        """effective_config, plus (with service-role rights) the organization's key for each target
        whose api_key_source is "organization" and whether a hard budget applies: what a
        provider call needs, in as few round trips as the adapter allows. NotFoundError if
        `run_id` is not a run of the organization (one that does not exist included), so no call
        is made for it. `model` (profile/<name> or <provider>/<model_name>) resolves through
        get_llm_config_for_model instead, without a processor."""
        ...

    async def list_models(self, caller: Caller, organization_id: uuid.UUID) -> list[ModelChoice]:
        """list_llm_models as the caller (the service role: list_llm_models_for_org)."""
        ...

    async def org_api_key(self, organization_id: uuid.UUID, provider: str) -> str | None:
        """get_org_api_key with service-role rights."""
        ...

    async def reserve_budget(self, reservation: BudgetReservation) -> uuid.UUID | None:
        """reserve_llm_budget with service-role rights: the reservation's id, None when no hard
        budget applies; BudgetExceeded when one cannot hold the call."""
        ...

    async def record_usage(self, record: UsageRecord) -> float | None:
        """Insert and commit one usage row with service-role rights; return its estimated_cost.
        Cancelling the caller does not cancel the write: a call already made is always billed."""
        ...

    async def store_key(self, caller: Caller, organization_id: uuid.UUID, provider: str, api_key: str) -> None:
        """store_org_api_key as the caller, so the database enforces owner/admin rights too."""
        ...

    async def delete_key(self, caller: Caller, organization_id: uuid.UUID, provider: str) -> bool: ...

    async def list_keys(self, caller: Caller, organization_id: uuid.UUID) -> list[KeyInfo]: ...

    async def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers."""
        ...

    async def close(self) -> None: ...
