"""POST /functions/v1/execute-llm end to end: real database, fake providers on loopback."""

from __future__ import annotations

import logging
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest

from devstack.postgres import free_port
from gateway.providers import PROVIDERS
from tests.fakes.providers import Failure, FakeProviders, Raw, Success, malformed, overloaded, rate_limited, slow
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import MODELS, SERVICE_ROLE_KEY, SYSTEM_KEYS, Gateway, bearer, running_gateway

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

ORG_KEY = "sk-org-acme-openai-0123456789-ORGK"
# The auth header each provider's documented API takes the key in.
KEY_HEADER = {
    "anthropic": ("x-api-key", "{}"),
    "openai": ("authorization", "Bearer {}"),
    "mistral": ("authorization", "Bearer {}"),
    "google": ("x-goog-api-key", "{}"),
    "meta": ("authorization", "Bearer {}"),
}


def expected_cost(gw: Gateway, provider: str, row: dict[str, Any]) -> Decimal | None:
    """The catalog price of a usage row, computed independently of the database trigger."""
    [price] = gw.db.run(
        "select * from llm_global_settings where provider = %s and model_name = %s", (provider, MODELS[provider])
    )
    if price["cost_per_million_input_tokens"] is None:
        return None
    cache_read = price["cost_per_million_cache_read_tokens"] or price["cost_per_million_input_tokens"]
    cache_write = price["cost_per_million_cache_write_tokens"] or price["cost_per_million_input_tokens"]
    plain = row["input_tokens"] - row["cache_read_tokens"] - row["cache_write_tokens"]
    total = (
        plain * price["cost_per_million_input_tokens"]
        + row["cache_read_tokens"] * cache_read
        + row["cache_write_tokens"] * cache_write
        + row["output_tokens"] * price["cost_per_million_output_tokens"]
    )
    return total / 1_000_000  # exact: the column keeps twelve decimals


