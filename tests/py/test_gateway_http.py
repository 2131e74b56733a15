"""The HTTP surface: probes, OpenAPI, bad input and unexpected failures, all answered as JSON."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from devstack.postgres import free_port
from gateway.app import create_app
from gateway.data import (
    BudgetReservation,
    Caller,
    EffectiveConfig,
    KeyInfo,
    ModelChoice,
    ResolvedCall,
    UsageRecord,
)
from gateway.data.postgres import PostgresDataAccess
from gateway.http_client import build_http_client
from gateway.providers import ChatMessage, CompletionRequest
from gateway.settings import Settings
from gateway.usage import complete_and_record
from tests.fakes.providers import FakeProviders, slow
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import Gateway, bearer, gateway_env, running_gateway, sign

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures

SECRET_IN_MESSAGE = "sk-leaked-in-an-exception-0123456789"


# Probes ----------------------------------------------------------------------------------------------


async def test_health_and_ready_answer_without_a_token(any_gateway: Gateway) -> None:
    health = await any_gateway.client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = await any_gateway.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert ready.json()["config_cache"] in ("listening", "bypassed", "off")


async def test_ready_is_503_while_the_database_is_down(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    async with running_gateway(db, tenants, providers, DATABASE_URL=down, DATABASE_TIMEOUT_SECONDS="0.5") as gw:
        assert (await gw.client.get("/health")).status_code == 200
        response = await gw.client.get("/ready")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "database_unavailable"
        # A call that cannot even resolve its configuration reaches no provider.
        executed = await gw.execute(gw.token(tenants.acme.member), prompt="hi")
        assert executed.status_code == 503 and providers.requests == []


async def test_ready_is_503_when_postgrest_is_down(db: Database, tenants: Tenants, providers: FakeProviders) -> None:
    async with running_gateway(db, tenants, providers, "postgrest") as gw:
        assert gw.postgrest is not None
        gw.postgrest.close()
        assert (await gw.client.get("/ready")).status_code == 503


# OpenAPI -------------------------------------------------------------------------------------------


async def test_openapi_describes_the_endpoints_and_the_bearer_scheme(gateway: Gateway) -> None:
    response = await gateway.client.get("/schema/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    paths = spec["paths"]
    for path in ("/functions/v1/execute-llm", "/functions/v1/manage-llm-keys", "/functions/v1/llm-config"):
        assert path in paths
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    body_schema = spec["components"]["schemas"]["ExecuteRequest"]
    assert {"prompt", "messages", "processor_id", "run_id", "operation_id"} <= set(body_schema["properties"])


# Browsers ---------------------------------------------------------------------------------------


async def test_browser_preflight_is_answered_for_configured_origins(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    origin = "https://app.validai.example"
    async with running_gateway(db, tenants, providers, GATEWAY_CORS_ORIGINS=origin) as gw:
        preflight = {
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, apikey, x-client-info",
        }
        allowed = await gw.client.options("/functions/v1/execute-llm", headers=preflight)
        assert allowed.status_code in (200, 204)
        assert allowed.headers["access-control-allow-origin"] == origin
        other = await gw.client.options(
            "/functions/v1/execute-llm", headers={**preflight, "origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
        token = gw.token(tenants.acme.member)
        response = await gw.client.post(
            "/functions/v1/execute-llm", json={"prompt": "hi"}, headers={**bearer(token), "origin": origin}
        )
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == origin


async def test_no_cross_origin_access_unless_configured(gateway: Gateway) -> None:
    response = await gateway.client.get("/health", headers={"origin": "https://app.validai.example"})
    assert "access-control-allow-origin" not in response.headers


# Bad input ---------------------------------------------------------------------------------------


BAD_BODIES: list[tuple[str, Any]] = [
    ("both", {"prompt": "hi", "messages": [{"role": "user", "content": "hi"}]}),
    ("neither", {"system": "hi"}),
    ("empty-object", {}),
    ("prompt-not-a-string", {"prompt": 42}),
    ("messages-not-a-list", {"messages": "hi"}),
    ("system-role-message", {"messages": [{"role": "system", "content": "hi"}]}),
    ("message-without-content", {"messages": [{"role": "user"}]}),
    ("empty-messages", {"messages": []}),
    ("blank-prompt", {"prompt": "   "}),
    ("processor-not-a-uuid", {"prompt": "hi", "processor_id": "abc"}),
    ("run-not-a-uuid", {"prompt": "hi", "run_id": 7}),
    ("unknown-field", {"prompt": "hi", "model": "gpt-5"}),
    ("operation-too-long", {"prompt": "hi", "operation_id": "x" * 201}),
    ("nul-in-prompt", {"prompt": "hi\x00there"}),
    ("nul-in-system", {"prompt": "hi", "system": "\x00"}),
    ("nul-in-operation-id", {"prompt": "hi", "operation_id": "op\x00"}),
    ("nul-in-a-message", {"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "a\x00"}]}),
    ("array", [1, 2]),
    ("null", None),
]


@pytest.mark.parametrize("body", [b for _, b in BAD_BODIES], ids=[name for name, _ in BAD_BODIES])
async def test_bad_execute_body_is_400_json_and_calls_nobody(gateway: Gateway, body: Any) -> None:
    response = await gateway.client.post(
        "/functions/v1/execute-llm", json=body, headers=bearer(gateway.token(gateway.tenants.acme.member))
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["message"]
    assert "Traceback" not in response.text
    assert gateway.providers.requests == [] and gateway.usage_rows() == []


UNPARSEABLE = {
    "truncated": b"{",
    "empty": b"",
    "form": b"prompt=hi",
    "binary": b"\xff\xfe",
    "lone-surrogate": b'{"prompt": "\\ud800"}',
    "nested-2000-deep": b"[" * 2000 + b"]" * 2000,
    "nested-in-a-field": b'{"prompt": ' + b'{"a": ' * 1500 + b"1" + b"}" * 1500 + b"}",
}


@pytest.mark.parametrize("raw", UNPARSEABLE.values(), ids=UNPARSEABLE.keys())
@pytest.mark.parametrize("path", ["/functions/v1/execute-llm", "/functions/v1/manage-llm-keys"])
async def test_unparseable_body_is_400_json(gateway: Gateway, raw: bytes, path: str) -> None:
    headers = {**bearer(gateway.token(gateway.tenants.acme.admin)), "content-type": "application/json"}
    response = await gateway.client.post(path, content=raw, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert gateway.providers.requests == []


async def test_unknown_route_and_wrong_method_answer_json(gateway: Gateway) -> None:
    missing = await gateway.client.get("/functions/v1/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = await gateway.client.get("/functions/v1/execute-llm")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


# Unexpected failures ------------------------------------------------------------------------------


class ExplodingData:
    """A data adapter with a bug: its exception message carries a secret."""

    async def effective_config(self, caller: Caller, organization_id: uuid.UUID, processor_id: Any) -> EffectiveConfig:
        raise RuntimeError(f"boom with {SECRET_IN_MESSAGE}")

    async def resolve_call(
        self, caller: Caller, organization_id: uuid.UUID, processor_id: Any, run_id: Any, model: str | None = None
    ) -> ResolvedCall:
        raise RuntimeError(f"boom with {SECRET_IN_MESSAGE}")

    async def list_models(self, caller: Caller, organization_id: uuid.UUID) -> list[ModelChoice]:
        raise NotImplementedError

    async def org_api_key(self, organization_id: uuid.UUID, provider: str) -> str | None:
        raise NotImplementedError

    async def reserve_budget(self, reservation: BudgetReservation) -> uuid.UUID | None:
        raise NotImplementedError

    async def record_usage(self, record: UsageRecord) -> float | None:
        raise NotImplementedError

    async def store_key(self, caller: Caller, organization_id: uuid.UUID, provider: str, api_key: str) -> None:
        raise NotImplementedError

    async def delete_key(self, caller: Caller, organization_id: uuid.UUID, provider: str) -> bool:
        raise NotImplementedError

    async def list_keys(self, caller: Caller, organization_id: uuid.UUID) -> list[KeyInfo]:
        raise NotImplementedError

    async def ping(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_unexpected_error_is_a_generic_500_and_a_log_line_without_secrets(
    db: Database, tenants: Tenants, providers: FakeProviders, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(Settings.from_env(gateway_env(db, providers)), data=ExplodingData())
    async with AsyncTestClient(app=app) as client:
        token = sign({**tenants.claims(tenants.acme.member), "role": "authenticated"})
        response = await client.post("/functions/v1/execute-llm", json={"prompt": "hi"}, headers=bearer(token))
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert "RuntimeError" in caplog.text
    assert SECRET_IN_MESSAGE not in caplog.text and SECRET_IN_MESSAGE not in response.text


# Billing under cancellation ----------------------------------------------------------------------


async def test_call_abandoned_mid_flight_is_still_recorded_once(
    db: Database, tenants: Tenants, providers: FakeProviders
) -> None:
    """A client that goes away (or a shutdown) cancels the request; the provider call it made is billed."""
    settings = Settings.from_env(gateway_env(db, providers))
    data = await PostgresDataAccess.connect(db.dsn())
    providers.script("openai", slow(2))
    row = UsageRecord(organization_id=tenants.acme.id, provider="openai", model_name="gpt-4o", operation_id="cancel")
    request = CompletionRequest("gpt-4o", (ChatMessage("user", "hi"),), None, {})
    try:
        async with build_http_client(settings) as client:
            task = asyncio.create_task(
                complete_and_record(client, data, row, providers.base_url("openai"), "sk-test-key-000000", request)
            )
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    finally:
        await data.close()
    [recorded] = db.run("select * from llm_usage_logs where operation_id = 'cancel'")
    assert recorded["error_message"] and recorded["input_tokens"] is None
    assert len(providers.requests_for("openai")) == 1
