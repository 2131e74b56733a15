"""Streamed completions, exercised through real HTTP against the fake providers' event streams."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import BadRequest, ConfigError, ProviderError, ProviderTimeout, UnsupportedSetting
from gateway.providers import PROVIDERS, ChatMessage, CompletionRequest, Usage, complete
from gateway.providers.streaming import ProviderStream, ServerSentEvent, SSEDecoder, open_stream
from tests.fakes.providers import Failure, FakeProviders, Raw, Stream, Success, overloaded, rate_limited, slow
from tests.py.test_provider_harness import API_KEY, session

pytest_plugins = ["tests.py.test_provider_harness"]  # its fixtures: fake, tls, client

CONTENT = "Streamed in pieces: é€😀 done."


def make_request(model: str = "test-model", settings: Mapping[str, Any] | None = None) -> CompletionRequest:
    return CompletionRequest(
        model=model, messages=(ChatMessage("user", "Hello?"),), system=None, settings=settings or {}
    )


def stream_of(
    client: aiohttp.ClientSession,
    fake: FakeProviders,
    provider: str,
    request: CompletionRequest | None = None,
    seconds: float | None = None,
) -> ProviderStream:
    return open_stream(client, provider, fake.base_url(provider), API_KEY, request or make_request(), seconds=seconds)


async def drain(stream: ProviderStream) -> tuple[list[str], ProviderError | None]:
    """The deltas received, and the error that ended the stream if one did."""
    deltas: list[str] = []
    try:
        async with stream:
            async for delta in stream:
                deltas.append(delta.content)
    except ProviderError as exc:
        return deltas, exc
    return deltas, None


async def disconnects(fake: FakeProviders, count: int = 1) -> int:
    """The number of streams the fake saw abandoned, once `count` are or after two seconds."""
    for _ in range(100):
        if len(fake.stream_disconnects) >= count:
            break
        await asyncio.sleep(0.02)
    return len(fake.stream_disconnects)


def sse(*frames: str) -> Raw:
    return Raw(200, "".join(frames).encode(), {"content-type": "text/event-stream"})


def sse_data(payload: Any) -> str:
    return f"data: {json.dumps(payload)}\r\n\r\n"


def chat_chunk(content: str | None = None, **extra: Any) -> str:
    choices = [] if content is None else [{"index": 0, "delta": {"content": content}, "finish_reason": None}]
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices, **extra}
    return f"data: {json.dumps(body)}\n\n"


def anthropic_event(payload: dict[str, Any]) -> str:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n"


ANTHROPIC_START = anthropic_event(
    {"type": "message_start", "message": {"model": "claude-x", "usage": {"input_tokens": 9, "output_tokens": 1}}}
)


def anthropic_text(text: str) -> str:
    return anthropic_event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})


def google_chunk(text: str, finish_reason: str | None = None, **extra: Any) -> str:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish_reason:
        candidate["finishReason"] = finish_reason
    return sse_data({"candidates": [candidate], **extra})


# --- the content and the usage --------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_deltas_join_into_the_scripted_content(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str
) -> None:
    fake.script(provider, Stream(content=CONTENT, chunks=5))

    stream = stream_of(client, fake, provider)
    deltas, error = await drain(stream)

    assert error is None
    assert len(deltas) == 5
    assert "".join(deltas) == CONTENT
    assert stream.text == CONTENT
    assert stream.finished


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "usage"),
    [
        (
            "anthropic",
            {
                "input_tokens": 10,
                "output_tokens": 20,
                "cache_read_input_tokens": 300,
                "cache_creation_input_tokens": 40,
            },
        ),
        (
            "openai",
            {
                "prompt_tokens": 2000,
                "completion_tokens": 900,
                "prompt_tokens_details": {"cached_tokens": 1536},
                "completion_tokens_details": {"reasoning_tokens": 640},
            },
        ),
        ("mistral", {"prompt_tokens": 44, "completion_tokens": 55}),
        (
            "google",
            {
                "promptTokenCount": 5000,
                "candidatesTokenCount": 40,
                "thoughtsTokenCount": 260,
                "cachedContentTokenCount": 4096,
            },
        ),
        ("meta", {"prompt_tokens": 21, "completion_tokens": 8}),
    ],
)
async def test_streamed_usage_and_model_equal_the_non_streamed_ones(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, usage: dict[str, Any]
) -> None:
    reply = Success(content=CONTENT, usage=usage, model="model-2026-01-01")
    fake.script(provider, reply, reply)
    completion = await complete(client, provider, fake.base_url(provider), API_KEY, make_request())

    stream = stream_of(client, fake, provider)
    await drain(stream)

    assert stream.usage == completion.usage
    assert stream.model == completion.model == "model-2026-01-01"
    assert stream.text == completion.content


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["anthropic", "google", "mistral"])
async def test_thinking_is_not_content(client: aiohttp.ClientSession, fake: FakeProviders, provider: str) -> None:
    fake.script(provider, Stream(content="The answer.", thinking="Internal reasoning."))

    stream = stream_of(client, fake, provider)
    deltas, error = await drain(stream)

    assert error is None
    assert "".join(deltas) == "The answer."


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["openai", "meta", "google"])
async def test_usage_is_none_when_the_provider_never_reports_it(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str
) -> None:
    fake.script(provider, Stream(report_usage=False))

    stream = stream_of(client, fake, provider)
    _, error = await drain(stream)

    assert error is None
    assert stream.finished
    assert stream.usage is None


@pytest.mark.asyncio
async def test_meta_usage_may_arrive_as_metrics(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    metrics = [
        {"metric": "num_completion_tokens", "value": 51, "unit": "tokens"},
        {"metric": "num_prompt_tokens", "value": 22.0, "unit": "tokens"},
    ]
    fake.script("meta", sse(chat_chunk("Hi"), chat_chunk(metrics=metrics), "data: [DONE]\n\n"))

    stream = stream_of(client, fake, "meta")
    deltas, error = await drain(stream)

    assert (deltas, error) == (["Hi"], None)
    assert stream.usage == Usage(input_tokens=22, output_tokens=51)


@pytest.mark.asyncio
async def test_openai_refusal_deltas_are_content_as_when_not_streamed(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    refusal = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"refusal": "I can't help."}}]}
    fake.script("openai", sse(f"data: {json.dumps(refusal)}\n\n", "data: [DONE]\n\n"))

    stream = stream_of(client, fake, "openai")
    deltas, error = await drain(stream)

    assert (deltas, error) == (["I can't help."], None)


@pytest.mark.asyncio
async def test_google_usage_is_the_last_reported_even_after_the_finish_reason(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    fake.script(
        "google",
        sse(
            google_chunk("Hel", usageMetadata={"promptTokenCount": 8, "candidatesTokenCount": 1}),
            google_chunk("lo", "STOP", usageMetadata={"promptTokenCount": 8, "candidatesTokenCount": 2}),
            sse_data({"usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2, "thoughtsTokenCount": 30}}),
        ),
    )

    stream = stream_of(client, fake, "google")
    deltas, error = await drain(stream)

    assert (deltas, error) == (["Hel", "lo"], None)
    assert stream.finished
    assert stream.usage == Usage(input_tokens=8, output_tokens=32, reasoning_tokens=30)


@pytest.mark.asyncio
async def test_anthropic_ping_and_unknown_events_are_ignored(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    fake.script(
        "anthropic",
        sse(
            ANTHROPIC_START,
            anthropic_event({"type": "ping"}),
            anthropic_text("Hi"),
            anthropic_event({"type": "ping"}),
            anthropic_event({"type": "some_future_event", "detail": 1}),
            anthropic_text(" there"),
            anthropic_event(
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}}
            ),
            anthropic_event({"type": "message_stop"}),
        ),
    )

    stream = stream_of(client, fake, "anthropic")
    deltas, error = await drain(stream)

    assert (deltas, error) == (["Hi", " there"], None)
    assert stream.usage == Usage(input_tokens=9, output_tokens=4)
    assert stream.model == "claude-x"


# --- the request on the wire ----------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "added"),
    [
        ("anthropic", {"stream": True}),
        ("openai", {"stream": True, "stream_options": {"include_usage": True}}),
        # Mistral rejects stream_options (422 extra_forbidden) and sends the usage anyway.
        ("mistral", {"stream": True}),
        ("meta", {"stream": True, "stream_options": {"include_usage": True}}),
    ],
)
async def test_streaming_request_is_the_plain_one_asking_for_a_stream(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, added: dict[str, Any]
) -> None:
    request = make_request(settings={"temperature": 0.5, "max_tokens": 64})
    await complete(client, provider, fake.base_url(provider), API_KEY, request)
    await drain(stream_of(client, fake, provider, request))

    plain, streamed = fake.requests
    assert streamed.path == plain.path
    assert streamed.json == {**plain.json, **added}
    assert streamed.headers["accept"] == "text/event-stream"
    key_header = "x-api-key" if provider == "anthropic" else "authorization"
    assert streamed.headers[key_header] == plain.headers[key_header]


@pytest.mark.asyncio
async def test_google_streams_from_stream_generate_content_as_sse(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    request = make_request(model="gemini-2.5-flash", settings={"temperature": 0.5})
    await complete(client, "google", fake.base_url("google"), API_KEY, request)
    await drain(stream_of(client, fake, "google", request))

    plain, streamed = fake.requests
    assert streamed.path == "/google/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert streamed.query == "alt=sse"
    assert streamed.json == plain.json
    assert streamed.headers["x-goog-api-key"] == API_KEY


@pytest.mark.asyncio
async def test_google_model_id_cannot_change_the_streaming_endpoint(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    await drain(stream_of(client, fake, "google", make_request(model="x:generateContent?alt=json")))

    [sent] = fake.requests
    assert sent.path == "/google/v1beta/models/x%3AgenerateContent%3Falt%3Djson:streamGenerateContent"
    assert sent.query == "alt=sse"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "request_", "error"),
    [
        ("cohere", make_request(), ConfigError),
        ("openai", CompletionRequest("m", (), None, {}), BadRequest),
        ("openai", make_request(settings={"top_k": 5}), UnsupportedSetting),
        ("anthropic", make_request(settings={"temperature": 1.5}), UnsupportedSetting),
        ("google", make_request(settings={"max_tokens": 1.5}), BadRequest),
    ],
)
async def test_invalid_requests_are_rejected_before_any_request(
    client: aiohttp.ClientSession,
    fake: FakeProviders,
    provider: str,
    request_: CompletionRequest,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        open_stream(client, provider, fake.base_url("openai"), API_KEY, request_)

    assert fake.requests == []


@pytest.mark.asyncio
async def test_missing_api_key_is_a_configuration_error(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    with pytest.raises(ConfigError):
        open_stream(client, "openai", fake.base_url("openai"), "", make_request())

    assert fake.requests == []


# --- errors before the stream ---------------------------------------------------------


ERRORS_BEFORE_THE_STREAM = [
    Failure(401, "invalid x-api-key"),
    Failure(401, f"Incorrect API key provided: {API_KEY}."),
    rate_limited(retry_after="7"),
    rate_limited(retry_after=None),
    Failure(503, "The service is unavailable."),
    Failure(400, "Bad request."),
    Raw(502, "<html>Bad Gateway</html>", {"content-type": "text/html"}),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("reply", ERRORS_BEFORE_THE_STREAM, ids=lambda r: f"{type(r).__name__}{r.status}")
async def test_http_error_before_the_stream_maps_exactly_as_without_streaming(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, reply: Failure | Raw
) -> None:
    fake.script(provider, reply, reply)
    with pytest.raises(ProviderError) as plain:
        await complete(client, provider, fake.base_url(provider), API_KEY, make_request())

    stream = stream_of(client, fake, provider)
    with pytest.raises(ProviderError) as streamed:
        async with stream:
            pass

    assert type(streamed.value) is type(plain.value)
    assert streamed.value.message == plain.value.message
    assert streamed.value.retryable == plain.value.retryable
    assert streamed.value.upstream_status == plain.value.upstream_status
    assert getattr(streamed.value, "retry_after", None) == getattr(plain.value, "retry_after", None)
    assert API_KEY not in streamed.value.message
    assert stream.text == ""
    assert not stream.finished


@pytest.mark.asyncio
async def test_anthropic_overloaded_before_the_stream_is_retryable(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    fake.script("anthropic", overloaded())

    with pytest.raises(ProviderError) as raised:
        async with stream_of(client, fake, "anthropic"):
            pass

    assert raised.value.retryable
    assert raised.value.upstream_status == 529


@pytest.mark.asyncio
async def test_rate_limit_before_the_stream_carries_retry_after(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    fake.script("google", rate_limited(retry_after="7"))

    with pytest.raises(ProviderError) as raised:
        async with stream_of(client, fake, "google"):
            pass

    assert raised.value.status == 429
    assert getattr(raised.value, "retry_after", None) == 7


@pytest.mark.asyncio
async def test_an_answer_that_is_not_an_event_stream_is_provider_error(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    fake.script("openai", Raw(200, {"choices": [{"message": {"content": "Hi"}}]}))

    with pytest.raises(ProviderError) as raised:
        async with stream_of(client, fake, "openai"):
            pass

    assert type(raised.value) is ProviderError
    assert raised.value.message.startswith("openai: ")


@pytest.mark.asyncio
async def test_connection_refused_is_retryable_provider_error(client: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with pytest.raises(ProviderError) as raised:
        async with open_stream(client, "mistral", f"http://127.0.0.1:{port}/v1", API_KEY, make_request()):
            pass

    assert type(raised.value) is ProviderError
    assert raised.value.retryable


@pytest.mark.asyncio
async def test_no_answer_within_the_read_timeout_is_provider_timeout(fake: FakeProviders, tls: ssl.SSLContext) -> None:
    fake.script("openai", slow(3.0))

    async with session(tls, sock_read=0.3) as short:
        with pytest.raises(ProviderTimeout):
            async with stream_of(short, fake, "openai"):
                pass


# --- errors during the stream ---------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "usage_so_far"),
    [
        # Anthropic reports the input tokens in message_start, Gemini running totals on every chunk.
        ("anthropic", Usage(input_tokens=12, output_tokens=1)),
        ("google", Usage(input_tokens=12, output_tokens=3)),
        ("openai", None),
        ("mistral", None),
        ("meta", None),
    ],
)
async def test_stream_cut_midway_is_retryable_error_after_the_deltas_received(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, usage_so_far: Usage | None
) -> None:
    fake.script(provider, Stream(content="abcdefgh", chunks=4, cut_after=2))

    stream = stream_of(client, fake, provider)
    deltas, error = await drain(stream)

    assert deltas == ["ab", "cd"]
    assert type(error) is ProviderError
    assert error.code == "provider_error"
    assert error.retryable
    assert error.message.startswith(f"{provider}: ")
    assert stream.text == "abcd"
    assert stream.usage == usage_so_far
    assert not stream.finished


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("openai", sse(chat_chunk("Hi"))),
        ("anthropic", sse(ANTHROPIC_START, anthropic_text("Hi"))),
        ("google", sse(google_chunk("Hi"))),
    ],
)
async def test_body_ending_before_the_terminal_event_is_a_cut_stream(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, body: Raw
) -> None:
    fake.script(provider, body)

    stream = stream_of(client, fake, provider)
    deltas, error = await drain(stream)

    assert deltas == ["Hi"]
    assert type(error) is ProviderError
    assert error.retryable
    assert not stream.finished


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error_type", "retryable"),
    [("overloaded_error", True), ("api_error", True), ("invalid_request_error", False)],
)
async def test_anthropic_error_event_is_provider_error_after_the_deltas_received(
    client: aiohttp.ClientSession, fake: FakeProviders, error_type: str, retryable: bool
) -> None:
    failure = Failure(529, f"Overloaded (key {API_KEY})", error_type=error_type)
    fake.script("anthropic", Stream(content="abcdef", chunks=3, error_after=1, error=failure))

    stream = stream_of(client, fake, "anthropic")
    deltas, error = await drain(stream)

    assert deltas == ["ab"]
    assert type(error) is ProviderError
    assert error.retryable is retryable
    assert error.upstream_status is None
    assert error.message.startswith(f"anthropic: {error_type}: ")
    assert API_KEY not in error.message
    assert stream.usage == Usage(input_tokens=12, output_tokens=1)
    assert not stream.finished


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", ["openai", "google"])
async def test_error_object_in_the_stream_is_retryable_provider_error(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str
) -> None:
    fake.script(provider, Stream(content="abcdef", chunks=3, error_after=2, error=Failure(500, "Server error")))

    deltas, error = await drain(stream_of(client, fake, provider))

    assert deltas == ["ab", "cd"]
    assert type(error) is ProviderError
    assert error.retryable
    assert "Server error" in error.message


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("openai", sse(chat_chunk("Hi"), "data: {not json\n\n", "data: [DONE]\n\n")),
        ("anthropic", sse(ANTHROPIC_START, anthropic_text("Hi"), "event: content_block_delta\ndata: [1, 2]\n\n")),
        ("google", sse(google_chunk("Hi"), 'data: {"candidates": \r\n\r\n')),
        ("meta", sse(chat_chunk("Hi"), chat_chunk(usage={"prompt_tokens": -1, "completion_tokens": 3}))),
    ],
)
async def test_unusable_event_is_provider_error_after_the_deltas_before_it(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str, body: Raw
) -> None:
    fake.script(provider, body)

    deltas, error = await drain(stream_of(client, fake, provider))

    assert deltas == ["Hi"]
    assert type(error) is ProviderError
    assert not error.retryable
    assert error.message.startswith(f"{provider}: ")


@pytest.mark.asyncio
async def test_google_blocked_prompt_is_provider_error_with_its_usage(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8}}
    fake.script("google", sse(sse_data(blocked)))

    stream = stream_of(client, fake, "google")
    deltas, error = await drain(stream)

    assert deltas == []
    assert type(error) is ProviderError
    assert "SAFETY" in error.message
    assert stream.usage == Usage(input_tokens=8, output_tokens=0)


@pytest.mark.asyncio
async def test_pause_between_chunks_longer_than_the_read_timeout_is_provider_timeout(
    fake: FakeProviders, tls: ssl.SSLContext
) -> None:
    fake.script("anthropic", Stream(content="abcdef", chunks=3, interval=2.0))

    async with session(tls, sock_read=0.3) as short:
        stream = stream_of(short, fake, "anthropic")
        deltas: list[str] = []
        with pytest.raises(ProviderTimeout):
            async with stream:
                async for delta in stream:
                    deltas.append(delta.content)

    assert deltas == ["ab"]
    assert stream.text == "ab"
    assert stream.usage == Usage(input_tokens=12, output_tokens=1)


@pytest.mark.asyncio
async def test_seconds_bounds_the_whole_stream(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    fake.script("openai", Stream(content="abcdefghij", chunks=10, interval=0.2))

    stream = stream_of(client, fake, "openai", seconds=0.5)
    deltas: list[str] = []
    with pytest.raises(ProviderTimeout):
        async with stream:
            async for delta in stream:
                deltas.append(delta.content)

    assert 1 <= len(deltas) < 10
    assert stream.text == "".join(deltas)


# --- closing ----------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_consumer_stopping_early_closes_the_upstream_connection(
    client: aiohttp.ClientSession, fake: FakeProviders, provider: str
) -> None:
    fake.script(provider, Stream(content="abcdefghij", chunks=10, interval=0.2))

    stream = stream_of(client, fake, provider)
    async with stream:
        async for _ in stream:
            break

    assert await disconnects(fake) == 1
    assert fake.stream_disconnects[0].provider == provider
    assert stream.text == "a"
    assert not stream.finished


@pytest.mark.asyncio
async def test_cancelled_consumer_closes_the_upstream_connection(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    fake.script("anthropic", Stream(content="abcdefghij", chunks=10, interval=0.2))
    stream = stream_of(client, fake, "anthropic")
    first = asyncio.Event()

    async def consume() -> None:
        async with stream:
            async for _ in stream:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await disconnects(fake) == 1
    assert stream.text.startswith("a")
    assert stream.usage == Usage(input_tokens=12, output_tokens=1)
    assert not stream.finished


@pytest.mark.asyncio
async def test_aclose_closes_the_upstream_connection(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    fake.script("google", Stream(content="abcdefghij", chunks=10, interval=0.2))

    stream = await stream_of(client, fake, "google").__aenter__()
    await anext(stream)
    await stream.aclose()

    assert await disconnects(fake) == 1
    assert [delta async for delta in stream] == []


@pytest.mark.asyncio
async def test_streams_read_to_their_end_are_not_disconnects(
    client: aiohttp.ClientSession, fake: FakeProviders
) -> None:
    for provider in PROVIDERS:
        fake.script(provider, Stream(chunks=3, interval=0.05))
        await drain(stream_of(client, fake, provider))

    await asyncio.sleep(0.2)
    assert fake.stream_disconnects == []


@pytest.mark.asyncio
async def test_iterating_before_entering_is_an_error(client: aiohttp.ClientSession, fake: FakeProviders) -> None:
    with pytest.raises(RuntimeError):
        await anext(stream_of(client, fake, "openai"))

    assert fake.requests == []


# --- the SSE decoder --------------------------------------------------------------------


def decode(*chunks: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def test_decoder_reads_fields_as_the_standard_says() -> None:
    stream = (
        b"\xef\xbb\xbf: a comment\n"
        b"event: first\ndata:  two spaces\ndata\ndata:x\nid: 7\nretry: 10\nunknown: field\n\n"
        b"event: no data\n\n"
        b"data: second\r\n\r\n"
        b"data: third\r\r"
        b"data: never dispatched"
    )

    assert decode(stream) == [
        ServerSentEvent("first", " two spaces\n\nx"),
        ServerSentEvent("message", "second"),
        ServerSentEvent("message", "third"),
    ]


def test_decoder_handles_a_crlf_split_across_chunks() -> None:
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\ndata: c\r\n\r\n") == [
        ServerSentEvent("message", "a\nb"),
        ServerSentEvent("message", "c"),
    ]


def test_decoder_handles_a_multibyte_character_split_across_chunks() -> None:
    raw = "data: é€😀\n\n".encode()

    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == [ServerSentEvent("message", "é€😀")]


LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r"])
VALUES = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12)
NAMES = st.text(st.characters(blacklist_characters="\r\n:", blacklist_categories=("Cs",)), min_size=1, max_size=8)


@st.composite
def event_streams(draw: st.DrawFn) -> tuple[bytes, list[ServerSentEvent]]:
    """A valid event stream, written in any of the ways the standard allows, and its events."""
    text, expected = "\ufeff" if draw(st.booleans()) else "", []
    for _ in range(draw(st.integers(0, 5))):
        lines = []
        if draw(st.booleans()):
            lines.append(":" + draw(VALUES))
        name = draw(st.one_of(st.just(""), NAMES))
        if name:
            lines.append(f"event: {name}")
        data = draw(st.lists(VALUES, max_size=3))
        for value in data:
            space = " " if value.startswith(" ") or draw(st.booleans()) else ""
            lines.append(f"data:{space}{value}" if value or draw(st.booleans()) else "data")
        if draw(st.booleans()):
            lines.append(f"id: {draw(NAMES)}")
        lines.append("")  # the blank line that dispatches
        for line in lines:
            end = draw(LINE_ENDS)
            # "\r" then "\n" is one CRLF: a blank line after a "\r" cannot end in "\n" alone.
            if not line and text.endswith("\r") and end == "\n":
                end = "\r"
            text += line + end
        if data:
            expected.append(ServerSentEvent(name or "message", "\n".join(data)))
    return text.encode(), expected


@given(event_streams(), st.data())
def test_any_split_of_an_event_stream_decodes_to_the_same_events(
    stream: tuple[bytes, list[ServerSentEvent]], data: st.DataObject
) -> None:
    raw, expected = stream
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=len(raw) + 1)))
    chunks = [raw[start:end] for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True)]

    assert decode(*chunks) == expected
    # One byte at a time cuts inside every \r\n and every multi-byte character.
    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == expected
