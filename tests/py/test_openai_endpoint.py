"""POST /v1/chat/completions and GET /v1/models with the official `openai` package as the client:
a completion and a stream with usage and cost, the model naming schemes, request settings reaching
the provider, and each error status as the SDK's matching exception. Every call runs the same
pipeline as execute-llm: its usage row is there, with the request's id."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest

from devstack.postgres import free_port
from tests.fakes.providers import Failure, FakeProviders, Stream, rate_limited
from tests.py.supabase_db import Database
from tests.py.tenants import Tenants
from tests.py.test_gateway_harness import SERVICE_ROLE_KEY, Gateway, command, gateway_env, sign, wait_for

pytest_plugins = ["tests.py.test_gateway_harness"]  # its fixtures


def sdk(gw: Gateway, token: str, **options: object) -> openai.AsyncOpenAI:
    """The SDK over the gateway's test client (in-process HTTP), no retries of its own."""
    return openai.AsyncOpenAI(
        api_key=token, base_url=f"{gw.client.base_url}/v1", http_client=gw.client, max_retries=0, **options
    )


@pytest.fixture
def member_sdk(gateway: Gateway) -> openai.AsyncOpenAI:
    return sdk(gateway, gateway.token(gateway.tenants.acme.member))


async def test_a_completion_through_the_sdk_is_billed_like_any_call(
    gateway: Gateway, member_sdk: openai.AsyncOpenAI
) -> None:
    gw = gateway
    raw = await member_sdk.chat.completions.with_raw_response.create(
        model="profile/balanced",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        temperature=0.1,
        max_tokens=64,
        stop=["END"],
        user="end-user-42",
        # Fields the gateway does not honour are ignored, not errors.
        presence_penalty=None,
        seed=None,
        extra_body={"metadata": {"trace": "x"}},
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hello from the fake provider."
    assert completion.model == "openai/gpt-4o"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        12,
        7,
        19,
    )
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    [row] = gw.usage_rows()
    assert raw.headers["x-llm-cost-usd"] == f"{row['estimated_cost'].normalize():f}"
    assert Decimal(str(completion.usage.model_extra["cost_usd"])) == row["estimated_cost"]
    assert row["request_id"] == uuid.UUID(raw.headers["x-request-id"])
    assert row["operation_id"] == "user:end-user-42"
    [request] = gw.providers.requests_for("openai")
    assert request.json["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (request.json["temperature"], request.json["max_completion_tokens"], request.json["stop"]) == (
        0.1,
        64,
        ["END"],
    )


