"""Streamed chat completions, each provider in its own documented streaming format.

    stream = open_stream(client, "anthropic", base_url, api_key, request, seconds=30.0)
    async with stream:  # sends the request: an HTTP error is raised here
        async for delta in stream:  # Delta(content=...), text as it arrives
            ...
    stream.text, stream.usage, stream.finished, stream.model  # whatever ended the iteration

`open_stream` validates everything before any I/O and raises what `complete` raises for it
(ConfigError, BadRequest, UnsupportedSetting). Entering the stream sends the request; an answer
other than 2xx raises exactly what `complete` raises for it (ProviderError, ProviderRateLimited,
ProviderTimeout), so a caller can still retry or fall back before anything reached its own client.
Iterating raises ProviderError (the stream was cut before its terminal event, an in-stream error
event, an unusable event) or ProviderTimeout, always after yielding every delta received before.
Leaving the `async with` in any way (end, break, exception, cancellation) closes the upstream
response; one not read to its end is closed, never returned to the connection pool.

After the iteration ends, for any reason:
  - `text`: the content yielded so far (reasoning/thinking text is never content);
  - `usage`: the latest usage the provider reported, partial when the stream was cut (Anthropic
    reports the input tokens first), None while it has reported none;
  - `finished`: the provider sent its terminal event (for Gemini: the body ended after a chunk
    with a finishReason);
  - `model`: the model the provider named, the requested one until it names one.

`SSEDecoder` turns the body into `ServerSentEvent`s, however it is cut into chunks.
"""

import codecs
import dataclasses
import json
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp
from yarl import URL

from gateway.errors import ProviderError, ProviderTimeout
from gateway.outbound_guard import OutboundBlocked
from gateway.providers import anthropic, google, openai_compatible
from gateway.providers.dispatch import (
    _JSON,
    _PARSE_ERRORS,
    PreparedCall,
    _explain,
    _message,
    _within,
    http_error,
    prepare,
    transport_error,
)
from gateway.providers.types import CompletionRequest, Usage, WireRequest

__all__ = ["Delta", "ProviderStream", "SSEDecoder", "ServerSentEvent", "open_stream"]

# No provider sends an event line near this long; a custom endpoint that does is not read further.
MAX_LINE = 1024 * 1024
# Anthropic's in-stream error types after which the same request may succeed.
_ANTHROPIC_RETRYABLE = frozenset({"overloaded_error", "api_error"})


@dataclass(frozen=True)
class Delta:
    content: str


@dataclass(frozen=True)
class ServerSentEvent:
    event: str  # "message" unless the stream named it
    data: str


