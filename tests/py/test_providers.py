"""Provider adapters, exercised through real HTTP against the fake provider servers."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from gateway.errors import (
    BadRequest,
    ConfigError,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    UnsupportedSetting,
)
from gateway.providers import PROVIDERS, ChatMessage, Completion, CompletionRequest, Usage, complete
from tests.fakes.providers import Failure, FakeProviders, Raw, Success, malformed, overloaded, rate_limited, slow
from tests.py.test_provider_harness import API_KEY, session

pytest_plugins = ["tests.py.test_provider_harness"]  # its fixtures: fake, tls, client

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_request(
    model: str = "test-model",
    settings: Mapping[str, Any] | None = None,
    system: str | None = None,
    messages: tuple[ChatMessage, ...] = (ChatMessage("user", "Hello?"),),
) -> CompletionRequest:
    return CompletionRequest(model=model, messages=messages, system=system, settings=settings or {})


async def call(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, request: CompletionRequest | None = None
) -> Completion:
    return await complete(client, provider, fake.base_url(provider), API_KEY, request or make_request())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- requests on the wire -------------------------------------------------------------


@pytest.mark.asyncio
async def test_anthropic_request_uses_messages_api_with_key_header_and_default_max_tokens(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    await call(client, fake, "anthropic", make_request(model="claude-x", system="Be brief."))

    [sent] = fake.requests
    assert sent.path == "/anthropic/v1/messages"
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hello?"}],
        "system": "Be brief.",
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "path"),
    [
        ("openai", "/openai/v1/chat/completions"),
        ("mistral", "/mistral/v1/chat/completions"),
        ("meta", "/meta/compat/v1/chat/completions"),
    ],
)
async def test_openai_compatible_request_sends_bearer_key_and_system_message_first(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, path: str
) -> None:
    history = (ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello!"), ChatMessage("user", "Why?"))
    await call(client, fake, provider, make_request(system="Be brief.", messages=history))

    [sent] = fake.requests
    assert sent.path == path
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.json == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Why?"},
        ],
    }


@pytest.mark.asyncio
async def test_google_key_is_sent_in_header_not_url(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    await call(client, fake, "google", make_request(model="gemini-2.5-flash"))

    [sent] = fake.requests
    assert sent.path == "/google/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.query == ""
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert "authorization" not in sent.headers


@pytest.mark.asyncio
async def test_google_request_maps_roles_and_system_instruction(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    history = (ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello!"), ChatMessage("user", "Why?"))
    await call(client, fake, "google", make_request(system="Be brief.", messages=history))

    [sent] = fake.requests
    assert sent.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "Why?"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    }


@pytest.mark.asyncio
async def test_google_model_id_cannot_change_the_endpoint(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    await call(client, fake, "google", make_request(model="x:streamGenerateContent?alt=sse"))

    [sent] = fake.requests
    assert sent.path == "/google/v1beta/models/x%3AstreamGenerateContent%3Falt%3Dsse:generateContent"
    assert sent.query == ""


@pytest.mark.asyncio
async def test_base_url_with_trailing_slash_is_accepted(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    await complete(client, "openai", fake.base_url("openai") + "/", API_KEY, make_request())

    assert fake.requests[0].path == "/openai/v1/chat/completions"


# --- settings -----------------------------------------------------------------------

ALL_SETTINGS = {
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "max_tokens": 256,
    "stop": ["END"],
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "seed": 7,
}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "settings", "wire"),
    [
        (
            "anthropic",
            {"temperature": 0.5, "top_p": 0.9, "top_k": 40, "max_tokens": 256, "stop": "END"},
            {"temperature": 0.5, "top_p": 0.9, "top_k": 40, "max_tokens": 256, "stop_sequences": ["END"]},
        ),
        (
            "openai",
            {k: v for k, v in ALL_SETTINGS.items() if k != "top_k"},
            {
                "temperature": 0.5,
                "top_p": 0.9,
                "max_completion_tokens": 256,
                "stop": ["END"],
                "presence_penalty": 0.1,
                "frequency_penalty": 0.2,
                "seed": 7,
            },
        ),
        (
            "mistral",
            {k: v for k, v in ALL_SETTINGS.items() if k != "top_k"},
            {
                "temperature": 0.5,
                "top_p": 0.9,
                "max_tokens": 256,
                "stop": ["END"],
                "presence_penalty": 0.1,
                "frequency_penalty": 0.2,
                "random_seed": 7,
            },
        ),
        (
            "meta",
            {"temperature": 0.5, "top_p": 0.9, "max_tokens": 256},
            {"temperature": 0.5, "top_p": 0.9, "max_completion_tokens": 256},
        ),
    ],
)
async def test_settings_are_sent_under_the_providers_parameter_names(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, settings: dict[str, Any], wire: dict[str, Any]
) -> None:
    await call(client, fake, provider, make_request(settings=settings))

    body = fake.requests[0].json
    assert {k: v for k, v in body.items() if k not in ("model", "messages")} == wire


@pytest.mark.asyncio
async def test_google_settings_are_sent_in_generation_config(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    await call(client, fake, "google", make_request(settings=ALL_SETTINGS))

    assert fake.requests[0].json["generationConfig"] == {
        "temperature": 0.5,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 256,
        "stopSequences": ["END"],
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "seed": 7,
    }


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "setting"),
    [
        ("anthropic", "presence_penalty"),
        ("anthropic", "frequency_penalty"),
        ("anthropic", "seed"),
        ("openai", "top_k"),
        ("mistral", "top_k"),
        ("meta", "top_k"),
        ("meta", "stop"),
        ("meta", "seed"),
        ("meta", "presence_penalty"),
        ("google", "logit_bias"),
    ],
)
async def test_unsupported_setting_rejected_before_any_request(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, setting: str
) -> None:
    value = ALL_SETTINGS.get(setting, 1)
    with pytest.raises(UnsupportedSetting) as raised:
        await call(client, fake, provider, make_request(settings={setting: value}))

    assert provider in raised.value.message
    assert repr(setting) in raised.value.message
    assert fake.requests == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "setting", "value"),
    [
        ("anthropic", "temperature", 1.5),
        ("anthropic", "top_p", 1.01),
        ("anthropic", "max_tokens", 0),
        ("openai", "temperature", 2.5),
        ("openai", "presence_penalty", -2.1),
        ("openai", "stop", ["a", "b", "c", "d", "e"]),
        ("mistral", "temperature", 1.6),
        ("mistral", "seed", -1),
        ("google", "presence_penalty", 2.0),
        ("google", "top_k", 0),
        ("google", "stop", ["a", "b", "c", "d", "e", "f"]),
        ("meta", "temperature", 1.5),
    ],
)
async def test_out_of_range_setting_is_rejected_not_clamped(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, setting: str, value: Any
) -> None:
    with pytest.raises(UnsupportedSetting) as raised:
        await call(client, fake, provider, make_request(settings={setting: value}))

    assert raised.value.message.startswith(provider)
    assert setting in raised.value.message or "stop sequences" in raised.value.message
    assert fake.requests == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("setting", "value"),
    [("temperature", "hot"), ("temperature", True), ("temperature", float("nan")), ("max_tokens", 100.0), ("stop", [])],
)
async def test_setting_of_the_wrong_type_is_a_bad_request(
    client: aiohttp.ClientSession, fake: FakeProviders, setting: str, value: Any
) -> None:
    with pytest.raises(BadRequest, match=setting):
        await call(client, fake, "openai", make_request(settings={setting: value}))

    assert fake.requests == []


@pytest.mark.asyncio
async def test_setting_set_to_none_is_left_out(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    await call(client, fake, "anthropic", make_request(settings={"temperature": None, "seed": None}))

    assert "temperature" not in fake.requests[0].json


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "messages",
    [(), (ChatMessage("user", "  "),), (ChatMessage("system", "x"),)],  # type: ignore[arg-type]
)
async def test_invalid_messages_are_rejected_before_any_request(
    client: aiohttp.ClientSession, fake: FakeProviders, messages: tuple[ChatMessage, ...]
) -> None:
    with pytest.raises(BadRequest):
        await call(client, fake, "anthropic", make_request(messages=messages))

    assert fake.requests == []


@pytest.mark.asyncio
async def test_unknown_provider_is_a_configuration_error(client: aiohttp.ClientSession) -> None:
    with pytest.raises(ConfigError, match="cohere"):
        await complete(client, "cohere", "http://127.0.0.1:9", API_KEY, make_request())


@pytest.mark.asyncio
async def test_missing_api_key_is_a_configuration_error(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    with pytest.raises(ConfigError):
        await complete(client, "openai", fake.base_url("openai"), "", make_request())

    assert fake.requests == []


@pytest.mark.asyncio
async def test_base_url_without_scheme_is_a_configuration_error(client: aiohttp.ClientSession) -> None:
    with pytest.raises(ConfigError, match="base URL"):
        await complete(client, "openai", "api.openai.com/v1", API_KEY, make_request())


# --- usage and content --------------------------------------------------------------


@pytest.mark.asyncio
async def test_anthropic_input_tokens_include_cache_reads_and_writes(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    usage = {"input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 300, "cache_creation_input_tokens": 40}
    fake.script("anthropic", Success(usage=usage))

    completion = await call(client, fake, "anthropic")

    assert completion.usage == Usage(input_tokens=350, output_tokens=20, cache_read_tokens=300, cache_write_tokens=40)


@pytest.mark.asyncio
async def test_anthropic_null_cache_counts_read_as_zero(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_input_tokens": None,
        "cache_creation_input_tokens": None,
    }
    fake.script("anthropic", Success(usage=usage))

    completion = await call(client, fake, "anthropic")

    assert completion.usage == Usage(input_tokens=10, output_tokens=20)


@pytest.mark.asyncio
async def test_openai_cached_prompt_tokens_are_cache_reads_within_input(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    usage = {"prompt_tokens": 2000, "completion_tokens": 30, "prompt_tokens_details": {"cached_tokens": 1536}}
    fake.script("openai", Success(usage=usage))

    completion = await call(client, fake, "openai")

    assert completion.usage == Usage(input_tokens=2000, output_tokens=30, cache_read_tokens=1536)


@pytest.mark.asyncio
async def test_openai_reasoning_tokens_are_reported_within_output(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    usage = {"prompt_tokens": 50, "completion_tokens": 900, "completion_tokens_details": {"reasoning_tokens": 640}}
    fake.script("openai", Success(usage=usage))

    completion = await call(client, fake, "openai")

    assert completion.usage == Usage(input_tokens=50, output_tokens=900, reasoning_tokens=640)


@pytest.mark.asyncio
async def test_mistral_usage_is_read_from_openai_style_fields(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    fake.script("mistral", Success(usage={"prompt_tokens": 44, "completion_tokens": 55}))

    completion = await call(client, fake, "mistral")

    assert completion.usage == Usage(input_tokens=44, output_tokens=55)


@pytest.mark.asyncio
async def test_meta_usage_is_read_from_openai_style_usage(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    fake.script("meta", Success(usage={"prompt_tokens": 21, "completion_tokens": 8}))

    completion = await call(client, fake, "meta")

    assert completion.usage == Usage(input_tokens=21, output_tokens=8)


@pytest.mark.asyncio
async def test_meta_usage_is_read_from_metrics_list(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    body = {
        "id": "fake",
        "model": "Llama-4-Maverick-17B-128E-Instruct-FP8",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "metrics": [
            {"metric": "num_completion_tokens", "value": 51, "unit": "tokens"},
            {"metric": "num_prompt_tokens", "value": 22.0, "unit": "tokens"},
            {"metric": "num_total_tokens", "value": 73, "unit": "tokens"},
        ],
    }
    fake.script("meta", Raw(body=body))

    completion = await call(client, fake, "meta")

    assert completion.usage == Usage(input_tokens=22, output_tokens=51)


@pytest.mark.asyncio
async def test_google_output_tokens_include_thinking_tokens(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    usage = {"promptTokenCount": 100, "candidatesTokenCount": 40, "thoughtsTokenCount": 260}
    fake.script("google", Success(usage=usage))

    completion = await call(client, fake, "google")

    assert completion.usage == Usage(input_tokens=100, output_tokens=300, reasoning_tokens=260)


@pytest.mark.asyncio
async def test_google_cached_content_tokens_are_cache_reads_within_input(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    usage = {"promptTokenCount": 5000, "candidatesTokenCount": 10, "cachedContentTokenCount": 4096}
    fake.script("google", Success(usage=usage))

    completion = await call(client, fake, "google")

    assert completion.usage == Usage(input_tokens=5000, output_tokens=10, cache_read_tokens=4096)


@pytest.mark.asyncio
async def test_google_omitted_zero_counts_read_as_zero(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    body = {
        "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}],
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.5-flash",
    }
    fake.script("google", Raw(body=body))

    completion = await call(client, fake, "google")

    assert completion == Completion(content="", model="gemini-2.5-flash", usage=Usage(input_tokens=9, output_tokens=0))


@pytest.mark.asyncio
async def test_anthropic_content_joins_text_blocks_and_skips_thinking(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    body = {
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
            {"type": "text", "text": "Part one. "},
            {"type": "text", "text": "Part two."},
        ],
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    fake.script("anthropic", Raw(body=body))

    completion = await call(client, fake, "anthropic")

    assert completion.content == "Part one. Part two."


@pytest.mark.asyncio
async def test_google_content_skips_thought_parts(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    fake.script("google", Success(content="The answer.", thinking="Internal reasoning."))

    completion = await call(client, fake, "google")

    assert completion.content == "The answer."


@pytest.mark.asyncio
async def test_mistral_content_chunks_keep_only_the_answer_text(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    fake.script("mistral", Success(content="The answer.", thinking="Internal reasoning."))

    completion = await call(client, fake, "mistral")

    assert completion.content == "The answer."


@pytest.mark.asyncio
async def test_openai_refusal_is_returned_as_content(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    body = {
        "model": "gpt-x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": "I can't help."}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    fake.script("openai", Raw(body=body))

    completion = await call(client, fake, "openai")

    assert completion.content == "I can't help."


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_completion_reports_the_model_the_provider_names(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str
) -> None:
    fake.script(provider, Success(content="Hi there", model="model-2026-01-01"))

    completion = await call(client, fake, provider, make_request(model="model-latest"))

    assert completion.content == "Hi there"
    assert completion.model == "model-2026-01-01"


@pytest.mark.asyncio
async def test_default_fake_reply_echoes_the_requested_model(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    completion = await call(client, fake, "google", make_request(model="gemini-2.5-pro"))

    assert completion.model == "gemini-2.5-pro"


# --- errors -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_anthropic_529_overloaded_is_provider_error(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    fake.script("anthropic", overloaded())

    with pytest.raises(ProviderError) as raised:
        await call(client, fake, "anthropic")

    assert type(raised.value) is ProviderError
    assert raised.value.status == 502
    assert raised.value.message == "anthropic: overloaded_error: Overloaded (HTTP 529)"


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_rate_limit_carries_retry_after(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str
) -> None:
    fake.script(provider, rate_limited(retry_after="7"))

    with pytest.raises(ProviderRateLimited) as raised:
        await call(client, fake, provider)

    assert raised.value.retry_after == 7
    assert raised.value.status == 429
    assert raised.value.message.startswith(f"{provider}: ")
    assert "Rate limit exceeded" in raised.value.message


@pytest.mark.asyncio
async def test_rate_limit_retry_after_may_be_an_http_date(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    fake.script("openai", Failure(429, "Slow down", retry_after=when))

    with pytest.raises(ProviderRateLimited) as raised:
        await call(client, fake, "openai")

    assert raised.value.retry_after is not None
    assert 25 <= raised.value.retry_after <= 31


@pytest.mark.asyncio
async def test_rate_limit_without_retry_after_has_none(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    fake.script("anthropic", rate_limited(retry_after=None))

    with pytest.raises(ProviderRateLimited) as raised:
        await call(client, fake, "anthropic")

    assert raised.value.retry_after is None


@pytest.mark.asyncio
async def test_google_rate_limit_reads_retry_info_delay_from_body(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.2s"}
    body = {
        "error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED", "details": [retry_info]}
    }
    fake.script("google", Raw(429, body))

    with pytest.raises(ProviderRateLimited) as raised:
        await call(client, fake, "google")

    assert raised.value.retry_after == 37
    assert raised.value.message == "google: RESOURCE_EXHAUSTED: Quota exceeded (HTTP 429)"


@pytest.mark.asyncio
async def test_timeout_is_provider_timeout(fake: FakeProviders, tls: ssl.SSLContext) -> None:
    fake.script("openai", slow(3.0))
    async with session(tls, sock_read=0.3) as short:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout) as raised:
            await call(short, fake, "openai")

    assert time.monotonic() - started < 2.0
    assert raised.value.status == 504
    assert raised.value.message.startswith("openai: ")


@pytest.mark.asyncio
async def test_connection_refused_is_provider_error(client: aiohttp.ClientSession) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"

    with pytest.raises(ProviderError) as raised:
        await complete(client, "mistral", base_url, API_KEY, make_request())

    assert type(raised.value) is ProviderError
    assert raised.value.message.startswith("mistral: ")


@pytest.mark.asyncio
async def test_garbage_instead_of_http_is_provider_error(tls: ssl.SSLContext) -> None:
    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with session(tls, sock_read=2.0) as raw_client:
            with pytest.raises(ProviderError) as raised:
                await complete(raw_client, "openai", f"http://127.0.0.1:{port}/v1", API_KEY, make_request())
    finally:
        server.close()
        await server.wait_closed()

    assert type(raised.value) is ProviderError
    assert raised.value.message.startswith("openai: request failed")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("anthropic", "anthropic: authentication_error: invalid x-api-key (HTTP 401)"),
        ("openai", "openai: invalid_request_error: invalid x-api-key (HTTP 401)"),
        ("mistral", "mistral: invalid x-api-key (HTTP 401)"),
        ("google", "google: UNAUTHENTICATED: invalid x-api-key (HTTP 401)"),
        ("meta", "meta: invalid_request_error: invalid x-api-key (HTTP 401)"),
    ],
)
async def test_provider_rejecting_the_key_is_provider_error_with_its_message(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, expected: str
) -> None:
    fake.script(provider, Failure(401, "invalid x-api-key"))

    with pytest.raises(ProviderError) as raised:
        await call(client, fake, provider)

    assert type(raised.value) is ProviderError
    assert raised.value.message == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_provider_server_error_is_provider_error(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str
) -> None:
    fake.script(provider, Failure(500, "The server had an error processing your request."))

    with pytest.raises(ProviderError) as raised:
        await call(client, fake, provider)

    assert raised.value.message.startswith(f"{provider}: ")
    assert "The server had an error processing your request. (HTTP 500)" in raised.value.message


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [
        {"object": "error", "message": "Invalid model: foo", "type": "invalid_model", "param": None, "code": "1500"},
        {"message": "Invalid model: foo", "request_id": "abc"},
        {"detail": "Invalid model: foo"},
        {"detail": [{"loc": ["body", "model"], "msg": "Invalid model: foo", "type": "value_error"}]},
    ],
)
async def test_mistral_error_forms_all_yield_its_message(
    client: aiohttp.ClientSession, fake: FakeProviders, body: dict[str, Any]
) -> None:
    fake.script("mistral", Raw(400, body))

    with pytest.raises(ProviderError) as raised:
        await call(client, fake, "mistral")

    assert raised.value.message.startswith("mistral: ")
    assert "Invalid model: foo (HTTP 400)" in raised.value.message


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_malformed_json_is_provider_error(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str
) -> None:
    fake.script(provider, malformed())

    with pytest.raises(ProviderError) as raised:
        await call(client, fake, provider)

    assert raised.value.message == f"{provider}: response is not JSON (HTTP 200)"


@pytest.mark.asyncio
async def test_non_json_error_page_is_provider_error_with_status(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    fake.script("anthropic", Raw(502, "<html>Bad Gateway</html>", {"content-type": "text/html"}))

    with pytest.raises(ProviderError) as raised:
        await call(client, fake, "anthropic")

    assert raised.value.message == "anthropic: Bad Gateway (HTTP 502)"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "body", "reason"),
    [
        ("openai", {"model": "m", "choices": [{"message": {"content": "Hi"}}]}, "missing field 'usage'"),
        ("openai", {"model": "m", "choices": [], "usage": {}}, "list index out of range"),
        ("anthropic", {"content": [{"type": "text", "text": "Hi"}]}, "missing field 'usage'"),
        ("google", {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}, "missing field 'usageMetadata'"),
        (
            "anthropic",
            {"content": [], "usage": {"input_tokens": "12", "output_tokens": 3}},
            "can only concatenate str",
        ),
        (
            "openai",
            {"choices": [{"message": {"content": "Hi"}}], "usage": {"prompt_tokens": -1, "completion_tokens": 3}},
            "not a non-negative integer",
        ),
    ],
)
async def test_unusable_success_body_is_provider_error(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, body: dict[str, Any], reason: str
) -> None:
    fake.script(provider, Raw(200, body))

    with pytest.raises(ProviderError) as raised:
        await call(client, fake, provider)

    assert raised.value.message.startswith(f"{provider}: unexpected response: ")
    assert reason in raised.value.message


@pytest.mark.asyncio
async def test_google_blocked_prompt_is_provider_error(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8}}
    fake.script("google", Raw(200, body))

    with pytest.raises(ProviderError) as raised:
        await call(client, fake, "google")

    assert raised.value.message == "google: unexpected response: no candidates (prompt blocked: SAFETY)"


@pytest.mark.asyncio
async def test_key_echoed_by_provider_is_scrubbed(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    fake.script("openai", Failure(401, f"Incorrect API key provided: {API_KEY}. Check your key."))

    with pytest.raises(ProviderError) as raised:
        await call(client, fake, "openai")

    assert API_KEY not in str(raised.value)
    assert raised.value.message == (
        "openai: invalid_request_error: Incorrect API key provided: [redacted]. Check your key. (HTTP 401)"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "echo",
    [
        f"{API_KEY[:12]}****************{API_KEY[-4:]}",  # masked, as OpenAI does
        API_KEY[:20],  # a cut-off prefix
    ],
)
async def test_partial_key_echoed_by_provider_is_scrubbed(
    client: aiohttp.ClientSession, fake: FakeProviders, echo: str
) -> None:
    fake.script("mistral", Failure(401, f"Key '{echo}' is not valid"))

    with pytest.raises(ProviderError) as raised:
        await call(client, fake, "mistral")

    assert raised.value.message == "mistral: Key '[redacted]' is not valid (HTTP 401)"
    assert API_KEY[:12] not in raised.value.message


@pytest.mark.asyncio
async def test_key_in_rate_limit_message_is_scrubbed(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    fake.script("anthropic", Failure(429, f"Too many requests for key {API_KEY}", retry_after="1"))

    with pytest.raises(ProviderRateLimited) as raised:
        await call(client, fake, "anthropic")

    assert API_KEY not in raised.value.message
    assert "[redacted]" in raised.value.message


# --- the fake on its own ------------------------------------------------------------


def test_fake_runs_standalone_serving_openai_compatible_success() -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.providers", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/openai/v1/chat/completions"
        payload = {"model": "bench-model", "messages": [{"role": "user", "content": "Hi"}]}
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.post(url, json=payload, timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert response.status_code == 200
        body = response.json()
        assert body["model"] == "bench-model"
        assert body["choices"][0]["message"]["content"] == "Hello from the fake provider."
        assert body["usage"]["prompt_tokens"] == 12
    finally:
        server.terminate()
        server.wait(10)
