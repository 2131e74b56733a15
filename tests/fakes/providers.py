"""Fake LLM provider servers speaking each provider's documented wire format.

One aiohttp server on 127.0.0.1 serves all five providers under their own path
prefix (see `FakeProviders.base_url`). Each provider answers from a queue of scripted
replies and falls back to a valid success that echoes the requested model.

    with FakeProviders() as fake:              # or: async with FakeProviders() as fake
        fake.script("anthropic", overloaded(), Success(content="hi", usage={"cache_read_input_tokens": 5}))
        ...  # point the client at fake.base_url("anthropic")
        fake.requests_for("anthropic")[0].headers["x-api-key"]

A streaming request (`"stream": true`, or Gemini's `:streamGenerateContent?alt=sse`) is
answered in the provider's documented event-stream format: a Success as a stream of a few
chunks, a `Stream` as scripted (chunking, pauses, a cut connection, an in-stream error), a
Failure as the same HTTP error as without streaming, a Raw as given. Like the real API,
Mistral refuses OpenAI's `stream_options` (422, extra_forbidden).

    fake.script("openai", Stream(content="Hello there", chunks=4, interval=0.1, cut_after=2))
    fake.stream_disconnects  # the streaming requests whose client went away mid-stream

Standalone, for benchmarks (every provider answers the default success):

    python -m tests.fakes.providers --port 8089 [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.background import BackgroundServer

PROVIDERS = ("anthropic", "openai", "mistral", "google", "meta")
# Path prefixes mirror the real base URLs' paths, so base_url() works like DEFAULT_BASE_URLS.
PREFIXES = {
    "anthropic": "/anthropic",
    "openai": "/openai/v1",
    "mistral": "/mistral/v1",
    "google": "/google/v1beta",
    "meta": "/meta/compat/v1",
}
DEFAULT_CONTENT = "Hello from the fake provider."


@dataclass(frozen=True)
class Success:
    """A valid completion in the provider's format.

    `usage` is merged over the provider's default usage object, in the provider's own
    field names (e.g. {"cache_read_input_tokens": 5} for anthropic). `thinking` adds a
    reasoning block before the answer: anthropic thinking block, gemini thought part,
    mistral thinking chunk (ignored for openai and meta). `model` overrides the
    reported model, which otherwise echoes the request.
    """

    content: str = DEFAULT_CONTENT
    usage: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    thinking: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Failure:
    """An HTTP error with the provider's documented error body.

    `error_type` overrides the provider's error type/status (defaults follow the HTTP
    status). `retry_after` is sent as the retry-after header and, for google, also as
    a google.rpc.RetryInfo detail.
    """

    status: int
    message: str = "fake provider error"
    error_type: str | None = None
    retry_after: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class Stream:
    """A success streamed in the provider's documented format (a non-streaming request gets the
    equivalent Success).

    `content` goes out in `chunks` pieces, `interval` seconds apart; `usage`, `model`, `thinking`
    and `delay` are as in Success. The usage goes where each provider documents it: OpenAI and
    Meta in a last chunk without choices, only if the request's stream_options.include_usage is
    true; Mistral in its last content chunk; Anthropic's input counts in message_start (with
    output_tokens 1) and the cumulative output count in message_delta; Gemini's running totals on
    every chunk, the call's on the last. `report_usage=False` leaves it out wherever the format
    allows (not Anthropic). Anthropic's stream has a `ping` before its first text delta.

    After `cut_after` content pieces the connection is closed without the terminal event; after
    `error_after` pieces the stream ends with `error` as an in-stream error: Anthropic's `event:
    error`, Gemini's `{"error": ...}` chunk, OpenAI's `{"error": ...}` chunk for the other three.
    """

    content: str = DEFAULT_CONTENT
    chunks: int = 3
    usage: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    thinking: str | None = None
    report_usage: bool = True
    interval: float = 0.0
    cut_after: int | None = None
    error_after: int | None = None
    error: Failure = field(default_factory=lambda: overloaded())
    delay: float = 0.0


@dataclass(frozen=True)
class Raw:
    """Exactly this response: bytes/str bodies are sent as-is, anything else as JSON."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


Reply = Success | Failure | Raw | Stream


def overloaded() -> Failure:
    """Anthropic's 529 overloaded_error."""
    return Failure(529, "Overloaded", error_type="overloaded_error")


def rate_limited(retry_after: str | None = "7") -> Failure:
    """A 429 in the provider's format, with this retry-after (seconds or HTTP-date)."""
    return Failure(429, "Rate limit exceeded, please slow down.", retry_after=retry_after)


def malformed() -> Raw:
    """A 200 whose JSON body is cut short."""
    return Raw(200, b'{"id": "truncated", "choices": [', {"content-type": "application/json"})


def slow(seconds: float, reply: Reply | None = None) -> Reply:
    """`reply` (default: a success), sent only after `seconds`."""
    return dataclasses.replace(reply or Success(), delay=seconds)


@dataclass(frozen=True)
class RecordedRequest:
    provider: str
    method: str
    path: str  # as sent, still percent-encoded
    query: str  # raw query string, "" when none
    headers: Mapping[str, str]  # names lower-cased
    json: Any  # None when the body is not JSON


class _State:
    """Scripts and records, shared between the test thread and the server thread."""

    def __init__(self, record: bool, default_delay: float = 0.0) -> None:
        self.record = record
        self.default_delay = default_delay
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Reply]] = {p: deque() for p in PROVIDERS}
        self._requests: list[RecordedRequest] = []
        self._disconnects: list[RecordedRequest] = []

    def script(self, provider: str, replies: tuple[Reply, ...]) -> None:
        with self._lock:
            self._queues[provider].extend(replies)

    def next_reply(self, provider: str) -> Reply:
        with self._lock:
            queue = self._queues[provider]
            return queue.popleft() if queue else Success(delay=self.default_delay)

    def add(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def add_disconnect(self, request: RecordedRequest) -> None:
        with self._lock:
            self._disconnects.append(request)

    def disconnects(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._disconnects)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._disconnects.clear()
            for queue in self._queues.values():
                queue.clear()


# --- success bodies -----------------------------------------------------------------


def _merged(defaults: dict[str, Any], overrides: Mapping[str, Any], total: tuple[str, str, str] | None) -> Any:
    usage = {**defaults, **overrides}
    if total and total[2] not in overrides and all(isinstance(usage.get(k), int) for k in total[:2]):
        usage[total[2]] = usage[total[0]] + usage[total[1]]
    return usage


_ANTHROPIC_USAGE = {
    "input_tokens": 12,
    "output_tokens": 7,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


def _anthropic_success(reply: Success, model: str) -> Any:
    content: list[dict[str, Any]] = []
    if reply.thinking is not None:
        content.append({"type": "thinking", "thinking": reply.thinking, "signature": "fake-signature"})
    content.append({"type": "text", "text": reply.content})
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _merged(_ANTHROPIC_USAGE, reply.usage, None),
    }


def _chat_usage(provider: str, overrides: Mapping[str, Any]) -> Any:
    usage: dict[str, Any] = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
    if provider == "openai":
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0}
    return _merged(usage, overrides, ("prompt_tokens", "completion_tokens", "total_tokens"))


def _mistral_thinking(thinking: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": [{"type": "text", "text": thinking}]}


def _chat_success(provider: str, reply: Success, model: str) -> Any:
    content: Any = reply.content
    if provider == "mistral" and reply.thinking is not None:
        content = [_mistral_thinking(reply.thinking), {"type": "text", "text": reply.content}]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": _chat_usage(provider, reply.usage),
    }


def _google_usage(overrides: Mapping[str, Any]) -> Any:
    usage = {"promptTokenCount": 12, "candidatesTokenCount": 7, "totalTokenCount": 19}
    return _merged(usage, overrides, ("promptTokenCount", "candidatesTokenCount", "totalTokenCount"))


def _google_success(reply: Success, model: str) -> Any:
    parts: list[dict[str, Any]] = []
    if reply.thinking is not None:
        parts.append({"text": reply.thinking, "thought": True})
    parts.append({"text": reply.content})
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": _google_usage(reply.usage),
        "modelVersion": model,
        "responseId": "fake-response",
    }


def _success_body(provider: str, reply: Success, model: str) -> Any:
    if provider == "anthropic":
        return _anthropic_success(reply, model)
    if provider == "google":
        return _google_success(reply, model)
    return _chat_success(provider, reply, model)


# --- error bodies -------------------------------------------------------------------

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {429: "requests", 500: "server_error", 503: "server_error"}
_OPENAI_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}
_GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _error_body(provider: str, reply: Failure) -> Any:
    status, message = reply.status, reply.message
    if provider == "anthropic":
        kind = reply.error_type or _ANTHROPIC_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    if provider == "google":
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": reply.error_type or _GOOGLE_STATUSES.get(status, "UNKNOWN"),
        }
        if reply.retry_after is not None:
            retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{reply.retry_after}s"}
            error["details"] = [retry]
        return {"error": error}
    if provider == "mistral":
        if status == 401:  # Mistral's gateway answers auth failures without the error envelope
            return {"message": message, "request_id": "fake-request"}
        kind = reply.error_type or "invalid_request_error"
        return {"object": "error", "message": message, "type": kind, "param": None, "code": None}
    kind = reply.error_type or _OPENAI_TYPES.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": _OPENAI_CODES.get(status)}}


# --- event streams ------------------------------------------------------------------


@dataclass(frozen=True)
class _Frames:
    """One stream's events, already framed: those before the content, one per content piece
    (`cut_after` and `error_after` count these), and the terminal ones."""

    head: list[bytes]
    pieces: list[bytes]
    tail: list[bytes]


def _split(content: str, chunks: int) -> list[str]:
    chunks = max(chunks, 1)
    return [content[len(content) * i // chunks : len(content) * (i + 1) // chunks] for i in range(chunks)]


def _data(payload: Any, end: bytes = b"\n\n") -> bytes:
    return b"data: " + json.dumps(payload).encode() + end


def _event(payload: Any) -> bytes:
    return f"event: {payload['type']}\n".encode() + _data(payload)


def _chat_frames(provider: str, reply: Stream, model: str, include_usage: bool) -> _Frames:
    created = int(time.time())
    # With include_usage, OpenAI documents `"usage": null` on every chunk but the usage chunk.
    null_usage = {"usage": None} if include_usage and provider != "mistral" else {}

    def chunk(choices: list[Any], **extra: Any) -> bytes:
        envelope = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model}
        return _data({**envelope, "choices": choices, **null_usage, **extra})

    def choice(delta: dict[str, Any], finish_reason: str | None = None) -> list[Any]:
        return [{"index": 0, "delta": delta, "finish_reason": finish_reason}]

    usage = _chat_usage(provider, reply.usage)
    head = [chunk(choice({"role": "assistant", "content": ""}))]
    if provider == "mistral" and reply.thinking is not None:
        head.append(chunk(choice({"content": [_mistral_thinking(reply.thinking)]})))
    texts = _split(reply.content, reply.chunks)
    pieces = [chunk(choice({"content": text})) for text in texts]
    if provider == "mistral":
        # Mistral ends with its last content chunk, which carries the finish reason and the usage.
        usage_field = {"usage": usage} if reply.report_usage else {}
        pieces[-1] = chunk(choice({"content": texts[-1]}, "stop"), **usage_field)
        tail = [b"data: [DONE]\n\n"]
    else:
        tail = [chunk(choice({}, "stop"))]
        if include_usage and reply.report_usage:
            tail.append(chunk([], usage=usage))
        tail.append(b"data: [DONE]\n\n")
    return _Frames(head, pieces, tail)


def _anthropic_frames(reply: Stream, model: str) -> _Frames:
    usage = _merged(_ANTHROPIC_USAGE, reply.usage, None)
    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    head = [_event({"type": "message_start", "message": message})]
    index = 0
    if reply.thinking is not None:
        head += [
            _event({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            _event(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": reply.thinking},
                }
            ),
            _event(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "fake"}}
            ),
            _event({"type": "content_block_stop", "index": 0}),
        ]
        index = 1
    head += [
        _event({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        _event({"type": "ping"}),
    ]
    pieces = [
        _event({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})
        for text in _split(reply.content, reply.chunks)
    ]
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    tail = [
        _event({"type": "content_block_stop", "index": index}),
        _event({"type": "message_delta", "delta": stop, "usage": {"output_tokens": usage.get("output_tokens")}}),
        _event({"type": "message_stop"}),
    ]
    return _Frames(head, pieces, tail)


def _google_frames(reply: Stream, model: str) -> _Frames:
    usage = _google_usage(reply.usage)
    texts = _split(reply.content, reply.chunks)

    def chunk(parts: list[Any], sent: int, finish_reason: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish_reason is not None:
            candidate["finishReason"] = finish_reason
        body: dict[str, Any] = {"candidates": [candidate]}
        if reply.report_usage:
            body["usageMetadata"] = _google_running_usage(usage, sent, len(texts))
        # Gemini frames its events with CRLF.
        return _data({**body, "modelVersion": model, "responseId": "fake-response"}, b"\r\n\r\n")

    head = [chunk([{"text": reply.thinking, "thought": True}], 0)] if reply.thinking is not None else []
    pieces = [
        chunk([{"text": text}], sent, "STOP" if sent == len(texts) else None)
        for sent, text in enumerate(texts, start=1)
    ]
    return _Frames(head, pieces, [])


def _google_running_usage(usage: Any, sent: int, total: int) -> Any:
    """The running totals after `sent` of `total` pieces: the call's once all are sent."""
    prompt, candidates = usage.get("promptTokenCount"), usage.get("candidatesTokenCount")
    if sent == total or not isinstance(prompt, int) or not isinstance(candidates, int):
        return usage
    so_far = candidates * sent // total
    return {**usage, "candidatesTokenCount": so_far, "totalTokenCount": prompt + so_far}


def _stream_frames(provider: str, reply: Stream, model: str, include_usage: bool) -> _Frames:
    if provider == "anthropic":
        return _anthropic_frames(reply, model)
    if provider == "google":
        return _google_frames(reply, model)
    return _chat_frames(provider, reply, model, include_usage)


def _stream_error(provider: str, failure: Failure) -> bytes:
    if provider == "anthropic":
        return _event(_error_body(provider, failure))
    if provider == "google":
        return _data(_error_body(provider, failure), b"\r\n\r\n")
    return _data(_error_body("openai", failure))


async def _stream(request: web.Request, provider: str, reply: Stream, frames: _Frames) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await response.prepare(request)
    for frame in frames.head:
        await response.write(frame)
    count = len(frames.pieces)
    cut = count + 1 if reply.cut_after is None else min(reply.cut_after, count)
    error = count + 1 if reply.error_after is None else min(reply.error_after, count)
    for sent, frame in enumerate(frames.pieces[: min(cut, error)]):
        if sent and reply.interval:
            await asyncio.sleep(reply.interval)
        await response.write(frame)
    if cut <= min(error, count):
        assert request.transport is not None
        request.transport.close()  # mid-body: the client sees the connection drop
        return response
    for frame in [_stream_error(provider, reply.error)] if error <= count else frames.tail:
        await response.write(frame)
    await response.write_eof()
    return response


# --- server -------------------------------------------------------------------------


def _response(provider: str, reply: Reply, model: str) -> web.Response:
    if isinstance(reply, Stream):
        reply = Success(reply.content, reply.usage, reply.model, reply.thinking, reply.delay)
    if isinstance(reply, Raw):
        body = reply.body if isinstance(reply.body, bytes | str) else json.dumps(reply.body)
        headers = {"content-type": "application/json", **reply.headers}
        return web.Response(status=reply.status, body=body.encode() if isinstance(body, str) else body, headers=headers)
    if isinstance(reply, Success):
        return web.json_response(_success_body(provider, reply, reply.model or model))
    headers = {"retry-after": reply.retry_after} if reply.retry_after is not None else {}
    return web.json_response(_error_body(provider, reply), status=reply.status, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Mistral's answer to OpenAI's stream_options, which its API does not accept.
_MISTRAL_EXTRA_FORBIDDEN = Raw(
    422,
    {
        "object": "error",
        "message": {
            "detail": [
                {
                    "type": "extra_forbidden",
                    "loc": ["body", "stream_options"],
                    "msg": "Extra inputs are not permitted",
                    "input": {"include_usage": True},
                }
            ]
        },
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    },
)


def _handler(state: _State, provider: str) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        recorded = None
        if state.record:
            headers = {name.lower(): value for name, value in request.headers.items()}
            path, query = request.rel_url.raw_path, request.query_string
            recorded = RecordedRequest(provider, request.method, path, query, headers, body)
            state.add(recorded)
        options = body.get("stream_options") if isinstance(body, dict) else None
        if provider == "google":
            model, _, method = request.match_info["target"].rpartition(":")
            streaming = method == "streamGenerateContent" and request.query.get("alt") == "sse"
            if method != "generateContent" and not streaming:
                return _response(provider, Failure(404, f"Method {method!r} not found."), model)
        else:
            model = body.get("model", "") if isinstance(body, dict) else ""
            streaming = isinstance(body, dict) and body.get("stream") is True
            if provider == "mistral" and options is not None:
                return _response(provider, _MISTRAL_EXTRA_FORBIDDEN, str(model))
        reply = state.next_reply(provider)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if streaming and isinstance(reply, Success):
            reply = Stream(reply.content, usage=reply.usage, model=reply.model, thinking=reply.thinking)
        if not (streaming and isinstance(reply, Stream)):
            return _response(provider, reply, str(model))
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        frames = _stream_frames(provider, reply, reply.model or str(model), include_usage)
        try:
            return await _stream(request, provider, reply, frames)
        # The client went away mid-stream: a write failed, or (handler_cancellation) the handler was cancelled.
        except (ConnectionResetError, asyncio.CancelledError):
            if recorded is not None:
                state.add_disconnect(recorded)
            raise

    return handle


def build_app(state: _State) -> web.Application:
    app = web.Application()
    app.router.add_post(f"{PREFIXES['anthropic']}/v1/messages", _handler(state, "anthropic"))
    for provider in ("openai", "mistral", "meta"):
        app.router.add_post(f"{PREFIXES[provider]}/chat/completions", _handler(state, provider))
    app.router.add_post(f"{PREFIXES['google']}/models/{{target}}", _handler(state, "google"))
    return app


class FakeProviders(BackgroundServer):
    """All five fake providers on one 127.0.0.1 port, served from a background thread.

    Usable as a sync or async context manager; the server has its own event loop, so
    it keeps answering while a test's loop is blocked in a client call.
    """

    thread_name = "fake-providers"
    # Cancelling handlers on disconnect ends delayed replies once the client gives up.
    runner_options = {"handler_cancellation": True}  # noqa: RUF012

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._state = _State(record=True)

    def base_url(self, provider: str) -> str:
        return f"http://{self._host}:{self.port}{PREFIXES[provider]}"

    def script(self, provider: str, *replies: Reply) -> None:
        """Queue the next replies of `provider`; once used up, it answers Success()."""
        if provider not in PREFIXES:
            raise ValueError(f"unknown provider {provider!r}")
        self._state.script(provider, replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._state.requests()

    def requests_for(self, provider: str) -> list[RecordedRequest]:
        return [r for r in self._state.requests() if r.provider == provider]

    @property
    def stream_disconnects(self) -> list[RecordedRequest]:
        """The streaming requests whose client closed the connection before the stream ended."""
        return self._state.disconnects()

    def reset(self) -> None:
        """Forget recorded requests and unused scripted replies."""
        self._state.reset()

    def build_app(self) -> web.Application:
        return build_app(self._state)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve fake LLM providers that always succeed.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each answer")
    args = parser.parse_args(argv)
    for provider, prefix in PREFIXES.items():
        print(f"{provider}: http://{args.host}:{args.port}{prefix}", flush=True)
    state = _State(record=False, default_delay=args.latency)
    web.run_app(build_app(state), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
