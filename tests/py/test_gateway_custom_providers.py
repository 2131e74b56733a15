"""An organization's own OpenAI-compatible endpoint through execute-llm: served, keyed and billed
at the custom model's prices like any provider; refused by the SSRF guard (422
provider_blocked, nothing sent, no row) whenever the gateway's own allowed networks do not cover
its address, whatever the database accepted; redirects and oversized answers are not followed.
Every connection stays on 127.0.0.1: the fake OpenAI endpoint is allowed through
GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS=127.0.0.1/32."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.providers import Failure, FakeProviders, Raw, Success
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import ADAPTERS, MODELS, Gateway, bearer, running_gateway

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

LOOPBACK = "127.0.0.1/32"
MODEL = "llama-3.3-70b-instruct"


def use_custom_provider(db: Database, tenants: Tenants, providers: FakeProviders) -> None:
    """Acme's default profile on custom:local, the fake OpenAI endpoint, priced; the fake's
    OpenAI route stands in for a self-hosted vLLM. The database allows loopback like the gateway."""
    db.run("insert into private.custom_provider_allowed_networks (network) values (%s)", (LOOPBACK,))
    models = [
        {"model_name": MODEL, "cost_per_million_input_tokens": 2, "cost_per_million_output_tokens": 6,
         "settings": {"temperature": 0.2}},
        {"model_name": "unpriced-model"},
    ]  # fmt: skip
    db.run(
        "insert into llm_custom_providers (organization_id, name, base_url, models) values (%s, 'local', %s, %s)",
        (tenants.acme.id, providers.base_url("openai"), json.dumps(models)),
    )
    config = {
        "default_profile": "own",
        "profiles": {
            "own": {"provider": "custom:local", "model": MODEL, "fallbacks": ["catalog"]},
            "catalog": {"provider": "anthropic", "model": MODELS["anthropic"]},
        },
    }
    db.run("update organizations set llm_configuration = %s where id = %s", (json.dumps(config), tenants.acme.id))


@pytest.fixture(params=ADAPTERS)
async def allowed(
    request: pytest.FixtureRequest, db: Database, tenants: Tenants, providers: FakeProviders
) -> AsyncIterator[Gateway]:
    use_custom_provider(db, tenants, providers)
    async with running_gateway(
        db, tenants, providers, request.param, GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS=LOOPBACK
    ) as gw:
        yield gw


async def call(gw: Gateway, **body: Any) -> tuple[int, dict[str, Any]]:
    response = await gw.client.post(
        "/functions/v1/execute-llm", json={"prompt": "hi", **body}, headers=bearer(gw.token(gw.tenants.acme.member))
    )
    return response.status_code, response.json()


async def test_a_custom_provider_serves_and_is_billed_at_its_models_prices(allowed: Gateway) -> None:
    gw = allowed
    gw.providers.script("openai", Success(usage={"prompt_tokens": 1000, "completion_tokens": 500}))
    status, body = await call(gw)
    assert status == 200, body
    assert (body["provider"], body["model"], body["config"]["profile"]) == ("custom:local", MODEL, "own")
    [request] = gw.providers.requests_for("openai")
    assert request.json["model"] == MODEL and request.json["temperature"] == 0.2
    # No key stored and no system key for custom providers: none is sent.
    assert "authorization" not in request.headers
    [row] = gw.usage_rows()
    assert (row["provider"], row["model_name"]) == ("custom:local", MODEL)
    assert row["estimated_cost"] == Decimal(1000 * 2 + 500 * 6) / 1_000_000
    assert body["estimated_cost"] == pytest.approx(0.005)


async def test_the_organizations_key_for_the_custom_provider_is_sent(allowed: Gateway) -> None:
    gw = allowed
    key = "sk-local-vllm-0123456789abcdef"
    stored = await gw.client.post(
        "/functions/v1/manage-llm-keys",
        json={"action": "set", "provider": "custom:local", "api_key": key},
        headers=bearer(gw.token(gw.tenants.acme.admin)),
    )
    assert stored.status_code == 200, stored.text
    status, body = await call(gw)
    assert status == 200 and body["config"]["api_key_source"] == "organization"
    [request] = gw.providers.requests_for("openai")
    assert request.headers["authorization"] == f"Bearer {key}"


async def test_an_unpriced_custom_model_is_billed_with_a_null_cost(allowed: Gateway) -> None:
    gw = allowed
    gw.db.run(
        "update organizations set llm_configuration = jsonb_set(llm_configuration, '{profiles,own,model}', %s)"
        " where id = %s",
        (json.dumps("unpriced-model"), gw.tenants.acme.id),
    )
    status, body = await call(gw)
    assert status == 200 and body["estimated_cost"] is None
    [row] = gw.usage_rows()
    assert row["estimated_cost"] is None and row["input_tokens"] == 12


async def test_a_custom_provider_failing_falls_back_to_the_catalog(allowed: Gateway) -> None:
    gw = allowed
    gw.providers.script("openai", Failure(503, "vLLM is restarting"))
    status, body = await call(gw)
    assert status == 200 and body["provider"] == "anthropic"
    assert [r["provider"] for r in gw.usage_rows()] == ["custom:local", "anthropic"]


async def test_a_redirect_is_not_followed(allowed: Gateway) -> None:
    gw = allowed
    gw.providers.script("openai", Raw(307, b"", {"location": "http://169.254.169.254/latest/meta-data/"}))
    gw.db.run(
        "update organizations set llm_configuration = llm_configuration #- '{profiles,own,fallbacks}' where id = %s",
        (gw.tenants.acme.id,),
    )
    status, body = await call(gw)
    assert status == 502 and body["error"]["code"] == "provider_error"
    assert "redirect" in body["error"]["message"]
    assert len(gw.providers.requests) == 1
    # The endpoint was called and answered: that call has its row.
    assert [r["provider"] for r in gw.usage_rows()] == ["custom:local"]


async def test_an_answer_over_10_mb_is_refused(allowed: Gateway) -> None:
    gw = allowed
    gw.db.run(
        "update organizations set llm_configuration = llm_configuration #- '{profiles,own,fallbacks}' where id = %s",
        (gw.tenants.acme.id,),
    )
    gw.providers.script("openai", Raw(200, b"{" + b" " * (10 * 1024 * 1024) + b"}"))
    status, answer = await call(gw)
    assert status == 502 and "size limit" in answer["error"]["message"]
    assert len(gw.usage_rows()) == 1


async def test_without_the_gateways_allowance_the_call_is_blocked_before_anything_is_sent(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    # The database accepted the loopback URL; the gateway, not told to allow it, refuses on every call.
    use_custom_provider(db, tenants, providers)
    db.run(
        "update organizations set llm_configuration = llm_configuration #- '{profiles,own,fallbacks}' where id = %s",
        (tenants.acme.id,),
    )
    async with running_gateway(db, tenants, providers) as gw:
        status, body = await call(gw)
    assert status == 422 and body["error"]["code"] == "provider_blocked"
    assert "127.0.0.1" not in body["error"]["message"]
    assert gw.providers.requests == [] and gw.usage_rows() == []


async def test_a_blocked_custom_provider_is_skipped_for_the_next_fallback(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    use_custom_provider(db, tenants, providers)
    async with running_gateway(db, tenants, providers) as gw:
        status, body = await call(gw)
    assert status == 200 and body["provider"] == "anthropic"
    assert [(a["provider"], a["outcome"], a["error_code"]) for a in body["attempts"]] == [
        ("custom:local", "skipped", "provider_blocked"),
        ("anthropic", "ok", None),
    ]
    assert [r["provider"] for r in gw.usage_rows()] == ["anthropic"]
    assert providers.requests_for("openai") == []