class SSEDecoder:
    """Server-sent events from a body cut into chunks anywhere (WHATWG HTML, parsing an event stream).

    Lines end in \\r\\n, \\r or \\n; a line starting with ":" is a comment; a field without a colon has
    an empty value; one space after the colon is dropped; data lines join with \\n; a blank line
    dispatches the event, if it has data. `id` and `retry` are not needed here and are ignored, as is
    a last event that no blank line ends.
    """

    _LINE_END = re.compile(r"\r\n|\r|\n")

    def __init__(self) -> None:
        # Invalid UTF-8 becomes U+FFFD, as the standard says; a JSON event then fails to parse.
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False
        self._line = ""  # the unfinished last line
        self._after_cr = False  # the text so far ended in \r: a \n starting the next chunk belongs to it
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        events = []
        start = 0
        for end in self._LINE_END.finditer(text):
            event = self._process(self._line + text[start : end.start()])
            self._line = ""
            start = end.end()
            if event is not None:
                events.append(event)
        self._line += text[start:]
        if len(self._line) > MAX_LINE:
            raise ValueError(f"an event line longer than {MAX_LINE} characters")
        return events

    def _process(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event, self._data
        self._event, self._data = "", []
        return ServerSentEvent(event or "message", "\n".join(data)) if data else None


class _ErrorEvent(Exception):
    """The provider reported a failure inside the stream."""

    def __init__(self, detail: str | None, retryable: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


class _Reader:
    """Reads one provider's events. `read` returns the content an event carries ("" if none) and
    may raise _ErrorEvent or, on an unusable event, any of dispatch's _PARSE_ERRORS."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage: Usage | None = None
        self.done = False  # the terminal event was read
        self.ends_at_eof = False  # the end of the body is the terminal event (Gemini)

    def read(self, event: ServerSentEvent) -> str:
        raise NotImplementedError


class _ChatReader(_Reader):
    """OpenAI-style chat.completion.chunk events, ended by `data: [DONE]`."""

    def read(self, event: ServerSentEvent) -> str:
        if event.data == "[DONE]":
            self.done = True
            return ""
        chunk = _object(event.data)
        if chunk.get("error") is not None:
            # A failure after the 200, mid-generation: the request itself was accepted.
            raise _ErrorEvent(openai_compatible.error_message(chunk), retryable=True)
        self.model = _model(chunk.get("model"), self.model)
        # OpenAI sends the usage in a last chunk without choices, Mistral in its last content
        # chunk, the Llama API as `usage` or as `metrics`: the non-streamed parser reads them all.
        if chunk.get("usage") is not None or chunk.get("metrics") is not None:
            self.usage = openai_compatible._usage(chunk)
        choices = chunk.get("choices")
        return openai_compatible._message_text(choices[0]["delta"]) if choices else ""


class _AnthropicReader(_Reader):
    """Messages API events, from message_start to message_stop."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self._counts: dict[str, Any] = {}

    def read(self, event: ServerSentEvent) -> str:
        payload = _object(event.data)
        kind = payload["type"]
        if kind == "content_block_delta":
            delta = payload["delta"]
            # thinking_delta and signature_delta are reasoning, not content.
            return _string(delta["text"]) if delta["type"] == "text_delta" else ""
        if kind == "content_block_start":
            block = payload["content_block"]
            return _string(block.get("text", "")) if block["type"] == "text" else ""
        if kind == "message_start":
            message = payload["message"]
            self.model = _model(message.get("model"), self.model)
            self._count(message["usage"])
        elif kind == "message_delta":
            self._count(payload["usage"])
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            error = payload.get("error")
            error_type = error.get("type") if isinstance(error, dict) else None
            raise _ErrorEvent(anthropic.error_message(payload), retryable=error_type in _ANTHROPIC_RETRYABLE)
        # ping, content_block_stop and event types added later carry nothing to read.
        return ""

    def _count(self, usage: Mapping[str, Any]) -> None:
        # message_start has the input (and cache) counts; message_delta's counts are cumulative
        # and may leave out the ones it does not update.
        self._counts.update((name, value) for name, value in usage.items() if value is not None)
        # The non-streamed parser's arithmetic, so both paths bill alike.
        self.usage = anthropic.parse({"content": [], "usage": self._counts}, self.model).usage


class _GoogleReader(_Reader):
    """GenerateContentResponse chunks; the stream ends with the body, after a chunk with a finishReason."""

    def read(self, event: ServerSentEvent) -> str:
        chunk = _object(event.data)
        if chunk.get("error") is not None:
            raise _ErrorEvent(google.error_message(chunk), retryable=True)
        self.model = _model(chunk.get("modelVersion"), self.model)
        if chunk.get("usageMetadata") is not None:
            # Running totals on every chunk; the last are the call's. Read by the non-streamed parser.
            self.usage = google.parse({"candidates": [{}], "usageMetadata": chunk["usageMetadata"]}, self.model).usage
        candidates = chunk.get("candidates")
        if not candidates:
            reason = (chunk.get("promptFeedback") or {}).get("blockReason")
            if reason:
                raise ValueError(f"no candidates (prompt blocked: {reason})")
            return ""  # e.g. a last chunk with only usageMetadata
        candidate = candidates[0]
        if candidate.get("finishReason"):
            self.ends_at_eof = True
        parts = (candidate.get("content") or {}).get("parts") or []
        # Thought summaries are flagged with "thought": true and are not part of the answer.
        return "".join(part.get("text", "") for part in parts if not part.get("thought"))


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("text is not a string")
    return value


def _model(reported: Any, current: str) -> str:
    if reported is None or reported == "":
        return current
    if not isinstance(reported, str):
        raise TypeError("model is not a string")
    return reported


def _object(data: str) -> dict[str, Any]:
    try:
        payload = json.loads(data)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("not a JSON object")
    return payload


# What each provider's streaming request adds to its body, and how its events are read.
_STREAM_FIELDS: Mapping[str, Mapping[str, Any]] = {
    "anthropic": {"stream": True},
    "openai": {"stream": True, "stream_options": {"include_usage": True}},
    # Mistral rejects stream_options (422, extra_forbidden) and reports usage in its last chunk anyway.
    "mistral": {"stream": True},
    "google": {},
    "meta": {"stream": True, "stream_options": {"include_usage": True}},
}
_READERS: Mapping[str, Callable[[str], _Reader]] = {
    "anthropic": _AnthropicReader,
    "openai": _ChatReader,
    "mistral": _ChatReader,
    "google": _GoogleReader,
    "meta": _ChatReader,
}


def open_stream(
    client: aiohttp.ClientSession,
    provider: str,
    base_url: str,
    api_key: str,
    request: CompletionRequest,
    *,
    seconds: float | None = None,
) -> "ProviderStream":
    """A streamed completion on `provider`, validated but not yet sent: enter it with `async with`.

    The client's timeouts apply (its sock_read between chunks) and, when given, at most `seconds`
    in all, streaming included.
    """
    call = prepare(provider, base_url, api_key, request)
    wire = call.wire
    url = wire.url
    if provider == "google":
        # The same body as generateContent; alt=sse asks for server-sent events, not a JSON array.
        url = url.removesuffix(":generateContent") + ":streamGenerateContent?alt=sse"
    headers = {**wire.headers, "accept": "text/event-stream", "content-type": "application/json"}
    # A custom provider speaks OpenAI's format.
    style = "openai" if call.custom else provider
    streamed = WireRequest(url, headers, {**wire.body, **_STREAM_FIELDS[style]})
    timeout = _within(client.timeout, seconds)
    return ProviderStream(
        client, dataclasses.replace(call, wire=streamed), api_key, _READERS[style](request.model), timeout
    )


class ProviderStream:
    """One streamed completion: an async context manager, and an async iterator of Delta once entered."""

    def __init__(
        self,
        client: aiohttp.ClientSession,
        call: PreparedCall,
        api_key: str,
        reader: _Reader,
        timeout: aiohttp.ClientTimeout,
    ) -> None:
        self._client = client
        self._call = call
        self._provider = call.provider
        self._api_key = api_key
        self._wire = call.wire
        self._reader = reader
        self._timeout = timeout
        self._response: aiohttp.ClientResponse | None = None
        self._decoder = SSEDecoder()
        self._pending: deque[str] = deque()  # content read but not yet yielded
        self._failure: ProviderError | None = None  # raised once the pending content is yielded
        self._ended = False  # nothing more will be read
        self._parts: list[str] = []
        self.finished = False

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def usage(self) -> Usage | None:
        return self._reader.usage

    @property
    def model(self) -> str:
        return self._reader.model

    async def __aenter__(self) -> Self:
        if self._response is not None or self._ended:
            raise RuntimeError("a ProviderStream is entered once")
        provider = self._provider
        error_body = None
        try:
            # encoded=True: the URL goes out exactly as the adapter quoted it (see complete()).
            response = await self._client.post(
                URL(self._wire.url, encoded=True),
                data=_JSON.encode(self._wire.body),
                headers=self._wire.headers,
                allow_redirects=False,
                timeout=self._timeout,
            )
            if not 200 <= response.status < 300:
                async with response:
                    error_body = await response.read()
        except (OutboundBlocked, TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(provider, exc) from exc
        if error_body is not None:
            raise http_error(self._call, self._api_key, response, error_body)
        if response.content_type != "text/event-stream":
            response.close()
            raise ProviderError(f"{provider}: response is not an event stream (HTTP {response.status})")
        self._response = response
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading: the upstream response is closed (released to the pool only once finished)."""
        self._ended = True
        self._close_response()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Delta:
        while not self._pending:
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            if self._ended:
                raise StopAsyncIteration
            if self._response is None:
                raise RuntimeError("enter the ProviderStream with `async with` before iterating")
            await self._read(self._response)
        content = self._pending.popleft()
        self._parts.append(content)
        return Delta(content)

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        """Read what has arrived into pending content, or note why the stream ended."""
        provider = self._provider
        try:
            chunk = await response.content.readany()
        # aiohttp's read timeouts (sock_read, the total) are TimeoutErrors, some also ClientErrors.
        except TimeoutError as exc:
            self._end(ProviderTimeout(f"{provider}: stream timed out ({type(exc).__name__})"))
            return
        except aiohttp.ClientError as exc:
            self._end(_cut(provider, type(exc).__name__))
            return
        if not chunk:
            self.finished = self._reader.ends_at_eof
            self._end(None if self.finished else _cut(provider, "connection closed"))
            return
        try:
            for event in self._decoder.feed(chunk):
                content = self._reader.read(event)
                if content:
                    self._pending.append(content)
                if self._reader.done:
                    self.finished = True
                    self._end(None)
                    return
        except _ErrorEvent as exc:
            message = _message(provider, exc.detail or "error event", self._api_key)
            self._end(ProviderError(message, retryable=exc.retryable))
        except _PARSE_ERRORS as exc:
            self._end(ProviderError(_message(provider, f"unexpected stream event: {_explain(exc)}", self._api_key)))

    def _end(self, failure: ProviderError | None) -> None:
        self._failure = failure
        self._ended = True
        self._close_response()

    def _close_response(self) -> None:
        if self._response is None:
            return
        if self.finished:
            self._response.release()  # the pool keeps the connection only if the body was read to its end
        else:
            self._response.close()


def _cut(provider: str, why: str) -> ProviderError:
    return ProviderError(f"{provider}: the stream was cut before it finished ({why})", retryable=True)
