"""GET /metrics: the llm_gateway_* metrics move as calls, retries, fallbacks, breakers, the usage
writer and the configuration cache do; no label carries a key, a prompt or a token; and with
several workers every scrape adds up all of them."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from devstack.postgres import free_port
from tests.fakes.providers import Failure, FakeProviders
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import (
    MODELS,
    SYSTEM_KEYS,
    Gateway,
    bearer,
    command,
    gateway_env,
    running_gateway,
    sign,
    wait_for,
)

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

EXECUTE = "/functions/v1/execute-llm"
CHAIN = {
    "default_profile": "main",
    "profiles": {
        "main": {"provider": "openai", "model": MODELS["openai"], "fallbacks": ["second"]},
        "second": {"provider": "anthropic", "model": MODELS["anthropic"]},
    },
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def chained(db: Database, tenants: Tenants, providers: FakeProviders) -> AsyncIterator[Gateway]:
    db.run("update organizations set llm_configuration = %s where id = %s", (json.dumps(CHAIN), tenants.acme.id))
    async with running_gateway(
        db, tenants, providers, PROVIDER_MAX_RETRIES="1", PROVIDER_BREAKER_FAILURES="2",
        PROVIDER_BREAKER_COOLDOWN_SECONDS="1",
    ) as gw:  # fmt: skip
        for _ in range(100):  # the cache serves once its listener is connected
            if (await gw.client.get("/ready")).json()["config_cache"] == "listening":
                break
            await asyncio.sleep(0.05)
        yield gw


async def scrape(gw: Gateway) -> tuple[Samples, str]:
    response = await gw.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    return parse(response.text), response.text


async def test_a_retry_then_a_fallback_moves_every_counter_once(chained: Gateway) -> None:
    gw = chained
    gw.providers.script("openai", Failure(503, "down"), Failure(503, "still down"))
    prompt = "a prompt nobody may see in the metrics"
    token = gw.token(gw.tenants.acme.member)
    response = await gw.client.post(EXECUTE, json={"prompt": prompt}, headers=bearer(token))
    assert response.status_code == 200 and response.json()["provider"] == "anthropic"

    samples, text = await scrape(gw)
    openai, anthropic = MODELS["openai"], MODELS["anthropic"]
    assert value(samples, "llm_gateway_requests_total", endpoint=EXECUTE, status="200") == 1
    assert value(samples, "llm_gateway_provider_calls_total", provider="openai", model=openai, outcome="error") == 2
    assert value(samples, "llm_gateway_provider_calls_total", provider="anthropic", model=anthropic, outcome="ok") == 1
    assert value(samples, "llm_gateway_retries_total", provider="openai") == 1
    assert value(samples, "llm_gateway_fallbacks_total", provider="openai") == 1
    assert value(samples, "llm_gateway_provider_latency_seconds_count", provider="openai") == 2
    assert value(samples, "llm_gateway_overhead_seconds_count") == 1
    # Three usage rows, however they were batched.
    assert value(samples, "llm_gateway_usage_batch_size_sum") == 3
    assert value(samples, "llm_gateway_usage_commit_seconds_count") == value(
        samples, "llm_gateway_usage_batch_size_count"
    )
    assert value(samples, "llm_gateway_config_cache_total", result="miss") == 1
    # Two consecutive failures opened openai's breaker; anthropic's is closed.
    openai_url, anthropic_url = gw.settings.base_urls["openai"], gw.settings.base_urls["anthropic"]
    assert value(samples, "llm_gateway_breaker_state", target=openai_url) == 2
    assert value(samples, "llm_gateway_breaker_state", target=anthropic_url) == 0
    assert ("llm_gateway_db_pool_in_use", frozenset()) in samples

    assert prompt not in text and token not in text and token.rsplit(".", 1)[1] not in text
    assert all(key not in text for key in SYSTEM_KEYS.values())


async def test_the_breaker_gauge_goes_open_half_open_closed(chained: Gateway) -> None:
    gw = chained
    target = gw.settings.base_urls["openai"]
    gw.providers.script("openai", Failure(503, "down"), Failure(503, "down"))
    token = gw.token(gw.tenants.acme.member)
    assert (await gw.client.post(EXECUTE, json={"prompt": "hi"}, headers=bearer(token))).status_code == 200
    assert value((await scrape(gw))[0], "llm_gateway_breaker_state", target=target) == 2
    await asyncio.sleep(1.1)  # the cooldown
    assert value((await scrape(gw))[0], "llm_gateway_breaker_state", target=target) == 1
    response = await gw.client.post(EXECUTE, json={"prompt": "hi"}, headers=bearer(token))
    assert response.status_code == 200 and response.json()["provider"] == "openai"
    assert value((await scrape(gw))[0], "llm_gateway_breaker_state", target=target) == 0


async def test_cache_hits_and_invalidations_are_counted(chained: Gateway) -> None:
    gw = chained
    token = gw.token(gw.tenants.acme.member)
    for _ in range(3):
        assert (await gw.client.post(EXECUTE, json={"prompt": "hi"}, headers=bearer(token))).status_code == 200
    samples, _ = await scrape(gw)
    assert value(samples, "llm_gateway_config_cache_total", result="miss") == 1
    assert value(samples, "llm_gateway_config_cache_total", result="hit") == 2
    gw.db.run("update organizations set llm_configuration = %s where id = %s", (json.dumps(CHAIN), gw.tenants.acme.id))
    for _ in range(40):  # the change notification drops the organization's one entry
        samples, _ = await scrape(gw)
        if value(samples, "llm_gateway_config_cache_total", result="invalidated"):
            break
        await asyncio.sleep(0.05)
    assert value(samples, "llm_gateway_config_cache_total", result="invalidated") == 1


async def test_requests_are_counted_by_route_template_not_by_path(chained: Gateway) -> None:
    gw = chained
    for path in ("/no/such/path", "/another/made-up/path"):
        assert (await gw.client.get(path)).status_code == 404
    assert (await gw.client.get("/health")).status_code == 200
    samples, text = await scrape(gw)
    assert value(samples, "llm_gateway_requests_total", endpoint="unmatched", status="404") == 2
    assert value(samples, "llm_gateway_requests_total", endpoint="/health", status="200") == 1
    assert "made-up" not in text


def test_with_two_workers_every_scrape_counts_both(
    db: Database, tenants: Tenants, providers: FakeProviders, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        **gateway_env(db, providers, GATEWAY_PORT=str(port), GATEWAY_WORKERS="2"),
    }
    token = sign({**tenants.claims(tenants.acme.member), "role": "authenticated"})
    with command(["-m", "gateway"], env):
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/health")
        health_before = 0.0
        for _ in range(5):  # new connections, so the kernel spreads them over both workers
            health_before = value(parse(httpx.get(f"{base}/metrics").text), "llm_gateway_requests_total",
                                  endpoint="/health", status="200")  # fmt: skip
        calls = 20
        for _ in range(calls):
            response = httpx.post(f"{base}{EXECUTE}", json={"prompt": "hi"}, headers=bearer(token))
            assert response.status_code == 200, response.text
        scrapes = [parse(httpx.get(f"{base}/metrics").text) for _ in range(6)]
        writers = {path.name.rsplit("_", 1)[1] for path in tmp_path.glob("counter_*.db")}
    assert len(writers) == 2, "both workers answered requests"
    for samples in scrapes:
        assert value(samples, "llm_gateway_requests_total", endpoint=EXECUTE, status="200") == calls
        assert value(samples, "llm_gateway_provider_calls_total", provider="openai", model="gpt-4o",
                     outcome="ok") == calls  # fmt: skip
        assert value(samples, "llm_gateway_requests_total", endpoint="/health", status="200") == health_before
