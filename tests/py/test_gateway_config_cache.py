"""The configuration cache: on by default, and never stale.

The database announces every change that can alter a cached answer; each worker's listener drops
what changed. Changes made without an announcement (triggers switched off by a superuser, the
one way to change data silently) show that answers really are served from the cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from devstack.postgres import free_port
from gateway.config_cache import ConfigCache
from gateway.data import Caller, EffectiveConfig, ResolvedCall
from tests.fakes.providers import FakeProviders
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import Gateway, bearer, command, gateway_env, running_gateway, sign, wait_for

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

ORG_KEY = "sk-org-openai-key-for-cache-tests-WXYZ"
ROTATED_KEY = "sk-org-openai-key-rotated-cache-ABCD"
# The bound for a change to reach every worker.
PROPAGATION_SECONDS = 1.0


def switch_to_anthropic(gw: Gateway, processor: uuid.UUID) -> None:
    gw.processor_for("anthropic")  # adds the anthropic-test profile to the organization
    gw.db.run(
        "update processors set configuration = %s where id = %s",
        (json.dumps({"llm_profile": "anthropic-test"}), processor),
    )


def change_silently(db: Database, query: str, params: Any = None) -> None:
    """Change data without any trigger firing, so nothing is announced."""
    with db.connect(db.superuser) as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute(query, params)


async def provider_of_next_call(gw: Gateway, token: str, processor: uuid.UUID) -> str:
    response = await gw.execute(token, prompt="hi", processor_id=str(processor))
    assert response.status_code == 200, response.text
    return str(response.json()["provider"])


async def cache_state(gw: Gateway, state: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while (current := (await gw.client.get("/ready")).json().get("config_cache")) != state:
        assert time.monotonic() < deadline, f"config_cache stayed {current!r}, expected {state!r}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def listening(gateway: Gateway) -> Gateway:
    """The gateway with default settings, once its listener is connected."""
    await cache_state(gateway, "listening")
    return gateway


async def test_by_default_a_repeated_call_is_served_from_the_cache(listening: Gateway) -> None:
    gw = listening
    gw.processor_for("anthropic")  # the profile to switch to (an announced change, made first)
    processor, token = gw.processor_for("openai"), gw.token(gw.tenants.acme.member)
    assert await provider_of_next_call(gw, token, processor) == "openai"
    set_profile_silently(gw.db, processor, "anthropic-test")
    assert await provider_of_next_call(gw, token, processor) == "openai"  # cached: nothing was announced
    other_token = gw.token(gw.tenants.acme.member, iat=1)  # another token is another entry
    assert await provider_of_next_call(gw, other_token, processor) == "anthropic"
    assert len(gw.usage_rows()) == 3  # every call billed, cached configuration or not


async def test_an_announced_change_is_seen_by_the_next_call(listening: Gateway) -> None:
    gw = listening
    processor, token = gw.processor_for("openai"), gw.token(gw.tenants.acme.member)
    assert await provider_of_next_call(gw, token, processor) == "openai"
    switch_to_anthropic(gw, processor)
    # The notification travels to the worker's listener; within a second, as across processes.
    deadline = time.monotonic() + PROPAGATION_SECONDS
    while (provider := await provider_of_next_call(gw, token, processor)) != "anthropic":
        assert time.monotonic() < deadline, f"still {provider} after {PROPAGATION_SECONDS} s"
        await asyncio.sleep(0.02)


async def test_refusals_are_never_cached(listening: Gateway) -> None:
    gw = listening
    outsider = gw.tenants.acme.member
    change_silently(gw.db, "delete from organization_members where user_id = %s", (outsider,))
    token = gw.token(outsider)
    assert (await gw.execute(token, prompt="hi")).status_code == 403
    change_silently(
        gw.db,
        "insert into organization_members (organization_id, user_id, role) values (%s, %s, 'member')",
        (gw.tenants.acme.id, outsider),
    )
    assert (await gw.execute(token, prompt="hi")).status_code == 200


async def test_a_key_change_through_the_gateway_applies_to_the_next_call(listening: Gateway) -> None:
    gw = listening
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


async def test_an_entry_expires_after_the_ttl_even_without_an_announcement(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    async with running_gateway(db, tenants, providers, GATEWAY_CONFIG_CACHE_SECONDS="0.3") as gw:
        await cache_state(gw, "listening")
        token = gw.token(gw.tenants.acme.member)
        assert (await gw.execute(token, prompt="hi")).status_code == 200
        change_silently(gw.db, "delete from organization_members where user_id = %s", (gw.tenants.acme.member,))
        assert (await gw.execute(token, prompt="hi")).status_code == 200  # cached
        await asyncio.sleep(0.4)
        assert (await gw.execute(token, prompt="hi")).status_code == 403


async def test_the_postgrest_adapter_caches_only_with_an_explicit_ttl(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    async with running_gateway(db, tenants, providers, "postgrest") as gw:
        assert (await gw.client.get("/ready")).json()["config_cache"] == "off"
    async with running_gateway(db, tenants, providers, "postgrest", GATEWAY_CONFIG_CACHE_SECONDS="30") as gw:
        assert (await gw.client.get("/ready")).json()["config_cache"] == "ttl"


async def test_the_gateways_connections_are_named_for_operators(listening: Gateway) -> None:
    await listening.execute(listening.token(listening.tenants.acme.member), prompt="hi")
    names = listening.db.run(
        "select distinct application_name from pg_stat_activity where datname = current_database()"
        " and application_name like 'llm-gateway%%' order by 1"
    )
    assert [row["application_name"] for row in names] == ["llm-gateway", "llm-gateway-listen"]


# The listener down -----------------------------------------------------------------------------


@pytest.fixture
def listen_role(db: Database) -> Iterator[str]:
    """A login role for the listener alone, so a test can keep it from reconnecting."""
    role = f"listen_{uuid.uuid4().hex[:8]}"
    with db.connect(db.superuser) as conn:
        conn.execute(f"create role {role} login")
    yield role
    with db.connect(db.superuser) as conn:
        conn.execute(f"select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}'")
        conn.execute(f"drop role {role}")


def cut_listener(db: Database, role: str, *, allow_reconnect: bool) -> None:
    with db.connect(db.superuser) as conn:
        conn.execute(f"alter role {role} {'login' if allow_reconnect else 'nologin'}")
        if not allow_reconnect:
            conn.execute(f"select pg_terminate_backend(pid) from pg_stat_activity where usename = '{role}'")


@pytest.fixture
async def own_listener(
    db: Database, tenants: Tenants, providers: FakeProviders, listen_role: str
) -> AsyncIterator[Gateway]:
    """The gateway listening for changes through a connection of its own (`listen_role`)."""
    listen_url = f"postgresql://{listen_role}@{db.host}:{db.port}/{db.name}"
    async with running_gateway(db, tenants, providers, DATABASE_LISTEN_URL=listen_url) as gw:
        await cache_state(gw, "listening")
        gw.processor_for("anthropic")  # the profile to switch to
        yield gw


def set_profile_silently(db: Database, processor: uuid.UUID, profile: str) -> None:
    change_silently(
        db, "update processors set configuration = %s where id = %s", (json.dumps({"llm_profile": profile}), processor)
    )


async def test_while_the_listener_is_down_every_call_reads_the_database(
    own_listener: Gateway, listen_role: str
) -> None:
    gw = own_listener
    processor, token = gw.processor_for("openai"), gw.token(gw.tenants.acme.member)
    assert await provider_of_next_call(gw, token, processor) == "openai"

    cut_listener(gw.db, listen_role, allow_reconnect=False)
    await cache_state(gw, "bypassed")
    set_profile_silently(gw.db, processor, "anthropic-test")
    assert await provider_of_next_call(gw, token, processor) == "anthropic"  # not the cached openai
    set_profile_silently(gw.db, processor, "openai-test")
    assert await provider_of_next_call(gw, token, processor) == "openai"  # nothing is cached meanwhile

    cut_listener(gw.db, listen_role, allow_reconnect=True)
    await cache_state(gw, "listening")
    assert await provider_of_next_call(gw, token, processor) == "openai"
    set_profile_silently(gw.db, processor, "anthropic-test")
    assert await provider_of_next_call(gw, token, processor) == "openai"  # cached again once listening


async def test_changes_announced_while_the_listener_was_down_are_not_served_stale(
    own_listener: Gateway, listen_role: str
) -> None:
    gw = own_listener
    processor, token = gw.processor_for("openai"), gw.token(gw.tenants.acme.member)
    assert await provider_of_next_call(gw, token, processor) == "openai"
    cut_listener(gw.db, listen_role, allow_reconnect=False)
    await cache_state(gw, "bypassed")
    switch_to_anthropic(gw, processor)  # announced, but nobody is listening
    cut_listener(gw.db, listen_role, allow_reconnect=True)
    await cache_state(gw, "listening")
    assert await provider_of_next_call(gw, token, processor) == "anthropic"


# Two gateway processes on one database -------------------------------------------------------------


def within_a_second(call: Callable[[], Any], expected: Any) -> bool:
    """Whether `call()` returns `expected` within PROPAGATION_SECONDS (polled)."""
    deadline = time.monotonic() + PROPAGATION_SECONDS
    while (result := call()) != expected:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return result == expected


@pytest.fixture
def two_gateways(db: Database, providers: FakeProviders) -> Iterator[list[str]]:
    """Two `python -m gateway` processes with default settings, both listening."""
    with ExitStack() as stack:
        bases = []
        for _ in range(2):
            port = free_port()
            env = {"PATH": os.environ.get("PATH", ""), **gateway_env(db, providers, GATEWAY_PORT=str(port))}
            stack.enter_context(command(["-m", "gateway"], env))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait_for(f"{base}/health")
            deadline = time.monotonic() + 10
            while httpx.get(f"{base}/ready").json()["config_cache"] != "listening":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        yield bases


def call(base: str, token: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{base}/functions/v1/execute-llm", json={"prompt": "hi", **body}, headers=bearer(token))


def test_two_gateway_processes_see_every_change_within_a_second(
    db: Database, tenants: Tenants, providers: FakeProviders, two_gateways: list[str]
) -> None:
    acme = tenants.acme
    member, admin = (sign({**tenants.claims(user), "role": "authenticated"}) for user in (acme.member, acme.admin))
    gw = Gateway(None, db, tenants, providers, None)  # type: ignore[arg-type]  # its database helpers only
    gw.processor_for("anthropic")  # the profile to switch to
    processor = gw.processor_for("openai")
    by_category = uuid.UUID(str(db.run(
        "insert into processors (organization_id, name, configuration) values (%s, 'by category', %s) returning id",
        (acme.id, json.dumps({"llm_profile": "powerful"})),
    )[0]["id"]))  # fmt: skip

    def provider_in(base: str) -> str:
        response = call(base, member, processor_id=str(processor))
        assert response.status_code == 200, response.text
        return str(response.json()["provider"])

    def model_in(base: str) -> str:
        response = call(base, member, processor_id=str(by_category))
        assert response.status_code == 200, response.text
        return str(db.run("select model_name from llm_usage_logs order by created_at desc limit 1")[0]["model_name"])

    def key_in(base: str) -> str:
        assert call(base, member, processor_id=str(processor)).status_code == 200
        return providers.requests_for("openai")[-1].headers["authorization"]

    # Warm both caches, and show they are caches: a silent change is not seen.
    assert [provider_in(base) for base in two_gateways] == ["openai", "openai"]
    first_model = model_in(two_gateways[0])
    assert model_in(two_gateways[1]) == first_model
    set_profile_silently(db, processor, "anthropic-test")
    assert [provider_in(base) for base in two_gateways] == ["openai", "openai"]

    # A processor's profile changed.
    switch_to_anthropic(gw, processor)
    for base in two_gateways:
        assert within_a_second(lambda base=base: provider_in(base), "anthropic"), base
    db.run(
        "update processors set configuration = %s where id = %s",
        (json.dumps({"llm_profile": "openai-test"}), processor),
    )
    for base in two_gateways:
        assert within_a_second(lambda base=base: provider_in(base), "openai"), base

    # A key stored, then rotated through one process: both use the new key.
    key = {"action": "set", "provider": "openai", "api_key": ORG_KEY}
    stored = httpx.post(f"{two_gateways[0]}/functions/v1/manage-llm-keys", json=key, headers=bearer(admin))
    assert stored.status_code == 200
    for base in two_gateways:
        assert within_a_second(lambda base=base: key_in(base), f"Bearer {ORG_KEY}"), base
    db.call("service_role", None, "select public.store_org_api_key(%s, 'openai', %s)", (acme.id, ROTATED_KEY))
    for base in two_gateways:
        assert within_a_second(lambda base=base: key_in(base), f"Bearer {ROTATED_KEY}"), base

    # A catalog model deactivated.
    db.run("update llm_global_settings set is_active = false where model_name = %s", (first_model,))
    for base in two_gateways:
        assert within_a_second(lambda base=base: model_in(base) != first_model, True), base

    # A member removed.
    db.run("delete from organization_members where user_id = %s", (acme.member,))
    for base in two_gateways:
        assert within_a_second(lambda base=base: call(base, member).status_code, 403), base


class CountingData:
    """The one DataAccess method the cache calls, counting calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def resolve_call(
        self,
        caller: Caller,
        organization_id: uuid.UUID,
        processor_id: uuid.UUID | None,
        run_id: uuid.UUID | None,
        model: str | None = None,
    ) -> ResolvedCall:
        self.calls += 1
        config = EffectiveConfig(
            provider="openai",
            model="gpt-4o-mini",
            display_name="GPT-4o mini",
            settings={},
            capabilities={},
            profile=None,
            api_key_source="system",
            source="global",
        )
        return ResolvedCall(config, {}, False)


async def test_the_cache_keeps_at_most_its_number_of_entries_least_recently_used_out() -> None:
    cache, data = ConfigCache(60, invalidated=False, max_entries=2), CountingData()
    org = uuid.uuid4()
    callers = [Caller(role="authenticated", claims={}, token=f"token-{n}") for n in range(3)]

    async def resolve(n: int) -> None:
        await cache.resolve_call(data, callers[n], org, None, None)  # type: ignore[arg-type]

    for n in (0, 1, 0, 2):  # 2 pushes out 1, the least recently used
        await resolve(n)
    assert data.calls == 3
    await resolve(0)
    assert data.calls == 3
    await resolve(1)
    assert data.calls == 4
