"""The circuit breaker's states, on its own, and through the gateway: skipped calls send nothing
and write no row; /ready shows each provider's breaker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gateway.breaker import Breakers
from tests.fakes.providers import Failure, FakeProviders
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import Gateway, running_gateway

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

TARGET = "https://api.example.test/v1"


def test_consecutive_retryable_failures_open_the_breaker_and_a_trial_closes_it() -> None:
    breakers = Breakers(failures=3, window=30, cooldown=0.2)
    for _ in range(2):
        breakers.record(TARGET, failed=True)
    assert breakers.state(TARGET) == "closed" and breakers.allow(TARGET)
    breakers.record(TARGET, failed=True)
    assert breakers.state(TARGET) == "open" and not breakers.allow(TARGET)
    time.sleep(0.25)
    assert breakers.state(TARGET) == "half_open"
    assert breakers.allow(TARGET)  # the one trial
    assert not breakers.allow(TARGET)  # others wait for its outcome
    breakers.record(TARGET, failed=False)
    assert breakers.state(TARGET) == "closed" and breakers.allow(TARGET)


def test_a_failed_trial_opens_the_breaker_again() -> None:
    breakers = Breakers(failures=1, window=30, cooldown=0.2)
    breakers.record(TARGET, failed=True)
    time.sleep(0.25)
    assert breakers.allow(TARGET)
    breakers.record(TARGET, failed=True)
    assert breakers.state(TARGET) == "open" and not breakers.allow(TARGET)


def test_a_success_or_an_old_failure_breaks_the_run_of_failures() -> None:
    breakers = Breakers(failures=2, window=0.2, cooldown=30)
    breakers.record(TARGET, failed=True)
    breakers.record(TARGET, failed=False)
    breakers.record(TARGET, failed=True)
    assert breakers.state(TARGET) == "closed"
    time.sleep(0.25)
    breakers.record(TARGET, failed=True)
    assert breakers.state(TARGET) == "closed"  # the earlier failure left the window


def test_a_trial_that_never_reports_lets_another_through_after_a_cooldown() -> None:
    breakers = Breakers(failures=1, window=30, cooldown=0.2)
    breakers.record(TARGET, failed=True)
    time.sleep(0.25)
    assert breakers.allow(TARGET) and not breakers.allow(TARGET)
    time.sleep(0.25)
    assert breakers.allow(TARGET)


@pytest.fixture
async def fragile(db: Database, tenants: Tenants, providers: FakeProviders) -> AsyncIterator[Gateway]:
    env = {"PROVIDER_BREAKER_FAILURES": "2", "PROVIDER_BREAKER_COOLDOWN_SECONDS": "0.5"}
    async with running_gateway(db, tenants, providers, **env) as gw:
        yield gw


async def test_an_open_breaker_skips_the_provider_without_a_request_or_a_row(fragile: Gateway) -> None:
    gw = fragile
    openai = gw.providers.base_url("openai")
    token = gw.token(gw.tenants.acme.member)
    gw.providers.script("openai", Failure(503, "down"), Failure(503, "down"))
    assert [(await gw.execute(token, prompt="hi")).status_code for _ in range(2)] == [502, 502]
    assert (await gw.client.get("/ready")).json()["breakers"] == {openai: "open"}

    skipped = await gw.execute(token, prompt="hi")
    assert skipped.status_code == 503
    error = skipped.json()["error"]
    assert error["code"] == "provider_unavailable"
    assert [a["outcome"] for a in error["attempts"]] == ["skipped"]
    assert len(gw.providers.requests) == 2 and len(gw.usage_rows()) == 2

    await asyncio.sleep(0.6)
    assert (await gw.client.get("/ready")).json()["breakers"] == {openai: "half_open"}
    assert (await gw.execute(token, prompt="hi")).status_code == 200  # the trial
    assert (await gw.client.get("/ready")).json()["breakers"] == {openai: "closed"}
    assert len(gw.providers.requests) == 3 and len(gw.usage_rows()) == 3
