"""Fake LLM provider servers speaking each provider's documented wire format.

One aiohttp server on 127.0.0.1 serves all five providers under their own path
prefix (see `FakeProviders.base_url`). Each provider answers from a queue of scripted
replies and falls back to a valid success that echoes the requested model.

    with FakeProviders() as fake:              # or: async with FakeProviders() as fake
        fake.script("anthropic", overloaded(), Success(content="hi", usage={"cache_read_input_tokens": 5}))
        ...  # point the client at fake.base_url("anthropic")
        fake.requests_for("anthropic")[0].headers["x-api-key"]

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
class Raw:
    """Exactly this response: bytes/str bodies are sent as-is, anything else as JSON."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


Reply = Success | Failure | Raw


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

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            for queue in self._queues.values():
                queue.clear()


# --- success bodies -----------------------------------------------------------------


def _merged(defaults: dict[str, Any], overrides: Mapping[str, Any], total: tuple[str, str, str] | None) -> Any:
    usage = {**defaults, **overrides}
    if total and total[2] not in overrides and all(isinstance(usage.get(k), int) for k in total[:2]):
        usage[total[2]] = usage[total[0]] + usage[total[1]]
    return usage


def _anthropic_success(reply: Success, model: str) -> Any:
    content: list[dict[str, Any]] = []
    if reply.thinking is not None:
        content.append({"type": "thinking", "thinking": reply.thinking, "signature": "fake-signature"})
    content.append({"type": "text", "text": reply.content})
    usage = {"input_tokens": 12, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _merged(usage, reply.usage, None),
    }


def _chat_success(provider: str, reply: Success, model: str) -> Any:
    content: Any = reply.content
    if provider == "mistral" and reply.thinking is not None:
        content = [
            {"type": "thinking", "thinking": [{"type": "text", "text": reply.thinking}]},
            {"type": "text", "text": reply.content},
        ]
    usage: dict[str, Any] = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
    if provider == "openai":
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": _merged(usage, reply.usage, ("prompt_tokens", "completion_tokens", "total_tokens")),
    }


def _google_success(reply: Success, model: str) -> Any:
    parts: list[dict[str, Any]] = []
    if reply.thinking is not None:
        parts.append({"text": reply.thinking, "thought": True})
    parts.append({"text": reply.content})
    usage = {"promptTokenCount": 12, "candidatesTokenCount": 7, "totalTokenCount": 19}
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": _merged(usage, reply.usage, ("promptTokenCount", "candidatesTokenCount", "totalTokenCount")),
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


# --- server -------------------------------------------------------------------------


def _response(provider: str, reply: Reply, model: str) -> web.Response:
    if isinstance(reply, Raw):
        body = reply.body if isinstance(reply.body, bytes | str) else json.dumps(reply.body)
        headers = {"content-type": "application/json", **reply.headers}
        return web.Response(status=reply.status, body=body.encode() if isinstance(body, str) else body, headers=headers)
    if isinstance(reply, Success):
        return web.json_response(_success_body(provider, reply, reply.model or model))
    headers = {"retry-after": reply.retry_after} if reply.retry_after is not None else {}
    return web.json_response(_error_body(provider, reply), status=reply.status, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _handler(state: _State, provider: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if state.record:
            headers = {name.lower(): value for name, value in request.headers.items()}
            path, query = request.rel_url.raw_path, request.query_string
            state.add(RecordedRequest(provider, request.method, path, query, headers, body))
        if provider == "google":
            model, _, method = request.match_info["target"].rpartition(":")
            if method != "generateContent":
                return _response(provider, Failure(404, f"Method {method!r} not found."), model)
        else:
            model = body.get("model", "") if isinstance(body, dict) else ""
        reply = state.next_reply(provider)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return _response(provider, reply, str(model))

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
