"""Fallbacks on execute-llm: when the configured target fails (down after its retries, key
rejected, breaker open), the next target of the resolved `fallbacks` serves the call; a request
the provider refused as such is never sent elsewhere. Every attempt that reached a provider has
its own usage row; the answer names the target that served and lists the attempts."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes.providers import Failure, FakeProviders, rate_limited, slow
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import MODELS, Gateway, bearer, running_gateway

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

# openai first, then the "second" profile (anthropic), then google's catalog model.
CHAIN = {
    "default_profile": "main",
    "profiles": {
        "main": {
            "provider": "openai",
            "model": MODELS["openai"],
            "fallbacks": ["second", {"provider": "google", "model": MODELS["google"]}],
        },
        "second": {"provider": "anthropic", "model": MODELS["anthropic"], "settings": {"max_tokens": 300}},
    },
}


@pytest.fixture
async def chained(db: Database, tenants: Tenants, providers: FakeProviders) -> AsyncIterator[Gateway]:
    """Acme configured with CHAIN, and the product's default of one retry."""
    db.run("update organizations set llm_configuration = %s where id = %s", (json.dumps(CHAIN), tenants.acme.id))
    async with running_gateway(db, tenants, providers, PROVIDER_MAX_RETRIES="1") as gw:
        yield gw


async def call(gw: Gateway, **body: object) -> tuple[int, dict[str, Any]]:
    response = await gw.client.post(
        "/functions/v1/execute-llm",
        json={"prompt": "hi", **body},
        headers=bearer(gw.token(gw.tenants.acme.member)),
    )
    return response.status_code, response.json()


def outcomes(attempts: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(a["provider"], a["outcome"], a["error_code"]) for a in attempts]


async def test_a_chain_whose_first_two_keys_are_rejected_is_served_by_the_third(chained: Gateway) -> None:
    gw = chained
    gw.providers.script("openai", Failure(401, "Incorrect API key provided"))
    gw.providers.script(
        "anthropic", Failure(403, "Your API key does not have permission", error_type="permission_error")
    )
    status, body = await call(gw)
    assert status == 200, body
    assert (body["provider"], body["model"], body["config"]["profile"]) == ("google", MODELS["google"], None)
    assert body["config"]["source"] == "organization"
    assert outcomes(body["attempts"]) == [
        ("openai", "error", "provider_error"),
        ("anthropic", "error", "provider_error"),
        ("google", "ok", None),
    ]
    # A rejected key is not retried: one request each.
    assert [len(gw.providers.requests_for(p)) for p in ("openai", "anthropic", "google")] == [1, 1, 1]
    rows = gw.usage_rows()
    assert [(r["provider"], r["attempt"]) for r in rows] == [("openai", 1), ("anthropic", 2), ("google", 3)]
    assert len({r["request_id"] for r in rows}) == 1
    assert rows[0]["error_message"] and rows[1]["error_message"] and rows[2]["error_message"] is None


async def test_a_target_down_after_its_retries_hands_over_to_the_next_with_that_profiles_settings(
    chained: Gateway,
) -> None:
    gw = chained
    gw.providers.script("openai", Failure(503, "down"), Failure(500, "still down"))
    status, body = await call(gw)
    assert status == 200, body
    assert (body["provider"], body["config"]["profile"]) == ("anthropic", "second")
    assert outcomes(body["attempts"]) == [
        ("openai", "error", "provider_error"),
        ("openai", "error", "provider_error"),
        ("anthropic", "ok", None),
    ]
    [anthropic_request] = gw.providers.requests_for("anthropic")
    assert anthropic_request.json["max_tokens"] == 300
    assert [r["attempt"] for r in gw.usage_rows()] == [1, 2, 3]


@pytest.mark.parametrize("status", [400, 422])
async def test_a_request_the_provider_refuses_as_such_is_not_sent_to_a_fallback(chained: Gateway, status: int) -> None:
    gw = chained
    gw.providers.script("openai", Failure(status, "Invalid request"))
    answer, body = await call(gw)
    assert answer == 502 and body["error"]["code"] == "provider_error"
    assert outcomes(body["error"]["attempts"]) == [("openai", "error", "provider_error")]
    assert gw.providers.requests_for("anthropic") == [] and gw.providers.requests_for("google") == []
    assert len(gw.usage_rows()) == 1


