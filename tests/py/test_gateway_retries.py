"""Retries and the request's deadline: a retryable failure is tried again with backoff (honouring
Retry-After), others are not; no wait or attempt goes past the deadline; every attempt that
reached the provider has its own usage row, tied together by the request id."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.providers import Failure, FakeProviders, rate_limited, slow
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import SYSTEM_KEYS, Gateway, bearer, running_gateway

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures


@pytest.fixture
async def retrying(db: Database, tenants: Tenants, providers: FakeProviders) -> AsyncIterator[Gateway]:
    """The gateway with the product's default of one retry."""
    async with running_gateway(db, tenants, providers, PROVIDER_MAX_RETRIES="1") as gw:
        yield gw


async def call(
    gw: Gateway, headers: dict[str, str] | None = None, **body: object
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One execute-llm call as a member; its status, JSON answer and headers."""
    response = await gw.client.post(
        "/functions/v1/execute-llm",
        json={"prompt": "hi", **body},
        headers={**bearer(gw.token(gw.tenants.acme.member)), **(headers or {})},
    )
    return response.status_code, response.json(), dict(response.headers)


async def test_a_retryable_failure_is_tried_again_and_each_attempt_is_billed(retrying: Gateway) -> None:
    gw = retrying
    gw.providers.script("openai", Failure(503, "Service unavailable"))
    status, body, headers = await call(gw)
    assert status == 200, body
    assert [(a["outcome"], a["error_code"]) for a in body["attempts"]] == [("error", "provider_error"), ("ok", None)]
    assert len(gw.providers.requests_for("openai")) == 2
    rows = gw.usage_rows()
    assert [r["attempt"] for r in rows] == [1, 2]
    assert {r["request_id"] for r in rows} == {uuid.UUID(headers["x-request-id"])}
    assert rows[0]["error_message"] and rows[1]["error_message"] is None and rows[1]["input_tokens"] == 12


@pytest.mark.parametrize(
    ("status", "message"), [(400, "Invalid request"), (401, "Invalid API key"), (422, "Unprocessable")]
)
async def test_a_failure_of_the_request_or_the_key_is_not_retried(retrying: Gateway, status: int, message: str) -> None:
    gw = retrying
    gw.providers.script("openai", Failure(status, message))
    answer, body, _ = await call(gw)
    assert answer == 502
    assert body["error"]["attempts"] == [
        {"provider": "openai", "model": "gpt-4o", "outcome": "error", "error_code": "provider_error",
         "response_time_ms": body["error"]["attempts"][0]["response_time_ms"]}
    ]  # fmt: skip
    assert len(gw.providers.requests_for("openai")) == 1 and len(gw.usage_rows()) == 1


async def test_when_retries_run_out_the_last_failure_is_the_answer(retrying: Gateway) -> None:
    gw = retrying
    gw.providers.script("openai", Failure(500, "boom"), Failure(503, "still down"))
    status, body, headers = await call(gw)
    assert status == 502 and "still down" in body["error"]["message"]
    assert len(body["error"]["attempts"]) == 2
    assert [r["attempt"] for r in gw.usage_rows()] == [1, 2]
    # The error answer names the request its rows carry.
    assert {r["request_id"] for r in gw.usage_rows()} == {uuid.UUID(headers["x-request-id"])}


async def test_retry_after_is_honoured(retrying: Gateway) -> None:
    gw = retrying
    gw.providers.script("openai", rate_limited(retry_after="1"))
    started = time.monotonic()
    status, _, _ = await call(gw)
    assert status == 200
    requests = gw.providers.requests_for("openai")
    assert len(requests) == 2 and time.monotonic() - started >= 1.0


async def test_a_wait_that_would_end_past_the_deadline_is_not_made(retrying: Gateway) -> None:
    gw = retrying
    gw.providers.script("openai", rate_limited(retry_after="7"))
    started = time.monotonic()
    status, _, headers = await call(gw, timeout_seconds=2)
    assert status == 429 and headers["retry-after"] == "7"
    assert time.monotonic() - started < 2
    assert len(gw.providers.requests_for("openai")) == 1 and len(gw.usage_rows()) == 1


async def test_the_deadline_ends_a_slow_call_with_504_and_its_row(retrying: Gateway) -> None:
    gw = retrying
    gw.providers.script("openai", slow(5))
    started = time.monotonic()
    status, body, _ = await call(gw, timeout_seconds=0.5)
    assert status == 504 and body["error"]["code"] == "provider_timeout"
    assert time.monotonic() - started < 3
    [row] = gw.usage_rows()
    assert row["error_message"] and row["attempt"] == 1


async def test_the_callers_request_id_is_echoed_and_bills_the_rows(retrying: Gateway) -> None:
    gw = retrying
    request_id = uuid.uuid4()
    status, _, headers = await call(gw, headers={"x-request-id": str(request_id)})
    assert status == 200 and headers["x-request-id"] == str(request_id)
    assert [r["request_id"] for r in gw.usage_rows()] == [request_id]
    status, body, _ = await call(gw, headers={"x-request-id": "not-a-uuid"})
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert len(gw.providers.requests) == 1


async def test_each_attempt_under_a_hard_budget_reserves_and_settles(retrying: Gateway) -> None:
    gw = retrying
    gw.db.run(
        "insert into llm_budgets (organization_id, period, limit_usd, hard) values (%s, 'day', 1, true)",
        (gw.tenants.acme.id,),
    )
    gw.providers.script("openai", Failure(502, "Bad gateway"))
    status, _, _ = await call(gw)
    assert status == 200
    rows = gw.usage_rows()
    assert len(rows) == 2 and all(r["reservation_id"] is not None for r in rows)
    assert rows[0]["reservation_id"] != rows[1]["reservation_id"]
    [budget] = gw.db.run(
        "select p.spent_usd, p.reserved_usd from private.llm_budget_periods as p"
        " join llm_budgets as b on b.id = p.budget_id where b.organization_id = %s",
        (gw.tenants.acme.id,),
    )
    assert budget["reserved_usd"] == 0
    assert budget["spent_usd"] == sum((r["estimated_cost"] or Decimal(0)) for r in rows)


async def test_each_call_logs_one_json_line_without_prompt_key_or_completion(
    retrying: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    gw = retrying
    caplog.set_level(logging.INFO, logger="gateway.requests")
    gw.providers.script("openai", Failure(503, "down"))
    request_id = uuid.uuid4()
    status, body, _ = await call(gw, headers={"x-request-id": str(request_id)}, prompt="a secret prompt")
    assert status == 200
    gw.providers.script("openai", Failure(400, "bad"))
    assert (await call(gw))[0] == 502
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    assert len(lines) == 2
    served, failed = lines
    assert served["request_id"] == str(request_id) and served["organization_id"] == str(gw.tenants.acme.id)
    assert (served["provider"], served["model"], served["status"], served["attempts"]) == ("openai", "gpt-4o", 200, 2)
    assert served["duration_ms"] >= 0 and served["processor_id"] is None
    assert (failed["status"], failed["error_code"], failed["attempts"]) == (502, "provider_error", 1)
    text = caplog.text
    assert "a secret prompt" not in text and body["content"] not in text
    assert all(key not in text for key in SYSTEM_KEYS.values())