# Success, per provider -----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_member_runs_a_processor_on_each_provider_and_the_call_is_billed(gateway: Gateway, provider: str) -> None:
    gw = gateway
    processor = gw.processor_for(provider)
    run = gw.run_of(processor)
    gw.providers.script(provider, Success(content=f"hello from {provider}"))

    response = await gw.execute(
        gw.token(gw.tenants.acme.member),
        processor_id=str(processor),
        prompt="Summarize this.",
        system="Be brief.",
        run_id=str(run),
        operation_id="op-1",
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["content"] == f"hello from {provider}"
    assert body["provider"] == provider
    assert body["model"] == MODELS[provider]
    assert body["usage"]["input_tokens"] == 12 and body["usage"]["output_tokens"] == 7
    assert body["config"] == {"source": "processor", "profile": f"{provider}-test", "api_key_source": "system"}

    [sent] = gw.providers.requests_for(provider)
    header, template = KEY_HEADER[provider]
    assert sent.headers[header] == template.format(SYSTEM_KEYS[provider])

    [row] = gw.usage_rows()
    assert row["organization_id"] == gw.tenants.acme.id
    assert row["user_id"] == gw.tenants.acme.member
    assert row["processor_id"] == processor and row["run_id"] == run and row["operation_id"] == "op-1"
    assert (row["provider"], row["model_name"]) == (provider, MODELS[provider])
    assert (row["input_tokens"], row["output_tokens"]) == (12, 7)
    assert row["error_message"] is None
    assert row["response_time_ms"] == body["response_time_ms"] >= 0
    assert row["estimated_cost"] == expected_cost(gw, provider, row)
    assert body["estimated_cost"] == (None if row["estimated_cost"] is None else float(row["estimated_cost"]))


async def test_meta_model_without_a_price_has_a_null_cost_not_zero(gateway: Gateway) -> None:
    processor = gateway.processor_for("meta")
    response = await gateway.execute(
        gateway.token(gateway.tenants.acme.member), processor_id=str(processor), prompt="hi"
    )
    assert response.status_code == 200
    assert response.json()["estimated_cost"] is None
    assert gateway.usage_rows()[0]["estimated_cost"] is None


async def test_anthropic_cache_tokens_are_counted_and_priced_separately(gateway: Gateway) -> None:
    gateway.providers.script(
        "anthropic",
        Success(usage={"input_tokens": 10, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200}),
    )
    response = await gateway.execute(
        gateway.token(gateway.tenants.acme.member), processor_id=str(gateway.tenants.acme.processor), prompt="hi"
    )
    assert response.status_code == 200
    assert response.json()["usage"] == {
        "input_tokens": 1210,
        "output_tokens": 7,
        "cache_read_tokens": 1000,
        "cache_write_tokens": 200,
        "reasoning_tokens": 0,
    }
    [row] = gateway.usage_rows()
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == (1210, 1000, 200)
    # claude-haiku-4-5: $1 input, $0.10 cache read, $1.25 cache write, $5 output per million.
    assert row["estimated_cost"] == Decimal("0.000395")


async def test_gemini_thinking_tokens_are_billed_as_output(gateway: Gateway) -> None:
    processor = gateway.processor_for("google")
    gateway.providers.script("google", Success(thinking="pondering", usage={"thoughtsTokenCount": 30}))
    response = await gateway.execute(
        gateway.token(gateway.tenants.acme.member), processor_id=str(processor), prompt="hi"
    )
    assert response.status_code == 200
    assert response.json()["usage"]["output_tokens"] == 37
    assert response.json()["usage"]["reasoning_tokens"] == 30
    assert gateway.usage_rows()[0]["output_tokens"] == 37


async def test_messages_and_settings_reach_the_provider_in_its_own_format(gateway: Gateway) -> None:
    gw = gateway
    processor = gw.processor_for("openai", settings={"temperature": 0.2, "max_tokens": 50, "stop": ["END"]})
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Go"},
    ]
    response = await gw.execute(
        gw.token(gw.tenants.acme.admin), processor_id=str(processor), messages=messages, system="Be brief."
    )
    assert response.status_code == 200
    [sent] = gw.providers.requests_for("openai")
    assert sent.json["messages"] == [{"role": "system", "content": "Be brief."}, *messages]
    assert (sent.json["temperature"], sent.json["max_completion_tokens"], sent.json["stop"]) == (0.2, 50, ["END"])


async def test_without_processor_the_organizations_default_profile_is_used(gateway: Gateway) -> None:
    response = await gateway.execute(gateway.token(gateway.tenants.acme.member), prompt="hi")
    assert response.status_code == 200
    body = response.json()
    assert (body["provider"], body["config"]["source"], body["config"]["profile"]) == (
        "openai",
        "organization",
        "balanced",
    )
    # The org profile's temperature (0.3) over the catalog's default for gpt-4o.
    assert gateway.providers.requests_for("openai")[0].json["temperature"] == 0.3


async def test_core_path_works_on_both_data_adapters(any_gateway: Gateway) -> None:
    gw = any_gateway
    processor = gw.tenants.acme.processor
    response = await gw.execute(gw.token(gw.tenants.acme.member), processor_id=str(processor), prompt="hi")
    assert response.status_code == 200, response.text
    [row] = gw.usage_rows()
    assert (row["provider"], row["user_id"], row["processor_id"]) == ("anthropic", gw.tenants.acme.member, processor)
    assert row["estimated_cost"] is not None
    if gw.postgrest is not None:
        # Resolution ran as the user (their token), the usage insert as the service role.
        authorizations = [r.headers["authorization"] for r in gw.postgrest.requests]
        assert f"Bearer {SERVICE_ROLE_KEY}" in authorizations
        assert any(a != f"Bearer {SERVICE_ROLE_KEY}" for a in authorizations)