async def test_when_every_target_fails_the_answer_is_the_last_attempts(chained: Gateway) -> None:
    gw = chained
    gw.providers.script("openai", Failure(401, "bad key"))
    gw.providers.script("anthropic", Failure(401, "bad key", error_type="authentication_error"))
    gw.providers.script("google", rate_limited(retry_after="30"))
    answer, body = await call(gw, timeout_seconds=5)
    assert answer == 429 and body["error"]["code"] == "provider_rate_limited"
    assert outcomes(body["error"]["attempts"]) == [
        ("openai", "error", "provider_error"),
        ("anthropic", "error", "provider_error"),
        ("google", "error", "provider_rate_limited"),
    ]
    assert len(gw.usage_rows()) == 3


async def test_a_fallback_uses_its_own_providers_organization_key(chained: Gateway) -> None:
    gw = chained
    org_key = "sk-ant-acme-own-key-0123456789abcdef"
    admin = bearer(gw.token(gw.tenants.acme.admin))
    response = await gw.client.post(
        "/functions/v1/manage-llm-keys",
        json={"action": "set", "provider": "anthropic", "api_key": org_key},
        headers=admin,
    )
    assert response.status_code < 300, response.text
    gw.providers.script("openai", Failure(401, "bad key"))
    status, body = await call(gw)
    assert status == 200 and body["provider"] == "anthropic"
    assert body["config"]["api_key_source"] == "organization"
    [request] = gw.providers.requests_for("anthropic")
    assert request.headers["x-api-key"] == org_key


async def test_a_processors_fallbacks_replace_its_profiles(chained: Gateway) -> None:
    gw = chained
    [processor] = gw.db.run(
        "insert into processors (organization_id, name, configuration) values (%s, 'own chain', %s) returning id",
        (
            gw.tenants.acme.id,
            json.dumps({"llm_profile": "main", "fallbacks": [{"provider": "mistral", "model": MODELS["mistral"]}]}),
        ),
    )
    gw.providers.script("openai", Failure(401, "bad key"))
    status, body = await call(gw, processor_id=str(processor["id"]))
    assert status == 200 and body["provider"] == "mistral"
    assert gw.providers.requests_for("anthropic") == []


async def test_an_open_breaker_skips_its_target_without_a_request_or_a_row(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    db.run("update organizations set llm_configuration = %s where id = %s", (json.dumps(CHAIN), tenants.acme.id))
    async with running_gateway(db, tenants, providers, PROVIDER_BREAKER_FAILURES="1") as gw:
        gw.providers.script("openai", Failure(503, "down"))
        status, body = await call(gw)
        assert status == 200 and body["provider"] == "anthropic"
        status, body = await call(gw)
        assert status == 200 and body["provider"] == "anthropic"
        assert outcomes(body["attempts"]) == [
            ("openai", "skipped", "provider_unavailable"),
            ("anthropic", "ok", None),
        ]
        assert len(gw.providers.requests_for("openai")) == 1
        # The skipped target has no row; the served attempt keeps its place in the list.
        rows: dict[uuid.UUID, list[tuple[str, int]]] = {}
        for row in gw.usage_rows():
            rows.setdefault(row["request_id"], []).append((row["provider"], row["attempt"]))
        assert sorted(rows.values()) == [[("anthropic", 2)], [("openai", 1), ("anthropic", 2)]]


async def test_no_fallback_starts_past_the_deadline(chained: Gateway) -> None:
    gw = chained
    gw.providers.script("openai", slow(3))
    answer, body = await call(gw, timeout_seconds=0.5)
    assert answer == 504 and body["error"]["code"] == "provider_timeout"
    assert outcomes(body["error"]["attempts"]) == [("openai", "error", "provider_timeout")]
    assert gw.providers.requests_for("anthropic") == [] and len(gw.usage_rows()) == 1
