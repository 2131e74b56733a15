"""POST /functions/v1/manage-llm-keys: an organization's provider keys, for its owners and admins.

The database checks the caller's right to manage keys on every call; the gateway only shapes
the request. A key goes in, never out: answers carry its last four characters at most.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import post
from litestar.params import JSONBody

from gateway.auth import organization_of
from gateway.data import Caller
from gateway.errors import NotFoundError
from gateway.providers import PROVIDERS
from gateway.routes import Injected, error_responses
from gateway.services import Services

# Matches store_org_api_key's own limit, so an oversized key is a 400 before any database work.
API_KEY_MAX = 512
HINT_LENGTH = 4
# An organization's custom provider, named as the database names it (llm_custom_providers.name).
CUSTOM_PROVIDER = re.compile(r"custom:[a-z][a-z0-9-]{1,30}")


class ManageKeysRequest(msgspec.Struct, forbid_unknown_fields=True):
    action: Literal["set", "rotate", "delete", "list"]
    provider: str | None = None
    api_key: Annotated[str, msgspec.Meta(max_length=API_KEY_MAX)] | None = None
    organization_id: Annotated[uuid.UUID, msgspec.Meta(description="Service-role tokens only.")] | None = None

    def __post_init__(self) -> None:
        if self.action != "list" and self.provider is None:
            raise ValueError(f"provider is required to {self.action} a key")
        if (
            self.provider is not None
            and self.provider not in PROVIDERS
            and not CUSTOM_PROVIDER.fullmatch(self.provider)
        ):
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}, or custom:<name> of a custom provider")
        if (self.action in ("set", "rotate")) != (self.api_key is not None):
            raise ValueError("api_key is required to set or rotate a key, and accepted for nothing else")


class KeyOut(msgspec.Struct):
    provider: str
    key_hint: str
    updated_at: datetime


class ManageKeysResponse(msgspec.Struct, omit_defaults=True):
    action: str
    provider: str | None = None
    key_hint: str | None = None
    keys: list[KeyOut] | None = None


@post(
    "/functions/v1/manage-llm-keys",
    status_code=200,
    summary="Set, rotate, delete or list the organization's keys",
    responses=error_responses(400, 401, 403, 404, 503),
)
async def manage_llm_keys(
    data: JSONBody[ManageKeysRequest],
    caller: Injected[Caller],
    services: Injected[Services],
) -> ManageKeysResponse:
    data_access, config_cache = services.data_access, services.config_cache
    organization_id = organization_of(caller, data.organization_id)
    if data.action == "list":
        keys = await data_access.list_keys(caller, organization_id)
        return ManageKeysResponse(action="list", keys=[KeyOut(k.provider, k.key_hint, k.updated_at) for k in keys])
    provider = str(data.provider)
    if data.action == "delete":
        if not await data_access.delete_key(caller, organization_id, provider):
            raise NotFoundError(f"the organization has no {provider} key")
        config_cache.clear()  # this worker's next calls must not use the deleted key
        return ManageKeysResponse(action="delete", provider=provider)

    api_key = str(data.api_key)
    if data.action == "rotate":
        stored = await data_access.list_keys(caller, organization_id)
        if not any(k.provider == provider for k in stored):
            raise NotFoundError(f"the organization has no {provider} key to rotate; use set")
    await data_access.store_key(caller, organization_id, provider, api_key)
    config_cache.clear()  # this worker's next calls use the new key
    return ManageKeysResponse(action=data.action, provider=provider, key_hint=api_key[-HINT_LENGTH:])