async def test_service_role_runs_background_work_for_an_explicit_organization(any_gateway: Gateway) -> None:
    gw = any_gateway
    response = await gw.execute(SERVICE_ROLE_KEY, organization_id=str(gw.tenants.bystander.id), prompt="nightly job")
    assert response.status_code == 200, response.text
    [row] = gw.usage_rows()
    assert row["organization_id"] == gw.tenants.bystander.id and row["user_id"] is None


async def test_service_role_must_name_the_organization(gateway: Gateway) -> None:
    response = await gateway.execute(SERVICE_ROLE_KEY, prompt="hi")
    assert response.status_code == 400
    assert gateway.providers.requests == [] and gateway.usage_rows() == []


async def test_user_cannot_act_for_another_organization(gateway: Gateway) -> None:
    token = gateway.token(gateway.tenants.acme.admin)
    response = await gateway.execute(token, organization_id=str(gateway.tenants.bystander.id), prompt="hi")
    assert response.status_code == 403
    assert gateway.providers.requests == []


# Keys ----------------------------------------------------------------------------------------------


async def test_organization_key_is_used_when_stored_and_never_shown(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gw = gateway
    stored = await gw.manage_keys(gw.token(gw.tenants.acme.owner), action="set", provider="openai", api_key=ORG_KEY)
    assert stored.status_code == 200

    response = await gw.execute(gw.token(gw.tenants.acme.member), prompt="hi")

    assert response.status_code == 200
    assert response.json()["config"]["api_key_source"] == "organization"
    assert gw.providers.requests_for("openai")[0].headers["authorization"] == f"Bearer {ORG_KEY}"
    for text in (stored.text, response.text, caplog.text, str(gw.usage_rows())):
        assert ORG_KEY not in text and ORG_KEY[:-4] not in text


async def test_other_organizations_key_is_not_used(gateway: Gateway) -> None:
    gw = gateway
    await gw.manage_keys(gw.token(gw.tenants.bystander.owner), action="set", provider="openai", api_key=ORG_KEY)
    response = await gw.execute(gw.token(gw.tenants.acme.member), prompt="hi")
    assert response.json()["config"]["api_key_source"] == "system"
    assert gw.providers.requests_for("openai")[0].headers["authorization"] == f"Bearer {SYSTEM_KEYS['openai']}"


async def test_provider_echoing_the_key_never_leaks_it(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = SYSTEM_KEYS["openai"]
    gateway.providers.script("openai", Failure(401, f"Incorrect API key provided: {key}. Or {key[:3]}****{key[-4:]}"))
    response = await gateway.execute(gateway.token(gateway.tenants.acme.member), prompt="hi")
    assert response.status_code == 502
    [row] = gateway.usage_rows()
    for text in (response.text, caplog.text, row["error_message"]):
        assert key not in text and key[-12:] not in text


async def test_missing_key_is_503_without_a_provider_call(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    async with running_gateway(db, tenants, providers, OPENAI_API_KEY="") as gw:
        response = await gw.execute(gw.token(tenants.acme.member), prompt="hi")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "llm_not_configured"
        assert providers.requests == [] and gw.usage_rows() == []


async def test_cookies_a_provider_sets_do_not_reach_the_next_organizations_call(gateway: Gateway) -> None:
    gw = gateway
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    gw.providers.script("openai", Raw(200, answer, {"set-cookie": "affinity=acme; Path=/"}))
    assert (await gw.execute(gw.token(gw.tenants.acme.member), prompt="hi")).status_code == 200
    assert (await gw.execute(gw.token(gw.tenants.bystander.member), prompt="hi")).status_code == 200
    assert [r.headers.get("cookie") for r in gw.providers.requests_for("openai")] == [None, None]


# Provider failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "reply", "status", "code"),
    [
        ("openai", Failure(401, "Incorrect API key provided."), 502, "provider_error"),
        ("openai", Failure(500, "The server had an error."), 502, "provider_error"),
        ("anthropic", overloaded(), 502, "provider_error"),
        ("anthropic", Failure(401, "invalid x-api-key"), 502, "provider_error"),
        ("google", Failure(500, "Internal error encountered."), 502, "provider_error"),
        ("mistral", Failure(401, "Unauthorized"), 502, "provider_error"),
        ("meta", Failure(500, "upstream failure"), 502, "provider_error"),
        ("openai", malformed(), 502, "provider_error"),
        ("anthropic", Raw(200, b"<html>gateway error</html>", {"content-type": "text/html"}), 502, "provider_error"),
        ("google", Raw(200, {"candidates": []}), 502, "provider_error"),
        ("openai", rate_limited("7"), 429, "provider_rate_limited"),
        ("anthropic", rate_limited("12"), 429, "provider_rate_limited"),
    ],
    ids=[
        "openai-401",
        "openai-500",
        "anthropic-529",
        "anthropic-401",
        "google-500",
        "mistral-401",
        "meta-500",
        "openai-malformed",
        "anthropic-not-json",
        "google-no-candidates",
        "openai-429",
        "anthropic-429",
    ],
)
async def test_provider_failure_maps_to_its_status_and_is_recorded_once(
    gateway: Gateway, provider: str, reply: Any, status: int, code: str
) -> None:
    gw = gateway
    processor = gw.processor_for(provider)
    gw.providers.script(provider, reply)

    response = await gw.execute(gw.token(gw.tenants.acme.member), processor_id=str(processor), prompt="hi")

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in response.text
    if status == 429:
        assert response.headers["retry-after"] == reply.retry_after
    [row] = gw.usage_rows()
    assert row["error_message"] and row["input_tokens"] is None and row["estimated_cost"] is None
    assert row["processor_id"] == processor and row["response_time_ms"] >= 0


async def test_anthropic_overload_passes_on_the_providers_error_type(gateway: Gateway) -> None:
    gateway.providers.script("anthropic", overloaded())
    response = await gateway.execute(
        gateway.token(gateway.tenants.acme.member), processor_id=str(gateway.tenants.acme.processor), prompt="hi"
    )
    assert response.status_code == 502
    assert "overloaded_error" in response.json()["error"]["message"]
    assert "overloaded_error" in gateway.usage_rows()[0]["error_message"]


async def test_provider_timeout_is_504_and_recorded_once(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    async with running_gateway(db, tenants, providers, PROVIDER_READ_TIMEOUT_SECONDS="0.3") as gw:
        gw.providers.script("openai", slow(3))
        response = await gw.execute(gw.token(tenants.acme.member), prompt="hi")
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "provider_timeout"
        [row] = gw.usage_rows()
        assert row["error_message"] and 300 <= row["response_time_ms"] < 3000


async def test_unreachable_provider_is_502_not_a_timeout(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    async with running_gateway(db, tenants, providers, OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1") as gw:
        response = await gw.execute(gw.token(tenants.acme.member), prompt="hi")
        assert response.status_code == 502
        assert len(gw.usage_rows()) == 1


async def test_unsupported_setting_is_422_without_a_provider_call(gateway: Gateway) -> None:
    # top_k is valid in the database but OpenAI's Chat Completions has no such parameter.
    processor = gateway.processor_for("openai", settings={"top_k": 40})
    response = await gateway.execute(
        gateway.token(gateway.tenants.acme.member), processor_id=str(processor), prompt="hi"
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unsupported_setting"
    assert gateway.providers.requests == [] and gateway.usage_rows() == []


# Billing guarantees --------------------------------------------------------------------------------


@pytest.mark.parametrize("run", ["unknown", "another organization's"])
async def test_run_id_that_is_not_the_organizations_is_404_before_any_call(any_gateway: Gateway, run: str) -> None:
    gw = any_gateway
    run_id = uuid.uuid4() if run == "unknown" else gw.run_of(gw.tenants.bystander.processor, gw.tenants.bystander)
    response = await gw.execute(gw.token(gw.tenants.acme.member), prompt="hi", run_id=str(run_id))
    assert response.status_code == 404, response.text
    assert response.json()["error"] == {"code": "not_found", "message": "run not found"}
    assert gw.providers.requests == [] and gw.usage_rows() == []


async def test_service_role_cannot_bill_a_run_to_another_organization(any_gateway: Gateway) -> None:
    gw = any_gateway
    run_id = gw.run_of(gw.tenants.bystander.processor, gw.tenants.bystander)
    response = await gw.execute(
        SERVICE_ROLE_KEY, organization_id=str(gw.tenants.acme.id), prompt="hi", run_id=str(run_id)
    )
    assert response.status_code == 404
    assert gw.providers.requests == [] and gw.usage_rows() == []


async def test_run_deleted_during_the_call_is_404_and_the_call_is_still_billed(gateway: Gateway) -> None:
    gw = gateway
    run_id = gw.run_of(gw.tenants.acme.processor)
    gw.providers.script("anthropic", slow(0.6))
    # From another thread: the test client may hold this loop until the call is done.
    deleter = threading.Timer(0.3, gw.db.run, ("delete from runs where id = %s", (run_id,)))
    deleter.start()
    response = await gw.execute(
        gw.token(gw.tenants.acme.member), processor_id=str(gw.tenants.acme.processor), prompt="hi", run_id=str(run_id)
    )
    deleter.join()
    assert response.status_code == 404
    assert "content" not in response.json()
    [row] = gw.usage_rows()
    assert row["run_id"] is None and row["input_tokens"] == 12 and row["estimated_cost"] is not None


async def test_provider_error_message_with_nul_and_any_length_is_still_billed(gateway: Gateway) -> None:
    gw = gateway
    gw.providers.script("openai", Failure(500, message="bad\x00thing " + "x" * 5000))
    response = await gw.execute(gw.token(gw.tenants.acme.member), prompt="hi")
    assert response.status_code == 502
    [row] = gw.usage_rows()
    assert "\x00" not in row["error_message"]
    assert "badthing xxx" in row["error_message"] and len(row["error_message"]) <= 2000
    assert len(gw.providers.requests) == 1


async def test_when_usage_cannot_be_recorded_the_content_is_withheld(gateway: Gateway) -> None:
    gw = gateway
    # Billing rows are append-only for API roles; take the service role's insert away too.
    gw.db.run("revoke insert on llm_usage_logs from service_role")
    gw.providers.script("openai", Success(content="must not be delivered"))
    response = await gw.execute(gw.token(gw.tenants.acme.member), prompt="hi")
    assert response.status_code == 503
    assert "must not be delivered" not in response.text
    assert len(gw.providers.requests_for("openai")) == 1


# Identity of the caller ------------------------------------------------------------------------------


async def test_another_organizations_processor_is_404(any_gateway: Gateway) -> None:
    gw = any_gateway
    response = await gw.execute(
        gw.token(gw.tenants.acme.member), processor_id=str(gw.tenants.bystander.processor), prompt="hi"
    )
    assert response.status_code == 404
    assert gw.providers.requests == [] and gw.usage_rows() == []


async def test_removed_member_is_403(any_gateway: Gateway) -> None:
    gw = any_gateway
    gw.db.run("delete from organization_members where user_id = %s", (gw.tenants.acme.member,))
    response = await gw.execute(gw.token(gw.tenants.acme.member), prompt="hi")
    assert response.status_code == 403
    assert gw.providers.requests == []


async def test_response_never_carries_the_bearer_token(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = gateway.token(gateway.tenants.acme.member)
    response = await gateway.client.post("/functions/v1/execute-llm", json={"prompt": "hi"}, headers=bearer(token))
    assert response.status_code == 200
    signature = token.rsplit(".", 1)[1]
    assert signature not in response.text and signature not in caplog.text
