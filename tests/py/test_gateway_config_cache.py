"""GATEWAY_CONFIG_CACHE_SECONDS: off by default; when on, what may lag and what never does."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.config_cache import ConfigCache
from gateway.data import Caller, EffectiveConfig
from tests.fakes.providers import FakeProviders
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import Gateway, running_gateway

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

ORG_KEY = "sk-org-openai-key-for-cache-tests-WXYZ"


@pytest.fixture
async def cached(db: Database, tenants: Tenants, providers: FakeProviders) -> AsyncIterator[Gateway]:
    async with running_gateway(db, tenants, providers, GATEWAY_CONFIG_CACHE_SECONDS="30") as running:
        yield running


def switch_to_anthropic(gw: Gateway, processor: uuid.UUID) -> None:
    gw.processor_for("anthropic")  # adds the anthropic-test profile to the organization
    gw.db.run(
        "update processors set configuration = %s where id = %s",
        (json.dumps({"llm_profile": "anthropic-test"}), processor),
    )


async def provider_of_next_call(gw: Gateway, token: str, processor: uuid.UUID) -> str:
    response = await gw.execute(token, prompt="hi", processor_id=str(processor))
    assert response.status_code == 200, response.text
    return str(response.json()["provider"])


async def test_without_the_setting_every_call_sees_the_latest_configuration(gateway: Gateway) -> None:
    gw = gateway
    processor, token = gw.processor_for("openai"), gw.token(gw.tenants.acme.member)
    assert await provider_of_next_call(gw, token, processor) == "openai"
    switch_to_anthropic(gw, processor)
    assert await provider_of_next_call(gw, token, processor) == "anthropic"
    gw.db.run("delete from organization_members where user_id = %s", (gw.tenants.acme.member,))
    assert (await gw.execute(token, prompt="hi", processor_id=str(processor))).status_code == 403


async def test_with_the_cache_a_repeated_call_reuses_the_configuration(cached: Gateway) -> None:
    gw = cached
    processor, token = gw.processor_for("openai"), gw.token(gw.tenants.acme.member)
    assert await provider_of_next_call(gw, token, processor) == "openai"
    switch_to_anthropic(gw, processor)
    assert await provider_of_next_call(gw, token, processor) == "openai"  # the lag the operator accepted
    # Another token of the same user is another entry: it sees the change.
    other_token = gw.token(gw.tenants.acme.member, iat=1)
    assert await provider_of_next_call(gw, other_token, processor) == "anthropic"
    assert len(gw.usage_rows()) == 3  # every call billed, cached configuration or not


async def test_with_the_cache_refusals_are_never_reused(cached: Gateway) -> None:
    gw = cached
    outsider = gw.tenants.acme.member
    gw.db.run("delete from organization_members where user_id = %s", (outsider,))
    token = gw.token(outsider)
    assert (await gw.execute(token, prompt="hi")).status_code == 403
    gw.db.run(
        "insert into organization_members (organization_id, user_id, role) values (%s, %s, 'member')",
        (gw.tenants.acme.id, outsider),
    )
    assert (await gw.execute(token, prompt="hi")).status_code == 200


async def test_with_the_cache_a_key_change_through_the_gateway_applies_at_once(cached: Gateway) -> None:
    gw = cached
    processor, token = gw.processor_for("openai"), gw.token(gw.tenants.acme.member)
    await provider_of_next_call(gw, token, processor)
    admin = gw.token(gw.tenants.acme.admin)
    stored = await gw.manage_keys(admin, action="set", provider="openai", api_key=ORG_KEY)
    assert stored.status_code == 200, stored.text
    await provider_of_next_call(gw, token, processor)
    assert gw.providers.requests_for("openai")[-1].headers["authorization"] == f"Bearer {ORG_KEY}"
    assert (await gw.manage_keys(admin, action="delete", provider="openai")).status_code == 200
    await provider_of_next_call(gw, token, processor)
    assert gw.providers.requests_for("openai")[-1].headers["authorization"] != f"Bearer {ORG_KEY}"


async def test_a_removed_member_is_refused_once_the_entry_expires(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    async with running_gateway(db, tenants, providers, GATEWAY_CONFIG_CACHE_SECONDS="0.3") as gw:
        token = gw.token(gw.tenants.acme.member)
        assert (await gw.execute(token, prompt="hi")).status_code == 200
        gw.db.run("delete from organization_members where user_id = %s", (gw.tenants.acme.member,))
        await asyncio.sleep(0.4)
        assert (await gw.execute(token, prompt="hi")).status_code == 403


class CountingData:
    """The one DataAccess method the cache calls, counting calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def effective_config_with_key(
        self, caller: Caller, organization_id: uuid.UUID, processor_id: uuid.UUID | None, run_id: uuid.UUID | None
    ) -> tuple[EffectiveConfig, str | None]:
        self.calls += 1
        config = EffectiveConfig("openai", "gpt-4o-mini", "GPT-4o mini", {}, {}, None, "global", "system")
        return config, None


async def test_the_cache_keeps_at_most_its_number_of_entries_least_recently_used_out() -> None:
    cache, data = ConfigCache(60, max_entries=2), CountingData()
    org = uuid.uuid4()
    callers = [Caller(role="authenticated", claims={}, token=f"token-{n}") for n in range(3)]

    async def resolve(n: int) -> None:
        await cache.effective_config_with_key(data, callers[n], org, None, None)  # type: ignore[arg-type]

    for n in (0, 1, 0, 2):  # 2 pushes out 1, the least recently used
        await resolve(n)
    assert data.calls == 3
    await resolve(0)
    assert data.calls == 3
    await resolve(1)
    assert data.calls == 4