async def test_a_stream_through_the_sdk_ends_with_usage_and_cost(
    gateway: Gateway, member_sdk: openai.AsyncOpenAI
) -> None:
    gw = gateway
    gw.providers.script("openai", Stream("one two three four", chunks=4))
    stream = await member_sdk.chat.completions.create(
        model="profile/balanced",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (12, 7)
    [row] = gw.usage_rows()
    assert Decimal(str(usage.model_extra["cost_usd"])) == row["estimated_cost"]
    assert row["usage_estimated"] is False


@pytest.mark.parametrize("model", ["processor", "profile/fast", "anthropic/claude-haiku-4-5"])
async def test_each_model_naming_scheme_chooses_its_configuration(
    gateway: Gateway, member_sdk: openai.AsyncOpenAI, model: str
) -> None:
    gw = gateway
    if model == "processor":
        model = f"processor/{gw.tenants.acme.processor}"  # its profile is "fast": anthropic
    completion = await member_sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert completion.model == "anthropic/claude-haiku-4-5"
    [row] = gw.usage_rows()
    assert row["provider"] == "anthropic"
    assert row["processor_id"] == (gw.tenants.acme.processor if model.startswith("processor/") else None)


async def test_models_lists_what_the_member_may_name(gateway: Gateway, member_sdk: openai.AsyncOpenAI) -> None:
    gw = gateway
    models = [m.id async for m in member_sdk.models.list()]
    assert f"processor/{gw.tenants.acme.processor}" in models
    assert {"profile/balanced", "profile/fast", "openai/gpt-4o-mini"} <= set(models)
    assert f"processor/{gw.tenants.bystander.processor}" not in models


async def test_the_service_role_names_the_organization_in_a_header(gateway: Gateway) -> None:
    gw = gateway
    without = sdk(gw, SERVICE_ROLE_KEY)
    with pytest.raises(openai.BadRequestError) as refused:
        await without.chat.completions.create(model="profile/fast", messages=[{"role": "user", "content": "hi"}])
    assert "x-organization-id" in refused.value.message
    service = sdk(gw, SERVICE_ROLE_KEY, default_headers={"x-organization-id": str(gw.tenants.acme.id)})
    completion = await service.chat.completions.create(
        model="profile/fast", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.model == "anthropic/claude-haiku-4-5"


@pytest.mark.parametrize(
    ("setup", "model", "error"),
    [
        ("bad token", "profile/fast", openai.AuthenticationError),
        ("not a member", "profile/fast", openai.PermissionDeniedError),
        (None, "profile/nobody", openai.NotFoundError),
        (None, "openai/gpt-nonexistent", openai.NotFoundError),
        ("rate limited", "profile/balanced", openai.RateLimitError),
        ("provider down", "profile/balanced", openai.InternalServerError),
        ("unsupported setting", "meta/Llama-4-Scout-17B-16E-Instruct-FP8", openai.UnprocessableEntityError),
        ("budget", "profile/balanced", openai.APIStatusError),
    ],
)
async def test_each_error_is_the_sdks_matching_exception(
    gateway: Gateway, setup: str | None, model: str, error: type[openai.APIStatusError]
) -> None:
    gw = gateway
    token = gw.token(gw.tenants.acme.member)
    if setup == "bad token":
        token = "not-a-token"
    elif setup == "not a member":
        token = gw.token(gw.tenants.stranger)
    elif setup == "rate limited":
        gw.providers.script("openai", rate_limited(retry_after="30"))
    elif setup == "provider down":
        gw.providers.script("openai", Failure(503, "down"))
    elif setup == "budget":
        gw.db.run(
            "insert into llm_budgets (organization_id, period, limit_usd, hard) values (%s, 'day', 0.000001, true)",
            (gw.tenants.acme.id,),
        )
    client = sdk(gw, token)
    settings = {"stop": ["END"]} if setup == "unsupported setting" else {}
    with pytest.raises(error) as raised:
        await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], **settings)
    body = raised.value.body
    assert isinstance(body, dict) and set(body) >= {"message", "type", "code"}
    if setup == "budget":
        assert raised.value.status_code == 402 and body["code"] == "budget_exceeded"


@pytest.mark.parametrize(
    ("model", "messages"),
    [
        ("profile/fast", []),
        ("profile/fa\u0000st", [{"role": "user", "content": "hi"}]),
        ("x" * 301, [{"role": "user", "content": "hi"}]),
        ("", [{"role": "user", "content": "hi"}]),
    ],
    ids=["no messages", "NUL in model", "model too long", "empty model"],
)
async def test_a_bad_body_is_a_400_in_openais_shape(
    gateway: Gateway, member_sdk: openai.AsyncOpenAI, model: str, messages: list[Any]
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await member_sdk.chat.completions.create(model=model, messages=messages)
    assert raised.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert gateway.providers.requests == []


@pytest.fixture
def served(db: Database, tenants: Tenants, providers: FakeProviders) -> Iterator[str]:
    """`python -m gateway` on a real port: the SDK over real HTTP."""
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), **gateway_env(db, providers, GATEWAY_PORT=str(port))}
    with command(["-m", "gateway"], env):
        wait_for(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}/v1"


def test_the_sync_sdk_streams_over_real_http(
    served: str, tenants: Tenants, providers: FakeProviders, db: Database
) -> None:
    providers.script("openai", Stream("streamed over a socket", chunks=3))
    token = sign({**tenants.claims(tenants.acme.member), "role": "authenticated"})
    client = openai.OpenAI(api_key=token, base_url=served, max_retries=0)
    with client.chat.completions.create(
        model="profile/balanced", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "streamed over a socket"
    [row] = db.run("select provider, error_message, usage_estimated from llm_usage_logs")
    # Without stream_options.include_usage no usage chunk is sent; the row has the provider's usage.
    assert row == {"provider": "openai", "error_message": None, "usage_estimated": False}
